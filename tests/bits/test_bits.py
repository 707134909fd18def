"""Tests for bayesbin.bits: packing, popcount identities, packed models, files and C export."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.special import expit
from test_posterior import make_result, reference_logits

from bayesbin.bits import (
    FORMAT_VERSION,
    PackedClassifier,
    PackedEnsemble,
    PackedInput,
    load_bits,
    n_words,
    pack_bits,
    to_bits,
    unpack_bits,
)
from bayesbin.linear.maths import softmax
from bayesbin.posterior import posterior_predictive_proba, threshold

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


# ------------------------------------------------------------------------------ pack / unpack


@PROPS
@given(
    hnp.arrays(
        dtype=st.sampled_from([np.bool_, np.uint8, np.int64, np.float64]),
        shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=9).flatmap(
            lambda s: st.integers(0, 200).map(lambda n: (*s[:-1], n))
        ),
        elements=st.integers(0, 1),
    )
)
def test_pack_unpack_round_trip_every_shape(bits):
    packed = pack_bits(bits)
    n = bits.shape[-1]
    assert packed.dtype == np.uint64 and packed.shape == (*bits.shape[:-1], n_words(n))
    out = unpack_bits(packed, n)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, bits.astype(np.uint8))
    if n % 64 and packed.size:  # padding bits are zero
        assert not np.any(packed[..., -1] >> np.uint64(n % 64))


def test_bit_order_is_lsb_first_in_uint64_words():
    bits = np.zeros(130, dtype=np.uint8)
    bits[[0, 3, 63, 64, 129]] = 1
    words = pack_bits(bits)
    assert words.tolist() == [(1 << 0) | (1 << 3) | (1 << 63), 1, 1 << 1]
    for j in range(130):
        assert (int(words[j // 64]) >> (j % 64)) & 1 == bits[j]


def test_unpack_ignores_padding_bits():
    words = np.array([np.uint64(0b1011) | np.uint64(1 << 40)], dtype=np.uint64)
    np.testing.assert_array_equal(unpack_bits(words, 4), [1, 1, 0, 1])


def test_pack_unpack_errors():
    with pytest.raises(ValueError, match="0 and 1"):
        pack_bits([0, 2, 1])
    with pytest.raises(ValueError, match="0 and 1"):
        pack_bits([0.5, 1.0])
    with pytest.raises(ValueError, match="1-D"):
        pack_bits(np.uint8(1))
    with pytest.raises(TypeError, match="dtype"):
        pack_bits(np.array(["1", "0"]))
    with pytest.raises(TypeError, match="uint64"):
        unpack_bits(np.zeros(2, dtype=np.int64), 100)
    with pytest.raises(ValueError, match="2 words"):
        unpack_bits(np.zeros(3, dtype=np.uint64), 100)
    with pytest.raises(ValueError, match="n_bits"):
        unpack_bits(np.zeros(1, dtype=np.uint64), -1)


# ------------------------------------------------------------------------------ identities


def _pm1_pairs(draw, max_d=300):
    d = draw(st.integers(1, max_d))
    n = draw(st.integers(1, 12))
    r = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    return rng.integers(0, 2, size=(n, d)), rng.integers(0, 2, size=(r, d))


@PROPS
@given(st.data())
def test_xnor_popcount_identity_is_exact(data):
    xb, wb = _pm1_pairs(data.draw)
    d = xb.shape[1]
    x, w = 2 * xb - 1, 2 * wb - 1
    dot = x @ w.T  # exact integer dot products
    xp, wp = pack_bits(xb), pack_bits(wb)
    c = np.bitwise_count(xp[:, None, :] ^ wp[None, :, :]).sum(axis=2).astype(np.int64)
    np.testing.assert_array_equal(d - 2 * c, dot)  # the identity itself
    clf = PackedClassifier(
        wp,
        n_features=d,
        form="softmax" if len(wb) > 1 else "single",
        weight_encoding="pm1",
        input_encoding="pm1",
    )
    got = clf.scores(PackedInput.from_words(xp, d, "pm1"))
    np.testing.assert_array_equal(got, dot)
    np.testing.assert_array_equal(clf.scores(x), dot)  # dense ±1 input, exact path


@PROPS
@given(st.data())
def test_and_and_mixed_identities_are_exact(data):
    xb, wb = _pm1_pairs(data.draw)
    d = xb.shape[1]
    form = "softmax" if len(wb) > 1 else "single"
    for x_enc in ("01", "pm1"):
        x = xb if x_enc == "01" else 2 * xb - 1
        xin = PackedInput.from_words(pack_bits(xb), d, x_enc)
        for w_enc in ("01", "pm1"):
            w = wb if w_enc == "01" else 2 * wb - 1
            clf = PackedClassifier(pack_bits(wb), n_features=d, form=form, weight_encoding=w_enc)
            np.testing.assert_array_equal(clf.scores(xin), x @ w.T)
            np.testing.assert_array_equal(clf.scores(x), x @ w.T)


@PROPS
@given(st.data())
def test_padding_never_changes_a_result(data):
    xb, wb = _pm1_pairs(data.draw)
    d = xb.shape[1]
    xp = pack_bits(xb)
    junk = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))).integers(
        0, 2**63, size=xp.shape[0], dtype=np.uint64
    )
    dirty = xp.copy()
    if d % 64:
        dirty[:, -1] |= junk << np.uint64(d % 64)  # garbage in the padding bits only
    form = "softmax" if len(wb) > 1 else "single"
    for enc in ("01", "pm1"):
        for w_enc in ("01", "pm1"):
            clf = PackedClassifier(pack_bits(wb), n_features=d, form=form, weight_encoding=w_enc)
            clean = clf.scores(PackedInput.from_words(xp, d, enc))
            np.testing.assert_array_equal(clf.scores(PackedInput.from_words(dirty, d, enc)), clean)


def test_weight_padding_must_be_zero():
    wp = pack_bits(np.ones((2, 70), dtype=np.uint8))
    wp[0, -1] |= np.uint64(1 << 63)
    with pytest.raises(ValueError, match="padding"):
        PackedClassifier(wp, n_features=70, form="two_output")


def test_planes_identity_for_integer_inputs(rng):
    w = rng.integers(0, 2, size=(50, 3))
    q = rng.integers(0, 256, size=(9, 50))
    for enc in ("01", "pm1"):
        clf = PackedClassifier.from_bits(w, form="softmax", weight_encoding=enc)
        weff = w if enc == "01" else 2 * w - 1
        assert clf.input_path(q) == "planes"
        np.testing.assert_array_equal(clf.scores(q), q @ weff)
        np.testing.assert_array_equal(clf.scores(q.astype(np.uint8)), q @ weff)
        np.testing.assert_array_equal(clf.scores(q.astype(np.float32)), q @ weff)
        assert clf.input_path(q / 255.0) == "planes255"
        np.testing.assert_array_equal(clf.scores(q / 255.0), q @ weff)  # levels k of k/255


# ------------------------------------------------------------------------------ classifier


@PROPS
@given(
    form=st.sampled_from(FORMS),
    encoding=st.sampled_from(["01", "pm1"]),
    x_pm1=st.booleans(),
    d=st.integers(1, 150),
    k=st.integers(2, 6),
    n=st.integers(1, 40),
    scale=st.floats(0.01, 5.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_classifier_identical_to_float_model_on_binary_inputs(
    form, encoding, x_pm1, d, k, n, scale, seed
):
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, size=weight_shape(form, d, k))
    kk = k if form == "softmax" else 2
    bias = rng.normal(size=kk) if form == "softmax" else float(rng.normal())
    clf = PackedClassifier.from_bits(
        bits, form=form, weight_encoding=encoding, scale=scale, bias=bias
    )
    x = rng.integers(0, 2, size=(n, d)).astype(np.float64)
    if x_pm1:
        x = 2 * x - 1
    eta = float_model(bits, x, form=form, encoding=encoding, scale=scale, bias=bias)
    got = clf.decision_function(x)
    np.testing.assert_array_equal(got, eta)  # bit-for-bit
    if form == "softmax":
        np.testing.assert_array_equal(clf.predict_proba(x), softmax(eta))
        np.testing.assert_array_equal(clf.predict(x), np.argmax(eta, axis=1))
    else:
        p = expit(eta)
        np.testing.assert_array_equal(clf.predict_proba(x), np.stack([1 - p, p], axis=1))
        np.testing.assert_array_equal(clf.predict(x), (eta > 0).astype(int))


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("encoding", ["01", "pm1"])
def test_exact_paths_match_float_model(rng, form, encoding):
    d, k = 90, 4
    bits = rng.integers(0, 2, size=weight_shape(form, d, k))
    bias = rng.normal(size=k) if form == "softmax" else 0.3
    clf = PackedClassifier.from_bits(
        bits, form=form, weight_encoding=encoding, scale=0.7, bias=bias
    )
    ref = lambda x: float_model(bits, x, form=form, encoding=encoding, scale=0.7, bias=bias)  # noqa: E731
    q = rng.integers(0, 256, size=(20, d))
    cases = {
        "bits01": rng.integers(0, 2, size=(20, d)).astype(np.float32),
        "bitspm1": (2 * rng.integers(0, 2, size=(20, d)) - 1).astype(np.int8),
        "planes": q,
        "planes255": q / 255.0,
        "float": rng.normal(size=(20, d)),
    }
    for path, x in cases.items():
        assert clf.input_path(x) == path
        if path == "planes255":  # exact integer score; the float model rounds its own sum
            np.testing.assert_allclose(clf.decision_function(x), ref(x), rtol=1e-13, atol=1e-12)
        else:
            np.testing.assert_array_equal(clf.decision_function(x), ref(x))
    # float32 k/255 values are not exact levels: they take the float path, equal to the model
    x32 = (q / 255.0).astype(np.float32)
    assert clf.input_path(x32) == "float"
    np.testing.assert_array_equal(clf.decision_function(x32), ref(x32.astype(np.float64)))


def test_binarization_threshold_and_sign_convention():
    bits = np.array([[1, 0], [1, 1], [0, 1]])  # (D=3, K=2)
    x = np.array([[0.5, 0.51, -3.0], [0.0, 1.0, 0.7]])
    clf01 = PackedClassifier.from_bits(bits, form="softmax", inputs="binarize")
    # strict x > 0.5: 0.5 -> 0, 0.51 -> 1
    np.testing.assert_array_equal(
        unpack_bits(clf01.pack_input(x).words[:, 0], 3), [[0, 1, 0], [0, 1, 1]]
    )
    np.testing.assert_array_equal(clf01.decision_function(x), [[1, 1], [1, 2]])
    clfpm = PackedClassifier.from_bits(
        bits,
        form="softmax",
        weight_encoding="pm1",
        inputs="binarize",
        binarize_threshold=0.0,
        input_encoding="pm1",
    )
    xb = np.array([[0.0, 2.0, -1.0]])  # 0 maps to bit 0 = -1; positive -> +1
    np.testing.assert_array_equal(unpack_bits(clfpm.pack_input(xb).words[:, 0], 3), [[0, 1, 0]])
    xs = np.array([[-1.0, 1.0, -1.0]])
    w = 2 * bits - 1
    np.testing.assert_array_equal(clfpm.decision_function(xb), xs @ w)
    clf_t = PackedClassifier.from_bits(
        bits, form="softmax", inputs="binarize", binarize_threshold=0.7
    )
    np.testing.assert_array_equal(clf_t.decision_function(x), [[0, 0], [1, 1]])
    with pytest.raises(ValueError, match="NaN"):
        clf01.predict(np.array([[np.nan, 0.0, 1.0]]))


def test_input_validation_errors(rng):
    clf = PackedClassifier.from_bits(rng.integers(0, 2, size=(5, 3)), form="softmax")
    with pytest.raises(ValueError, match="features"):
        clf.predict(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="2-D"):
        clf.predict(np.zeros(5))
    with pytest.raises(ValueError, match="0 rows"):
        clf.predict(np.zeros((0, 5)))
    with pytest.raises(ValueError, match="real"):
        clf.predict(np.zeros((1, 5), dtype=complex))
    with pytest.raises(TypeError, match="numeric"):
        clf.predict(np.array([["a"] * 5]))
    with pytest.raises(ValueError, match="infinite"):
        clf.predict(np.array([[0, 1, np.inf, 0, 1]]))
    clf.inputs = "fuzzy"
    with pytest.raises(ValueError, match="inputs"):
        clf.predict(np.zeros((1, 5)))
    with pytest.raises(ValueError, match="form"):
        PackedClassifier(np.zeros((3, 1), dtype=np.uint64), n_features=5, form="multi")
    with pytest.raises(ValueError, match="1 score row"):
        PackedClassifier(np.zeros((3, 1), dtype=np.uint64), n_features=5, form="single")
    with pytest.raises(ValueError, match="words"):
        PackedClassifier(np.zeros((3, 2), dtype=np.uint64), n_features=5)
    with pytest.raises(TypeError, match="uint64"):
        PackedClassifier(np.zeros((3, 1), dtype=np.int64), n_features=5)
    with pytest.raises(ValueError, match="classes"):
        PackedClassifier(np.zeros((3, 1), dtype=np.uint64), n_features=5, classes=[1, 2])
    with pytest.raises(ValueError, match="bias"):
        PackedClassifier(np.zeros((3, 1), dtype=np.uint64), n_features=5, bias=[1.0, 2.0])
    with pytest.raises(TypeError, match="uint64"):
        PackedInput(np.zeros((1, 1, 1), dtype=np.int64), 5)
    with pytest.raises(ValueError, match="planes"):
        PackedInput(np.zeros((1, 2, 1), dtype=np.uint64), 5, "pm1")
    with pytest.raises(ValueError, match="kind"):
        PackedInput(np.zeros((1, 1, 1), dtype=np.uint64), 5, "ternary")
    with pytest.raises(ValueError, match="encoding"):
        PackedInput.from_words(np.zeros((1, 1), dtype=np.uint64), 5, "ternary")
    with pytest.raises(ValueError, match="70 features but 5"):
        clf.scores(PackedInput.from_words(np.zeros((1, 2), dtype=np.uint64), 70))


def test_serial_and_parallel_kernels_agree(rng):
    """Small inputs run single-threaded, large ones in parallel: same integers."""
    bits = rng.integers(0, 2, size=(784, 10))
    clf = PackedClassifier.from_bits(bits, form="softmax", weight_encoding="pm1")
    x = rng.integers(0, 2, size=(700, 784)).astype(np.float64)
    big = clf.scores(x)
    small = np.concatenate([clf.scores(x[i : i + 1]) for i in range(0, 700, 70)])
    np.testing.assert_array_equal(big[::70], small)
    np.testing.assert_array_equal(big, x @ (2 * bits - 1))


# ------------------------------------------------------------------------------ ensembles


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("encoding", ["01", "pm1"])
def test_ensemble_matches_posterior_predictive(rng, form, encoding):
    res = make_result(
        rng, form, d=70, k=4, chains=2, draws=25, encoding=encoding, bias=True, scale=True
    )
    ens = to_bits(res, rule="draws")
    assert isinstance(ens, PackedEnsemble) and len(ens) == 50
    q = rng.integers(0, 256, size=(30, 70))
    inputs = {
        "bits01": rng.integers(0, 2, size=(30, 70)).astype(np.float64),
        "bitspm1": 2.0 * rng.integers(0, 2, size=(30, 70)) - 1.0,
        "planes": q,
        "planes255": q / 255.0,
        "float": rng.normal(size=(30, 70)),
    }
    for path, x in inputs.items():
        assert ens.input_path(x) == path
        got = ens.predict_proba(x)
        ref = posterior_predictive_proba(res, x)
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-9)
        np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-12)
    x = inputs["bits01"]
    # per-draw logits are the float model's, bit-for-bit, on binary inputs
    np.testing.assert_array_equal(ens.draw_decision_function(x), reference_logits(res, x))
    np.testing.assert_array_equal(ens[3].decision_function(x), reference_logits(res, x)[3])
    proba = ens.predict_proba(x)
    np.testing.assert_array_equal(ens.predict(x), np.argmax(proba, axis=1))
    if form == "softmax":
        np.testing.assert_allclose(np.exp(ens.decision_function(x)), proba, rtol=1e-12)
    else:
        np.testing.assert_allclose(expit(ens.decision_function(x)), proba[:, 1], rtol=1e-12)


def test_ensemble_thinned_subset_matches(rng):
    res = make_result(rng, "softmax", d=40, k=3, draws=30, bias=True)
    ens = to_bits(res, rule="draws", draws=7)
    x = rng.integers(0, 2, size=(10, 40))
    np.testing.assert_allclose(
        ens.predict_proba(x), posterior_predictive_proba(res, x, draws=7), atol=1e-9
    )
    assert ens.metadata["draw_index"] == list(threshold(res, "draws", draws=7).draw_index)


def test_ensemble_underflowing_table_falls_back_to_direct_formula(rng):
    """When every table term underflows (large scale against a bias gap) no NaN comes out."""
    d = 20
    bits = np.zeros((2, d, 3), dtype=np.uint8)
    bits[:, :, 1] = 1  # class 0 scores 0, class 1 scores popcount(x), class 2 random
    bits[:, :, 2] = rng.integers(0, 2, size=(2, d))
    bias = np.array([[0.0, -800.0, -2000.0], [0.0, -790.0, -1500.0]])
    scale = np.array([50.0, 49.0])
    ens = PackedEnsemble.from_bits(bits, form="softmax", scale=scale, bias=bias)
    x = np.zeros((4, d))
    x[0, :18] = 1  # eta = (0, 100, ...): table terms exp(-900) and exp(-800) both underflow
    x[1, :3] = 1
    x[2, :] = 1
    w = bits.astype(float)
    ref = np.mean([softmax(scale[s] * (x @ w[s]) + bias[s]) for s in range(2)], axis=0)
    got = ens.predict_proba(x)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)
    assert got[0, 1] > 0.99


@pytest.mark.parametrize("form", FORMS)
def test_ensemble_without_lookup_tables(rng, monkeypatch, form):
    """Direct-formula path: tables too large (forced here) or a negative scale."""
    import bayesbin.bits as bits_mod

    d, s_draws = 40, 5
    bits = rng.integers(0, 2, size=(s_draws, *weight_shape(form, d, 3)))
    scale = np.array([-0.5, 0.3, 1.2, 0.0, 2.0])
    bias = rng.normal(size=(s_draws, 3)) if form == "softmax" else rng.normal(size=s_draws)
    x = rng.integers(0, 2, size=(12, d)).astype(float)
    etas = [
        float_model(bits[s], x, form=form, encoding="pm1", scale=scale[s], bias=bias[s])
        for s in range(s_draws)
    ]
    if form == "softmax":
        ref = np.mean([softmax(e) for e in etas], axis=0)
    else:
        p = np.mean([expit(e) for e in etas], axis=0)
        ref = np.stack([1 - p, p], axis=1)
    ens = PackedEnsemble.from_bits(bits, form=form, weight_encoding="pm1", scale=scale, bias=bias)
    np.testing.assert_allclose(ens.predict_proba(x), ref, rtol=0, atol=1e-12)  # tables on
    monkeypatch.setattr(bits_mod, "_TABLE_BYTES", 0)
    ens = PackedEnsemble.from_bits(bits, form=form, weight_encoding="pm1", scale=scale, bias=bias)
    np.testing.assert_allclose(ens.predict_proba(x), ref, rtol=0, atol=1e-12)  # tables off


@PROPS
@given(
    form=st.sampled_from(FORMS),
    encoding=st.sampled_from(["01", "pm1"]),
    d=st.integers(1, 130),
    s_draws=st.integers(1, 9),
    n=st.integers(1, 20),
    seed=st.integers(0, 2**32 - 1),
)
def test_ensemble_property_matches_float_bma(form, encoding, d, s_draws, n, seed):
    rng = np.random.default_rng(seed)
    k = 3
    bits = rng.integers(0, 2, size=(s_draws, *weight_shape(form, d, k)))
    scale = rng.uniform(0.05, 3.0, size=s_draws)
    bias = rng.normal(size=(s_draws, k)) if form == "softmax" else rng.normal(size=s_draws)
    ens = PackedEnsemble.from_bits(
        bits, form=form, weight_encoding=encoding, scale=scale, bias=bias
    )
    x = rng.integers(0, 2, size=(n, d)).astype(np.float64)
    etas = [
        float_model(bits[s], x, form=form, encoding=encoding, scale=scale[s], bias=bias[s])
        for s in range(s_draws)
    ]
    if form == "softmax":
        ref = np.mean([softmax(e) for e in etas], axis=0)
    else:
        p = np.mean([expit(e) for e in etas], axis=0)
        ref = np.stack([1 - p, p], axis=1)
    np.testing.assert_allclose(ens.predict_proba(x), ref, rtol=0, atol=1e-12)


# ------------------------------------------------------------------------------ to_bits


def test_to_bits_rules(rng):
    res = make_result(rng, "softmax", d=30, k=3, bias=True, scale=True, classes=["a", "b", "c"])
    clf = to_bits(res)
    weights = threshold(res)
    assert isinstance(clf, PackedClassifier)
    np.testing.assert_array_equal(clf.bits, weights.bits)
    assert list(clf.classes_) == ["a", "b", "c"]
    x = rng.integers(0, 2, size=(12, 30))
    eta = float_model(
        weights.bits, x, form="softmax", encoding="01", scale=weights.scale, bias=weights.bias
    )
    np.testing.assert_array_equal(clf.decision_function(x), eta)
    assert set(clf.predict(x)) <= {"a", "b", "c"}
    best = to_bits(res, rule="map")
    np.testing.assert_array_equal(best.bits, threshold(res, "map").bits)
    assert to_bits(weights, classes=[5, 6, 7]).classes_.tolist() == [5, 6, 7]
    assert clf.metadata["rule"] == "marginal" and clf.metadata["spec"]["form"] == "softmax"


# ------------------------------------------------------------------------------ files


def _models(rng):
    res = make_result(
        rng, "softmax", d=70, k=3, draws=5, bias=True, scale=True, classes=["cat", "dog", "eel"]
    )
    yield to_bits(res)
    yield to_bits(res, rule="draws", inputs="binarize", binarize_threshold=0.25)
    yield to_bits(make_result(rng, "two_output", d=9, encoding="pm1", classes=[-1, 1]))
    yield to_bits(
        make_result(rng, "single", d=64, bias=True, classes=[0.5, 1.5]), input_encoding="pm1"
    )


def test_save_load_round_trip(rng, tmp_path):
    x = rng.integers(0, 2, size=(10, 70))
    for i, model in enumerate(_models(rng)):
        path = tmp_path / f"m{i}.bbits"
        model.save(path)
        loaded = load_bits(str(path))
        assert type(loaded) is type(model)
        np.testing.assert_array_equal(loaded.packed_weights, model.packed_weights)
        np.testing.assert_array_equal(loaded.scale, model.scale)
        np.testing.assert_array_equal(loaded.bias, model.bias)
        np.testing.assert_array_equal(loaded.classes_, model.classes_)
        assert loaded.classes_.dtype.kind == model.classes_.dtype.kind
        assert (loaded.inputs, loaded.binarize_threshold, loaded.input_encoding) == (
            model.inputs,
            model.binarize_threshold,
            model.input_encoding,
        )
        assert loaded.metadata == json.loads(json.dumps(model.metadata))
        xi = x[:, : model.n_features]
        np.testing.assert_array_equal(loaded.predict_proba(xi), model.predict_proba(xi))
        np.testing.assert_array_equal(loaded.predict(xi), model.predict(xi))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files


def test_save_is_atomic_and_replaces(rng, tmp_path, monkeypatch):
    models = list(_models(rng))
    path = tmp_path / "model.bbits"
    models[0].save(path)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        models[2].save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before  # old file intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.bbits"]  # temp cleaned up
    models[2].save(path)
    assert isinstance(load_bits(path), PackedClassifier) and load_bits(path).form == "two_output"


def test_truncated_or_flipped_files_raise_valueerror(rng, tmp_path):
    model = next(_models(rng))
    path = tmp_path / "m.bbits"
    model.save(path)
    data = path.read_bytes()
    bad = tmp_path / "bad.bbits"
    for cut in sorted(set(range(0, len(data), 7)) | {len(data) - 1, len(data) - 33}):
        bad.write_bytes(data[:cut])
        with pytest.raises(ValueError):
            load_bits(bad)
    positions = (
        set(range(24)) | set(range(24, len(data), 3)) | set(range(len(data) - 32, len(data)))
    )
    for pos in sorted(positions):  # prefix, every 3rd byte of header/payload, the checksum
        flipped = bytearray(data)
        flipped[pos] ^= 0x5A
        bad.write_bytes(bytes(flipped))
        with pytest.raises(ValueError):
            load_bits(bad)
    bad.write_bytes(data + b"\x00")
    with pytest.raises(ValueError, match="checksum"):
        load_bits(bad)
    bad.write_bytes(b"PK\x03\x04" + data[4:])
    with pytest.raises(ValueError, match="magic"):
        load_bits(bad)


def _rewrite(data: bytes, edit) -> bytes:
    """Re-encode a file after editing its header, with a valid checksum (a 'mismatched' file)."""
    import hashlib
    import struct

    prefix = struct.Struct("<8sIIQ")
    magic, version, flags, hlen = prefix.unpack_from(data, 0)
    header = json.loads(data[prefix.size : prefix.size + hlen])
    payload = data[prefix.size + hlen : -32]
    version, payload = edit(header, version, payload)
    blob = json.dumps(header).encode()
    body = prefix.pack(magic, version, flags, len(blob)) + blob + payload
    return body + hashlib.sha256(body).digest()


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda h, v, p: (h.update(n_features=200) or v, p), "n_words"),
        (lambda h, v, p: (h.update(weight_encoding="ternary") or v, p), "weight_encoding"),
        (lambda h, v, p: (h.update(classes=["a", "b"]) or v, p), "class"),
        (lambda h, v, p: (h.update(n_classes=4) or v, p), "n_classes"),
        (lambda h, v, p: (h.update(n_draws=2) or v, p), "classifier"),
        (lambda h, v, p: (h.update(form="single") or v, p), "n_classes"),
        (lambda h, v, p: (h.update(bit_order="msb0") or v, p), "order"),
        (lambda h, v, p: (h.update(n_features="70") or v, p), "n_features"),
        (lambda h, v, p: (h.update(classes_dtype="object") or v, p), "classes"),
        (lambda h, v, p: (v + 1, p), "version"),
        (lambda h, v, p: (v, p[:-8]), "past the end|size|trailing"),
        (lambda h, v, p: (v, p + b"\x00" * 8), "trailing"),
        (lambda h, v, p: (h.pop("arrays") and v, p), "arrays"),
        (lambda h, v, p: (v, p[:-8] + np.array([np.nan]).tobytes()), "finite"),
    ],
)
def test_mismatched_files_raise_valueerror(rng, tmp_path, edit, match):
    model = next(_models(rng))  # softmax classifier, 70 features, 3 classes
    path = tmp_path / "m.bbits"
    model.save(path)
    path.write_bytes(_rewrite(path.read_bytes(), edit))
    with pytest.raises(ValueError, match=match):
        load_bits(path)


def test_header_records_format_facts(rng, tmp_path):
    model = next(_models(rng))
    path = tmp_path / "m.bbits"
    model.save(path)
    data = path.read_bytes()
    hlen = int.from_bytes(data[16:24], "little")
    header = json.loads(data[24 : 24 + hlen])
    assert header["bit_order"] == "uint64-lsb0" and header["byte_order"] == "little"
    assert int.from_bytes(data[8:12], "little") == FORMAT_VERSION
    assert header["n_words"] == 2 and header["classes"] == ["cat", "dog", "eel"]
    assert [a["name"] for a in header["arrays"]] == ["weights", "scale", "bias"]


def test_unsaveable_metadata_and_classes(rng, tmp_path):
    clf = PackedClassifier.from_bits(
        rng.integers(0, 2, size=(5, 2)), form="softmax", classes=np.array([1, "a"], dtype=object)
    )
    with pytest.raises(TypeError, match="classes"):
        clf.save(tmp_path / "x.bbits")
    clf = PackedClassifier.from_bits(
        rng.integers(0, 2, size=(5, 2)), form="softmax", metadata={"bad": object()}
    )
    with pytest.raises(TypeError, match="JSON"):
        clf.save(tmp_path / "x.bbits")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------ C export


def _c_check(model, x_bits, tmp_path, name):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler (cc) on this machine")
    header = tmp_path / f"{name}.h"
    model.export_c_header(header, prefix=name)
    words = pack_bits(x_bits)
    rows = ",\n".join("{" + ", ".join(f"0x{int(v):016x}ULL" for v in r) + "}" for r in words)
    k = model.n_classes
    n_eta = k if model.family == "softmax" else 1
    main = f"""
#include <stdio.h>
#include "{name}.h"
static const uint64_t xs[{len(words)}][{words.shape[1]}] = {{{rows}}};
int main(void) {{
  int i, r;
  for (i = 0; i < {len(words)}; ++i) {{
    double eta[{n_eta}], proba[{k}];
    {name}_decision_function(xs[i], 0, eta);
    {name}_predict_proba(xs[i], proba);
    printf("%d", {name}_predict(xs[i]));
    for (r = 0; r < {n_eta}; ++r) printf(" %.17g", eta[r]);
    for (r = 0; r < {k}; ++r) printf(" %.17g", proba[r]);
    printf("\\n");
  }}
  return 0;
}}
"""
    src = tmp_path / f"{name}_main.c"
    src.write_text(main)
    exe = tmp_path / f"{name}_main"
    subprocess.run(
        [cc, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(exe), str(src), "-lm"],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    table = np.array([[float(v) for v in line.split()] for line in out.strip().splitlines()])
    return table[:, 0].astype(int), table[:, 1 : 1 + n_eta], table[:, 1 + n_eta :]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("encodings", [("01", "01"), ("pm1", "pm1"), ("01", "pm1"), ("pm1", "01")])
def test_c_header_matches_python(rng, tmp_path, form, encodings):
    w_enc, x_enc = encodings
    d, k = 100, 4
    bits = rng.integers(0, 2, size=weight_shape(form, d, k))
    bias = rng.normal(size=k) if form == "softmax" else -0.4
    clf = PackedClassifier.from_bits(
        bits,
        form=form,
        weight_encoding=w_enc,
        scale=0.3,
        bias=bias,
        input_encoding=x_enc,
        inputs="binarize",
        binarize_threshold=0.0 if x_enc == "pm1" else 0.5,
        classes=list("abcd")[: clf_k(form, k)],
    )
    xb = rng.integers(0, 2, size=(25, d))
    x = 2.0 * xb - 1 if x_enc == "pm1" else xb.astype(float)
    pred, eta, proba = _c_check(clf, xb, tmp_path, f"m_{form}")
    np.testing.assert_array_equal(clf.classes_[pred], clf.predict(x))
    py_eta = clf.decision_function(x).reshape(len(x), -1)
    np.testing.assert_array_equal(eta, py_eta)  # same IEEE operations in C and numpy
    np.testing.assert_allclose(proba, clf.predict_proba(x), rtol=1e-14, atol=1e-15)


def clf_k(form, k):
    return k if form == "softmax" else 2


@pytest.mark.parametrize("form", ["softmax", "two_output"])
def test_c_header_ensemble_matches_python(rng, tmp_path, form):
    res = make_result(rng, form, d=80, k=3, draws=6, encoding="pm1", bias=True, scale=True)
    ens = to_bits(res, rule="draws")
    xb = rng.integers(0, 2, size=(20, 80))
    pred, _, proba = _c_check(ens, xb, tmp_path, "ens")
    np.testing.assert_allclose(proba, ens.predict_proba(xb), rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(ens.classes_[pred], ens.predict(xb))


def test_c_header_rejects_bad_prefix(rng, tmp_path):
    clf = PackedClassifier.from_bits(rng.integers(0, 2, size=(5, 2)), form="softmax")
    with pytest.raises(ValueError, match="identifier"):
        clf.export_c_header(tmp_path / "m.h", prefix="my-model")


# ------------------------------------------------------------------------------ real result


@pytest.fixture(scope="module")
def pymc_softmax():
    """A tiny real binary_softmax posterior from PyMC's BinaryGibbsMetropolis."""
    import pymc as pm

    import bayesbin

    r = np.random.default_rng(99)
    x = r.integers(0, 2, size=(40, 5)).astype(float)
    y = r.integers(0, 3, size=40)
    model = bayesbin.binary_softmax(x, y, 3)
    with model, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = pm.sample(
            step=pm.BinaryGibbsMetropolis([model["w"]]),
            draws=50,
            tune=10,
            chains=2,
            cores=1,
            compute_convergence_checks=False,
            progressbar=False,
            random_seed=3,
        )
    idata.posterior.attrs["bayesbin_spec"] = json.dumps(bayesbin.get_spec(model).to_dict())
    return model, idata, x


def test_real_posterior_ensemble_and_marginal(pymc_softmax, tmp_path):
    model, idata, x = pymc_softmax
    ens = to_bits(idata, rule="draws")
    assert len(ens) == 100
    np.testing.assert_allclose(
        ens.predict_proba(x), posterior_predictive_proba(idata, x), rtol=0, atol=1e-9
    )
    clf = to_bits(idata, rule="marginal")
    weights = threshold(idata)
    np.testing.assert_array_equal(clf.decision_function(x), x @ weights.bits)
    best = to_bits(idata, rule="map", model=model)
    np.testing.assert_array_equal(best.bits, threshold(idata, "map", model=model).bits)
    ens.save(tmp_path / "ens.bbits")
    again = load_bits(tmp_path / "ens.bbits")
    np.testing.assert_array_equal(again.predict_proba(x), ens.predict_proba(x))


# ------------------------------------------------------------------------------ MNIST scale


def _mnist_test_images():
    import gzip
    import pathlib

    here = pathlib.Path(__file__).resolve().parent
    for root in (here.parent.parent / "shared", here.parent / "shared", here.parent / "data"):
        path = root / "data" / "mnist" / "t10k-images-idx3-ubyte.gz"
        if not path.exists():
            path = root / "mnist" / "t10k-images-idx3-ubyte.gz"
        if path.exists():
            raw = gzip.decompress(path.read_bytes())
            n = int.from_bytes(raw[4:8], "big")
            return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, 784)
    pytest.skip("MNIST t10k images not found (expected shared/data/mnist/)")


@pytest.mark.slow
def test_mnist_scale_ensemble_and_classifier(rng):
    """784x10, 10,000 real test images: pixels k/255 (bit-planes) and binarized (popcount)."""
    pixels = _mnist_test_images()
    x255 = pixels / 255.0
    xbin = (x255 > 0.5).astype(np.float64)
    res = make_result(
        rng, "softmax", d=784, k=10, chains=2, draws=100, encoding="pm1", bias=True, scale=0.02
    )
    ens = to_bits(res, rule="draws")
    for x, path in ((xbin, "bits01"), (x255, "planes255")):
        assert ens.input_path(x) == path
        np.testing.assert_allclose(
            ens.predict_proba(x), posterior_predictive_proba(res, x), rtol=0, atol=1e-9
        )
    clf = to_bits(res)
    w = threshold(res)
    eta = float_model(w.bits, xbin, form="softmax", encoding="pm1", scale=w.scale, bias=w.bias)
    np.testing.assert_array_equal(clf.decision_function(xbin), eta)
    np.testing.assert_array_equal(clf.predict(pixels > 127), np.argmax(eta, axis=1))
