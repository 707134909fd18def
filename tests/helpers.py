"""Shared test helpers: the exact-posterior kit (enumerate all 2^k bit states) and tiny models.

Tolerances come from Monte Carlo standard errors (ESS from ArviZ), with a fixed family-wise alpha
(Bonferroni over bits), never from a tuned seed.
"""

from __future__ import annotations

import itertools
import os
import warnings

import numpy as np
import pytest
from scipy import stats

import bayesbin
from bayesbin._compat import az

__all__ = [
    "enumerate_posterior",
    "bit_marginals",
    "assert_bits_match_exact",
    "assert_mean_matches",
    "ess_1d",
    "joint_codes",
    "to_point_values",
    "bit_draws",
    "sample_with_steps",
    "grid_posterior",
]

MAX_BITS = 12


def to_point_values(model, values: dict | None) -> dict:
    """Map ``{rv_name: value}`` to ``{value_var_name: transformed value}`` for ``model``."""
    out = {}
    for name, value in (values or {}).items():
        rv = model[name]
        if rv in model.rvs_to_values:
            vv = model.rvs_to_values[rv]
            tr = model.rvs_to_transforms.get(rv)
            arr = np.asarray(value, dtype=vv.dtype)
            if tr is not None:
                arr = np.asarray(tr.forward(arr, *rv.owner.inputs).eval(), dtype=vv.dtype)
            out[vv.name] = arr
        else:
            out[name] = np.asarray(value)
    return out


def enumerate_posterior(model, fixed: dict | None = None, var_names=("w",)):
    """Exact posterior over all joint states of the binary variables ``var_names``.

    Parameters
    ----------
    model : pm.Model
    fixed : dict, optional
        Values of the other free variables (by RV name, untransformed), held fixed.
    var_names : sequence of str
        Bernoulli variables enumerated jointly; their C-order flattenings are concatenated.

    Returns
    -------
    states : ndarray of shape (2**k, k), uint8
    probs : ndarray of shape (2**k,), float64
        Normalised posterior probabilities computed from ``model.compile_logp()``.
    """
    logp = model.compile_logp()
    point = dict(model.initial_point())
    point.update(to_point_values(model, fixed))
    shapes = [tuple(point[model.rvs_to_values[model[n]].name].shape) for n in var_names]
    sizes = [int(np.prod(s)) for s in shapes]
    k = sum(sizes)
    if k > MAX_BITS:
        raise ValueError(f"enumeration of {k} bits is too large (max {MAX_BITS})")
    states = np.array(list(itertools.product((0, 1), repeat=k)), dtype=np.uint8)
    lps = np.empty(len(states))
    for i, s in enumerate(states):
        off = 0
        for n, shp, sz in zip(var_names, shapes, sizes, strict=True):
            vname = model.rvs_to_values[model[n]].name
            point[vname] = s[off : off + sz].reshape(shp).astype(point[vname].dtype)
            off += sz
        lps[i] = logp(point)
    lps -= lps.max()
    probs = np.exp(lps)
    probs /= probs.sum()
    return states, probs


def bit_marginals(states: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Exact P(bit = 1) for each bit, shape (k,)."""
    return probs @ states.astype(np.float64)


def ess_1d(chains_draws: np.ndarray) -> float:
    """Bulk ESS of a (chains, draws) array; ``draws`` total if the array is constant."""
    arr = np.asarray(chains_draws, dtype=np.float64)
    if np.all(arr == arr.flat[0]):
        return float(arr.size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ess = float(az.ess(arr, method="bulk"))
    if not np.isfinite(ess):
        return float(arr.size)
    return ess


def joint_codes(draws: np.ndarray) -> np.ndarray:
    """Integer code of each joint state (first bit most significant, as in ``states``)."""
    k = draws.shape[-1]
    weights = 1 << np.arange(k - 1, -1, -1)
    return (draws.astype(np.int64) * weights).sum(axis=-1)


def assert_bits_match_exact(
    draws: np.ndarray,
    states: np.ndarray,
    probs: np.ndarray,
    alpha: float = 1e-3,
    min_expected: float = 5.0,
) -> dict:
    """Test sampled bits against the exact posterior.

    Two tests at family-wise level ``alpha`` each:

    * per-bit z-tests ``|mean - p| / (sd / sqrt(ESS)) < z_{1 - alpha / (2k)}`` with the exact sd
      ``sqrt(p (1 - p))`` and ArviZ bulk ESS;
    * a chi-square test of the joint-state frequencies of draws thinned by the largest per-bit
      integrated autocorrelation time ``N / ESS`` (cells with expected count < ``min_expected``
      pooled).

    Parameters
    ----------
    draws : ndarray of shape (chains, draws, k)
        Sampled 0/1 bits, in the same flattening as ``states``.
    states, probs : ndarray
        Output of :func:`enumerate_posterior`.

    Returns
    -------
    dict
        The statistics (for reporting).
    """
    draws = np.asarray(draws)
    assert draws.ndim == 3, f"draws must be (chains, draws, k); got {draws.shape}"
    n_chains, n_draws, k = draws.shape
    assert states.shape[1] == k, f"{k} sampled bits but {states.shape[1]} enumerated"
    exact = bit_marginals(states, probs)
    total = n_chains * n_draws
    zcrit = stats.norm.ppf(1 - alpha / (2 * k))
    zs, esss = [], []
    for j in range(k):
        b = draws[:, :, j].astype(np.float64)
        ess = ess_1d(b)
        esss.append(ess)
        p = exact[j]
        sd = np.sqrt(max(p * (1 - p), 1.0 / total))
        z = abs(b.mean() - p) / (sd / np.sqrt(ess))
        zs.append(z)
    zs = np.array(zs)
    assert np.all(zs < zcrit), (
        f"bit marginals off: z = {np.round(zs, 2)} (crit {zcrit:.2f}); sampled "
        f"{np.round(draws.reshape(-1, k).mean(0), 4)} vs exact {np.round(exact, 4)}; "
        f"ESS {np.round(esss, 1)}"
    )
    tau = max(1.0, max(total / max(e, 1.0) for e in esss))
    thin = int(np.ceil(tau))
    codes = joint_codes(draws[:, ::thin, :]).ravel()
    n = codes.size
    observed = np.bincount(codes, minlength=len(probs)).astype(np.float64)
    expected = probs * n
    big = expected >= min_expected
    obs_cells = list(observed[big])
    exp_cells = list(expected[big])
    if (~big).any():
        obs_cells.append(observed[~big].sum())
        exp_cells.append(expected[~big].sum())
    obs_cells, exp_cells = np.array(obs_cells), np.array(exp_cells)
    keep = exp_cells > 0
    if keep.sum() >= 2:
        chi2 = float(((obs_cells[keep] - exp_cells[keep]) ** 2 / exp_cells[keep]).sum())
        # states with zero exact probability must never be visited
        assert obs_cells[~keep].sum() == 0, "sampler visited a state of zero posterior mass"
        dof = int(keep.sum()) - 1
        pval = float(stats.chi2.sf(chi2, dof))
        assert pval > alpha, (
            f"joint frequencies off: chi2 = {chi2:.1f}, dof = {dof}, p = {pval:.2e} "
            f"(thin {thin}, n = {n})"
        )
    else:
        chi2, pval, dof = 0.0, 1.0, 0
    return {
        "z": zs,
        "ess": np.array(esss),
        "thin": thin,
        "n_thinned": n,
        "chi2": chi2,
        "pvalue": pval,
        "dof": dof,
    }


def assert_mean_matches(
    samples: np.ndarray, mean: float, sd: float, alpha: float = 1e-3, n_tests: int = 1
) -> float:
    """z-test a continuous (chains, draws) sample mean against an exact mean with MCSE.

    Returns the z statistic; fails if above ``z_{1 - alpha / (2 n_tests)}``.
    """
    samples = np.asarray(samples, dtype=np.float64)
    ess = ess_1d(samples)
    z = abs(samples.mean() - mean) / (sd / np.sqrt(ess))
    zcrit = stats.norm.ppf(1 - alpha / (2 * n_tests))
    assert z < zcrit, (
        f"mean {samples.mean():.4f} vs exact {mean:.4f}: z = {z:.2f} > {zcrit:.2f} (ESS {ess:.0f})"
    )
    return float(z)


# ---------------------------------------------------------------------------------------------
# Added by the incremental-sampler helper: bits jointly with continuous variables on a grid.
# ---------------------------------------------------------------------------------------------


def grid_posterior(model, grid: dict, var_names=("w",)):
    """Exact joint posterior of the bits and of continuous variables integrated on a grid.

    Parameters
    ----------
    model : pm.Model
    grid : dict of str to 1-D ndarray
        Grid of *value-space* values (e.g. ``"scale_log__"``) of every other free variable,
        equally spaced; the log density is the model's (Jacobian included), so the
        product grid is a Riemann sum in value space.
    var_names : sequence of str
        Bernoulli variables enumerated jointly (C-order flattenings concatenated).

    Returns
    -------
    states : ndarray of shape (2**k, k), uint8
    points : dict of str to ndarray of shape (G,)
        Value-space coordinates of the G product-grid points.
    probs : ndarray of shape (2**k, G), float64
        Normalised joint probabilities.
    """
    logp = model.compile_logp()
    point = dict(model.initial_point())
    names = list(grid)
    mesh = np.meshgrid(*[np.asarray(grid[n], dtype=np.float64) for n in names], indexing="ij")
    points = {n: m.ravel() for n, m in zip(names, mesh, strict=True)}
    n_grid = mesh[0].size if names else 1
    shapes = [tuple(point[model.rvs_to_values[model[n]].name].shape) for n in var_names]
    sizes = [int(np.prod(s)) for s in shapes]
    k = sum(sizes)
    if k > MAX_BITS:
        raise ValueError(f"enumeration of {k} bits is too large (max {MAX_BITS})")
    states = np.array(list(itertools.product((0, 1), repeat=k)), dtype=np.uint8)
    lps = np.empty((len(states), n_grid))
    for i, s in enumerate(states):
        off = 0
        for n, shp, sz in zip(var_names, shapes, sizes, strict=True):
            vname = model.rvs_to_values[model[n]].name
            point[vname] = s[off : off + sz].reshape(shp).astype(point[vname].dtype)
            off += sz
        for g in range(n_grid):
            for n in names:
                point[n] = np.full(point[n].shape, points[n][g])
            lps[i, g] = logp(point)
    lps -= lps.max()
    probs = np.exp(lps)
    probs /= probs.sum()
    return states, points, probs


def bit_draws(result) -> np.ndarray:
    """Sampled ``w`` as (chains, draws, k) uint8, flattened in C order like ``states``."""
    w = result.posterior["w"].values
    return w.reshape(w.shape[0], w.shape[1], -1).astype(np.uint8)


def sample_with_steps(model, make_steps, *, draws, tune, seed, chains=2, cores=1, **kwargs):
    """``pm.sample`` with ``step=make_steps()`` (built inside the model context), quietly."""
    import pymc as pm

    with model:
        return pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            cores=cores,
            step=make_steps(),
            random_seed=seed,
            progressbar=False,
            compute_convergence_checks=False,
            **kwargs,
        )


N_BLOCK = 40  # rows per well; the barrier is N_BLOCK * 0.434 nats deep


def level_data(n, d, k, seed, levels=4, step=0.35, density=0.7):
    """x with a few nonzero levels (density ``density``) and random labels in 0..k-1."""
    r = np.random.default_rng(seed)
    x = r.integers(1, levels + 1, size=(n, d)) * step
    x[r.random((n, d)) > density] = 0.0
    y = r.integers(0, k, n)
    return x, y


def double_well_model():
    """Two wells: features (0, 1) and (2, 3) are duplicated columns on disjoint row blocks with
    balanced labels, ±1 weights, no bias. The likelihood of a block depends on W_a + W_b and is
    best at 0, so (w_a, w_b) in {(1, 0), (0, 1)} are the modes of a well and (0, 0), (1, 1) are
    barriers ~17 nats lower. Four equally probable modes."""
    n = 2 * N_BLOCK
    x = np.zeros((n, 4))
    x[:N_BLOCK, 0:2] = 1.0
    x[N_BLOCK:, 2:4] = 1.0
    y = np.tile([0, 1], n // 2)
    return bayesbin.binary_logistic(x, y, form="single", encoding="pm1")


# --------------------------------------------------------------------------------------------
# the IDX files: skip without them, fail instead in CI
# --------------------------------------------------------------------------------------------

# Tests that need the MNIST / Fashion-MNIST IDX files carry ``@pytest.mark.needs_data("mnist")``
# (tests/conftest.py) or call :func:`require_data`. Without the files (tests never download)
# they skip with a reason; with BAYESBIN_REQUIRE_DATA=1 (set by .ci/run) a missing file fails
# them instead, so CI cannot pass by skipping.
REQUIRE_DATA_ENV = "BAYESBIN_REQUIRE_DATA"
_DATA_TITLES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}


def data_available(name: str) -> bool:
    """Whether both splits of dataset ``name`` ("mnist", "fashion-mnist") are on disk."""
    from bayesbin import data

    ds = data._DATASETS[name]
    try:
        for split in ("train", "test"):
            data._resolve_split_files(ds, split, None, download=False)
    except data.DataNotFoundError:
        return False
    return True


def require_data(name: str) -> None:
    """Skip (or, with BAYESBIN_REQUIRE_DATA=1, fail) the calling test when ``name`` is absent."""
    if name not in _DATA_TITLES:
        raise ValueError(f"unknown dataset {name!r}; known: {sorted(_DATA_TITLES)}")
    if data_available(name):
        return
    reason = (
        f"{_DATA_TITLES[name]} IDX files not found (looked in BAYESBIN_DATA_DIR, "
        "shared/data and ../shared/data beside the repository, and the download cache); "
        "tests never download"
    )
    if os.environ.get(REQUIRE_DATA_ENV) == "1":
        pytest.fail(f"{reason}; {REQUIRE_DATA_ENV}=1 turns this skip into a failure")
    pytest.skip(reason)
