"""The incremental flip kernels' problem and cached state: construction, from-scratch maths, refresh.

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
When ``|a|`` can exceed 10 (large scale or inputs) the factor form loses relative precision for
rows with ``P[i, c]`` near 1, and Δ is taken instead from the logits as a difference of row
log-sum-exps per nonzero (slower, exact to rounding).

Kernels follow BlackJAX's split: a static :class:`FlipProblem`, a :class:`FlipState`,
:func:`init` and :func:`sweep` returning ``(state, info)``. For speed the state's arrays are
updated in place (``sweep`` returns the same arrays with new scalars). Randomness is passed in
(feature order, within-feature order, uniforms), so the kernels are deterministic functions of
their inputs.

Examples
--------
>>> import numpy as np
>>> from bayesbin.samplers import kernels as fk
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
    "RefreshInfo",
    "build_problem",
    "init",
    "refresh",
    "set_continuous",
    "exact_loglik",
    "exact_logprior",
    "delta_logprior",
    "continuous_loglik",
    "continuous_loglik_grad",
    "activations",
    "effective_weights",
    "ensure_table",
]

# Largest log-magnitude a block product of flip factors may reach before its logarithm is taken.
_BLOCK_LOG_BUDGET = 600.0


_MAX_BLOCK = 1024


# Largest |a| = unit * scale * max|x| for the factor form 1 + P (e^a - 1): a down-move factor has
# absolute rounding error ~2 eps, hence relative error up to 2 eps e^{|a|} when P ~ 1
# (<= 1e-11 per nonzero here, tested). Beyond it, Δ comes from the logits (log-sum-exp) per
# nonzero, about ten times slower. At 6 a posterior with scale 4-7 on [0, 1] inputs (digits)
# switched paths from step to step.
_FAST_MAX_STEP = 10.0


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
    table : ndarray of shape (2, L), float64, or None
        ``expm1(-unit * scale * levels)`` and ``expm1(+unit * scale * levels)``; None after a
        scale change until a sweep needs it (:func:`ensure_table`).
    block : int
        Rows per logarithm of a running product (0: per-nonzero log-sum-exp path, used when
        ``unit * scale * max|x| > 10``).
    """

    w: np.ndarray
    A: np.ndarray
    P: np.ndarray
    scale: float
    bias: np.ndarray
    loglik: float
    table: np.ndarray
    block: int


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
    if reference:
        for i in range(n):
            eta = scale * A[0, i] + bias[0]
            total += (eta if ycol[i] == 0 else 0.0) - _softplus(eta)
        return total
    # class-outer loops walk A's rows contiguously; per row the same operations in the same
    # order as a row-outer loop, so the result is bitwise the same
    m = np.full(n, -np.inf)
    for k in range(c):
        for i in range(n):
            v = scale * A[k, i] + bias[k]
            if v > m[i]:
                m[i] = v
    s = np.zeros(n)
    for k in range(c):
        for i in range(n):
            s[i] += math.exp(scale * A[k, i] + bias[k] - m[i])
    for i in range(n):
        yk = ycol[i]
        total += scale * A[yk, i] + bias[yk] - m[i] - math.log(s[i])
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


def _block_for(problem: FlipProblem, scale: float) -> int:
    """Rows per logarithm of a running product (0: the per-nonzero log-sum-exp path)."""
    amax = problem.unit * abs(scale) * problem.xmax
    if amax == 0.0:
        return _MAX_BLOCK
    if amax > _FAST_MAX_STEP:
        return 0  # per-nonzero log-sum-exp path
    return int(min(_MAX_BLOCK, max(1, _BLOCK_LOG_BUDGET // amax)))


def _flip_table(problem: FlipProblem, scale: float) -> np.ndarray:
    a = problem.unit * scale * problem.levels
    table = np.empty((2, problem.levels.shape[0]))
    with np.errstate(over="ignore"):
        table[0] = np.expm1(-a)
        table[1] = np.expm1(a)
    return table


def _table_and_block(problem: FlipProblem, scale: float):
    return _flip_table(problem, scale), _block_for(problem, scale)


def ensure_table(problem: FlipProblem, state: FlipState) -> FlipState:
    """Return ``state`` with its flip table, computed if a scale change left it out.

    The table holds ``expm1(±unit * scale * level)`` for every distinct input level: as long as
    the data for continuous features, and needed only by sweeps, so a new scale (the random
    walk on theta, Newton steps) defers it to the next sweep.
    """
    if state.table is None:
        return state._replace(table=_flip_table(problem, state.scale))
    return state


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
        table, block = None, _block_for(problem, float(scale))  # the table when a sweep needs it
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
