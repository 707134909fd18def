"""Tests for the incremental exact single-site sampler: kernels, PyMC step, exactness, chains."""

from __future__ import annotations

import itertools
import math
import warnings

import cloudpickle
import numpy as np
import pymc as pm
import pytest
from helpers import (
    assert_bits_match_exact,
    assert_mean_matches,
    bit_draws,
    enumerate_posterior,
    grid_posterior,
    sample_with_steps,
)
from pymc.step_methods.compound import Competence

import bayesbin
from bayesbin.linear import get_spec, model_data
from bayesbin.samplers import IncrementalGibbs
from bayesbin.samplers import kernels as fk
from bayesbin.samplers.kernels import continuous as fk_continuous

SEED = sum(ord(c) for c in "test_incremental")
ALPHA_TEST = 1e-3  # family-wise level of every statistical test in this file


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bayesbin.OneVectorTrapWarning)
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _data(n, d, k, seed, levels=4, step=0.35, density=0.7):
    r = np.random.default_rng(seed)
    x = r.integers(1, levels + 1, size=(n, d)) * step
    x[r.random((n, d)) > density] = 0.0
    y = r.integers(0, k, n)
    return x, y


def _build(form, likelihood, encoding, bias, scale, x, y, k=3, prior_p=0.5, **kw):
    if form == "softmax":
        return bayesbin.binary_softmax(
            x,
            y,
            k,
            likelihood=likelihood,
            encoding=encoding,
            bias=bias,
            scale=scale,
            prior_p=prior_p,
            **kw,
        )
    return bayesbin.binary_logistic(
        x,
        (y > 0).astype(int),
        form=form,
        encoding=encoding,
        bias=bias,
        scale=scale,
        prior_p=prior_p,
        **kw,
    )


def _problem(model):
    spec = get_spec(model)
    x, y = model_data(model)
    return fk.build_problem(
        x, y, form=spec.form, encoding=spec.encoding, n_classes=spec.n_classes, prior_p=spec.prior_p
    )


def _point(model, rng, w=None):
    """Random point: w random, b and scale random if present (value space)."""
    spec = get_spec(model)
    pt = dict(model.initial_point())
    pt["w"] = rng.integers(0, 2, size=spec.weight_shape) if w is None else w
    if spec.bias:
        pt["b"] = rng.normal(size=pt["b"].shape)
    if spec.learned_scale:
        pt["scale_log__"] = np.asarray(rng.normal(0.0, 0.4))
    scale = math.exp(float(pt["scale_log__"])) if spec.learned_scale else spec.fixed_scale
    bias = np.asarray(pt["b"]) if spec.bias else 0.0
    return pt, scale, bias


FORMS = [
    ("softmax", "categorical"),
    ("softmax", "multinomial"),
    ("single", "bernoulli"),
    ("two_output", "bernoulli"),
]


# ----------------------------------------------------------------------------------------------
# Δlogp of a flip equals the model's own logp difference
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("form", "likelihood"), FORMS)
@pytest.mark.parametrize("encoding", ["01", "pm1"])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("scale", [False, 0.7, True])
def test_delta_matches_model_logp(form, likelihood, encoding, bias, scale):
    rng = np.random.default_rng(SEED)
    x, y = _data(30, 4, 3, SEED)
    prior = rng.uniform(
        0.1, 0.9, size=(4, 3) if form == "softmax" else ((4,) if form == "single" else (2, 4))
    )
    model = _build(form, likelihood, encoding, bias, scale, x, y, prior_p=prior)
    prob = _problem(model)
    logp = model.compile_logp()
    pt, s, b = _point(model, rng)
    state = fk.init(prob, pt["w"], s, b)
    # also after sweeps, so the incrementally updated cache is what is tested
    for _rep in range(3):
        wshape = get_spec(model).weight_shape
        pt["w"] = state.w.reshape(wshape).astype(np.int64)
        lp0 = logp(pt)
        assert state.loglik + fk.exact_logprior(prob, state.w) == pytest.approx(
            lp0 - _cont_logprior(model, pt), abs=1e-8
        )
        bits = range(prob.n_bits)
        for bit in bits:
            w2 = state.w.copy()
            w2[bit] ^= 1
            pt2 = dict(pt, w=w2.reshape(wshape).astype(np.int64))
            want = logp(pt2) - lp0
            got = fk.flip_delta(prob, state, bit)
            assert abs(got - want) < 1e-8, (bit, got, want)
        order, u = fk.draw_scan(prob, rng, "random")
        state, _ = fk.sweep(prob, state, order, u, beta=0.6, mode="gibbs")


def _cont_logprior(model, pt):
    spec = get_spec(model)
    lp = 0.0
    if spec.bias:
        lp += fk.bias_logprior(pt["b"], spec.bias_sigma)
    if spec.learned_scale:
        lp += fk.log_scale_logprior(float(pt["scale_log__"]), spec.scale_sigma)
    return lp


@pytest.mark.parametrize(
    ("form", "likelihood"), [("softmax", "categorical"), ("two_output", "bernoulli")]
)
@pytest.mark.parametrize("xmult", [2.0, 40.0, 400.0])
def test_delta_large_logit_steps(form, likelihood, xmult):
    """Several product blocks per column (xmult 2) and the log-sum-exp path (40, 400)."""
    rng = np.random.default_rng(SEED + 1)
    x, y = _data(400 if xmult == 2.0 else 25, 3, 3, SEED + 1)
    model = _build(form, likelihood, "pm1", False, False, x * xmult, y)
    prob = _problem(model)
    logp = model.compile_logp()
    pt, s, b = _point(model, rng)
    state = fk.init(prob, pt["w"], s, b)
    if xmult == 2.0:
        assert 0 < state.block < np.diff(prob.indptr).min() / 2
    else:
        assert state.block == 0
    for _ in range(2):
        wshape = get_spec(model).weight_shape
        pt["w"] = state.w.reshape(wshape).astype(np.int64)
        lp0 = logp(pt)
        for bit in range(prob.n_bits):
            w2 = state.w.copy()
            w2[bit] ^= 1
            want = logp(dict(pt, w=w2.reshape(wshape).astype(np.int64))) - lp0
            got = fk.flip_delta(prob, state, bit)
            assert abs(got - want) <= 1e-8 * max(1.0, abs(want)), (bit, got, want)
        order, u = fk.draw_scan(prob, rng, "systematic")
        state, _ = fk.sweep(prob, state, order, u, beta=1e-3, mode="metropolis")
    assert fk.exact_loglik(prob, state.w, s, b) == pytest.approx(state.loglik, rel=1e-10)


@pytest.mark.parametrize("form", ["softmax", "two_output"])
def test_fast_path_stays_exact_up_to_its_threshold(form):
    """Flip factors with |a| just under the fast path's limit, on rows with P near 1 and 0."""
    from bayesbin.samplers.kernels.problem import _FAST_MAX_STEP

    rng = np.random.default_rng(SEED + 7)
    n, d, k = 300, 4, 3
    x = rng.integers(0, 3, size=(n, d)) / 2.0
    x[rng.random((n, d)) < 0.3] = 0.0
    y = rng.integers(0, k if form == "softmax" else 2, n)
    prob = fk.build_problem(x, y, form=form, encoding="pm1", n_classes=k, prior_p=0.5)
    scale = 0.98 * _FAST_MAX_STEP / (prob.unit * prob.xmax)
    bias = rng.normal(scale=8.0, size=prob.n_cols)  # saturated rows: P within 1e-7 of 0 or 1
    state = fk.init(prob, rng.integers(0, 2, prob.n_bits), scale, bias)
    assert state.block > 0  # the fast (factor) path
    for _ in range(3):
        ll0 = fk.exact_loglik(prob, state.w, scale, bias)
        for bit in range(prob.n_bits):
            w2 = state.w.copy()
            w2[bit] ^= 1
            want = fk.exact_loglik(prob, w2, scale, bias) - ll0
            got = fk.delta_loglik(prob, state, bit)
            assert abs(got - want) <= 1e-8 * max(1.0, abs(want)), (bit, got, want)
        order, u = fk.draw_scan(prob, rng, "random")
        state, _ = fk.sweep(prob, state, order, u, beta=1.0, mode="metropolis")
    assert fk.exact_loglik(prob, state.w, scale, bias) == pytest.approx(state.loglik, rel=1e-10)


@pytest.mark.parametrize("owned", [("w",), ("w", "b"), ("w", "scale"), ("w", "b", "scale")])
def test_model_logp_stat_matches_model(owned):
    """The step's ``model_logp`` stat is the model's log-posterior at the point it returns."""
    rng = np.random.default_rng(SEED + 2)
    x, y = _data(30, 3, 3, SEED + 2)
    model = _build("softmax", "categorical", "01", True, True, x, y)
    logp = model.compile_logp()
    with model:
        step = IncrementalGibbs([model[n] for n in owned])
    step.set_rng(rng)
    pt, _, _ = _point(model, rng)
    start = dict(pt)
    for _ in range(4):
        pt, stats = step.step(pt)
        assert stats[0]["model_logp"] == pytest.approx(float(logp(pt)), abs=1e-8)
    for name, vv in (("b", "b"), ("scale", "scale_log__")):
        moved = not np.array_equal(pt[vv], start[vv])
        assert moved == (name in owned), name


def test_adaptation_frozen_after_tuning():
    rng = np.random.default_rng(SEED + 12)
    x, y = _data(30, 3, 2, SEED + 12)
    model = _build("single", "bernoulli", "01", True, True, x, y)
    with model:
        step = IncrementalGibbs([model["w"], model["b"], model["scale"]], continuous_steps=3)
    step.set_rng(rng)
    pt, _, _ = _point(model, rng)
    step.tune = True
    for _ in range(60):  # past the first covariance window
        pt, _ = step.step(pt)
    step.stop_tuning()
    chol, lam = step._tuner.chol.copy(), step._tuner.log_lambda
    for _ in range(20):
        pt, stats = step.step(pt)
    np.testing.assert_array_equal(step._tuner.chol, chol)
    assert step._tuner.log_lambda == lam
    step.reset_tuning()
    assert step._tuner.chol is None and step._cache is None


@pytest.mark.parametrize("form", ["softmax", "two_output"])
def test_continuous_gradient_and_fisher(form):
    """Analytic gradient and Fisher information of the likelihood in (bias, log scale)."""
    rng = np.random.default_rng(SEED + 13)
    x, y = _data(50, 3, 3, SEED + 13)
    model = _build(form, "categorical", "pm1", True, True, x, y)
    prob = _problem(model)
    c = prob.n_cols
    state = fk.init(prob, rng.integers(0, 2, prob.n_bits), 0.8, rng.normal(size=c))
    prior = fk.ContinuousPrior(n_bias=c, bias_sigma=5.0, learn_scale=True, scale_sigma=1.0)
    theta = np.append(state.bias, math.log(state.scale))

    def ll(t):
        s_, b_ = fk.split_theta(prior, t, state.scale, state.bias)
        return fk.continuous_loglik(prob, state.A, s_, b_)

    h = 1e-5
    eye = np.eye(c + 1)
    grad_fd = np.array([(ll(theta + h * e) - ll(theta - h * e)) / (2 * h) for e in eye])
    ll0, gscale, gbias = fk.continuous_loglik_grad(prob, state.A, state.scale, state.bias)
    assert ll0 == pytest.approx(state.loglik, abs=1e-10)
    g = np.append(gbias, gscale * state.scale)  # chain rule to log scale
    np.testing.assert_allclose(g, grad_fd, rtol=1e-6, atol=1e-6)
    hess_fd = np.array(
        [
            [
                (
                    ll(theta + h * (a + b))
                    - ll(theta + h * (a - b))
                    - ll(theta - h * (a - b))
                    + ll(theta - h * (a + b))
                )
                / (4 * h * h)
                for b in eye
            ]
            for a in eye
        ]
    )
    fisher = fk.theta_precision(prob, state, prior)
    fisher -= np.diag([1 / 25.0] * c + [2 * state.scale**2])  # prior precision
    # -Hessian = Fisher, except d2/dtau2 which also carries the gradient in tau
    want = -hess_fd
    want[-1, -1] += g[-1]
    np.testing.assert_allclose(fisher, want, rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------------------------
# Drift of the cache
# ----------------------------------------------------------------------------------------------


def test_cache_drift_bounded_without_refresh():
    r = np.random.default_rng(SEED + 3)
    n, d, k = 3000, 60, 4
    x = r.normal(size=(n, d)) * (r.random((n, d)) < 0.4)  # continuous values: int32 codes
    y = r.integers(0, k, n)
    prob = fk.build_problem(x, y, form="softmax", encoding="pm1", n_classes=k)
    assert prob.codes.dtype == np.int32
    bias = r.normal(size=k)
    state = fk.init(prob, r.integers(0, 2, prob.n_bits), 0.3, bias)
    flips = 0
    for _ in range(300):
        order, u = fk.draw_scan(prob, r, "random")
        state, info = fk.sweep(prob, state, order, u, beta=0.02, mode="metropolis")
        flips += info.n_flips
    assert flips > 10_000  # the cache really was updated many times
    exact = fk.exact_loglik(prob, state.w, 0.3, bias)
    assert abs(state.loglik - exact) / abs(exact) < 1e-9
    state, rinfo = fk.refresh(prob, state)
    assert rinfo.loglik_drift < 1e-9
    assert rinfo.prob_drift < 1e-9
    assert rinfo.activation_drift < 1e-9
    assert state.loglik == exact


def test_step_refreshes_on_schedule_and_on_change():
    rng = np.random.default_rng(SEED + 4)
    x, y = _data(40, 3, 3, SEED + 4)
    model = _build("softmax", "categorical", "01", True, False, x, y)
    with model:
        step = IncrementalGibbs([model["w"]], refresh_every=3, sweeps_per_step=1)
    step.set_rng(rng)
    pt, _, _ = _point(model, rng)
    flags = []
    for _ in range(7):
        pt, stats = step.step(pt)
        flags.append(stats[0]["refreshed"])
        assert stats[0]["max_drift"] < 1e-12
    # first step builds the cache; then every 3 sweeps
    assert flags == [True, False, False, True, False, False, True]
    pt = dict(pt, b=pt["b"] + 0.1)  # another step moved the bias
    _, stats = step.step(pt)
    assert stats[0]["refreshed"]
    w = pt["w"].copy()
    w[0, 0] ^= 1  # another step moved w
    _, stats = step.step(dict(pt, w=w))
    assert stats[0]["refreshed"]


# ----------------------------------------------------------------------------------------------
# Exactness against enumeration (continuous variables fixed)
# ----------------------------------------------------------------------------------------------


def _run_fixed(model, fixed_values, step_kwargs, *, draws=3000, chains=2, burn=50, seed=SEED):
    """Run the step alone with the continuous variables held fixed; (chains, draws, k) bits."""
    with model:
        step = IncrementalGibbs([model["w"]], **step_kwargs)
    k = int(np.prod(get_spec(model).weight_shape))
    out = np.empty((chains, draws, k), dtype=np.uint8)
    for c in range(chains):
        step.reset_tuning()
        step.set_rng(np.random.default_rng([seed, c]))
        pt = dict(model.initial_point())
        pt.update(fixed_values)
        for t in range(burn + draws):
            pt, _ = step.step(pt)
            if t >= burn:
                out[c, t - burn] = np.asarray(pt["w"]).reshape(-1)
    return out


@pytest.mark.parametrize(
    ("mode", "scan"), list(itertools.product(("gibbs", "metropolis"), ("random", "systematic")))
)
def test_exact_softmax_fixed_bias_scale(mode, scan):
    x, y = _data(12, 3, 3, SEED + 5)
    model = _build("softmax", "categorical", "01", True, 0.8, x, y, prior_p=0.4)
    bias = np.array([0.3, -0.2, 0.1])
    states, probs = enumerate_posterior(model, fixed={"b": bias})
    draws = _run_fixed(model, {"b": bias}, {"mode": mode, "scan": scan})
    assert_bits_match_exact(draws, states, probs, alpha=ALPHA_TEST)


@pytest.mark.parametrize(
    ("form", "likelihood", "encoding", "bias", "scale", "mode", "scan"),
    [
        ("two_output", "bernoulli", "pm1", True, True, "gibbs", "random"),
        ("two_output", "bernoulli", "01", False, 1.3, "metropolis", "systematic"),
        ("single", "bernoulli", "01", True, False, "metropolis", "random"),
        ("single", "bernoulli", "pm1", False, True, "gibbs", "systematic"),
        ("softmax", "multinomial", "pm1", False, True, "metropolis", "random"),
    ],
)
def test_exact_other_forms(form, likelihood, encoding, bias, scale, mode, scan):
    """Logistic forms, multinomial likelihood, ±1 weights, fixed and learned-but-held scale."""
    d = 2 if form == "softmax" else 4
    x, y = _data(10, d, 3, SEED + 6)
    model = _build(form, likelihood, encoding, bias, scale, x, y, prior_p=0.6)
    fixed, fixed_values = {}, {}
    if bias:
        b = 0.4 if form != "softmax" else np.array([0.2, -0.3, 0.0])
        fixed["b"] = b
        fixed_values["b"] = np.asarray(b)
    if scale is True:
        fixed["scale"] = 0.7
        fixed_values["scale_log__"] = np.asarray(math.log(0.7))
    states, probs = enumerate_posterior(model, fixed=fixed)
    kwargs = {"mode": mode, "scan": scan, "sweeps_per_step": 2 if form == "single" else 1}
    draws = _run_fixed(model, fixed_values, kwargs, draws=2000 if form == "single" else 3000)
    assert_bits_match_exact(draws, states, probs, alpha=ALPHA_TEST)


def test_exact_with_frozen_bits():
    """Bits with prior p in {0, 1} take their only feasible value; the rest are exact."""
    x, y = _data(10, 3, 2, SEED + 7)
    prior = np.array([[0.5, 0.0], [1.0, 0.5], [0.3, 0.7]])
    model = _build("softmax", "categorical", "01", False, False, x, y, k=2, prior_p=prior)
    states, probs = enumerate_posterior(model)
    draws = _run_fixed(model, {}, {"mode": "gibbs"}, draws=2000)
    assert np.all(draws[:, :, 1] == 0) and np.all(draws[:, :, 2] == 1)
    assert_bits_match_exact(draws, states, probs, alpha=ALPHA_TEST)


def test_beta_zero_samples_the_prior():
    x, y = _data(20, 3, 3, SEED + 8)
    prior = np.random.default_rng(SEED).uniform(0.1, 0.9, size=(3, 3))
    model = _build("softmax", "categorical", "01", False, False, x, y, prior_p=prior)
    states = np.array(list(itertools.product((0, 1), repeat=9)), dtype=np.uint8)
    p = prior.reshape(-1)
    probs = np.prod(np.where(states == 1, p, 1 - p), axis=1)
    draws = _run_fixed(model, {}, {"beta": 0.0, "mode": "metropolis"}, draws=2000)
    assert_bits_match_exact(draws, states, probs, alpha=ALPHA_TEST)


# ----------------------------------------------------------------------------------------------
# Exactness jointly with the continuous variables (grid-integrated posterior)
# ----------------------------------------------------------------------------------------------


def _sample(model, make_steps, *, draws, tune, seed=SEED, **kwargs):
    return sample_with_steps(model, make_steps, draws=draws, tune=tune, seed=seed, **kwargs)


def _check_joint(idata, states, points, probs, names):
    marg = probs.sum(axis=1)
    assert_bits_match_exact(bit_draws(idata), states, marg, alpha=ALPHA_TEST)
    gp = probs.sum(axis=0)
    for name in names:
        if name == "b":
            vals, samples = points["b"], idata.posterior["b"].values
        else:
            vals, samples = np.exp(points["scale_log__"]), idata.posterior["scale"].values
        mean = float(gp @ vals)
        sd = float(np.sqrt(gp @ (vals - mean) ** 2))
        assert_mean_matches(samples, mean, sd, alpha=ALPHA_TEST, n_tests=len(names))


@pytest.fixture(scope="module")
def logistic_bias_model():
    x, y = _data(16, 4, 2, SEED + 9)
    model = _build("single", "bernoulli", "pm1", True, 0.9, x, y, prior_p=0.45, bias_sigma=2.0)
    grid = {"b": np.linspace(-8.0, 8.0, 641)}
    states, points, probs = grid_posterior(model, grid)
    return model, states, points, probs


def test_joint_with_nuts_bias(logistic_bias_model):
    model, states, points, probs = logistic_bias_model
    idata = _sample(
        model, lambda: [pm.NUTS([model["b"]]), IncrementalGibbs([model["w"]])], draws=2000, tune=500
    )
    _check_joint(idata, states, points, probs, ["b"])


def test_joint_owning_bias(logistic_bias_model):
    model, states, points, probs = logistic_bias_model
    idata = _sample(
        model, lambda: [IncrementalGibbs([model["w"], model["b"]])], draws=3000, tune=500
    )
    assert idata.sample_stats["cont_accept"].mean() > 0.1
    _check_joint(idata, states, points, probs, ["b"])


def test_joint_owning_bias_and_scale():
    x, y = _data(24, 2, 2, SEED + 10)
    model = _build(
        "two_output",
        "bernoulli",
        "01",
        True,
        True,
        x,
        y,
        prior_p=0.5,
        bias_sigma=1.5,
        scale_sigma=1.5,
    )
    grid = {"b": np.linspace(-6.0, 6.0, 61), "scale_log__": np.linspace(-9.0, 2.5, 70)}
    states, points, probs = grid_posterior(model, grid)
    idata = _sample(
        model,
        lambda: [IncrementalGibbs([model["w"], model["b"], model["scale"]], continuous_steps=5)],
        draws=3000,
        tune=600,
    )
    _check_joint(idata, states, points, probs, ["b", "scale"])


# ----------------------------------------------------------------------------------------------
# PyMC chain handling
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chain_model():
    x, y = _data(30, 3, 3, SEED + 11)
    return _build("softmax", "categorical", "01", True, True, x, y)


def _all_step(model):
    return lambda: [IncrementalGibbs([model["w"], model["b"], model["scale"]])]


def test_same_seed_same_draws_and_no_leak(chain_model):
    model = chain_model
    a = _sample(model, _all_step(model), draws=60, tune=40)
    b = _sample(model, _all_step(model), draws=60, tune=40)
    for name in ("w", "b", "scale"):
        np.testing.assert_array_equal(a.posterior[name].values, b.posterior[name].values)
    # chains are not copies of each other
    assert not np.array_equal(a.posterior["b"].values[0], a.posterior["b"].values[1])
    # one step object reused for a second run starts from scratch (no leaked cache/adaptation)
    with model:
        step = IncrementalGibbs([model["w"], model["b"], model["scale"]])
    c = _sample(model, lambda: [step], draws=60, tune=40)
    d = _sample(model, lambda: [step], draws=60, tune=40)
    np.testing.assert_array_equal(c.posterior["b"].values, a.posterior["b"].values)
    np.testing.assert_array_equal(d.posterior["b"].values, a.posterior["b"].values)
    np.testing.assert_array_equal(d.posterior["w"].values, a.posterior["w"].values)


@pytest.mark.parametrize("mp_ctx", ["fork", "forkserver"])
def test_parallel_chains_match_sequential(chain_model, mp_ctx):
    """Worker processes (forked or unpickled) give exactly the sequential draws."""
    model = chain_model
    with model:
        step = IncrementalGibbs([model["w"], model["b"], model["scale"]])
    seq = _sample(model, lambda: [step], draws=40, tune=30, cores=1)
    # the same, already used step object goes to the workers (as it is, or pickled)
    par = _sample(model, lambda: [step], draws=40, tune=30, cores=2, mp_ctx=mp_ctx)
    for name in ("w", "b", "scale"):
        np.testing.assert_array_equal(seq.posterior[name].values, par.posterior[name].values)
    stats = par.sample_stats
    for name in (
        "n_flips",
        "flip_rate",
        "lp",
        "loglik",
        "refreshed",
        "max_drift",
        "cont_accept",
        "cont_step",
    ):
        assert name in stats, name
        assert stats[name].shape[:2] == (2, 40)


def test_step_pickles_and_resumes_identically(chain_model):
    model = chain_model
    with model:
        step = IncrementalGibbs([model["w"]])
    pt = dict(model.initial_point())
    step.set_rng(np.random.default_rng(5))
    pt, _ = step.step(pt)  # builds a cache
    clone = cloudpickle.loads(cloudpickle.dumps(step))
    assert clone._cache is None  # derived data is not shipped
    step.set_rng(np.random.default_rng(7))
    clone.set_rng(np.random.default_rng(7))
    p1, p2 = dict(pt), dict(pt)
    for _ in range(5):
        p1, s1 = step.step(p1)
        p2, s2 = clone.step(p2)
        np.testing.assert_array_equal(p1["w"], p2["w"])
        assert s1[0]["model_logp"] == pytest.approx(s2[0]["model_logp"], abs=1e-9)


def test_sampling_state_roundtrip(chain_model):
    model = chain_model
    with model:
        step = IncrementalGibbs([model["w"]], mode="metropolis", scan="systematic")
    state = step.sampling_state
    step.step(dict(model.initial_point()))
    step.sampling_state = state
    assert step._cache is None and step._sweeps_since_refresh == 0


# ----------------------------------------------------------------------------------------------
# Competence and input validation
# ----------------------------------------------------------------------------------------------


def test_competence(chain_model):
    model = chain_model
    with model:
        assert IncrementalGibbs.competence(model["w"], False) == Competence.IDEAL
        assert IncrementalGibbs.competence(model["b"], True) == Competence.INCOMPATIBLE
        methods = [IncrementalGibbs, *pm.STEP_METHODS]
        _, selected = pm.sampling.mcmc.assign_step_methods(model, methods=methods)
        assert [v.name for v in selected[IncrementalGibbs]] == ["w"]
    relaxed = bayesbin.binary_softmax(*_data(10, 2, 2, 0), 2, relaxed=True)
    with relaxed:
        assert IncrementalGibbs.competence(relaxed["w"], True) == Competence.INCOMPATIBLE
    with pm.Model() as plain:
        z = pm.Bernoulli("w", 0.5, shape=3)
    with plain:
        assert IncrementalGibbs.competence(z, False) == Competence.INCOMPATIBLE


def test_bad_arguments(chain_model):
    model = chain_model
    with model:
        with pytest.raises(ValueError, match="mode"):
            IncrementalGibbs([model["w"]], mode="heatbath")
        with pytest.raises(ValueError, match="scan"):
            IncrementalGibbs([model["w"]], scan="cyclic")
        with pytest.raises(ValueError, match="refresh_every"):
            IncrementalGibbs([model["w"]], refresh_every=0)
        with pytest.raises(ValueError, match="beta"):
            IncrementalGibbs([model["w"]], beta=-1.0)
        with pytest.raises(ValueError, match="must include the weights"):
            IncrementalGibbs([model["b"]])
    relaxed = bayesbin.binary_softmax(*_data(10, 2, 2, 0), 2, relaxed=True)
    with relaxed, pytest.raises(ValueError, match="relaxed"):
        IncrementalGibbs([relaxed["w"]])
    with pm.Model():
        z = pm.Bernoulli("w", 0.5, shape=3)
        with pytest.raises(ValueError, match="bayesbin"):
            IncrementalGibbs([z])


# ----------------------------------------------------------------------------------------------
# MNIST scale (slow)
# ----------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.needs_data("mnist")
def test_mnist_sweeps_exact_and_drift():
    x, y = bayesbin.load_mnist("train", download=False)
    x = x.astype(np.float64)
    prob = fk.build_problem(x, y, form="softmax", encoding="01", n_classes=10)
    assert prob.codes.dtype == np.uint8
    r = np.random.default_rng(SEED)
    bias = np.log(np.bincount(y, minlength=10) / y.size)
    state = fk.init(prob, r.integers(0, 2, prob.n_bits), 0.5, bias)
    for _ in range(30):
        order, u = fk.draw_scan(prob, r, "random")
        state, _ = fk.sweep(prob, state, order, u)
    exact = fk.exact_loglik(prob, state.w, 0.5, bias)
    assert abs(state.loglik - exact) / abs(exact) < 1e-9
    for bit in r.choice(prob.n_bits, 5, replace=False):
        w2 = state.w.copy()
        w2[bit] ^= 1
        want = fk.exact_loglik(prob, w2, 0.5, bias) - exact
        assert abs(fk.delta_loglik(prob, state, bit) - want) < 1e-8


def test_grouped_rows_loglik_and_rwm_match_the_row_sums():
    """Binary x and integer weights: the grouped log-likelihood equals the row sum, and the
    random-walk moves accept exactly the same proposals either way."""
    rng = np.random.default_rng(5)
    x = rng.integers(0, 2, size=(400, 6)).astype(float)
    y = rng.integers(0, 2, size=400)
    problem = fk.build_problem(x, y, form="two_output", encoding="01")
    w = rng.integers(0, 2, size=12).astype(np.uint8)
    state = fk.init(problem, w, 0.8, np.array([0.3]))
    groups = fk.grouped_rows(problem, state.A)
    assert groups is not None and groups[0].size <= 13
    assert groups[2].sum() == 400 and groups[1].sum() == y.sum()
    for s_, b_ in [(0.8, 0.3), (2.5, -1.0), (40.0, 7.0)]:
        ref = fk.continuous_loglik(problem, state.A, s_, b_)
        assert fk.grouped_loglik(groups, s_, [b_]) == pytest.approx(ref, rel=1e-12, abs=1e-9)
    # the compiled grouped walk and the Python row-sum walk take the same decisions, for every
    # layout of theta (bias and log scale, log scale only, bias only)
    for n_bias, learn_scale in ((1, True), (0, True), (1, False)):
        prior = fk.ContinuousPrior(
            n_bias=n_bias, bias_sigma=5.0, learn_scale=learn_scale, scale_sigma=1.0
        )
        theta = np.array([0.3, np.log(0.8)][1 - n_bias : 1 + int(learn_scale)])
        dim = theta.size
        chol = np.eye(dim) * 0.3
        normals = rng.standard_normal((200, dim))
        log_u = np.log(rng.random(200))
        runs = []
        for grouping in (True, False):
            fk_continuous._GROUP_ROWS = grouping
            try:
                st = fk.init(problem, w, 0.8, np.array([0.3]))
                path = np.empty((200, dim))
                out = fk.continuous_rwm(problem, st, prior, theta, chol, normals, log_u, path=path)
            finally:
                fk_continuous._GROUP_ROWS = True
            runs.append((out, path))
        (a, pa), (b, pb) = runs
        assert a[2] == b[2] and 0 < a[2] < 200, (n_bias, learn_scale)
        np.testing.assert_array_equal(pa, pb)
        np.testing.assert_array_equal(a[1], b[1])
        assert a[0].loglik == pytest.approx(b[0].loglik, rel=1e-12)
        assert a[0].scale == b[0].scale and np.array_equal(a[0].bias, b[0].bias)
    # non-integer activations (grey levels) are never grouped
    xg = x * 0.5 + 0.25 * (x > 0)
    pg = fk.build_problem(xg, y, form="two_output", encoding="01")
    assert fk.grouped_rows(pg, fk.init(pg, w, 1.0, np.zeros(1)).A) is None
    # softmax problems are never grouped
    ps = fk.build_problem(x, y, form="softmax", encoding="01", n_classes=2)
    assert fk.grouped_rows(ps, fk.init(ps, np.zeros(12, np.uint8), 1.0, np.zeros(2)).A) is None


@pytest.mark.parametrize("encoding", ["01", "pm1"])
@pytest.mark.parametrize("div", [1.0, 16.0])
def test_activation_grid_likelihood_and_rwm_match_the_direct_path(encoding, div):
    """Inputs on a dyadic grid (raw integers, digits' k/16): the table-of-exponentials softmax
    likelihood equals the direct one, and the random walk takes the same decisions."""
    rng = np.random.default_rng(11)
    x = rng.integers(0, 17, size=(300, 8)) * (rng.random((300, 8)) < 0.6) / div
    y = rng.integers(0, 4, size=300)
    problem = fk.build_problem(x, y, form="softmax", encoding=encoding, n_classes=4)
    assert fk_continuous.activation_grid(problem) == div
    w = rng.integers(0, 2, size=32).astype(np.uint8)
    state = fk.init(problem, w, 0.9, np.array([0.2, -0.4, 0.0, 0.7]))
    A = state.A
    idx = np.empty((A.shape[1], A.shape[0]), dtype=np.int32)
    amax = np.empty(A.shape[1])
    jmax = fk_continuous._grid_index(A, div, idx, amax)
    assert jmax > 0
    table, eb = np.empty(jmax + 1), np.empty(4)
    # ordinary values, a large scale, and bias gaps so wide that whole rows underflow
    for s_, b_ in [(0.9, [0.2, -0.4, 0.0, 0.7]), (35.0, [1.0, -2.0, 3.0, 0.0]),
                   (60.0, [0.0, -800.0, -790.0, -805.0])]:
        b_ = np.asarray(b_, dtype=np.float64)
        ref = fk.continuous_loglik(problem, A, s_, b_)
        got = fk_continuous._loglik_grid(A, idx, amax, jmax, div, s_, b_, problem.ycol, table, eb)
        assert np.isfinite(got)
        assert got == pytest.approx(ref, rel=1e-12, abs=1e-9)
    prior = fk.ContinuousPrior(n_bias=4, bias_sigma=5.0, learn_scale=True, scale_sigma=1.0)
    theta = np.array([0.2, -0.4, 0.0, 0.7, np.log(0.9)])
    chol = np.eye(5) * 0.05
    normals = rng.standard_normal((150, 5))
    log_u = np.log(rng.random(150))
    runs = []
    for grid in (True, False):
        fk_continuous._USE_GRID = grid
        try:
            st = fk.init(problem, w, 0.9, theta[:4].copy())
            path = np.empty((150, 5))
            out = fk.continuous_rwm(problem, st, prior, theta, chol, normals, log_u, path=path)
        finally:
            fk_continuous._USE_GRID = True
        runs.append((out, path))
    (a, pa), (b, pb) = runs
    assert a[2] == b[2] and 0 < a[2] < 150
    np.testing.assert_array_equal(pa, pb)
    assert a[0].loglik == pytest.approx(b[0].loglik, rel=1e-12)


def test_activation_grid_is_off_for_levels_that_are_not_dyadic():
    rng = np.random.default_rng(12)
    x = rng.integers(0, 256, size=(50, 5)) / 255.0  # MNIST's k/255: not exact on any 2^-m grid
    problem = fk.build_problem(x, rng.integers(0, 3, size=50), form="softmax", encoding="01",
                               n_classes=3)
    assert fk_continuous.activation_grid(problem) == 0.0
