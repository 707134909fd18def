"""Single-site flips: the exact Δ of a bit from the cache, the compiled sweep, the scan order.

See :mod:`bayesbin.samplers.kernels.problem` for the maths. ``sweep(..., mode="greedy")`` flips a
bit only when ``Δ > 0`` (zero-temperature polishing for mode finding).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba as nb
import numpy as np

from bayesbin.samplers.kernels.problem import (
    FlipProblem,
    FlipState,
    delta_logprior,
    ensure_table,
)

__all__ = [
    "MODE_GIBBS",
    "MODE_METROPOLIS",
    "MODE_GREEDY",
    "SweepInfo",
    "draw_scan",
    "sweep",
    "delta_loglik",
    "flip_delta",
    "mode_code",
]

MODE_GIBBS = 0


MODE_METROPOLIS = 1


MODE_GREEDY = 2


_MODES = {"gibbs": MODE_GIBBS, "metropolis": MODE_METROPOLIS, "greedy": MODE_GREEDY}


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
def _sweep_kernel(problem, state, feat_order, group_bits, uniforms, beta, mode, dense):
    """One compiled sweep: the problem's and the state's arrays come in as their NamedTuples."""
    indptr = problem.indptr
    rows = problem.rows
    codes = problem.codes
    levels = problem.levels
    sxy = problem.sxy
    group_ptr = problem.group_ptr
    bit_col = problem.bit_col
    bit_sign = problem.bit_sign
    prior_logit = problem.prior_logit
    active = problem.active
    reference = problem.reference
    w = state.w
    A = state.A
    P = state.P
    bias = state.bias
    table = state.table
    block = state.block
    scale = state.scale
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


def mode_code(mode: str) -> int:
    """Return the kernels' integer code of a flip rule ("gibbs", "metropolis", "greedy")."""
    if not isinstance(mode, str) or mode not in _MODES:
        raise ValueError(f"mode must be one of {tuple(_MODES)}; got {mode!r}")
    return _MODES[mode]


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
    mcode = mode_code(mode)
    feat_order, gbits = order
    state = ensure_table(problem, state)
    dll, n_flips, n_prop, n_pass = _sweep_kernel(
        problem,
        state,
        feat_order,
        gbits,
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
    state = ensure_table(problem, state)
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
