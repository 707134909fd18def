"""Continuous parameters (bias, log scale) at the cached activations: priors, Fisher, random walk."""

from __future__ import annotations

import math
from typing import NamedTuple

import numba as nb
import numpy as np

from bayesbin.samplers.kernels.flips import _row_lse
from bayesbin.samplers.kernels.problem import (
    FlipProblem,
    FlipState,
    _loglik_only,
    _softplus,
    set_continuous,
)

__all__ = [
    "ContinuousPrior",
    "bias_logprior",
    "log_scale_logprior",
    "join_theta",
    "split_theta",
    "theta_logprior",
    "theta_precision",
    "continuous_rwm",
    "grouped_rows",
    "grouped_loglik",
    "activation_grid",
]


class ContinuousPrior(NamedTuple):
    """Priors of the continuous parameters ``theta = (bias..., log scale)`` of a model.

    Attributes
    ----------
    n_bias : int
        Number of bias entries in ``theta`` (0 when the bias is not moved).
    bias_sigma : float
        Normal(0, bias_sigma) prior sd of each bias entry.
    learn_scale : bool
        Whether ``theta`` ends with ``log scale`` (HalfNormal(scale_sigma) prior on the scale,
        plus the log-transform Jacobian).
    scale_sigma : float
    """

    n_bias: int
    bias_sigma: float
    learn_scale: bool
    scale_sigma: float

    @property
    def dim(self) -> int:
        """Length of ``theta``."""
        return self.n_bias + int(self.learn_scale)


_LOG_2PI = math.log(2.0 * math.pi)


def bias_logprior(bias, sigma: float) -> float:
    """Sum of Normal(0, sigma) log densities of the bias entries."""
    b = np.asarray(bias, dtype=np.float64).reshape(-1)
    return float(np.sum(-0.5 * _LOG_2PI - math.log(sigma) - 0.5 * (b / sigma) ** 2))


@nb.njit(cache=True, nogil=True)
def _log_scale_logprior(log_scale, sigma):
    if not log_scale < 700.0:  # also NaN
        return -math.inf
    z = math.exp(log_scale) / sigma
    return 0.5 * math.log(2.0 / math.pi) - math.log(sigma) - 0.5 * z * z + log_scale


def log_scale_logprior(log_scale: float, sigma: float) -> float:
    """HalfNormal(sigma) log density of ``scale = exp(log_scale)`` plus the Jacobian ``log_scale``."""
    return float(_log_scale_logprior(float(log_scale), float(sigma)))


def join_theta(prior: ContinuousPrior, scale: float, bias) -> np.ndarray:
    """Join ``theta = (bias[:n_bias]..., log scale)`` of the moved parameters.

    The inverse of :func:`split_theta`; an empty array when nothing is moved.
    """
    parts = []
    if prior.n_bias:
        parts.append(np.asarray(bias, dtype=np.float64).reshape(-1)[: prior.n_bias])
    if prior.learn_scale:
        parts.append([math.log(scale)])
    return np.concatenate(parts).astype(np.float64) if parts else np.zeros(0)


def split_theta(prior: ContinuousPrior, theta, scale: float, bias):
    """Return ``(scale, bias)`` with the entries of ``theta`` substituted for the moved ones."""
    theta = np.asarray(theta, dtype=np.float64)
    b = np.array(bias, dtype=np.float64, copy=True).reshape(-1)
    if prior.n_bias:
        b[: prior.n_bias] = theta[: prior.n_bias]
    s = math.exp(theta[prior.n_bias]) if prior.learn_scale else float(scale)
    return s, b


def theta_logprior(prior: ContinuousPrior, theta) -> float:
    """Log prior (value space, Jacobian included) of the moved continuous parameters."""
    theta = np.asarray(theta, dtype=np.float64)
    lp = 0.0
    if prior.n_bias:
        lp += bias_logprior(theta[: prior.n_bias], prior.bias_sigma)
    if prior.learn_scale:
        lp += log_scale_logprior(float(theta[prior.n_bias]), prior.scale_sigma)
    return lp


@nb.njit(cache=True, nogil=True)
def _fisher(A, P, scale, reference, out):
    """Fisher information of the log-likelihood in (bias_0..bias_{C-1}, log scale)."""
    c, n = A.shape
    out[:, :] = 0.0
    sa = np.empty(c)
    for i in range(n):
        mean = 0.0
        for k in range(c):
            sa[k] = scale * A[k, i]
            mean += P[i, k] * sa[k]
        for k in range(c):
            pk = P[i, k]
            for m in range(c):
                out[k, m] -= pk * P[i, m]
            out[k, k] += pk
            out[k, c] += pk * (sa[k] - mean)
            out[c, c] += pk * (sa[k] - mean) ** 2
        if reference:
            # the implicit class has sa = 0
            pr = 1.0
            for k in range(c):
                pr -= P[i, k]
            out[c, c] += pr * mean * mean
    for k in range(c):
        out[c, k] = out[k, c]
    return out


def theta_precision(
    problem: FlipProblem, state: FlipState, prior: ContinuousPrior, beta: float = 1.0
) -> np.ndarray:
    """Fisher information plus prior precision of ``theta`` at the cached state (a preconditioner).

    Parameters
    ----------
    problem : FlipProblem
    state : FlipState
    prior : ContinuousPrior
    beta : float
        Inverse temperature of the likelihood: the Fisher information is multiplied by it.

    Returns
    -------
    ndarray of shape (dim, dim), float64
    """
    c = problem.n_cols
    full = _fisher(state.A, state.P, state.scale, problem.reference, np.zeros((c + 1, c + 1)))
    idx = list(range(prior.n_bias)) + ([c] if prior.learn_scale else [])
    prec = full[np.ix_(idx, idx)]
    diag = [1.0 / prior.bias_sigma**2] * prior.n_bias
    if prior.learn_scale:
        diag.append(2.0 * (state.scale / prior.scale_sigma) ** 2)
    return float(beta) * prec + np.diag(diag)


# Row grouping for the continuous moves: when the logistic activations take few distinct
# integer values (binary x and integer effective weights, e.g. MNIST56: A in -25..25), the
# log-likelihood in (scale, bias) is a sum over (value, label) counts instead of over rows.
_GROUP_ROWS = True


_MAX_GROUP_FRACTION = 0.25  # group only when distinct values <= this fraction of the rows


def grouped_rows(problem: FlipProblem, A: np.ndarray):
    """Distinct activation values with label counts, or None when grouping does not pay.

    Only for the logistic forms (one column) with every ``A[0, i]`` an exact integer and at
    most ``_MAX_GROUP_FRACTION * n`` distinct values. The sum over groups equals the sum over
    rows exactly up to floating-point reassociation.

    Returns
    -------
    None or (values, n_pos, n_all) : three ndarrays of shape (G,), float64
        Distinct activations, number of rows with label 1 and of all rows at each.
    """
    n = A.shape[1] if A.ndim == 2 else 0
    if not (_GROUP_ROWS and problem.reference and A.shape[0] == 1 and n):
        return None
    a = A[0]
    r = np.rint(a)
    if not np.array_equal(r, a):
        return None
    lo = float(r.min())
    span = int(r.max() - lo) + 1
    if span > _MAX_GROUP_FRACTION * n:
        return None
    idx = (r - lo).astype(np.int64)
    n_all = np.bincount(idx, minlength=span)
    n_pos = np.bincount(idx[problem.ycol == 0], minlength=span)
    keep = n_all > 0
    values = lo + np.flatnonzero(keep).astype(np.float64)
    return values, n_pos[keep].astype(np.float64), n_all[keep].astype(np.float64)


@nb.njit(cache=True, nogil=True)
def _grouped_loglik(values, n_pos, n_all, scale, bias0):
    total = 0.0
    for g in range(values.shape[0]):
        eta = scale * values[g] + bias0
        total += n_pos[g] * eta - n_all[g] * _softplus(eta)
    return total


@nb.njit(cache=True, nogil=True)
def _theta_logprior_1(theta, n_bias, learn_scale, bias_sigma, scale_sigma):
    """theta_logprior for at most one bias entry, the same arithmetic (compiled)."""
    lp = 0.0
    if n_bias:
        b = theta[0]
        lp += -0.5 * _LOG_2PI - math.log(bias_sigma) - 0.5 * (b / bias_sigma) ** 2
    if learn_scale:
        lp += _log_scale_logprior(theta[n_bias], scale_sigma)
    return lp


@nb.njit(cache=True, nogil=True)
def _grouped_rwm_kernel(groups, prior, theta, incs, log_u, scale_fixed, bias_fixed, beta, path):
    """Compiled random walk on the grouped likelihood; ``path`` of 0 rows records nothing."""
    values, n_pos, n_all = groups
    n_bias = prior.n_bias
    learn_scale = prior.learn_scale
    bias_sigma = prior.bias_sigma
    scale_sigma = prior.scale_sigma
    record = path.shape[0] > 0
    theta = theta.copy()
    s = math.exp(theta[n_bias]) if learn_scale else scale_fixed
    b0 = theta[0] if n_bias else bias_fixed
    ll = _grouped_loglik(values, n_pos, n_all, s, b0)
    cur = beta * ll + _theta_logprior_1(theta, n_bias, learn_scale, bias_sigma, scale_sigma)
    n_acc = 0
    prop = np.empty_like(theta)
    for t in range(incs.shape[0]):
        for k in range(theta.shape[0]):
            prop[k] = theta[k] + incs[t, k]
        lp_prior = _theta_logprior_1(prop, n_bias, learn_scale, bias_sigma, scale_sigma)
        if np.isfinite(lp_prior):
            s = math.exp(prop[n_bias]) if learn_scale else scale_fixed
            b0 = prop[0] if n_bias else bias_fixed
            ll_prop = _grouped_loglik(values, n_pos, n_all, s, b0)
            new = beta * ll_prop + lp_prior
            if log_u[t] < new - cur:
                theta[:] = prop
                cur = new
                n_acc += 1
        if record:
            path[t, :] = theta
    return theta, n_acc


@nb.njit(cache=True, nogil=True)
def _theta_logprior_n(theta, n_bias, learn_scale, bias_sigma, scale_sigma):
    """theta_logprior for any number of bias entries (compiled)."""
    lp = 0.0
    for k in range(n_bias):
        b = theta[k]
        lp += -0.5 * _LOG_2PI - math.log(bias_sigma) - 0.5 * (b / bias_sigma) ** 2
    if learn_scale:
        lp += _log_scale_logprior(theta[n_bias], scale_sigma)
    return lp


def grouped_loglik(groups, scale: float, bias) -> float:
    """Log-likelihood from :func:`grouped_rows` output at ``(scale, bias)``."""
    values, n_pos, n_all = groups
    b0 = float(np.asarray(bias, dtype=np.float64).reshape(-1)[0])
    return float(_grouped_loglik(values, n_pos, n_all, float(scale), b0))


# --- softmax likelihood on a grid of activations --------------------------------------------
# When every input level is an integer multiple of 1/L (L a power of two: raw integers, digits'
# k/16), every activation is too, exactly, and exp(scale * (A - rowmax)) takes only the values
# exp(-scale * j / L) for integer j: one table of exponentials per proposal replaces the n C
# exponentials of each likelihood (13,470 for digits at ~9 ns each on the benchmark machine).
_GRID_DENOMS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0)
_GRID_MAX = 1 << 16  # most table entries (range of scale-free logit gaps, in steps of 1/L)
_grid_cache: dict = {}  # id(levels) -> (levels, L)
_USE_GRID = True  # tests switch the grid path off to compare it with the direct likelihood


def activation_grid(problem: FlipProblem) -> float:
    """The smallest power of two L <= 1024 with every ``levels * L`` an exact integer, or 0."""
    levels = problem.levels
    hit = _grid_cache.get(id(levels))
    if hit is not None and hit[0] is levels:
        return hit[1]
    denom = 0.0
    top = float(np.abs(levels).max()) if levels.size else 0.0
    for cand in _GRID_DENOMS:
        q = levels * cand
        if np.all(q == np.round(q)) and top * cand * max(problem.n_features, 1) < 2.0**52:
            denom = cand
            break
    if len(_grid_cache) > 64:
        _grid_cache.clear()
    _grid_cache[id(levels)] = (levels, denom)
    return denom


@nb.njit(cache=True, nogil=True)
def _grid_index(A, denom, idx, amax):
    """Fill ``idx[i, k] = (max_k A[k, i] - A[k, i]) * denom`` (exact integers).

    Returns the largest index, or -1 when an activation is off the grid or the range exceeds
    the table.
    """
    c, n = A.shape
    for i in range(n):
        amax[i] = A[0, i]
    for k in range(1, c):
        for i in range(n):
            if A[k, i] > amax[i]:
                amax[i] = A[k, i]
    jmax = 0
    for k in range(c):
        for i in range(n):
            d = (amax[i] - A[k, i]) * denom
            j = int(d + 0.5)
            if j != d or j >= _GRID_MAX:
                return -1
            idx[i, k] = j
            if j > jmax:
                jmax = j
    return jmax


@nb.njit(cache=True, nogil=True)
def _loglik_grid(A, idx, amax, jmax, denom, scale, bias, ycol, table, eb):
    """Softmax log-likelihood from the grid index.

    The same value as ``_loglik_only`` up to rounding: each term's exponential is computed once
    per distinct gap instead of once per entry.
    """
    c, n = A.shape
    step = scale / denom
    for j in range(jmax + 1):
        table[j] = math.exp(-step * j)
    bmax = bias[0]
    for k in range(1, c):
        if bias[k] > bmax:
            bmax = bias[k]
    for k in range(c):
        eb[k] = math.exp(bias[k] - bmax)
    total = 0.0
    for i in range(n):
        acc = 0.0
        for k in range(c):
            acc += table[idx[i, k]] * eb[k]
        if acc > 1e-300:
            lse = scale * amax[i] + bmax + math.log(acc)
        else:  # every term underflowed (extreme bias gaps): this row the direct way
            lse = _row_lse(A, i, scale, bias, False, -1, 0.0)
        yk = ycol[i]
        total += scale * A[yk, i] + bias[yk] - lse
    return total


@nb.njit(cache=True, nogil=True)
def _walk_loglik(A, ycol, reference, idx, amax, jmax, denom, table, eb, scale, bias):
    """The random walk's likelihood: from the activation grid when ``jmax >= 0``, else direct."""
    if jmax >= 0:
        return _loglik_grid(A, idx, amax, jmax, denom, scale, bias, ycol, table, eb)
    return _loglik_only(A, scale, bias, ycol, reference)


@nb.njit(cache=True, nogil=True)
def _rwm_kernel(
    A, ycol, reference, idx, amax, jmax, denom, prior, theta, incs, log_u, scale_fixed,
    bias_fixed, beta, path,
):
    """Compiled random walk on theta at cached activations: one O(n C) likelihood per proposal.

    ``idx``, ``amax``, ``jmax``, ``denom`` come from :func:`_grid_index` (``jmax = -1``: no grid,
    the likelihood computed directly).
    """
    n_bias = prior.n_bias
    learn_scale = prior.learn_scale
    record = path.shape[0] > 0
    table = np.empty(max(jmax + 1, 0))
    eb = np.empty(A.shape[0])
    theta = theta.copy()
    bias = bias_fixed.copy()
    for k in range(n_bias):
        bias[k] = theta[k]
    s = math.exp(theta[n_bias]) if learn_scale else scale_fixed
    ll = _walk_loglik(A, ycol, reference, idx, amax, jmax, denom, table, eb, s, bias)
    lp_theta = _theta_logprior_n(theta, n_bias, learn_scale, prior.bias_sigma, prior.scale_sigma)
    cur = beta * ll + lp_theta
    n_acc = 0
    prop = np.empty_like(theta)
    for t in range(incs.shape[0]):
        for k in range(theta.shape[0]):
            prop[k] = theta[k] + incs[t, k]
        lp_prior = _theta_logprior_n(prop, n_bias, learn_scale, prior.bias_sigma, prior.scale_sigma)
        if np.isfinite(lp_prior):
            for k in range(n_bias):
                bias[k] = prop[k]
            s = math.exp(prop[n_bias]) if learn_scale else scale_fixed
            ll_prop = _walk_loglik(A, ycol, reference, idx, amax, jmax, denom, table, eb, s, bias)
            new = beta * ll_prop + lp_prior
            if log_u[t] < new - cur:
                theta[:] = prop
                cur = new
                ll = ll_prop
                n_acc += 1
        if record:
            path[t, :] = theta
    return theta, n_acc, ll


def continuous_rwm(
    problem: FlipProblem,
    state: FlipState,
    prior: ContinuousPrior,
    theta,
    chol: np.ndarray,
    normals: np.ndarray,
    log_uniforms: np.ndarray,
    beta: float = 1.0,
    path: np.ndarray | None = None,
):
    """Random-walk Metropolis on ``theta`` at the cached activations (``w`` fixed).

    Each proposal is ``theta + chol @ normals[t]`` and costs one O(n C) log-likelihood (O(G)
    when :func:`grouped_rows` finds G distinct integer activations, e.g. binary inputs); the
    state's probabilities are re-derived once at the end when anything moved.

    Parameters
    ----------
    problem : FlipProblem
    state : FlipState
        Its ``scale``/``bias`` must correspond to ``theta``.
    prior : ContinuousPrior
    theta : ndarray of shape (dim,)
    chol : ndarray of shape (dim, dim)
        Proposal covariance factor (lower triangular); must not depend on ``theta``.
    normals : ndarray of shape (n_steps, dim)
    log_uniforms : ndarray of shape (n_steps,)
        ``log`` of uniforms for the accept tests.
    beta : float
        Inverse temperature of the likelihood.
    path : ndarray of shape (n_steps, dim), optional
        Filled with ``theta`` after each proposal (for adaptation).

    Returns
    -------
    state : FlipState
        With the new scale, bias, probabilities and log-likelihood.
    theta : ndarray of shape (dim,)
    n_accepted : int
    """
    theta = np.array(theta, dtype=np.float64, copy=True)
    incs = np.array([chol @ normals[t] for t in range(normals.shape[0])], dtype=np.float64)
    incs = incs.reshape(normals.shape[0], theta.shape[0])
    out_path = path if path is not None else np.empty((0, theta.shape[0]))
    groups = grouped_rows(problem, state.A)  # logistic forms only: at most one bias entry
    if groups is not None:
        # compiled loop over the grouped likelihood (O(G) per proposal instead of O(n C)), without the
        # Python overhead of ~20 us per proposal (which was a quarter of an MNIST56 step)
        theta, n_acc = _grouped_rwm_kernel(
            groups,
            prior._replace(
                bias_sigma=float(prior.bias_sigma), scale_sigma=float(prior.scale_sigma)
            ),
            theta,
            incs,
            np.asarray(log_uniforms, dtype=np.float64),
            float(state.scale),
            float(state.bias[0]),
            float(beta),
            out_path,
        )
        if n_acc:
            s, b = split_theta(prior, theta, state.scale, state.bias)
            state = set_continuous(problem, state, s, b)
        return state, theta, int(n_acc)

    A = state.A
    denom = 0.0 if problem.reference or not _USE_GRID else activation_grid(problem)
    idx, amax, jmax = np.empty((0, 0), dtype=np.int32), np.empty(0), -1
    if denom:
        idx = np.empty((A.shape[1], A.shape[0]), dtype=np.int32)
        amax = np.empty(A.shape[1])
        jmax = _grid_index(A, denom, idx, amax)  # -1: off the grid, the direct likelihood
    theta, n_acc, ll = _rwm_kernel(
        A,
        problem.ycol,
        problem.reference,
        idx,
        amax,
        jmax,
        denom,
        prior._replace(bias_sigma=float(prior.bias_sigma), scale_sigma=float(prior.scale_sigma)),
        theta,
        incs,
        np.asarray(log_uniforms, dtype=np.float64),
        float(state.scale),
        np.ascontiguousarray(state.bias, dtype=np.float64),
        float(beta),
        out_path,
    )
    if n_acc:
        s, b = split_theta(prior, theta, state.scale, state.bias)
        state = set_continuous(problem, state, s, b)
    else:
        state = state._replace(loglik=float(ll))
    return state, theta, n_acc
