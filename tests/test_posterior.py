"""Tests for bayesbin.posterior: spec reading, bit probabilities, thresholding rules, predictive."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from scipy.special import expit

from bayesbin._compat import to_idata
from bayesbin.linear.maths import softmax
from bayesbin.posterior import (
    BinaryWeights,
    bit_probabilities,
    posterior_predictive_proba,
    result_classes,
    result_spec,
    select_draws,
    threshold,
)

WEIGHT = {
    "single": (("feature",), lambda d, k: (d,)),
    "two_output": (("output", "feature"), lambda d, k: (2, d)),
    "softmax": (("feature", "class"), lambda d, k: (d, k)),
}


def make_spec(form: str, d: int, k: int = 2, *, encoding="01", bias=False, scale=False) -> dict:
    """A ``ModelSpec.to_dict()``-shaped dict."""
    dims, shape = WEIGHT[form]
    return {
        "family": "softmax" if form == "softmax" else "logistic",
        "form": form,
        "likelihood": "categorical" if form == "softmax" else "bernoulli",
        "encoding": encoding,
        "n_features": d,
        "n_classes": k if form == "softmax" else 2,
        "weight_shape": list(shape(d, k)),
        "weight_dims": list(dims),
        "bias": bias,
        "bias_sigma": 5.0,
        "scale": scale,
        "scale_sigma": 1.0,
        "relaxed": None,
    }


def make_result(
    rng,
    form="softmax",
    d=5,
    k=3,
    *,
    chains=2,
    draws=20,
    encoding="01",
    bias=False,
    scale=False,
    relaxed=False,
    lp=True,
    classes=None,
    w=None,
):
    """Fabricate a bayesbin-shaped sampling result with known draws."""
    spec = make_spec(form, d, k, encoding=encoding, bias=bias, scale=scale)
    dims, shape = WEIGHT[form]
    shp = (chains, draws, *shape(d, k))
    if w is None:
        w = rng.random(shp) if relaxed else rng.integers(0, 2, size=shp).astype(np.int8)
    post = {"w": w}
    var_dims = {"w": list(dims)}
    if bias:
        bshape = (chains, draws, k) if form == "softmax" else (chains, draws)
        post["b"] = rng.normal(0.0, 1.0, size=bshape)
        if form == "softmax":
            var_dims["b"] = ["class"]
    if scale is True:
        post["scale"] = rng.gamma(4.0, 0.1, size=(chains, draws))
    stats = {"lp": rng.normal(size=(chains, draws))} if lp else None
    attrs = {"bayesbin_spec": json.dumps(spec)}
    if classes is not None:
        attrs["bayesbin_classes"] = json.dumps(list(classes))
    return to_idata(post, dims=var_dims, sample_stats=stats, attrs=attrs)


def reference_logits(result, x):
    """Per-draw float64 logits written out independently of the library."""
    spec = result_spec(result)
    post = result.posterior
    w = post["w"].values.astype(np.float64)
    w = w.reshape(-1, *w.shape[2:])
    if spec.encoding == "pm1":
        w = 2 * w - 1
    n = w.shape[0]
    b = post["b"].values.reshape(n, -1) if spec.bias else np.zeros((n, 1))
    if spec.scale is True:
        s = post["scale"].values.reshape(n)
    else:
        s = np.full(n, 1.0 if spec.scale is False else spec.scale)
    out = []
    for i in range(n):
        if spec.form == "softmax":
            out.append(s[i] * (x @ w[i]) + b[i])
        elif spec.form == "single":
            out.append(s[i] * (x @ w[i]) + b[i, 0])
        else:
            out.append(s[i] * (x @ w[i, 1] - x @ w[i, 0]) + b[i, 0])
    return np.array(out)


# ------------------------------------------------------------------------------ spec / classes


def test_result_spec_round_trips_modelspec_dict(rng):
    res = make_result(rng, "two_output", d=4, bias=True, scale=0.5)
    spec = result_spec(res)
    assert spec.form == "two_output" and spec.weight_shape == (2, 4)
    assert spec.scale == 0.5 and spec.bias is True


def test_result_spec_accepts_a_real_modelspec():
    import bayesbin

    x = np.eye(4)
    y = np.array([0, 1, 2, 0])
    model = bayesbin.binary_softmax(x, y, 3, encoding="pm1")
    spec = result_spec(None, bayesbin.get_spec(model))
    assert spec.weight_shape == (4, 3) and spec.encoding == "pm1"


def test_result_spec_errors(rng):
    res = make_result(rng)
    del res.posterior.attrs["bayesbin_spec"]
    with pytest.raises(ValueError, match="bayesbin_spec"):
        result_spec(res)
    res.posterior.attrs["bayesbin_spec"] = "{not json"
    with pytest.raises(ValueError, match="JSON"):
        result_spec(res)
    bad = make_spec("softmax", 5, 3)
    bad["weight_shape"] = [5, 4]
    res.posterior.attrs["bayesbin_spec"] = json.dumps(bad)
    with pytest.raises(ValueError, match="weight_shape"):
        result_spec(res)
    bad = make_spec("softmax", 5, 3, encoding="ternary")
    res.posterior.attrs["bayesbin_spec"] = json.dumps(bad)
    with pytest.raises(ValueError, match="encoding"):
        result_spec(res)
    with pytest.raises(TypeError, match="result"):
        result_spec({"posterior": None})


def test_result_classes(rng):
    res = make_result(rng, classes=["a", "b", "c"])
    assert list(result_classes(res)) == ["a", "b", "c"]
    assert list(result_classes(make_result(rng))) == [0, 1, 2]
    assert list(result_classes(res, classes=[7, 8, 9])) == [7, 8, 9]
    with pytest.raises(ValueError, match="3 labels"):
        result_classes(res, classes=[1, 2])
    with pytest.raises(ValueError, match="distinct"):
        result_classes(res, classes=[1, 1, 2])


def test_weights_validation(rng):
    shp = (2, 5, 4, 3)
    with pytest.raises(ValueError, match="outside"):
        bit_probabilities(make_result(rng, d=4, draws=5, w=rng.integers(0, 3, size=shp) + 0))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        bit_probabilities(make_result(rng, d=4, draws=5, w=rng.random(shp) + 1.0))
    res = make_result(rng, d=4)
    res.posterior.attrs["bayesbin_spec"] = json.dumps(make_spec("softmax", 4, 4))
    with pytest.raises(ValueError, match="shape"):
        bit_probabilities(res)


# ------------------------------------------------------------------------------ probabilities


def test_bit_probabilities_are_draw_means(rng):
    res = make_result(rng, "softmax", d=6, k=3)
    probs = bit_probabilities(res)
    assert probs.dims == ("feature", "class") and probs.dtype == np.float64
    np.testing.assert_array_equal(probs.values, res.posterior["w"].values.mean(axis=(0, 1)))
    assert list(probs.coords["class"].values) == [0, 1, 2]


def test_bit_probabilities_relaxed_round_each_draw(rng):
    res = make_result(rng, "single", d=7, relaxed=True)
    w = res.posterior["w"].values
    np.testing.assert_array_equal(bit_probabilities(res).values, (w > 0.5).mean(axis=(0, 1)))


def test_bool_draws_accepted(rng):
    w = rng.integers(0, 2, size=(2, 10, 3)).astype(bool)
    res = make_result(rng, "single", d=3, draws=10, w=w)
    np.testing.assert_array_equal(bit_probabilities(res).values, w.mean(axis=(0, 1)))


# ------------------------------------------------------------------------------ thresholding


def test_marginal_rule_and_tie_gives_zero(rng):
    # 4 draws: feature 0 always 1, feature 1 exactly half the time (a tie), feature 2 never.
    w = np.array([[[1, 1, 0], [1, 0, 0]], [[1, 1, 0], [1, 0, 0]]], dtype=np.int8)
    res = make_result(rng, "single", d=3, chains=2, draws=2, w=w)
    out = threshold(res, rule="marginal")
    np.testing.assert_array_equal(out.bits, [1, 0, 0])
    np.testing.assert_array_equal(out.probabilities, [1.0, 0.5, 0.0])
    np.testing.assert_array_equal(threshold(res, threshold=0.49).bits, [1, 1, 0])
    np.testing.assert_array_equal(out.pm1, [1, -1, -1])
    assert out.bits.dtype == np.uint8 and out.pm1.dtype == np.int8
    assert out.rule == "marginal" and not out.is_ensemble


def test_marginal_bias_scale_summaries(rng):
    res = make_result(rng, "softmax", bias=True, scale=True)
    b = res.posterior["b"].values.reshape(-1, 3)
    s = res.posterior["scale"].values.reshape(-1)
    mean = threshold(res)
    np.testing.assert_allclose(mean.bias, b.mean(axis=0), rtol=1e-15)
    np.testing.assert_allclose(mean.scale, s.mean(), rtol=1e-15)
    med = threshold(res, summary="median")
    np.testing.assert_allclose(med.bias, np.median(b, axis=0), rtol=1e-15)
    np.testing.assert_allclose(med.scale, np.median(s), rtol=1e-15)
    fixed = threshold(make_result(rng, "single", scale=0.25))
    assert float(fixed.scale) == 0.25 and float(fixed.bias) == 0.0


def test_map_rule_picks_highest_lp(rng):
    res = make_result(rng, "softmax", bias=True, scale=True)
    lp = res.sample_stats["lp"].values.reshape(-1)
    best = int(np.argmax(lp))
    out = threshold(res, rule="map")
    w = res.posterior["w"].values.reshape(-1, 5, 3)
    np.testing.assert_array_equal(out.bits, w[best])
    np.testing.assert_array_equal(out.bias, res.posterior["b"].values.reshape(-1, 3)[best])
    assert float(out.scale) == res.posterior["scale"].values.reshape(-1)[best]
    assert list(out.draw_index) == [best]


def test_map_rule_without_lp_needs_model(rng):
    res = make_result(rng, lp=False)
    with pytest.raises(ValueError, match="model="):
        threshold(res, rule="map")


def test_draws_rule_and_thinning(rng):
    res = make_result(rng, "two_output", d=4, chains=2, draws=10, bias=True)
    ens = threshold(res, rule="draws")
    assert ens.is_ensemble and ens.bits.shape == (20, 2, 4) and ens.bias.shape == (20,)
    thin = threshold(res, rule="draws", draws=5)
    np.testing.assert_array_equal(thin.draw_index, [0, 5, 10, 14, 19])
    np.testing.assert_array_equal(thin.bits, ens.bits[[0, 5, 10, 14, 19]])
    picked = threshold(res, rule="draws", draws=[3, 12])
    np.testing.assert_array_equal(picked.bias, ens.bias[[3, 12]])
    # chain-major flattening: flat 12 is chain 1, draw 2
    np.testing.assert_array_equal(picked.bits[1], res.posterior["w"].values[1, 2])


def test_threshold_argument_errors(rng):
    res = make_result(rng)
    with pytest.raises(ValueError, match="rule"):
        threshold(res, rule="mode")
    with pytest.raises(ValueError, match="threshold"):
        threshold(res, threshold=1.5)
    with pytest.raises(TypeError, match="threshold"):
        threshold(res, threshold="0.5")
    with pytest.raises(ValueError, match="summary"):
        threshold(res, summary="mode")
    with pytest.raises(ValueError, match="draws"):
        select_draws(res, 1000)
    with pytest.raises(ValueError, match="indices"):
        select_draws(res, [0, 40])
    with pytest.raises(TypeError, match="draws"):
        select_draws(res, [0.5])
    with pytest.raises(ValueError, match="'b'"):
        threshold(res, spec=make_spec("softmax", 5, 3, bias=True))


def test_effective_weights_follow_encoding(rng):
    res = make_result(rng, "single", d=4, encoding="pm1")
    out = threshold(res)
    assert isinstance(out, BinaryWeights)
    np.testing.assert_array_equal(out.effective, 2 * out.bits.astype(int) - 1)


# ------------------------------------------------------------------------------ predictive


@pytest.mark.parametrize("form", ["softmax", "single", "two_output"])
@pytest.mark.parametrize("encoding", ["01", "pm1"])
def test_posterior_predictive_matches_independent_reference(rng, form, encoding):
    res = make_result(rng, form, d=6, k=4, encoding=encoding, bias=True, scale=True)
    x = rng.normal(size=(15, 6))
    eta = reference_logits(res, x)
    if form == "softmax":
        ref = np.mean([softmax(e) for e in eta], axis=0)
    else:
        p = expit(eta).mean(axis=0)
        ref = np.stack([1 - p, p], axis=1)
    got = posterior_predictive_proba(res, x)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-13)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-12)
    sub = posterior_predictive_proba(res, x, draws=[0, 7])
    if form == "softmax":
        np.testing.assert_allclose(sub, (softmax(eta[0]) + softmax(eta[7])) / 2, atol=1e-13)


def test_posterior_predictive_relaxed_uses_real_weights(rng):
    res = make_result(rng, "softmax", d=4, k=3, relaxed=True)
    x = rng.random((5, 4))
    eta = reference_logits(res, x)
    ref = np.mean([softmax(e) for e in eta], axis=0)
    np.testing.assert_allclose(posterior_predictive_proba(res, x), ref, atol=1e-13)


def test_posterior_predictive_chunking(rng, monkeypatch):
    import bayesbin.linear.maths as maths

    res = make_result(rng, "softmax", d=5, k=3, draws=30, bias=True)
    x = rng.normal(size=(8, 5))
    full = posterior_predictive_proba(res, x)
    monkeypatch.setattr(maths, "_CHUNK_ELEMENTS", 50)  # forces 2 draws per chunk
    np.testing.assert_allclose(posterior_predictive_proba(res, x), full, atol=1e-15)


def test_posterior_predictive_checks_x(rng):
    res = make_result(rng)
    with pytest.raises(ValueError, match="features"):
        posterior_predictive_proba(res, np.zeros((3, 4)))
    with pytest.raises(ValueError, match="NaN"):
        posterior_predictive_proba(res, np.full((3, 5), np.nan))


# ------------------------------------------------------------------------------ real PyMC result


@pytest.fixture(scope="module")
def pymc_result():
    """A tiny real softmax model sampled with PyMC's BinaryGibbsMetropolis."""
    import pymc as pm

    import bayesbin

    r = np.random.default_rng(2024)
    x = r.integers(0, 2, size=(30, 4)).astype(float)
    y = r.integers(0, 3, size=30)
    model = bayesbin.binary_softmax(x, y, 3, encoding="pm1")
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
            random_seed=7,
        )
    idata.posterior.attrs["bayesbin_spec"] = json.dumps(bayesbin.get_spec(model).to_dict())
    idata.posterior.attrs["bayesbin_classes"] = json.dumps(["x", "y", "z"])
    return model, idata, x


def test_real_result_probabilities_and_classes(pymc_result):
    _, idata, _ = pymc_result
    probs = bit_probabilities(idata)
    np.testing.assert_array_equal(probs.values, idata.posterior["w"].values.mean(axis=(0, 1)))
    assert list(threshold(idata).classes) == ["x", "y", "z"]


def test_real_result_map_with_model_matches_model_logp(pymc_result):
    model, idata, _ = pymc_result
    out = threshold(idata, rule="map", model=model)
    logp = model.compile_logp()
    w = idata.posterior["w"].values.reshape(-1, 4, 3)
    lps = np.array([logp({"w": wi}) for wi in w])
    assert lps[out.draw_index[0]] == pytest.approx(lps.max(), abs=1e-9)
    np.testing.assert_array_equal(out.bits, w[out.draw_index[0]])


def test_real_result_predictive(pymc_result):
    _, idata, x = pymc_result
    eta = reference_logits(idata, x)
    ref = np.mean([softmax(e) for e in eta], axis=0)
    np.testing.assert_allclose(posterior_predictive_proba(idata, x), ref, atol=1e-13)
