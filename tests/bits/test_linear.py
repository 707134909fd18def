"""Packed linear classifiers and ensembles against the float model and the posterior."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from _bitsutil import FORMS, PROPS, float_model, mnist_test_images, weight_shape
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import expit
from test_posterior import make_result, reference_logits

from bayesbin.bits import (
    PackedClassifier,
    PackedEnsemble,
    PackedInput,
    load_bits,
    to_bits,
    unpack_bits,
)
from bayesbin.linear.maths import softmax
from bayesbin.posterior import posterior_predictive_proba, threshold

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


def _effective(bits, encoding, form):
    """Score-row weights (D, R) of model-shaped bits: x @ result is the integer score."""
    w = np.asarray(bits, dtype=np.int64)
    w = 2 * w - 1 if encoding == "pm1" else w
    return {"softmax": w, "single": w[:, None], "two_output": w.T}[form]


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
    # float32 pixels k/255 (as load_mnist returns them) are the exact levels k / 255 too:
    # identical logits to the float64 k/255 input, whichever way the float32 was made
    for x32 in (q.astype(np.float32) / np.float32(255), (q / 255.0).astype(np.float32)):
        assert clf.input_path(x32) == "planes255"
        np.testing.assert_array_equal(clf.decision_function(x32), clf.decision_function(q / 255.0))
        np.testing.assert_array_equal(clf.scores(x32), q @ _effective(bits, encoding, form))
    # one float32 value off a level: the whole input takes the float path (the float model)
    x32 = q.astype(np.float32) / np.float32(255)
    x32[3, 7] = np.nextafter(x32[3, 7], np.float32(2))
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
    import bayesbin.bits.layers as bits_mod

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


@pytest.mark.slow
def test_mnist_scale_ensemble_and_classifier(rng):
    """784x10, 10,000 real test images: pixels k/255 (bit-planes) and binarized (popcount)."""
    pixels = mnist_test_images()
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


def test_binarize_refused_for_a_model_fitted_outside_unit_interval():
    """inputs='binarize' on a model fitted on 0..16 values would score near chance: refused."""
    import bayesbin

    r = np.random.default_rng(16)
    x = r.integers(0, 17, size=(60, 6)).astype(float)
    y = (x[:, 0] > 8).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = bayesbin.fit(x, y, classes=2, draws=20, tune=10, chains=1, random_seed=1,
                           progressbar=False)
    with pytest.raises(ValueError, match=r"fitted on values in \[0, 16\]"):
        clf.to_bits(inputs="binarize")
    assert clf.to_bits().predict(x).shape == (60,)  # the exact path is fine
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        unit = bayesbin.fit(x / 16.0, y, classes=2, draws=20, tune=10, chains=1,
                            random_seed=1, progressbar=False)
    assert unit.to_bits(inputs="binarize").predict(x / 16.0).shape == (60,)
