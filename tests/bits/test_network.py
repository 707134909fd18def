"""Packed binary networks are bit-exact against the float64 reference forward pass."""

from __future__ import annotations

import numpy as np
import pytest
from _bitsutil import batchnorm, level_inputs, pm1, random_network, with_new_weights
from hypothesis import given, settings
from hypothesis import strategies as st

from bayesbin.bits import (
    PackedNetwork,
    fold_batchnorm_sign,
    pack_bits,
    pack_network,
    reference_forward,
    unpack_bits,
)
from bayesbin.bits.reference import as_levels
from bayesbin.linear.maths import softmax

NETS = settings(max_examples=80, deadline=None, derandomize=True)


# ------------------------------------------------------------------------------ folding


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**32 - 1),
    bound=st.integers(0, 400),
    divisor=st.sampled_from([1.0, 255.0, 7.0]),
)
def test_folded_threshold_equals_batchnorm_sign_on_every_score(seed, bound, divisor):
    """Exhaustive over the score range: (s >= tau) XOR flip == sign(batchnorm(s / divisor))."""
    rng = np.random.default_rng(seed)
    bn = batchnorm(rng, 24, divisor=divisor, scale=max(1.0, bound / divisor))
    g, b, m, v, eps = bn["gamma"], bn["beta"], bn["mean"], bn["var"], bn["eps"]
    g[:2] = rng.normal(size=2) * 1e300  # huge gamma: y overflows to +-inf
    m[2] = 0.5 / divisor  # boundary between two integer scores
    tau, flip = fold_batchnorm_sign(g, b, m, v, eps, bound=bound, divisor=divisor)
    s = np.arange(-bound, bound + 1)
    x = s.astype(np.float64)[:, None]
    if divisor != 1.0:
        x = x / divisor
    with np.errstate(over="ignore", invalid="ignore"):
        y = g * (x - m) / np.sqrt(v + eps) + b  # the reference's expression, written out
    assert not np.any(np.isnan(y))
    np.testing.assert_array_equal((s[:, None] >= tau) != flip, y >= 0)


def test_folded_threshold_special_channels():
    """gamma = 0 / -0.0 is a constant bit (sign of beta, sign(0) = +1); y == 0 gives +1."""
    g = np.array([0.0, -0.0, 0.0, 1.0, -1.0, 2.0])
    b = np.array([-1.0, 0.5, 0.0, 0.0, 0.0, -1.0])
    m = np.array([0.0, 0.0, 0.0, 3.0, 3.0, 0.0])
    v = np.ones(6)
    tau, flip = fold_batchnorm_sign(g, b, m, v, 0.0, bound=10)
    s = np.arange(-10, 11)[:, None]
    bits = (s >= tau) != flip
    assert not bits[:, 0].any() and bits[:, 1].all() and bits[:, 2].all()
    np.testing.assert_array_equal(bits[:, 3], s[:, 0] >= 3)  # y(3) = 0 -> +1
    np.testing.assert_array_equal(bits[:, 4], s[:, 0] <= 3)  # gamma < 0: flipped, y(3) = -0.0
    np.testing.assert_array_equal(bits[:, 5], s[:, 0] >= 1)  # 2 * s - 1 >= 0


# ------------------------------------------------------------------------------ forward


@NETS
@given(data=st.data(), n=st.integers(1, 7))
def test_packed_network_equals_float_reference(data, n):
    """Random dense and conv networks (pooling before/after sign, gamma < 0, gamma == 0, tiny
    var, odd sizes, batch 1): identical logits on every row, for every exact input path."""
    net = random_network(data.draw, st)
    packed = pack_network(net)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    for name, x in level_inputs(rng, n, net["input_shape"]).items():
        assert packed.input_path(x) == name.split("/")[0], name
        ref = reference_forward(net, x)
        np.testing.assert_array_equal(packed.decision_function(x), ref, err_msg=name)
        np.testing.assert_array_equal(packed.predict(x), np.argmax(ref, axis=1))
        flat = np.asarray(x).reshape(n, -1)  # (n, prod(input_shape)) is accepted too
        np.testing.assert_array_equal(packed.decision_function(flat), ref, err_msg=name)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(data=st.data(), n_members=st.integers(2, 4))
def test_packed_ensemble_equals_float_members(data, n_members):
    net = random_network(data.draw, st)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    nets = [net] + [with_new_weights(rng, net) for _ in range(n_members - 1)]
    ens = pack_network(nets)
    assert len(ens) == n_members
    x = level_inputs(rng, 5, net["input_shape"])["levels255/float32"]
    refs = np.stack([reference_forward(m, x) for m in nets])
    np.testing.assert_array_equal(ens.member_logits(x), refs)
    proba = np.mean([softmax(r) for r in refs], axis=0)
    np.testing.assert_allclose(ens.predict_proba(x), proba, rtol=1e-14, atol=1e-15)
    np.testing.assert_array_equal(ens.predict(x), np.argmax(ens.predict_proba(x), axis=1))
    np.testing.assert_array_equal(ens[1].decision_function(x), refs[1])


@settings(max_examples=20, deadline=None, derandomize=True)
@given(data=st.data())
def test_float_inputs_run_the_first_layer_in_float64(data):
    """Real inputs that are not levels: the first layer in float64, the rest packed."""
    net = random_network(data.draw, st)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = rng.normal(size=(4, *net["input_shape"]))
    packed = pack_network(net)
    assert packed.input_path(x) == "float"
    got, ref = packed.decision_function(x), reference_forward(net, x)
    # a sum of real values: the float path agrees up to the BLAS summation order, except where
    # a first-layer sign falls within that rounding of zero (never for normal draws here)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-9)


def _mlp(rng, d=784, widths=(512, 512), k=10):
    layers, width = [], d
    for i, u in enumerate(widths):
        layers += [
            {"kind": "dense", "weights": pm1(rng, u, width)},
            batchnorm(rng, u, divisor=255.0 if i == 0 else 1.0, scale=20.0),
            {"kind": "sign"},
        ]
        width = u
    layers += [{"kind": "dense", "weights": pm1(rng, k, width)}, batchnorm(rng, k)]
    return {"input_shape": (d,), "layers": layers, "classes": list(range(k))}


def _cnn(rng, shape=(28, 28, 1), c1=32, c2=64, hidden=512, k=10):
    h, w, c = shape
    layers = [
        {"kind": "conv2d", "weights": pm1(rng, c1, c, 3, 3), "padding": "same"},
        {"kind": "maxpool2d", "size": 2},
        batchnorm(rng, c1, divisor=255.0, scale=3.0),
        {"kind": "sign"},
        {"kind": "conv2d", "weights": pm1(rng, c2, c1, 3, 3), "padding": "same"},
        batchnorm(rng, c2, scale=10.0),
        {"kind": "sign"},
        {"kind": "maxpool2d", "size": 2},
        {"kind": "flatten"},
        {"kind": "dense", "weights": pm1(rng, hidden, h // 4 * (w // 4) * c2)},
        batchnorm(rng, hidden, scale=30.0),
        {"kind": "sign"},
        {"kind": "dense", "weights": pm1(rng, k, hidden)},
        batchnorm(rng, k),
    ]
    return {"input_shape": shape, "layers": layers, "classes": list(range(k))}


def test_parallel_kernels_equal_serial_and_reference(rng):
    """Batches above the serial cutoff run multi-threaded: same logits as row by row."""
    net = _cnn(rng, shape=(12, 12, 3), c1=8, c2=70, hidden=40, k=4)
    mlp = _mlp(rng, d=300, widths=(200, 90), k=5)
    for desc in (net, mlp):
        packed = pack_network(desc)
        x = level_inputs(rng, 300, desc["input_shape"])
        for name in ("levels255/float32", "bitspm1"):  # (uint16 levels: serially, elsewhere)
            xs = x[name]
            big = packed.decision_function(xs)
            rows = np.concatenate(
                [packed.decision_function(xs[i : i + 1]) for i in range(0, 300, 37)]
            )
            np.testing.assert_array_equal(big[::37], rows)
            np.testing.assert_array_equal(big, reference_forward(desc, xs))


def test_mnist_shaped_networks_on_real_rows(rng):
    """The benchmark's MLP 784-512-512-10 and CNN 32C3-MP2-64C3-MP2-512-10 on MNIST rows."""
    from _bitsutil import mnist_test_images

    pixels = mnist_test_images()[:64]
    x32 = pixels.astype(np.float32) / np.float32(255)  # exactly what load_mnist returns
    for desc in (_mlp(rng), _cnn(rng)):
        packed = pack_network(desc)
        assert packed.input_path(x32) == "levels255"
        np.testing.assert_array_equal(packed.decision_function(x32), reference_forward(desc, x32))


# ------------------------------------------------------------------------------ inputs & API


def test_float32_pixels_are_detected_as_exact_levels():
    k = np.arange(256)
    via32 = k.astype(np.float32) / np.float32(255)
    via64 = (k / 255.0).astype(np.float32)
    np.testing.assert_array_equal(via32, via64)  # one float32 per level, however it is made
    lev, div = as_levels(via32[None])
    np.testing.assert_array_equal(lev[0], k)
    assert div == 255.0
    off = via32.copy()
    off[100] = np.nextafter(off[100], np.float32(1))
    assert as_levels(off[None]) is None


def test_network_api_and_errors(rng):
    desc = _mlp(rng, d=20, widths=(9,), k=3)
    desc["classes"] = ["a", "b", "c"]
    net = pack_network(desc, metadata={"source": "test"})
    assert isinstance(net, PackedNetwork) and net.n_members == 1 and net.n_classes == 3
    assert net.input_shape == (20,) and net.metadata == {"source": "test"}
    x = rng.integers(0, 256, size=(5, 20)) / 255.0
    assert set(net.predict(x)) <= {"a", "b", "c"}
    np.testing.assert_allclose(net.predict_proba(x).sum(axis=1), 1.0)
    np.testing.assert_array_equal(net.predict_proba(x), softmax(net.decision_function(x)))
    # packed words (9 x 1 and 3 x 1) plus the float batch norms (4 x C values and eps each)
    assert net.storage_bytes == 8 * (9 + 3) + 8 * (4 * 9 + 1) + 8 * (4 * 3 + 1)
    with pytest.raises(ValueError, match="features"):
        net.predict(np.zeros((2, 21)))
    with pytest.raises(ValueError, match="NaN"):
        net.predict(np.full((1, 20), np.nan))
    bad = {**desc, "layers": [dict(desc["layers"][0], weights=np.zeros((9, 20)))]}
    with pytest.raises(ValueError, match="-1 and \\+1"):
        pack_network(bad)
    with pytest.raises(ValueError, match="kind"):
        pack_network({**desc, "layers": [{"kind": "dropout"}, *desc["layers"]]})
    chain = [dict(lay) for lay in desc["layers"]]
    chain[3] = {"kind": "dense", "weights": pm1(rng, 3, 8)}
    with pytest.raises(ValueError, match="shape"):
        pack_network({**desc, "layers": chain})
    with pytest.raises(ValueError, match="last binary layer"):
        pack_network({**desc, "layers": desc["layers"][:3]})
    with pytest.raises(ValueError, match="order"):
        pack_network(
            {
                **desc,
                "layers": [
                    desc["layers"][0],
                    {"kind": "sign"},
                    desc["layers"][1],
                    *desc["layers"][3:],
                ],
            }
        )
    other = _mlp(rng, d=20, widths=(10,), k=3)
    with pytest.raises(ValueError, match="architecture"):
        pack_network([desc, other])
    nonfinite = [dict(lay) for lay in desc["layers"]]
    nonfinite[1] = dict(nonfinite[1], var=np.full(9, np.inf))
    with pytest.raises(ValueError, match="finite"):
        pack_network({**desc, "layers": nonfinite})


@pytest.mark.parametrize("order", ["scores", "bits", "between", "none"])
@pytest.mark.parametrize("where", ["first", "hidden"])
def test_every_pooling_order_is_exact(rng, order, where):
    """Each legal place of a maxpool, in the first layer (levels) and a hidden one (bits),
    with 70 channels (two words), odd image sizes and batch 1 and 9."""
    bn = lambda c, div=1.0: batchnorm(rng, c, divisor=div, scale=4.0)  # noqa: E731
    pool = [{"kind": "maxpool2d", "size": 2}]
    tails = {
        "scores": lambda c, d: pool + [bn(c, d), {"kind": "sign"}],
        "bits": lambda c, d: [bn(c, d), {"kind": "sign"}] + pool,
        "between": lambda c, d: [bn(c, d)] + pool + [{"kind": "sign"}],
        "none": lambda c, d: [bn(c, d), {"kind": "sign"}],
    }
    plain = tails["none"]
    first, hidden = (tails[order], plain) if where == "first" else (plain, tails[order])
    h, w = 7, 5
    layers = [{"kind": "conv2d", "weights": pm1(rng, 70, 3, 3, 3), "padding": "same"}]
    layers += first(70, 255.0)
    if where == "first" and order != "none":
        h, w = h // 2, w // 2
    layers += [{"kind": "conv2d", "weights": pm1(rng, 66, 70, 3, 3), "padding": "same"}]
    layers += hidden(66, 1.0)
    if where == "hidden" and order != "none":
        h, w = h // 2, w // 2
    layers += [{"kind": "flatten"}, {"kind": "dense", "weights": pm1(rng, 3, h * w * 66)}]
    desc = {"input_shape": (7, 5, 3), "layers": layers}
    net = pack_network(desc)
    pool_of = [lay.pool for lay in net.layers]
    want = None if order == "none" else (2, "scores" if order == "scores" else "bits")
    assert pool_of[0 if where == "first" else 1] == want
    for n in (1, 9):
        for name, x in level_inputs(rng, n, (7, 5, 3)).items():
            np.testing.assert_array_equal(
                net.decision_function(x), reference_forward(desc, x), err_msg=name
            )


def _conv_reference(xb, wb, tau, flip, psize, pmode):
    """Integer 3x3 'same' conv scores of ±1 images, pooled and thresholded, as bits (numpy)."""
    n, h, w, _ = xb.shape
    x = np.pad(2.0 * xb - 1, ((0, 0), (1, 1), (1, 1), (0, 0)))  # zero padding
    wpm = 2.0 * wb - 1  # (O, 3, 3, C)
    s = np.zeros((n, h, w, wb.shape[0]), dtype=np.int64)
    for dy in range(3):
        for dx in range(3):
            s += np.rint(x[:, dy : dy + h, dx : dx + w, :] @ wpm[:, dy, dx, :].T).astype(np.int64)
    ph, pw = h // psize, w // psize
    win = s[:, : ph * psize, : pw * psize].reshape(n, ph, psize, pw, psize, -1)
    if pmode == 2:  # OR of the bits after the threshold
        return ((win >= tau) ^ flip.astype(bool)).any(axis=(2, 4))
    return (win.max(axis=(2, 4)) >= tau) ^ flip.astype(bool)


@pytest.mark.parametrize("c_in", [1, 3, 31, 32, 33, 63, 64, 65, 128, 130])
def test_conv_kernel_tap_streams_are_exact(rng, c_in):
    """The popcount convolution over concatenated tap streams (any C: partial words, words
    split across the stream, whole words), every border class (1-pixel rows and columns
    included), every pooling mode, serial and parallel, against integer arithmetic."""
    from bayesbin.bits import netkernels as nk

    for (h, w), o_n in (((1, 1), 5), ((1, 4), 70), ((3, 2), 64), ((5, 6), 40), ((7, 7), 1)):
        xb = rng.integers(0, 2, size=(3, h, w, c_in)).astype(np.uint8)
        wb = rng.integers(0, 2, size=(o_n, 3, 3, c_in)).astype(np.uint8)
        tau = rng.integers(-9 * c_in - 1, 9 * c_in + 2, size=o_n).astype(np.int64)
        tau[: o_n // 2] = rng.integers(-3, 4, size=o_n // 2)  # near 0: both outcomes occur
        flip = rng.integers(0, 2, size=o_n).astype(np.uint8)
        ws, corr, nvalid = nk.conv_stream_weights(pack_bits(wb), c_in)
        assert ws.shape == ((9 * c_in + 63) // 64, o_n)
        for psize, pmode in ((1, 0), (2, 1), (2, 2)):
            if psize > min(h, w):
                continue
            want = _conv_reference(xb, wb, tau, flip, psize, pmode)
            for kernel in (nk.conv_bits_serial, nk.conv_bits):
                out = np.empty((3, h // psize, w // psize, (o_n + 63) // 64), dtype=np.uint64)
                kernel(pack_bits(xb), ws, corr, nvalid, c_in, tau, flip, psize, pmode, out)
                got = unpack_bits(out, o_n).astype(bool)
                np.testing.assert_array_equal(got, want, err_msg=f"{h}x{w} pool {pmode}")
