"""Compiled kernels for exact incremental single-site updates of binary weights (no PyMC here).

The model (one of bayesbin's linear forms) is reduced to ``C`` logit columns

    eta[i, c] = scale * A[c, i] + bias[c],      A = (x @ Weff).T   (scale-free, bias-free)

with ``C = K`` softmax columns, or ``C = 1`` for the logistic forms, where the Bernoulli
likelihood is a softmax over ``[0, eta]`` (an implicit reference class of logit 0). Every bit ``b``
of ``w`` (C-order flattening) belongs to one feature ``j``, one column ``c`` and has a sign
``sigma`` (``-1`` only for ``w[0, j]`` of the two-output logistic form); its effective weight is
``sigma * (unit * w + offset)`` with ``(unit, offset) = (1, 0)`` for ``{0,1}`` and ``(2, -1)``
for ``±1`` weights. Flipping bit ``b`` moves column ``c`` by ``a_i = m * scale * x[i, j]`` on the
rows where ``x[i, j] != 0``, ``m = sigma * unit * (1 - 2 w_b)``, and with the cached class
probabilities ``P[i, c] = softmax(eta_i)[c]``

    Δloglik = m * scale * sum_{i: y_i = c} x[i, j]  -  sum_{i in nz(j)} log(1 + P[i, c] (e^{a_i} - 1)).

The ``e^{a} - 1`` come from a table over the distinct nonzero values of ``x`` (pixel levels),
the logarithm is taken once per block of rows of a running product, and all bits of a feature get
their Δ in one pass over its nonzeros (recomputed only after an accepted flip). An accepted flip
rescales the row probabilities: ``P[i, :] /= f_i``, ``P[i, c] *= e^{a_i}``, ``A[c, i] += m x[i, j]``.
When ``|a|`` can exceed 6 (large scale or inputs) the factor form loses relative precision for
rows with ``P[i, c]`` near 1, and Δ is taken instead from the logits as a difference of row
log-sum-exps per nonzero (slower, exact to rounding).

Kernels follow BlackJAX's split: a static :class:`FlipProblem`, a :class:`FlipState`,
:func:`init` and :func:`sweep` returning ``(state, info)``. For speed the state's arrays are
updated in place (``sweep`` returns the same arrays with new scalars). Randomness is passed in
(feature order, within-feature order, uniforms), so the kernels are deterministic functions of
their inputs.

Likelihood-neutral group moves (:func:`likelihood_neutral_groups`, :func:`group_sweep`): some
groups of bits of one feature leave the likelihood exactly unchanged when they are all equal and
flip together, so the move between all-0 and all-1 is accepted on the prior change alone.
For the two-output logistic form the group is the pair ``w[0, j], w[1, j]`` (only
``w[1, j] - w[0, j]`` enters the logit; :func:`pair_sweep` is the pair-only special case); for
the softmax form it is the row ``w[j, :]`` of K bits: flipping all of them shifts every class
logit of every row by the same ``±unit * scale * x[i, j]``, which the softmax ignores. Single-site
updates can only cross between all-0 and all-1 through mixed states of possibly much lower
likelihood. ``sweep(..., mode="greedy")`` flips a bit only when ``Δ > 0`` (zero-temperature
polishing for mode finding).

Examples
--------
>>> import numpy as np
>>> from bayesbin import _flipkernel as fk
>>> rng = np.random.default_rng(0)
>>> x = rng.integers(0, 3, size=(40, 4)).astype(float)
>>> y = rng.integers(0, 3, size=40)
>>> prob = fk.build_problem(x, y, form="softmax", encoding="01", n_classes=3, prior_p=0.5)
>>> state = fk.init(prob, np.zeros(12, np.uint8), scale=0.5, bias=np.zeros(3))
>>> order, uniforms = fk.draw_scan(prob, rng, "random")
>>> state, info = fk.sweep(prob, state, order, uniforms, beta=1.0, mode="gibbs")
>>> bool(abs(state.loglik - fk.exact_loglik(prob, state.w, 0.5, np.zeros(3))) < 1e-9)
True
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba as nb
import numpy as np

__all__ = [
    "FlipProblem",
    "FlipState",
    "SweepInfo",
    "RefreshInfo",
    "build_problem",
    "init",
    "refresh",
    "set_continuous",
    "sweep",
    "draw_scan",
    "exact_loglik",
    "exact_logprior",
    "delta_loglik",
    "delta_logprior",
    "flip_delta",
    "likelihood_neutral_groups",
    "group_sweep",
    "likelihood_neutral_pairs",
    "pair_sweep",
    "continuous_loglik",
    "continuous_loglik_grad",
    "activations",
    "effective_weights",
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
]

# Largest log-magnitude a block product of flip factors may reach before its logarithm is taken.
_BLOCK_LOG_BUDGET = 600.0
_MAX_BLOCK = 1024
# Largest |a| = unit * scale * max|x| for the factor form 1 + P (e^a - 1): a down-move factor has
# absolute rounding error ~2 eps, hence relative error up to 2 eps e^{|a|} when P ~ 1
# (<= 1e-13 per nonzero here). Beyond it, Δ comes from the logits (log-sum-exp) per nonzero.
_FAST_MAX_STEP = 6.0

MODE_GIBBS = 0
MODE_METROPOLIS = 1
MODE_GREEDY = 2
_MODES = {"gibbs": MODE_GIBBS, "metropolis": MODE_METROPOLIS, "greedy": MODE_GREEDY}


class FlipProblem(NamedTuple):
    """Static description of one model: sparse columns of ``x``, labels, bit layout, prior.

    Attributes
    ----------
    n_rows, n_features, n_cols : int
        ``n``, ``D`` and the number ``C`` of logit columns (K for softmax, 1 for logistic).
    reference : bool
        Whether the softmax includes an implicit logit-0 class (logistic forms).
    indptr : ndarray of shape (D + 1,), int64
        CSC column pointers of the nonzeros of ``x``.
    rows : ndarray of shape (nnz,), int32
        Row index of each nonzero, ascending within a column.
    codes : ndarray of shape (nnz,), uint8, uint16 or int32
        Index of each nonzero's value in ``levels``.
    levels : ndarray of shape (L,), float64
        Distinct nonzero values of ``x``.
    xmax : float
        ``max |x|``.
    ycol : ndarray of shape (n,), int32
        Column of each row's label (``-1``: the reference class).
    sxy : ndarray of shape (D, C), float64
        ``sum_{i: ycol_i = c} x[i, j]``.
    bit_feature, bit_col : ndarray of shape (n_bits,), int32
        Feature and column of each bit (C-order flattening of ``w``).
    bit_sign : ndarray of shape (n_bits,), int8
        ``sigma * unit``: the column moves by ``bit_sign * (1 - 2 w) * scale * x`` on a flip.
    unit, offset : int
        Effective weight ``unit * w + offset`` (1, 0 for "01"; 2, -1 for "pm1").
    group_ptr : ndarray of shape (D + 1,), int64
        Bits of feature ``j`` are ``group_bits[group_ptr[j]:group_ptr[j + 1]]``.
    group_bits : ndarray of shape (n_bits,), int32
    prior_logit : ndarray of shape (n_bits,), float64
        ``log p - log(1 - p)`` (``±inf`` for p in {0, 1}).
    log_p1, log_p0 : ndarray of shape (n_bits,), float64
        ``log p`` and ``log(1 - p)``.
    active : ndarray of shape (n_bits,), uint8
        1 for bits with ``0 < p < 1`` (updated by sweeps), 0 for frozen bits.
    forced : ndarray of shape (n_bits,), uint8
        The only feasible value of a frozen bit.
    weight_shape : tuple of int
        Shape of ``w``.
    distinct_cols : bool
        Whether the bits of each feature sit in distinct columns (softmax): then all columns'
        Δ sums come from one vectorised pass.
    """

    n_rows: int
    n_features: int
    n_cols: int
    reference: bool
    indptr: np.ndarray
    rows: np.ndarray
    codes: np.ndarray
    levels: np.ndarray
    xmax: float
    ycol: np.ndarray
    sxy: np.ndarray
    bit_feature: np.ndarray
    bit_col: np.ndarray
    bit_sign: np.ndarray
    unit: int
    offset: int
    group_ptr: np.ndarray
    group_bits: np.ndarray
    prior_logit: np.ndarray
    log_p1: np.ndarray
    log_p0: np.ndarray
    active: np.ndarray
    forced: np.ndarray
    weight_shape: tuple
    distinct_cols: bool

    @property
    def n_bits(self) -> int:
        """Number of bits in ``w``."""
        return int(self.bit_feature.shape[0])

    @property
    def nnz(self) -> int:
        """Number of nonzeros of ``x``."""
        return int(self.rows.shape[0])


class FlipState(NamedTuple):
    """Cached sampler state of one chain (arrays updated in place by :func:`sweep`).

    Attributes
    ----------
    w : ndarray of shape (n_bits,), uint8
        Current bits, C-order flattening of ``w``.
    A : ndarray of shape (C, n), float64
        Scale-free activations ``(x @ Weff).T``, class-major (a flip touches one contiguous row).
        For the softmax form (no reference class) only up to a per-row constant common to all
        columns: a group move (:func:`group_sweep`) shifts the true ``A[:, i]`` by
        ``±unit * x[i, j]`` in every column and leaves the cache as it is. Everything derived
        from ``A`` (probabilities, log-likelihood, Δ of flips, gradients and Fisher information
        in bias and scale) is invariant to such a shift; :func:`refresh` removes it.
    P : ndarray of shape (n, C), float64
        Class probabilities ``softmax(eta)`` of the logit columns.
    scale : float
    bias : ndarray of shape (C,), float64
    loglik : float
        Log-likelihood (untempered) of the cached state, updated incrementally.
    table : ndarray of shape (2, L), float64
        ``expm1(-unit * scale * levels)`` and ``expm1(+unit * scale * levels)``.
    block : int
        Rows per logarithm of a running product (0: per-nonzero log-sum-exp path, used when
        ``unit * scale * max|x| > 6``).
    """

    w: np.ndarray
    A: np.ndarray
    P: np.ndarray
    scale: float
    bias: np.ndarray
    loglik: float
    table: np.ndarray
    block: int


class SweepInfo(NamedTuple):
    """What one sweep did.

    Attributes
    ----------
    n_flips : int
        Accepted flips.
    n_proposed : int
        Bits visited.
    n_passes : int
        Passes over a feature's nonzeros to compute Δ (one per feature plus one per flip that
        left bits of the feature to visit).
    """

    n_flips: int
    n_proposed: int
    n_passes: int


class RefreshInfo(NamedTuple):
    """Drift of the cache found by a refresh from scratch.

    Attributes
    ----------
    loglik_drift : float
        ``|cached - exact| / max(1, |exact|)`` of the log-likelihood.
    prob_drift : float
        ``max |P_cached - P_exact|``.
    activation_drift : float
        ``max |A_cached - A_exact|``; for the softmax form modulo a per-row constant common to
        all columns (``max_i (max_c d_ic - min_c d_ic) / 2``, ``d = A_cached - A_exact``), the
        shift that group moves leave in the cache on purpose.
    """

    loglik_drift: float
    prob_drift: float
    activation_drift: float


# --------------------------------------------------------------------------------------------
# Problem construction
# --------------------------------------------------------------------------------------------


def _bit_layout(form: str, n_features: int, n_classes: int):
    d = n_features
    if form == "softmax":
        k = n_classes
        feat = np.repeat(np.arange(d, dtype=np.int32), k)
        col = np.tile(np.arange(k, dtype=np.int32), d)
        sign = np.ones(d * k, dtype=np.int8)
        return feat, col, sign, k, False, (d, k)
    if form == "single":
        return (
            np.arange(d, dtype=np.int32),
            np.zeros(d, np.int32),
            np.ones(d, np.int8),
            1,
            True,
            (d,),
        )
    if form == "two_output":
        feat = np.tile(np.arange(d, dtype=np.int32), 2)
        col = np.zeros(2 * d, np.int32)
        sign = np.concatenate([-np.ones(d, np.int8), np.ones(d, np.int8)])
        return feat, col, sign, 1, True, (2, d)
    raise ValueError(f"form must be 'softmax', 'single' or 'two_output'; got {form!r}")


def build_problem(
    x, y, *, form: str, encoding: str, n_classes: int = 2, prior_p=0.5
) -> FlipProblem:
    """Build the static :class:`FlipProblem` of a bayesbin linear model.

    Parameters
    ----------
    x : ndarray of shape (n, D)
        Finite inputs (dense; only the nonzeros are kept).
    y : ndarray of shape (n,), int
        Class codes (``0..K-1``; ``{0, 1}`` for the logistic forms).
    form : {"softmax", "single", "two_output"}
    encoding : {"01", "pm1"}
    n_classes : int
        K for the softmax form (ignored otherwise).
    prior_p : float or ndarray broadcastable to the shape of ``w``
        Bernoulli prior P(w = 1).

    Returns
    -------
    FlipProblem
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"x must be 2-D (n, D); got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("x must be finite")
    n, d = x.shape
    y = np.asarray(y).astype(np.int64, copy=False)
    if y.shape != (n,):
        raise ValueError(f"y must have shape ({n},); got {y.shape}")
    if encoding not in ("01", "pm1"):
        raise ValueError(f"encoding must be '01' or 'pm1'; got {encoding!r}")
    feat, col, sign, n_cols, reference, wshape = _bit_layout(form, d, int(n_classes))
    if reference:
        if np.any((y != 0) & (y != 1)):
            raise ValueError("y must be in {0, 1} for the logistic forms")
        ycol = np.where(y == 1, 0, -1).astype(np.int32)
    else:
        if np.any((y < 0) | (y >= n_cols)):
            raise ValueError(f"y must be in 0..{n_cols - 1}")
        ycol = y.astype(np.int32)
    unit, offset = (1, 0) if encoding == "01" else (2, -1)
    sign = (sign * unit).astype(np.int8)

    # CSC of x: nonzeros column by column, rows ascending.
    fj, fi = np.nonzero(x.T)
    vals = x[fi, fj]
    indptr = np.zeros(d + 1, dtype=np.int64)
    np.cumsum(np.bincount(fj, minlength=d), out=indptr[1:])
    levels, inverse = np.unique(vals, return_inverse=True)
    n_levels = levels.shape[0]
    if n_levels <= 256:
        codes = inverse.astype(np.uint8)
    elif n_levels <= 65536:
        codes = inverse.astype(np.uint16)
    else:
        codes = inverse.astype(np.int32)
    rows = fi.astype(np.int32)
    xmax = float(np.max(np.abs(levels))) if n_levels else 0.0

    yc = ycol[fi]
    lab = yc >= 0
    sxy = np.bincount(fj[lab] * n_cols + yc[lab], weights=vals[lab], minlength=d * n_cols).reshape(
        d, n_cols
    )

    p = np.broadcast_to(np.asarray(prior_p, dtype=np.float64), wshape).reshape(-1)
    if np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("prior_p must be in [0, 1]")
    with np.errstate(divide="ignore"):
        log_p1 = np.log(p)
        log_p0 = np.log1p(-p)
    prior_logit = log_p1 - log_p0
    active = ((p > 0) & (p < 1)).astype(np.uint8)
    forced = (p >= 1).astype(np.uint8)

    group_bits = np.argsort(feat, kind="stable").astype(np.int32)
    group_ptr = np.zeros(d + 1, dtype=np.int64)
    np.cumsum(np.bincount(feat, minlength=d), out=group_ptr[1:])
    return FlipProblem(
        n_rows=n,
        n_features=d,
        n_cols=n_cols,
        reference=reference,
        indptr=indptr,
        rows=rows,
        codes=codes,
        levels=levels.astype(np.float64),
        xmax=xmax,
        ycol=ycol,
        sxy=np.ascontiguousarray(sxy),
        bit_feature=feat,
        bit_col=col,
        bit_sign=sign,
        unit=unit,
        offset=offset,
        group_ptr=group_ptr,
        group_bits=group_bits,
        prior_logit=prior_logit,
        log_p1=log_p1,
        log_p0=log_p0,
        active=active,
        forced=forced,
        weight_shape=tuple(int(s) for s in wshape),
        distinct_cols=form == "softmax",
    )


# --------------------------------------------------------------------------------------------
# From-scratch quantities
# --------------------------------------------------------------------------------------------


def effective_weights(problem: FlipProblem, w) -> np.ndarray:
    """Effective weights per feature and logit column.

    Parameters
    ----------
    problem : FlipProblem
    w : ndarray of shape (n_bits,) or ``weight_shape``, 0/1

    Returns
    -------
    ndarray of shape (D, C), float64
        ``Weff[j, c] = sum_{b: feature j, column c} sigma_b (unit w_b + offset)``.
    """
    wf = np.asarray(w).reshape(-1).astype(np.float64)
    sig = problem.bit_sign.astype(np.float64) / problem.unit
    contrib = sig * (problem.unit * wf + problem.offset)
    weff = np.zeros(problem.n_features * problem.n_cols)
    np.add.at(
        weff, problem.bit_feature.astype(np.int64) * problem.n_cols + problem.bit_col, contrib
    )
    return weff.reshape(problem.n_features, problem.n_cols)


@nb.njit(cache=True, nogil=True)
def _activations(indptr, rows, codes, levels, weff, out):
    d, c = weff.shape
    out[:, :] = 0.0
    for j in range(d):
        for t in range(indptr[j], indptr[j + 1]):
            i = rows[t]
            xv = levels[codes[t]]
            for k in range(c):
                wv = weff[j, k]
                if wv != 0.0:
                    out[k, i] += xv * wv
    return out


def activations(problem: FlipProblem, w) -> np.ndarray:
    """Scale-free, bias-free activations ``A = (x @ Weff).T`` from scratch (class-major).

    Returns
    -------
    ndarray of shape (C, n), float64
    """
    out = np.empty((problem.n_cols, problem.n_rows))
    return _activations(
        problem.indptr,
        problem.rows,
        problem.codes,
        problem.levels,
        effective_weights(problem, w),
        out,
    )


@nb.njit(cache=True, nogil=True)
def _probs_loglik(A, scale, bias, ycol, reference, P):
    """Write softmax probabilities of ``eta = scale A + bias`` into P; return the log-likelihood."""
    c, n = A.shape
    total = 0.0
    for i in range(n):
        if reference:
            eta = scale * A[0, i] + bias[0]
            # log(1 + e^eta), stable
            if eta > 0:
                sp = eta + math.log1p(math.exp(-eta))
                P[i, 0] = 1.0 / (1.0 + math.exp(-eta))
            else:
                e = math.exp(eta)
                sp = math.log1p(e)
                P[i, 0] = e / (1.0 + e)
            total += (eta if ycol[i] == 0 else 0.0) - sp
        else:
            m = -np.inf
            for k in range(c):
                v = scale * A[k, i] + bias[k]
                if v > m:
                    m = v
            s = 0.0
            for k in range(c):
                e = math.exp(scale * A[k, i] + bias[k] - m)
                P[i, k] = e
                s += e
            inv = 1.0 / s
            for k in range(c):
                P[i, k] *= inv
            yk = ycol[i]
            total += scale * A[yk, i] + bias[yk] - m - math.log(s)
    return total


@nb.njit(cache=True, nogil=True)
def _softplus(eta):
    """``log(1 + e^eta)``, stable for either sign."""
    if eta > 0:
        return eta + math.log1p(math.exp(-eta))
    return math.log1p(math.exp(eta))


@nb.njit(cache=True, nogil=True)
def _loglik_only(A, scale, bias, ycol, reference):
    c, n = A.shape
    total = 0.0
    for i in range(n):
        if reference:
            eta = scale * A[0, i] + bias[0]
            total += (eta if ycol[i] == 0 else 0.0) - _softplus(eta)
        else:
            m = -np.inf
            for k in range(c):
                v = scale * A[k, i] + bias[k]
                if v > m:
                    m = v
            s = 0.0
            for k in range(c):
                s += math.exp(scale * A[k, i] + bias[k] - m)
            yk = ycol[i]
            total += scale * A[yk, i] + bias[yk] - m - math.log(s)
    return total


@nb.njit(cache=True, nogil=True)
def _loglik_grad(A, scale, bias, ycol, reference, gbias):
    """Log-likelihood, its gradient in bias (written to gbias) and in scale (returned)."""
    c, n = A.shape
    total = 0.0
    gscale = 0.0
    gbias[:] = 0.0
    for i in range(n):
        if reference:
            eta = scale * A[0, i] + bias[0]
            if eta > 0:
                sp = eta + math.log1p(math.exp(-eta))
                p = 1.0 / (1.0 + math.exp(-eta))
            else:
                e = math.exp(eta)
                sp = math.log1p(e)
                p = e / (1.0 + e)
            yv = 1.0 if ycol[i] == 0 else 0.0
            total += yv * eta - sp
            r = yv - p
            gbias[0] += r
            gscale += r * A[0, i]
        else:
            m = -np.inf
            for k in range(c):
                v = scale * A[k, i] + bias[k]
                if v > m:
                    m = v
            s = 0.0
            for k in range(c):
                s += math.exp(scale * A[k, i] + bias[k] - m)
            inv = 1.0 / s
            yk = ycol[i]
            total += scale * A[yk, i] + bias[yk] - m - math.log(s)
            gscale += A[yk, i]
            gbias[yk] += 1.0
            for k in range(c):
                p = math.exp(scale * A[k, i] + bias[k] - m) * inv
                gbias[k] -= p
                gscale -= p * A[k, i]
    return total, gscale


def _as_bias(problem: FlipProblem, bias) -> np.ndarray:
    b = np.zeros(problem.n_cols) if bias is None else np.asarray(bias, dtype=np.float64)
    return np.ascontiguousarray(
        np.broadcast_to(b.reshape(-1) if b.ndim else b, (problem.n_cols,)), dtype=np.float64
    )


def continuous_loglik(problem: FlipProblem, A: np.ndarray, scale: float, bias) -> float:
    """Log-likelihood at cached activations ``A`` for a (scale, bias), O(n C), no matmul.

    Parameters
    ----------
    problem : FlipProblem
    A : ndarray of shape (C, n), float64
        Class-major activations (``FlipState.A``).
    scale : float
    bias : float or ndarray of shape (C,)

    Returns
    -------
    float
    """
    return float(
        _loglik_only(A, float(scale), _as_bias(problem, bias), problem.ycol, problem.reference)
    )


def continuous_loglik_grad(problem: FlipProblem, A: np.ndarray, scale: float, bias):
    """Log-likelihood and its gradients in ``scale`` and ``bias`` at cached activations.

    Returns
    -------
    loglik : float
    dscale : float
    dbias : ndarray of shape (C,)
    """
    g = np.zeros(problem.n_cols)
    ll, gs = _loglik_grad(
        A, float(scale), _as_bias(problem, bias), problem.ycol, problem.reference, g
    )
    return float(ll), float(gs), g


def exact_loglik(problem: FlipProblem, w, scale: float = 1.0, bias=None) -> float:
    """Log-likelihood of bits ``w`` computed from scratch (no cache).

    Parameters
    ----------
    problem : FlipProblem
    w : ndarray of shape (n_bits,) or ``weight_shape``, 0/1
    scale : float
    bias : float or ndarray of shape (C,), optional

    Returns
    -------
    float
    """
    return continuous_loglik(problem, activations(problem, w), scale, bias)


def exact_logprior(problem: FlipProblem, w) -> float:
    """Bernoulli log-prior of the bits ``w`` (``-inf`` for infeasible bits)."""
    wf = np.asarray(w).reshape(-1)
    with np.errstate(invalid="ignore"):
        terms = np.where(wf == 1, problem.log_p1, problem.log_p0)
    return float(terms.sum())


def delta_logprior(problem: FlipProblem, w, bit: int) -> float:
    """Change of the Bernoulli log-prior when bit ``bit`` of ``w`` flips."""
    wb = int(np.asarray(w).reshape(-1)[bit])
    return float(problem.prior_logit[bit] if wb == 0 else -problem.prior_logit[bit])


# --------------------------------------------------------------------------------------------
# Cache construction
# --------------------------------------------------------------------------------------------


def _table_and_block(problem: FlipProblem, scale: float):
    amax = problem.unit * abs(scale) * problem.xmax
    a = problem.unit * scale * problem.levels
    table = np.empty((2, problem.levels.shape[0]))
    with np.errstate(over="ignore"):
        table[0] = np.expm1(-a)
        table[1] = np.expm1(a)
    if amax == 0.0:
        block = _MAX_BLOCK
    elif amax > _FAST_MAX_STEP:
        block = 0  # per-nonzero log-sum-exp path
    else:
        block = int(min(_MAX_BLOCK, max(1, _BLOCK_LOG_BUDGET // amax)))
    return table, block


def init(problem: FlipProblem, w, scale: float = 1.0, bias=None) -> FlipState:
    """Build the cache from scratch.

    Parameters
    ----------
    problem : FlipProblem
    w : ndarray of shape (n_bits,) or ``weight_shape``, 0/1
        Current bits (copied). Frozen bits (p in {0, 1}) are set to their only feasible value.
    scale : float
    bias : float or ndarray of shape (C,), optional

    Returns
    -------
    FlipState
    """
    wf = np.asarray(w).reshape(-1).astype(np.uint8).copy()
    if wf.shape[0] != problem.n_bits:
        raise ValueError(f"w has {wf.shape[0]} bits; the problem has {problem.n_bits}")
    frozen = problem.active == 0
    wf[frozen] = problem.forced[frozen]
    A = activations(problem, wf)
    P = np.empty((problem.n_rows, problem.n_cols))
    b = _as_bias(problem, bias)
    ll = _probs_loglik(A, float(scale), b, problem.ycol, problem.reference, P)
    table, block = _table_and_block(problem, float(scale))
    return FlipState(
        w=wf, A=A, P=P, scale=float(scale), bias=b, loglik=float(ll), table=table, block=block
    )


def set_continuous(problem: FlipProblem, state: FlipState, scale: float, bias) -> FlipState:
    """Re-derive probabilities and log-likelihood for a new (scale, bias) from cached ``A``.

    O(n C) exponentials; ``A`` and ``w`` are kept.
    """
    b = _as_bias(problem, bias)
    ll = _probs_loglik(state.A, float(scale), b, problem.ycol, problem.reference, state.P)
    if float(scale) != state.scale:
        table, block = _table_and_block(problem, float(scale))
    else:
        table, block = state.table, state.block
    return state._replace(scale=float(scale), bias=b, loglik=float(ll), table=table, block=block)


def refresh(problem: FlipProblem, state: FlipState) -> tuple[FlipState, RefreshInfo]:
    """Recompute the cache from scratch and report how far it had drifted."""
    fresh = init(problem, state.w, state.scale, state.bias)
    if state.A.size == 0:
        a_drift = 0.0
    elif problem.reference:
        a_drift = float(np.max(np.abs(state.A - fresh.A)))
    else:
        d = state.A - fresh.A
        a_drift = float(np.max(d.max(axis=0) - d.min(axis=0))) / 2.0
    info = RefreshInfo(
        loglik_drift=abs(state.loglik - fresh.loglik) / max(1.0, abs(fresh.loglik)),
        prob_drift=float(np.max(np.abs(state.P - fresh.P))) if state.P.size else 0.0,
        activation_drift=a_drift,
    )
    # Write into the existing buffers so views held elsewhere stay valid.
    state.A[...] = fresh.A
    state.P[...] = fresh.P
    return state._replace(loglik=fresh.loglik), info


# --------------------------------------------------------------------------------------------
# Δ of flips and sweeps
# --------------------------------------------------------------------------------------------


@nb.njit(cache=True, nogil=True)
def _row_lse(A, i, scale, bias, reference, col, shift):
    """log-sum-exp of row i's logits (column ``col`` moved by ``shift``; reference logit 0)."""
    ncol = A.shape[0]
    m = 0.0 if reference else -np.inf
    for k in range(ncol):
        v = scale * A[k, i] + bias[k]
        if k == col:
            v += shift
        if v > m:
            m = v
    tot = math.exp(-m) if reference else 0.0
    for k in range(ncol):
        v = scale * A[k, i] + bias[k]
        if k == col:
            v += shift
        tot += math.exp(v - m)
    return m + math.log(tot)


@nb.njit(cache=True, nogil=True)
def _row_probs(A, i, scale, bias, reference, P):
    lse = _row_lse(A, i, scale, bias, reference, -1, 0.0)
    for k in range(A.shape[0]):
        P[i, k] = math.exp(scale * A[k, i] + bias[k] - lse)


@nb.njit(cache=True, nogil=True)
def _group_deltas(
    lo,
    hi,
    rows,
    codes,
    levels,
    P,
    A,
    bias,
    reference,
    table,
    block,
    scale,
    nsel,
    sel_col,
    sel_row,
    sel_mult,
    acc,
    logsum,
):
    """Sum over nonzeros lo..hi of log(1 + P[i, col] (e^{a} - 1)) for nsel bits at once."""
    for q in range(nsel):
        acc[q] = 1.0
        logsum[q] = 0.0
    if block > 0:
        cnt = 0
        for t in range(lo, hi):
            i = rows[t]
            code = codes[t]
            for q in range(nsel):
                acc[q] *= 1.0 + P[i, sel_col[q]] * table[sel_row[q], code]
            cnt += 1
            if cnt == block:
                for q in range(nsel):
                    logsum[q] += math.log(acc[q])
                    acc[q] = 1.0
                cnt = 0
        for q in range(nsel):
            logsum[q] += math.log(acc[q])
    else:
        for t in range(lo, hi):
            i = rows[t]
            xv = levels[codes[t]]
            old = _row_lse(A, i, scale, bias, reference, -1, 0.0)
            for q in range(nsel):
                new = _row_lse(A, i, scale, bias, reference, sel_col[q], sel_mult[q] * scale * xv)
                logsum[q] += new - old


@nb.njit(cache=True, nogil=True)
def _apply_flip(
    lo, hi, rows, codes, levels, P, A, bias, reference, table, block, scale, col, trow, mult
):
    """Update P and A on the nonzero rows of a feature after bit (col, mult) flipped."""
    ncol = P.shape[1]
    for t in range(lo, hi):
        i = rows[t]
        code = codes[t]
        A[col, i] += mult * levels[code]
        if block > 0:
            e = table[trow, code]
            inv = 1.0 / (1.0 + P[i, col] * e)
            for k in range(ncol):
                P[i, k] *= inv
            P[i, col] *= 1.0 + e
        else:
            _row_probs(A, i, scale, bias, reference, P)


@nb.njit(cache=True, nogil=True, fastmath={"contract"})
def _dense_deltas(lo, hi, rows, codes, P, table, block, upf, acc, logsum):
    """Like ``_group_deltas`` for one bit per column: all C columns at once (vectorisable).

    Column ``c`` moves up (``upf[c] = 1``) or down (``upf[c] = 0``).
    """
    ncol = P.shape[1]
    for k in range(ncol):
        acc[k] = 1.0
        logsum[k] = 0.0
    cnt = 0
    for t in range(lo, hi):
        i = rows[t]
        code = codes[t]
        em = table[0, code]
        de = table[1, code] - em
        for k in range(ncol):
            acc[k] *= 1.0 + P[i, k] * (em + de * upf[k])
        cnt += 1
        if cnt == block:
            for k in range(ncol):
                logsum[k] += math.log(acc[k])
                acc[k] = 1.0
            cnt = 0
    for k in range(ncol):
        logsum[k] += math.log(acc[k])


@nb.njit(cache=True, nogil=True, fastmath={"contract"})
def _dense_flip_deltas(
    lo, hi, rows, codes, levels, P, A, table, block, col, trow, mult, upf, acc, logsum
):
    """Apply the flip of (col, mult) on each nonzero row, then accumulate the new Δ sums there."""
    ncol = P.shape[1]
    for k in range(ncol):
        acc[k] = 1.0
        logsum[k] = 0.0
    cnt = 0
    for t in range(lo, hi):
        i = rows[t]
        code = codes[t]
        e = table[trow, code]
        inv = 1.0 / (1.0 + P[i, col] * e)
        for k in range(ncol):
            P[i, k] *= inv
        P[i, col] *= 1.0 + e
        A[col, i] += mult * levels[code]
        em = table[0, code]
        de = table[1, code] - em
        for k in range(ncol):
            acc[k] *= 1.0 + P[i, k] * (em + de * upf[k])
        cnt += 1
        if cnt == block:
            for k in range(ncol):
                logsum[k] += math.log(acc[k])
                acc[k] = 1.0
            cnt = 0
    for k in range(ncol):
        logsum[k] += math.log(acc[k])


@nb.njit(cache=True, nogil=True)
def _sweep_kernel(
    indptr,
    rows,
    codes,
    levels,
    sxy,
    group_ptr,
    group_bits,
    bit_col,
    bit_sign,
    prior_logit,
    active,
    w,
    A,
    P,
    bias,
    reference,
    table,
    block,
    scale,
    feat_order,
    uniforms,
    beta,
    mode,
    dense,
):
    maxg = 0
    for j in range(group_ptr.shape[0] - 1):
        g = group_ptr[j + 1] - group_ptr[j]
        if g > maxg:
            maxg = g
    ncol = P.shape[1]
    nacc = max(maxg, ncol)
    sel_col = np.empty(nacc, np.int64)
    sel_row = np.empty(nacc, np.int64)
    sel_mult = np.empty(nacc, np.float64)
    acc = np.empty(nacc, np.float64)
    logsum = np.empty(nacc, np.float64)
    upf = np.zeros(ncol, np.float64)
    bits = np.empty(maxg, np.int64)
    dll_total = 0.0
    n_flips = 0
    n_prop = 0
    n_pass = 0
    for jj in range(feat_order.shape[0]):
        j = feat_order[jj]
        nbits = 0
        for gi in range(group_ptr[j], group_ptr[j + 1]):
            bb = group_bits[gi]
            if active[bb]:
                bits[nbits] = bb
                nbits += 1
        if nbits == 0:
            continue
        lo = indptr[j]
        hi = indptr[j + 1]
        if dense:
            # one bit per column: Δ sums indexed by column, kept fresh by the fused flip pass
            for q in range(nbits):
                bb = bits[q]
                m = bit_sign[bb] * (1 - 2 * np.int64(w[bb]))
                sel_col[q] = bit_col[bb]
                sel_row[q] = 1 if m > 0 else 0
                sel_mult[q] = m
                upf[bit_col[bb]] = 1.0 if m > 0 else 0.0
            _dense_deltas(lo, hi, rows, codes, P, table, block, upf, acc, logsum)
            n_pass += 1
        stale = not dense
        base = 0
        for q in range(nbits):
            bb = bits[q]
            if stale:
                # Δ sums for the bits not yet visited, at the current state
                nsel = nbits - q
                for r in range(nsel):
                    b2 = bits[q + r]
                    m = bit_sign[b2] * (1 - 2 * np.int64(w[b2]))
                    sel_col[r] = bit_col[b2]
                    sel_row[r] = 1 if m > 0 else 0
                    sel_mult[r] = m
                _group_deltas(
                    lo,
                    hi,
                    rows,
                    codes,
                    levels,
                    P,
                    A,
                    bias,
                    reference,
                    table,
                    block,
                    scale,
                    nsel,
                    sel_col,
                    sel_row,
                    sel_mult,
                    acc,
                    logsum,
                )
                n_pass += 1
                base = q
                stale = False
            if dense:
                col = sel_col[q]
                trow = sel_row[q]
                m = sel_mult[q]
                ls = logsum[col]
            else:
                r = q - base
                col = sel_col[r]
                trow = sel_row[r]
                m = sel_mult[r]
                ls = logsum[r]
            dll = m * scale * sxy[j, col] - ls
            dprior = prior_logit[bb] if w[bb] == 0 else -prior_logit[bb]
            delta = beta * dll + dprior
            u = uniforms[bb]
            n_prop += 1
            if mode == 0:
                # heat bath: flip with probability sigmoid(delta)
                if delta >= 0.0:
                    pflip = 1.0 / (1.0 + math.exp(-delta))
                else:
                    ed = math.exp(delta)
                    pflip = ed / (1.0 + ed)
                flip = u < pflip
            elif mode == 1:
                # Metropolized Gibbs: always propose the flip
                flip = delta >= 0.0 or u < math.exp(delta)
            else:
                # greedy (zero temperature): flip only on a strict increase
                flip = delta > 0.0
            if flip:
                w[bb] = 1 - w[bb]
                dll_total += dll
                n_flips += 1
                if dense:
                    upf[col] = 1.0 - upf[col]
                    if q < nbits - 1:
                        _dense_flip_deltas(
                            lo,
                            hi,
                            rows,
                            codes,
                            levels,
                            P,
                            A,
                            table,
                            block,
                            col,
                            trow,
                            m,
                            upf,
                            acc,
                            logsum,
                        )
                        n_pass += 1
                    else:
                        _apply_flip(
                            lo,
                            hi,
                            rows,
                            codes,
                            levels,
                            P,
                            A,
                            bias,
                            reference,
                            table,
                            block,
                            scale,
                            col,
                            trow,
                            m,
                        )
                else:
                    _apply_flip(
                        lo,
                        hi,
                        rows,
                        codes,
                        levels,
                        P,
                        A,
                        bias,
                        reference,
                        table,
                        block,
                        scale,
                        col,
                        trow,
                        m,
                    )
                    if q < nbits - 1:
                        stale = True
    return dll_total, n_flips, n_prop, n_pass


def _mode_code(mode: str) -> int:
    if not isinstance(mode, str) or mode not in _MODES:
        raise ValueError(f"mode must be one of {tuple(_MODES)}; got {mode!r}")
    return _MODES[mode]


# --------------------------------------------------------------------------------------------
# Likelihood-neutral group flips (two-output pairs, softmax rows)
# --------------------------------------------------------------------------------------------


def _feature_bits(problem: FlipProblem, j: int) -> np.ndarray:
    return problem.group_bits[problem.group_ptr[j] : problem.group_ptr[j + 1]]


def likelihood_neutral_groups(problem: FlipProblem) -> np.ndarray:
    """Groups of bits whose joint flip never changes the likelihood when they are all equal.

    * Two-output logistic form: the pair ``w[0, j], w[1, j]`` (two active bits of one feature in
      the same logit column with opposite signs) contributes ``sigma unit (w_b - w_a)`` to the
      effective weight, zero whenever ``w_a == w_b``: flipping both from ``(0, 0)`` to
      ``(1, 1)`` or back leaves ``A``, ``P`` and the log-likelihood exactly unchanged.
    * Softmax form (no reference class): the row ``w[j, :]`` of K >= 2 active bits, one per
      class column, all with the same sign. Flipping all of them while they are equal moves
      every class logit of row ``i`` by the same ``±unit * scale * x[i, j]``; the softmax is
      invariant to that, so ``P`` and the log-likelihood are exactly unchanged (``A`` moves by a
      per-row constant common to all columns, which the cache does not track, see
      :class:`FlipState`).
    * Single-vector logistic form: no groups.

    Features with a frozen bit (prior p in {0, 1}) or any other bit layout contribute no group.

    Parameters
    ----------
    problem : FlipProblem

    Returns
    -------
    ndarray of shape (n_groups, g), int32
        One row of bit indices (C-order flattening of ``w``) per group, ascending feature;
        ``g`` is the number of bits per feature (2 for the two-output form, K for softmax,
        1 for the single form, which has no groups).
    """
    d = problem.n_features
    g = int(problem.n_bits // d) if d else 0
    out = []
    for j in range(d):
        bits = _feature_bits(problem, j)
        if bits.shape[0] != g or not np.all(problem.active[bits]):
            continue
        if problem.reference:
            if g != 2:
                continue
            a, b = int(bits[0]), int(bits[1])
            if problem.bit_col[a] == problem.bit_col[b] and int(problem.bit_sign[a]) == -int(
                problem.bit_sign[b]
            ):
                out.append((a, b))
        else:
            cols = np.sort(problem.bit_col[bits])
            if (
                g >= 2
                and g == problem.n_cols
                and np.array_equal(cols, np.arange(g))
                and np.all(problem.bit_sign[bits] == problem.bit_sign[bits[0]])
            ):
                out.append(tuple(int(b) for b in bits))
    return np.array(out, dtype=np.int32).reshape(-1, max(g, 1))


@nb.njit(cache=True, nogil=True)
def _group_kernel(groups, w, prior_logit, uniforms, mode):
    n_flips = 0
    g = groups.shape[1]
    for p in range(groups.shape[0]):
        v = w[groups[p, 0]]
        equal = True
        d = 0.0
        for q in range(g):
            b = groups[p, q]
            if w[b] != v:
                equal = False
                break
            d += prior_logit[b]
        if not equal:
            continue
        if v == 1:
            d = -d
        if mode == 0:
            if d >= 0.0:
                flip = uniforms[p] < 1.0 / (1.0 + math.exp(-d))
            else:
                ed = math.exp(d)
                flip = uniforms[p] < ed / (1.0 + ed)
        elif mode == 1:
            flip = d >= 0.0 or uniforms[p] < math.exp(d)
        else:
            flip = d > 0.0
        if flip:
            for q in range(g):
                w[groups[p, q]] = 1 - v
            n_flips += 1
    return n_flips


def group_sweep(
    problem: FlipProblem,
    state: FlipState,
    groups: np.ndarray,
    uniforms: np.ndarray,
    mode: str = "metropolis",
) -> tuple[FlipState, int]:
    """Flip all-equal likelihood-neutral groups (all 0 <-> all 1) by an exact move, in place.

    For every group whose bits are all equal the joint flip changes the log-likelihood by
    exactly 0 (see :func:`likelihood_neutral_groups`), so ``Δ`` is the change of the Bernoulli
    log-prior only, ``±sum_b logit p_b`` (``+`` from all 0 to all 1); any likelihood temperature
    drops out. The proposal is a deterministic involution on the set of all-equal groups, hence
    symmetric. Groups are disjoint and independent given the rest, so their order does not
    matter. Only ``state.w`` changes: ``A``, ``P`` and ``loglik`` are untouched (for the softmax
    form ``A`` is then off by a per-row constant common to all columns, which nothing derived
    from it sees). Cost ``O(n_groups * g)``.

    Parameters
    ----------
    problem : FlipProblem
    state : FlipState
        ``state.w`` is updated in place.
    groups : ndarray of shape (n_groups, g), int
        From :func:`likelihood_neutral_groups` (or :func:`likelihood_neutral_pairs`).
    uniforms : ndarray of shape (>= n_groups,), float64
        One uniform per group (ignored by ``"greedy"``).
    mode : {"metropolis", "gibbs", "greedy"}
        Accept with ``min(1, e^Δ)`` (default), with ``sigmoid(Δ)`` (heat bath), or iff
        ``Δ > 0``.

    Returns
    -------
    state : FlipState
    n_flips : int
        Groups flipped.
    """
    mcode = _mode_code(mode)
    groups = np.asarray(groups)
    if groups.ndim != 2:
        raise ValueError(f"groups must be a 2-D array (n_groups, g); got shape {groups.shape}")
    groups = np.ascontiguousarray(groups, dtype=np.int32)
    if groups.size and (groups.min() < 0 or groups.max() >= problem.n_bits):
        raise ValueError(f"groups must hold bit indices in 0..{problem.n_bits - 1}")
    u = np.asarray(uniforms, dtype=np.float64).reshape(-1)
    if u.shape[0] < groups.shape[0]:
        raise ValueError(f"need {groups.shape[0]} uniforms; got {u.shape[0]}")
    if groups.shape[0] == 0 or groups.shape[1] == 0:
        return state, 0
    n = _group_kernel(groups, state.w, problem.prior_logit, u, mcode)
    return state, int(n)


def likelihood_neutral_pairs(problem: FlipProblem) -> np.ndarray:
    """Pairs of bits whose joint flip never changes the likelihood when they are equal.

    The two-output special case of :func:`likelihood_neutral_groups`: two active bits of the
    same feature, in the same logit column, with opposite signs (the ``w[0, j]``, ``w[1, j]`` of
    the two-output logistic form) contribute ``sigma unit (w_b - w_a)`` to the effective weight:
    zero whenever ``w_a == w_b``, so flipping both from ``(0, 0)`` to ``(1, 1)`` or back leaves
    ``A``, ``P`` and the log-likelihood exactly unchanged. Other forms (softmax included, whose
    groups are rows of K bits) give no pairs.

    Returns
    -------
    ndarray of shape (n_pairs, 2), int32
        Bit indices ``(a, b)`` (C-order flattening of ``w``); empty for other forms.
    """
    if not problem.reference:
        return np.zeros((0, 2), dtype=np.int32)
    return likelihood_neutral_groups(problem).reshape(-1, 2)


def pair_sweep(
    problem: FlipProblem,
    state: FlipState,
    pairs: np.ndarray,
    uniforms: np.ndarray,
    mode: str = "metropolis",
) -> tuple[FlipState, int]:
    """Flip equal likelihood-neutral pairs ``(0, 0) <-> (1, 1)`` by an exact MH move, in place.

    :func:`group_sweep` with groups of two: for every pair with ``w_a == w_b`` the joint flip
    changes the log-likelihood by exactly 0 (see :func:`likelihood_neutral_pairs`), so ``Δ`` is
    the change of the Bernoulli log-prior only (``±(logit p_a + logit p_b)``; any likelihood
    temperature drops out). The proposal is a deterministic involution on the set of equal pairs,
    hence symmetric. Pairs are independent given the rest, so their order does not matter; ``A``,
    ``P`` and ``loglik`` are untouched.

    Parameters
    ----------
    problem : FlipProblem
    state : FlipState
        ``state.w`` is updated in place.
    pairs : ndarray of shape (n_pairs, 2), int32
        From :func:`likelihood_neutral_pairs`.
    uniforms : ndarray of shape (n_pairs,), float64
    mode : {"metropolis", "gibbs", "greedy"}
        Accept with ``min(1, e^Δ)`` (default), with ``sigmoid(Δ)``, or iff ``Δ > 0``.

    Returns
    -------
    state : FlipState
    n_flips : int
        Pairs flipped.
    """
    pairs = np.asarray(pairs, dtype=np.int32).reshape(-1, 2)
    return group_sweep(problem, state, pairs, uniforms, mode)


def draw_scan(problem: FlipProblem, rng: np.random.Generator, scan: str = "random"):
    """Draw one sweep's randomness: a feature order and one uniform per bit.

    ``"random"``: features in a random order and, within each feature, its bits in a random order
    (a fresh permutation each sweep); ``"systematic"``: features ``0..D-1``, bits in C order.
    The uniforms are always drawn from ``rng`` (``n_bits`` of them).

    Returns
    -------
    order : tuple (feature_order ndarray (D,) int64, group_bits ndarray (n_bits,) int32)
    uniforms : ndarray of shape (n_bits,), float64
    """
    if scan == "random":
        feat_order = rng.permutation(problem.n_features).astype(np.int64)
        keys = rng.random(problem.n_bits)
        gb = np.lexsort((keys, problem.bit_feature)).astype(np.int32)
    elif scan == "systematic":
        feat_order = np.arange(problem.n_features, dtype=np.int64)
        gb = problem.group_bits
    else:
        raise ValueError(f"scan must be 'random' or 'systematic'; got {scan!r}")
    uniforms = rng.random(problem.n_bits)
    return (feat_order, gb), uniforms


def sweep(
    problem: FlipProblem,
    state: FlipState,
    order,
    uniforms: np.ndarray,
    beta: float = 1.0,
    mode: str = "gibbs",
) -> tuple[FlipState, SweepInfo]:
    """One sweep of single-site updates over all active bits, in place.

    Parameters
    ----------
    problem : FlipProblem
    state : FlipState
        Updated in place (``w``, ``A``, ``P``); the returned state carries the new ``loglik``.
    order : tuple of (ndarray (D,) int64, ndarray (n_bits,) int32)
        Feature order and bits grouped by feature in visiting order (see :func:`draw_scan`).
    uniforms : ndarray of shape (n_bits,), float64
        One uniform per bit.
    beta : float
        Inverse temperature of the likelihood: ``Δ = beta * Δloglik + Δlogprior``.
    mode : {"gibbs", "metropolis", "greedy"}
        Heat-bath (flip with probability ``sigmoid(Δ)``), Metropolized Gibbs (propose the
        flip, accept with ``min(1, e^Δ)``) or greedy ascent (flip iff ``Δ > 0``; the uniforms
        are ignored; an optimiser, not a sampler).

    Returns
    -------
    state : FlipState
    info : SweepInfo
    """
    mcode = _mode_code(mode)
    feat_order, gbits = order
    dll, n_flips, n_prop, n_pass = _sweep_kernel(
        problem.indptr,
        problem.rows,
        problem.codes,
        problem.levels,
        problem.sxy,
        problem.group_ptr,
        gbits,
        problem.bit_col,
        problem.bit_sign,
        problem.prior_logit,
        problem.active,
        state.w,
        state.A,
        state.P,
        state.bias,
        problem.reference,
        state.table,
        state.block,
        state.scale,
        feat_order,
        np.asarray(uniforms, dtype=np.float64),
        float(beta),
        mcode,
        bool(problem.distinct_cols and state.block > 0),
    )
    return state._replace(loglik=state.loglik + dll), SweepInfo(
        int(n_flips), int(n_prop), int(n_pass)
    )


def delta_loglik(problem: FlipProblem, state: FlipState, bit: int) -> float:
    """Exact Δloglik of flipping one bit, from the cache (the state is not changed).

    Parameters
    ----------
    problem : FlipProblem
    state : FlipState
    bit : int
        Index into the C-order flattening of ``w``.

    Returns
    -------
    float
    """
    bit = int(bit)
    j = int(problem.bit_feature[bit])
    c = int(problem.bit_col[bit])
    m = float(problem.bit_sign[bit] * (1 - 2 * int(state.w[bit])))
    acc = np.empty(1)
    logsum = np.empty(1)
    _group_deltas(
        problem.indptr[j],
        problem.indptr[j + 1],
        problem.rows,
        problem.codes,
        problem.levels,
        state.P,
        state.A,
        state.bias,
        problem.reference,
        state.table,
        state.block,
        state.scale,
        1,
        np.array([c], np.int64),
        np.array([1 if m > 0 else 0], np.int64),
        np.array([m]),
        acc,
        logsum,
    )
    return float(m * state.scale * problem.sxy[j, c] - logsum[0])


def flip_delta(problem: FlipProblem, state: FlipState, bit: int, beta: float = 1.0) -> float:
    """Δ of the (tempered) log-posterior for flipping one bit: ``beta Δloglik + Δlogprior``."""
    return beta * delta_loglik(problem, state, bit) + delta_logprior(problem, state.w, bit)


# --------------------------------------------------------------------------------------------
# Continuous parameters (bias, log scale) at cached activations
# --------------------------------------------------------------------------------------------


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
    """``theta = (bias[:n_bias]..., log scale)`` of the moved parameters (inverse of
    :func:`split_theta`); an empty array when nothing is moved."""
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
def _grouped_rwm_kernel(
    values,
    n_pos,
    n_all,
    theta,
    incs,
    log_u,
    n_bias,
    learn_scale,
    bias_sigma,
    scale_sigma,
    scale_fixed,
    bias_fixed,
    beta,
    record,
    path,
):
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


def grouped_loglik(groups, scale: float, bias) -> float:
    """Log-likelihood from :func:`grouped_rows` output at ``(scale, bias)``."""
    values, n_pos, n_all = groups
    b0 = float(np.asarray(bias, dtype=np.float64).reshape(-1)[0])
    return float(_grouped_loglik(values, n_pos, n_all, float(scale), b0))


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
    groups = grouped_rows(problem, state.A)  # logistic forms only: at most one bias entry
    if groups is not None:
        # compiled loop over the grouped likelihood: the same arithmetic as below, without the
        # Python overhead of ~20 us per proposal (which was a quarter of an MNIST56 step)
        incs = np.array([chol @ normals[t] for t in range(normals.shape[0])], dtype=np.float64)
        incs = incs.reshape(normals.shape[0], theta.shape[0])
        record = path is not None
        out_path = path if record else np.empty((0, theta.shape[0]))
        theta, n_acc = _grouped_rwm_kernel(
            groups[0],
            groups[1],
            groups[2],
            theta,
            incs,
            np.asarray(log_uniforms, dtype=np.float64),
            prior.n_bias,
            prior.learn_scale,
            float(prior.bias_sigma),
            float(prior.scale_sigma),
            float(state.scale),
            float(state.bias[0]),
            float(beta),
            record,
            out_path,
        )
        if n_acc:
            s, b = split_theta(prior, theta, state.scale, state.bias)
            state = set_continuous(problem, state, s, b)
        return state, theta, int(n_acc)

    def loglik(s, b):
        return continuous_loglik(problem, state.A, s, b)

    ll = loglik(state.scale, state.bias)
    cur = beta * ll + theta_logprior(prior, theta)
    n_acc = 0
    for t in range(normals.shape[0]):
        prop = theta + chol @ normals[t]
        lp_prior = theta_logprior(prior, prop)
        if np.isfinite(lp_prior):
            s, b = split_theta(prior, prop, state.scale, state.bias)
            ll_prop = loglik(s, b)
            new = beta * ll_prop + lp_prior
            if log_uniforms[t] < new - cur:
                theta, cur, ll = prop, new, ll_prop
                n_acc += 1
        if path is not None:
            path[t] = theta
    if n_acc:
        s, b = split_theta(prior, theta, state.scale, state.bias)
        state = set_continuous(problem, state, s, b)
    else:
        state = state._replace(loglik=ll)
    return state, theta, n_acc
