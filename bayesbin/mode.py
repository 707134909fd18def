"""Posterior modes of bayesbin binary models: relax-and-round, annealing and a profile search.

:func:`find_mode` compares candidates from two sources and polishes each:

* relax-and-round: at each scale of a grid the bits are relaxed to ``[0, 1]``, the convex
  relaxed MAP is found by L-BFGS-B and rounded in effective-weight space;
* simulated annealing with the same kernels: heat-bath sweeps of the whole log-posterior raised
  to ``beta`` (prior and likelihood), ``beta`` rising from ``beta_start`` to ``beta_end`` (``> 1``
  freezes), each sweep followed by the group moves and Newton steps on the continuous parameters
  (exact gradient; Fisher information where the Hessian is not negative definite).

The polish alternates greedy (zero-temperature) sweeps and Newton steps until neither moves, then
runs a profile search: steepest ascent over single flips (and two-output pair swaps) with the
bias and log scale re-optimised for every candidate flip. On MNIST56 (bias and learned scale)
annealing restarts alone end 5-250 nats below the mode the profile search reaches from most
relaxed candidates (-2298.1). The best candidate is returned as point values in PyMC's
``initvals`` format.

Examples
--------
>>> import numpy as np, bayesbin
>>> rng = np.random.default_rng(0)
>>> x = rng.integers(0, 2, size=(60, 4)).astype(float)
>>> model = bayesbin.binary_logistic(x, rng.integers(0, 2, 60), form="two_output", bias=True)
>>> mode = bayesbin.find_mode(model, n_sweeps=50, restarts=2, random_seed=1)
>>> sorted(mode), mode.logp < 0
(['b', 'w'], True)
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pymc as pm
from scipy import optimize, sparse
from threadpoolctl import threadpool_limits

from bayesbin._progress import progress
from bayesbin.linear.graph import initial_point
from bayesbin.linear.maths import row_lse
from bayesbin.samplers import kernels as fk
from bayesbin.samplers.adapter import binary_spec, model_problem

__all__ = ["ModeResult", "find_mode"]

_REFRESH_EVERY = 50  # annealing sweeps between rebuilds of the cache from scratch


_WARM_BETA_START = 0.25  # first beta when annealing from the best relaxed candidate
# L-BFGS-B's relative tolerance for the relaxed MAPs (scipy's default 2.2e-9): the solution is
# only rounded to bits, and measured (seeds 0 and 1) 1e-7 reached the same or better polished
# modes on digits, breast cancer and MNIST56 for a third less CPU on digits
_RELAX_FTOL = 1e-7


class ModeResult(dict):
    """Point values of a mode in PyMC's ``initvals`` format, with its log-posterior.

    A ``dict`` ``{"w": ndarray (int64, the shape of w), "b": ndarray (float64), "scale":
    float}`` holding the model's free variables (by random-variable name, untransformed: a
    hand-written model's own names and weight layout), so it can be passed as ``initvals=`` to
    ``pm.sample`` or ``bayesbin.sample``.

    Attributes
    ----------
    logp : float
        The model's log density at the point in PyMC's value space (log scale for a learned
        scale, Jacobian included): ``model.compile_logp()`` of the transformed point, the
        quantity ``sample_stats["lp"]`` reports for draws.
    restart_logps : list of float
        ``logp`` reached by each candidate (relaxed candidates first, then annealing restarts).
    candidates : list of str
        Label of each candidate (``"relax scale=..."`` or ``"anneal <r>"``).
    """

    logp: float
    restart_logps: list
    candidates: list


def _schedule(schedule, n_sweeps, beta_start, beta_end) -> np.ndarray:
    if isinstance(schedule, str):
        if schedule not in ("geometric", "linear"):
            raise ValueError(
                f"schedule must be 'geometric', 'linear' or an array of betas; got {schedule!r}"
            )
        n = 200 if n_sweeps is None else n_sweeps
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"n_sweeps must be a positive integer; got {n_sweeps!r}")
        b0, b1 = float(beta_start), float(beta_end)
        if not (np.isfinite(b0) and np.isfinite(b1) and 0.0 < b0 <= b1):
            raise ValueError(
                f"need 0 < beta_start <= beta_end (finite); got beta_start={beta_start!r}, "
                f"beta_end={beta_end!r}"
            )
        if schedule == "geometric":
            return np.geomspace(b0, b1, int(n))
        return np.linspace(b0, b1, int(n))
    try:
        betas = np.asarray(schedule, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"schedule must be 'geometric', 'linear' or an array of betas; got {schedule!r}"
        ) from exc
    if betas.size == 0 or not np.all(np.isfinite(betas)) or np.any(betas <= 0):
        raise ValueError("a schedule array must hold positive finite betas")
    if n_sweeps is not None and int(n_sweeps) != betas.size:
        raise ValueError(
            f"n_sweeps={n_sweeps!r} disagrees with the schedule array of length {betas.size}"
        )
    return betas


def _objective(problem, prior, A, theta, scale, bias) -> float:
    # the prior first: it is -inf for a log scale beyond exp's range (a wild Newton trial step)
    lp = fk.theta_logprior(prior, theta) if np.all(np.isfinite(theta)) else -math.inf
    if not np.isfinite(lp):
        return -math.inf
    s, b = fk.split_theta(prior, theta, scale, bias)
    return fk.continuous_loglik(problem, A, s, b) + lp


def _newton_theta(problem, prior, state, theta, n_steps: int, tol: float = 1e-10):
    """Up to ``n_steps`` damped Newton steps on theta at fixed w; returns ``(state, theta)``.

    Objective: log-likelihood plus the log-prior of theta in value space (Jacobian included).
    Exact Hessian where it is negative definite, else the Fisher information plus prior
    precision; step halving until the objective increases.
    """
    nb_ = prior.n_bias
    for _ in range(n_steps):
        ll, gscale, gbias = fk.continuous_loglik_grad(problem, state.A, state.scale, state.bias)
        grad = []
        if nb_:
            grad.append(gbias[:nb_] - theta[:nb_] / prior.bias_sigma**2)
        if prior.learn_scale:
            s = state.scale
            g_ll_tau = s * gscale
            grad.append([g_ll_tau - (s / prior.scale_sigma) ** 2 + 1.0])
        g = np.concatenate(grad)
        fisher = fk.theta_precision(problem, state, prior)
        direction = None
        if prior.learn_scale:
            hess = fisher.copy()
            hess[-1, -1] -= g_ll_tau  # observed minus expected information in log scale
            try:
                np.linalg.cholesky(hess)
                direction = np.linalg.solve(hess, g)
            except np.linalg.LinAlgError:
                direction = None
        if direction is None:
            try:
                direction = np.linalg.solve(fisher + 1e-12 * np.eye(g.size), g)
            except np.linalg.LinAlgError:
                break
        if not np.all(np.isfinite(direction)):
            break
        f0 = ll + fk.theta_logprior(prior, theta)
        step = 1.0
        moved = False
        while step > 1e-8:
            cand = theta + step * direction
            f1 = _objective(problem, prior, state.A, cand, state.scale, state.bias)
            if f1 > f0:
                moved = True
                break
            step *= 0.5
        if not moved:
            break
        theta = cand
        s, b = fk.split_theta(prior, theta, state.scale, state.bias)
        state = fk.set_continuous(problem, state, s, b)
        if f1 - f0 < tol:
            break
    return state, theta


def _start_values(model, spec, problem, prior, init, rng):
    """(w bits, scale, bias, theta) of one restart's start; ``init`` keyed by the model's names."""
    init = dict(init or {})
    names = spec.names
    known = {n for n in (names.w, names.b, names.scale) if n is not None}
    unknown = set(init) - known
    if unknown:
        raise ValueError(f"init may hold {sorted(known)}; got also {sorted(unknown)}")
    if names.w in init:
        w = np.asarray(init[names.w])
        if w.shape != tuple(spec.w_shape) or not np.all((w == 0) | (w == 1)):
            raise ValueError(f"init[{names.w!r}] must be 0/1 of shape {tuple(spec.w_shape)}")
        w = np.ascontiguousarray(spec.to_canonical(w)).reshape(-1).astype(np.uint8)
    else:
        p = np.broadcast_to(spec.prior_p, spec.weight_shape).reshape(-1)
        w = (rng.random(p.shape[0]) < p).astype(np.uint8)
    ip = initial_point(model)
    if spec.learned_scale:
        if names.scale in init:
            scale = float(np.asarray(init[names.scale]))
            if not (np.isfinite(scale) and scale > 0):
                raise ValueError(
                    f"init[{names.scale!r}] must be a positive float; got {init[names.scale]!r}"
                )
        else:
            scale = math.exp(float(ip[model.rvs_to_values[model[names.scale]].name]))
    else:
        if "scale" in init:
            raise ValueError("init['scale'] given but the model has no learned scale")
        scale = spec.fixed_scale
    if spec.bias:
        b0 = init.get(names.b, ip[model.rvs_to_values[model[names.b]].name])
        bias = np.broadcast_to(np.asarray(b0, dtype=np.float64), (problem.n_cols,)).copy()
        if not np.all(np.isfinite(bias)):
            raise ValueError(f"init[{names.b!r}] must be finite")
    else:
        if "b" in init:
            raise ValueError("init['b'] given but the model has no bias")
        bias = np.zeros(problem.n_cols)
    return w, scale, bias, fk.join_theta(prior, scale, bias)


def _anneal(problem, prior, groups, betas, state, theta, rng, newton_steps, polish_sweeps):
    """Anneal along ``betas``, then polish greedily.

    ``groups`` are the likelihood-neutral groups (two-output pairs, softmax rows) flipped
    jointly after every sweep.
    """
    n_groups = groups.shape[0]
    for t, beta in enumerate(betas):
        if t and t % _REFRESH_EVERY == 0:
            state, _ = fk.refresh(problem, state)
        # the whole log-posterior at inverse temperature beta: prior logits scaled too
        tempered = problem._replace(prior_logit=problem.prior_logit * beta)
        order, u = fk.draw_scan(problem, rng, "random")
        state, _ = fk.sweep(tempered, state, order, u, beta=float(beta), mode="gibbs")
        if n_groups:
            state, _ = fk.group_sweep(tempered, state, groups, rng.random(n_groups))
        if prior.dim and newton_steps:
            state, theta = _newton_theta(problem, prior, state, theta, newton_steps)
    # zero temperature: theta to its conditional mode, then a greedy sweep (strict ascent of the
    # exact log-posterior); stop when no bit moves (w and theta then are mutually optimal)
    for _ in range(polish_sweeps):
        state, _ = fk.refresh(problem, state)
        if prior.dim:
            state, theta = _newton_theta(problem, prior, state, theta, 50, tol=1e-13)
        order, u = fk.draw_scan(problem, rng, "random")
        state, info = fk.sweep(problem, state, order, u, beta=1.0, mode="greedy")
        n_moved = info.n_flips
        if n_groups:
            state, n_group = fk.group_sweep(problem, state, groups, u[:n_groups], mode="greedy")
            n_moved += n_group
        if n_moved == 0:
            break
    state, _ = fk.refresh(problem, state)
    return state, theta


_DENSE_X_ELEMENTS = 5_000_000  # relaxed objective with a dense x up to this many elements
_DENSE_X_DENSITY = 0.1  # ... when at least this share of x is nonzero


def _design_matrix(problem):
    """``x`` (n, D) for the relaxed objective: dense when small and dense enough, else CSR.

    Rebuilt from the problem's CSC arrays. Dense BLAS products beat sparse ones on small dense
    inputs (scikit-learn's digits: 2.9 s of L-BFGS-B in scipy.sparse products); MNIST stays
    sparse.
    """
    data = problem.levels[problem.codes]
    csc = sparse.csc_matrix(
        (data, problem.rows, problem.indptr), shape=(problem.n_rows, problem.n_features)
    )
    size = problem.n_rows * problem.n_features
    if size <= _DENSE_X_ELEMENTS and problem.nnz >= _DENSE_X_DENSITY * size:
        return csc.toarray()
    return csc.tocsr()


def _relaxed_map(problem, prior, X, scale, u0, bias0, maxiter):
    """Box-relaxed MAP at a fixed scale: ``w`` in ``[0, 1]``, bias free; a convex problem.

    Maximises the log-likelihood with every bit replaced by ``u`` in ``[0, 1]`` (the effective
    weights are linear in ``u``), plus the Bernoulli log-prior's linear extension
    ``u logit p`` and the bias prior, by L-BFGS-B. Returns ``(u, bias)``.
    """
    nbits, ncols = problem.n_bits, problem.n_cols
    n_b = prior.n_bias
    coef = problem.bit_sign.astype(np.float64)  # d Weff / d u = sigma * unit
    flat = problem.bit_feature.astype(np.int64) * ncols + problem.bit_col
    off = np.zeros(problem.n_features * ncols)
    np.add.at(off, flat, coef / problem.unit * problem.offset)
    lab = problem.ycol >= 0
    Y = np.zeros((problem.n_rows, ncols))
    Y[np.nonzero(lab)[0], problem.ycol[lab]] = 1.0
    finite = np.isfinite(problem.prior_logit)
    plin = np.where(finite, problem.prior_logit, 0.0)
    fixed_bias = np.zeros(ncols) if n_b == 0 else None

    lab_rows = np.nonzero(lab)[0]
    lab_cols = problem.ycol[lab]

    def negative(z):
        # ~2,000 calls per find_mode on small data: bincount instead of np.add.at, and one exp
        # pass for both the normaliser and the probabilities (half the CPU on digits)
        u = z[:nbits]
        b = z[nbits:] if n_b else fixed_bias
        weff = off + np.bincount(flat, weights=coef * u, minlength=off.size)
        eta = scale * (X @ weff.reshape(problem.n_features, ncols)) + b
        if problem.reference:
            lse = row_lse(eta, reference=True)
            prob = np.exp(eta - lse[:, None])
        else:
            top = eta.max(axis=1)
            prob = np.exp(eta - top[:, None])
            tot = prob.sum(axis=1)
            prob /= tot[:, None]
            lse = np.log(tot) + top
        resid = Y - prob
        value = float(eta[lab_rows, lab_cols].sum() - lse.sum() + plin @ u)
        g_w = (scale * (X.T @ resid)).reshape(-1)
        grads = [coef * g_w[flat] + plin]
        if n_b:
            value -= 0.5 * float(b @ b) / prior.bias_sigma**2
            grads.append(resid.sum(axis=0) - b / prior.bias_sigma**2)
        return -value, -np.concatenate(grads)

    lo = np.where(problem.active == 1, 0.0, problem.forced.astype(np.float64))
    hi = np.where(problem.active == 1, 1.0, problem.forced.astype(np.float64))
    z0 = np.concatenate([np.clip(u0, lo, hi), bias0[:n_b]])
    bounds = list(zip(lo, hi, strict=True)) + [(None, None)] * n_b
    res = optimize.minimize(
        negative,
        z0,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": maxiter, "ftol": _RELAX_FTOL},
    )
    bias = np.array(bias0, dtype=np.float64)
    if n_b:
        bias[:n_b] = res.x[nbits:]
    return res.x[:nbits], bias


def _round_relaxed(problem, pairs, u) -> np.ndarray:
    """Bits nearest to a relaxed ``u`` in effective-weight space.

    A single bit rounds at 0.5. A likelihood-neutral pair (the two-output form, effective weight
    proportional to ``u_b - u_a``) rounds ``u_b - u_a`` to -1, 0 or 1: ``(1, 0)``, the equal
    pair of higher prior probability, or ``(0, 1)``.
    """
    w = (u > 0.5).astype(np.uint8)
    for a, b in pairs:
        e = int(np.rint(u[b] - u[a]))
        if e == 0:
            both = problem.prior_logit[a] + problem.prior_logit[b] > 0
            w[a] = w[b] = 1 if both else 0
        else:
            w[a], w[b] = (0, 1) if e > 0 else (1, 0)
    return w


def _log_posterior(problem, prior, state, theta) -> float:
    lp = state.loglik + fk.exact_logprior(problem, state.w)
    if prior.dim:
        lp += fk.theta_logprior(prior, theta)
    return float(lp)


def _flipped(problem, state, bits):
    """Return a new cache with ``bits`` flipped: O(nonzeros of their features) plus O(n C)."""
    A = state.A.copy()
    w = state.w.copy()
    for bit in bits:
        j = problem.bit_feature[bit]
        lo, hi = problem.indptr[j], problem.indptr[j + 1]
        m = int(problem.bit_sign[bit]) * (1 - 2 * int(w[bit]))
        A[problem.bit_col[bit], problem.rows[lo:hi]] += m * problem.levels[problem.codes[lo:hi]]
        w[bit] = 1 - w[bit]
    # same scale and bias: set_continuous keeps the flip table and re-derives P and loglik
    fresh = state._replace(w=w, A=A, P=np.empty_like(state.P))
    return fk.set_continuous(problem, fresh, state.scale, state.bias)


def _profile_work(problem) -> float:
    """Rough operation count of one profile pass (every bit flipped, theta re-optimised)."""
    return (
        float(problem.n_bits)
        * (problem.nnz / max(problem.n_features, 1) + 8.0 * problem.n_rows)
        * problem.n_cols
    )


_PROFILE_BUDGET = 5e7  # profile search by default when one pass costs less than this
_PROFILE_TOP = 2  # relaxed candidates that get the profile search: the best greedy optima


def _profile_search(problem, prior, pairs, state, theta, max_passes: int = 500):
    """Steepest ascent over single flips (and pair swaps) with theta re-optimised per candidate.

    Flipping one bit moves many logits; the bias and scale that suit the new bits can differ
    enough that a flip that looks bad at the old theta is good at its own best theta. Each pass
    evaluates every active bit (and every unequal pair, swapped) at its conditional theta mode
    (Newton), takes the best improvement, and stops when none improves the exact
    log-posterior. Returns ``(state, theta)``.
    """
    moves = [(int(b),) for b in np.flatnonzero(problem.active)]
    moves += [(int(a), int(b)) for a, b in pairs]
    lp = _log_posterior(problem, prior, state, theta)
    for _ in range(max_passes):
        best = (lp + 1e-9, None, None)
        for bits in moves:
            if len(bits) == 2 and state.w[bits[0]] == state.w[bits[1]]:
                continue  # equal pairs: likelihood-neutral, handled by the greedy pair sweep
            cand = _flipped(problem, state, bits)
            cand_theta = theta
            if prior.dim:
                # two Newton steps from the old theta: each step raises the objective, so the
                # value is a lower bound of the flip's profile value (exact moves, fewer solves)
                cand, cand_theta = _newton_theta(problem, prior, cand, theta, 2, tol=1e-8)
            value = _log_posterior(problem, prior, cand, cand_theta)
            if value > best[0]:
                best = (value, cand, cand_theta)
        if best[1] is None:
            break
        _, state, theta = best
        if prior.dim:
            state, theta = _newton_theta(problem, prior, state, theta, 50, tol=1e-13)
        lp = _log_posterior(problem, prior, state, theta)
    state, _ = fk.refresh(problem, state)
    return state, theta


def _default_scales(problem, spec) -> np.ndarray:
    """Scales at which the relaxed problem is solved: the fixed scale, or a grid for a learned one."""
    if not spec.learned_scale:
        return np.array([float(spec.fixed_scale)])
    base = 1.0 / max(problem.xmax, 1e-12)
    n = 7 if problem.nnz * problem.n_cols <= 5e6 else 3
    return base * np.geomspace(0.25, 4.0, n) if n == 7 else base * np.array([0.35, 0.7, 1.4])


def _check_scales(scales, spec) -> np.ndarray:
    try:
        arr = np.asarray(scales, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"scales must be positive floats; got {scales!r}") from exc
    if arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"scales must be a non-empty list of positive floats; got {scales!r}")
    if not spec.learned_scale and not np.allclose(arr, spec.fixed_scale):
        raise ValueError(
            f"scales given, but the model's scale is fixed at {spec.fixed_scale}; leave scales "
            "as None"
        )
    return arr


def find_mode(
    model: pm.Model | None = None,
    *,
    method: Literal["auto", "relax", "anneal"] = "auto",
    scales=None,
    profile: bool | None = None,
    n_sweeps: int | None = None,
    schedule="geometric",
    beta_start: float = 1e-3,
    beta_end: float = 4.0,
    restarts: int | None = None,
    newton_steps: int = 2,
    polish_sweeps: int = 100,
    relax_maxiter: int | None = None,
    random_seed=None,
    init: dict | None = None,
    progressbar: bool = True,
) -> ModeResult:
    """Find a posterior mode of a bayesbin binary model: relax-and-round and/or annealing.

    Candidates come from two sources:

    * ``"relax"``: at each scale of ``scales``, the bits are relaxed to ``u`` in ``[0, 1]`` and
      the (convex) relaxed MAP over ``u`` and the bias is found by L-BFGS-B, warm-started from the
      previous scale; ``u`` is rounded in effective-weight space (two-output pairs to -1, 0, +1).
    * ``"anneal"``: ``restarts`` runs of simulated annealing of ``p(w, theta)^beta`` (prior and
      likelihood) with heat-bath sweeps of the incremental kernel and the two-output pair moves,
      ``beta`` following ``schedule``, each sweep followed by ``newton_steps`` Newton steps on the
      bias / log scale.

    Every candidate is then polished: greedy sweeps (flip a bit only if the exact log-posterior
    rises) alternating with Newton steps on theta until no bit flips, then (``profile``) a
    steepest-ascent search over single flips and pair swaps in which each candidate flip is
    scored at its own conditional theta mode. That last step matters for large-n models with a
    learned scale: a flip that loses at the old bias/scale often wins once they adapt, so greedy
    sweeps at fixed theta stop in poor local modes (on MNIST56's two-output model, 16 annealing
    restarts ended 40-500 nats below the mode the profile search reaches from almost any
    start). The best polished candidate is returned.

    Parameters
    ----------
    model : pm.Model, optional
        Built by :func:`bayesbin.binary_logistic` or :func:`bayesbin.binary_softmax` with
        Bernoulli weights; taken from the context when omitted.
    method : {"auto", "relax", "anneal"}
        ``"auto"``: the relaxed candidates; one annealing run started from the best of them,
        warm (``beta`` from 0.25 up to ``beta_end``, as many sweeps as the schedule); and
        no annealing restarts from random bits unless asked for (``restarts``): measured, no
        random restart beat the warm anneal from the relaxed candidates (MNIST56: one of four
        reached the same mode, the others ended 5-265 nats below; scikit-learn's digits:
        100-150 nats below), and four of them cost more than everything else together.
    scales : array_like of float, optional
        Scales of the relaxed candidates (default: the fixed scale, or for a learned scale a
        geometric grid around ``1 / max|x|``: 7 points from 0.25 to 4 times it, 3 points for
        large problems).
    profile : bool, optional
        Run the profile search in the polish (default: when one pass costs under about 5e7
        operations, i.e. small and medium problems; it is O(bits x (nonzeros per feature + n
        C)) per pass).
    n_sweeps : int, optional
        Annealing sweeps per restart for a named schedule (default 200).
    schedule : {"geometric", "linear"} or array_like of float
        ``beta`` per sweep: geometric or linear from ``beta_start`` to ``beta_end``, or explicit
        positive values (then ``n_sweeps`` must be None or their number).
    beta_start, beta_end : float
        First and last inverse temperature of a named schedule (``0 < beta_start <=
        beta_end``); ``beta_end > 1`` concentrates the last sweeps near the mode.
    restarts : int, optional
        Annealing runs from random bits (default 4 for ``"anneal"``, 0 for ``"auto"``).
    newton_steps : int
        Newton steps on the continuous parameters after each annealing sweep (``0``: keep them
        fixed until the greedy phase).
    polish_sweeps : int
        Most greedy sweeps per candidate.
    relax_maxiter : int, optional
        L-BFGS-B iterations per relaxed candidate (default 300; 100 for large problems, over
        5e6 nonzeros x logit columns, where one iteration costs two passes over ``x``: on full
        MNIST the 3 candidates then take about 55 CPU s, and the chains climb past the rounded
        mode during tuning anyway).
    random_seed : int, sequence of int or numpy.random.Generator, optional
    progressbar : bool
        Show a bar with the candidate being computed (relaxed MAPs, annealing runs).
    init : dict, optional
        Start of every annealing restart, in ``initvals`` format (``"w"``, ``"b"``,
        ``"scale"``, all optional): missing ``w`` is drawn from its prior per restart, missing
        ``b`` / ``scale`` come from ``model.initial_point()``.

    Returns
    -------
    ModeResult
        ``dict`` of the model's free variables (``"w"`` int64 of the shape of ``w``, ``"b"``
        float64 of the shape of ``b``, ``"scale"`` float) usable as ``initvals``, with
        attributes ``logp`` (value-space log density, as ``sample_stats["lp"]``),
        ``restart_logps`` (one per candidate, relaxed first) and ``candidates`` (their labels).

    Examples
    --------
    >>> import numpy as np, bayesbin
    >>> rng = np.random.default_rng(0)
    >>> x = rng.integers(0, 2, size=(50, 3)).astype(float)
    >>> model = bayesbin.binary_softmax(x, rng.integers(0, 2, 50), 2, scale=0.5)
    >>> mode = find_mode(model, method="anneal", n_sweeps=30, restarts=2, random_seed=0)
    >>> mode["w"].shape, len(mode.restart_logps)
    ((3, 2), 2)
    """
    model = pm.modelcontext(model)
    spec = binary_spec(model, "find_mode")
    if method not in ("auto", "relax", "anneal"):
        raise ValueError(f"method must be 'auto', 'relax' or 'anneal'; got {method!r}")
    if restarts is not None and (
        isinstance(restarts, bool) or not isinstance(restarts, int | np.integer) or restarts < 0
    ):
        raise ValueError(f"restarts must be a non-negative integer; got {restarts!r}")
    if method == "anneal" and restarts == 0:
        raise ValueError("restarts must be a positive integer for method='anneal'; got 0")
    checked = [("polish_sweeps", polish_sweeps)]
    if relax_maxiter is not None:
        checked.append(("relax_maxiter", relax_maxiter))
    for name, value in checked:
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value!r}")
    if isinstance(newton_steps, bool) or not isinstance(newton_steps, int | np.integer):
        raise ValueError(f"newton_steps must be an integer >= 0; got {newton_steps!r}")
    if newton_steps < 0:
        raise ValueError(f"newton_steps must be an integer >= 0; got {newton_steps!r}")
    if profile is not None and not isinstance(profile, bool | np.bool_):
        raise ValueError(f"profile must be True, False or None; got {profile!r}")
    if init is not None and not isinstance(init, dict):
        raise TypeError(f"init must be a dict of initial values or None; got {type(init)}")
    betas = _schedule(schedule, n_sweeps, beta_start, beta_end)
    problem, prior = model_problem(model, own_bias=spec.bias, own_scale=spec.learned_scale)
    grid = _default_scales(problem, spec) if scales is None else _check_scales(scales, spec)
    if relax_maxiter is None:
        relax_maxiter = 300 if problem.nnz * problem.n_cols <= 5e6 else 100
    pairs = fk.likelihood_neutral_pairs(problem)  # for rounding and pair swaps
    groups = fk.likelihood_neutral_groups(problem)  # pairs and softmax rows, flipped jointly
    rng = np.random.default_rng(random_seed)
    if profile is None:
        profile = _profile_work(problem) <= _PROFILE_BUDGET
    if init is not None:  # checked now, used only by annealing restarts
        _start_values(model, spec, problem, prior, init, np.random.default_rng(0))
    if restarts is None:
        restarts = 4 if method == "anneal" else 0
    if method == "relax":
        restarts = 0

    # small dense products and L-BFGS-B's vector updates: threads only add synchronisation (a
    # second BLAS thread on a busy 2-core machine made the relaxed MAPs of digits 20x slower)
    with threadpool_limits(limits=1, user_api="blas"):
        return _find_mode(
            model,
            spec,
            problem,
            prior,
            method,
            grid,
            betas,
            restarts,
            profile,
            polish_sweeps,
            newton_steps,
            relax_maxiter,
            init,
            progressbar,
            rng,
            pairs,
            groups,
        )


def _find_mode(
    model,
    spec,
    problem,
    prior,
    method,
    grid,
    betas,
    restarts,
    profile,
    polish_sweeps,
    newton_steps,
    relax_maxiter,
    init,
    progressbar,
    rng,
    pairs,
    groups,
):
    """Run :func:`find_mode` once its arguments are checked."""
    polished = {}  # greedy optimum -> profile result (different starts often meet)

    def greedy(state, theta):
        return _anneal(problem, prior, groups, betas[:0], state, theta, rng, 0, int(polish_sweeps))

    def profiled(state, theta):
        key = state.w.tobytes()
        if key in polished:
            return polished[key]
        if profile:
            state, theta = _profile_search(problem, prior, pairs, state, theta)
            if groups.shape[0]:
                fk.group_sweep(problem, state, groups, np.zeros(groups.shape[0]), mode="greedy")
        polished[key] = (state, theta)
        return state, theta

    def polish(state, theta):
        return profiled(*greedy(state, theta))

    candidates = []  # (label, logp, w, theta)

    def add(label, state, theta):
        lp = _log_posterior(problem, prior, state, theta)
        candidates.append((label, lp, state.w.copy(), theta.copy()))

    n_relax = len(grid) if method in ("auto", "relax") else 0
    n_steps = n_relax + (1 if method == "auto" and n_relax else 0) + int(restarts)
    with progress("find_mode", n_steps, bool(progressbar)) as task:
        if method in ("auto", "relax"):
            X = _design_matrix(problem)
            _, _, bias0, _ = _start_values(model, spec, problem, prior, None, rng)
            u = np.full(problem.n_bits, 0.5)
            seen = set()
            relaxed = []  # [label, greedy-polished state, theta] per distinct rounding
            prev = None
            for scale in grid:
                task.describe(f"find_mode: relaxed MAP at scale {scale:.3g}, rounded and polished")
                if prev is not None:  # keep the effective weights scale * u of the previous one
                    u = np.clip(0.5 + (u - 0.5) * prev / scale, 0.0, 1.0)
                u, bias0 = _relaxed_map(
                    problem, prior, X, float(scale), u, bias0, int(relax_maxiter)
                )
                prev = float(scale)
                w = _round_relaxed(problem, pairs, u)
                key = w.tobytes()
                if key not in seen:  # the same rounding polishes to the same mode
                    seen.add(key)
                    theta = fk.join_theta(prior, float(scale), bias0)
                    state = fk.init(problem, w, float(scale), bias0)
                    state, theta = greedy(state, theta)
                    relaxed.append([f"relax scale={scale:.4g}", state, theta])
                task.advance()
            # the profile search (a pass re-fits theta for every flip) from the best greedy
            # optima only: measured, the others never won (scikit-learn's breast cancer: 7
            # searches took 5 of the 6 CPU seconds, for the same mode)
            ranked = sorted(
                range(len(relaxed)),
                key=lambda i: -_log_posterior(problem, prior, relaxed[i][1], relaxed[i][2]),
            )
            for i in ranked[:_PROFILE_TOP]:
                relaxed[i][1:] = profiled(relaxed[i][1], relaxed[i][2])
            for label, state, theta in relaxed:
                add(label, state, theta)
        if method == "auto" and candidates:
            # one annealing run from the best relaxed candidate, starting warm (beta 0.25, not
            # the random restarts' near-zero): on full MNIST, where greedy polishing at fixed
            # theta stops early and the profile search is too costly, it gains ~400 nats for
            # 20 CPU s
            task.describe("find_mode: annealing from the best relaxed candidate")
            _, _, w, theta = max(candidates, key=lambda c: c[1])
            scale, bias = fk.split_theta(prior, theta, spec.fixed_scale, bias0)
            state = fk.init(problem, w, scale, bias)
            warm = np.geomspace(min(_WARM_BETA_START, betas[-1]), betas[-1], betas.size)
            state, theta = _anneal(
                problem, prior, groups, warm, state, theta.copy(), rng, int(newton_steps), 0
            )
            add("anneal from relax", *polish(state, theta))
            task.advance()
        for r in range(int(restarts)):
            task.describe(f"find_mode: annealing restart {r + 1} of {int(restarts)}")
            w, scale, bias, theta = _start_values(model, spec, problem, prior, init, rng)
            state = fk.init(problem, w, scale, bias)
            state, theta = _anneal(
                problem, prior, groups, betas, state, theta, rng, int(newton_steps), 0
            )
            add(f"anneal {r}", *polish(state, theta))
            task.advance()

    label, lp, w, theta = max(candidates, key=lambda c: c[1])
    out = ModeResult()
    names = spec.names
    out[names.w] = np.ascontiguousarray(
        spec.from_canonical(w.astype(np.int64).reshape(spec.weight_shape))
    )
    if spec.bias:
        b_shape = tuple(initial_point(model)[model.rvs_to_values[model[names.b]].name].shape)
        out[names.b] = np.asarray(theta[: prior.n_bias], dtype=np.float64).reshape(b_shape)
    if spec.learned_scale:
        out[names.scale] = float(math.exp(theta[prior.n_bias]))
    out.logp = lp
    out.restart_logps = [c[1] for c in candidates]
    out.candidates = [c[0] for c in candidates]
    return out
