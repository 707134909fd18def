"""Compiled (numba) kernels of packed binary networks: ±1 bits in, packed bits or scores out.

Private module: the wrappers in :mod:`bayesbin.bits.netlayers` validate every argument, so
these kernels trust their inputs (C-contiguous arrays of the documented dtypes and shapes).

Activations. A ±1 vector of length D is ``ceil(D / 64)`` uint64 words (bit 1 is +1, the bit
order of :func:`bayesbin.bits.pack_bits`); an NHWC image is (H, W, ceil(C / 64)) words, its
channels packed per pixel. Padding bits are zero in every activation and every weight, so they
cancel in ``x XOR w``: a dense or conv score is ``n - 2 popcount(x XOR w)`` with ``n`` the
number of real ±1 products (XNOR-popcount).

Weights are stored transposed so the innermost loop runs over contiguous output units and
vectorises: dense ``wt`` (n_in_words, U), conv streams ``ws`` (ceil(9 C / 64), O)
(:func:`conv_stream_weights`).

Convolution is 3x3, stride 1, "same" with zero padding, by direct popcount (no im2col): the 9
taps' channel bits of an output pixel are concatenated into one bit stream of ceil(9 C / 64)
words (5 instead of 9 for C = 32; built per image, a few words per pixel) and XORed with the
same stream of each output channel's weights. A tap outside the image contributes 0, so a
pixel's score is ``9' * C - 2 * (sum popcount - corr)`` with ``9'`` the number of taps inside
the image and ``corr`` the weight bits of the taps outside (their stream bits are 0). Max pooling
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
    "conv_stream_weights",
    "dense_bits",
    "dense_bits_serial",
    "threshold_bits",
    "threshold_bits_serial",
]

_ROW_BLOCK = 4  # rows sharing one pass over the weight words
_IMAGE_BLOCK = 16  # images per parallel task of the convolutions (work buffers per task)


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


_MAGIC = np.uint64(0x0102040810204080)  # 8 bytes of 0/1 -> 8 bits (see pool_pack)


@njit(inline="always", cache=True)
def pool_pack(s, i, sgn, t2, psize, pmode, out, best, flags, f64):
    """Pool, threshold and pack one image's integer scores into ``out[i]``.

    Parameters
    ----------
    s : int array (H, W, O)
        Scores of every output pixel.
    sgn, t2 : int64 (O,)
        ``(score >= tau) XOR flip`` is computed as ``sgn * score >= t2`` with ``sgn = -1,
        t2 = 1 - tau`` where ``flip`` (for integers ``NOT(s >= tau)`` is ``-s >= 1 - tau``) and
        ``sgn = 1, t2 = tau`` elsewhere.
    psize, pmode : int
        Window (1: none); 1 max of the scores before the threshold (``max s`` then the signed
        test), 2 OR of the bits after it (the max of ``sgn * s``: the OR of ``sgn * s >= t2``).
    out : uint64 (n, H // psize, W // psize, ceil(O / 64))
    best : int64 (O,), flags : uint8 (W // psize, 64 * ceil(O / 64)) zero-initialised (its
        padding lanes stay 0), f64 : ``flags`` viewed as uint64
        Work buffers. Eight 0/1 bytes ``g`` become eight bits by ``(g * 0x0102040810204080)
        >> 56`` (byte k lands on bit k; no two partial products share a bit, so no carries).
    """
    o_n = s.shape[2]
    for ph in range(out.shape[1]):
        h0 = ph * psize
        for pw in range(out.shape[2]):
            w0 = pw * psize
            if pmode == 2:
                for o in range(o_n):
                    best[o] = sgn[o] * s[h0, w0, o]
                for a in range(psize):
                    for b in range(psize):
                        for o in range(o_n):
                            best[o] = max(best[o], sgn[o] * s[h0 + a, w0 + b, o])
                for o in range(o_n):
                    flags[pw, o] = best[o] >= t2[o]
            else:
                for o in range(o_n):
                    best[o] = s[h0, w0, o]
                for a in range(psize):
                    for b in range(psize):
                        for o in range(o_n):
                            best[o] = max(best[o], s[h0 + a, w0 + b, o])
                for o in range(o_n):
                    flags[pw, o] = sgn[o] * best[o] >= t2[o]
        for pw in range(out.shape[2]):
            for k in range(out.shape[3]):
                word = np.uint64(0)
                for j in range(8):
                    word |= ((f64[pw, 8 * k + j] * _MAGIC) >> np.uint64(56)) << np.uint64(8 * j)
                out[i, ph, pw, k] = word


@njit(inline="always", cache=True)
def pool_buffers(o_n, out):
    """Work buffers of :func:`pool_pack`: ``best``, zeroed ``flags`` and their uint64 view."""
    best = np.empty(o_n, dtype=np.int64)
    flags = np.zeros((out.shape[2], 64 * out.shape[3]), dtype=np.uint8)
    return best, flags, flags.view(np.uint64)


@njit(cache=True)
def signed_thresholds(tau, flip):  # pragma: no cover - compiled
    """``(sgn, t2)`` of :func:`pool_pack` from ``tau`` int64 (O,) and ``flip`` uint8 (O,)."""
    sgn = np.empty(tau.shape[0], dtype=np.int64)
    t2 = np.empty(tau.shape[0], dtype=np.int64)
    for o in range(tau.shape[0]):
        if flip[o]:
            sgn[o], t2[o] = -1, 1 - tau[o]
        else:
            sgn[o], t2[o] = 1, tau[o]
    return sgn, t2


@njit(inline="always", cache=True)
def _patches(x, i, c_in, p):
    """``p[h, w]``: the 9 taps' channel bits of output pixel (h, w), one bit stream.

    Tap ``t = 3 dy + dx`` occupies bits ``t * C .. t * C + C - 1`` of the stream (word
    ``pos >> 6``, bit ``pos & 63``), its channel word ``k`` starting at ``t * C + 64 k``;
    taps outside the image stay 0. For C = 32 that is 5 words instead of 9.
    """
    hh_n, ww_n, wc = x.shape[1], x.shape[2], x.shape[3]
    p[:] = 0
    for t in range(9):
        dy = t // 3
        dx = t - 3 * dy
        for k in range(wc):
            pos = t * c_in + 64 * k
            j = pos >> 6
            sh = np.uint64(pos & 63)
            spill = (pos & 63) + min(64, c_in - 64 * k) > 64  # bits reach word j + 1
            back = np.uint64(64 - (pos & 63))
            for h in range(max(0, 1 - dy), min(hh_n, hh_n + 1 - dy)):
                hh = h + dy - 1
                for w in range(max(0, 1 - dx), min(ww_n, ww_n + 1 - dx)):
                    v = x[i, hh, w + dx - 1, k]
                    p[h, w, j] |= v << sh
                    if spill:
                        p[h, w, j + 1] |= v >> back


@njit(inline="always", cache=True)
def _conv_image(x, i, ws, corr, nvalid, c_in, sgn, t2, psize, pmode, out, p, s, acc, best,
                flags, f64):
    """Scores of image ``i`` by popcount over the tap streams, then :func:`pool_pack`."""
    hh_n, ww_n = x.shape[1], x.shape[2]
    n_words, o_n = ws.shape
    _patches(x, i, c_in, p)
    for h in range(hh_n):
        for w in range(ww_n):
            for o in range(o_n):
                acc[o] = 0
            for k in range(n_words):
                xv = p[h, w, k]
                for o in range(o_n):
                    acc[o] += popcount64(xv ^ ws[k, o])
            cls = 8 * (h == 0) + 4 * (h == hh_n - 1) + 2 * (w == 0) + (w == ww_n - 1)
            base = nvalid[cls] * c_in
            for o in range(o_n):
                s[h, w, o] = base - 2 * (acc[o] - corr[cls, o])
    pool_pack(s, i, sgn, t2, psize, pmode, out, best, flags, f64)


@njit(inline="always", cache=True)
def _conv_buffers(x, ws, out):
    hh_n, ww_n = x.shape[1], x.shape[2]
    n_words, o_n = ws.shape
    p = np.empty((hh_n, ww_n, n_words), dtype=np.uint64)
    s = np.empty((hh_n, ww_n, o_n), dtype=np.int64)
    acc = np.empty(o_n, dtype=np.int64)
    best, flags, f64 = pool_buffers(o_n, out)
    return p, s, acc, best, flags, f64


@njit(parallel=True, cache=True)
def conv_bits(x, ws, corr, nvalid, c_in, tau, flip, psize, pmode, out):  # pragma: no cover
    """3x3 'same' binary convolution on packed ±1 images, thresholded into packed bits.

    Parameters
    ----------
    x : uint64 (n, H, W, ceil(C / 64))
    ws : uint64 (ceil(9 C / 64), O)
        Output channel ``o``'s 9 taps x C weight bits as one stream (the layout of
        :func:`_patches`), stored word-major so the inner loop runs over contiguous outputs.
    corr : int64 (16, O), nvalid : int64 (16,)
        Per border class ``8 top + 4 bottom + 2 left + right`` (the pixel's row or column is
        the image's first or last): the weight bits of the taps outside the image (their
        stream bits are 0, so ``popcount(0 XOR w)`` counts them and is subtracted) and the
        number of taps inside. Score ``= nvalid * C - 2 * (sum popcount - corr)``.
    c_in : int
        C.
    tau : int64 (O,), flip : uint8 (O,)
    psize : int
        Pooling window (1: none).
    pmode : int
        0 none, 1 max of the scores before the threshold, 2 OR of the bits after it.
    out : uint64 (n, H // psize, W // psize, ceil(O / 64))
    """
    sgn, t2 = signed_thresholds(tau, flip)
    n = x.shape[0]
    for blk in prange((n + _IMAGE_BLOCK - 1) // _IMAGE_BLOCK):  # buffers once per block
        p, s, acc, best, flags, f64 = _conv_buffers(x, ws, out)
        for i in range(blk * _IMAGE_BLOCK, min(n, (blk + 1) * _IMAGE_BLOCK)):
            _conv_image(x, i, ws, corr, nvalid, c_in, sgn, t2, psize, pmode, out, p, s, acc,
                        best, flags, f64)


@njit(cache=True)
def conv_bits_serial(x, ws, corr, nvalid, c_in, tau, flip, psize, pmode, out):  # pragma: no cover
    """Single-threaded :func:`conv_bits`."""
    sgn, t2 = signed_thresholds(tau, flip)
    p, s, acc, best, flags, f64 = _conv_buffers(x, ws, out)
    for i in range(x.shape[0]):
        _conv_image(x, i, ws, corr, nvalid, c_in, sgn, t2, psize, pmode, out, p, s, acc, best,
                    flags, f64)


def _border_taps() -> np.ndarray:
    """Which taps (16 classes x 9, ``3 dy + dx``) lie outside the image per border class."""
    out = np.zeros((16, 9), dtype=bool)
    for cls in range(16):
        top, bottom, left, right = (cls >> 3) & 1, (cls >> 2) & 1, (cls >> 1) & 1, cls & 1
        for t in range(9):
            dy, dx = divmod(t, 3)
            out[cls, t] = ((dy == 0 and top) or (dy == 2 and bottom) or (dx == 0 and left)
                           or (dx == 2 and right))
    return out


_OUTSIDE = _border_taps()


def conv_stream_weights(w: np.ndarray, c_in: int) -> tuple:
    """Packed conv weights -> the kernel layout of :func:`conv_bits`.

    Parameters
    ----------
    w : uint64 (O, 3, 3, ceil(C / 64))
        One member's packed weights (the file layout: bit ``c`` of word ``c // 64`` is channel
        ``c``, 1 for +1; padding bits 0).
    c_in : int
        C.

    Returns
    -------
    ws : uint64 (ceil(9 C / 64), O)
    corr : int64 (16, O)
    nvalid : int64 (16,)
    """
    o_n = w.shape[0]
    n_words = (9 * c_in + 63) // 64
    raw = np.ascontiguousarray(w, dtype="<u8").view(np.uint8)
    bits = np.unpackbits(raw.reshape(o_n, 3, 3, -1), axis=-1, bitorder="little")[..., :c_in]
    stream = np.zeros((o_n, 64 * n_words), dtype=np.uint8)
    stream[:, : 9 * c_in] = bits.reshape(o_n, 9 * c_in)
    words = np.packbits(stream, axis=1, bitorder="little").view("<u8").astype(np.uint64)
    per_tap = bits.reshape(o_n, 9, c_in).sum(axis=2, dtype=np.int64)  # (O, 9)
    corr = _OUTSIDE.astype(np.int64) @ per_tap.T  # (16, O)
    nvalid = 9 - _OUTSIDE.sum(axis=1).astype(np.int64)
    return np.ascontiguousarray(words.T), np.ascontiguousarray(corr), nvalid
