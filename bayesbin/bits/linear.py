"""Packed linear classifiers: one packed dense layer with an affine head (an ensemble of S).

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
any             ints 0..2**16-1   ``sum_p 2**p score(plane_p)`` (bit-planes), or
                                  level accumulation / float32 dot products
=============== ================= ==========================================

A :class:`PackedClassifier` is a :class:`PackedEnsemble` of one draw in memory and on disk
(one :class:`~bayesbin.bits.layers.DenseLayer` of S members and one
:class:`~bayesbin.bits.layers.AffineOutput`); they differ only in what ``predict`` means:
the classifier's logits, or the ensemble's posterior-mean probabilities.

Input paths (``inputs=``):

* ``"exact"`` (default): the result agrees with the float model's ``scale * (x @ W) + b``.
  Inputs whose values are all in {0, 1} or all in {-1, +1} take the popcount path (bit-exact
  equal to the float64 model). Non-negative integers below 2**16 (any dtype) take an integer
  levels path (exact integer score, bit-exact too: ``"planes"``). Float values that are exactly
  the pixels ``k / 255`` take the levels path on ``k`` with ``score / 255`` (``"planes255"``):
  float64 values equal to ``k / 255``, and float32 values equal to the float32 nearest
  ``k / 255`` (what ``bayesbin.load_mnist`` returns: ``pixels / 255`` in float32), which are
  *taken as* the pixels ``k / 255``. The integer score is exact; the float model's own sum
  differs by rounding (~1e-16 relative for float64; for float32 pixels the float model would
  multiply the float32 values, ~1e-8 away from ``k / 255``). A single classifier scores levels
  by float32 dot products when it has at most 16 score rows (exact: integer partial sums below
  2**24), finding and checking the levels of float pixels on the fly, or by level
  accumulation (the same integers as summing the bit-planes' popcount scores); ensembles by
  level accumulation. Anything else falls back to a float64
  matmul with the unpacked weights (the float model itself).
* ``"binarize"``: every value becomes the bit ``x > binarize_threshold`` (default 0.5,
  strictly greater: a value equal to the threshold gives bit 0; NaN is an error). With
  ``input_encoding="01"`` bit 0 means 0; with ``"pm1"`` bit 0 means -1, so an input of 0 maps
  to -1 (with any threshold >= 0). Inputs already in {0, 1}, or in {-1, +1}, pass the default
  threshold unchanged.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from bayesbin._validation import check_choice
from bayesbin.bits import cexport as _cexport
from bayesbin.bits import fileformat as _fileformat
from bayesbin.bits import kernels as _popcount
from bayesbin.bits.layers import AffineOutput, DenseLayer, _counts
from bayesbin.bits.packing import (
    PackedInput,
    _check_input_options,
    _last_mask,
    _levels255,
    fast_levels,
    n_words,
    pack_bits,
    pack_input,
    prepare_input,
)
from bayesbin.linear.maths import draw_logits, predictive_proba_from_draws, softmax
from bayesbin.posterior import BinaryWeights, training_data
from bayesbin.posterior import threshold as _threshold

__all__ = ["PackedClassifier", "PackedEnsemble", "to_bits"]

_FORMS = ("softmax", "single", "two_output")
_ENCODINGS = ("01", "pm1")


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


def _check_classes(classes, k: int) -> np.ndarray:
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
    return classes


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
        self._layer = DenseLayer(w, d, weight_encoding)
        bias_shape = (s_draws, k) if form == "softmax" else (s_draws,)
        self._head = AffineOutput(
            form,
            self._real(scale, (s_draws,), "scale", fill=1.0),
            self._real(bias, bias_shape, "bias", fill=0.0),
        )
        self.classes_ = _check_classes(classes, k)
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

        Returns
        -------
        PackedClassifier or PackedEnsemble
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
        _check_input_options(self.inputs, self.binarize_threshold, self.input_encoding)

    # ---- views ------------------------------------------------------------------------------

    @property
    def _w(self) -> np.ndarray:
        return self._layer.w

    @property
    def _scale(self) -> np.ndarray:
        return self._head.scale

    @property
    def _bias(self) -> np.ndarray:
        return self._head.bias

    @property
    def n_draws(self) -> int:
        """Number of packed draws (1 for a classifier)."""
        return self._layer.n_members

    @property
    def storage_bytes(self) -> int:
        """Bytes of the packed weight words."""
        return int(self._w.nbytes)

    def _bits_all(self) -> np.ndarray:
        return _bits_from_rows(self._layer.rows(), self.form)

    def _weights_eff(self) -> np.ndarray:
        if self._layer._w_eff is None:
            w = self._bits_all().astype(np.float64)
            self._layer._w_eff = 2.0 * w - 1.0 if self.weight_encoding == "pm1" else w
        return self._layer._w_eff

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
        return pack_input(x, self.n_features, self.binarize_threshold, self.input_encoding)

    def _prepare(self, x):
        """A :class:`PackedInput`, or a float64 matrix for the float fallback."""
        return prepare_input(
            x, self.n_features, self.inputs, self.binarize_threshold, self.input_encoding
        )

    def input_path(self, x) -> str:
        """Which computation :meth:`predict` would use for ``x``.

        Parameters
        ----------
        x : array-like of shape (n_samples, n_features) or PackedInput

        Returns
        -------
        {"bits01", "bitspm1", "planes", "planes255", "float"}
            Popcount on {0, 1} or ±1 bits, exact integer scores of integer levels (the
            name recalls the bit-plane identity; computed by level accumulation or exact float32
            sums; ``"planes255"`` for ``k / 255`` values) or the float64 fallback.
        """
        cand = fast_levels(x, self.n_features, self.inputs)
        if isinstance(cand, np.ndarray):
            cand = _levels255(cand)
        if cand is not None:
            return "planes255" if cand.divisor == 255.0 else "planes"
        prep = self._prepare(x)
        if not isinstance(prep, PackedInput):
            return "float"
        if prep.kind == "planes":
            return "planes255" if prep.divisor == 255.0 else "planes"
        return "bits" + prep.kind

    def _level_scores(self, x) -> tuple[np.ndarray, float] | None:
        """``(scores (S, n, R), divisor)`` of non-binary exact-level inputs, else None."""
        cand = fast_levels(x, self.n_features, self.inputs)
        if cand is None:
            return None
        if isinstance(cand, np.ndarray):  # k / 255 values: checked while scoring when narrow
            out = self._layer.level_weights().scores_255(cand)
            if out is not None:
                s_draws, n_rows = self._w.shape[:2]
                return out.reshape(len(cand), s_draws, n_rows).transpose(1, 0, 2), 255.0
            cand = _levels255(cand)
            if cand is None:
                return None
        return self._layer.level_scores(cand), cand.divisor

    def _raw_scores(self, prep: PackedInput) -> np.ndarray:
        """Integer scores ``x @ W * divisor`` of every draw and row, int64 (S, n, R)."""
        return self._layer.scores(prep)

    def _draw_logits(self, x) -> np.ndarray:
        lev = self._level_scores(x)
        if lev is not None:
            return self._head.logits(*lev)
        prep = self._prepare(x)
        if isinstance(prep, PackedInput):
            return self._head.logits(self._raw_scores(prep), prep.divisor)
        return draw_logits(self._weights_eff(), self._bias, self._scale, prep, form=self.form)

    def scores(self, x) -> np.ndarray:
        """Integer scores ``x @ W`` per score row (popcount paths only).

        Parameters
        ----------
        x : array-like of shape (n_samples, n_features) or PackedInput

        Returns
        -------
        ndarray of int64
            Shape (n_samples, R) for a classifier, (S, n_samples, R) for an ensemble. For
            ``k / 255`` inputs the scores are of the integer levels ``k`` (i.e. ``255 x``).

        Raises
        ------
        ValueError
            If ``x`` would take the float fallback path.
        """
        lev = self._level_scores(x)
        if lev is not None:
            sc = lev[0]
        else:
            prep = self._prepare(x)
            if not isinstance(prep, PackedInput):
                raise ValueError("x takes the float fallback path: it has no integer scores")
            sc = self._raw_scores(prep)
        return sc if self._ensemble else sc[0]

    # ---- predictions (one path for classifiers and ensembles) -------------------------------

    def _mean_proba(self, x) -> np.ndarray:
        """Posterior-mean probabilities over the S draws (fused kernels on packed inputs)."""
        prep = self._prepare(x)
        if not isinstance(prep, PackedInput):
            return predictive_proba_from_draws(
                self._weights_eff(), self._bias, self._scale, prep, form=self.form
            )
        layer, head = self._layer, self._head
        xor_mode, alpha, beta, offset, spread = layer.mode(prep)
        words, counts = np.ascontiguousarray(prep.words), _counts(prep, beta)
        mask = _last_mask(self.n_features)
        if self.family == "softmax":
            ok, table, exp_bias = head.table(spread, prep.divisor)
            return _popcount.ensemble_softmax(
                words,
                counts,
                layer.transposed_class_major(),
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
        args = (words, counts, layer.transposed())
        ok, table, zmin = head.table(spread, prep.divisor)
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
        """Logits (classifier) or log posterior predictive probabilities (ensemble).

        Parameters
        ----------
        x : array-like of shape (n_samples, n_features) or PackedInput

        Returns
        -------
        ndarray of float64
            Classifier: ``eta`` of shape (n_samples, K) for softmax, (n_samples,) for logistic
            models (the log-odds of class ``classes_[1]``). Ensemble: ``log(predict_proba(x))``
            (n_samples, K) for softmax; for logistic models ``log(p) - log(1 - p)`` of shape
            (n_samples,), the log-odds of the model average.
        """
        if not self._ensemble:
            return self._draw_logits(x)[0]
        proba = self._mean_proba(x)
        with np.errstate(divide="ignore"):
            if self.family == "softmax":
                return np.log(proba)
            return np.log(proba[:, 1]) - np.log(proba[:, 0])

    def predict_proba(self, x) -> np.ndarray:
        """Class probabilities, averaged over the draws of an ensemble.

        ``softmax(eta)`` (logistic ``[1 - sigmoid, sigmoid]``), computed from popcount scores
        by a fused kernel.

        Parameters
        ----------
        x : array-like of shape (n_samples, n_features) or PackedInput

        Returns
        -------
        ndarray of shape (n_samples, K), float64
            Rows sum to 1.
        """
        if self._ensemble:
            return self._mean_proba(x)
        eta = self.decision_function(x)
        if self.family == "softmax":
            return softmax(eta)
        p = expit(eta)
        return np.stack([1.0 - p, p], axis=1)

    def predict(self, x) -> np.ndarray:
        """Class labels (first on ties).

        A classifier returns ``classes_[argmax eta]`` (logistic: ``eta > 0``); an ensemble
        ``classes_[argmax predict_proba]`` (logistic: ``p > 0.5``).

        Parameters
        ----------
        x : array-like of shape (n_samples, n_features) or PackedInput

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        if self._ensemble:
            score, cut = self._mean_proba(x), 0.5
            if self.family == "logistic":
                score = score[:, 1]
        else:
            score, cut = self.decision_function(x), 0.0
        if self.family == "softmax":
            return self.classes_[np.argmax(score, axis=1)]
        return self.classes_[(score > cut).astype(np.int64)]

    # ---- files ------------------------------------------------------------------------------

    def save(self, path) -> None:
        """Write the model to one ``.bbits`` file (format version 2), atomically.

        See :mod:`bayesbin.bits.fileformat` for the layout: one dense layer of packed weights
        (uint64, (S, R, n_words)) with an affine head (scale (S,), bias (S, K) or (S,)).

        Parameters
        ----------
        path : str or os.PathLike
        """
        _fileformat.save_linear(self, path)

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
        text = _cexport.linear_header(
            self._layer,
            self._head,
            classes=self.classes_,
            input_encoding=self.input_encoding,
            prefix=prefix,
        )
        _fileformat.write_text(path, text)

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

    def draw_decision_function(self, x) -> np.ndarray:
        """Every draw's logits.

        Parameters
        ----------
        x : array-like of shape (n_samples, n_features) or PackedInput

        Returns
        -------
        ndarray of float64
            (S, n, K) softmax or (S, n) logistic.
        """
        return self._draw_logits(x)


def _check_binarizable(result, spec) -> None:
    """Refuse ``inputs="binarize"`` for a model fitted on inputs outside [0, 1]."""
    try:
        data = training_data(result, spec=spec)
    except (TypeError, ValueError):
        return  # not a bayesbin result: _threshold gives the clear error
    if data is None or data[0].size == 0:
        return
    lo, hi = float(np.min(data[0])), float(np.max(data[0]))
    if lo < 0.0 or hi > 1.0:
        raise ValueError(
            f"inputs='binarize' needs a model fitted on inputs in [0, 1], but this one was fitted "
            f"on values in [{lo:g}, {hi:g}]: its weights expect those magnitudes, so bits "
            "'x > binarize_threshold' would score near chance. Use inputs='exact' (the default), "
            "or fit on x scaled to [0, 1] (e.g. x / x.max())"
        )


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
        if inputs == "binarize":
            _check_binarizable(result, spec)
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
