"""Tests for bayesbin.dmala: the DMALA kernel, its PyMC step method, exactness and chain handling."""

from __future__ import annotations

import itertools
import pickle
import warnings

import cloudpickle
import numpy as np
import pymc as pm
import pytest
from helpers import assert_bits_match_exact, enumerate_posterior
from pymc.step_methods.compound import Competence
from scipy import stats
from scipy.special import expit, log_expit

import bayesbin
from bayesbin.samplers import DiscreteLangevin, TemperedTargetWarning
from bayesbin.samplers.kernels import dmala_flip_logits, dmala_step

SEED = sum(ord(c) for c in "test_dmala")
ALPHA_TEST = 1e-3  # family-wise significance level of every statistical test here
MIN_ESS = 200  # per-bit ESS below which an exactness test would have no power


def _sample(
    model,
    step_kwargs=None,
    *,
    draws=3000,
    tune=500,
    chains=2,
    seed=SEED,
    cores=1,
    var_names=("w",),
    step=None,
    **kwargs,
):
    with model:
        if step is None:
            step = DiscreteLangevin([model[n] for n in var_names], **(step_kwargs or {}))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            idata = pm.sample(
                draws=draws,
                tune=tune,
                chains=chains,
                cores=cores,
                step=step,
                random_seed=seed,
                progressbar=False,
                compute_convergence_checks=False,
                **kwargs,
            )
    return idata


def _bits(idata, var_names=("w",)):
    post = idata.posterior
    parts = [post[n].values.reshape(post.sizes["chain"], post.sizes["draw"], -1) for n in var_names]
    return np.concatenate(parts, axis=-1)


# ----------------------------------------------------------------------------------------------
# Pure kernel
# ----------------------------------------------------------------------------------------------


def _ising(k, seed):
    r = np.random.default_rng(seed)
    J = r.normal(scale=0.8, size=(k, k))
    J = (J + J.T) / 2
    h = r.normal(scale=1.0, size=k)

    def logp_dlogp(theta):
        theta = np.asarray(theta, dtype=float)
        return float(theta @ J @ theta + h @ theta), 2 * J @ theta + h

    return logp_dlogp


def _transition_matrix(logp_dlogp, k, kappa, lam, max_flips):
    """Exact DMALA transition matrix over all 2^k states, from the proposal formula."""
    states = np.array(list(itertools.product((0.0, 1.0), repeat=k)))
    index = {tuple(s): i for i, s in enumerate(states)}
    cache = [logp_dlogp(s) for s in states]
    logits = [dmala_flip_logits(s, g, kappa, lam, max_flips) for s, (_, g) in zip(states, cache)]
    P = np.zeros((len(states), len(states)))
    for i, s in enumerate(states):
        for mask in itertools.product((False, True), repeat=k):
            mask = np.array(mask)
            lq = log_expit(logits[i][mask]).sum() + log_expit(-logits[i][~mask]).sum()
            if not mask.any():
                P[i, i] += np.exp(lq)
                continue
            t = s.copy()
            t[mask] = 1 - t[mask]
            j = index[tuple(t)]
            lr = log_expit(logits[j][mask]).sum() + log_expit(-logits[j][~mask]).sum()
            a = min(1.0, np.exp(cache[j][0] - cache[i][0] + lr - lq))
            P[i, j] += np.exp(lq) * a
            P[i, i] += np.exp(lq) * (1 - a)
    pi = np.exp([c[0] for c in cache])
    return states, P, pi / pi.sum()


@pytest.mark.parametrize(
    ("kappa", "lam", "max_flips"),
    [(0.0, 0.5, None), (np.array([0.3, 1.0, 0.0, 2.0]), 0.0, None), (0.0, 0.0, 1.0)],
)
def test_kernel_detailed_balance_exact(kappa, lam, max_flips):
    logp_dlogp = _ising(4, SEED)
    states, P, pi = _transition_matrix(logp_dlogp, 4, kappa, lam, max_flips)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-12)
    flow = pi[:, None] * P
    np.testing.assert_allclose(flow, flow.T, atol=1e-12)
    np.testing.assert_allclose(pi @ P, pi, atol=1e-12)


@pytest.mark.parametrize(
    ("kappa", "lam", "max_flips"), [(np.array([0.5, 0.0, 1.0]), 0.2, None), (0.0, 0.0, 0.7)]
)
def test_kernel_step_matches_transition_row(kappa, lam, max_flips):
    """dmala_step's empirical transitions from one state equal the exact row (chi-square)."""
    k = 3
    logp_dlogp = _ising(k, SEED + 1)
    states, P, _ = _transition_matrix(logp_dlogp, k, kappa, lam, max_flips)
    rng = np.random.default_rng(SEED)
    start = 5
    theta = states[start]
    logp, grad = logp_dlogp(theta)
    n = 10000
    counts = np.zeros(len(states))
    weights = 1 << np.arange(k - 1, -1, -1)
    for _ in range(n):
        t, _, _, _ = dmala_step(rng, theta, logp, grad, logp_dlogp, kappa, lam, max_flips)
        counts[int(t @ weights)] += 1
    expected = n * P[start]
    keep = expected > 0
    assert counts[~keep].sum() == 0
    chi2 = ((counts[keep] - expected[keep]) ** 2 / expected[keep]).sum()
    assert stats.chi2.sf(chi2, keep.sum() - 1) > ALPHA_TEST


def test_flip_logits_formula_and_cap():
    theta = np.array([0.0, 1.0, 0.0, 1.0])
    grad = np.array([2.0, 2.0, -1.0, -4.0])
    kappa = np.array([1.0, 0.0, 0.5, 2.0])
    got = dmala_flip_logits(theta, grad, kappa, 0.25)
    want = 0.5 * (grad * (1 - 2 * theta) - kappa) - 0.25
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-15)
    capped = dmala_flip_logits(theta, grad, kappa, 0.25, max_flips=0.5)
    assert expit(capped).sum() <= 0.5 + 1e-12
    assert expit(capped).sum() == pytest.approx(0.5, abs=1e-9)  # smallest penalty that fits
    loose = dmala_flip_logits(theta, grad, kappa, 0.25, max_flips=10.0)
    np.testing.assert_array_equal(loose, got)  # cap not binding: penalty unchanged


# ----------------------------------------------------------------------------------------------
# Float clone: logp and gradient
# ----------------------------------------------------------------------------------------------


def _logistic_data(n, d, seed):
    r = np.random.default_rng(seed)
    x = r.normal(size=(n, d))
    y = (r.random(n) < expit(x @ r.choice([-1.0, 1.0], size=d))).astype(int)
    return x, y


@pytest.mark.parametrize("encoding", ["01", "pm1"])
def test_logp_and_gradient_match_model(encoding):
    x, y = _logistic_data(25, 4, SEED)
    prior = np.array([0.2, 0.5, 0.7, 0.9])
    model = bayesbin.binary_logistic(x, y, encoding=encoding, prior_p=prior, bias=True)
    with model:
        step = DiscreteLangevin([model["w"]])
    logp_model = model.compile_logp()
    r = np.random.default_rng(SEED)
    for _ in range(5):
        w = r.integers(0, 2, size=4)
        b = float(r.normal())
        point = {"w": w, "b": np.array(b)}
        step.step(point)  # sets the shared bias
        lp, g = step.logp_dlogp(w.astype(float))
        assert lp == pytest.approx(float(logp_model(point)), rel=1e-12, abs=1e-9)
        W = w if encoding == "01" else 2.0 * w - 1.0
        resid = y - expit(x @ W + b)
        g_true = np.log(prior / (1 - prior)) + (1 if encoding == "01" else 2) * x.T @ resid
        np.testing.assert_allclose(g, g_true, rtol=1e-10, atol=1e-10)


def test_gradient_matches_finite_differences_of_float_clone():
    """Gradient = d(logp)/d(bits) of the float clone + logit(prior p) (the prior's extension)."""
    model = _generic_model()
    with model:
        step = DiscreteLangevin([model["a"], model["b"]])
    logit_prior = np.log(
        np.array([0.2, 0.5, 0.8, 0.35, 0.35]) / (1 - np.array([0.2, 0.5, 0.8, 0.35, 0.35]))
    )
    r = np.random.default_rng(SEED)
    eps = 1e-6
    for theta in 0.1 + 0.8 * r.random((3, 5)):  # interior points: PyMC's switch has value there
        _, g = step.logp_dlogp(theta)
        fd = [
            (step.logp_dlogp(theta + eps * e)[0] - step.logp_dlogp(theta - eps * e)[0]) / (2 * eps)
            for e in np.eye(5)
        ]
        np.testing.assert_allclose(g, np.array(fd) + logit_prior, rtol=1e-6, atol=1e-6)
    # at bits, the value is the model's logp
    point = {"a": np.array([1, 0, 1]), "b": np.array([0, 1])}
    lp, _ = step.logp_dlogp(np.array([1.0, 0, 1, 0, 1]))
    assert lp == pytest.approx(float(model.compile_logp()(point)), rel=1e-12)


def test_shared_values_update_and_cache():
    """The other free variables reach the float graph; the cached logp is not reused stale."""
    x, y = _logistic_data(20, 3, SEED + 2)
    model = bayesbin.binary_logistic(x, y, encoding="pm1", bias=True)
    with model:
        step = DiscreteLangevin([model["w"]], alpha=1e-6, adapt=False, precondition=False)
    step.set_rng(np.random.default_rng(0))
    logp_model = model.compile_logp()
    w = np.array([1, 0, 1])
    for b in (0.0, 2.0, -1.5):
        _, st = step.step({"w": w, "b": np.array(b)})
        # alpha tiny: nothing flips, so lp is the model logp at (w, b)
        assert st[0]["n_flips"] == 0
        assert st[0]["lp"] == pytest.approx(float(logp_model({"w": w, "b": np.array(b)})))


def test_beta_tempers_likelihood_only():
    x, y = _logistic_data(20, 3, SEED + 3)
    model = bayesbin.binary_logistic(x, y, encoding="pm1", prior_p=0.3)
    with model, pytest.warns(TemperedTargetWarning):
        step = DiscreteLangevin([model["w"]], beta=0.25)
    prior = model.compile_logp(vars=[model["w"]])
    lik = model.compile_logp(vars=[model["y_obs"]])
    w = np.array([1, 0, 1])
    lp, _ = step.logp_dlogp(w.astype(float))
    assert lp == pytest.approx(float(prior({"w": w})) + 0.25 * float(lik({"w": w})), rel=1e-12)


# ----------------------------------------------------------------------------------------------
# Exactness against enumeration (bayesbin models, both families, both encodings)
# ----------------------------------------------------------------------------------------------

PAPER = {"alpha": 0.3, "adapt": False, "precondition": False}  # the paper's DMALA, fixed alpha
DEFAULT = {}  # alpha adapted while tuning, per-coordinate curvature, frozen after tuning
CAPPED = {"alpha": 1.0, "adapt": False, "precondition": False, "max_flips": 1.0}


def _model(kind):
    if kind == "logistic_single_pm1":
        x, y = _logistic_data(30, 6, SEED + 10)
        return bayesbin.binary_logistic(0.2 * x, y, encoding="pm1", prior_p=0.4)
    if kind == "logistic_two_output_01":
        x, y = _logistic_data(30, 4, SEED + 11)
        return bayesbin.binary_logistic(0.6 * x, y, form="two_output", encoding="01")
    r = np.random.default_rng(SEED + 12)
    if kind == "softmax_01":
        x = r.random((40, 3))
        y = np.argmax(x + 0.5 * r.random((40, 3)), axis=1)
        return bayesbin.binary_softmax(x, y, 3, encoding="01", prior_p=0.6)
    if kind == "softmax_pm1_multinomial":
        x = 0.5 * r.normal(size=(20, 4))
        y = (x[:, 0] - x[:, 1] + 0.5 * r.normal(size=20) > 0).astype(int)
        return bayesbin.binary_softmax(x, y, 2, encoding="pm1", likelihood="multinomial")
    raise AssertionError(kind)


CASES = [
    ("logistic_single_pm1", PAPER),
    ("logistic_single_pm1", DEFAULT),
    ("logistic_single_pm1", CAPPED),
    ("logistic_two_output_01", PAPER),
    ("logistic_two_output_01", DEFAULT),
    ("softmax_01", PAPER),
    ("softmax_01", DEFAULT),
    ("softmax_01", CAPPED),
    ("softmax_pm1_multinomial", PAPER),
    ("softmax_pm1_multinomial", DEFAULT),
]


def _check_exact(kind, kwargs, draws):
    model = _model(kind)
    states, probs = enumerate_posterior(model)
    idata = _sample(model, kwargs, draws=draws)
    return _assert_exact(_bits(idata), states, probs)


def _assert_exact(draws, states, probs):
    res = assert_bits_match_exact(draws, states, probs, alpha=ALPHA_TEST)
    # the test must have power: every bit mixes (a stuck chain would pass vacuously)
    assert res["ess"].min() >= MIN_ESS, f"ESS too small for a meaningful test: {res['ess']}"
    return res


@pytest.mark.parametrize(("kind", "kwargs"), CASES, ids=lambda v: str(v))
def test_matches_exact_posterior(kind, kwargs):
    _check_exact(kind, kwargs, draws=3000)


def _generic_model():
    """Two Bernoulli variables with unequal priors and a Gaussian likelihood (not bayesbin)."""
    with pm.Model() as model:
        a = pm.Bernoulli("a", p=[0.2, 0.5, 0.8], shape=3)
        b = pm.Bernoulli("b", p=0.35, shape=2)
        # integer reductions (a.sum() accumulates in int64) must survive the float clone
        mu = 1.5 * a[0] - a[1] + 0.7 * a[2] + 2.0 * b[0] * a[1] - b[1] - 0.4 * a.sum()
        pm.Normal("obs", mu=mu, sigma=0.8, observed=[0.4, 1.1, 0.9])
    return model


def test_generic_model_several_bernoulli_variables():
    model = _generic_model()
    states, probs = enumerate_posterior(model, var_names=("a", "b"))
    idata = _sample(model, draws=6000, var_names=("a", "b"))
    _assert_exact(_bits(idata, ("a", "b")), states, probs)


# ----------------------------------------------------------------------------------------------
# PyMC chain handling
# ----------------------------------------------------------------------------------------------


def _small_model():
    x, y = _logistic_data(12, 5, SEED + 20)
    return bayesbin.binary_logistic(x, y, encoding="pm1")


def test_same_seed_same_draws_and_step_reuse():
    model = _small_model()
    np.random.seed(1)  # noqa: NPY002 - the legacy global state must not matter
    a = _sample(model, draws=200, tune=100, seed=34)
    np.random.seed(2)  # noqa: NPY002
    b = _sample(model, draws=200, tune=100, seed=34)
    np.testing.assert_array_equal(a.posterior["w"].values, b.posterior["w"].values)
    np.testing.assert_array_equal(a.sample_stats["alpha"].values, b.sample_stats["alpha"].values)
    with model:
        step = DiscreteLangevin([model["w"]])
    c = _sample(model, draws=200, tune=100, seed=34, step=step)
    d = _sample(model, draws=200, tune=100, seed=34, step=step)  # reused step object
    np.testing.assert_array_equal(a.posterior["w"].values, c.posterior["w"].values)
    np.testing.assert_array_equal(c.posterior["w"].values, d.posterior["w"].values)


def test_no_state_leaks_between_chains():
    """Chain 2 of a two-chain run equals a one-chain run given chain 2's generator."""
    model = _small_model()
    with model:
        step = DiscreteLangevin([model["w"]], alpha=0.3)
    both = _sample(
        model,
        draws=150,
        tune=150,
        seed=np.random.default_rng(7),
        step=step,
        discard_tuned_samples=False,
    )
    gen = np.random.default_rng(7)
    gen.spawn(1)  # PyMC gives chain i the i-th child of the seed: skip chain 0's
    alone = _sample(
        model, {"alpha": 0.3}, draws=150, tune=150, chains=1, seed=gen, discard_tuned_samples=False
    )
    for name in ("accept", "n_flips", "alpha", "lp"):
        np.testing.assert_array_equal(
            both.sample_stats[name].values[1], alone.sample_stats[name].values[0]
        )
    np.testing.assert_array_equal(both.posterior["w"].values[1], alone.posterior["w"].values[0])
    assert not np.array_equal(both.sample_stats["lp"].values[0], both.sample_stats["lp"].values[1])
    # adaptation restarts from the initial alpha in every chain
    warm = both.warmup_sample_stats["alpha"].values
    np.testing.assert_array_equal(warm[:, 0], [0.3, 0.3])
    np.testing.assert_array_equal(warm[1], alone.warmup_sample_stats["alpha"].values[0])


def test_adaptation_frozen_after_tuning():
    model = _small_model()
    idata = _sample(model, draws=300, tune=200, discard_tuned_samples=False)
    alpha = idata.sample_stats["alpha"].values
    warm = idata.warmup_sample_stats["alpha"].values
    assert warm.shape == (2, 200) and alpha.shape == (2, 300)
    assert np.all(alpha == alpha[:, [0]])  # constant after tuning
    assert np.all(np.ptp(warm, axis=1) > 0)  # and it was adapted during tuning
    fixed = _sample(
        model, {"alpha": 0.2, "adapt": False}, draws=100, tune=100, discard_tuned_samples=False
    )
    assert np.all(fixed.sample_stats["alpha"].values == 0.2)
    assert np.all(fixed.warmup_sample_stats["alpha"].values == 0.2)
    untuned = _sample(model, {"alpha": 0.2}, draws=100, tune=0)
    assert np.all(untuned.sample_stats["alpha"].values == 0.2)


def test_sampling_state_fields_cover_adaptation():
    model = _small_model()
    with model:
        step = DiscreteLangevin([model["w"]], rng=1)
    state0 = step.sampling_state
    point = model.initial_point()
    for _ in range(30):
        point, _ = step.step(point)
    assert step.da_t == 30
    step.sampling_state = state0
    assert step.da_t == 0 and step.probe_pos == 0 and step.cache is None
    assert np.all(step.kappa_count == 0)
    # after stop_tuning nothing adapts: alpha, kappa and every counter stay fixed
    for _ in range(60):
        point, _ = step.step(point)
    step.stop_tuning()
    frozen = step.sampling_state
    for _ in range(60):
        point, _ = step.step(point)
    for name in ("log_alpha", "kappa", "kappa_count", "kappa_prop_count", "da_t", "probe_pos"):
        np.testing.assert_array_equal(getattr(step, name), getattr(frozen, name))


def test_pickle_roundtrip_same_draws():
    model = _small_model()
    with model:
        step = DiscreteLangevin([model["w"]])
    step.logp_dlogp(np.zeros(5))  # compile
    model2, step2 = pickle.loads(cloudpickle.dumps((model, step)))
    assert step2._fn is None  # the compiled function is not pickled; recompiled lazily
    a = _sample(model, draws=100, tune=50, seed=56, step=step)
    b = _sample(model2, draws=100, tune=50, seed=56, step=step2)
    np.testing.assert_array_equal(a.posterior["w"].values, b.posterior["w"].values)


def test_multiprocess_equals_sequential():
    model = _small_model()
    seq = _sample(model, draws=100, tune=50, seed=910, cores=1)
    par = _sample(model, draws=100, tune=50, seed=910, cores=2)
    np.testing.assert_array_equal(seq.posterior["w"].values, par.posterior["w"].values)


@pytest.mark.slow
def test_multiprocess_spawn_pickles_step():
    model = _small_model()
    seq = _sample(model, draws=100, tune=50, seed=910, cores=1)
    par = _sample(model, draws=100, tune=50, seed=910, cores=2, mp_ctx="forkserver")
    np.testing.assert_array_equal(seq.posterior["w"].values, par.posterior["w"].values)


def test_compound_with_continuous_variable_and_stats():
    """DMALA on w with NUTS on the bias: draws match the exact marginal over w."""
    x, y = _logistic_data(20, 3, SEED + 30)
    model = bayesbin.binary_logistic(x, y, encoding="pm1", bias=True, bias_sigma=1.0)
    # exact marginal over w: integrate the bias on a grid
    grid = np.linspace(-7, 7, 561)
    logp = model.compile_logp()
    states = np.array(list(itertools.product((0, 1), repeat=3)), dtype=np.uint8)
    lps = np.array([[logp({"w": s, "b": np.array(b)}) for b in grid] for s in states])
    lps -= lps.max()
    probs = np.exp(lps).sum(axis=1)
    probs /= probs.sum()
    idata = _sample(model, draws=2000, tune=500)
    assert {"accept", "accepted", "n_flips", "alpha", "lp"} <= set(idata.sample_stats)
    _assert_exact(_bits(idata), states, probs)


# ----------------------------------------------------------------------------------------------
# Interface
# ----------------------------------------------------------------------------------------------


def test_supplied_kappa_is_used_and_kept_for_unprobed_bits():
    model = _small_model()
    given = np.array([0.5, 1.0, 2.0, 3.0, 4.0])
    with model:
        fixed = DiscreteLangevin([model["w"]], kappa=given, precondition=False, rng=3)
        learned = DiscreteLangevin([model["w"]], kappa=given, rng=3)
    point = model.initial_point()
    p1, p2 = dict(point), dict(point)
    for _ in range(3):
        p1, _ = fixed.step(p1)
        p2, _ = learned.step(p2)
    np.testing.assert_array_equal(fixed.kappa, given)  # used as given
    probed = learned.kappa_count > 0
    assert probed.sum() == 3  # one probe per tuning step
    np.testing.assert_array_equal(
        learned.kappa[~probed & (learned.kappa_prop_count == 0)],
        given[~probed & (learned.kappa_prop_count == 0)],
    )


def test_competence_and_bad_input():
    model = _small_model()
    assert DiscreteLangevin.competence(model["w"], False) == Competence.COMPATIBLE
    with pm.Model():
        z = pm.Normal("z")
    assert DiscreteLangevin.competence(z, True) == Competence.INCOMPATIBLE
    with model:
        for kwargs, exc, word in [
            ({"alpha": 0.0}, ValueError, "alpha"),
            ({"alpha": "big"}, ValueError, "alpha"),
            ({"alpha": [1, 2]}, TypeError, "alpha"),
            ({"target_accept": 1.0}, ValueError, "target_accept"),
            ({"beta": 0.0}, ValueError, "beta"),
            ({"max_flips": -1}, ValueError, "max_flips"),
            ({"kappa": [1.0, 2.0]}, ValueError, "kappa"),
            ({"kappa": [-1.0, 0, 0, 0, 0]}, ValueError, "kappa"),
        ]:
            with pytest.raises(exc, match=word):
                DiscreteLangevin([model["w"]], **kwargs)
    x, y = _logistic_data(10, 2, 0)
    m2 = bayesbin.binary_logistic(x, y, bias=True)
    with m2, pytest.raises(ValueError, match="Bernoulli"):
        DiscreteLangevin([m2["w"], m2["b"]])
