"""Binary networks as plain layer dicts (numpy): build, run, re-estimate batch norm, ArviZ round trip.

A network is ``{"input_shape": (H, W, C) or (D,), "layers": [...], "classes": [...]}`` in the
format of the packed-bit interchange (:mod:`bayesbin.bits.description`): ``"dense"`` (int8 weights
``(out, in)`` in {-1, +1}, ``s = x @ W.T``), ``"conv2d"`` (int8 OIHW ``(out, in, 3, 3)``,
padding "same" with zero padding: a padded pixel contributes 0), ``"batchnorm"`` (gamma, beta,
mean, var of shape (C,), eps), ``"sign"`` (sign(0) = +1), ``"maxpool2d"`` (size, stride = size,
floor), ``"flatten"`` (NHWC -> C order) and, as the first entry only, ``"binarize"``
(``threshold``: inputs become +1 where ``x > threshold``, else -1). Layer dicts of binary layers and batch norms also
carry ``"name"`` (e.g. ``"conv1"``), an extra key consumers may ignore. The output is the last
layer's float output (logits). Everything here is numpy: a pickled estimator and a saved
:meth:`PBNet.sample_networks <bayesbin.nets.PBNet.sample_networks>` result predict without JAX.

Examples
--------
>>> nets = networks_from_idata(idata)          # doctest: +SKIP
>>> logits = run_network(nets[0], x_test)      # doctest: +SKIP
"""

from __future__ import annotations

import json
import math

import numpy as np

from bayesbin.bits.netdata import (
    IDATA_KIND,
    build_network,
    networks_from_idata,
    networks_to_idata,
)
from bayesbin.nets.architecture import Plan
from bayesbin.nets.layers import BN_EPS, batch_norm, binarize, conv2d, dense, maxpool2d
from bayesbin.nets.quantizers import sign

__all__ = [
    "IDATA_KIND",
    "build_network",
    "estimate_bn_statistics",
    "map_weights",
    "network_template",
    "networks_from_idata",
    "networks_to_idata",
    "run_network",
    "sample_weights",
    "weight_probability_images",
]

_ACT_BYTES = 48 * 2**20  # activations of one chunk of rows in a forward pass


def _jsonable(v):
    return v.item() if hasattr(v, "item") else v


def network_template(plan: Plan, classes, eps: float = BN_EPS, *,
                     input_threshold: float | None = None) -> dict:
    """Describe a network without arrays: input shape, classes and layer kinds/names.

    Parameters
    ----------
    plan : Plan
    classes : sequence
        Class labels in output order.
    eps : float
        Batch-norm epsilon.
    input_threshold : float, optional
        Binarize the inputs first (``{"kind": "binarize", "threshold": ...}`` leads the layers).

    Returns
    -------
    dict
        JSON-friendly: ``input_shape``, ``classes``, ``eps``, ``layers`` (list of
        ``{"kind", "name"[, "size"]}``, or ``{"kind": "binarize", "threshold"}`` first).
    """
    layers = []
    if input_threshold is not None:
        layers.append({"kind": "binarize", "threshold": float(input_threshold)})
    for op in plan.ops:
        d = {"kind": op.kind}
        if op.kind in ("conv2d", "dense", "batchnorm"):
            d["name"] = op.name
        if op.kind == "maxpool2d":
            d["size"] = op.size
        layers.append(d)
    return {
        "input_shape": list(plan.input_shape),
        "classes": [_jsonable(c) for c in classes],
        "eps": float(eps),
        "layers": layers,
    }


def sample_weights(theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw binary weights: ``w = +1`` with probability ``(1 + theta) / 2``.

    Parameters
    ----------
    theta : ndarray of any shape
        ``E[w]`` in [-1, 1].
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of the same shape, int8 in {-1, +1}
    """
    u = rng.random(theta.shape, dtype=np.float32)
    return np.where(u < (1.0 + theta) / 2.0, 1, -1).astype(np.int8)


def map_weights(theta: np.ndarray) -> np.ndarray:
    """Return the most likely binary weights: +1 where ``theta >= 0`` (P(w=+1) >= 1/2), else -1.

    Parameters
    ----------
    theta : ndarray of any shape

    Returns
    -------
    ndarray of the same shape, int8 in {-1, +1}
    """
    return sign(np.asarray(theta)).astype(np.int8)


def _as_rows(net: dict, x, name: str = "x") -> np.ndarray:
    """Return x as float32 (n, *input_shape); flat rows are reshaped when their length fits."""
    shape = tuple(net["input_shape"])
    x = np.asarray(x)
    if x.ndim >= 2 and x.shape[1:] == shape:
        return x.astype(np.float32, copy=False)
    if x.ndim >= 2 and math.prod(x.shape[1:]) == math.prod(shape):
        return x.reshape((x.shape[0], *shape)).astype(np.float32, copy=False)
    raise ValueError(
        f"{name} has per-row shape {x.shape[1:]} but the network expects {shape} "
        f"({math.prod(shape)} values per row when flat)"
    )


def _chunk_rows(net: dict, n: int, copies: int = 3) -> int:
    """Rows per chunk so that ``copies`` float32 activations of the widest layer fit _ACT_BYTES."""
    shape = tuple(net["input_shape"])
    biggest = math.prod(shape)
    for layer in net["layers"]:
        w = layer.get("weights")
        if w is not None and w.ndim == 4:
            biggest = max(biggest, math.prod(shape[:2]) * w.shape[0])
    return max(1, min(n, _ACT_BYTES // (4 * copies * biggest)))


def _apply(layer: dict, h: np.ndarray) -> np.ndarray:
    kind = layer["kind"]
    if kind == "binarize":
        return binarize(h, layer["threshold"])
    if kind == "conv2d":
        return conv2d(h, layer["weights"])
    if kind == "dense":
        return dense(h, layer["weights"].astype(np.float32))
    if kind == "batchnorm":
        return batch_norm(
            h, layer["gamma"], layer["beta"], layer["mean"].astype(np.float32),
            layer["var"].astype(np.float32), layer["eps"],
        ).astype(np.float32, copy=False)
    if kind == "sign":
        return sign(h)
    if kind == "maxpool2d":
        return maxpool2d(h, layer["size"])
    if kind == "flatten":
        return h.reshape(h.shape[0], -1)
    raise ValueError(f"unknown layer kind {kind!r}")


def run_network(net: dict, x, *, stop: int | None = None) -> np.ndarray:
    """Forward pass of a binary network (numpy, float32, in chunks of rows).

    Parameters
    ----------
    net : dict
        A network in the interchange format.
    x : array-like of shape (n, *input_shape) or (n, prod(input_shape))
        Real inputs for the first layer.
    stop : int, optional
        Run only ``net["layers"][:stop]``.

    Returns
    -------
    ndarray of shape (n, n_outputs), float32
        The last layer's output: the logits (or the output of layer ``stop - 1``).
    """
    x = _as_rows(net, x)
    layers = net["layers"][:stop]
    step = _chunk_rows(net, x.shape[0])
    out = []
    for lo in range(0, x.shape[0], step):
        h = x[lo : lo + step]
        for layer in layers:
            h = _apply(layer, h)
        out.append(h)
    return np.concatenate(out, axis=0)


class _Moments:
    """Per-channel running sums over rows and positions (float64)."""

    def __init__(self):
        self.n = 0
        self.s1 = 0.0
        self.s2 = 0.0

    def add(self, v: np.ndarray) -> None:
        flat = v.reshape(-1, v.shape[-1]).astype(np.float64)
        self.n += flat.shape[0]
        self.s1 = self.s1 + flat.sum(axis=0)
        self.s2 = self.s2 + (flat * flat).sum(axis=0)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        mean = self.s1 / self.n
        return mean, np.maximum(self.s2 / self.n - mean * mean, 0.0)


def estimate_bn_statistics(net: dict, x) -> dict:
    """Re-estimate every batch norm's mean and variance as population statistics over ``x``.

    Batch norms are estimated in forward order, each from the scores produced by the network
    with the earlier batch norms already re-estimated (as for a sampled PBNet network or a
    "precise BN" pass after straight-through training). Rows are processed in chunks; the
    input of the current stage is cached as int8 when it is a ±1 sign output.

    Parameters
    ----------
    net : dict
        A network in the interchange format (its batch-norm ``mean``/``var`` are replaced;
        ``gamma``/``beta`` kept).
    x : array-like of shape (n, *input_shape) or flat
        Training rows.

    Returns
    -------
    dict
        A new network dict (arrays of binary layers shared with ``net``).
    """
    x = _as_rows(net, x)
    layers = [dict(layer) for layer in net["layers"]]
    out = {**net, "layers": layers}
    step = _chunk_rows(net, x.shape[0])
    cache = x  # input of the current stage
    start = 0
    for j, layer in enumerate(layers):
        if layer["kind"] != "batchnorm":
            continue
        acc = _Moments()
        for lo in range(0, cache.shape[0], step):
            h = cache[lo : lo + step].astype(np.float32, copy=False)
            for lay in layers[start:j]:
                h = _apply(lay, h)
            acc.add(h)
        layer["mean"], layer["var"] = acc.result()
        # advance the cache past the following sign (if any): the next stage's ±1 input
        stop = j + 1
        if stop < len(layers) and layers[stop]["kind"] == "sign":
            stop += 1
            nxt = []
            for lo in range(0, cache.shape[0], step):
                h = cache[lo : lo + step].astype(np.float32, copy=False)
                for lay in layers[start:stop]:
                    h = _apply(lay, h)
                nxt.append(h.astype(np.int8))
            cache = np.concatenate(nxt, axis=0)
            start = stop
    return out


def weight_probability_images(result, layer: str | None = None) -> tuple[np.ndarray, list[str]]:
    """P(w = +1) of one binary layer of a sampled-networks result, as one image per unit.

    For plots (e.g. ``bayesbin.plots.plot_weight_probabilities``): the first layer of an MLP on
    MNIST gives a 28x28 image per hidden unit (per class for a single-layer ``"784-10"``); a
    3x3 convolution gives a 3x3 image per filter (input channels side by side).

    Parameters
    ----------
    result : InferenceData or DataTree
        From :func:`networks_to_idata` / ``PBNet.sample_networks``.
    layer : str, optional
        Binary layer name (default: the first, ``"conv1"`` or ``"dense1"``).

    Returns
    -------
    images : ndarray of shape (units, rows, cols), float64
        Values in [0, 1].
    titles : list of str
        ``"<layer>[i]"``, or the class label when the layer is the output layer.
    """
    from bayesbin._compat import get_group, has_group, is_result

    if not is_result(result) or not has_group(result, "constant_data"):
        raise TypeError("result must be a PBNet.sample_networks result (InferenceData/DataTree)")
    post = get_group(result, "posterior")
    if post.attrs.get("bayesbin_nets_kind") != IDATA_KIND:
        raise ValueError("result was not written by PBNet.sample_networks (no network template)")
    template = json.loads(post.attrs["bayesbin_nets_template"])
    names = [s["name"] for s in template["layers"] if s["kind"] in ("conv2d", "dense")]
    name = names[0] if layer is None else layer
    if name not in names:
        raise ValueError(f"layer must be one of {names}; got {layer!r}")
    p = np.asarray(get_group(result, "constant_data")[f"{name}_p"].values, dtype=np.float64)
    if p.ndim == 4:  # (out, in, 3, 3) -> (out, 3, 3 * in)
        images = p.transpose(0, 2, 1, 3).reshape(p.shape[0], 3, -1)
    else:
        n_in = p.shape[1]
        shape = tuple(template["input_shape"]) if name == names[0] else (n_in,)
        if len(shape) == 3 and shape[2] == 1:
            rows, cols = shape[:2]
        else:
            side = math.isqrt(n_in)
            rows, cols = (side, side) if side * side == n_in else (1, n_in)
        images = p.reshape(p.shape[0], rows, cols)
    if name == names[-1]:
        titles = [str(c) for c in template["classes"]]
    else:
        titles = [f"{name}[{i}]" for i in range(images.shape[0])]
    return images, titles
