"""A user's own PyMC model: recognised into a ModelSpec, sampled exactly by bayesbin's samplers."""

from __future__ import annotations

import warnings

import numpy as np
import pymc as pm
import pytest
from helpers import assert_bits_match_exact, enumerate_posterior

import bayesbin
from bayesbin.linear import RecognitionError, get_spec, log_posterior, model_data, recognise

SEED = sum(ord(c) for c in "test_graph")


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


def _data(n=40, d=3, k=2, seed=SEED):
    r = np.random.default_rng(seed)
    x = (r.random((n, d)) < 0.5).astype(float) * r.integers(1, 3, (n, d))
    y = r.integers(0, k, n)
    return x, y


# --------------------------------------------------------------------------------------------
# the forum's models and their variants, written by hand
# --------------------------------------------------------------------------------------------


def forum_softmax(x, y, k):
    """The forum's PyMC port: Categorical(softmax(dot(x, w), axis=-1))."""
    with pm.Model() as model:
        w = pm.Bernoulli("w", p=0.5, shape=(x.shape[1], k))
        pm.Categorical("y_obs", p=pm.math.softmax(pm.math.dot(x, w), axis=-1), observed=y)
    return model


def jags_two_output(x, y):
    """The forum's JAGS model: logit p = x @ w[1] - x @ w[0]."""
    with pm.Model() as model:
        w = pm.Bernoulli("w", p=0.5, shape=(2, x.shape[1]))
        pm.Bernoulli("y_obs", logit_p=pm.math.dot(x, w[1]) - pm.math.dot(x, w[0]), observed=y)
    return model


def multinomial_transposed(x, y, k):
    """Own names, pm.Data, (K, D) weights as ±1, bias, scale, Multinomial(n=1)."""
    with pm.Model() as model:
        xd = pm.Data("X", x)
        wts = pm.Bernoulli("weights", p=0.3, shape=(k, x.shape[1]))
        bias = pm.Normal("intercept", 0.0, 2.0, shape=k)
        s = pm.HalfNormal("s", 1.5)
        eta = s * pm.math.dot(xd, (2 * wts - 1).T) + bias
        yd = pm.Data("Y", np.eye(k, dtype=np.int64)[y])
        pm.Multinomial("y_obs", n=1, p=pm.math.softmax(eta, axis=-1), observed=yd)
    return model


def logistic_single_sigmoid(x, y):
    """One ±1 vector, scalar bias, p = invlogit(...)."""
    with pm.Model() as model:
        w = pm.Bernoulli("w", p=0.6, shape=x.shape[1])
        b = pm.Normal("b", 0.0, 3.0)
        pm.Bernoulli("y_obs", p=pm.math.invlogit(pm.math.dot(x, 2 * w - 1) + b), observed=y)
    return model


def two_output_columns_reversed(x, y):
    """Weights (D, 2), logit = 0.7 * (x @ w[:, 0] - x @ w[:, 1]): transposed and reversed."""
    with pm.Model() as model:
        w = pm.Bernoulli("w", p=0.5, shape=(x.shape[1], 2))
        pm.Bernoulli(
            "y_obs",
            logit_p=0.7 * (pm.math.dot(x, w[:, 0]) - pm.math.dot(x, w[:, 1])),
            observed=y,
        )
    return model


CASES = {
    "forum_softmax": (lambda x, y: forum_softmax(x, y % 2, 2), "softmax", "categorical", "01"),
    "jags_two_output": (lambda x, y: jags_two_output(x, y % 2), "two_output", "bernoulli", "01"),
    "multinomial_transposed": (
        lambda x, y: multinomial_transposed(x, y % 2, 2),
        "softmax",
        "multinomial",
        "pm1",
    ),
    "single_sigmoid": (
        lambda x, y: logistic_single_sigmoid(x, y % 2),
        "single",
        "bernoulli",
        "pm1",
    ),
    "two_output_reversed": (
        lambda x, y: two_output_columns_reversed(x, y % 2),
        "two_output",
        "bernoulli",
        "01",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_recognised_description_has_the_models_log_density(name):
    make, form, likelihood, encoding = CASES[name]
    x, y = _data()
    model = make(x, y)
    spec = get_spec(model)
    assert (spec.form, spec.likelihood, spec.encoding) == (form, likelihood, encoding)
    xs, ys = model_data(model)
    np.testing.assert_array_equal(xs, x)
    np.testing.assert_array_equal(ys, y % 2)
    # the model's own logp equals the numpy reference at fresh random points
    logp = model.compile_logp()
    r = np.random.default_rng(SEED + 1)
    for _ in range(4):
        point = model.initial_point()
        w_user = r.integers(0, 2, size=spec.w_shape)
        point[model.rvs_to_values[model[spec.names.w]].name] = w_user
        b = s = None
        if spec.bias:
            b = r.normal(size=point[spec.names.b].shape)
            point[spec.names.b] = b
        if spec.learned_scale:
            vv = model.rvs_to_values[model[spec.names.scale]].name
            point[vv] = np.asarray(r.normal(scale=0.4))
            s = np.exp([point[vv]])
        ref = log_posterior(
            spec, xs, ys, spec.to_canonical(w_user)[None], None if b is None else b[None], s
        )[0]
        # PyMC keeps constants such as p=0.5 as float32 and takes their log in float32: the
        # model's own logp carries ~1e-9 relative rounding that the float64 reference does not
        assert float(logp(point)) == pytest.approx(ref, rel=1e-8)
    # the description survives the round trip through result attributes
    assert bayesbin.ModelSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize(
    "name", ["forum_softmax", "jags_two_output", "multinomial_transposed", "two_output_reversed"]
)
def test_incremental_gibbs_on_a_hand_written_model_is_exact(name):
    """pm.sample(step=IncrementalGibbs([w])) on the user's own model, against enumeration."""
    make = CASES[name][0]
    x, y = _data(n=30, d=3)
    model = make(x, y)
    spec = get_spec(model)
    fixed = {}
    if spec.bias:
        fixed[spec.names.b] = np.full(model.initial_point()[spec.names.b].shape, 0.3)
    if spec.learned_scale:
        fixed[spec.names.scale] = 0.8
    states, probs = enumerate_posterior(model, fixed=fixed, var_names=(spec.names.w,))
    w_rv = model[spec.names.w]
    with model:
        steps = [bayesbin.IncrementalGibbs([w_rv])]
        others = [model[n] for n in fixed]
        if others:  # hold bias and scale at the enumerated values
            steps.insert(0, pm.Metropolis(others, tune=False, scaling=1e-12))
        idata = pm.sample(
            draws=1500,
            tune=100,
            chains=2,
            cores=1,
            step=steps,
            initvals=fixed or None,
            random_seed=SEED,
            progressbar=False,
            compute_convergence_checks=False,
        )
    w = idata.posterior[spec.names.w].values
    draws = w.reshape(w.shape[0], w.shape[1], -1).astype(np.uint8)
    assert_bits_match_exact(draws, states, probs)


def test_sample_find_mode_predict_and_bits_on_a_hand_written_model():
    x, y = _data(n=120, d=4, k=3, seed=SEED + 2)
    model = multinomial_transposed(x, y, 3)
    assert bayesbin.sampling.resolve_sampler(model) == "incremental"
    mode = bayesbin.find_mode(model, random_seed=1)
    assert set(mode) == {"weights", "intercept", "s"}
    assert mode["weights"].shape == (3, 4)
    res = bayesbin.sample(model, draws=60, tune=60, chains=2, cores=1, random_seed=2)
    assert res.posterior.attrs["bayesbin_sampler"] == "incremental"
    assert "weights" in res.posterior and res.posterior["weights"].dtype == np.int8
    spec = get_spec(model)
    # lp reported by the sampler is the model's own log density of each draw
    logp = model.compile_logp()
    post = res.posterior
    for c, d in [(0, 0), (1, 59)]:
        point = {
            "weights": post["weights"].values[c, d].astype(np.int64),
            "intercept": post["intercept"].values[c, d],
            "s_log__": np.log(post["s"].values[c, d]),
        }
        assert float(res.sample_stats["lp"].values[c, d]) == pytest.approx(
            float(logp(point)), rel=1e-8
        )
    proba = bayesbin.posterior_predictive_proba(res, x)
    assert proba.shape == (120, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # the same predictive through a classifier rebuilt from the result, and in bits
    clf = bayesbin.BayesBinClassifier.from_result(res)
    np.testing.assert_allclose(clf.predict_proba(x), proba)
    bits = bayesbin.to_bits(res, rule="draws")
    np.testing.assert_allclose(bits.predict_proba(x), proba, atol=1e-9)
    assert (spec.names.x, spec.names.y) == ("X", "Y")
    bayesbin.set_data(model, x[:5])
    assert model["X"].get_value().shape == (5, 4) and model["Y"].get_value().shape == (5, 3)
    with pytest.raises(ValueError, match="constant arrays"):
        bayesbin.set_data(forum_softmax(x, y % 2, 2), x)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        ("two_bernoulli", "exactly one Bernoulli weight variable"),
        ("softmax_no_axis", "axis=-1"),
        ("gamma_scale", "neither the one Normal"),
        ("potential", "potentials"),
        ("extra_term", "must enter the logits"),
        ("squared_bias", "must enter the logits"),
        ("nonzero_mean_bias", "Normal\\(0, sigma\\)"),
        ("probit", "Bernoulli\\(logit_p=eta\\)"),
        ("random_prior_p", "'q' \\(BetaRV\\) is neither"),
    ],
)
def test_a_model_outside_the_family_is_refused_naming_the_part(build, match):
    x, y = _data()
    d = x.shape[1]
    with pm.Model() as model:
        if build == "two_bernoulli":
            w = pm.Bernoulli("w", 0.5, shape=d)
            v = pm.Bernoulli("v", 0.5, shape=d)
            pm.Bernoulli("y_obs", logit_p=pm.math.dot(x, w - v), observed=y % 2)
        elif build == "softmax_no_axis":
            w = pm.Bernoulli("w", 0.5, shape=(d, 2))
            pm.Categorical("y_obs", p=pm.math.softmax(pm.math.dot(x, w)), observed=y % 2)
        elif build == "gamma_scale":
            w = pm.Bernoulli("w", 0.5, shape=d)
            s = pm.Gamma("s", 2.0, 2.0)
            pm.Bernoulli("y_obs", logit_p=s * pm.math.dot(x, w), observed=y % 2)
        elif build == "potential":
            w = pm.Bernoulli("w", 0.5, shape=d)
            pm.Potential("pen", -w.sum())
            pm.Bernoulli("y_obs", logit_p=pm.math.dot(x, w), observed=y % 2)
        elif build == "extra_term":
            w = pm.Bernoulli("w", 0.5, shape=d)
            b = pm.Normal("b", 0.0, 1.0)
            pm.Bernoulli("y_obs", logit_p=pm.math.dot(x, w) + b**2, observed=y % 2)
        elif build == "squared_bias":
            w = pm.Bernoulli("w", 0.5, shape=(d, 2))
            b = pm.Normal("b", 0.0, 1.0, shape=2)
            eta = pm.math.dot(x, w) + b * b
            pm.Categorical("y_obs", p=pm.math.softmax(eta, axis=-1), observed=y % 2)
        elif build == "nonzero_mean_bias":
            w = pm.Bernoulli("w", 0.5, shape=d)
            b = pm.Normal("b", 1.0, 1.0)
            pm.Bernoulli("y_obs", logit_p=pm.math.dot(x, w) + b, observed=y % 2)
        elif build == "probit":
            w = pm.Bernoulli("w", 0.5, shape=d)
            eta = pm.math.dot(x, 2 * w - 1)
            pm.Bernoulli("y_obs", p=0.5 * (1 + pm.math.erf(eta / np.sqrt(2))), observed=y % 2)
        elif build == "random_prior_p":
            q = pm.Beta("q", 1.0, 1.0)
            w = pm.Bernoulli("w", q, shape=d)
            pm.Bernoulli("y_obs", logit_p=pm.math.dot(x, w), observed=y % 2)
    with pytest.raises(RecognitionError, match=match):
        recognise(model)
    assert not bayesbin.linear.is_bayesbin_model(model)
    # bayesbin's own samplers refuse it by name; "auto" falls back to PyMC with a message
    with pytest.raises(ValueError, match=match):
        bayesbin.sampling.resolve_sampler(model, "incremental")
    if build != "random_prior_p":  # its Beta variable is continuous: auto gives a compound step
        with pytest.warns(UserWarning, match="falls back"):
            assert bayesbin.sampling.resolve_sampler(model) == "pymc-gibbs"


def test_bits_of_the_recognised_model_are_written_back_in_its_layout():
    """A (K, D) weight matrix: the step returns it in the model's orientation, not canonical."""
    x, y = _data(n=50, d=3, k=3, seed=SEED + 3)
    model = multinomial_transposed(x, y, 3)
    spec = get_spec(model)
    assert spec.w_shape == (3, 3) and spec.layout.perm == (1, 0)
    with model:
        step = bayesbin.IncrementalGibbs([model["weights"], model["intercept"], model["s"]])
    point = model.initial_point()
    rng = np.random.default_rng(SEED)
    w0 = rng.integers(0, 2, size=(3, 3))
    point["weights"] = w0
    step.set_rng(np.random.default_rng(1))
    new, stats = step.step(point)
    # with model_logp equal to the model's own logp at the returned point
    logp = model.compile_logp()
    assert stats[0]["model_logp"] == pytest.approx(float(logp(new)), rel=1e-8)
