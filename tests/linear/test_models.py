"""Model builders: structure, maths, the one-vector trap, and bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bayesbin
from bayesbin.linear import get_spec, log_posterior, set_data


def _point(model, w, b=None, s=None):
    p = dict(model.initial_point())
    p["w"] = np.asarray(w)
    if b is not None:
        p["b"] = np.asarray(b, dtype=float)
    if s is not None:
        p["scale_log__"] = np.log(s)
    return p


def test_softmax_structure(tiny_multiclass):
    x, y = tiny_multiclass
    m = bayesbin.binary_softmax(x, y, 3, bias=True, scale=True)
    assert m["w"].type.shape == (3, 3) or tuple(m["w"].shape.eval()) == (3, 3)
    assert m.named_vars_to_dims["w"] == ("feature", "class")
    assert m.named_vars_to_dims["b"] == ("class",)
    assert set(m.coords) >= {"obs", "feature", "class"}
    assert {v.name for v in m.free_RVs} == {"w", "b", "scale"}
    spec = get_spec(m)
    assert spec.weight_shape == (3, 3) and spec.n_classes == 3 and spec.learned_scale


@pytest.mark.parametrize("form,shape", [("single", (3,)), ("two_output", (2, 3))])
def test_logistic_shapes(tiny_binary, form, shape):
    x, y = tiny_binary
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bayesbin.OneVectorTrapWarning)
        m = bayesbin.binary_logistic(x, y, form=form)
    assert tuple(m["w"].shape.eval()) == shape
    assert get_spec(m).form == form


def test_categorical_equals_multinomial(tiny_multiclass, rng):
    x, y = tiny_multiclass
    for enc in ("01", "pm1"):
        mc = bayesbin.binary_softmax(x, y, 3, encoding=enc, bias=True, scale=0.7)
        mm = bayesbin.binary_softmax(
            x, y, 3, likelihood="multinomial", encoding=enc, bias=True, scale=0.7
        )
        fc, fm = mc.compile_logp(), mm.compile_logp()
        for _ in range(5):
            w = rng.integers(0, 2, size=(3, 3))
            b = rng.normal(size=3)
            assert fc(_point(mc, w, b)) == pytest.approx(fm(_point(mm, w, b)), abs=1e-9)


def test_softmax_logits_by_hand(tiny_multiclass, rng):
    """The model's logp is the categorical log-likelihood of scale * x @ W + b plus priors."""
    x, y = tiny_multiclass
    m = bayesbin.binary_softmax(x, y, 3, encoding="pm1", bias=True, scale=0.5, prior_p=0.3)
    w = rng.integers(0, 2, size=(3, 3))
    b = rng.normal(size=3)
    eta = 0.5 * x @ (2 * w - 1) + b
    ll = (eta[np.arange(len(y)), y] - np.log(np.exp(eta).sum(1))).sum()
    lprior = (w * np.log(0.3) + (1 - w) * np.log(0.7)).sum()
    lb = (-0.5 * np.log(2 * np.pi * 25) - 0.5 * b**2 / 25).sum()
    assert m.compile_logp()(_point(m, w, b)) == pytest.approx(ll + lprior + lb, abs=1e-9)


def test_two_output_is_difference(tiny_binary, rng):
    x, y = tiny_binary
    m = bayesbin.binary_logistic(x, y, form="two_output", bias=True)
    w = rng.integers(0, 2, size=(2, 3))
    eta = x @ w[1] - x @ w[0] + 0.3
    ll = np.where(y == 1, -np.logaddexp(0, -eta), -np.logaddexp(0, eta)).sum()
    lprior = w.size * np.log(0.5) + (-0.5 * np.log(2 * np.pi * 25) - 0.5 * 0.09 / 25)
    assert m.compile_logp()(_point(m, w, 0.3)) == pytest.approx(ll + lprior, abs=1e-9)


@pytest.mark.parametrize("family", ["logistic_single", "logistic_two", "softmax"])
@pytest.mark.parametrize("relaxed", [False, (2.0, 3.0)])
def test_log_posterior_matches_pymc(tiny_multiclass, rng, family, relaxed):
    x, y3 = tiny_multiclass
    y2 = (y3 == 0).astype(int)
    for enc in ("01", "pm1"):
        for scale in (False, True, 0.7):
            kw = dict(encoding=enc, bias=True, scale=scale, relaxed=relaxed, prior_p=0.3)
            if family == "softmax":
                m = bayesbin.binary_softmax(x, y3, 3, **kw)
            else:
                form = "single" if family == "logistic_single" else "two_output"
                m = bayesbin.binary_logistic(x, y2, form=form, **kw)
            spec = get_spec(m)
            f = m.compile_logp()
            w = (
                rng.integers(0, 2, spec.weight_shape)
                if not relaxed
                else rng.uniform(0.05, 0.95, spec.weight_shape)
            )
            b = rng.normal(size=(3,) if family == "softmax" else ())
            p = dict(m.initial_point())
            if relaxed:
                p["w_logodds__"] = np.log(w / (1 - w))
            else:
                p["w"] = w
            p["b"] = b
            if scale is True:
                p["scale_log__"] = np.log(0.8)
            got = log_posterior(
                spec, x, m["y"].get_value(), w[None], np.atleast_1d(b)[None], np.array([0.8])
            )[0]
            assert got == pytest.approx(f(p), rel=1e-9, abs=1e-6)


def test_one_vector_trap_warns(tiny_binary):
    x, y = tiny_binary
    with pytest.warns(bayesbin.OneVectorTrapWarning, match="P\\(y=1\\) < 0.5"):
        bayesbin.binary_logistic(x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", bayesbin.OneVectorTrapWarning)
        bayesbin.binary_logistic(x, y, bias=True)
        bayesbin.binary_logistic(x, y, encoding="pm1")
        bayesbin.binary_logistic(x, y, form="two_output")
        bayesbin.binary_logistic(x - 0.5, y)


def test_one_vector_trap_is_real(tiny_binary):
    """The trap is a fact of the model, not a warning for show: logit >= 0 for every w."""
    x, y = tiny_binary
    for bits in range(8):
        w = np.array([(bits >> i) & 1 for i in range(3)])
        assert np.all(x @ w >= 0)


def test_relaxed_builds_beta(tiny_multiclass):
    x, y = tiny_multiclass
    m = bayesbin.binary_softmax(x, y, 3, relaxed=True)
    assert m["w"].owner.op.name == "beta"
    assert get_spec(m).relaxed == (1.0, 1.0)
    m2 = bayesbin.binary_softmax(x, y, 3, relaxed=(2, 5))
    assert get_spec(m2).relaxed == (2.0, 5.0)


def test_set_data_for_prediction(tiny_multiclass):
    x, y = tiny_multiclass
    m = bayesbin.binary_softmax(x, y, 3, likelihood="multinomial")
    set_data(m, x[:7])
    assert m["x"].get_value().shape == (7, 3)
    assert m["y_onehot"].get_value().shape == (7, 3)
    with pytest.raises(ValueError, match="features"):
        set_data(m, x[:, :2])


def test_integer_and_pandas_inputs_become_float64(tiny_multiclass):
    x, y = tiny_multiclass
    xi = (x * 10).astype(np.int64)
    m = bayesbin.binary_softmax(pd.DataFrame(xi), pd.Series(y), 3)
    assert m["x"].get_value().dtype == np.float64


BAD = [
    (lambda x, y: (np.where(x > 0.5, np.nan, x), y), ValueError, "NaN"),
    (lambda x, y: (np.where(x > 0.5, np.inf, x), y), ValueError, "infinite"),
    (lambda x, y: (x[:, 0], y), ValueError, "2-D"),
    (lambda x, y: (x, y[:-1]), ValueError, "lengths must match"),
    (lambda x, y: (x, y + 5), ValueError, "outside 0..2"),
    (lambda x, y: (x[:0], y[:0]), ValueError, "empty"),
    (lambda x, y: (x.astype(str), y), TypeError, "numeric"),
    (lambda x, y: (x, y.astype(float) + 0.5), ValueError, "whole-number"),
]


@pytest.mark.parametrize("make,exc,match", BAD)
def test_bad_input_softmax(tiny_multiclass, make, exc, match):
    x, y = make(*tiny_multiclass)
    with pytest.raises(exc, match=match):
        bayesbin.binary_softmax(x, y, 3)


def test_bad_options(tiny_multiclass, tiny_binary):
    x, y = tiny_multiclass
    with pytest.raises(ValueError, match="prior_p"):
        bayesbin.binary_softmax(x, y, 3, prior_p=1.5)
    with pytest.raises(ValueError, match="prior_p"):
        bayesbin.binary_softmax(x, y, 3, prior_p=np.ones(4) * 0.5)
    with pytest.raises(ValueError, match="classes must be >= 2"):
        bayesbin.binary_softmax(x, np.zeros(60, int), 1)
    with pytest.raises(TypeError, match="classes"):
        bayesbin.binary_softmax(x, y, "3")
    with pytest.raises(ValueError, match="likelihood"):
        bayesbin.binary_softmax(x, y, 3, likelihood="poisson")
    with pytest.raises(ValueError, match="encoding"):
        bayesbin.binary_softmax(x, y, 3, encoding="+-1")
    with pytest.raises(TypeError, match="bias"):
        bayesbin.binary_softmax(x, y, 3, bias=1.0)
    with pytest.raises(ValueError, match="scale"):
        bayesbin.binary_softmax(x, y, 3, scale=-1.0)
    with pytest.raises(ValueError, match="relaxed"):
        bayesbin.binary_softmax(x, y, 3, relaxed=(0, 1))
    with pytest.raises(ValueError, match="logistic model needs labels in"):
        bayesbin.binary_logistic(x, y, form="two_output")
    xb, yb = tiny_binary
    with pytest.raises(ValueError, match="form"):
        bayesbin.binary_logistic(xb, yb, form="double")
