"""The layer seam: a packed layer is packed weights plus an explicit output step.

A layer's weights are packed ±1 or {0, 1} bits (see :mod:`bayesbin.bits.packing` for the bit
order); its popcount kernels turn an input into exact integer *scores*. What happens next is the
layer's *output step*, the part that Larq Compute Engine calls the output transform:

* :class:`ThresholdOutput` (hidden layers): ``bit = (score >= threshold[c]) XOR flip[c]`` per
  unit ``c``, written straight into the next layer's packed words. Batch norm and sign are
  folded into the integer threshold by :func:`fold_batchnorm_sign`, exactly (the float
  expression is evaluated at integer scores, so the bit agrees with the float forward pass on
  every score).
* :class:`BatchNormOutput` (a network's head, or a first layer whose thresholds depend on the
  input's divisor): float64 ``gamma * (s - mean) / sqrt(var + eps) + beta`` evaluated in this
  order on the exact score ``s`` (``score / divisor`` for real inputs ``q / divisor``).
* :class:`AffineOutput` (the head of the linear models): ``eta = scale * (z / divisor) + bias``
  with ``z`` the score row (softmax, single) or the difference of two rows (two_output).

Every layer holds ``S`` *members* (ensemble draws or networks of the same shape) on a leading
axis: a single classifier is an ensemble of one.

:class:`DenseLayer` is the packed dense layer of the linear models (``{0, 1}`` or ±1 weights
against every input kind of :class:`~bayesbin.bits.packing.PackedInput`); the network layers
are in :mod:`bayesbin.bits.netlayers`.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from bayesbin._validation import check_choice
from bayesbin.bits import kernels as _popcount
from bayesbin.bits import levelkernels as _lk
from bayesbin.bits.packing import (
    _SERIAL_WORK,
    LevelInput,
    PackedInput,
    _last_mask,
    n_words,
    unpack_bits,
)

__all__ = [
    "AffineOutput",
    "BatchNormOutput",
    "DenseLayer",
    "LevelWeights",
    "ThresholdOutput",
    "fold_batchnorm_sign",
]

_FORMS = ("softmax", "single", "two_output")
_ENCODINGS = ("01", "pm1")
_TABLE_BYTES = 256 * 2**20  # largest lookup table the ensembles build


# --------------------------------------------------------------------------------------------
# output steps
# --------------------------------------------------------------------------------------------


def _finite(value, shape, name: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be numeric") from exc
    try:
        arr = np.broadcast_to(arr, shape)
    except ValueError as exc:
        raise ValueError(f"{name} of shape {arr.shape} does not fit shape {shape}") from exc
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    return np.array(arr, dtype=np.float64)


class ThresholdOutput:
    """Hidden-layer output step: ``bit_c = (score_c >= thresholds[c]) XOR flips[c]``.

    Parameters
    ----------
    thresholds : array-like of int of shape (S, C)
    flips : array-like of bool of shape (S, C)
    """

    def __init__(self, thresholds, flips):
        tau = np.asarray(thresholds)
        flip = np.asarray(flips)
        if tau.ndim != 2 or flip.shape != tau.shape:
            raise ValueError(
                f"thresholds and flips must both have shape (S, C); got {tau.shape}, {flip.shape}"
            )
        if tau.dtype.kind not in "iu":
            raise TypeError(f"thresholds must be integers; got dtype {tau.dtype}")
        if flip.dtype != bool and not (
            flip.dtype.kind in "iu" and np.all((flip == 0) | (flip == 1))
        ):
            raise ValueError("flips must be booleans (0 or 1)")
        self.thresholds = np.ascontiguousarray(tau, dtype=np.int64)
        self.flips = np.ascontiguousarray(flip, dtype=np.uint8)

    def apply(self, scores: np.ndarray, member: int = 0) -> np.ndarray:
        """The output bits of integer ``scores`` (..., C) for one member, as uint8 {0, 1}."""
        return ((scores >= self.thresholds[member]) != self.flips[member].astype(bool)).astype(
            np.uint8
        )


class BatchNormOutput:
    """Float batch norm ``gamma * (s - mean) / sqrt(var + eps) + beta``, per channel.

    Used as a network's head (the logits) and, for a first layer that sees real inputs, as the
    description its integer thresholds are derived from (:meth:`threshold`) for each input
    divisor. Absent batch norm is the identity: ``gamma = 1, beta = 0, mean = 0, var = 1,
    eps = 0`` gives ``s`` exactly.

    Parameters
    ----------
    gamma, beta, mean, var : array-like of shape (S, C)
        Finite; ``var >= 0``.
    eps : array-like of shape (S,)
        Finite, ``>= 0``, with ``var + eps > 0`` everywhere.
    """

    def __init__(self, gamma, beta, mean, var, eps):
        g = np.asarray(gamma, dtype=np.float64)
        if g.ndim != 2:
            raise ValueError(f"batch norm parameters must have shape (S, C); got {g.shape}")
        shape = g.shape
        self.gamma = _finite(g, shape, "gamma")
        self.beta = _finite(beta, shape, "beta")
        self.mean = _finite(mean, shape, "mean")
        self.var = _finite(var, shape, "var")
        self.eps = _finite(eps, (shape[0],), "eps")
        if np.any(self.var < 0) or np.any(self.eps < 0):
            raise ValueError("batch norm var and eps must be >= 0")
        if not np.all(self.var + self.eps[:, None] > 0):
            raise ValueError("batch norm var + eps must be > 0")

    @classmethod
    def identity(cls, n_members: int, n_channels: int) -> BatchNormOutput:
        """The identity (no batch norm): ``y = s`` exactly."""
        shape = (n_members, n_channels)
        return cls(
            np.ones(shape), np.zeros(shape), np.zeros(shape), np.ones(shape), np.zeros(n_members)
        )

    @property
    def n_members(self) -> int:
        """S."""
        return int(self.gamma.shape[0])

    def apply(self, s: np.ndarray, member: int = 0) -> np.ndarray:
        """``gamma * (s - mean) / sqrt(var + eps) + beta`` for float64 ``s`` of shape (..., C)."""
        m = member
        return (
            self.gamma[m] * (s - self.mean[m]) / np.sqrt(self.var[m] + self.eps[m]) + self.beta[m]
        )

    def threshold(self, bound: int, divisor: float = 1.0) -> ThresholdOutput:
        """Fold batch norm and sign into integer thresholds for scores in ``[-bound, bound]``.

        See :func:`fold_batchnorm_sign`.
        """
        taus, flips = [], []
        for m in range(self.n_members):
            tau, flip = fold_batchnorm_sign(
                self.gamma[m],
                self.beta[m],
                self.mean[m],
                self.var[m],
                self.eps[m],
                bound=bound,
                divisor=divisor,
            )
            taus.append(tau)
            flips.append(flip)
        return ThresholdOutput(np.array(taus), np.array(flips))


def fold_batchnorm_sign(gamma, beta, mean, var, eps, *, bound: int, divisor: float = 1.0):
    """Integer thresholds equivalent to ``sign(batchnorm(score / divisor))`` on integer scores.

    The float64 value ``y(s) = gamma * (s / divisor - mean) / sqrt(var + eps) + beta`` (each
    operation rounded as numpy rounds it; ``s / divisor`` is skipped for ``divisor == 1``) is a
    monotone function of the integer score ``s``: every step is monotone and IEEE rounding is
    monotone. So the scores with ``y(s) >= 0`` (sign +1, as ``sign(0) = +1``) form an upper set
    (``gamma >= 0``, sign bit clear) or a lower set (``gamma`` negative or ``-0.0``) of
    ``[-bound, bound]``; a binary search on the float expression itself finds its edge. The
    result is exact on every integer score in range, including ``gamma == 0`` (a constant bit)
    and tiny ``var`` (an overflow to infinity is monotone too).

    Parameters
    ----------
    gamma, beta, mean, var : ndarray of shape (C,), float64
    eps : float
    bound : int
        Scores lie in ``[-bound, bound]``.
    divisor : float
        The real pre-activation is ``score / divisor`` (255 for ``k / 255`` pixels).

    Returns
    -------
    thresholds : ndarray of shape (C,), int64
    flips : ndarray of shape (C,), bool
        ``bit = (score >= thresholds) XOR flips`` equals ``y(score) >= 0`` for every integer
        score in ``[-bound, bound]``.
    """
    gamma = np.asarray(gamma, dtype=np.float64)
    beta = np.asarray(beta, dtype=np.float64)
    mean = np.asarray(mean, dtype=np.float64)
    root = np.sqrt(np.asarray(var, dtype=np.float64) + np.float64(eps))
    bound = int(bound)

    def positive(s):  # y(s) >= 0, evaluated exactly as the float forward pass does
        x = s.astype(np.float64)
        if divisor != 1.0:
            x = x / divisor
        with np.errstate(over="ignore"):  # overflow to +-inf is monotone too
            return gamma * (x - mean) / root + beta >= 0

    decreasing = np.signbit(gamma)
    # For increasing channels find the first s with y(s) >= 0; for decreasing ones the first s
    # with y(s) < 0. Invariant: answer in (lo, hi]; hi = bound + 1 means "none in range".
    lo = np.full(gamma.shape, -bound - 1, dtype=np.int64)
    hi = np.full(gamma.shape, bound + 1, dtype=np.int64)
    while np.any(hi - lo > 1):
        mid = lo + (hi - lo) // 2
        hit = positive(mid) != decreasing
        hi = np.where(hit, mid, hi)
        lo = np.where(hit, lo, mid)
    return hi, decreasing.copy()


class AffineOutput:
    """Head of the linear models: ``eta = scale * (z / divisor) + bias`` per member.

    ``z`` is the score row (softmax: K rows; single: one row) or ``score_1 - score_0``
    (two_output).

    Parameters
    ----------
    form : {"softmax", "single", "two_output"}
    scale : ndarray of shape (S,), float64
    bias : ndarray of shape (S, K) (softmax) or (S,) (logistic), float64
    """

    def __init__(self, form: str, scale: np.ndarray, bias: np.ndarray):
        self.form = check_choice(form, "form", _FORMS)
        self.scale = scale
        self.bias = bias
        self._tables: dict = {}

    def logits(self, sc: np.ndarray, divisor: float) -> np.ndarray:
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
            return self.scale[:, None, None] * z + self.bias[:, None, :]
        return self.scale[:, None] * z + self.bias[:, None]

    def table(self, spread: int, divisor: float):
        """Lookup tables of the fused ensemble kernels (see :mod:`bayesbin.bits.kernels`)."""
        key = (spread, divisor)
        if key not in self._tables:
            s_draws = self.scale.shape[0]
            if self.form == "softmax":
                size = 2 * spread + 1
                ok = self.scale >= 0
                if s_draws * size * 8 > _TABLE_BYTES:
                    ok[:] = False
                    size = 1
                gaps = np.arange(size, dtype=np.float64)
                if divisor != 1.0:
                    gaps = gaps / divisor
                table = np.exp(-np.outer(np.where(ok, self.scale, 0.0), gaps))
                exp_bias = np.exp(self.bias - self.bias.max(axis=1, keepdims=True))
                self._tables[key] = (ok, np.ascontiguousarray(table), exp_bias)
            else:
                zspan = spread * (2 if self.form == "two_output" else 1)
                size = 2 * zspan + 1
                ok = s_draws * size * 8 <= _TABLE_BYTES
                if ok:
                    z = np.arange(-zspan, zspan + 1, dtype=np.float64)
                    if divisor != 1.0:
                        z = z / divisor
                    table = expit(self.scale[:, None] * z[None, :] + self.bias[:, None])
                else:
                    table = np.zeros((s_draws, 1))
                self._tables[key] = (ok, np.ascontiguousarray(table), -zspan)
        return self._tables[key]


class LevelWeights:
    """Dense binary weights laid out for exact scores of integer levels.

    Up to 16 units on 8-bit levels: float32 dot products (exact, see
    :func:`bayesbin.bits.levelkernels.dense_narrow`), which can also take ``k / 255`` values
    directly and find their levels on the fly; otherwise level accumulation.

    Parameters
    ----------
    bits : ndarray of shape (U, D)
        1 where the weight is +1 (±1 weights) or 1 ({0, 1} weights), else 0.
    pm1 : bool
        The weights are ±1 (else {0, 1}).
    """

    def __init__(self, bits: np.ndarray, pm1: bool):
        bits = np.asarray(bits)
        self.n_out, self.n_in = int(bits.shape[0]), int(bits.shape[1])
        self.pm1 = bool(pm1)
        # int8 masks (sign-extended in the kernel): half the bytes of int16, so a 784x512
        # layer's 400 KB stay in a 512 KB L2 cache (measured 1.2-2x faster on MNIST rows)
        self.masks = np.ascontiguousarray(np.where(bits.T > 0, -1, 0).astype(np.int8))
        self.narrow = None
        if self.n_out <= _lk._NARROW and self.n_in * 255 < 2**24:
            w = (2.0 * (bits > 0) - 1.0) if pm1 else (bits > 0).astype(np.float64)
            self.narrow = np.ascontiguousarray(w, dtype=np.float32)

    def _small(self, n: int) -> bool:
        return n < 2 or n * self.n_in * self.n_out < 16 * _SERIAL_WORK

    def scores(self, q: np.ndarray) -> np.ndarray:
        """Exact ``q @ W``, int64 (n, U), for levels ``q`` (n, D) of dtype uint8 or uint16."""
        small = self._small(q.shape[0])
        if self.narrow is not None and q.dtype == np.uint8:
            kernel = _lk.dense_narrow_serial if small else _lk.dense_narrow
            return kernel(q, self.narrow, False)[0]
        kernel = _lk.dense_levels_serial if small else _lk.dense_levels
        return kernel(q, self.masks, self.pm1)

    def scores_255(self, x: np.ndarray) -> np.ndarray | None:
        """Exact ``k @ W`` for float values ``x = k / 255`` (n, D).

        None if some value is not such a level (or the narrow kernel does not apply).
        """
        if self.narrow is None or x.dtype not in (np.float32, np.float64):
            return None
        kernel = _lk.dense_narrow_serial if self._small(x.shape[0]) else _lk.dense_narrow
        out, bad = kernel(x, self.narrow, True)
        return out if bad == 0 else None


# --------------------------------------------------------------------------------------------
# the dense layer of the linear models
# --------------------------------------------------------------------------------------------


def _counts(prep: PackedInput, beta) -> np.ndarray:
    """Per-row input sums when the score needs them (``beta != 0``), else zeros."""
    return prep.counts() if beta else np.zeros(prep.n_samples, dtype=np.int64)


class DenseLayer:
    """Packed dense layer of S members: integer scores ``x @ W`` by popcounts.

    Parameters
    ----------
    weights : ndarray of shape (S, R, n_words), uint64
        Packed score rows of every member; padding bits zero (checked by the caller).
    n_features : int
        D.
    weight_encoding : {"01", "pm1"}
        ``W = w`` or ``W = 2 w - 1``.
    """

    def __init__(self, weights: np.ndarray, n_features: int, weight_encoding: str):
        self.weight_encoding = check_choice(weight_encoding, "weight_encoding", _ENCODINGS)
        self.n_features = int(n_features)
        self.w = np.array(weights, dtype=np.uint64, order="C", copy=True)
        self.n_words = n_words(self.n_features)
        self._wt = None
        self._wt_cm = None
        self._popw = None
        self._w_eff = None
        self._masks = None

    @property
    def n_members(self) -> int:
        """S."""
        return int(self.w.shape[0])

    @property
    def n_rows(self) -> int:
        """R, the score rows of each member."""
        return int(self.w.shape[1])

    def rows(self) -> np.ndarray:
        """The weight bits unpacked, uint8 (S, R, D)."""
        return unpack_bits(self.w, self.n_features)

    def transposed(self) -> np.ndarray:
        """Weight words as (n_words, S * R), column ``s * R + r`` (draw-major)."""
        if self._wt is None:
            flat = self.w.reshape(-1, self.n_words)
            self._wt = np.ascontiguousarray(flat.T)
        return self._wt

    def transposed_class_major(self) -> np.ndarray:
        """Weight words as (n_words, R * S), column ``r * S + s`` (class-major)."""
        if self._wt_cm is None:
            flat = self.w.transpose(1, 0, 2).reshape(-1, self.n_words)
            self._wt_cm = np.ascontiguousarray(flat.T)
        return self._wt_cm

    def mode(self, prep: PackedInput):
        """Kernel parameters ``(xor_mode, alpha, beta, offset (S, R), spread)``."""
        d = self.n_features
        s_draws, n_rows = self.w.shape[:2]
        offset = np.zeros((s_draws, n_rows), dtype=np.int64)
        if prep.kind == "pm1" and self.weight_encoding == "pm1":
            offset[:] = d
            xor_mode, alpha, beta = True, -2, 0
        elif prep.kind == "pm1":
            if self._popw is None:
                self._popw = np.bitwise_count(self.w).sum(axis=2, dtype=np.int64)
            offset = -self._popw
            xor_mode, alpha, beta = False, 2, 0
        elif self.weight_encoding == "pm1":
            xor_mode, alpha, beta = False, 2, -1
        else:
            xor_mode, alpha, beta = False, 1, 0
        q_max = (1 << prep.words.shape[1]) - 1
        return xor_mode, np.int64(alpha), np.int64(beta), offset, q_max * d

    def scores(self, prep: PackedInput) -> np.ndarray:
        """Integer scores ``x @ W * divisor`` of every member and row, int64 (S, n, R)."""
        xor_mode, alpha, beta, offset, _ = self.mode(prep)
        words = np.ascontiguousarray(prep.words)
        wt = self.transposed()
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
        s_draws, n_rows = self.w.shape[:2]
        return out.reshape(out.shape[0], s_draws, n_rows).transpose(1, 0, 2)

    def level_weights(self) -> LevelWeights:
        """The weights of every member laid out for integer levels (columns ``s * R + r``)."""
        if self._masks is None:
            rows = self.rows().reshape(-1, self.n_features)
            self._masks = LevelWeights(rows, self.weight_encoding == "pm1")
        return self._masks

    def level_scores(self, lev: LevelInput) -> np.ndarray:
        """Integer scores of integer levels ``q``, int64 (S, n, R).

        The same integers as :meth:`scores` on the bit-planes of ``q`` (``divisor * x @ W``).
        """
        out = self.level_weights().scores(lev.q)
        s_draws, n_rows = self.w.shape[:2]
        return out.reshape(lev.n_samples, s_draws, n_rows).transpose(1, 0, 2)
