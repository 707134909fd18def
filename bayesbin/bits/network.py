"""Packed binary networks (and ensembles of networks): bit-exact XNOR-popcount inference.

:func:`pack_network` turns the interchange description of ``bayesbin.nets`` (one network, or a
list of networks with the same architecture such as sampled PBNet networks) into a
:class:`PackedNetwork`: one :class:`~bayesbin.bits.netlayers.NetLayer` per binary layer,
each holding the packed weights of every member and its output step. Hidden layers write the
next layer's packed words directly; the head gives float64 logits.

Exactness. The logits equal those of :func:`bayesbin.bits.reference_forward` (the float64
forward pass of the same description) bit for bit when the input is exact:

* ``"levels255"``: float64 values ``k / 255``, or float32 values equal to the float32
  nearest ``k / 255`` (what ``bayesbin.load_mnist`` returns), taken as the pixels ``k / 255``;
* ``"levels"``: non-negative integers below 2**16 (any dtype, including integer-valued floats);
* ``"bitspm1"``: values all in {-1, +1}.

The first layer sums the integer levels exactly (level accumulation, or XNOR-popcount for ±1
inputs) and folds its batch norm and sign into thresholds for the input's divisor. Any other
real input (``"float"``) runs the first layer in float64 (``x @ W.T``, a BLAS sum whose
rounding may differ from another float computation's) and the rest packed.

Binarized inputs. A network whose description starts with ``{"kind": "binarize",
"threshold": t}`` (:attr:`PackedNetwork.input_threshold`) takes every input through that step
(``"binarize"``): each value becomes the bit ``x > t`` (+1, else -1), compared in float32
(``float32(x) > float32(t)``, as training in JAX compares the estimators' float32 inputs), packed
in one pass, and the first layer runs by XNOR-popcount like a hidden one. Exact for every finite
input, levels or not (levels are not detected: the step always applies).
"""

from __future__ import annotations

import numpy as np

from bayesbin._validation import check_matrix, draw_indices
from bayesbin.bits import cexport as _cexport
from bayesbin.bits import fileformat as _fileformat
from bayesbin.bits.description import check_input_threshold, parse_ensemble
from bayesbin.bits.linear import _check_classes
from bayesbin.bits.linear import to_bits as _linear_to_bits
from bayesbin.bits.netdata import is_networks_result, networks_from_idata
from bayesbin.bits.netlayers import NetLayer
from bayesbin.bits.packing import _pack_threshold, levels_input, n_words, pack_bits
from bayesbin.linear.maths import softmax

__all__ = ["PackedNetwork", "pack_network", "to_bits"]


def pack_network(description, *, classes=None, metadata: dict | None = None) -> PackedNetwork:
    """Pack a network, or an ensemble of networks with one architecture, into bits.

    Parameters
    ----------
    description : dict or list of dict
        Interchange description(s): ``{"input_shape", "layers", "classes"}`` (see
        :mod:`bayesbin.bits.description`).
    classes : array-like of shape (K,), optional
        Labels returned by ``predict``; default: the description's ``classes``, else
        ``range(K)``.
    metadata : dict, optional
        JSON-serialisable provenance, kept in files.

    Returns
    -------
    PackedNetwork
        With ``input_threshold`` set when the description starts with a ``binarize`` step.
    """
    parsed = parse_ensemble(description)
    n_blocks = len(parsed[0].blocks)
    layers = [
        NetLayer.from_blocks([p.blocks[i] for p in parsed], first=i == 0, head=i == n_blocks - 1)
        for i in range(n_blocks)
    ]
    if classes is None:
        classes = parsed[0].classes
    return PackedNetwork(
        parsed[0].input_shape,
        layers,
        classes=classes,
        metadata=metadata,
        input_threshold=parsed[0].input_threshold,
    )


def to_bits(result, *, rule: str | None = None, draws=None, classes=None, **options):
    """Packed model from a sampling result, a ``PBNet.sample_networks`` result or weights.

    Parameters
    ----------
    result : arviz.InferenceData, xarray.DataTree or BinaryWeights
        A linear bayesbin result (see :func:`bayesbin.bits.linear.to_bits`, which takes the
        remaining ``options``), or sampled binary networks from
        :meth:`bayesbin.nets.PBNet.sample_networks` (also read back from a file).
    rule : {"marginal", "map", "draws"}, optional
        Linear results: default ``"marginal"``. Sampled networks: only ``"draws"`` (the default),
        one packed member per sampled network.
    draws : int or sequence of int, optional
        Sampled networks: ``draws`` networks evenly spaced over the sampled ones, or these draw
        indices (default: all), as :func:`bayesbin.select_draws` picks them.
        Linear results: passed to :func:`bayesbin.threshold`.
    classes : array-like of shape (K,), optional
        Labels returned by ``predict`` (default: the stored ones).
    **options
        Linear results only: ``threshold``, ``summary``, ``model``, ``spec``, ``inputs``,
        ``binarize_threshold``, ``input_encoding``.

    Returns
    -------
    PackedClassifier, PackedEnsemble or PackedNetwork
        A :class:`PackedNetwork` ensemble of S members for sampled networks; its
        ``predict_proba`` averages the members' softmax outputs.
    """
    if not is_networks_result(result):
        return _linear_to_bits(result, rule="marginal" if rule is None else rule, draws=draws,
                               classes=classes, **options)
    if rule not in (None, "draws"):
        raise ValueError(
            f"rule={rule!r} is not available for sampled networks: they are independent draws, "
            "packed as an ensemble (rule='draws'); for the most likely network use "
            "PBNet.to_bits(rule='map')"
        )
    if options:
        raise TypeError(
            f"to_bits got options {sorted(options)} that apply to linear models only"
        )
    networks = networks_from_idata(result)
    if draws is not None:  # the same rule as for linear results (bayesbin.select_draws)
        networks = [networks[i] for i in draw_indices(draws, len(networks))]
    return pack_network(
        networks,
        classes=classes,
        metadata={"source": "PBNet.sample_networks", "rule": "draws",
                  "n_networks": len(networks)},
    )


class PackedNetwork:
    """A packed binary network, or an ensemble of S networks averaged as a model average.

    Parameters
    ----------
    input_shape : tuple of int
        (D,) or (H, W, C).
    layers : list of NetLayer
        Chained: each layer's ``in_shape`` is the previous ``out_shape``; the first is marked
        ``first``, the last ``head`` (dense, K logits).
    classes : array-like of shape (K,), optional
    metadata : dict, optional
    input_threshold : float, optional
        The network's input step: every input value becomes +1 where ``x > input_threshold``
        (compared in float32), else -1, before the first layer, which then works on packed ±1
        bits. None (default): the first layer takes the real inputs.

    Attributes
    ----------
    input_shape : tuple of int
    input_threshold : float or None
    n_features : int
        Input values per row, ``prod(input_shape)``.
    n_classes : int
    classes_ : ndarray of shape (K,)
    layers : tuple of NetLayer
    metadata : dict

    Notes
    -----
    ``predict_proba`` is the mean over members of ``softmax(logits)``; ``decision_function``
    is the logits of a single network (S = 1) and ``log(predict_proba)`` for an ensemble;
    ``predict`` is ``classes_[argmax]`` of those (first on ties).
    """

    def __init__(
        self,
        input_shape,
        layers,
        *,
        classes=None,
        metadata: dict | None = None,
        input_threshold: float | None = None,
    ):
        self.input_shape = tuple(int(v) for v in input_shape)
        self.input_threshold = check_input_threshold(input_threshold)
        layers = list(layers)
        if not layers or not all(isinstance(lay, NetLayer) for lay in layers):
            raise TypeError("layers must be a non-empty list of NetLayer")
        shape = self.input_shape
        for i, lay in enumerate(layers):
            if lay.in_shape != shape:
                raise ValueError(f"layer {i} takes {lay.in_shape} but gets {shape}")
            if lay.first != (i == 0) or lay.head != (i == len(layers) - 1):
                raise ValueError(f"layer {i} is marked first={lay.first}, head={lay.head}")
            if lay.n_members != layers[0].n_members:
                raise ValueError("every layer needs the same number of members")
            shape = lay.out_shape
        if layers[-1].kind != "dense" or layers[-1].n_out < 2:
            raise ValueError("the head must be a dense layer with at least 2 outputs")
        self.layers = tuple(layers)
        self.n_features = int(np.prod(self.input_shape))
        self.n_classes = layers[-1].n_out
        self.classes_ = _check_classes(classes, self.n_classes)
        self.metadata = dict(metadata or {})

    @classmethod
    def _from_fields(cls, fields: dict) -> PackedNetwork:
        entries = fields["layers"]
        layers = [
            NetLayer.from_table(e, first=i == 0, head=i == len(entries) - 1)
            for i, e in enumerate(entries)
        ]
        return cls(
            fields["input_shape"],
            layers,
            classes=fields["classes"],
            metadata=fields["metadata"],
            input_threshold=fields.get("input_threshold"),
        )

    # ---- views ------------------------------------------------------------------------------

    @property
    def n_members(self) -> int:
        """S, the number of networks (1 for a single network)."""
        return self.layers[0].n_members

    @property
    def storage_bytes(self) -> int:
        """Bytes of the packed weights and output steps of every member."""
        total = 0
        for lay in self.layers:
            o = lay.output
            parts = (
                (o.thresholds, o.flips)
                if hasattr(o, "thresholds")
                else (o.gamma, o.beta, o.mean, o.var, o.eps)
            )
            total += lay.weights.nbytes + sum(a.nbytes for a in parts)
        return int(total)

    def __len__(self) -> int:
        return self.n_members

    def __getitem__(self, i) -> PackedNetwork:
        """Member ``i`` as a single network."""
        if isinstance(i, bool) or not isinstance(i, int | np.integer):
            raise TypeError("index an ensemble with an int")
        i = range(self.n_members)[i]
        layers = []
        for lay in self.layers:
            entry, arrays = lay.table_entry("x")
            named = {k: v[i : i + 1] for k, v in arrays}
            entry["weights"] = named["x.weights"]
            entry["output"] = {
                k: named[v] if isinstance(v, str) and v in named else v
                for k, v in entry["output"].items()
            }
            layers.append(NetLayer.from_table(entry, first=lay.first, head=lay.head))
        return PackedNetwork(
            self.input_shape,
            layers,
            classes=self.classes_,
            metadata=self.metadata,
            input_threshold=self.input_threshold,
        )

    def __repr__(self) -> str:
        kinds = "-".join(
            f"{lay.kind}{lay.n_out}" + (f"+pool{lay.pool[0]}({lay.pool[1]})" if lay.pool else "")
            for lay in self.layers
        )
        step = "" if self.input_threshold is None else f"input_threshold={self.input_threshold!r}, "
        return (
            f"PackedNetwork(input_shape={self.input_shape}, {step}layers={kinds}, "
            f"n_members={self.n_members}, n_classes={self.n_classes})"
        )

    # ---- inputs -----------------------------------------------------------------------------

    def _prepare(self, x):
        """``(path, data)``: levels (LevelInput), ±1 bits (packed) or float64 values."""
        arr = np.asarray(x) if not hasattr(x, "to_numpy") else x
        shape = getattr(arr, "shape", ())
        if len(shape) == 1 + len(self.input_shape) and tuple(shape[1:]) == self.input_shape:
            arr = np.reshape(arr, (shape[0], -1))
        arr = check_matrix(arr, "x", n_features=self.n_features, finite=False, native=True)
        if self.input_threshold is not None:
            return "binarize", self._binarize(arr)
        lev = levels_input(arr)
        if lev is not None:
            return ("levels255" if lev.divisor == 255.0 else "levels"), lev
        if not np.all(np.isfinite(arr)):
            bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
            raise ValueError(f"x contains {bad} NaN or infinite value(s); all must be finite")
        if np.all((arr == 1) | (arr == -1)):
            bits = pack_bits((arr > 0).reshape(arr.shape[0], *self.input_shape))
            return "bitspm1", bits
        return "float", np.asarray(arr, dtype=np.float64)

    def _binarize(self, arr: np.ndarray) -> np.ndarray:
        """The input step: bits ``arr > input_threshold`` packed as the first layer takes them.

        Parameters
        ----------
        arr : ndarray of shape (n, n_features)
            Checked (C-contiguous, native dtype).

        Returns
        -------
        ndarray of uint64
            (n, ceil(D / 64)) for a flat input; (n, H, W, ceil(C / 64)) for an image (each
            pixel's channels in their own words, NHWC), padding bits zero.
        """
        if arr.dtype.kind == "f":  # NaN and +-inf propagate into the extremes
            lo, hi = arr.min(), arr.max()
            if not (np.isfinite(lo) and np.isfinite(hi)):
                bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
                raise ValueError(f"x contains {bad} NaN or infinite value(s); all must be finite")
        n, c = arr.shape[0], self.input_shape[-1]
        rows = arr.reshape(-1, c).astype(np.float32, copy=False)  # one row per pixel
        out = np.empty((rows.shape[0], n_words(c)), dtype=np.uint64)
        # the kernel compares in float64: float32 values against float64(float32(t)) is the
        # float32 comparison float32(x) > float32(t) (both sides exact in float64)
        _pack_threshold(rows, float(np.float32(self.input_threshold)), out)
        return out.reshape(n, *self.input_shape[:-1], out.shape[1])

    def input_path(self, x) -> str:
        """How the first layer will treat ``x``.

        Parameters
        ----------
        x : array-like of shape (n, *input_shape) or (n, prod(input_shape))

        Returns
        -------
        {"binarize", "levels255", "levels", "bitspm1", "float"}
            The network's own input step (whenever ``input_threshold`` is set, whatever ``x``
            holds: bits ``x > input_threshold``, then XNOR-popcount); otherwise exact
            ``k / 255`` pixels, exact integer levels, ±1 values (XNOR-popcount), or the
            float64 first layer.
        """
        return self._prepare(x)[0]

    # ---- forward ----------------------------------------------------------------------------

    def _member_logits(self, path: str, data, m: int) -> np.ndarray:
        first = self.layers[0]
        if path in ("levels255", "levels"):
            h = first.run_levels(data.q, data.divisor, m)
        elif path in ("bitspm1", "binarize"):
            h = first.run_bits(data, m)
        else:
            h = first.run_float(data, m)
        for lay in self.layers[1:]:
            h = lay.run_bits(h, m)
        return h

    def member_logits(self, x) -> np.ndarray:
        """Every member's logits.

        Parameters
        ----------
        x : array-like of shape (n, *input_shape) or (n, prod(input_shape))

        Returns
        -------
        ndarray of shape (S, n, K), float64
        """
        path, data = self._prepare(x)
        return np.stack([self._member_logits(path, data, m) for m in range(self.n_members)])

    def predict_proba(self, x) -> np.ndarray:
        """Class probabilities: the mean over members of ``softmax(logits)``.

        Parameters
        ----------
        x : array-like of shape (n, *input_shape) or (n, prod(input_shape))

        Returns
        -------
        ndarray of shape (n, K), float64
        """
        path, data = self._prepare(x)
        total = None
        for m in range(self.n_members):
            p = softmax(self._member_logits(path, data, m))
            total = p if total is None else total + p
        return total if self.n_members == 1 else total / self.n_members

    def decision_function(self, x) -> np.ndarray:
        """Logits (one network) or log posterior-mean probabilities (an ensemble).

        Parameters
        ----------
        x : array-like of shape (n, *input_shape) or (n, prod(input_shape))

        Returns
        -------
        ndarray of shape (n, K), float64
        """
        if self.n_members == 1:
            path, data = self._prepare(x)
            return self._member_logits(path, data, 0)
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(x))

    def predict(self, x) -> np.ndarray:
        """Class labels ``classes_[argmax decision_function(x)]`` (first on ties).

        Parameters
        ----------
        x : array-like of shape (n, *input_shape) or (n, prod(input_shape))

        Returns
        -------
        ndarray of shape (n,)
        """
        if self.n_members == 1:
            score = self.decision_function(x)
        else:
            score = self.predict_proba(x)
        return self.classes_[np.argmax(score, axis=1)]

    # ---- files ------------------------------------------------------------------------------

    def save(self, path) -> None:
        """Write the network to one ``.bbits`` file (format version 2), atomically.

        See :mod:`bayesbin.bits.fileformat`: a table of layers (kind, shapes, pooling, packed
        weights, thresholds and flips of hidden layers, batch norm of the first layer and of
        the head), checksummed.

        Parameters
        ----------
        path : str or os.PathLike
        """
        _fileformat.save_network(self, path)

    def export_c_header(self, path, *, prefix: str = "bayesbin", divisor: float = 255.0) -> None:
        """Write a dependency-free C99 header with the whole network and its forward pass.

        The generated functions take the input as integer levels ``q`` (``const uint16_t *``,
        ``prod(input_shape)`` values in NHWC order) meaning ``x = q / divisor``:

        * ``void <prefix>_logits(const uint16_t *q, int member, double *logits)``;
        * ``void <prefix>_predict_proba(const uint16_t *q, double *proba)`` (mean softmax);
        * ``int <prefix>_predict(const uint16_t *q)`` (class index).

        The logits are those of :meth:`decision_function` on ``q / divisor`` (same integers,
        same float64 operations). With an ``input_threshold`` ``t`` the C code binarizes first:
        bit ``x > t`` compared in float32 as :meth:`decision_function` does, for ``x = q /
        divisor`` (float32 of the float64 quotient, what ``load_mnist``'s pixels are), found as
        the integer comparison ``q >= Q_ON`` (``<PREFIX>_Q_ON``, derived from that very
        comparison at export), then runs the first layer by XNOR-popcount. Compile with ``cc -std=c99 ... -lm``. Written atomically.

        Parameters
        ----------
        path : str or os.PathLike
        prefix : str
            C identifier prefix.
        divisor : float
            255 for pixels ``k / 255``, 1 for integer inputs.
        """
        _fileformat.write_text(path, _cexport.network_header(self, prefix, divisor))
