"""AVX2 (x86-64) dense XNOR-popcount kernel of hidden layers: weight layout, tables, dispatch."""

# Private module. Nothing here compiles on import: the kernels are lazy numba functions, and
# :func:`available` must be true before any of them is called (an AVX2 intrinsic compiled for a
# CPU without AVX2 can abort the process). :class:`bayesbin.bits.netlayers.NetLayer` calls
# :func:`usable` and falls back to :mod:`bayesbin.bits.netkernels` otherwise.
#
# Algorithm ("tbl"). A hidden dense layer writes ``bit = (score >= tau) XOR flip`` with
# ``score = n_in - 2 d``, ``d = popcount(x XOR w)`` (padding bits are zero in x and w, so they
# never count). ``score >= tau`` is ``d <= lim`` with ``lim = floor((n_in - tau) / 2)``.
# ``d`` is summed 4 bits at a time: for one nibble ``v`` of an input word, ``TT[v]`` is the
# 32-byte table ``popcount(j XOR v)`` (j = 0..15, twice: one copy per 128-bit lane), and
# ``vpshufb(TT[v], W)`` looks up 32 units' nibbles ``W`` at once. So one vpshufb and one byte add
# count 4 input bits for 32 units. A block of 128 units keeps 4 byte accumulators (at most
# ``_WORDS_PER_FLUSH * 16 * 4 = 192 < 256`` per flush) and 8 int16 accumulators in registers.
#
# Layouts (:func:`prep_weights`). ``ws`` uint8 (U // 128, win, 16, 4, 32): byte ``b`` of
# ``[blk, k, m, q]`` is nibble ``m`` of word ``k`` of unit ``128 blk + 32 q + t`` with ``t = b // 2``
# for even ``b`` and ``16 + b // 2`` for odd ``b`` (a 16-bit lane's low byte is unit ``t < 16``,
# its high byte unit ``t + 16``, so the even/odd split into int16 lanes keeps units in order).
# ``lim`` int16 (U,), ``fw`` uint64 (U // 64,) the flips as packed words (XORed into each output
# word). ``ws``, ``lim`` and the tables start on 64-byte boundaries (:func:`_aligned`). ``ws`` is
# 16 bytes per unit and input word: twice the transposed uint64 weights.
#
# Threads. :func:`dense_tbl` runs blocks of ``_ROW_CHUNK`` rows in a prange (each block loops
# over all unit blocks); :func:`dense_tbl_serial` loops unit blocks outermost.
#
# Exactness bound. The int16 accumulators hold ``d <= 64 win``; signed int16 comparison needs
# ``64 win <= 32767`` (:data:`MAX_IN_WORDS`); :func:`usable` falls back above it.

from __future__ import annotations

import os
import platform

import numpy as np
from llvmlite import ir
from numba import njit, prange
from numba.core import cgutils, types
from numba.extending import intrinsic, models, register_model

__all__ = [
    "MAX_IN_WORDS",
    "TABLES",
    "UNIT_BLOCK",
    "available",
    "dense_tbl",
    "dense_tbl_serial",
    "enabled",
    "nibble_tables",
    "prep_weights",
    "set_enabled",
    "usable",
]

UNIT_BLOCK = 128  # units per register block (4 groups of 32)
MAX_IN_WORDS = 32767 // 64  # d <= 64 * win must fit a signed int16
_WORDS_PER_FLUSH = 3  # byte accumulators: <= 3 words * 16 nibbles * 4 = 192 < 256
_ROW_CHUNK = 16  # rows per parallel task

# --------------------------------------------------------------------------------------------
# dispatch
# --------------------------------------------------------------------------------------------

_enabled = True  # in-process switch (tests); the environment switch is BAYESBIN_SIMD=0
_available = None


def _host_has_avx2() -> bool:
    """x86-64 host with AVX2 (LLVM's host features), numba compiling for the host CPU."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    from numba import config

    if config.DISABLE_JIT:  # the intrinsics only exist compiled
        return False
    if config.CPU_NAME not in (None, "", "host"):
        return False  # e.g. NUMBA_CPU_NAME=generic for portable caches: no AVX2 in codegen
    if config.CPU_FEATURES:  # numba compiles with these instead of the host's
        if "+avx2" not in str(config.CPU_FEATURES).split(","):
            return False
    try:
        import llvmlite.binding as llvm

        feats = llvm.get_host_cpu_features()
    except Exception:  # pragma: no cover - LLVM without host feature detection
        return False
    return bool(feats.get("avx2", False))


def available() -> bool:
    """Whether this process can run the AVX2 kernels (host check cached; switches not)."""
    global _available
    if _available is None:
        _available = _host_has_avx2()
    return _available


def enabled() -> bool:
    """:func:`available`, not switched off by ``BAYESBIN_SIMD=0`` or :func:`set_enabled`."""
    return _enabled and os.environ.get("BAYESBIN_SIMD", "") != "0" and available()


def set_enabled(flag: bool) -> bool:
    """Switch the SIMD kernels on/off in this process; returns the previous setting.

    Off means every layer uses :mod:`bayesbin.bits.netkernels` (what ``BAYESBIN_SIMD=0`` does
    from the environment). On still needs :func:`available`.
    """
    global _enabled
    old, _enabled = _enabled, bool(flag)
    return old


def usable(n_out: int, in_words: int, *, head: bool) -> bool:
    """Whether a dense layer of this shape runs on the SIMD kernel here."""
    return not head and n_out % UNIT_BLOCK == 0 and 1 <= in_words <= MAX_IN_WORDS and enabled()


# --------------------------------------------------------------------------------------------
# weight layout and tables
# --------------------------------------------------------------------------------------------


def _aligned(a: np.ndarray, align: int = 64) -> np.ndarray:
    """A 1-D copy of ``a`` whose data starts on an ``align``-byte boundary.

    numpy allocates on 16-byte boundaries: half the 32-byte loads of a 16-mod-32 array would
    straddle two cache lines (measured 1.5x slower kernel).
    """
    a = np.ascontiguousarray(a).reshape(-1)
    buf = np.empty(a.nbytes + align, dtype=np.uint8)
    off = (-buf.ctypes.data) % align
    out = buf[off : off + a.nbytes].view(a.dtype)
    out[...] = a
    return out


def nibble_tables() -> np.ndarray:
    """uint8 (16 * 32,): ``TT[32 v + j] = popcount((j % 16) XOR v)``."""
    pc = np.array([bin(i).count("1") for i in range(16)], dtype=np.uint8)
    j = np.arange(32) % 16
    return _aligned(pc[j[None, :] ^ np.arange(16)[:, None]])


TABLES = nibble_tables()


def prep_weights(wt: np.ndarray, n_in: int, tau: np.ndarray, flip: np.ndarray):
    """``(ws, lim, fw)`` of a hidden dense layer (module docstring) from the transposed weights.

    Parameters
    ----------
    wt : uint64 (win, U), U a multiple of 128
    n_in : int
        Real inputs (the score is ``n_in - 2 d``).
    tau : int (U,), flip : 0/1 (U,)
    """
    wt = np.asarray(wt, dtype=np.uint64)
    win, u = wt.shape
    if u % UNIT_BLOCK:
        raise ValueError(f"U = {u} is not a multiple of {UNIT_BLOCK}")
    nb = u // UNIT_BLOCK
    shifts = np.arange(16, dtype=np.uint64) * np.uint64(4)
    nib = ((wt[:, :, None] >> shifts) & np.uint64(15)).astype(np.uint8)  # (win, U, m)
    nib = nib.reshape(win, nb, 4, 32, 16)  # unit = 128 blk + 32 q + t
    b = np.arange(32)
    nib = nib[:, :, :, np.where(b % 2 == 0, b // 2, 16 + b // 2), :]  # t -> byte position b
    ws = np.ascontiguousarray(nib.transpose(1, 0, 4, 2, 3)).reshape(-1)  # (blk, k, m, q, b)
    # the scores lie in [-n_in, n_in]: clip first so that n_in - tau cannot overflow
    t = np.clip(np.asarray(tau, dtype=np.int64), -n_in - 2, n_in + 2)
    lim = np.clip(np.floor_divide(n_in - t, 2), -1, 32767).astype(np.int16)  # -1: never
    bits = (np.asarray(flip) != 0).astype(np.uint8).reshape(-1, 64)
    fw = np.packbits(bits, axis=1, bitorder="little").view("<u8").reshape(-1).astype(np.uint64)
    return _aligned(ws), _aligned(lim), fw


# --------------------------------------------------------------------------------------------
# the vector type and the intrinsics the kernel uses (AVX2)
# --------------------------------------------------------------------------------------------

_V8 = ir.VectorType(ir.IntType(8), 32)
_V16 = ir.VectorType(ir.IntType(16), 16)
_I64 = ir.IntType(64)


class _V256(types.Type):
    """32 bytes in a ymm register (``<32 x i8>``)."""

    def __init__(self):
        super().__init__(name="v256")


v256 = _V256()


@register_model(_V256)
class _V256Model(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _V8)


def _ptr(context, builder, arrty, arr, idx, elty):
    """Pointer to element ``idx`` of a 1-D array, cast to ``elty*`` (no bounds check)."""
    ary = context.make_array(arrty)(context, builder, arr)
    return builder.bitcast(builder.gep(ary.data, [idx]), elty.as_pointer())


@intrinsic
def vzero(typingctx):
    def codegen(context, builder, sig, args):
        return ir.Constant(_V8, [0] * 32)

    return v256(), codegen


@intrinsic
def vload(typingctx, arr, idx):
    """The 32 bytes at element ``idx`` of a 1-D array (unaligned load)."""

    def codegen(context, builder, sig, args):
        return builder.load(_ptr(context, builder, sig.args[0], args[0], args[1], _V8), align=1)

    return v256(arr, idx), codegen


@intrinsic
def vadd8(typingctx, a, b):
    """Bytewise add (wraps)."""

    def codegen(context, builder, sig, args):
        return builder.add(args[0], args[1])

    return v256(v256, v256), codegen


@intrinsic
def vshufb(typingctx, table, idx):
    """``vpshufb``: byte ``j`` = ``table[idx[j] & 15]`` within each 128-bit lane (idx < 128)."""

    def codegen(context, builder, sig, args):
        fnty = ir.FunctionType(_V8, [_V8, _V8])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.x86.avx2.pshuf.b")
        return builder.call(fn, [args[0], args[1]])

    return v256(v256, v256), codegen


@intrinsic
def vadd_even16(typingctx, acc, a):
    """``acc + (a & 0x00ff)`` in 16-bit lanes: the even bytes of ``a`` widened and added."""

    def codegen(context, builder, sig, args):
        lo = builder.and_(builder.bitcast(args[1], _V16), ir.Constant(_V16, [255] * 16))
        return builder.bitcast(builder.add(builder.bitcast(args[0], _V16), lo), _V8)

    return v256(v256, v256), codegen


@intrinsic
def vadd_odd16(typingctx, acc, a):
    """``acc + (a >> 8)`` in 16-bit lanes: the odd bytes of ``a`` widened and added."""

    def codegen(context, builder, sig, args):
        hi = builder.lshr(builder.bitcast(args[1], _V16), ir.Constant(_V16, [8] * 16))
        return builder.bitcast(builder.add(builder.bitcast(args[0], _V16), hi), _V8)

    return v256(v256, v256), codegen


@intrinsic
def vmask32_le(typingctx, lo, hi, lim, lidx):
    """uint64 whose bit ``j < 32`` is ``d[j] <= lim[lidx + j]`` (int16, signed).

    ``d[0..15]`` are the 16-bit lanes of ``lo``, ``d[16..31]`` those of ``hi``.
    """

    def codegen(context, builder, sig, args):
        res = []
        for h in range(2):
            idx = builder.add(args[3], ir.Constant(args[3].type, 16 * h))
            q = _ptr(context, builder, sig.args[2], args[2], idx, _V16)
            d = builder.bitcast(args[h], _V16)
            c = builder.icmp_signed("<=", d, builder.load(q, align=1))
            res.append(builder.zext(builder.bitcast(c, ir.IntType(16)), _I64))
        return builder.or_(res[0], builder.shl(res[1], ir.Constant(_I64, 16)))

    return types.uint64(v256, v256, lim, lidx), codegen


# --------------------------------------------------------------------------------------------
# kernel: one row, 4 groups of 32 units (128 units) per block, int16 register accumulators
# --------------------------------------------------------------------------------------------


@njit(inline="always", cache=True)
def _nibble_step(x0, sh, wb, ws, tt, a0, a1, a2, a3):
    """Add ``popcount(nibble XOR w)`` of one input nibble for 4 x 32 units."""
    t = vload(tt, ((x0 >> np.uint64(sh)) & np.uint64(15)) * np.uint64(32))
    a0 = vadd8(a0, vshufb(t, vload(ws, wb)))
    a1 = vadd8(a1, vshufb(t, vload(ws, wb + 32)))
    a2 = vadd8(a2, vshufb(t, vload(ws, wb + 64)))
    a3 = vadd8(a3, vshufb(t, vload(ws, wb + 96)))
    return a0, a1, a2, a3


@njit(inline="always", cache=True)
def _tbl_rows(x, ws, lim, fw, out, tt, r0, r1):
    """Rows ``r0 <= i < r1``: ``out[i]`` = packed ``(d <= lim) XOR flip`` for all units."""
    win = x.shape[1]
    for b in range(lim.shape[0] // 128):
        c0 = b * 128
        wbase = b * win * 2048
        for i in range(r0, r1):
            e0 = vzero()
            o0 = vzero()
            e1 = vzero()
            o1 = vzero()
            e2 = vzero()
            o2 = vzero()
            e3 = vzero()
            o3 = vzero()
            for k0 in range(0, win, _WORDS_PER_FLUSH):
                a0 = vzero()
                a1 = vzero()
                a2 = vzero()
                a3 = vzero()
                for k in range(k0, min(win, k0 + _WORDS_PER_FLUSH)):
                    x0 = x[i, k]
                    wb = wbase + k * 2048
                    for m in range(16):
                        a0, a1, a2, a3 = _nibble_step(
                            x0, 4 * m, wb + 128 * m, ws, tt, a0, a1, a2, a3
                        )
                e0 = vadd_even16(e0, a0)
                o0 = vadd_odd16(o0, a0)
                e1 = vadd_even16(e1, a1)
                o1 = vadd_odd16(o1, a1)
                e2 = vadd_even16(e2, a2)
                o2 = vadd_odd16(o2, a2)
                e3 = vadd_even16(e3, a3)
                o3 = vadd_odd16(o3, a3)
            w = c0 >> 6  # e_q: units c0 + 32 q + 0..15, o_q: units c0 + 32 q + 16..31
            out[i, w] = fw[w] ^ (
                vmask32_le(e0, o0, lim, c0) | (vmask32_le(e1, o1, lim, c0 + 32) << np.uint64(32))
            )
            out[i, w + 1] = fw[w + 1] ^ (
                vmask32_le(e2, o2, lim, c0 + 64)
                | (vmask32_le(e3, o3, lim, c0 + 96) << np.uint64(32))
            )


@njit(cache=True)
def dense_tbl_serial(x, ws, lim, fw, out, tt):  # pragma: no cover - compiled
    """Hidden dense layer: ``out`` (n, U // 64) = packed ``(score >= tau) XOR flip``.

    ``x`` uint64 (n, win) packed ±1 rows (zero padding), ``ws, lim, fw`` of
    :func:`prep_weights`, ``tt`` = :data:`TABLES`. Needs :func:`available`.
    """
    _tbl_rows(x, ws, lim, fw, out, tt, 0, x.shape[0])


@njit(parallel=True, cache=True)
def dense_tbl(x, ws, lim, fw, out, tt):  # pragma: no cover - compiled
    """:func:`dense_tbl_serial` with a prange over blocks of rows."""
    n = x.shape[0]
    for c in prange((n + _ROW_CHUNK - 1) // _ROW_CHUNK):
        r0 = c * _ROW_CHUNK
        r1 = min(n, r0 + _ROW_CHUNK)
        _tbl_rows(x, ws, lim, fw, out, tt, r0, r1)
