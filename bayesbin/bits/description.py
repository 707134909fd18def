"""Read and check the interchange description of a trained binary network (``bayesbin.nets``).

This docstring defines the interchange format. A network is
``{"input_shape": (H, W, C) or (D,), "layers": [...], "classes": [...]}`` (``classes``
optional) with these layer dicts: ``dense`` (int8 weights (out, in) in {-1, +1}), ``conv2d``
(int8 weights (out, in, 3, 3), ``padding="same"``: zero padding, stride 1,
cross-correlation), ``batchnorm`` (gamma, beta, mean, var of shape (C,), eps), ``sign`` (+1
for ``s >= 0``), ``maxpool2d`` (``size``, stride = size, floor), ``flatten`` (NHWC, C order)
and ``binarize`` (``threshold``, a finite real ``t``: every input value becomes +1 where
``x > t``, strictly greater, compared in float32 as ``float32(x) > float32(t)`` (as the
networks are trained), else -1; the network's input step, so only as the very first layer). Images are NHWC.

:func:`parse_network` groups the list into *blocks*, one per binary layer::

    [binarize]                                    optional input step, first layer only
    op [maxpool] [batchnorm] sign [maxpool]      hidden (maxpool on the scores, or after sign)
    op [batchnorm] [maxpool] sign                 maxpool between batchnorm and sign
    dense [batchnorm]                             the head (last): float logits

``op`` is ``dense`` or ``conv2d``; ``flatten`` may stand between blocks. A maxpool between
batchnorm and sign is the same function as one after the sign (the max of ``y`` is ``>= 0``
exactly when some ``y`` is), so it is recorded as a pool on the output bits. After a
``binarize`` step the first block sees ±1 values, exactly like a hidden one; the step's
threshold is :attr:`ParsedNetwork.input_threshold` (None without the step).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

__all__ = ["Block", "ParsedNetwork", "check_input_threshold", "parse_ensemble", "parse_network"]

_KINDS = ("binarize", "dense", "conv2d", "batchnorm", "sign", "maxpool2d", "flatten")


@dataclass(frozen=True, eq=False)
class Block:
    """One binary layer of a parsed network.

    Attributes
    ----------
    kind : {"dense", "conv2d"}
    weights : ndarray of int8
        ±1; (out, in) dense with ``in`` in NHWC flatten order, or (out, in, 3, 3) conv.
    in_shape : tuple of int
        (D,) or the (H, W, C) image a dense layer flattens, or a conv layer's input.
    pool : tuple of (int, str) or None
        ``(size, "scores")`` or ``(size, "bits")``.
    batchnorm : tuple of ndarray or None
        ``(gamma, beta, mean, var, eps)``, float64 arrays of shape (out,) and a float.
    sign : bool
        Hidden layer (True) or head (False).
    """

    kind: str
    weights: np.ndarray
    in_shape: tuple
    pool: tuple | None
    batchnorm: tuple | None
    sign: bool

    @property
    def n_out(self) -> int:
        """Output units or channels."""
        return int(self.weights.shape[0])

    @property
    def out_shape(self) -> tuple:
        """Shape of the block's output (after pooling)."""
        if self.kind == "dense":
            return (self.n_out,)
        h, w, _ = self.in_shape
        size = self.pool[0] if self.pool else 1
        return (h // size, w // size, self.n_out)

    def signature(self) -> tuple:
        """What members of an ensemble must share."""
        return (
            self.kind,
            self.weights.shape,
            self.in_shape,
            self.pool,
            self.batchnorm is None,
            self.sign,
        )


@dataclass(frozen=True, eq=False)
class ParsedNetwork:
    """A checked network: its input shape, blocks and class labels (None if not given).

    Attributes
    ----------
    input_shape : tuple of int
    blocks : tuple of Block
    classes : ndarray of shape (K,) or None
    input_threshold : float or None
        The threshold ``t`` of a leading ``binarize`` step (inputs become +1 where ``x > t``,
        else -1), or None when the first layer takes the real inputs.
    """

    input_shape: tuple
    blocks: tuple
    classes: np.ndarray | None
    input_threshold: float | None = None


def _shape(value, name: str) -> tuple:
    try:
        shape = tuple(int(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a tuple of ints; got {value!r}") from exc
    if (
        len(shape) not in (1, 3)
        or min(shape) < 1
        or any(isinstance(v, bool) or int(v) != v for v in value)
    ):
        raise ValueError(f"{name} must be (D,) or (H, W, C) of positive ints; got {value!r}")
    return shape


def _pm1(value, shape: tuple, where: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{where}: weights must be numeric ±1; got dtype {arr.dtype}")
    if arr.shape != shape:
        raise ValueError(f"{where}: weights must have shape {shape}; got {arr.shape}")
    if not np.all((arr == 1) | (arr == -1)):
        raise ValueError(f"{where}: weights must hold only -1 and +1")
    return np.where(arr > 0, 1, -1).astype(np.int8)


def _batchnorm(layer: dict, c: int, where: str) -> tuple:
    out = []
    for key in ("gamma", "beta", "mean", "var"):
        if key not in layer:
            raise ValueError(f"{where}: batchnorm lacks {key!r}")
        try:
            arr = np.asarray(layer[key], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{where}: batchnorm {key} must be numeric") from exc
        if arr.shape != (c,):
            raise ValueError(f"{where}: batchnorm {key} must have shape ({c},); got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{where}: batchnorm {key} must be finite")
        out.append(arr)
    eps = layer.get("eps", 0.0)
    if isinstance(eps, bool) or not isinstance(eps, int | float | np.integer | np.floating):
        raise TypeError(f"{where}: batchnorm eps must be a number; got {eps!r}")
    eps = float(eps)
    if not np.isfinite(eps) or eps < 0 or np.any(out[3] < 0):
        raise ValueError(f"{where}: batchnorm var and eps must be finite and >= 0")
    if not np.all(out[3] + eps > 0):
        raise ValueError(f"{where}: batchnorm var + eps must be > 0")
    return (*out, eps)


def check_input_threshold(
    value, name: str = "input_threshold", *, optional: bool = True
) -> float | None:
    """Check the threshold of a network's binarize step: a finite real number (or None).

    Parameters
    ----------
    value : float or None
    name : str
        What to call it in error messages.
    optional : bool
        Whether None (no binarize step) is accepted.

    Returns
    -------
    float or None

    Raises
    ------
    TypeError
        For a bool or a non-numeric value (None too unless ``optional``).
    ValueError
        For NaN or an infinite value.
    """
    if value is None and optional:
        return None
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        also = " or None" if optional else ""
        raise TypeError(f"{name} must be a finite real number{also}; got {value!r}")
    t = float(value)
    if not np.isfinite(t):
        raise ValueError(f"{name} must be a finite real number; got {value!r}")
    return t


def _binarize(layer: dict, where: str) -> float:
    if "threshold" not in layer:
        raise ValueError(
            f"{where}: binarize needs a 'threshold' (a finite real number: inputs become +1 "
            "where x > threshold, else -1)"
        )
    return check_input_threshold(layer["threshold"], f"{where}: binarize threshold", optional=False)


def _pool(layer: dict, shape: tuple, where: str) -> int:
    size = layer.get("size", 2)
    stride = layer.get("stride", size)
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
        raise ValueError(f"{where}: maxpool2d size must be a positive int; got {size!r}")
    if stride != size:
        raise ValueError(f"{where}: maxpool2d stride must equal its size")
    if len(shape) != 3 or shape[0] < size or shape[1] < size:
        raise ValueError(f"{where}: maxpool2d of size {size} needs an image of at least that size")
    return int(size)


def parse_network(network: dict) -> ParsedNetwork:
    """Check an interchange description and group it into blocks.

    Parameters
    ----------
    network : dict
        ``{"input_shape": ..., "layers": [...], "classes": [...]}`` (``classes`` optional).

    Returns
    -------
    ParsedNetwork

    Raises
    ------
    ValueError or TypeError
        For an unknown layer kind, shapes that do not chain, weights that are not ±1, a layer
        order outside the grammar of the module docstring, non-finite batch norm values, a
        ``binarize`` step that is not the first layer, or whose threshold is missing,
        non-finite (ValueError), a bool or not a number (TypeError).
    """
    if not isinstance(network, dict) or "layers" not in network or "input_shape" not in network:
        raise TypeError("a network is a dict with 'input_shape' and 'layers'")
    input_shape = shape = _shape(network["input_shape"], "input_shape")
    layers = list(network["layers"])
    blocks, i, flat_of, threshold = [], 0, None, None
    if layers and isinstance(layers[0], dict) and layers[0].get("kind") == "binarize":
        threshold, i = _binarize(layers[0], "layer 0"), 1
    while i < len(layers):
        layer = layers[i]
        where = f"layer {i}"
        kind = layer.get("kind") if isinstance(layer, dict) else None
        if kind not in _KINDS:
            raise ValueError(f"{where}: unknown layer kind {kind!r}")
        if kind == "binarize":
            raise ValueError(
                f"{where}: binarize is the network's input step and may only be the first "
                "layer (layer 0)"
            )
        if kind == "flatten":
            if len(shape) == 3:
                flat_of, shape = shape, (int(np.prod(shape)),)
            i += 1
            continue
        if kind not in ("dense", "conv2d"):
            raise ValueError(f"{where}: {kind} must follow a dense or conv2d layer")
        if blocks and not blocks[-1].sign:
            raise ValueError(f"{where}: only the last binary layer may lack a sign")
        if kind == "dense":
            if len(shape) != 1:
                raise ValueError(f"{where}: dense needs a flat input; add a flatten layer")
            w = np.asarray(layer.get("weights"))
            if w.ndim != 2:
                raise ValueError(f"{where}: dense weights must be 2-D (out, in); got {w.shape}")
            weights = _pm1(w, (w.shape[0], shape[0]), where)
            in_shape = flat_of if flat_of is not None else shape
        else:
            if len(shape) != 3:
                raise ValueError(f"{where}: conv2d needs an (H, W, C) image input")
            if layer.get("padding", "same") != "same":
                raise ValueError(f"{where}: conv2d padding must be 'same'")
            w = np.asarray(layer.get("weights"))
            if w.ndim != 4:
                raise ValueError(f"{where}: conv2d weights must be (out, in, 3, 3); got {w.shape}")
            weights = _pm1(w, (w.shape[0], shape[2], 3, 3), where)
            in_shape = shape
        if weights.shape[0] < 1:
            raise ValueError(f"{where}: a layer needs at least one output")
        n_out, i = weights.shape[0], i + 1
        pool = bn = None
        sign = False
        pending = []
        while (
            i < len(layers)
            and isinstance(layers[i], dict)
            and layers[i].get("kind") in ("maxpool2d", "batchnorm", "sign")
        ):
            pending.append((i, layers[i]))
            i += 1
        order = [lay["kind"] for _, lay in pending]
        allowed = {
            (),
            ("sign",),
            ("batchnorm",),
            ("batchnorm", "sign"),
            ("maxpool2d", "sign"),
            ("maxpool2d", "batchnorm", "sign"),
            ("sign", "maxpool2d"),
            ("batchnorm", "sign", "maxpool2d"),
            ("batchnorm", "maxpool2d", "sign"),
        }
        if tuple(order) not in allowed:
            raise ValueError(f"layer {pending[0][0]}: unsupported layer order {order} after {kind}")
        out_img = (in_shape[0], in_shape[1], n_out) if kind == "conv2d" else (n_out,)
        for j, lay in pending:
            if lay["kind"] == "batchnorm":
                bn = _batchnorm(lay, n_out, f"layer {j}")
            elif lay["kind"] == "sign":
                sign = True
            else:
                size = _pool(lay, out_img, f"layer {j}")
                on_scores = order.index("maxpool2d") < order.index("sign") and not (
                    "batchnorm" in order and order.index("batchnorm") < order.index("maxpool2d")
                )
                pool = (size, "scores" if on_scores else "bits")
        block = Block(kind, weights, in_shape, pool, bn, sign)
        blocks.append(block)
        shape, flat_of = block.out_shape, None
    if not blocks:
        raise ValueError("a network needs at least one dense or conv2d layer")
    if blocks[-1].sign or blocks[-1].kind != "dense":
        raise ValueError("the last binary layer must be dense without sign (the logits)")
    if blocks[-1].n_out < 2:
        raise ValueError("the head needs at least 2 outputs (softmax logits)")
    classes = network.get("classes")
    if classes is not None:
        classes = np.asarray(classes)
        if classes.shape != (blocks[-1].n_out,):
            raise ValueError(f"classes must list {blocks[-1].n_out} labels; got {classes.shape}")
    return ParsedNetwork(input_shape, tuple(blocks), classes, threshold)


def parse_ensemble(networks) -> list[ParsedNetwork]:
    """Parse one network (a dict) or several with the same architecture (a list of dicts).

    Parameters
    ----------
    networks : dict or list of dict
        Interchange descriptions (see the module docstring).

    Returns
    -------
    list of ParsedNetwork
        One per member; their blocks share kinds, shapes, pools and the presence of batch norm,
        and they share the input step (``input_threshold``, or none).

    Raises
    ------
    ValueError or TypeError
        As :func:`parse_network`, and for members of different architectures, classes or
        input steps.
    """
    if isinstance(networks, dict):
        networks = [networks]
    parsed = [parse_network(n) for n in networks]
    if not parsed:
        raise ValueError("an ensemble needs at least one network")
    first = parsed[0]
    for k, p in enumerate(parsed[1:], 1):
        same = p.input_shape == first.input_shape and len(p.blocks) == len(first.blocks)
        same = same and all(
            a.signature() == b.signature() for a, b in zip(p.blocks, first.blocks, strict=True)
        )
        if not same:
            raise ValueError(f"network {k} does not have the architecture of network 0")
        if p.input_threshold != first.input_threshold:
            raise ValueError(
                f"network {k} has another input step than network 0 (binarize threshold "
                f"{p.input_threshold!r} against {first.input_threshold!r}): the members of an "
                "ensemble share the input step"
            )
        if (p.classes is None) != (first.classes is None) or (
            p.classes is not None and not np.array_equal(p.classes, first.classes)
        ):
            raise ValueError(f"network {k} has other classes than network 0")
    return parsed
