"""Compiled (numba) kernels of packed binary networks: ±1 bits in, packed bits or scores out.

Private module: the wrappers in :mod:`bayesbin.bits.netlayers` validate every argument, so
these kernels trust their inputs (C-contiguous arrays of the documented dtypes and shapes).

Activations. A ±1 vector of length D is ``ceil(D / 64)`` uint64 words (bit 1 is +1, the bit
order of :func:`bayesbin.bits.pack_bits`); an NHWC image is (H, W, ceil(C / 64)) words, its
channels packed per pixel. Padding bits are zero in every activation and every weight, so they
cancel in ``x XOR w``: a dense or conv score is ``n - 2 popcount(x XOR w)`` with ``n`` the
number of real ±1 products (XNOR-popcount).

Weights are stored transposed so the innermost loop runs over contiguous output units and
vectorises: dense ``wt`` (n_in_words, U), conv ``wt`` (3, 3, ceil(C / 64), O).

Convolution is 3x3, stride 1, "same" with zero padding, by direct popcount over the channel
words of each tap (no im2col): a tap outside the image contributes 0, so a pixel's score is
``9' * C - 2 * sum popcount`` with ``9'`` the number of taps inside the image. Max pooling
(window = stride = ``psize``, floor) is fused: on the integer scores before the threshold
(``pmode = 1``) or as an OR of the output bits after it (``pmode = 2``: the max of ±1 values is
+1 when any is +1).

Output step: ``bit = (score >= tau[u]) XOR flip[u]`` written into packed words (hidden layers),
or the int64 scores themselves (the head).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from bayesbin.bits.kernels import popcount64

__all__ = [
    "conv_bits",
    "conv_bits_serial",
    "dense_bits",
    "dense_bits_serial",
    "threshold_bits",
    "threshold_bits_serial",
]

_ROW_BLOCK = 4  # rows sharing one pass over the weight words


@njit(inline="always", cache=True)
def _threshold_row(scores, tau, flip, out_row):
    """Pack ``(scores[u] >= tau[u]) XOR flip[u]`` into ``out_row`` (ceil(U / 64) words)."""
    u = scores.shape[0]
    for k in range(out_row.shape[0]):
        word = np.uint64(0)
        base = k * 64
        for j in range(min(64, u - base)):
            c = base + j
            word |= np.uint64((scores[c] >= tau[c]) ^ flip[c]) << np.uint64(j)
        out_row[k] = word


@njit(parallel=True, cache=True)
def threshold_bits(scores, tau, flip, out):  # pragma: no cover - compiled
    """Pack thresholded scores (n, U) int64 into ``out`` (n, ceil(U / 64)) uint64."""
    for i in prange(scores.shape[0]):
        _threshold_row(scores[i], tau, flip, out[i])


@njit(cache=True)
def threshold_bits_serial(scores, tau, flip, out):  # pragma: no cover - compiled
    """Single-threaded :func:`threshold_bits`."""
    for i in range(scores.shape[0]):
        _threshold_row(scores[i], tau, flip, out[i])


# --------------------------------------------------------------------------------------------
# dense
# --------------------------------------------------------------------------------------------


@njit(inline="always", cache=True)
def _dense_block(x, blk, wt, n_in, tau, flip, out, scores, acc):
    """Rows ``blk * _ROW_BLOCK ...``: XNOR-popcount scores, then packed bits or raw scores."""
    n = x.shape[0]
    win, u = wt.shape
    i0 = blk * _ROW_BLOCK
    nb = min(_ROW_BLOCK, n - i0)
    for r in range(nb):
        for c in range(u):
            acc[r, c] = 0
    for k in range(win):
        wrow = wt[k]
        for r in range(nb):
            xv = x[i0 + r, k]
            arow = acc[r]
            for c in range(u):
                arow[c] += popcount64(xv ^ wrow[c])
    for r in range(nb):
        arow = acc[r]
        for c in range(u):
            arow[c] = n_in - 2 * arow[c]
        if scores.shape[0] == n:
            for c in range(u):
                scores[i0 + r, c] = arow[c]
        else:
            _threshold_row(arow, tau, flip, out[i0 + r])


@njit(parallel=True, cache=True)
def dense_bits(x, wt, n_in, tau, flip, out, scores):  # pragma: no cover - compiled
    """Dense XNOR-popcount layer on packed ±1 rows.

    Parameters
    ----------
    x : uint64 (n, n_in_words)
        Packed ±1 inputs, zero padding bits.
    wt : uint64 (n_in_words, U)
        Transposed packed ±1 weights, zero padding bits.
    n_in : int
        Number of real inputs (bits that are not padding).
    tau : int64 (U,), flip : uint8 (U,)
        Output step of a hidden layer.
    out : uint64 (n, ceil(U / 64))
        Packed output bits (hidden layer).
    scores : int64 (n, U) or (0, U)
        When it has n rows the raw scores are written here instead of bits (the head).
    """
    u = wt.shape[1]
    for blk in prange((x.shape[0] + _ROW_BLOCK - 1) // _ROW_BLOCK):
        acc = np.empty((_ROW_BLOCK, u), dtype=np.int64)
        _dense_block(x, blk, wt, n_in, tau, flip, out, scores, acc)


@njit(cache=True)
def dense_bits_serial(x, wt, n_in, tau, flip, out, scores):  # pragma: no cover - compiled
    """Single-threaded :func:`dense_bits`."""
    acc = np.empty((_ROW_BLOCK, wt.shape[1]), dtype=np.int64)
    for blk in range((x.shape[0] + _ROW_BLOCK - 1) // _ROW_BLOCK):
        _dense_block(x, blk, wt, n_in, tau, flip, out, scores, acc)


# --------------------------------------------------------------------------------------------
# 3x3 convolution
# --------------------------------------------------------------------------------------------


@njit(inline="always", cache=True)
def _conv_pixel(x, i, wt, c_in, h, w, acc):
    """``acc[o]`` = score of output pixel (h, w) over the taps inside the image."""
    hh_max, ww_max, wc = x.shape[1], x.shape[2], x.shape[3]
    o_n = wt.shape[3]
    for o in range(o_n):
        acc[o] = 0
    n_valid = 0
    for dy in range(3):
        hh = h + dy - 1
        if hh < 0 or hh >= hh_max:
            continue
        for dx in range(3):
            ww = w + dx - 1
            if ww < 0 or ww >= ww_max:
                continue
            n_valid += 1
            for k in range(wc):
                xv = x[i, hh, ww, k]
                wrow = wt[dy, dx, k]
                for o in range(o_n):
                    acc[o] += popcount64(xv ^ wrow[o])
    base = n_valid * c_in
    for o in range(o_n):
        acc[o] = base - 2 * acc[o]


@njit(inline="always", cache=True)
def _conv_image(x, i, wt, c_in, tau, flip, psize, pmode, out, acc, best, bits):
    o_n = wt.shape[3]
    n_wo = out.shape[3]
    for ph in range(out.shape[1]):
        for pw in range(out.shape[2]):
            for o in range(o_n):
                best[o] = -(2**62)
            for k in range(n_wo):
                bits[k] = 0
            for a in range(psize):
                for b in range(psize):
                    _conv_pixel(x, i, wt, c_in, ph * psize + a, pw * psize + b, acc)
                    if pmode == 1:
                        for o in range(o_n):
                            best[o] = max(best[o], acc[o])
                    else:
                        for o in range(o_n):
                            bit = np.uint64((acc[o] >= tau[o]) ^ flip[o])
                            bits[o >> 6] |= bit << np.uint64(o & 63)
            if pmode == 1:
                for o in range(o_n):
                    bit = np.uint64((best[o] >= tau[o]) ^ flip[o])
                    bits[o >> 6] |= bit << np.uint64(o & 63)
            for k in range(n_wo):
                out[i, ph, pw, k] = bits[k]


@njit(parallel=True, cache=True)
def conv_bits(x, wt, c_in, tau, flip, psize, pmode, out):  # pragma: no cover - compiled
    """3x3 'same' binary convolution on packed ±1 images, thresholded into packed bits.

    Parameters
    ----------
    x : uint64 (n, H, W, ceil(C / 64))
    wt : uint64 (3, 3, ceil(C / 64), O)
    c_in : int
        C.
    tau : int64 (O,), flip : uint8 (O,)
    psize : int
        Pooling window (1: none).
    pmode : int
        0 none, 1 max of the scores before the threshold, 2 OR of the bits after it.
    out : uint64 (n, H // psize, W // psize, ceil(O / 64))
    """
    o_n = wt.shape[3]
    for i in prange(x.shape[0]):
        acc = np.empty(o_n, dtype=np.int64)
        best = np.empty(o_n, dtype=np.int64)
        bits = np.empty(out.shape[3], dtype=np.uint64)
        _conv_image(x, i, wt, c_in, tau, flip, psize, pmode, out, acc, best, bits)


@njit(cache=True)
def conv_bits_serial(x, wt, c_in, tau, flip, psize, pmode, out):  # pragma: no cover - compiled
    """Single-threaded :func:`conv_bits`."""
    o_n = wt.shape[3]
    acc = np.empty(o_n, dtype=np.int64)
    best = np.empty(o_n, dtype=np.int64)
    bits = np.empty(out.shape[3], dtype=np.uint64)
    for i in range(x.shape[0]):
        _conv_image(x, i, wt, c_in, tau, flip, psize, pmode, out, acc, best, bits)
