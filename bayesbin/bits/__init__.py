"""Packed-bit inference: pack/unpack, popcount classifiers and ensembles, files and C export.

Bit order (one layout everywhere: memory, files, C headers). A vector of ``n`` bits is stored
in ``ceil(n / 64)`` ``uint64`` words; bit ``j`` is bit ``j % 64`` of word ``j // 64``, counting
from the least significant bit (``(word >> (j % 64)) & 1``). Files store the words
little-endian. The ``64 * n_words - n`` padding bits of the last word are zero in every packed
weight; the kernels mask the input's padding, so padding never changes a result.

Scores. A classifier holds its weights as integer *score rows* (packed along the input
dimension D) plus an affine float map: softmax has K rows, ``eta = scale * score + b``;
logistic ``"single"`` one row, ``eta = scale * score + b``; ``"two_output"`` two rows,
``eta = scale * (score_1 - score_0) + b`` (``P(y=1) = sigmoid(eta)``). With ``W = w``
("01") or ``2 w - 1`` ("pm1") and inputs ``x``, the score ``x @ W`` is computed exactly from
popcounts:

=============== ================= ==========================================
weights W       inputs x          score
=============== ================= ==========================================
{0, 1}          {0, 1}            ``popcount(w AND x)``
±1              ±1                ``D - 2 popcount(w XOR x)`` (XNOR-popcount)
±1              {0, 1}            ``2 popcount(w AND x) - popcount(x)``
{0, 1}          ±1                ``2 popcount(w AND x) - popcount(w)``
any             ints 0..2**16-1   ``sum_p 2**p score(plane_p)`` (bit-planes)
=============== ================= ==========================================

Input bits. A packed ±1 input uses bit 1 for +1 and bit 0 for -1 (the same convention as
:attr:`bayesbin.posterior.BinaryWeights.pm1`).

Input paths (``inputs=``):

* ``"exact"`` (default): the result agrees with the float model's ``scale * (x @ W) + b``.
  Inputs whose values are all in {0, 1} or all in {-1, +1} take the popcount path (bit-exact
  equal to the float64 model); non-negative integers below 2**16 (any dtype) take the bit-plane
  path (exact integer score, bit-exact too); float64 values that are exactly ``k / 255``
  (MNIST pixels) take the bit-plane path on ``k`` with ``score / 255`` (the integer score is
  exact; the float model's own sum differs by rounding, ~1e-16 relative); anything else
  (including float32 pixels, which are not exactly ``k / 255``) falls back to a float64 matmul
  with the unpacked weights (the float model itself). The popcount path on binary inputs is
  the fast one; bit-planes are exact but cost about as much as the float64 matmul (8 planes).
* ``"binarize"``: every value becomes the bit ``x > binarize_threshold`` (default 0.5,
  strictly greater: a value equal to the threshold gives bit 0; NaN is an error). With
  ``input_encoding="01"`` bit 0 means 0; with ``"pm1"`` bit 0 means -1, so an input of 0 maps
  to -1 (with any threshold >= 0). Inputs already in {0, 1}, or in {-1, +1}, pass the default
  threshold unchanged.

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

import hashlib
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import expit

from bayesbin._io import atomic_write
from bayesbin._validation import check_choice, check_matrix
from bayesbin.bits import kernels as _popcount
from bayesbin.linear.maths import draw_logits, predictive_proba_from_draws, softmax
from bayesbin.posterior import BinaryWeights
from bayesbin.posterior import threshold as _threshold

__all__ = [
    "BIT_ORDER",
    "FORMAT_VERSION",
    "PackedClassifier",
    "PackedEnsemble",
    "PackedInput",
    "load_bits",
    "n_words",
    "pack_bits",
    "to_bits",
    "unpack_bits",
]

BIT_ORDER = "uint64-lsb0"  # bit j -> bit (j % 64) of word (j // 64); words little-endian on disk
FORMAT_VERSION = 1
_MAGIC = b"\x89BAYBIT\n"
_PREFIX = struct.Struct("<8sIIQ")  # magic, version, flags, header length
_DIGEST = 32
_FORMS = ("softmax", "single", "two_output")
_INPUTS = ("exact", "binarize")
_ENCODINGS = ("01", "pm1")
_MAX_PLANES = 16
_TABLE_BYTES = 256 * 2**20  # largest lookup table the ensembles build
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
    every value is in [0, 1]) or non-negative integer values below 2**16 of any dtype
    (divisor 1).
    """
    if in_unit:
        if arr.dtype != np.float64:
            return None
        planes = _pack_levels(arr, 255.0, 8)
        return None if planes is None else (planes, 255.0)
    lo, hi = arr.min(), arr.max()
    if lo < 0 or hi >= 2**_MAX_PLANES:
        return None
    planes = _pack_levels(arr, 1.0, max(1, int(hi).bit_length()))
    return None if planes is None else (planes, 1.0)


# --------------------------------------------------------------------------------------------
# packed models
# --------------------------------------------------------------------------------------------


def _rows_from_bits(bits: np.ndarray, form: str) -> np.ndarray:
    """Model-shaped weight bits (..., *weight_shape) -> score rows (..., R, D)."""
    if form == "softmax":
        return np.swapaxes(bits, -1, -2)
    if form == "single":
        return bits[..., None, :]
    return bits


def _bits_from_rows(rows: np.ndarray, form: str) -> np.ndarray:
    if form == "softmax":
        return np.swapaxes(rows, -1, -2)
    if form == "single":
        return rows[..., 0, :]
    return rows


def _jsonable_classes(classes: np.ndarray) -> tuple[list, str]:
    if classes.dtype.kind in "iub":
        return [
            int(c) if classes.dtype.kind != "b" else bool(c) for c in classes
        ], classes.dtype.str
    if classes.dtype.kind == "f":
        if not np.all(np.isfinite(classes)):
            raise ValueError("classes must be finite to be saved")
        return [float(c) for c in classes], classes.dtype.str
    if classes.dtype.kind == "U" or (
        classes.dtype == object and all(isinstance(c, str) for c in classes)
    ):
        return [str(c) for c in classes], "str"
    raise TypeError(
        f"classes of dtype {classes.dtype} cannot be saved; use ints, floats, bools or strings"
    )


def _classes_from_json(values, dtype: str) -> np.ndarray:
    if not isinstance(values, list):
        raise ValueError("classes must be a JSON list")
    if dtype == "str":
        if not all(isinstance(v, str) for v in values):
            raise ValueError("classes marked 'str' must be strings")
        return np.asarray(values, dtype=str)
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise ValueError(f"unknown classes dtype {dtype!r}") from exc
    if dt.kind not in "iubf":
        raise ValueError(f"unsupported classes dtype {dtype!r}")
    if not all(isinstance(v, int | float | bool) for v in values):
        raise ValueError("classes must be numbers for a numeric classes dtype")
    return np.asarray(values, dtype=dt)


class _PackedModel:
    """Shared machinery of :class:`PackedClassifier` and :class:`PackedEnsemble`."""

    _ensemble = False

    def __init__(
        self,
        weights,
        *,
        n_features: int,
        form: str = "softmax",
        weight_encoding: str = "01",
        scale=1.0,
        bias=None,
        classes=None,
        inputs: str = "exact",
        binarize_threshold: float = 0.5,
        input_encoding: str = "01",
        metadata: dict | None = None,
    ):
        check_choice(form, "form", _FORMS)
        check_choice(weight_encoding, "weight_encoding", _ENCODINGS)
        if isinstance(n_features, bool) or not isinstance(n_features, int | np.integer):
            raise TypeError(f"n_features must be an int; got {n_features!r}")
        if n_features < 1:
            raise ValueError(f"n_features must be >= 1; got {n_features}")
        d = int(n_features)
        w = np.asarray(weights)
        if w.dtype != np.uint64:
            raise TypeError(f"weights must be packed uint64 words; got dtype {w.dtype}")
        want_ndim = 3 if self._ensemble else 2
        if w.ndim != want_ndim:
            raise ValueError(
                f"weights must be {want_ndim}-D "
                f"({'(S, R, n_words)' if self._ensemble else '(R, n_words)'}); got {w.shape}"
            )
        if not self._ensemble:
            w = w[None]
        s_draws, n_rows, words = w.shape
        if s_draws < 1:
            raise ValueError("an ensemble needs at least 1 draw")
        if words != n_words(d):
            raise ValueError(
                f"weights have {words} words per row but n_features={d} needs {n_words(d)}"
            )
        expected_rows = {"single": 1, "two_output": 2}.get(form)
        if expected_rows is not None and n_rows != expected_rows:
            raise ValueError(f"form {form!r} needs {expected_rows} score row(s); got {n_rows}")
        if form == "softmax" and n_rows < 2:
            raise ValueError(f"a softmax model needs K >= 2 score rows; got {n_rows}")
        pad = ~_last_mask(d)
        if np.any(w[:, :, -1] & pad):
            raise ValueError("weights have non-zero padding bits beyond n_features")
        k = n_rows if form == "softmax" else 2
        self.form = form
        self.family = "softmax" if form == "softmax" else "logistic"
        self.weight_encoding = weight_encoding
        self.n_features = d
        self.n_words = words
        self.n_rows = n_rows
        self.n_classes = k
        self._w = np.array(w, dtype=np.uint64, order="C", copy=True)
        self._wt = None
        self._wt_cm = None
        self._w_eff = None
        self._popw = None
        self._tables: dict = {}
        self._scale = self._real(scale, (s_draws,), "scale", fill=1.0)
        bias_shape = (s_draws, k) if form == "softmax" else (s_draws,)
        self._bias = self._real(bias, bias_shape, "bias", fill=0.0)
        if classes is None:
            classes = np.arange(k)
        classes = np.asarray(classes)
        if classes.ndim != 1 or classes.shape[0] != k:
            raise ValueError(f"classes must be 1-D with {k} labels; got shape {classes.shape}")
        try:
            distinct = len(set(classes.tolist())) == k
        except TypeError:  # unhashable labels
            distinct = False
        if not distinct:
            raise ValueError("classes must be distinct, hashable labels")
        self.classes_ = classes
        self.inputs = inputs
        self.binarize_threshold = binarize_threshold
        self.input_encoding = input_encoding
        self._check_input_options()
        self.metadata = dict(metadata or {})

    # ---- construction helpers ---------------------------------------------------------------

    def _real(self, value, shape, name, fill):
        if value is None:
            return np.full(shape, fill, dtype=np.float64)
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must be numeric") from exc
        target = shape if self._ensemble else shape[1:]
        try:
            arr = np.broadcast_to(arr, target)
        except ValueError as exc:
            raise ValueError(f"{name} of shape {arr.shape} does not fit shape {target}") from exc
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite")
        return np.array(arr.reshape(shape), dtype=np.float64)

    @classmethod
    def from_bits(cls, bits, *, form: str = "softmax", **kwargs):
        """Build from unpacked {0, 1} weights in the model's shape.

        Parameters
        ----------
        bits : array-like of {0, 1}
            ``w`` as in the model: (D, K) softmax, (D,) single, (2, D) two_output, with a
            leading draws axis S for an ensemble.
        form : {"softmax", "single", "two_output"}
        **kwargs
            ``weight_encoding``, ``scale``, ``bias``, ``classes``, ``inputs``,
            ``binarize_threshold``, ``input_encoding``, ``metadata`` as in the constructor.
        """
        check_choice(form, "form", _FORMS)
        arr = np.asarray(bits)
        base_ndim = 1 if form == "single" else 2
        want = base_ndim + (1 if cls._ensemble else 0)
        if arr.ndim != want:
            raise ValueError(f"bits for form {form!r} must be {want}-D; got shape {arr.shape}")
        rows = _rows_from_bits(arr, form)
        return cls(pack_bits(rows), n_features=int(rows.shape[-1]), form=form, **kwargs)

    def _check_input_options(self) -> None:
        check_choice(self.inputs, "inputs", _INPUTS)
        check_choice(self.input_encoding, "input_encoding", _ENCODINGS)
        t = self.binarize_threshold
        if (
            isinstance(t, bool)
            or not isinstance(t, int | float | np.integer | np.floating)
            or not np.isfinite(t)
        ):
            raise ValueError(f"binarize_threshold must be a finite number; got {t!r}")

    # ---- views ------------------------------------------------------------------------------

    @property
    def n_draws(self) -> int:
        """Number of packed draws (1 for a classifier)."""
        return int(self._w.shape[0])

    @property
    def storage_bytes(self) -> int:
        """Bytes of the packed weight words."""
        return int(self._w.nbytes)

    def _bits_all(self) -> np.ndarray:
        rows = unpack_bits(self._w, self.n_features)
        return _bits_from_rows(rows, self.form)

    def _weights_eff(self) -> np.ndarray:
        if self._w_eff is None:
            w = self._bits_all().astype(np.float64)
            self._w_eff = 2.0 * w - 1.0 if self.weight_encoding == "pm1" else w
        return self._w_eff

    def _transposed(self) -> np.ndarray:
        """Weight words as (n_words, S * R), column ``s * R + r`` (draw-major)."""
        if self._wt is None:
            flat = self._w.reshape(-1, self.n_words)
            self._wt = np.ascontiguousarray(flat.T)
        return self._wt

    def _transposed_class_major(self) -> np.ndarray:
        """Weight words as (n_words, R * S), column ``r * S + s`` (class-major)."""
        if self._wt_cm is None:
            flat = self._w.transpose(1, 0, 2).reshape(-1, self.n_words)
            self._wt_cm = np.ascontiguousarray(flat.T)
        return self._wt_cm

    # ---- inputs -----------------------------------------------------------------------------

    def pack_input(self, x) -> PackedInput:
        """Binarize and pack inputs with this model's settings (``x > binarize_threshold``).

        Parameters
        ----------
        x : array-like of shape (n_samples, n_features)

        Returns
        -------
        PackedInput
            One plane; bit 1 is 1 (``input_encoding="01"``) or +1 (``"pm1"``), bit 0 is 0 or -1.
        """
        self._check_input_options()
        arr = check_matrix(x, "x", n_features=self.n_features, finite=False, native=True)
        out = np.empty((arr.shape[0], self.n_words), dtype=np.uint64)
        n_nan = _pack_threshold(arr, self.binarize_threshold, out)
        if n_nan:
            raise ValueError(f"x contains {n_nan} NaN value(s); all must be finite")
        return PackedInput(out[:, None, :], self.n_features, self.input_encoding, 1.0)

    def _prepare(self, x):
        """A :class:`PackedInput`, or a float64 matrix for the float fallback."""
        if isinstance(x, PackedInput):
            if x.n_features != self.n_features:
                raise ValueError(
                    f"packed input has {x.n_features} features but {self.n_features} expected"
                )
            return x
        self._check_input_options()
        if self.inputs == "binarize":
            return self.pack_input(x)
        arr = check_matrix(x, "x", n_features=self.n_features, finite=False, native=True)
        out = np.empty((arr.shape[0], self.n_words), dtype=np.uint64)
        not01, notpm1, nonfinite, outside_unit = _pack_exact(arr, out)
        if nonfinite:
            raise ValueError(f"x contains {nonfinite} NaN or infinite value(s); all must be finite")
        if not01 == 0:
            return PackedInput(out[:, None, :], self.n_features, "01", 1.0)
        if notpm1 == 0:
            return PackedInput(out[:, None, :], self.n_features, "pm1", 1.0)
        levels = _integer_levels(arr, outside_unit == 0)
        if levels is not None:
            planes, divisor = levels
            return PackedInput(planes, self.n_features, "planes", divisor)
        return np.asarray(arr, dtype=np.float64)

    def input_path(self, x) -> str:
        """Which computation :meth:`predict` would use for ``x``.

        Returns
        -------
        {"bits01", "bitspm1", "planes", "planes255", "float"}
            Popcount on {0, 1} or ±1 bits, bit-planes of integers (``"planes255"`` for
            ``k / 255`` values) or the float64 fallback.
        """
        prep = self._prepare(x)
        if not isinstance(prep, PackedInput):
            return "float"
        if prep.kind == "planes":
            return "planes255" if prep.divisor == 255.0 else "planes"
        return "bits" + prep.kind

    def _mode(self, prep: PackedInput):
        """Kernel parameters ``(xor_mode, alpha, beta, offset (S, R), spread)``."""
        d = self.n_features
        s_draws, n_rows = self._w.shape[:2]
        offset = np.zeros((s_draws, n_rows), dtype=np.int64)
        if prep.kind == "pm1" and self.weight_encoding == "pm1":
            offset[:] = d
            xor_mode, alpha, beta = True, -2, 0
        elif prep.kind == "pm1":
            if self._popw is None:
                self._popw = np.bitwise_count(self._w).sum(axis=2, dtype=np.int64)
            offset = -self._popw
            xor_mode, alpha, beta = False, 2, 0
        elif self.weight_encoding == "pm1":
            xor_mode, alpha, beta = False, 2, -1
        else:
            xor_mode, alpha, beta = False, 1, 0
        q_max = (1 << prep.words.shape[1]) - 1
        return xor_mode, np.int64(alpha), np.int64(beta), offset, q_max * d

    def _raw_scores(self, prep: PackedInput) -> np.ndarray:
        """Integer scores ``x @ W * divisor`` of every draw and row, int64 (S, n, R)."""
        xor_mode, alpha, beta, offset, _ = self._mode(prep)
        words = np.ascontiguousarray(prep.words)
        wt = self._transposed()
        small = words.size * wt.shape[1] < _SERIAL_WORK
        kernel = _popcount.scores_serial if small else _popcount.scores
        out = kernel(
            words,
            _counts(prep, beta),
            wt,
            _last_mask(self.n_features),
            xor_mode,
            alpha,
            beta,
            offset.reshape(-1),
        )
        s_draws, n_rows = self._w.shape[:2]
        return out.reshape(out.shape[0], s_draws, n_rows).transpose(1, 0, 2)

    def _logits_from_scores(self, sc: np.ndarray, divisor: float) -> np.ndarray:
        """(S, n, R) int scores -> float64 logits (S, n, K) or (S, n)."""
        if self.form == "softmax":
            z = sc.astype(np.float64)
        elif self.form == "single":
            z = sc[..., 0].astype(np.float64)
        else:
            z = (sc[..., 1] - sc[..., 0]).astype(np.float64)
        if divisor != 1.0:
            z = z / divisor
        if self.form == "softmax":
            return self._scale[:, None, None] * z + self._bias[:, None, :]
        return self._scale[:, None] * z + self._bias[:, None]

    def _draw_logits(self, x) -> np.ndarray:
        prep = self._prepare(x)
        if isinstance(prep, PackedInput):
            return self._logits_from_scores(self._raw_scores(prep), prep.divisor)
        return draw_logits(self._weights_eff(), self._bias, self._scale, prep, form=self.form)

    # ---- files ------------------------------------------------------------------------------

    def _header(self) -> dict:
        classes, classes_dtype = _jsonable_classes(self.classes_)
        return {
            "format": "bayesbin.bits",
            "kind": "ensemble" if self._ensemble else "classifier",
            "bit_order": BIT_ORDER,
            "byte_order": "little",
            "form": self.form,
            "family": self.family,
            "weight_encoding": self.weight_encoding,
            "n_features": self.n_features,
            "n_words": self.n_words,
            "n_rows": self.n_rows,
            "n_draws": self.n_draws,
            "n_classes": self.n_classes,
            "classes": classes,
            "classes_dtype": classes_dtype,
            "inputs": self.inputs,
            "binarize_threshold": float(self.binarize_threshold),
            "input_encoding": self.input_encoding,
            "metadata": self.metadata,
        }

    def save(self, path) -> None:
        """Write the model to one file, atomically (temporary file + ``os.replace``).

        Format (version 1): 8-byte magic ``b"\\x89BAYBIT\\n"``, uint32 version, uint32 flags
        (0), uint64 header length, UTF-8 JSON header (encoding, bit order, shapes, classes,
        input settings, metadata and an ``arrays`` table of name/dtype/shape/offset/nbytes),
        the raw little-endian arrays ``weights`` (uint64, (S, R, n_words)), ``scale``
        (float64, (S,)) and ``bias`` (float64, (S, K) or (S,)), then the SHA-256 of all
        preceding bytes.

        Parameters
        ----------
        path : str or os.PathLike
        """
        arrays = [
            ("weights", self._w.astype("<u8")),
            ("scale", self._scale.astype("<f8")),
            ("bias", self._bias.astype("<f8")),
        ]
        header = self._header()
        table, offset = [], 0
        for name, arr in arrays:
            table.append(
                {
                    "name": name,
                    "dtype": arr.dtype.str,
                    "shape": list(arr.shape),
                    "offset": offset,
                    "nbytes": int(arr.nbytes),
                }
            )
            offset += arr.nbytes
        header["arrays"] = table
        try:
            blob = json.dumps(header, sort_keys=True, allow_nan=False).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise TypeError(f"metadata must be JSON-serialisable: {exc}") from exc
        body = b"".join(
            [
                _PREFIX.pack(_MAGIC, FORMAT_VERSION, 0, len(blob)),
                blob,
                *(np.ascontiguousarray(a).tobytes() for _, a in arrays),
            ]
        )
        _atomic_write(path, body + hashlib.sha256(body).digest())

    def export_c_header(self, path, *, prefix: str = "bayesbin") -> None:
        """Write a self-contained C99 header with the packed weights and a reference predict.

        The header defines ``<PREFIX>_N_FEATURES``, ``<PREFIX>_N_WORDS``, ``<PREFIX>_N_DRAWS``,
        ``<PREFIX>_N_ROWS``, ``<PREFIX>_N_CLASSES``, the arrays ``<prefix>_weights``
        (``uint64_t [N_DRAWS][N_ROWS][N_WORDS]``), ``<prefix>_scale`` and ``<prefix>_bias``, and
        ``static inline`` functions taking ``const uint64_t *x_packed`` (``N_WORDS`` words, the
        same bit order as :func:`pack_bits`; bit 1 means 1, bit 0 means 0 for
        ``input_encoding="01"`` or -1 for ``"pm1"``; padding bits are ignored):

        * ``void <prefix>_decision_function(const uint64_t *x, int draw, double *eta)``: the
          draw's logits (K values for softmax, 1 for logistic);
        * ``void <prefix>_predict_proba(const uint64_t *x, double *proba)``: K probabilities
          (mean over draws);
        * ``int <prefix>_predict(const uint64_t *x)``: the class index (into the class list
          given in the header comment).

        Compile with ``cc -std=c99 ... -lm``. Written atomically.

        Parameters
        ----------
        path : str or os.PathLike
        prefix : str
            C identifier prefix.
        """
        _atomic_write(path, _c_header(self, prefix).encode("utf-8"))

    def __repr__(self) -> str:
        extra = f", n_draws={self.n_draws}" if self._ensemble else ""
        return (
            f"{type(self).__name__}(form={self.form!r}, weight_encoding={self.weight_encoding!r}, "
            f"n_features={self.n_features}, n_classes={self.n_classes}{extra}, "
            f"inputs={self.inputs!r})"
        )


class PackedClassifier(_PackedModel):
    """One binary-weight classifier evaluated by popcounts.

    Parameters
    ----------
    weights : ndarray of shape (R, ceil(n_features / 64)), uint64
        Packed score rows: the K columns of ``w`` (softmax), ``w`` (single) or its two rows
        (two_output); padding bits must be 0. :meth:`from_bits` packs model-shaped bits.
    n_features : int
        D.
    form : {"softmax", "single", "two_output"}
    weight_encoding : {"01", "pm1"}
        ``W = w`` or ``W = 2 w - 1``.
    scale : float
        Logit scale (1 when the model has none).
    bias : float or ndarray of shape (K,), optional
        Zeros when omitted.
    classes : array-like of shape (K,), optional
        Labels returned by :meth:`predict`; ``range(K)`` by default.
    inputs : {"exact", "binarize"}
        How dense inputs are treated (see the module docstring).
    binarize_threshold : float
        ``x > binarize_threshold`` is bit 1 for ``inputs="binarize"`` and :meth:`pack_input`.
    input_encoding : {"01", "pm1"}
        Meaning of bit 0 of binarized/pre-packed inputs: 0 or -1.
    metadata : dict, optional
        JSON-serialisable provenance (rule, spec, draws), kept in files.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesbin.bits import PackedClassifier
    >>> w = np.array([[1, 0], [0, 1], [1, 1]])          # (D=3, K=2)
    >>> clf = PackedClassifier.from_bits(w, form="softmax")
    >>> clf.decision_function(np.array([[1, 0, 1]]))
    array([[2., 1.]])
    """

    @property
    def packed_weights(self) -> np.ndarray:
        """The packed score rows, uint64 of shape (R, n_words)."""
        return self._w[0]

    @property
    def scale(self) -> float:
        """The logit scale."""
        return float(self._scale[0])

    @property
    def bias(self) -> np.ndarray | float:
        """The bias: float64 array of shape (K,) for softmax, a float for logistic models."""
        return self._bias[0].copy() if self.family == "softmax" else float(self._bias[0])

    @property
    def bits(self) -> np.ndarray:
        """The weights ``w`` unpacked to the model's shape, uint8."""
        return self._bits_all()[0]

    def scores(self, x) -> np.ndarray:
        """Integer scores ``x @ W`` per score row (popcount paths only).

        Parameters
        ----------
        x : array-like of shape (n_samples, n_features) or PackedInput

        Returns
        -------
        ndarray of shape (n_samples, R), int64
            For ``k / 255`` inputs the scores are of the integer levels ``k`` (i.e. ``255 x``).

        Raises
        ------
        ValueError
            If ``x`` would take the float fallback path.
        """
        prep = self._prepare(x)
        if not isinstance(prep, PackedInput):
            raise ValueError("x takes the float fallback path: it has no integer scores")
        return self._raw_scores(prep)[0]

    def decision_function(self, x) -> np.ndarray:
        """Logits ``eta``.

        Parameters
        ----------
        x : array-like of shape (n_samples, n_features) or PackedInput

        Returns
        -------
        ndarray of float64
            Shape (n_samples, K) for softmax, (n_samples,) for logistic models (the log-odds of
            class ``classes_[1]``).
        """
        return self._draw_logits(x)[0]

    def predict_proba(self, x) -> np.ndarray:
        """Class probabilities ``softmax(eta)`` (logistic: ``[1 - sigmoid, sigmoid]``).

        Parameters
        ----------
        x : array-like of shape (n_samples, n_features) or PackedInput

        Returns
        -------
        ndarray of shape (n_samples, K), float64
        """
        eta = self.decision_function(x)
        if self.family == "softmax":
            return softmax(eta)
        p = expit(eta)
        return np.stack([1.0 - p, p], axis=1)

    def predict(self, x) -> np.ndarray:
        """Class labels: ``classes_[argmax eta]`` (first on ties); logistic ``eta > 0``.

        Parameters
        ----------
        x : array-like of shape (n_samples, n_features) or PackedInput

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        eta = self.decision_function(x)
        idx = np.argmax(eta, axis=1) if self.family == "softmax" else (eta > 0).astype(np.int64)
        return self.classes_[idx]


class PackedEnsemble(_PackedModel):
    """S packed posterior draws averaged as a Bayesian model average.

    ``predict_proba`` is the mean over draws of each draw's ``softmax(eta_s)`` (logistic:
    ``sigmoid``), computed from popcount scores by a fused, multi-threaded kernel; it equals
    :func:`bayesbin.posterior_predictive_proba` on the same draws up to float rounding.

    Parameters
    ----------
    weights : ndarray of shape (S, R, ceil(n_features / 64)), uint64
        Packed score rows of every draw.
    scale : float or ndarray of shape (S,)
    bias : ndarray of shape (S, K) (softmax) or (S,) (logistic), optional
    **kwargs
        As for :class:`PackedClassifier`.
    """

    _ensemble = True

    @property
    def packed_weights(self) -> np.ndarray:
        """The packed score rows, uint64 of shape (S, R, n_words)."""
        return self._w

    @property
    def scale(self) -> np.ndarray:
        """Per-draw logit scales, float64 of shape (S,)."""
        return self._scale.copy()

    @property
    def bias(self) -> np.ndarray:
        """Per-draw biases, float64 of shape (S, K) (softmax) or (S,) (logistic)."""
        return self._bias.copy()

    @property
    def bits(self) -> np.ndarray:
        """Every draw's weights unpacked to the model's shape, uint8 (S, *weight_shape)."""
        return self._bits_all()

    def __len__(self) -> int:
        return self.n_draws

    def __getitem__(self, i) -> PackedClassifier:
        """Draw ``i`` as a :class:`PackedClassifier` (same input settings)."""
        if isinstance(i, bool) or not isinstance(i, int | np.integer):
            raise TypeError("index an ensemble with an int")
        i = range(self.n_draws)[i]
        return PackedClassifier(
            self._w[i],
            n_features=self.n_features,
            form=self.form,
            weight_encoding=self.weight_encoding,
            scale=self._scale[i],
            bias=self._bias[i],
            classes=self.classes_,
            inputs=self.inputs,
            binarize_threshold=self.binarize_threshold,
            input_encoding=self.input_encoding,
            metadata=self.metadata,
        )

    def scores(self, x) -> np.ndarray:
        """Integer scores of every draw, int64 (S, n_samples, R) (popcount paths only)."""
        prep = self._prepare(x)
        if not isinstance(prep, PackedInput):
            raise ValueError("x takes the float fallback path: it has no integer scores")
        return self._raw_scores(prep)

    def draw_decision_function(self, x) -> np.ndarray:
        """Every draw's logits: (S, n, K) softmax or (S, n) logistic, float64."""
        return self._draw_logits(x)

    def _table(self, spread: int, divisor: float):
        key = (spread, divisor)
        if key not in self._tables:
            s_draws = self.n_draws
            if self.family == "softmax":
                size = 2 * spread + 1
                ok = self._scale >= 0
                if s_draws * size * 8 > _TABLE_BYTES:
                    ok[:] = False
                    size = 1
                gaps = np.arange(size, dtype=np.float64)
                if divisor != 1.0:
                    gaps = gaps / divisor
                table = np.exp(-np.outer(np.where(ok, self._scale, 0.0), gaps))
                exp_bias = np.exp(self._bias - self._bias.max(axis=1, keepdims=True))
                self._tables[key] = (ok, np.ascontiguousarray(table), exp_bias)
            else:
                zspan = spread * (2 if self.form == "two_output" else 1)
                size = 2 * zspan + 1
                ok = s_draws * size * 8 <= _TABLE_BYTES
                if ok:
                    z = np.arange(-zspan, zspan + 1, dtype=np.float64)
                    if divisor != 1.0:
                        z = z / divisor
                    table = expit(self._scale[:, None] * z[None, :] + self._bias[:, None])
                else:
                    table = np.zeros((s_draws, 1))
                self._tables[key] = (ok, np.ascontiguousarray(table), -zspan)
        return self._tables[key]

    def predict_proba(self, x) -> np.ndarray:
        """Posterior-mean class probabilities over the S draws.

        Parameters
        ----------
        x : array-like of shape (n_samples, n_features) or PackedInput

        Returns
        -------
        ndarray of shape (n_samples, K), float64
            Rows sum to 1; logistic: ``[1 - p, p]`` with ``p`` the mean of ``sigmoid(eta_s)``.
        """
        prep = self._prepare(x)
        if not isinstance(prep, PackedInput):
            return predictive_proba_from_draws(
                self._weights_eff(), self._bias, self._scale, prep, form=self.form
            )
        xor_mode, alpha, beta, offset, spread = self._mode(prep)
        words, counts = np.ascontiguousarray(prep.words), _counts(prep, beta)
        mask = _last_mask(self.n_features)
        if self.family == "softmax":
            ok, table, exp_bias = self._table(spread, prep.divisor)
            return _popcount.ensemble_softmax(
                words,
                counts,
                self._transposed_class_major(),
                self.n_rows,
                mask,
                xor_mode,
                alpha,
                beta,
                np.ascontiguousarray(offset.T),
                ok,
                table,
                np.ascontiguousarray(exp_bias.T),
                self._scale,
                self._bias,
                float(prep.divisor),
            )
        args = (words, counts, self._transposed())
        ok, table, zmin = self._table(spread, prep.divisor)
        p = _popcount.ensemble_logistic(
            *args,
            self.n_rows,
            mask,
            xor_mode,
            alpha,
            beta,
            offset,
            self.form == "two_output",
            ok,
            table,
            np.int64(zmin),
            self._scale,
            self._bias,
            float(prep.divisor),
        )
        return np.stack([1.0 - p, p], axis=1)

    def decision_function(self, x) -> np.ndarray:
        """Log posterior predictive probabilities.

        Parameters
        ----------
        x : array-like of shape (n_samples, n_features) or PackedInput

        Returns
        -------
        ndarray of float64
            ``log(predict_proba(x))`` of shape (n_samples, K) for softmax; for logistic models
            ``log(p) - log(1 - p)`` of shape (n_samples,), the log-odds of the model average.
        """
        proba = self.predict_proba(x)
        with np.errstate(divide="ignore"):
            if self.family == "softmax":
                return np.log(proba)
            return np.log(proba[:, 1]) - np.log(proba[:, 0])

    def predict(self, x) -> np.ndarray:
        """Labels ``classes_[argmax predict_proba]`` (first on ties; logistic ``p > 0.5``).

        Parameters
        ----------
        x : array-like of shape (n_samples, n_features) or PackedInput

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        proba = self.predict_proba(x)
        if self.family == "softmax":
            return self.classes_[np.argmax(proba, axis=1)]
        return self.classes_[(proba[:, 1] > 0.5).astype(np.int64)]


# --------------------------------------------------------------------------------------------
# from a result
# --------------------------------------------------------------------------------------------


def to_bits(
    result,
    *,
    rule: str = "marginal",
    threshold: float = 0.5,
    draws=None,
    classes=None,
    summary: str = "mean",
    model=None,
    spec=None,
    inputs: str = "exact",
    binarize_threshold: float = 0.5,
    input_encoding: str = "01",
):
    """Packed model from a sampling result (or from :class:`BinaryWeights`).

    Parameters
    ----------
    result : arviz.InferenceData, xarray.DataTree or BinaryWeights
        A bayesbin result (thresholded here with :func:`bayesbin.threshold`) or weights
        already thresholded.
    rule : {"marginal", "map", "draws"}
        See :func:`bayesbin.threshold`; ``"draws"`` gives a :class:`PackedEnsemble`.
    threshold, draws, summary, model, spec, classes
        Passed to :func:`bayesbin.threshold` (``classes`` overrides stored labels).
    inputs, binarize_threshold, input_encoding
        Input handling of the packed model (see :class:`PackedClassifier`).

    Returns
    -------
    PackedClassifier or PackedEnsemble

    Notes
    -----
    Relaxed (Beta) weight draws are rounded to bits (``w > 0.5``) first, so for relaxed models
    the packed ensemble approximates :func:`bayesbin.posterior_predictive_proba` (which keeps
    the real-valued draws); for binary draws the two agree to float rounding (tested to 1e-9).
    """
    if isinstance(result, BinaryWeights):
        weights = result
        if classes is not None:
            classes = np.asarray(classes)
    else:
        weights = _threshold(
            result,
            rule,
            threshold=threshold,
            draws=draws,
            summary=summary,
            model=model,
            spec=spec,
            classes=classes,
        )
        classes = None
    spec_d = weights.spec
    metadata = {
        "rule": weights.rule,
        "spec": spec_d.to_dict(),
        "draw_index": [int(i) for i in weights.draw_index],
    }
    if weights.rule == "marginal":
        metadata["threshold"] = float(threshold)
        metadata["summary"] = summary
    cls = PackedEnsemble if weights.is_ensemble else PackedClassifier
    return cls.from_bits(
        weights.bits,
        form=spec_d.form,
        weight_encoding=spec_d.encoding,
        scale=weights.scale,
        bias=weights.bias,
        classes=weights.classes if classes is None else classes,
        inputs=inputs,
        binarize_threshold=binarize_threshold,
        input_encoding=input_encoding,
        metadata=metadata,
    )


# --------------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------------


def _atomic_write(path, data: bytes) -> None:
    atomic_write(path, lambda fh: fh.write(data))


def _need(header: dict, key: str, kind):
    if key not in header:
        raise ValueError(f"bayesbin bits file header lacks {key!r}")
    value = header[key]
    if kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise ValueError(f"bayesbin bits file header field {key!r} has the wrong type")
    return value


def load_bits(path) -> PackedClassifier | PackedEnsemble:
    """Load a model written by ``save``.

    Every structural fact is checked: magic, format version, lengths, the SHA-256 checksum,
    the header's fields and types, array dtypes/shapes/offsets against ``n_features``,
    ``n_words``, ``n_rows``, ``n_draws`` and ``n_classes``, the encodings, zero padding bits,
    the class list and finite scale/bias.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    PackedClassifier or PackedEnsemble

    Raises
    ------
    ValueError
        For a truncated, corrupted, foreign or inconsistent file (never a wrong model).
    """
    data = Path(os.fspath(path)).read_bytes()
    if len(data) < _PREFIX.size + _DIGEST:
        raise ValueError(f"{path}: not a bayesbin bits file (truncated: {len(data)} bytes)")
    magic, version, flags, header_len = _PREFIX.unpack_from(data, 0)
    if magic != _MAGIC:
        raise ValueError(f"{path}: not a bayesbin bits file (bad magic)")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{path}: unsupported bayesbin bits format version {version} (this reader knows "
            f"{FORMAT_VERSION})"
        )
    if hashlib.sha256(data[:-_DIGEST]).digest() != data[-_DIGEST:]:
        raise ValueError(f"{path}: checksum mismatch: the file is corrupted or truncated")
    if flags != 0:
        raise ValueError(f"{path}: unknown flags {flags}")
    start = _PREFIX.size + header_len
    if start > len(data) - _DIGEST:
        raise ValueError(f"{path}: header length {header_len} exceeds the file")
    try:
        header = json.loads(data[_PREFIX.size : start].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: unreadable header: {exc}") from exc
    if not isinstance(header, dict):
        raise ValueError(f"{path}: header is not a JSON object")
    try:
        return _from_header(header, data[start:-_DIGEST])
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
    except (TypeError, KeyError, OverflowError) as exc:
        raise ValueError(f"{path}: inconsistent bayesbin bits file: {exc}") from exc


def _from_header(header: dict, payload: bytes):
    if header.get("format") != "bayesbin.bits":
        raise ValueError("header format is not 'bayesbin.bits'")
    if header.get("bit_order") != BIT_ORDER or header.get("byte_order") != "little":
        raise ValueError("unknown bit or byte order")
    kind = _need(header, "kind", str)
    if kind not in ("classifier", "ensemble"):
        raise ValueError(f"unknown kind {kind!r}")
    form = check_choice(_need(header, "form", str), "form", _FORMS)
    encoding = check_choice(_need(header, "weight_encoding", str), "weight_encoding", _ENCODINGS)
    d = _need(header, "n_features", int)
    words = _need(header, "n_words", int)
    rows = _need(header, "n_rows", int)
    s_draws = _need(header, "n_draws", int)
    k = _need(header, "n_classes", int)
    if d < 1 or words != n_words(d):
        raise ValueError(f"n_words={words} does not match n_features={d}")
    if rows < 1 or s_draws < 1 or (kind == "classifier" and s_draws != 1):
        raise ValueError(f"bad n_rows={rows} / n_draws={s_draws} for a {kind}")
    if k != (rows if form == "softmax" else 2):
        raise ValueError(f"n_classes={k} does not match form {form!r} with {rows} rows")
    classes = _classes_from_json(
        _need(header, "classes", list), _need(header, "classes_dtype", str)
    )
    if classes.shape != (k,):
        raise ValueError(f"{classes.shape[0]} class labels for {k} classes")
    bias_shape = [s_draws, k] if form == "softmax" else [s_draws]
    expected = {
        "weights": ("<u8", [s_draws, rows, words]),
        "scale": ("<f8", [s_draws]),
        "bias": ("<f8", bias_shape),
    }
    table = _need(header, "arrays", list)
    if [a.get("name") if isinstance(a, dict) else None for a in table] != list(expected):
        raise ValueError("the arrays table must list weights, scale, bias")
    arrays, offset = {}, 0
    for entry in table:
        name = entry["name"]
        dtype, shape = expected[name]
        if entry.get("dtype") != dtype or entry.get("shape") != shape:
            raise ValueError(
                f"array {name!r} has dtype/shape {entry.get('dtype')}/"
                f"{entry.get('shape')}; expected {dtype}/{shape}"
            )
        nbytes = int(np.prod(shape)) * 8
        if entry.get("offset") != offset or entry.get("nbytes") != nbytes:
            raise ValueError(f"array {name!r} has a bad offset or size")
        if offset + nbytes > len(payload):
            raise ValueError(f"array {name!r} runs past the end of the file")
        native = np.uint64 if dtype == "<u8" else np.float64
        raw = np.frombuffer(payload, dtype=dtype, count=nbytes // 8, offset=offset)
        arrays[name] = raw.reshape(shape).astype(native)
        offset += nbytes
    if offset != len(payload):
        raise ValueError(f"{len(payload) - offset} unexpected trailing bytes")
    inputs = check_choice(_need(header, "inputs", str), "inputs", _INPUTS)
    input_encoding = check_choice(
        _need(header, "input_encoding", str), "input_encoding", _ENCODINGS
    )
    metadata = _need(header, "metadata", dict)
    common = {
        "n_features": d,
        "form": form,
        "weight_encoding": encoding,
        "classes": classes,
        "inputs": inputs,
        "binarize_threshold": float(_need(header, "binarize_threshold", float)),
        "input_encoding": input_encoding,
        "metadata": metadata,
    }
    if kind == "ensemble":
        return PackedEnsemble(
            arrays["weights"], scale=arrays["scale"], bias=arrays["bias"], **common
        )
    return PackedClassifier(
        arrays["weights"][0], scale=arrays["scale"][0], bias=arrays["bias"][0], **common
    )


# --------------------------------------------------------------------------------------------
# C export
# --------------------------------------------------------------------------------------------


def _c_float(v: float) -> str:
    text = repr(float(v))
    return text if any(c in text for c in ".en") else text + ".0"


def _c_header(model: _PackedModel, prefix: str) -> str:
    if not (isinstance(prefix, str) and prefix.isidentifier() and prefix.isascii()):
        raise ValueError(f"prefix must be a C identifier; got {prefix!r}")
    p, up = prefix, prefix.upper()
    s_draws, rows, words = model._w.shape
    d, k = model.n_features, model.n_classes
    mask = int(_last_mask(d))
    w_lines = []
    for s in range(s_draws):
        row_txt = []
        for r in range(rows):
            row_txt.append("{" + ", ".join(f"0x{int(v):016x}ULL" for v in model._w[s, r]) + "}")
        w_lines.append("  {" + ",\n   ".join(row_txt) + "}")
    popw = np.bitwise_count(model._w).sum(axis=2)
    popw_line = "/* no weight popcounts needed */"
    if (model.input_encoding, model.weight_encoding) == ("pm1", "01"):
        popw_line = (
            f"static const int64_t {p}_popw[{up}_N_DRAWS][{up}_N_ROWS] = {{"
            + ", ".join("{" + ", ".join(str(int(v)) for v in row) + "}" for row in popw)
            + "};"
        )
    bias = model._bias.reshape(s_draws, -1)
    nb = bias.shape[1]
    xin, wenc = model.input_encoding, model.weight_encoding
    if xin == "pm1" and wenc == "pm1":
        score = (
            f"  for (w = 0; w < {up}_N_WORDS; ++w) {{\n"
            f"    uint64_t v = x[w] ^ {p}_weights[s][r][w];\n"
            f"    if (w == {up}_N_WORDS - 1) v &= {up}_LAST_MASK;\n"
            f"    c += {p}_popcount64(v);\n  }}\n"
            f"  return (int64_t){up}_N_FEATURES - 2 * c;\n"
        )
    else:
        alpha, x_term, w_term = {
            ("01", "01"): (1, "", ""),
            ("01", "pm1"): (2, " - cx", ""),
            ("pm1", "01"): (2, "", f" - {p}_popw[s][r]"),
        }[(xin, wenc)]
        score = (
            f"  for (w = 0; w < {up}_N_WORDS; ++w) {{\n"
            f"    uint64_t xv = x[w];\n"
            f"    if (w == {up}_N_WORDS - 1) xv &= {up}_LAST_MASK;\n"
            f"    c += {p}_popcount64(xv & {p}_weights[s][r][w]);\n"
            f"    cx += {p}_popcount64(xv);\n  }}\n"
            f"  return {alpha} * c{x_term}{w_term};\n"
        )
    if model.form == "softmax":
        logits = (
            f"  int r;\n  for (r = 0; r < {up}_N_CLASSES; ++r)\n"
            f"    eta[r] = {p}_scale[draw] * (double){p}_score(x, draw, r) + "
            f"{p}_bias[draw][r];\n"
        )
    elif model.form == "single":
        logits = (
            f"  eta[0] = {p}_scale[draw] * (double){p}_score(x, draw, 0) + {p}_bias[draw][0];\n"
        )
    else:
        logits = (
            f"  eta[0] = {p}_scale[draw] * (double)({p}_score(x, draw, 1) - "
            f"{p}_score(x, draw, 0)) + {p}_bias[draw][0];\n"
        )
    if model.family == "softmax":
        proba = (
            f"  double eta[{up}_N_CLASSES], m, den;\n  int s, r;\n"
            f"  for (r = 0; r < {up}_N_CLASSES; ++r) proba[r] = 0.0;\n"
            f"  for (s = 0; s < {up}_N_DRAWS; ++s) {{\n"
            f"    {p}_decision_function(x, s, eta);\n"
            f"    m = eta[0];\n"
            f"    for (r = 1; r < {up}_N_CLASSES; ++r) if (eta[r] > m) m = eta[r];\n"
            f"    den = 0.0;\n"
            f"    for (r = 0; r < {up}_N_CLASSES; ++r) {{ eta[r] = exp(eta[r] - m); "
            f"den += eta[r]; }}\n"
            f"    for (r = 0; r < {up}_N_CLASSES; ++r) proba[r] += eta[r] / den;\n  }}\n"
            f"  for (r = 0; r < {up}_N_CLASSES; ++r) proba[r] /= {up}_N_DRAWS;\n"
        )
    else:
        proba = (
            f"  double eta, p = 0.0;\n  int s;\n"
            f"  for (s = 0; s < {up}_N_DRAWS; ++s) {{\n"
            f"    {p}_decision_function(x, s, &eta);\n"
            f"    p += eta >= 0 ? 1.0 / (1.0 + exp(-eta)) : exp(eta) / (1.0 + exp(eta));\n"
            f"  }}\n  p /= {up}_N_DRAWS;\n  proba[0] = 1.0 - p;\n  proba[1] = p;\n"
        )
    if s_draws == 1 and model.family == "softmax":
        predict = (
            f"  double eta[{up}_N_CLASSES];\n  int r, best = 0;\n"
            f"  {p}_decision_function(x, 0, eta);\n"
            f"  for (r = 1; r < {up}_N_CLASSES; ++r) if (eta[r] > eta[best]) best = r;\n"
            f"  return best;\n"
        )
    elif s_draws == 1:
        predict = f"  double eta;\n  {p}_decision_function(x, 0, &eta);\n  return eta > 0.0;\n"
    elif model.family == "softmax":
        predict = (
            f"  double proba[{up}_N_CLASSES];\n  int r, best = 0;\n"
            f"  {p}_predict_proba(x, proba);\n"
            f"  for (r = 1; r < {up}_N_CLASSES; ++r) if (proba[r] > proba[best]) "
            f"best = r;\n  return best;\n"
        )
    else:
        predict = f"  double proba[2];\n  {p}_predict_proba(x, proba);\n  return proba[1] > 0.5;\n"
    classes = ", ".join(repr(c.item() if hasattr(c, "item") else c) for c in model.classes_)
    classes = classes.replace("*/", "* /")
    bit_meaning = "0" if xin == "01" else "-1"
    lines = [
        f"/* Generated by bayesbin: packed binary-weight {model.family} model ({model.form}).",
        f" * weight encoding {wenc!r}: W = {'w' if wenc == '01' else '2w - 1'}; "
        f"{s_draws} draw(s); {d} features; classes (index -> label): [{classes}].",
        f" * x_packed: {words} uint64 words, feature j at bit (j % 64) of word (j / 64), LSB "
        f"first;",
        f" * bit 1 means 1 (+1), bit 0 means {bit_meaning}; padding bits are ignored.",
        " * predict returns the class index; predict_proba averages softmax/sigmoid over "
        "draws. Link with -lm. */",
        f"#ifndef {up}_MODEL_H",
        f"#define {up}_MODEL_H",
        "#include <math.h>",
        "#include <stdint.h>",
        f"#define {up}_N_FEATURES {d}",
        f"#define {up}_N_WORDS {words}",
        f"#define {up}_N_DRAWS {s_draws}",
        f"#define {up}_N_ROWS {rows}",
        f"#define {up}_N_CLASSES {k}",
        f"#define {up}_LAST_MASK 0x{mask:016x}ULL",
        f"static const uint64_t {p}_weights[{up}_N_DRAWS][{up}_N_ROWS][{up}_N_WORDS] = {{",
        ",\n".join(w_lines),
        "};",
        popw_line,
        f"static const double {p}_scale[{up}_N_DRAWS] = {{"
        + ", ".join(_c_float(v) for v in model._scale)
        + "};",
        f"static const double {p}_bias[{up}_N_DRAWS][{nb}] = {{"
        + ", ".join("{" + ", ".join(_c_float(v) for v in row) + "}" for row in bias)
        + "};",
        "",
        f"static inline int64_t {p}_popcount64(uint64_t v) {{",
        "#if defined(__GNUC__) || defined(__clang__)",
        "  return (int64_t)__builtin_popcountll(v);",
        "#else",
        "  v = v - ((v >> 1) & 0x5555555555555555ULL);",
        "  v = (v & 0x3333333333333333ULL) + ((v >> 2) & 0x3333333333333333ULL);",
        "  v = (v + (v >> 4)) & 0x0f0f0f0f0f0f0f0fULL;",
        "  return (int64_t)((v * 0x0101010101010101ULL) >> 56);",
        "#endif",
        "}",
        "",
        f"static inline int64_t {p}_score(const uint64_t *x, int s, int r) {{",
        "  int64_t c = 0, cx = 0;\n  int w;\n  (void)cx;",
        score.rstrip("\n"),
        "}",
        "",
        f"static inline void {p}_decision_function(const uint64_t *x, int draw, double *eta) {{",
        logits.rstrip("\n"),
        "}",
        "",
        f"static inline void {p}_predict_proba(const uint64_t *x, double *proba) {{",
        proba.rstrip("\n"),
        "}",
        "",
        f"static inline int {p}_predict(const uint64_t *x_packed) {{",
        "  const uint64_t *x = x_packed;",
        predict.rstrip("\n"),
        "}",
        f"#endif /* {up}_MODEL_H */",
        "",
    ]
    return "\n".join(lines)
