"""The float64 reference forward pass of an interchange network description, in plain numpy.

Independent of the packed kernels and of :mod:`bayesbin.bits.description`'s grouping: it applies
the layer dicts one by one, as the docstring of :mod:`bayesbin.bits.description` defines them. It
is exact: every binary layer's pre-activation is a sum of ±1 products (integers, exact in float64
whatever the summation order); a first layer fed real inputs that are exactly ``k / 255``
(float64, or the float32 nearest ``k / 255`` as ``pixels / 255`` in float32 gives) sums the
integers ``k`` and divides once by 255, so the packed forward pass can match it bit for bit. A
leading ``binarize`` step compares in float32, as the networks are trained (JAX, float32
inputs): ``+1.0`` where ``float32(x) > float32(threshold)``, else ``-1.0``; no level detection
then. Batch norm is
``gamma * (s - mean) / sqrt(var + eps) + beta`` evaluated in that order.
"""

from __future__ import annotations

import numpy as np

__all__ = ["as_levels", "reference_forward"]


def as_levels(x: np.ndarray) -> tuple[np.ndarray, float] | None:
    """``(k, 255.0)`` when every value of float ``x`` is exactly ``k / 255`` (its precision).

    Parameters
    ----------
    x : ndarray of float32 or float64

    Returns
    -------
    (ndarray of float64, float) or None
        The integers ``k`` (as float64) and the divisor, or None.
    """
    if x.dtype not in (np.float32, np.float64) or not np.all(np.isfinite(x)):
        return None
    k = np.rint(x.astype(np.float64) * 255.0)
    if np.any(k < 0) or np.any(k > 255):
        return None
    back = k.astype(x.dtype) / x.dtype.type(255)
    return (k, 255.0) if np.array_equal(back, x) else None


def _conv3x3(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """'same' cross-correlation with zero padding: x (n, H, W, C), w (O, C, 3, 3)."""
    n, h, wd, _ = x.shape
    pad = np.zeros((n, h + 2, wd + 2, x.shape[3]))
    pad[:, 1:-1, 1:-1, :] = x
    out = np.zeros((n, h, wd, w.shape[0]))
    for dy in range(3):
        for dx in range(3):
            out += pad[:, dy : dy + h, dx : dx + wd, :] @ w[:, :, dy, dx].T.astype(np.float64)
    return out


def reference_forward(network: dict, x) -> np.ndarray:
    """Logits of the float64 forward pass of one network.

    Parameters
    ----------
    network : dict
        An interchange description (``input_shape``, ``layers``).
    x : array-like of shape (n, *input_shape) or (n, prod(input_shape))
        Real inputs. Values that are all exactly ``k / 255`` are treated as the pixels
        ``k / 255`` (integer sums divided by 255 in the first binary layer), unless the network
        starts with a ``binarize`` step (which sees the values as given).

    Returns
    -------
    ndarray of shape (n, K), float64
    """
    shape = tuple(int(v) for v in network["input_shape"])
    arr = np.asarray(x)
    arr = arr.reshape(arr.shape[0], *shape)
    layers = list(network["layers"])
    binarized = bool(layers) and layers[0]["kind"] == "binarize"
    levels = None if binarized else as_levels(arr)
    divisor = 1.0
    if levels is not None:
        h, divisor = levels
    else:
        h = arr.astype(np.float64)
    first = True
    for i, layer in enumerate(layers):
        kind = layer["kind"]
        if kind == "binarize":
            if i != 0:
                raise ValueError(f"layer {i}: binarize may only be the first layer")
            # in float32, as training compares (JAX, float32 inputs): float32(x) >
            # float32(threshold), written with both float32 values exactly in float64
            x32 = np.asarray(arr).astype(np.float32).astype(np.float64)
            h = np.where(x32 > float(np.float32(layer["threshold"])), 1.0, -1.0)
        elif kind == "dense":
            w = np.asarray(layer["weights"], dtype=np.float64)
            h = h @ w.T
        elif kind == "conv2d":
            h = _conv3x3(h, np.asarray(layer["weights"]))
        elif kind == "batchnorm":
            g, b = np.asarray(layer["gamma"], float), np.asarray(layer["beta"], float)
            m, v = np.asarray(layer["mean"], float), np.asarray(layer["var"], float)
            h = g * (h - m) / np.sqrt(v + float(layer.get("eps", 0.0))) + b
        elif kind == "sign":
            h = np.where(h >= 0, 1.0, -1.0)
        elif kind == "maxpool2d":
            s = int(layer.get("size", 2))
            n, hh, ww, c = h.shape
            h = h[:, : hh // s * s, : ww // s * s, :]
            h = h.reshape(n, hh // s, s, ww // s, s, c).max(axis=(2, 4))
        elif kind == "flatten":
            h = h.reshape(h.shape[0], -1)
        else:
            raise ValueError(f"unknown layer kind {kind!r}")
        if first and kind in ("dense", "conv2d"):
            first = False
            if divisor != 1.0:
                h = h / divisor
    return h
