"""Tests for bayesbin.mode.find_mode: enumeration, optimiser contracts, starts, bad arguments."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
from helpers import double_well_model, enumerate_posterior, level_data, to_point_values
from pymc.initial_point import make_initial_point_fn
from scipy import optimize

import bayesbin
from bayesbin.linear import get_spec
from bayesbin.mode import find_mode
from bayesbin.samplers import kernels as fk
from bayesbin.samplers.adapter import model_problem

SEED = sum(ord(c) for c in "test_tempering")


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bayesbin.OneVectorTrapWarning)
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


# ----------------------------------------------------------------------------------------------
# find_mode
# ----------------------------------------------------------------------------------------------


def _enumerated_map(model):
    states, probs = enumerate_posterior(model)
    best = probs.max()
    logp = model.compile_logp()
    i = int(np.argmax(probs))
    pt = dict(model.initial_point(), w=states[i].reshape(get_spec(model).weight_shape))
    return states[probs >= best * (1 - 1e-9)], float(logp(pt))


@pytest.mark.parametrize("which", ["softmax", "double_well", "two_output_prior"])
def test_find_mode_finds_enumerated_map(which):
    if which == "softmax":
        x, y = level_data(20, 3, 3, SEED + 7)
        model = bayesbin.binary_softmax(x, y, 3, scale=0.8, prior_p=0.4)
    elif which == "double_well":
        model = double_well_model()
    else:
        x, y = level_data(30, 5, 2, SEED + 8)
        prior = np.random.default_rng(SEED).uniform(0.2, 0.8, size=(2, 5))
        model = bayesbin.binary_logistic(x, y, form="two_output", prior_p=prior)
    argmaxes, lp_map = _enumerated_map(model)
    for method in ("anneal", "auto"):
        mode = find_mode(model, method=method, n_sweeps=100, restarts=4, random_seed=SEED)
        assert set(mode) == {"w"}
        assert mode["w"].dtype == np.int64 and mode["w"].shape == get_spec(model).weight_shape
        assert any(np.array_equal(mode["w"].reshape(-1), s) for s in argmaxes)
        assert mode.logp == pytest.approx(lp_map, abs=1e-9)
        assert max(mode.restart_logps) == mode.logp
        assert len(mode.restart_logps) == len(mode.candidates)
        n_anneal = sum(c.startswith("anneal ") and c[7:].isdigit() for c in mode.candidates)
        assert n_anneal == 4
        # auto adds the relaxed candidates and one warm annealing run from the best of them
        assert ("anneal from relax" in mode.candidates) == (method == "auto")
        assert (len(mode.candidates) > 5) == (method == "auto")


def test_find_mode_with_bias_and_scale_matches_enumeration_and_optimiser():
    """MAP over (w, b, log scale): enumerate w, optimise (b, log scale) for each w (scipy)."""
    x, y = level_data(30, 3, 2, SEED + 9)
    model = bayesbin.binary_logistic(
        x, y, form="two_output", encoding="pm1", bias=True, scale=True, prior_p=0.4
    )
    logp = model.compile_logp()
    base = dict(model.initial_point())
    best = (-np.inf, None)
    for bits in itertools.product((0, 1), repeat=6):
        w = np.array(bits).reshape(2, 3)

        def neg(t, w=w):
            return -float(logp(dict(base, w=w, b=np.asarray(t[0]), scale_log__=np.asarray(t[1]))))

        res = optimize.minimize(
            neg,
            [0.0, 0.0],
            method="Nelder-Mead",
            options={"xatol": 1e-9, "fatol": 1e-12, "maxiter": 4000},
        )
        if -res.fun > best[0]:
            best = (-res.fun, w)
    mode = find_mode(model, n_sweeps=100, restarts=3, random_seed=SEED)
    assert set(mode) == {"w", "b", "scale"}
    np.testing.assert_array_equal(mode["w"], best[1])
    assert mode.logp >= best[0] - 1e-7
    # logp is the model's log density at the returned point (value space)
    pt = to_point_values(model, dict(mode))
    assert float(logp(pt)) == pytest.approx(mode.logp, abs=1e-9)
    # PyMC's initvals machinery maps it to exactly that start point
    ip = make_initial_point_fn(model=model, overrides=mode, jitter_rvs=set())(SEED)
    for name, value in pt.items():
        np.testing.assert_allclose(ip[name], value, rtol=0, atol=1e-12)


def test_find_mode_starts_chains():
    x, y = level_data(40, 4, 2, SEED + 10)
    model = bayesbin.binary_logistic(x, y, form="two_output", bias=True)
    mode = find_mode(model, n_sweeps=60, restarts=2, random_seed=1)
    idata = bayesbin.sample(
        model,
        sampler="incremental",
        draws=20,
        tune=0,
        chains=2,
        cores=1,
        random_seed=1,
        progressbar=False,
        initvals=mode,
    )
    lp = idata.sample_stats["lp"].values
    assert np.all(lp <= mode.logp + 1e-9)  # nothing beats the mode


def test_find_mode_on_mnist56_beats_chains_from_the_initial_point():
    """The MNIST56 two-output posterior (the fit defaults: bias and learned scale) has many
    isolated local modes (single flips cost tens to hundreds of nats); chains from PyMC's
    initial point settle in one of them. Measured (benchmarks/bench_mnist56.py): find_mode's
    default reaches a mode 40+ nats above the best draw of such chains; every one of its
    relaxed candidates starts the profile search from a deterministic rounding, so this is not
    a matter of luck."""
    x, y = bayesbin.load_mnist56("train")
    model = bayesbin.binary_logistic(x, y, form="two_output", bias=True, scale=True)
    mode = find_mode(model, method="relax", random_seed=SEED)
    assert all(c.startswith("relax") for c in mode.candidates)
    idata = bayesbin.sample(
        model,
        sampler="incremental",
        draws=200,
        tune=100,
        chains=2,
        cores=1,
        random_seed=SEED,
        progressbar=False,
        start="model",
    )
    best_draw = float(idata.sample_stats["lp"].max())
    assert mode.logp >= best_draw - 1e-9, (mode.logp, best_draw)
    # the reported logp is the model's own log density at the returned point
    pt = to_point_values(model, dict(mode))
    assert float(model.compile_logp()(pt)) == pytest.approx(mode.logp, abs=1e-6)


def test_profile_search_result_is_a_profile_local_optimum():
    """No single flip (nor pair swap) of find_mode's result gains once b and log scale are
    re-optimised for it (scipy on the model's own logp): the contract of the profile search."""
    x, y = level_data(80, 4, 2, SEED + 12)
    model = bayesbin.binary_logistic(x, y, form="two_output", bias=True, scale=True)
    mode = find_mode(model, method="relax", profile=True, random_seed=SEED)
    logp = model.compile_logp()
    base = dict(model.initial_point())

    def best_theta_logp(w):
        def neg(t):
            return -float(logp(dict(base, w=w, b=np.asarray(t[0]), scale_log__=np.asarray(t[1]))))

        start = [float(mode["b"]), np.log(mode["scale"])]
        res = optimize.minimize(
            neg, start, method="Nelder-Mead", options={"xatol": 1e-9, "fatol": 1e-12}
        )
        return -res.fun

    assert best_theta_logp(mode["w"]) == pytest.approx(mode.logp, abs=1e-6)
    w0 = mode["w"].copy()
    for k in range(w0.size):
        w = w0.reshape(-1).copy()
        w[k] = 1 - w[k]
        assert best_theta_logp(w.reshape(w0.shape)) <= mode.logp + 1e-6, k
    for j in range(w0.shape[1]):
        if w0[0, j] != w0[1, j]:
            w = w0.copy()
            w[:, j] = 1 - w[:, j]
            assert best_theta_logp(w) <= mode.logp + 1e-6, j


def test_round_relaxed_in_effective_space():
    x, y = level_data(30, 3, 2, SEED + 13)
    model = bayesbin.binary_logistic(x, y, form="two_output", prior_p=[[0.3] * 3, [0.6] * 3])
    from bayesbin.mode import _round_relaxed

    problem, _ = model_problem(model, own_bias=False, own_scale=False)
    pairs = fk.likelihood_neutral_pairs(problem)
    # bits (w0[0..2], w1[0..2]); effective u1 - u0 = 0.9 -> +1, -0.7 -> -1, 0.2 -> 0
    u = np.array([0.05, 0.8, 0.5, 0.95, 0.1, 0.7])
    w = _round_relaxed(problem, pairs, u)
    # feature 2 rounds to 0: the prior favours (0, 0) (logit 0.3 + logit 0.6 < 0)
    np.testing.assert_array_equal(w, [0, 1, 0, 1, 0, 0])


def test_find_mode_bad_arguments():
    x, y = level_data(20, 3, 2, SEED + 11)
    model = bayesbin.binary_softmax(x, y, 2, bias=True)
    with pytest.raises(ValueError, match="schedule"):
        find_mode(model, schedule="cosine")
    with pytest.raises(ValueError, match="schedule"):
        find_mode(model, schedule=[0.1, -1.0])
    with pytest.raises(ValueError, match="n_sweeps"):
        find_mode(model, schedule=[0.1, 1.0], n_sweeps=5)
    with pytest.raises(ValueError, match="n_sweeps"):
        find_mode(model, n_sweeps=0)
    with pytest.raises(ValueError, match="beta_start"):
        find_mode(model, beta_start=2.0, beta_end=1.0)
    with pytest.raises(ValueError, match="restarts"):
        find_mode(model, method="anneal", restarts=0)
    with pytest.raises(ValueError, match="restarts"):
        find_mode(model, restarts=-1)
    with pytest.raises(ValueError, match="method"):
        find_mode(model, method="greedy")
    with pytest.raises(ValueError, match="scales"):
        find_mode(model, scales=[2.0])  # the model has a fixed scale
    scaled = bayesbin.binary_softmax(x, y, 2, scale=True)
    with pytest.raises(ValueError, match="scales"):
        find_mode(scaled, scales=[0.5, -1.0])
    with pytest.raises(ValueError, match="profile"):
        find_mode(model, profile="yes")
    with pytest.raises(ValueError, match="relax_maxiter"):
        find_mode(model, relax_maxiter=0)
    with pytest.raises(ValueError, match="init"):
        find_mode(model, init={"v": 1})
    with pytest.raises(ValueError, match="init"):
        find_mode(model, init={"w": np.full((3, 2), 2)})
    with pytest.raises(ValueError, match="scale"):
        find_mode(model, init={"scale": 1.0})
    with pytest.raises(TypeError, match="init"):
        find_mode(model, init=[1, 2])
    relaxed = bayesbin.binary_softmax(x, y, 2, relaxed=True)
    with pytest.raises(ValueError, match="relaxed"):
        find_mode(relaxed)
    # a start given by init is used (a zero-length schedule is not allowed; one cold sweep is)
    w0 = np.zeros((3, 2), dtype=int)
    m = find_mode(model, schedule=[50.0], init={"w": w0, "b": [0.1, -0.1]}, restarts=1)
    assert m.logp >= float(
        model.compile_logp()(dict(model.initial_point(), w=w0, b=np.array([0.1, -0.1])))
    )


def test_newton_objective_rejects_a_log_scale_beyond_exp_range():
    """A wild Newton trial step (log scale 800) must score -inf, not overflow (it did, in an
    annealing restart of notebook 01's fast mode)."""
    from bayesbin.mode import _objective

    x, y = level_data(30, 3, 2, SEED + 14)
    model = bayesbin.binary_logistic(x, y, form="two_output", bias=True, scale=True)
    problem, prior = model_problem(model, own_bias=True, own_scale=True)
    state = fk.init(problem, np.zeros(6, np.uint8), 1.0, np.zeros(1))
    for theta in ([0.0, 800.0], [0.0, np.inf], [np.nan, 0.0]):
        assert _objective(problem, prior, state.A, np.array(theta), 1.0, state.bias) == -np.inf
    assert np.isfinite(_objective(problem, prior, state.A, np.array([0.1, 0.2]), 1.0, state.bias))
