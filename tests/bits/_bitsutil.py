"""Shared helpers of the bits tests: the float model written out, MNIST rows, random networks."""

from __future__ import annotations

import numpy as np
from hypothesis import settings

PROPS = settings(max_examples=60, deadline=None, derandomize=True)
FORMS = ["softmax", "single", "two_output"]


def float_model(bits, x, *, form, encoding, scale=1.0, bias=0.0):
    """The float64 model maths, written out: eta = scale * (x @ W) + b."""
    w = np.asarray(bits, dtype=np.float64)
    if encoding == "pm1":
        w = 2 * w - 1
    x = np.asarray(x, dtype=np.float64)
    if form == "softmax":
        return scale * (x @ w) + bias
    if form == "single":
        return scale * (x @ w) + bias
    return scale * (x @ w[1] - x @ w[0]) + bias


def weight_shape(form, d, k):
    return {"softmax": (d, k), "single": (d,), "two_output": (2, d)}[form]


def mnist_test_images():
    """The 10,000 MNIST test images as uint8 (10000, 784); skip (or fail under CI) without them.

    Found as ``bayesbin.load_mnist`` finds them (never downloaded); see tests/conftest.py.
    """
    from helpers import require_data

    import bayesbin

    require_data("mnist")
    x, _ = bayesbin.load_mnist("test", download=False)
    return np.rint(x * 255).astype(np.uint8)


# ------------------------------------------------------------------------------ random networks


def pm1(rng, *shape) -> np.ndarray:
    """Random ±1 weights, int8."""
    return (2 * rng.integers(0, 2, size=shape) - 1).astype(np.int8)


def batchnorm(rng, c: int, *, divisor: float = 1.0, scale: float = 3.0) -> dict:
    """Batch norm with the hard cases mixed in per channel: gamma < 0, gamma == 0 (and -0.0),
    var tiny (1e-300, eps 0), var 0 with eps > 0, and means on exact integer scores so that
    ``y == 0`` (sign +1) happens on an attainable score."""
    case = rng.integers(0, 6, size=c)
    gamma = rng.normal(size=c)
    gamma[case == 1] = -np.abs(gamma[case == 1])
    gamma[case == 2] = np.where(rng.random(int((case == 2).sum())) < 0.5, 0.0, -0.0)
    mean = rng.normal(size=c) * scale
    exact = case >= 3
    mean[exact] = rng.integers(-int(scale) - 1, int(scale) + 2, size=int(exact.sum())) / divisor
    beta = rng.normal(size=c)
    beta[exact] = 0.0
    var = rng.uniform(0.2, 3.0, size=c)
    eps = float(rng.choice([0.0, 1e-5, 1e-3]))
    var[case == 4] = 1e-300 if eps == 0.0 else 0.0
    if eps == 0.0:
        var[var == 0] = 1e-300
    return {"kind": "batchnorm", "gamma": gamma, "beta": beta, "mean": mean, "var": var, "eps": eps}


def _tail(draw, rng, n_out, fan_in, *, image, first, st):
    """The layers after a dense/conv op of a hidden block, in one of the legal orders."""
    divisor = 255.0 if first else 1.0
    use_bn = draw(st.booleans())
    bn = [batchnorm(rng, n_out, divisor=divisor, scale=max(1.0, fan_in**0.5))] if use_bn else []
    pool_at = draw(st.sampled_from(["none", "scores", "bits", "between"])) if image else "none"
    if pool_at == "between" and not bn:
        pool_at = "bits"
    size = image[2] if image else 2
    pool = [{"kind": "maxpool2d", "size": size}]
    if pool_at == "scores":
        return pool + bn + [{"kind": "sign"}], size
    if pool_at == "bits":
        return bn + [{"kind": "sign"}] + pool, size
    if pool_at == "between":
        return bn + pool + [{"kind": "sign"}], size
    return bn + [{"kind": "sign"}], 1


def random_network(draw, st, *, kind=None, input_threshold=None) -> dict:
    """A random small network description (hypothesis ``draw``): dense or conv, odd sizes.

    With ``input_threshold``, the layers start with ``{"kind": "binarize", "threshold": ...}``
    and the first layer's batch norm is drawn for ±1 inputs (means on integer scores)."""
    real = input_threshold is None  # the first layer sees real inputs (k / 255 pixels)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = kind or draw(st.sampled_from(["mlp", "cnn"]))
    layers = []
    if kind == "mlp":
        width = draw(st.integers(1, 150))
        input_shape = (width,)
        for i in range(draw(st.integers(0, 2))):
            u = draw(st.integers(1, 130))
            layers.append({"kind": "dense", "weights": pm1(rng, u, width)})
            tail, _ = _tail(draw, rng, u, width, image=None, first=real and i == 0, st=st)
            layers += tail
            width = u
    else:
        h, w, c = draw(st.integers(1, 9)), draw(st.integers(1, 9)), draw(st.integers(1, 3))
        input_shape = (h, w, c)
        for i in range(draw(st.integers(1, 2))):
            o = draw(st.integers(1, 70))
            layers.append({"kind": "conv2d", "weights": pm1(rng, o, c, 3, 3), "padding": "same"})
            fits = [s for s in (2, 3) if s <= min(h, w)]
            image = (h, w, draw(st.sampled_from(fits))) if fits else None
            tail, size = _tail(draw, rng, o, 9 * c, image=image, first=real and i == 0, st=st)
            if not fits:
                tail = [t for t in tail if t["kind"] != "maxpool2d"]
                size = 1
            layers += tail
            h, w, c = h // size, w // size, o
        layers.append({"kind": "flatten"})
        width = h * w * c
        if draw(st.booleans()):
            u = draw(st.integers(1, 80))
            layers.append({"kind": "dense", "weights": pm1(rng, u, width)})
            layers += _tail(draw, rng, u, width, image=None, first=False, st=st)[0]
            width = u
    k = draw(st.integers(2, 5))
    layers.append({"kind": "dense", "weights": pm1(rng, k, width)})
    if draw(st.booleans()):
        layers.append(batchnorm(rng, k, divisor=255.0 if real and len(layers) == 1 else 1.0))
    if not real:
        layers.insert(0, {"kind": "binarize", "threshold": input_threshold})
    return {"input_shape": input_shape, "layers": layers, "classes": list(range(k))}


def with_new_weights(rng, net: dict) -> dict:
    """Another network of the same architecture (new weights and batch norm statistics)."""
    layers = []
    for lay in net["layers"]:
        lay = dict(lay)
        if lay["kind"] in ("dense", "conv2d"):
            lay["weights"] = pm1(rng, *np.shape(lay["weights"]))
        elif lay["kind"] == "batchnorm":
            lay["mean"] = np.asarray(lay["mean"]) + rng.integers(-2, 3, size=len(lay["mean"]))
            lay["var"] = np.asarray(lay["var"]) * rng.uniform(0.5, 2.0, size=len(lay["var"]))
        layers.append(lay)
    return {**net, "layers": layers}


def level_inputs(rng, n: int, shape: tuple) -> dict:
    """Inputs of every exact path for a network input ``shape``: name -> (n, *shape) array."""
    q = rng.integers(0, 256, size=(n, *shape))
    q[rng.random(q.shape) < 0.5] = 0  # sparse, like pixels
    pm = (2 * rng.integers(0, 2, size=(n, *shape)) - 1).astype(np.float64)
    pm.reshape(-1)[0] = -1.0  # a -1: not levels
    return {
        "levels255/float64": q / 255.0,
        "levels255/float32": q.astype(np.float32) / np.float32(255),
        "levels/uint8": q.astype(np.uint8),
        "levels/uint16": rng.integers(0, 65536, size=(n, *shape)).astype(np.int64),
        "bitspm1": pm,
    }
