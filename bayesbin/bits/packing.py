"""Bit order, packing and unpacking, and preparing inputs for the popcount kernels.

Bit order (one layout everywhere: memory, files, C headers). A vector of ``n`` bits is stored
in ``ceil(n / 64)`` ``uint64`` words; bit ``j`` is bit ``j % 64`` of word ``j // 64``, counting
from the least significant bit (``(word >> (j % 64)) & 1``). Files store the words
little-endian. The ``64 * n_words - n`` padding bits of the last word are zero in every packed
weight; the kernels mask the input's padding, so padding never changes a result.

Input bits. A packed ±1 input uses bit 1 for +1 and bit 0 for -1 (the same convention as
:attr:`bayesbin.posterior.BinaryWeights.pm1`).

Examples
--------
>>> import numpy as np
>>> from bayesbin.bits import pack_bits, unpack_bits
>>> bits = np.array([[1, 0, 1], [0, 0, 1]], dtype=np.uint8)
>>> pack_bits(bits)
array([[5],
       [4]], dtype=uint64)
>>> unpack_bits(pack_bits(bits), 3)
array([[1, 0, 1],
       [0, 0, 1]], dtype=uint8)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayesbin._validation import check_choice, check_matrix
from bayesbin.bits import kernels as _popcount
from bayesbin.bits import levelkernels as _lk

__all__ = [
    "BIT_ORDER",
    "LevelInput",
    "PackedInput",
    "levels_input",
    "n_words",
    "pack_bits",
    "pack_input",
    "prepare_input",
    "unpack_bits",
]

BIT_ORDER = "uint64-lsb0"  # bit j -> bit (j % 64) of word (j // 64); words little-endian on disk
_ENCODINGS = ("01", "pm1")
_INPUTS = ("exact", "binarize")
_MAX_PLANES = 16
_SERIAL_WORK = 1 << 16  # below this many elementary steps a kernel runs single-threaded


# --------------------------------------------------------------------------------------------
# packing
# --------------------------------------------------------------------------------------------


def n_words(n_bits: int) -> int:
    """Number of uint64 words holding ``n_bits`` bits: ``ceil(n_bits / 64)``."""
    return (int(n_bits) + 63) // 64


def _last_mask(n_bits: int) -> np.uint64:
    rem = int(n_bits) % 64
    return np.uint64((1 << rem) - 1 if rem else 2**64 - 1)


def pack_bits(bits) -> np.ndarray:
    """Pack {0, 1} values into uint64 words along the last axis.

    Parameters
    ----------
    bits : array-like of shape (..., n)
        Bool, integer or float values, each exactly 0 or 1; at least 1-D.

    Returns
    -------
    ndarray of shape (..., ceil(n / 64)), uint64
        Bit ``j`` of the last axis is bit ``j % 64`` (LSB first) of word ``j // 64``; padding
        bits are 0. ``unpack_bits(pack_bits(b), n)`` returns ``b`` exactly.

    Raises
    ------
    TypeError
        For non-numeric input.
    ValueError
        For a 0-d input or values other than 0 and 1.
    """
    arr = np.asarray(bits)
    if arr.dtype == object or not (arr.dtype == bool or np.issubdtype(arr.dtype, np.number)):
        raise TypeError(f"bits must be bool or numeric with values 0/1; got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"bits must be real; got dtype {arr.dtype}")
    if arr.ndim == 0:
        raise ValueError("bits must be at least 1-D (they are packed along the last axis)")
    if arr.dtype != bool:
        if arr.size and not np.all((arr == 0) | (arr == 1)):
            raise ValueError("bits must hold only the values 0 and 1")
        arr = arr != 0
    n = arr.shape[-1]
    words = n_words(n)
    packed = np.packbits(arr, axis=-1, bitorder="little")
    buf = np.zeros((*arr.shape[:-1], words * 8), dtype=np.uint8)
    buf[..., : packed.shape[-1]] = packed
    return buf.view("<u8").astype(np.uint64, copy=False).reshape((*arr.shape[:-1], words))


def unpack_bits(packed, n_bits: int) -> np.ndarray:
    """Unpack uint64 words into {0, 1} values (inverse of :func:`pack_bits`).

    Parameters
    ----------
    packed : ndarray of shape (..., ceil(n_bits / 64)), uint64
    n_bits : int
        Number of bits per vector; padding bits beyond it are ignored.

    Returns
    -------
    ndarray of shape (..., n_bits), uint8
    """
    arr = np.asarray(packed)
    if arr.dtype != np.uint64:
        raise TypeError(f"packed must have dtype uint64; got {arr.dtype}")
    if isinstance(n_bits, bool) or not isinstance(n_bits, int | np.integer) or n_bits < 0:
        raise ValueError(f"n_bits must be a non-negative integer; got {n_bits!r}")
    if arr.ndim == 0 or arr.shape[-1] != n_words(n_bits):
        raise ValueError(
            f"packed must have {n_words(n_bits)} words on its last axis for n_bits={n_bits}; "
            f"got shape {arr.shape}"
        )
    raw = np.ascontiguousarray(arr.astype("<u8", copy=False)).view(np.uint8)
    return np.unpackbits(raw, axis=-1, count=int(n_bits), bitorder="little")


# --------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class PackedInput:
    """Inputs already packed for the popcount kernels.

    Attributes
    ----------
    words : ndarray of shape (n, n_planes, n_words), uint64
        Bit-plane ``p`` of row ``i`` at ``words[i, p]``; a plain bit matrix has one plane.
    n_features : int
        D.
    kind : {"01", "pm1", "planes"}
        Meaning of the bits: {0, 1} values, ±1 values (bit 1 is +1, bit 0 is -1), or the binary
        digits of non-negative integers ``q = sum_p 2**p plane_p``.
    divisor : float
        The input is ``q / divisor`` (255 for ``k / 255`` pixels, else 1).
    """

    words: np.ndarray
    n_features: int
    kind: str = "01"
    divisor: float = 1.0

    def __post_init__(self):
        w = self.words
        if not isinstance(w, np.ndarray) or w.dtype != np.uint64 or w.ndim != 3:
            raise TypeError("words must be a uint64 ndarray of shape (n, n_planes, n_words)")
        check_choice(self.kind, "kind", ("01", "pm1", "planes"))
        if w.shape[0] < 1 or w.shape[2] != n_words(self.n_features):
            raise ValueError(
                f"words must have shape (n >= 1, n_planes, {n_words(self.n_features)}) for "
                f"n_features={self.n_features}; got {w.shape}"
            )
        max_planes = _MAX_PLANES if self.kind == "planes" else 1
        if not 1 <= w.shape[1] <= max_planes:
            raise ValueError(f"kind {self.kind!r} allows 1..{max_planes} planes; got {w.shape[1]}")
        if not (np.isfinite(self.divisor) and self.divisor > 0):
            raise ValueError(f"divisor must be a positive number; got {self.divisor!r}")

    @classmethod
    def from_words(cls, words, n_features: int, encoding: str = "01") -> PackedInput:
        """Wrap pre-packed binary inputs.

        Parameters
        ----------
        words : ndarray of shape (n, ceil(n_features / 64)), uint64
            As produced by :func:`pack_bits`; padding bits are ignored.
        n_features : int
        encoding : {"01", "pm1"}
            Whether bit 0 means 0 or -1 (bit 1 means 1 / +1).
        """
        if encoding not in _ENCODINGS:
            raise ValueError(f"encoding must be one of {list(_ENCODINGS)}; got {encoding!r}")
        arr = np.asarray(words)
        if arr.dtype != np.uint64:
            raise TypeError(f"words must have dtype uint64; got {arr.dtype}")
        if arr.ndim != 2 or arr.shape[1] != n_words(n_features) or arr.shape[0] == 0:
            raise ValueError(
                f"words must have shape (n >= 1, {n_words(n_features)}) for n_features="
                f"{n_features}; got {arr.shape}"
            )
        return cls(np.ascontiguousarray(arr)[:, None, :], int(n_features), encoding, 1.0)

    @property
    def n_samples(self) -> int:
        """Number of rows."""
        return int(self.words.shape[0])

    def counts(self) -> np.ndarray:
        """Per row ``sum_j q_j`` (the popcount for a single plane), int64 of shape (n,)."""
        w = self.words.copy()
        w[:, :, -1] &= _last_mask(self.n_features)
        per_plane = np.bitwise_count(w).sum(axis=2, dtype=np.int64)
        weights = np.int64(1) << np.arange(w.shape[1], dtype=np.int64)
        return per_plane @ weights


def _counts(prep: PackedInput, beta) -> np.ndarray:
    """Per-row input sums when the score needs them (``beta != 0``), else zeros."""
    return prep.counts() if beta else np.zeros(prep.n_samples, dtype=np.int64)


def _pack_threshold(arr: np.ndarray, threshold: float, out: np.ndarray) -> int:
    small = arr.size < _SERIAL_WORK
    kernel = _popcount.pack_threshold_serial if small else _popcount.pack_threshold
    return kernel(arr, np.float64(threshold), out)


def _pack_exact(arr: np.ndarray, out: np.ndarray):
    small = arr.size < _SERIAL_WORK
    return (_popcount.pack_exact_serial if small else _popcount.pack_exact)(arr, out)


def _pack_levels(arr: np.ndarray, divisor: float, n_planes: int) -> np.ndarray | None:
    """Bit-planes of ``q`` when ``arr == q / divisor`` exactly with integer ``0 <= q < 2**P``."""
    out = np.empty((arr.shape[0], n_planes, n_words(arr.shape[1])), dtype=np.uint64)
    small = arr.size < _SERIAL_WORK
    kernel = _popcount.pack_levels_serial if small else _popcount.pack_levels
    return out if kernel(arr, np.float64(divisor), out) == 0 else None


def _integer_levels(arr: np.ndarray, in_unit: bool) -> tuple[np.ndarray, float] | None:
    """``(planes, divisor)`` when ``arr`` holds exact levels, else None.

    Levels are float64 values ``k / 255`` with integer ``0 <= k <= 255`` (divisor 255, tried when
    every value is in [0, 1]), float32 values equal to the float32 nearest ``k / 255`` (as
    ``pixels / 255`` in float32 gives; taken as the pixels ``k / 255``) or non-negative integer
    values below 2**16 of any dtype (divisor 1).
    """
    if in_unit:
        if arr.dtype == np.float32:
            lev = _levels255(arr)
            return None if lev is None else (_pack_levels(lev.q, 1.0, 8), 255.0)
        if arr.dtype != np.float64:
            return None
        planes = _pack_levels(arr, 255.0, 8)
        return None if planes is None else (planes, 255.0)
    lo, hi = arr.min(), arr.max()
    if lo < 0 or hi >= 2**_MAX_PLANES:
        return None
    planes = _pack_levels(arr, 1.0, max(1, int(hi).bit_length()))
    return None if planes is None else (planes, 1.0)


def _check_input_options(inputs, binarize_threshold, input_encoding) -> None:
    check_choice(inputs, "inputs", _INPUTS)
    check_choice(input_encoding, "input_encoding", _ENCODINGS)
    t = binarize_threshold
    if (
        isinstance(t, bool)
        or not isinstance(t, int | float | np.integer | np.floating)
        or not np.isfinite(t)
    ):
        raise ValueError(f"binarize_threshold must be a finite number; got {t!r}")


def pack_input(x, n_features: int, binarize_threshold: float, input_encoding: str) -> PackedInput:
    """Binarize and pack inputs: bit ``x > binarize_threshold`` (one plane).

    Parameters
    ----------
    x : array-like of shape (n_samples, n_features)
    n_features : int
    binarize_threshold : float
    input_encoding : {"01", "pm1"}
        Meaning of bit 0: 0 or -1 (bit 1 is 1 or +1).

    Returns
    -------
    PackedInput
    """
    arr = check_matrix(x, "x", n_features=n_features, finite=False, native=True)
    out = np.empty((arr.shape[0], n_words(n_features)), dtype=np.uint64)
    n_nan = _pack_threshold(arr, binarize_threshold, out)
    if n_nan:
        raise ValueError(f"x contains {n_nan} NaN value(s); all must be finite")
    return PackedInput(out[:, None, :], n_features, input_encoding, 1.0)


def prepare_input(
    x, n_features: int, inputs: str, binarize_threshold: float, input_encoding: str
) -> PackedInput | np.ndarray:
    """A :class:`PackedInput` for the popcount kernels, or a float64 matrix (float fallback).

    Parameters
    ----------
    x : array-like of shape (n_samples, n_features) or PackedInput
    n_features : int
    inputs : {"exact", "binarize"}
    binarize_threshold : float
    input_encoding : {"01", "pm1"}

    Returns
    -------
    PackedInput or ndarray of shape (n_samples, n_features), float64
    """
    if isinstance(x, PackedInput):
        if x.n_features != n_features:
            raise ValueError(f"packed input has {x.n_features} features but {n_features} expected")
        return x
    _check_input_options(inputs, binarize_threshold, input_encoding)
    if inputs == "binarize":
        return pack_input(x, n_features, binarize_threshold, input_encoding)
    arr = check_matrix(x, "x", n_features=n_features, finite=False, native=True)
    out = np.empty((arr.shape[0], n_words(n_features)), dtype=np.uint64)
    not01, notpm1, nonfinite, outside_unit = _pack_exact(arr, out)
    if nonfinite:
        raise ValueError(f"x contains {nonfinite} NaN or infinite value(s); all must be finite")
    if not01 == 0:
        return PackedInput(out[:, None, :], n_features, "01", 1.0)
    if notpm1 == 0:
        return PackedInput(out[:, None, :], n_features, "pm1", 1.0)
    levels = _integer_levels(arr, outside_unit == 0)
    if levels is not None:
        planes, divisor = levels
        return PackedInput(planes, n_features, "planes", divisor)
    return np.asarray(arr, dtype=np.float64)


# --------------------------------------------------------------------------------------------
# integer levels (first layers on real inputs)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class LevelInput:
    """Real inputs that are exact integer levels, ``x = q / divisor``.

    Attributes
    ----------
    q : ndarray of shape (n, n_features), uint8 or uint16
    divisor : float
        255 for ``k / 255`` pixels (float32 or float64), 1 for integer values.
    """

    q: np.ndarray
    divisor: float

    @property
    def n_samples(self) -> int:
        """Number of rows."""
        return int(self.q.shape[0])


def _levels255(arr: np.ndarray) -> LevelInput | None:
    q = np.empty(arr.shape, dtype=np.uint8)
    kernel = _lk.levels255_serial if arr.size < _SERIAL_WORK else _lk.levels255
    return LevelInput(q, 255.0) if kernel(arr, q) == 0 else None


def _levels_int(arr: np.ndarray) -> LevelInput | None:
    if arr.dtype == np.uint8:
        return LevelInput(arr, 1.0)
    q = np.empty(arr.shape, dtype=np.uint16)
    kernel = _lk.levels_int_serial if arr.size < _SERIAL_WORK else _lk.levels_int
    if kernel(arr, q) != 0:
        return None
    return LevelInput(q.astype(np.uint8) if q.max() <= 255 else q, 1.0)


def levels_input(arr: np.ndarray) -> LevelInput | None:
    """Exact integer levels of a checked 2-D numeric array, or None.

    Float values that are all exactly ``k / 255`` (float64; float32: the float32 nearest
    ``k / 255``) give ``q = k`` with divisor 255; otherwise non-negative integer values below
    2**16 (any dtype) give ``q = x`` with divisor 1. ``q`` is uint8 when every level is below
    256, else uint16.

    Parameters
    ----------
    arr : ndarray of shape (n, n_features)
        From :func:`bayesbin._validation.check_matrix` with ``native=True``.

    Returns
    -------
    LevelInput or None
    """
    if arr.dtype in (np.float32, np.float64):
        lev = _levels255(arr)
        if lev is not None:
            return lev
    return _levels_int(arr)


def _binary_row(row: np.ndarray) -> bool:
    """Whether one row holds only {0, 1} or only {-1, +1} values (a binary input)."""
    return bool(np.all((row == 0) | (row == 1)) or np.all((row == 1) | (row == -1)))


def fast_levels(x, n_features: int, inputs: str) -> np.ndarray | LevelInput | None:
    """Candidate integer levels for a single classifier's level paths, or None.

    Only for ``inputs="exact"`` inputs that are not binary (judged on the first row; binary
    inputs keep the popcount paths of :func:`prepare_input`): a float32/float64 matrix whose
    first row is exact ``k / 255`` levels is returned as is (the caller checks every value, on
    the fly or with :func:`levels_input`); uint8 integers (no scan) or other non-negative
    integers below 2**16 come back as a :class:`LevelInput`.

    Parameters
    ----------
    x : array-like of shape (n_samples, n_features) or PackedInput
    n_features : int
    inputs : {"exact", "binarize"}

    Returns
    -------
    ndarray, LevelInput or None
    """
    if inputs != "exact" or isinstance(x, PackedInput):
        return None
    arr = check_matrix(x, "x", n_features=n_features, finite=False, native=True)
    if _binary_row(arr[0]):
        return None
    if arr.dtype in (np.float32, np.float64):
        return arr if _levels255(arr[:1]) is not None else None
    return _levels_int(arr)
