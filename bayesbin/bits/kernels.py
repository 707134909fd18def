"""Compiled (numba, multi-threaded) popcount kernels behind :mod:`bayesbin.bits`.

Private module: the wrappers in :mod:`bayesbin.bits` validate every argument, so these kernels
trust their inputs (C-contiguous arrays of the documented dtypes and shapes, weight padding bits
zero).

Layouts. A bit vector of length D is ``n_words = ceil(D / 64)`` uint64 words, bit ``j`` at
position ``j % 64`` (LSB first) of word ``j // 64`` (see :func:`bayesbin.bits.pack_bits`).
Inputs are ``xp`` of shape (n, n_planes, n_words); weights are stored *transposed*, ``wt`` of
shape (n_words, C) with column ``c = s * R + r`` the score row ``r`` of draw ``s``, so that the
innermost loop runs over contiguous columns and vectorises (AVX-512 ``VPOPCNTQ`` where the CPU
has it). ``mask`` holds the valid bits of the last word; it is ANDed into the input's last word,
so input padding never changes a result (weight padding is zero by construction).

Scores. With ``a = sum_p 2**p popcount(x_p AND w)`` (bit-planes ``p``) or
``c = popcount(x XOR w)`` (``xor_mode``), the integer score of row ``i`` and column ``(s, r)`` is

* ``xor_mode``: ``alpha * c + offset[s, r]``  (``alpha = -2``, ``offset = D``: XNOR-popcount)
* otherwise:    ``alpha * a + beta * xcount[i] + offset[s, r]``

which covers every {0,1}/±1 weight x input combination exactly, in integers.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange
from numba.core import cgutils, types
from numba.extending import intrinsic

__all__ = [
    "ensemble_logistic",
    "ensemble_softmax",
    "pack_exact",
    "pack_exact_serial",
    "pack_levels",
    "pack_levels_serial",
    "pack_threshold",
    "pack_threshold_serial",
    "popcount64",
    "scores",
    "scores_serial",
]

_ROW_BLOCK = 8  # rows sharing one pass over a tile of weight columns
_TILE = 512  # weight columns per tile (x n_words x 8 bytes stays in L1/L2)


@intrinsic
def _ctpop64(typingctx, x):
    """LLVM ``ctpop`` on a uint64 (POPCNT / VPOPCNTQ where the CPU has them)."""
    if not isinstance(x, types.Integer):  # pragma: no cover - typing guard
        return None
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        (val,) = args
        val = context.cast(builder, val, signature.args[0], types.uint64)
        fnty = ir.FunctionType(ir.IntType(64), [ir.IntType(64)])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.ctpop.i64")
        return builder.call(fn, [val])

    return sig, codegen


@njit(inline="always", cache=True)
def popcount64(x):
    """Number of set bits of a uint64, as int64 (compiled; callable from numba code)."""
    return np.int64(_ctpop64(np.uint64(x)))


@njit(inline="always", cache=True)
def _pack_threshold_row(x, i, threshold, out):
    """Pack row ``i`` of ``x > threshold`` into ``out[i]``; return its NaN count."""
    d = x.shape[1]
    nan_count = 0
    for k in range(out.shape[1]):
        word = np.uint64(0)
        base = k * 64
        for j in range(min(64, d - base)):
            v = x[i, base + j]
            word |= np.uint64(v > threshold) << np.uint64(j)
            nan_count += v != v
        out[i, k] = word
    return nan_count


@njit(parallel=True, cache=True)
def pack_threshold(x, threshold, out):  # pragma: no cover - compiled
    """Pack ``x > threshold`` row-wise into ``out`` (n, n_words) uint64; return the NaN count."""
    bad = 0
    for i in prange(x.shape[0]):
        bad += _pack_threshold_row(x, i, threshold, out)
    return bad


@njit(cache=True)
def pack_threshold_serial(x, threshold, out):  # pragma: no cover - compiled
    """Single-threaded :func:`pack_threshold` for small inputs (no thread start-up)."""
    bad = 0
    for i in range(x.shape[0]):
        bad += _pack_threshold_row(x, i, threshold, out)
    return bad


@njit(inline="always", cache=True)
def _pack_exact_row(x, i, out):
    d = x.shape[1]
    a = 0
    b = 0
    c = 0
    u = 0
    for k in range(out.shape[1]):
        word = np.uint64(0)
        base = k * 64
        for j in range(min(64, d - base)):
            v = x[i, base + j]
            word |= np.uint64(v > 0) << np.uint64(j)
            a += (v != 0) & (v != 1)
            b += (v != 1) & (v != -1)
            c += (v - v) != 0
            u += (v < 0) | (v > 1)
        out[i, k] = word
    return a, b, c, u


@njit(parallel=True, cache=True)
def pack_exact(x, out):  # pragma: no cover - compiled
    """Pack ``x > 0`` row-wise into ``out`` and classify the values.

    Returns ``(n_not01, n_notpm1, n_nonfinite, n_outside_unit)``: how many values lie outside
    {0, 1}, outside {-1, +1}, are NaN or infinite, and lie outside [0, 1].
    """
    not01 = 0
    notpm1 = 0
    nonfinite = 0
    outside = 0
    for i in prange(x.shape[0]):
        a, b, c, u = _pack_exact_row(x, i, out)
        not01 += a
        notpm1 += b
        nonfinite += c
        outside += u
    return not01, notpm1, nonfinite, outside


@njit(cache=True)
def pack_exact_serial(x, out):  # pragma: no cover - compiled
    """Single-threaded :func:`pack_exact` for small inputs."""
    not01 = 0
    notpm1 = 0
    nonfinite = 0
    outside = 0
    for i in range(x.shape[0]):
        a, b, c, u = _pack_exact_row(x, i, out)
        not01 += a
        notpm1 += b
        nonfinite += c
        outside += u
    return not01, notpm1, nonfinite, outside


@njit(inline="always", cache=True)
def _pack_levels_row(x, i, divisor, out, q):
    """Pack the bit-planes of ``q = rint(x[i] * divisor)`` into ``out[i]``.

    Returns the number of values that are not exactly ``q / divisor`` with integer
    ``0 <= q < 2**n_planes``.
    """
    d = x.shape[1]
    n_planes, n_words = out.shape[1], out.shape[2]
    q_max = (1 << n_planes) - 1
    bad = 0
    for j in range(d):
        v = x[i, j]
        r = np.rint(v * divisor)
        ok = (r >= 0) & (r <= q_max) & (r / divisor == v)
        bad += not ok
        q[j] = np.int64(r) if ok else 0
    for p in range(n_planes):
        for k in range(n_words):
            word = np.uint64(0)
            base = k * 64
            for j in range(min(64, d - base)):
                word |= np.uint64((q[base + j] >> p) & 1) << np.uint64(j)
            out[i, p, k] = word
    return bad


@njit(parallel=True, cache=True)
def pack_levels(x, divisor, out):  # pragma: no cover - compiled
    """Bit-planes of integer levels: ``out[i, p]`` packs bit ``p`` of ``rint(x[i] * divisor)``.

    Returns the number of values that are not exactly ``q / divisor`` for an integer
    ``0 <= q < 2**n_planes`` (the planes are then meaningless).
    """
    bad = 0
    for i in prange(x.shape[0]):
        q = np.empty(x.shape[1], dtype=np.int64)
        bad += _pack_levels_row(x, i, divisor, out, q)
    return bad


@njit(cache=True)
def pack_levels_serial(x, divisor, out):  # pragma: no cover - compiled
    """Single-threaded :func:`pack_levels` for small inputs."""
    bad = 0
    q = np.empty(x.shape[1], dtype=np.int64)
    for i in range(x.shape[0]):
        bad += _pack_levels_row(x, i, divisor, out, q)
    return bad


@njit(inline="always", cache=True)
def _load_rows(xp, i0, nb, mask, xl):
    """Copy ``nb`` input rows into ``xl`` with the last word masked."""
    n_planes, n_words = xp.shape[1], xp.shape[2]
    for rb in range(nb):
        for p in range(n_planes):
            for k in range(n_words):
                xl[rb, p, k] = xp[i0 + rb, p, k]
            xl[rb, p, n_words - 1] &= mask


@njit(inline="always", cache=True)
def _tile_popcounts(xl, nb, wt, c0, tw, xor_mode, acc):
    """``acc[rb, t]`` = raw popcount of row ``rb`` against column ``c0 + t`` (t < tw)."""
    n_planes, n_words = xl.shape[1], xl.shape[2]
    for rb in range(nb):
        for t in range(tw):
            acc[rb, t] = 0
    for k in range(n_words):
        # 1-D views indexed from 0: contiguous vector loads (no gather for c0 + t)
        wrow = wt[k, c0 : c0 + tw]
        for rb in range(nb):
            arow = acc[rb, :tw]
            if xor_mode:
                xv = xl[rb, 0, k]
                for t in range(tw):
                    arow[t] += popcount64(xv ^ wrow[t])
            else:
                for p in range(n_planes):
                    xv = xl[rb, p, k]
                    for t in range(tw):
                        arow[t] += popcount64(xv & wrow[t]) << p


@njit(inline="always", cache=True)
def _scores_block(xp, xcount, wt, mask, xor_mode, alpha, beta, offset, blk, out):
    n, n_planes, n_words = xp.shape
    n_cols = wt.shape[1]
    i0 = blk * _ROW_BLOCK
    nb = min(_ROW_BLOCK, n - i0)
    xl = np.empty((_ROW_BLOCK, n_planes, n_words), dtype=np.uint64)
    acc = np.empty((_ROW_BLOCK, _TILE), dtype=np.int64)
    _load_rows(xp, i0, nb, mask, xl)
    for c0 in range(0, n_cols, _TILE):
        tw = min(_TILE, n_cols - c0)
        _tile_popcounts(xl, nb, wt, c0, tw, xor_mode, acc)
        for rb in range(nb):
            xc = beta * xcount[i0 + rb]
            for t in range(tw):
                out[i0 + rb, c0 + t] = alpha * acc[rb, t] + xc + offset[c0 + t]


@njit(parallel=True, cache=True)
def scores(xp, xcount, wt, mask, xor_mode, alpha, beta, offset):  # pragma: no cover - compiled
    """Integer scores of every input row against every weight column.

    Parameters
    ----------
    xp : uint64 (n, n_planes, n_words)
    xcount : int64 (n,)
    wt : uint64 (n_words, C)
    mask : uint64
    xor_mode : bool
    alpha, beta : int64
    offset : int64 (C,)

    Returns
    -------
    int64 (n, C)
    """
    n = xp.shape[0]
    out = np.empty((n, wt.shape[1]), dtype=np.int64)
    for blk in prange((n + _ROW_BLOCK - 1) // _ROW_BLOCK):
        _scores_block(xp, xcount, wt, mask, xor_mode, alpha, beta, offset, blk, out)
    return out


@njit(cache=True)
def scores_serial(xp, xcount, wt, mask, xor_mode, alpha, beta, offset):  # pragma: no cover
    """Single-threaded :func:`scores` for small inputs (no thread start-up)."""
    n = xp.shape[0]
    out = np.empty((n, wt.shape[1]), dtype=np.int64)
    for blk in range((n + _ROW_BLOCK - 1) // _ROW_BLOCK):
        _scores_block(xp, xcount, wt, mask, xor_mode, alpha, beta, offset, blk, out)
    return out


@njit(parallel=True, cache=True)
def ensemble_softmax(
    xp,
    xcount,
    wt_cm,
    n_classes,
    mask,
    xor_mode,
    alpha,
    beta,
    offset_cm,
    use_table,
    table,
    exp_bias_cm,
    scale,
    bias,
    divisor,
):  # pragma: no cover - compiled
    """Posterior-mean softmax probabilities of S packed draws (Bayesian model averaging).

    Here the weight columns are *class-major*: ``wt_cm`` of shape (n_words, K * S) has column
    ``r * S + s`` for class ``r`` of draw ``s``; ``offset_cm`` is (K, S) and ``exp_bias_cm``
    (K, S), so the per-draw softmax work vectorises across draws.

    Draw ``s`` has logits ``eta_k = scale[s] * (score_k / divisor) + bias[s, k]``. With
    ``use_table[s]`` (which needs ``scale[s] >= 0``) the terms ``exp(eta_k - M)``,
    ``M = scale[s] * max_k score_k / divisor + max_k bias[s, k]``, are read as
    ``table[s, max_k score_k - score_k] * exp_bias[s, k]`` with ``table[s, d] =
    exp(-scale[s] * d / divisor)`` (``d`` up to the score range, ``2 * spread``) and
    ``exp_bias[s, k] = exp(bias[s, k] - max_k bias[s, k])``: no ``exp`` per row. All terms are
    <= 1 (no overflow); where the normaliser would underflow (bias spreads beyond ~640) or the
    table is off, the direct formula is used.

    Returns
    -------
    float64 (n, K)
    """
    n, n_planes, n_words = xp.shape
    k_cls = n_classes
    n_draws = wt_cm.shape[1] // k_cls
    len_table = table.shape[1]
    table_flat = table.reshape(table.size)
    td = 128  # draws per tile (a multiple of the 8-lane x 4 unrolled vector loop)
    out = np.empty((n, k_cls), dtype=np.float64)
    n_blocks = (n + _ROW_BLOCK - 1) // _ROW_BLOCK
    for blk in prange(n_blocks):
        i0 = blk * _ROW_BLOCK
        nb = min(_ROW_BLOCK, n - i0)
        xl = np.empty((_ROW_BLOCK, n_planes, n_words), dtype=np.uint64)
        acc = np.empty((k_cls, _ROW_BLOCK, td), dtype=np.int64)
        e = np.empty((k_cls, td), dtype=np.float64)
        top = np.empty(td, dtype=np.int64)
        den = np.empty(td, dtype=np.float64)
        prob = np.zeros((_ROW_BLOCK, k_cls), dtype=np.float64)
        _load_rows(xp, i0, nb, mask, xl)
        for d0 in range(0, n_draws, td):
            nd = min(td, n_draws - d0)
            for r in range(k_cls):
                _tile_popcounts(xl, nb, wt_cm, r * n_draws + d0, nd, xor_mode, acc[r])
            n_direct = 0
            for t in range(nd):
                n_direct += not use_table[d0 + t]
            for rb in range(nb):
                xc = beta * xcount[i0 + rb]
                for r in range(k_cls):  # integer scores, vectorised over draws
                    arow = acc[r, rb, :nd]
                    orow = offset_cm[r, d0 : d0 + nd]
                    for t in range(nd):
                        arow[t] = alpha * arow[t] + xc + orow[t]
                a0 = acc[0, rb, :nd]
                for t in range(nd):
                    top[t] = a0[t]
                for r in range(1, k_cls):
                    arow = acc[r, rb, :nd]
                    for t in range(nd):
                        top[t] = max(top[t], arow[t])
                for t in range(nd):
                    den[t] = 0.0
                for r in range(k_cls):
                    arow = acc[r, rb, :nd]
                    ebrow = exp_bias_cm[r, d0 : d0 + nd]
                    erow = e[r, :nd]
                    for t in range(nd):
                        # 0 <= gap <= 2 * spread < len_table whenever use_table[s]
                        gap = min(top[t] - arow[t], len_table - 1)  # in bounds even if unused
                        idx = np.uint64((d0 + t) * len_table + gap)
                        erow[t] = table_flat[idx] * ebrow[t]
                        den[t] += erow[t]
                bad = n_direct
                for t in range(nd):
                    bad += not den[t] > 1e-280
                if bad:
                    for t in range(nd):
                        s = d0 + t
                        if use_table[s] and den[t] > 1e-280:
                            continue
                        m = -np.inf
                        for r in range(k_cls):
                            e[r, t] = scale[s] * (acc[r, rb, t] / divisor) + bias[s, r]
                            m = max(m, e[r, t])
                        den[t] = 0.0
                        for r in range(k_cls):
                            e[r, t] = np.exp(e[r, t] - m)
                            den[t] += e[r, t]
                for t in range(nd):
                    den[t] = 1.0 / den[t]
                for r in range(k_cls):
                    erow = e[r, :nd]
                    total = 0.0
                    for t in range(nd):
                        total += erow[t] * den[t]
                    prob[rb, r] += total
        for rb in range(nb):
            for r in range(k_cls):
                out[i0 + rb, r] = prob[rb, r] / n_draws
    return out


@njit(inline="always", cache=True)
def _expit(eta):
    if eta >= 0:
        return 1.0 / (1.0 + np.exp(-eta))
    z = np.exp(eta)
    return z / (1.0 + z)


@njit(parallel=True, cache=True)
def ensemble_logistic(
    xp,
    xcount,
    wt,
    n_rows,
    mask,
    xor_mode,
    alpha,
    beta,
    offset,
    two_output,
    use_table,
    table,
    zmin,
    scale,
    bias,
    divisor,
):  # pragma: no cover - compiled
    """Posterior-mean P(y = 1) of S packed logistic draws.

    ``z = score_0`` (single) or ``score_1 - score_0`` (``two_output``) and ``eta = scale[s] *
    (z / divisor) + bias[s]``. With ``use_table`` the sigmoid is read from ``table[s, z - zmin]``
    (precomputed by the caller with the same formula as the float64 reference), else computed.

    Returns
    -------
    float64 (n,)
    """
    n, n_planes, n_words = xp.shape
    n_cols = wt.shape[1]
    n_draws = n_cols // n_rows
    len_table = table.shape[1]
    draws_per_tile = max(1, _TILE // n_rows)
    tile = draws_per_tile * n_rows
    out = np.empty(n, dtype=np.float64)
    n_blocks = (n + _ROW_BLOCK - 1) // _ROW_BLOCK
    for blk in prange(n_blocks):
        i0 = blk * _ROW_BLOCK
        nb = min(_ROW_BLOCK, n - i0)
        xl = np.empty((_ROW_BLOCK, n_planes, n_words), dtype=np.uint64)
        acc = np.empty((_ROW_BLOCK, tile), dtype=np.int64)
        prob = np.zeros(_ROW_BLOCK, dtype=np.float64)
        _load_rows(xp, i0, nb, mask, xl)
        for d0 in range(0, n_draws, draws_per_tile):
            nd = min(draws_per_tile, n_draws - d0)
            _tile_popcounts(xl, nb, wt, d0 * n_rows, nd * n_rows, xor_mode, acc)
            for rb in range(nb):
                xc = beta * xcount[i0 + rb]
                for dd in range(nd):
                    s = d0 + dd
                    col = dd * n_rows
                    z = np.int64(0)
                    for r in range(n_rows):
                        v = alpha * acc[rb, col + r] + xc + offset[s, r]
                        if two_output and r == 0:
                            z -= v
                        else:
                            z += v
                    gap = z - zmin
                    if use_table and gap >= 0 and gap < len_table:
                        prob[rb] += table[s, gap]
                    else:
                        prob[rb] += _expit(scale[s] * (z / divisor) + bias[s])
        for rb in range(nb):
            out[i0 + rb] = prob[rb] / n_draws
    return out
