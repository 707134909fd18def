"""Networks with a binarize input step: packed logits equal the float64 reference exactly.

``{"kind": "binarize", "threshold": t}`` leads the layers: every input value becomes +1 where
``x > t`` (compared in float32, as training does), else -1, and the first layer is an
XNOR-popcount layer like a hidden one. Covered: the description's checks, the packed forward
pass (dense, conv, ensembles, every input dtype, values on the threshold), ``.bbits`` files
and the C header.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from _bitsutil import batchnorm, level_inputs, pm1, random_network, with_new_weights
from hypothesis import given, settings
from hypothesis import strategies as st
from test_cexport import _c_network
from test_files import PREFIX, _header, _rewrite, _set
from test_network import _cnn, _mlp

from bayesbin.bits import PackedNetwork, load_bits, pack_network, reference_forward
from bayesbin.bits.cexport import level_threshold
from bayesbin.bits.description import parse_ensemble, parse_network
from bayesbin.bits.fileformat import FLAG_INPUT_STEP
from bayesbin.linear.maths import softmax

NETS = settings(max_examples=60, deadline=None, derandomize=True)
THRESHOLDS = st.one_of(
    st.sampled_from([0.5, 0.0, -0.3]),
    st.floats(-2.0, 2.0, allow_nan=False, allow_infinity=False),
)


def _binarized(desc: dict, t: float) -> dict:
    """``desc`` with the input step ``binarize(t)`` in front."""
    return {**desc, "layers": [{"kind": "binarize", "threshold": t}, *desc["layers"]]}


def _real_inputs(rng, n: int, shape: tuple, t: float) -> dict:
    """Real inputs around ``t`` with values exactly on it (and one float32 step either side),
    plus every kind of input that takes an exact path in a network without the step."""
    x = t + rng.normal(size=(n, *shape))
    flat = x.reshape(-1)
    on = rng.random(flat.size) < 0.3
    flat[on] = t  # exactly the threshold: -1
    t32, f32 = np.float32(t), np.float32
    flat[0], flat[-1] = np.nextafter(t32, f32(np.inf)), np.nextafter(t32, f32(-np.inf))
    x32 = x.astype(np.float32)
    x32.reshape(-1)[on] = np.float32(t)  # the float32 nearest t (== t when representable)
    out = {"float64": x, "float32": x32}
    out.update(level_inputs(rng, n, shape))  # levels, pixels and ±1: the step applies to all
    out["int64"] = rng.integers(-3, 4, size=(n, *shape))
    return out


# ------------------------------------------------------------------------------ forward


@NETS
@given(data=st.data(), t=THRESHOLDS, n=st.integers(1, 6))
def test_binarized_network_equals_float_reference(data, t, n):
    """Random dense and conv networks (every pooling order, gamma <= 0, tiny var, odd sizes)
    behind a binarize step: identical logits for every kind of input, values on t included."""
    net = random_network(data.draw, st, input_threshold=t)
    packed = pack_network(net)
    assert packed.input_threshold == t
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    for name, x in _real_inputs(rng, n, net["input_shape"], t).items():
        assert packed.input_path(x) == "binarize", name
        ref = reference_forward(net, x)
        np.testing.assert_array_equal(packed.decision_function(x), ref, err_msg=name)
        np.testing.assert_array_equal(packed.predict(x), np.argmax(ref, axis=1), err_msg=name)
        flat = np.asarray(x).reshape(n, -1)
        np.testing.assert_array_equal(packed.decision_function(flat), ref, err_msg=name)
        # the step is the network's: the same as the network without it on the ±1 values
        pm = np.where(np.asarray(x).astype(np.float32) > np.float32(t), 1.0, -1.0)
        plain = {**net, "layers": net["layers"][1:]}
        np.testing.assert_array_equal(ref, reference_forward(plain, pm), err_msg=name)


@settings(max_examples=20, deadline=None, derandomize=True)
@given(data=st.data(), t=THRESHOLDS, n_members=st.integers(2, 4))
def test_binarized_ensemble_equals_float_members(data, t, n_members):
    net = random_network(data.draw, st, input_threshold=t)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    nets = [net] + [with_new_weights(rng, net) for _ in range(n_members - 1)]
    ens = pack_network(nets)
    assert len(ens) == n_members and ens.input_threshold == t
    x = _real_inputs(rng, 5, net["input_shape"], t)["float32"]
    assert ens.input_path(x) == "binarize"
    refs = np.stack([reference_forward(m, x) for m in nets])
    np.testing.assert_array_equal(ens.member_logits(x), refs)
    proba = np.mean([softmax(r) for r in refs], axis=0)
    np.testing.assert_allclose(ens.predict_proba(x), proba, rtol=1e-14, atol=1e-15)
    member = ens[1]
    assert member.input_threshold == t and len(member) == 1
    np.testing.assert_array_equal(member.decision_function(x), refs[1])


def test_threshold_is_strict_and_compared_in_float32():
    """x == t gives -1, the next float32 above gives +1; values compare as float32 against
    float32(t), as the networks are trained (float32(0.1) is not above 0.1, and neither is a
    float64 value that rounds to it)."""
    w = np.array([[1, -1, -1], [-1, 1, -1], [-1, -1, 1]])
    t = 0.1
    desc = {"input_shape": (3,), "layers": [{"kind": "dense", "weights": w}]}
    desc = _binarized(desc, t)
    net = pack_network(desc)
    t32, f32 = np.float32(t), np.float32
    x = np.array([[t32, np.nextafter(t32, f32(1)), np.nextafter(t32, f32(-1))]], np.float32)
    np.testing.assert_array_equal(net.decision_function(x), [[-1.0, 3.0, -1.0]])  # W @ (-, +, -)
    x64 = np.array([[0.1, 0.10000000149, 0.11]])  # float64: the first two round to float32(0.1)
    np.testing.assert_array_equal(net.decision_function(x64), [[-1.0, -1.0, 3.0]])
    np.testing.assert_array_equal(net.decision_function(x.astype(np.float64)),
                                  [[-1.0, 3.0, -1.0]])
    for xs in (x, x64):
        np.testing.assert_array_equal(net.decision_function(xs), reference_forward(desc, xs))


@pytest.mark.parametrize(
    "shape, first",
    [
        ((3, 4, 70), "conv2d"),
        ((2, 3, 130), "conv2d"),
        ((1, 1, 64), "conv2d"),
        ((5, 3, 2), "conv2d"),
        ((3, 4, 70), "dense"),
        ((2, 3, 130), "dense"),
        ((1, 1, 64), "dense"),
        ((129,), "dense"),
        ((64,), "dense"),
    ],
)
def test_packing_layouts_of_the_input_step(rng, shape, first):
    """Images with several words per pixel (70, 130 channels), whole words, a dense first
    layer on a flattened image, flat inputs: the words the first layer expects."""
    t = 0.25
    layers = [{"kind": "binarize", "threshold": t}]
    if first == "conv2d":
        layers += [
            {"kind": "conv2d", "weights": pm1(rng, 5, shape[2], 3, 3), "padding": "same"},
            batchnorm(rng, 5, scale=4.0),
            {"kind": "sign"},
            {"kind": "flatten"},
        ]
        width = shape[0] * shape[1] * 5
    else:
        width = int(np.prod(shape))
        layers += [{"kind": "flatten"}] if len(shape) == 3 else []
        layers += [
            {"kind": "dense", "weights": pm1(rng, 66, width)},
            batchnorm(rng, 66, scale=float(np.sqrt(width))),
            {"kind": "sign"},
        ]
        width = 66
    layers += [{"kind": "dense", "weights": pm1(rng, 3, width)}, batchnorm(rng, 3)]
    desc = {"input_shape": shape, "layers": layers}
    net = pack_network(desc)
    for n in (1, 7, 400):  # 400 rows: above the serial cutoff of the packing kernel
        x = (rng.random((n, *shape)) < 0.5) * 0.5 + rng.choice([0.0, t], size=(n, *shape))
        assert np.any(x == t)
        np.testing.assert_array_equal(net.decision_function(x), reference_forward(desc, x))


def test_binarized_mnist_shaped_networks(rng):
    """The benchmark's MLP and CNN behind ``binarize(0.5)`` on pixels k / 255 (float32 as
    load_mnist gives, float64 and uint8): the step, not the level path, and exact."""
    q = rng.integers(0, 256, size=(20, 28, 28, 1))
    q[rng.random(q.shape) < 0.6] = 0
    for desc in (_mlp(rng, widths=(64, 32)), _cnn(rng, c1=8, c2=16, hidden=32)):
        desc = _binarized(desc, 0.5)
        for layer in desc["layers"][1:4]:  # means on integer scores for ±1 inputs
            if layer["kind"] == "batchnorm":
                layer["mean"] = np.rint(np.asarray(layer["mean"]) * 255.0)
        packed = pack_network(desc)
        shape = desc["input_shape"]
        for x in (q.astype(np.float32) / np.float32(255), q / 255.0, q.astype(np.uint8)):
            x = x.reshape(len(q), *shape)
            assert packed.input_path(x) == "binarize"
            np.testing.assert_array_equal(packed.decision_function(x), reference_forward(desc, x))


def test_without_threshold_nothing_changes(rng):
    desc = _mlp(rng, d=30, widths=(9,), k=3)
    plain, step = pack_network(desc), pack_network(_binarized(desc, 0.5))
    assert plain.input_threshold is None and "input_threshold" not in repr(plain)
    assert "input_threshold=0.5" in repr(step) and "input_threshold=0.5" in repr(step[0])
    x = rng.integers(0, 256, size=(4, 30)) / 255.0
    assert plain.input_path(x) == "levels255" and step.input_path(x) == "binarize"
    assert plain.storage_bytes == step.storage_bytes  # the same weights and output steps
    np.testing.assert_array_equal(plain.decision_function(x), reference_forward(desc, x))


def test_binarized_inputs_are_checked(rng):
    net = pack_network(_binarized(_mlp(rng, d=20, widths=(9,), k=3), 0.0))
    for bad in (np.nan, np.inf, -np.inf):
        x = np.zeros((3, 20))
        x[1, 4] = bad
        with pytest.raises(ValueError, match="1 NaN or infinite"):
            net.predict(x)
        with pytest.raises(ValueError, match="NaN or infinite"):
            net.input_path(x.astype(np.float32))
    with pytest.raises(ValueError, match="features"):
        net.predict(np.zeros((2, 21)))
    with pytest.raises(TypeError, match="numeric"):
        net.predict(np.full((2, 20), "a"))
    np.testing.assert_array_equal(  # bool inputs: True > 0 -> +1
        net.decision_function(np.ones((2, 20), dtype=bool)),
        net.decision_function(np.ones((2, 20))),
    )


# ------------------------------------------------------------------------------ description


def test_description_accepts_the_step_first_only(rng):
    desc = _mlp(rng, d=12, widths=(5,), k=3)
    assert parse_network(desc).input_threshold is None
    assert parse_network(_binarized(desc, np.float32(0.25))).input_threshold == 0.25
    assert parse_network(_binarized(desc, 2)).input_threshold == 2.0
    assert isinstance(parse_network(_binarized(desc, 2)).input_threshold, float)
    layers = desc["layers"]
    step = {"kind": "binarize", "threshold": 0.5}
    for where in (1, 3, len(layers)):
        bad = {**desc, "layers": [*layers[:where], step, *layers[where:]]}
        with pytest.raises(ValueError, match=f"layer {where}: binarize .* first layer"):
            parse_network(bad)
    twice = {**desc, "layers": [step, step, *layers]}
    with pytest.raises(ValueError, match="layer 1: binarize"):
        parse_network(twice)
    with pytest.raises(ValueError, match="at least one dense or conv2d"):
        parse_network({**desc, "layers": [step]})
    with pytest.raises(ValueError, match="layer 2: binarize"):  # the reference refuses it too
        reference_forward({**desc, "layers": [*layers[:2], step, *layers[2:]]}, np.zeros((1, 12)))


@pytest.mark.parametrize(
    "threshold, error, match",
    [
        (np.nan, ValueError, "finite"),
        (np.inf, ValueError, "finite"),
        (-np.inf, ValueError, "finite"),
        (True, TypeError, "real number"),
        (np.bool_(False), TypeError, "real number"),
        ("0.5", TypeError, "real number"),
        (None, TypeError, "real number"),
        ([0.5], TypeError, "real number"),
        (1 + 2j, TypeError, "real number"),
    ],
)
def test_description_refuses_bad_thresholds(rng, threshold, error, match):
    desc = _binarized(_mlp(rng, d=12, widths=(5,), k=3), threshold)
    with pytest.raises(error, match=f"layer 0: binarize threshold .*{match}"):
        parse_network(desc)
    with pytest.raises(error, match=match):
        pack_network(desc)


def test_description_needs_a_threshold(rng):
    desc = _mlp(rng, d=12, widths=(5,), k=3)
    missing = {**desc, "layers": [{"kind": "binarize"}, *desc["layers"]]}
    with pytest.raises(ValueError, match="layer 0: binarize needs a 'threshold'"):
        parse_network(missing)


def test_ensemble_members_share_the_input_step(rng):
    desc = _mlp(rng, d=12, widths=(5,), k=3)
    other = with_new_weights(rng, desc)
    assert len(parse_ensemble([_binarized(desc, 0.5), _binarized(other, 0.5)])) == 2
    for a, b in ((0.5, 0.25), (0.5, None), (None, 0.0)):
        first = desc if a is None else _binarized(desc, a)
        second = other if b is None else _binarized(other, b)
        with pytest.raises(ValueError, match="network 1 has another input step"):
            parse_ensemble([first, second])
        with pytest.raises(ValueError, match="input step"):
            pack_network([first, second])


def test_packed_network_checks_its_threshold(rng):
    net = pack_network(_mlp(rng, d=12, widths=(5,), k=3))
    layers = list(net.layers)
    assert PackedNetwork((12,), layers, input_threshold=1).input_threshold == 1.0
    with pytest.raises(TypeError, match="input_threshold"):
        PackedNetwork((12,), layers, input_threshold=True)
    with pytest.raises(TypeError, match="input_threshold"):
        PackedNetwork((12,), layers, input_threshold="0.5")
    with pytest.raises(ValueError, match="input_threshold .*finite"):
        PackedNetwork((12,), layers, input_threshold=np.nan)


# ------------------------------------------------------------------------------ files


@settings(max_examples=10, deadline=None, derandomize=True)
@given(data=st.data(), t=THRESHOLDS, n_members=st.integers(1, 3))
def test_binarized_network_file_round_trip(tmp_path_factory, data, t, n_members):
    net = random_network(data.draw, st, input_threshold=t)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    nets = [net] + [with_new_weights(rng, net) for _ in range(n_members - 1)]
    packed = pack_network(nets if n_members > 1 else net, metadata={"by": "test"})
    path = tmp_path_factory.mktemp("bin") / "net.bbits"
    packed.save(path)
    _, header, _ = _header(path.read_bytes())
    assert header["input"] == {"shape": list(net["input_shape"]), "binarize_threshold": t}
    loaded = load_bits(path)
    assert isinstance(loaded, PackedNetwork) and len(loaded) == n_members
    assert loaded.input_threshold == t and repr(loaded) == repr(packed)
    x = _real_inputs(rng, 4, net["input_shape"], t)["float64"]
    assert loaded.input_path(x) == "binarize"
    np.testing.assert_array_equal(loaded.member_logits(x), packed.member_logits(x))
    np.testing.assert_array_equal(loaded.member_logits(x)[0], reference_forward(net, x))


def _mlp_file(rng, tmp_path, t):
    desc = _mlp(rng, d=20, widths=(9,), k=3)
    net = pack_network(desc if t is None else _binarized(desc, t))
    path = tmp_path / "mlp.bbits"
    net.save(path)
    return path, desc


def test_files_without_the_field_load_without_a_step(rng, tmp_path):
    """Files written before the field existed (no ``binarize_threshold`` in ``input``) and
    files with null load as networks that take the real inputs."""
    path, desc = _mlp_file(rng, tmp_path, None)
    _, header, _ = _header(path.read_bytes())
    assert header["input"]["binarize_threshold"] is None
    x = rng.integers(0, 256, size=(5, 20)) / 255.0
    assert load_bits(path).input_threshold is None
    path.write_bytes(
        _rewrite(path.read_bytes(), lambda h, v, p: h["input"].pop("binarize_threshold") and None)
    )
    assert "binarize_threshold" not in _header(path.read_bytes())[1]["input"]
    old = load_bits(path)
    assert old.input_threshold is None and old.input_path(x) == "levels255"
    np.testing.assert_array_equal(old.decision_function(x), reference_forward(desc, x))
    # the field added to a file without the container flag: inconsistent, refused
    path.write_bytes(
        _rewrite(path.read_bytes(), _set(None, "input", "binarize_threshold", value=0.5))
    )
    with pytest.raises(ValueError, match="flags 0 disagree"):
        load_bits(path)
    # with the flag as the writer sets it: the step applies
    path.write_bytes(_with_flags(path.read_bytes(), FLAG_INPUT_STEP))
    stepped = load_bits(path)
    assert stepped.input_threshold == 0.5 and stepped.input_path(x) == "binarize"


def _with_flags(data: bytes, flags: int) -> bytes:
    magic, version, _, hlen = PREFIX.unpack_from(data, 0)
    body = PREFIX.pack(magic, version, flags, hlen) + data[PREFIX.size : -32]
    return body + hashlib.sha256(body).digest()


def test_container_flag_marks_the_input_step(rng, tmp_path):
    """A network with an input step is written with flag FLAG_INPUT_STEP, which readers from
    before the step refuse ("unknown flags"), so an old bayesbin cannot run it on real inputs;
    a flag that disagrees with the header is refused either way."""
    path, _ = _mlp_file(rng, tmp_path, 0.5)
    assert PREFIX.unpack_from(path.read_bytes(), 0)[2] == FLAG_INPUT_STEP == 1
    (tmp_path / "plain").mkdir()
    plain, _ = _mlp_file(rng, tmp_path / "plain", None)
    assert PREFIX.unpack_from(plain.read_bytes(), 0)[2] == 0
    path.write_bytes(_with_flags(path.read_bytes(), 0))
    with pytest.raises(ValueError, match="flags 0 disagree.*set"):
        load_bits(path)
    plain.write_bytes(_with_flags(plain.read_bytes(), FLAG_INPUT_STEP))
    with pytest.raises(ValueError, match="flags 1 disagree.*not set"):
        load_bits(plain)
    plain.write_bytes(_with_flags(plain.read_bytes(), 2))
    with pytest.raises(ValueError, match="unknown flags 2"):
        load_bits(plain)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "0.5", True, [0.5], {"t": 0.5}])
def test_files_with_a_bad_threshold_are_refused(rng, tmp_path, value):
    path, _ = _mlp_file(rng, tmp_path, 0.5)
    path.write_bytes(
        _rewrite(path.read_bytes(), _set(None, "input", "binarize_threshold", value=value))
    )
    with pytest.raises(ValueError, match="binarize_threshold"):
        load_bits(path)


def test_nan_threshold_reaches_the_reader_as_nan(rng, tmp_path):
    """The NaN case above really stores NaN (json writes it as the token NaN)."""
    path, _ = _mlp_file(rng, tmp_path, 0.5)
    path.write_bytes(
        _rewrite(path.read_bytes(), _set(None, "input", "binarize_threshold", value=float("nan")))
    )
    data = path.read_bytes()
    hlen = PREFIX.unpack_from(data, 0)[3]
    assert b'"binarize_threshold": NaN' in data[PREFIX.size : PREFIX.size + hlen]
    assert np.isnan(
        json.loads(data[PREFIX.size : PREFIX.size + hlen])["input"]["binarize_threshold"]
    )


# ------------------------------------------------------------------------------ C header


def test_level_threshold_is_the_float32_comparison():
    q = np.arange(65536, dtype=np.float64)
    for t, divisor in (
        (0.5, 255.0),
        (128 / 255, 255.0),
        (-0.3, 255.0),
        (3.0, 1.0),
        (2.5, 1.0),
        (0.0, 255.0),
        (70000.0, 1.0),
        (-1.0, 1.0),
        (1 / 3, 7.0),
    ):
        q_on = level_threshold(t, divisor)
        x32 = (q / divisor).astype(np.float32)
        np.testing.assert_array_equal(q >= q_on, x32 > np.float32(t), err_msg=f"{t}, {divisor}")
    assert level_threshold(128 / 255, 255.0) == 129  # x == t is -1
    assert level_threshold(70000.0, 1.0) == 65536 and level_threshold(-1.0, 1.0) == 0


def _c_rows(rng, n, f, divisor, t):
    """Integer levels with values on both sides of the threshold and exactly on it."""
    q = rng.integers(0, 256, size=(n, f))
    at = t * divisor
    if float(at).is_integer() and 0 <= at < 65536:
        q[rng.random(q.shape) < 0.2] = int(at)
    return q


@pytest.mark.parametrize(
    "kind, t, divisor",
    [
        ("mlp", 128 / 255, 255.0),  # q = 128 lies exactly on the threshold
        ("mlp", 0.5, 255.0),
        ("cnn", 0.3, 255.0),
        ("cnn", 100.0, 1.0),
        ("mlp", 37.5, 1.0),
    ],
)
def test_c_header_binarized_network_matches_python(rng, tmp_path, kind, t, divisor):
    """The C header binarizes q / divisor > t and runs the first layer by XNOR-popcount:
    identical logits to Python on the values q / divisor (and to the reference)."""
    if kind == "mlp":
        desc = _mlp(rng, d=150, widths=(70, 40), k=4)
        q = _c_rows(rng, 12, 150, divisor, t)
    else:
        desc = _cnn(rng, shape=(8, 6, 3), c1=6, c2=70, hidden=40, k=3)
        q = _c_rows(rng, 12, 8 * 6 * 3, divisor, t)
    desc = _binarized(desc, t)
    for layer in desc["layers"][1:4]:  # first-layer means on integer scores (±1 inputs)
        if layer["kind"] == "batchnorm":
            layer["mean"] = np.rint(np.asarray(layer["mean"]) * 255.0)
    net = pack_network([desc, with_new_weights(rng, desc)])
    x = q / divisor  # compared as float32(q / divisor) > float32(t), in C and in Python
    bits = x.astype(np.float32) > np.float32(t)
    assert bits.any() and not bits.all()
    logits, proba, pred = _c_network(net, q, tmp_path, f"bin_{kind}", divisor)
    np.testing.assert_array_equal(logits, net.member_logits(x))
    np.testing.assert_array_equal(
        logits[0], reference_forward(desc, x.reshape(-1, *desc["input_shape"]))
    )
    np.testing.assert_allclose(proba, net.predict_proba(x), rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(pred, np.argmax(proba, axis=1))
    text = (tmp_path / f"bin_{kind}.h").read_text()
    assert f"BIN_{kind.upper()}_Q_ON {level_threshold(t, divisor)}L" in text


def test_c_header_binarized_single_layer_and_prefix(rng, tmp_path):
    """A one-layer network (the head sees the ±1 bits: no division by the divisor), with a
    prefix ending in P (no clash with the generator's placeholder names)."""
    desc = {
        "input_shape": (9,),
        "layers": [
            {"kind": "binarize", "threshold": 0.5},
            {"kind": "dense", "weights": pm1(rng, 4, 9)},
            batchnorm(rng, 4),
        ],
    }
    net = pack_network(desc)
    q = rng.integers(0, 256, size=(6, 9))
    logits, _, pred = _c_network(net, q, tmp_path, "MLP", 255.0)
    x = q / 255.0
    np.testing.assert_array_equal(logits[0], net.decision_function(x))
    np.testing.assert_array_equal(logits[0], reference_forward(desc, x))
    np.testing.assert_array_equal(pred, np.argmax(net.decision_function(x), axis=1))
