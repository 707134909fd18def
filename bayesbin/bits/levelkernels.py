"""Compiled (numba) kernels for real inputs that are exact integer levels ``q / divisor``.

Private module: the wrappers validate every argument, so these kernels trust their inputs.

Detection. :func:`levels255` turns float32 or float64 values into levels ``q = round(255 x)``
(uint8) and counts the values that are not exactly ``k / 255``: for float64 the test is
``q / 255.0 == x``, for float32 ``float32(q) / float32(255) == x`` (the float32 division is
correctly rounded, so this is the float32 nearest ``k / 255``, which is what ``pixels / 255``
in float32 gives; ``float32(k / 255.0)`` rounds to the same value for every k, tested).
:func:`levels_int` does the same for integer values ``0 <= q < 2**16`` (uint16).

Narrow layers (at most 16 units, 8-bit levels): :func:`dense_narrow` takes float32 dot
products of the levels with the ±1 / {0, 1} weights; every partial sum is an integer below
2**24, so each float32 operation is exact whatever the order (the one place where fastmath
reassociation is allowed), and float ``k / 255`` pixels are turned into levels and checked on
the fly, in the same pass.

Wide layers: scores by level accumulation (exact integers). A weight ``w`` in {-1, +1} is stored
as the int8 mask ``m = -1`` (all bits set once sign-extended) for +1 and ``0`` for -1, so
``sum_j q_j w_j = 2 sum_j (q_j & m_j) - sum_j q_j`` ({0, 1} weights: ``sum_j (q_j & m_j)``
alone). The kernels add ``q_j & m[j, :]``
for the non-zero levels of a row into per-unit accumulators, vectorised across units:
int16 accumulators for 8-bit levels (flushed into int32 every 128 terms, so they never
overflow: ``128 * 255 < 2**15``), int32 for 16-bit levels. Zero levels (most MNIST pixels) cost
nothing. This is cheaper than bit-planes here (8 popcount planes cost more than a float32
matmul on AVX2 machines without a vector popcount; measured in benchmarks/bench_bits.py).
The 3x3 convolution adds ``q * w`` with ±1 weights directly (int16 lanes when ``9 C q_max``
fits, no separate sum of ``q``: the scores come out ready for pooling and the threshold).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from bayesbin.bits.netkernels import _IMAGE_BLOCK, pool_buffers, pool_pack, signed_thresholds

__all__ = [
    "conv_levels",
    "conv_levels_serial",
    "dense_levels",
    "dense_levels_serial",
    "dense_narrow",
    "dense_narrow_serial",
    "levels255",
    "levels255_serial",
    "levels_int",
    "levels_int_serial",
]

_FLUSH = 128  # int16 terms of at most 255 before a flush: 128 * 255 = 32640 < 32767


_INV255 = 1.0 / 255.0


@njit(inline="always", cache=True)
def _level255(v):
    """``(k, ok)``: ``k = round(255 v)`` and whether ``v`` is exactly the level ``k / 255``.

    Branch-free, in the input's own precision (vectorises): ``255 v + 0.5`` is within 1e-4 of
    ``k + 0.5`` for an exact level, so truncation gives ``k``; the clamp sends NaN, infinities
    and values outside [0, 1] to some ``k`` whose level differs from ``v``. The float64 check
    is ``k / 255.0 == v``; the float32 one ``float32(k * (1 / 255)) == v``, which equals
    ``float32(k) / float32(255) == v`` for every ``k`` (no k / 255 lies near a float32 rounding
    boundary: its binary digits repeat with period 8; tested for all 256 levels) and avoids a
    division.
    """
    real = type(v)
    f = v * real(255.0) + real(0.5)
    f = min(max(f, real(0.0)), real(255.5))
    k = np.int32(f)
    if real is np.float32:
        back = np.float32(np.float64(k) * _INV255)
    else:
        back = k / 255.0
    return k, back == v


@njit(inline="always", cache=True)
def _levels255_row(x, i, q):
    """``q[i] = round(255 x[i])``; return the number of values that are not exactly k / 255."""
    bad = 0
    for j in range(x.shape[1]):
        k, ok = _level255(x[i, j])
        bad += not ok
        q[i, j] = np.uint8(k)
    return bad


@njit(parallel=True, cache=True)
def levels255(x, q):  # pragma: no cover - compiled
    """Levels of ``k / 255`` values: ``q`` (n, F) uint8; returns the count of other values."""
    bad = 0
    for i in prange(x.shape[0]):
        bad += _levels255_row(x, i, q)
    return bad


@njit(cache=True)
def levels255_serial(x, q):  # pragma: no cover - compiled
    """Single-threaded :func:`levels255`."""
    bad = 0
    for i in range(x.shape[0]):
        bad += _levels255_row(x, i, q)
    return bad


@njit(inline="always", cache=True)
def _levels_int_row(x, i, q):
    bad = 0
    for j in range(x.shape[1]):
        v = x[i, j]
        ok = (v >= 0) & (v <= 65535)
        k = np.int64(v) if ok else np.int64(0)
        bad += (not ok) | (k != v)
        q[i, j] = np.uint16(k)
    return bad


@njit(parallel=True, cache=True)
def levels_int(x, q):  # pragma: no cover - compiled
    """Levels of non-negative integer values below 2**16: ``q`` (n, F) uint16; count of others."""
    bad = 0
    for i in prange(x.shape[0]):
        bad += _levels_int_row(x, i, q)
    return bad


@njit(cache=True)
def levels_int_serial(x, q):  # pragma: no cover - compiled
    """Single-threaded :func:`levels_int`."""
    bad = 0
    for i in range(x.shape[0]):
        bad += _levels_int_row(x, i, q)
    return bad


# --------------------------------------------------------------------------------------------
# dense
# --------------------------------------------------------------------------------------------


@njit(inline="always", cache=True)
def _dense_levels_row(q, i, masks, pm1, a16, a32, out_row):
    """``out_row[u] = sum_j q[i, j] * W[j, u]`` (W = ±1 or {0, 1} from ``masks``), int64."""
    d = q.shape[1]
    u = masks.shape[1]
    for c in range(u):
        a16[c] = 0
        a32[c] = 0
    total = 0
    if q.itemsize == 1:
        cnt = 0
        for j in range(d):
            v = np.int16(q[i, j])
            if v == 0:
                continue
            total += v
            mrow = masks[j]
            for c in range(u):
                a16[c] += v & np.int16(mrow[c])
            cnt += 1
            if cnt == _FLUSH:
                for c in range(u):
                    a32[c] += a16[c]
                    a16[c] = 0
                cnt = 0
        for c in range(u):
            a32[c] += a16[c]
    else:
        for j in range(d):
            v = np.int32(q[i, j])
            if v == 0:
                continue
            total += v
            mrow = masks[j]
            for c in range(u):
                a32[c] += v & np.int32(mrow[c])
    if pm1:
        for c in range(u):
            out_row[c] = 2 * np.int64(a32[c]) - total
    else:
        for c in range(u):
            out_row[c] = a32[c]


_NARROW = 16  # at most this many units: the narrow (float32 dot product) kernels
_BLOCK = 64  # rows per thread-local scratch in the narrow kernels


@njit(fastmath={"reassoc", "contract"}, cache=True)
def _dots(kf, wf, out_row):  # pragma: no cover - compiled
    """``out_row[u] = sum_j kf[j] * wf[u, j]`` for integer-valued float32 ``kf`` and ``wf``.

    Exact: every product is an integer of magnitude <= 255 and every partial sum, in whatever
    order the vectorised reduction adds them, an integer below 2**24 (the callers guarantee
    ``D * 255 < 2**24``), so each float32 operation is exact and reassociation (allowed here,
    and only here) cannot change the result. Four units share each pass over ``kf``.
    """
    u_n, d = wf.shape
    for u0 in range(0, u_n - 3, 4):
        w0, w1, w2, w3 = wf[u0], wf[u0 + 1], wf[u0 + 2], wf[u0 + 3]
        s0 = s1 = s2 = s3 = np.float32(0.0)
        for j in range(d):
            k = kf[j]
            s0 += k * w0[j]
            s1 += k * w1[j]
            s2 += k * w2[j]
            s3 += k * w3[j]
        out_row[u0] = np.int64(s0)
        out_row[u0 + 1] = np.int64(s1)
        out_row[u0 + 2] = np.int64(s2)
        out_row[u0 + 3] = np.int64(s3)
    for u in range(u_n - u_n % 4, u_n):
        s = np.float32(0.0)
        wrow = wf[u]
        for j in range(d):
            s += kf[j] * wrow[j]
        out_row[u] = np.int64(s)


@njit(inline="always", cache=True)
def _narrow_block(x, blk, wf, out, kf, from_real):
    """Rows of block ``blk``: levels (from k / 255 values, or 8-bit integers), then the dots."""
    n, d = x.shape
    n_off = 0
    for i in range(blk * _BLOCK, min(n, (blk + 1) * _BLOCK)):
        if from_real:
            b = np.int32(0)
            for j in range(d):
                k, ok = _level255(x[i, j])
                b += np.int32(not ok)
                kf[j] = np.float32(k)
            n_off += b
        else:
            for j in range(d):
                kf[j] = np.float32(x[i, j])
        _dots(kf, wf, out[i])
    return n_off


@njit(parallel=True, cache=True)
def dense_narrow(x, wf, from_real):  # pragma: no cover - compiled
    """Exact scores of at most 16 units on 8-bit levels, by float32 dot products.

    Parameters
    ----------
    x : float32 or float64 (n, D) with ``from_real`` (values ``k / 255``, levels found and
        checked on the fly, as :func:`levels255`), else uint8 (n, D) levels.
    wf : float32 (U, D)
        The effective weights (±1 or {0, 1}); ``D * 255 < 2**24``.
    from_real : bool

    Returns
    -------
    scores : int64 (n, U)
        ``sum_j k_j W[u, j]`` (meaningless when ``bad > 0``).
    bad : int
        Values that are not exactly ``k / 255`` (0 for integer levels).
    """
    n, d = x.shape
    out = np.empty((n, wf.shape[0]), dtype=np.int64)
    n_blk = (n + _BLOCK - 1) // _BLOCK
    bads = np.zeros(n_blk, dtype=np.int64)  # per block: no reduction inside the parallel loop
    for blk in prange(n_blk):
        kf = np.empty(d, dtype=np.float32)
        bads[blk] = _narrow_block(x, blk, wf, out, kf, from_real)
    return out, bads.sum()


@njit(cache=True)
def dense_narrow_serial(x, wf, from_real):  # pragma: no cover - compiled
    """Single-threaded :func:`dense_narrow`."""
    n, d = x.shape
    out = np.empty((n, wf.shape[0]), dtype=np.int64)
    kf = np.empty(d, dtype=np.float32)
    bad = 0
    for blk in range((n + _BLOCK - 1) // _BLOCK):
        bad += _narrow_block(x, blk, wf, out, kf, from_real)
    return out, bad


@njit(parallel=True, cache=True)
def dense_levels(q, masks, pm1):  # pragma: no cover - compiled
    """Integer scores of level rows against dense binary weights.

    Parameters
    ----------
    q : uint8 or uint16 (n, D)
        Levels.
    masks : int8 (D, U)
        -1 where the weight is +1 (or 1), 0 where it is -1 (or 0).
    pm1 : bool
        Weights are ±1 (else {0, 1}).

    Returns
    -------
    int64 (n, U)
    """
    n = q.shape[0]
    u = masks.shape[1]
    out = np.empty((n, u), dtype=np.int64)
    for i in prange(n):
        a16 = np.empty(u, dtype=np.int16)
        a32 = np.empty(u, dtype=np.int32)
        _dense_levels_row(q, i, masks, pm1, a16, a32, out[i])
    return out


@njit(cache=True)
def dense_levels_serial(q, masks, pm1):  # pragma: no cover - compiled
    """Single-threaded :func:`dense_levels`."""
    n = q.shape[0]
    u = masks.shape[1]
    out = np.empty((n, u), dtype=np.int64)
    a16 = np.empty(u, dtype=np.int16)
    a32 = np.empty(u, dtype=np.int32)
    for i in range(n):
        _dense_levels_row(q, i, masks, pm1, a16, a32, out[i])
    return out


# --------------------------------------------------------------------------------------------
# 3x3 convolution, zero padding, optional max pooling, threshold to packed bits
# --------------------------------------------------------------------------------------------


@njit(inline="always", cache=True)
def _conv_levels_scores(q, i, wpm, acc):
    """Scatter the non-zero levels of image ``i`` into the 3x3 'same' conv scores ``acc``.

    Output pixel (ho, wo) reads input (ho + dy - 1, wo + dx - 1) through tap (dy, dx), so an
    input pixel (h, w) adds ``q * w[dy, dx, c]`` to output (h - dy + 1, w - dx + 1); taps
    outside the image add nothing (zero padding). The three outputs ``w + 1, w, w - 1`` of one
    kernel row are contiguous in ``acc`` (H, W * O), and ``wpm`` holds the matching ±1 weights
    ``w[dy, 2, c], w[dy, 1, c], w[dy, 0, c]`` contiguously: (3, C, 3 * O), one loop per row.
    """
    hh_n, ww_n, c_in = q.shape[1], q.shape[2], q.shape[3]
    o_n = wpm.shape[2] // 3
    acc[:] = 0
    for h in range(hh_n):
        for w in range(ww_n):
            lo = max(w - 1, 0)  # first output column this pixel reaches
            hi = min(w + 1, ww_n - 1)
            m0 = (lo - (w - 1)) * o_n  # skip the weights of columns outside the image
            length = (hi - lo + 1) * o_n
            for c in range(c_in):
                v = wpm.dtype.type(q[i, h, w, c])  # int16 lanes when the sums fit
                if v == 0:
                    continue
                for dy in range(3):
                    ho = h - dy + 1
                    if ho < 0 or ho >= hh_n:
                        continue
                    arow = acc[ho, lo * o_n : lo * o_n + length]
                    mrow = wpm[dy, c, m0 : m0 + length]
                    for t in range(length):
                        arow[t] += v * mrow[t]


@njit(inline="always", cache=True)
def _conv_levels_buffers(q, wpm, out):
    hh_n, ww_n = q.shape[1], q.shape[2]
    o_n = wpm.shape[2] // 3
    acc = np.empty((hh_n, ww_n * o_n), dtype=wpm.dtype)
    return (acc, *pool_buffers(o_n, out))


@njit(parallel=True, cache=True)
def conv_levels(q, wpm, tau, flip, psize, pmode, out):  # pragma: no cover - compiled
    """3x3 'same' convolution of level images, thresholded into packed bits.

    Parameters
    ----------
    q : uint8 or uint16 (n, H, W, C)
    wpm : int16 or int32 (3, C, 3 * O)
        For kernel row ``dy`` and channel ``c``: the ±1 weights of taps ``dx = 2, 1, 0`` one
        after the other. Their dtype is that of the accumulators: int16 only when
        ``9 * C * q_max < 2**15`` (sums cannot overflow).
    tau : int64 (O,)
    flip : uint8 (O,)
    psize : int
        Pooling window (1: none).
    pmode : int
        0 none, 1 max pooling of the scores before the threshold, 2 OR of the bits after it.
    out : uint64 (n, H // psize, W // psize, ceil(O / 64))
    """
    n, hh_n, ww_n = q.shape[0], q.shape[1], q.shape[2]
    o_n = wpm.shape[2] // 3
    sgn, t2 = signed_thresholds(tau, flip)
    for blk in prange((n + _IMAGE_BLOCK - 1) // _IMAGE_BLOCK):  # buffers once per block
        acc, best, flags, f64 = _conv_levels_buffers(q, wpm, out)
        for i in range(blk * _IMAGE_BLOCK, min(n, (blk + 1) * _IMAGE_BLOCK)):
            _conv_levels_scores(q, i, wpm, acc)
            pool_pack(acc.reshape(hh_n, ww_n, o_n), i, sgn, t2, psize, pmode, out, best, flags,
                      f64)


@njit(cache=True)
def conv_levels_serial(q, wpm, tau, flip, psize, pmode, out):  # pragma: no cover - compiled
    """Single-threaded :func:`conv_levels`."""
    n, hh_n, ww_n = q.shape[0], q.shape[1], q.shape[2]
    o_n = wpm.shape[2] // 3
    sgn, t2 = signed_thresholds(tau, flip)
    acc, best, flags, f64 = _conv_levels_buffers(q, wpm, out)
    for i in range(n):
        _conv_levels_scores(q, i, wpm, acc)
        pool_pack(acc.reshape(hh_n, ww_n, o_n), i, sgn, t2, psize, pmode, out, best, flags, f64)
