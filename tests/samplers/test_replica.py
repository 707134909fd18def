"""Tests for ReplicaExchange: swap maths, ladder, exactness, mixing, chains, pair moves."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
from helpers import (
    N_BLOCK,
    assert_bits_match_exact,
    assert_mean_matches,
    bit_draws,
    double_well_model,
    enumerate_posterior,
    grid_posterior,
    level_data,
    sample_with_steps,
)
from pymc.step_methods.compound import Competence

import bayesbin
from bayesbin.linear import get_spec
from bayesbin.samplers import IncrementalGibbs, ReplicaExchange
from bayesbin.samplers import kernels as fk
from bayesbin.samplers.adapter import model_problem
from bayesbin.samplers.kernels import default_ladder, respace_ladder, swap_log_accept

SEED = sum(ord(c) for c in "test_tempering")
ALPHA_TEST = 1e-3  # family-wise level of every statistical test in this file


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bayesbin.OneVectorTrapWarning)
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _free_vars(model):
    spec = get_spec(model)
    names = ["w"] + (["b"] if spec.bias else []) + (["scale"] if spec.learned_scale else [])
    return [model[n] for n in names]


def _sample(model, make_steps, *, draws, tune, seed=SEED, **kwargs):
    return sample_with_steps(model, make_steps, draws=draws, tune=tune, seed=seed, **kwargs)


def _run_steps(step, model, *, draws, tune, chains=2, seed=SEED):
    """Drive ``step.step`` like pm.sample (set_rng per chain, tuning, then draws); (c, d, k)."""
    k = int(np.prod(get_spec(model).weight_shape))
    out = np.empty((chains, draws, k), dtype=np.uint8)
    stats = []
    for c in range(chains):
        step.set_rng(np.random.default_rng([seed, c]))
        pt = dict(model.initial_point())
        chain_stats = []
        for t in range(tune + draws):
            if t == tune:
                step.stop_tuning()
            pt, st = step.step(pt)
            if t >= tune:
                out[c, t - tune] = np.asarray(pt["w"]).reshape(-1)
                chain_stats.append(st[0])
        stats.append(chain_stats)
    return out, stats


# ----------------------------------------------------------------------------------------------
# Exact identities
# ----------------------------------------------------------------------------------------------


def test_swap_ratio_is_the_extended_target_ratio():
    """exp(swap_log_accept) equals the ratio of prod_r pi_{beta_r} after/before the exchange."""
    rng = np.random.default_rng(SEED)
    x, y = level_data(30, 3, 3, SEED)
    model = bayesbin.binary_softmax(x, y, 3, bias=True, scale=True, prior_p=0.3)
    logp = model.compile_logp()
    loglik = model.compile_logp(vars=model.observed_RVs)
    pts = []
    for _ in range(2):
        pt = dict(model.initial_point())
        pt["w"] = rng.integers(0, 2, size=(3, 3))
        pt["b"] = rng.normal(size=3)
        pt["scale_log__"] = np.asarray(rng.normal(0.0, 0.5))
        pts.append(pt)
    lik = [float(loglik(p)) for p in pts]
    prior = [float(logp(p)) - v for p, v in zip(pts, lik, strict=True)]

    def log_tempered(k, beta):
        return prior[k] + beta * lik[k]

    for bi, bj in [(1.0, 0.4), (0.4, 0.05), (0.7, 0.69)]:
        before = log_tempered(0, bi) + log_tempered(1, bj)
        after = log_tempered(1, bi) + log_tempered(0, bj)
        got = swap_log_accept(bi, bj, lik[0], lik[1])
        assert got == pytest.approx(after - before, abs=1e-9)
    # the step's cached log-likelihood is the model's
    prob, _ = model_problem(model, own_bias=True, own_scale=True)
    st = fk.init(prob, pts[0]["w"], math.exp(float(pts[0]["scale_log__"])), pts[0]["b"])
    assert st.loglik == pytest.approx(lik[0], abs=1e-9)


def test_pair_flip_leaves_likelihood_cache_bitwise_unchanged():
    rng = np.random.default_rng(SEED + 1)
    x, y = level_data(40, 5, 2, SEED + 1)
    prior = rng.uniform(0.2, 0.8, size=(2, 5))
    for encoding in ("01", "pm1"):
        model = bayesbin.binary_logistic(
            x, y, form="two_output", encoding=encoding, bias=True, prior_p=prior
        )
        logp = model.compile_logp()
        prob, _ = model_problem(model, own_bias=False, own_scale=False)
        pairs = fk.likelihood_neutral_pairs(prob)
        np.testing.assert_array_equal(pairs, np.c_[np.arange(5), 5 + np.arange(5)])
        w = np.array([[0, 1, 1, 0, 1], [0, 1, 0, 1, 1]])  # features 0, 1, 4 are equal pairs
        state = fk.init(prob, w, 1.0, 0.3)
        a0, p0, ll0 = state.A.copy(), state.P.copy(), state.loglik
        state, n = fk.pair_sweep(prob, state, pairs, np.zeros(5))  # u = 0: every MH accepts
        assert n == 3
        want = np.array([[1, 0, 1, 0, 0], [1, 0, 0, 1, 0]])
        np.testing.assert_array_equal(state.w.reshape(2, 5), want)
        np.testing.assert_array_equal(state.A, a0)
        np.testing.assert_array_equal(state.P, p0)
        assert state.loglik == ll0
        # the model agrees: the log-posterior changed by the prior terms only
        pt = dict(model.initial_point(), b=np.asarray(0.3))
        d_model = logp(dict(pt, w=want)) - logp(dict(pt, w=w))
        lp1, lp0 = np.log(prior), np.log1p(-prior)
        d_prior = float(np.where(want == 1, lp1, lp0).sum() - np.where(w == 1, lp1, lp0).sum())
        assert d_model == pytest.approx(d_prior, abs=1e-10)
        assert fk.exact_loglik(prob, state.w, 1.0, 0.3) == pytest.approx(ll0, abs=1e-10)
    # other forms have no pairs
    sm = bayesbin.binary_softmax(x, y, 2)
    assert (
        fk.likelihood_neutral_pairs(model_problem(sm, own_bias=False, own_scale=False)[0]).size == 0
    )


def test_default_ladder_andrespace_ladder():
    b = default_ladder(4, 25)
    assert b[0] == 1.0 and np.all(np.diff(b) < 0)
    np.testing.assert_allclose(np.diff(np.log(b)), -2.38 / 5.0)
    np.testing.assert_allclose(default_ladder(3, 10, beta_min=0.25), [1.0, 0.5, 0.25])
    # equal rejections keep the ladder's cumulative barrier equally spaced
    betas = np.array([1.0, 0.6, 0.3, 0.1])
    np.testing.assert_allclose(respace_ladder(betas, np.array([0.2, 0.2, 0.2])), betas)
    # a hard top pair pulls the interior temperatures towards it
    new = respace_ladder(betas, np.array([0.6, 0.1, 0.1]))
    assert new[0] == 1.0 and new[-1] == 0.1
    assert new[1] > 0.6 and new[2] > 0.3
    # the new nodes sit at equal steps of the piecewise-linear cumulative rejection
    asc, lam = betas[::-1], np.concatenate([[0], np.cumsum([0.1, 0.1, 0.6])])
    np.testing.assert_allclose(np.interp(new[::-1], asc, lam), np.linspace(0, 0.8, 4))


# ----------------------------------------------------------------------------------------------
# Exactness of the beta = 1 replica against enumeration
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "scan"), [("gibbs", "random"), ("metropolis", "systematic")])
def test_exact_softmax_bits(mode, scan):
    x, y = level_data(14, 3, 3, SEED + 2)
    model = bayesbin.binary_softmax(x, y, 3, scale=0.8, prior_p=0.4)
    states, probs = enumerate_posterior(model)
    idata = _sample(
        model,
        lambda: [ReplicaExchange([model["w"]], mode=mode, scan=scan)],
        draws=2500,
        tune=300,
    )
    assert_bits_match_exact(bit_draws(idata), states, probs, alpha=ALPHA_TEST)
    ss = idata.sample_stats
    for i in range(3):
        assert 0.05 < float(np.nanmean(ss[f"swap_accept_{i}"].values)) <= 1.0
    # lp is the model's exact log-posterior of every returned draw
    logp = model.compile_logp()
    for c, d in [(0, 0), (1, 777), (0, 2499)]:
        pt = dict(model.initial_point(), w=idata.posterior["w"].values[c, d])
        assert float(ss["lp"].values[c, d]) == pytest.approx(float(logp(pt)), abs=1e-8)


def test_exact_jointly_with_bias_and_scale():
    """Two-output ±1 model, step owns (w, b, scale): bits and grid-integrated b, scale."""
    x, y = level_data(24, 2, 2, SEED + 3)
    model = bayesbin.binary_logistic(
        x,
        y,
        form="two_output",
        encoding="pm1",
        bias=True,
        scale=True,
        prior_p=[[0.3, 0.5], [0.6, 0.5]],
        bias_sigma=1.5,
        scale_sigma=1.5,
    )
    grid = {"b": np.linspace(-6.0, 6.0, 61), "scale_log__": np.linspace(-9.0, 2.5, 70)}
    states, points, probs = grid_posterior(model, grid)
    idata = _sample(
        model,
        lambda: [ReplicaExchange(_free_vars(model), n_replicas=3, continuous_steps=5)],
        draws=3000,
        tune=600,
    )
    assert_bits_match_exact(bit_draws(idata), states, probs.sum(axis=1), alpha=ALPHA_TEST)
    gp = probs.sum(axis=0)
    for name, vals in (("b", points["b"]), ("scale", np.exp(points["scale_log__"]))):
        mean = float(gp @ vals)
        sd = float(np.sqrt(gp @ (vals - mean) ** 2))
        assert_mean_matches(idata.posterior[name].values, mean, sd, alpha=ALPHA_TEST, n_tests=2)


# ----------------------------------------------------------------------------------------------
# A deliberately bimodal posterior: plain single-site Gibbs is stuck, replica exchange is not
# ----------------------------------------------------------------------------------------------



def _well_labels(w):
    """Per well: +1 in mode (1, 0), -1 in mode (0, 1), 0 at a barrier; shape (draws, 2)."""
    lab = np.zeros((w.shape[0], 2), dtype=int)
    for k, (a, b) in enumerate([(0, 1), (2, 3)]):
        lab[:, k] = w[:, a].astype(int) - w[:, b].astype(int)
    return lab


def _switches(labels):
    """Changes of mode between consecutive non-barrier states."""
    lab = labels[labels != 0]
    return int(np.count_nonzero(lab[1:] != lab[:-1]))


def _max_barrier_entry_prob(model):
    """Largest heat-bath probability of a single flip from a mode of a well into a barrier."""
    prob, _ = model_problem(model, own_bias=False, own_scale=False)
    worst = 0.0
    for well in itertools.product([(1, 0), (0, 1)], repeat=2):
        state = fk.init(prob, np.array(well).reshape(-1), 1.0, 0.0)
        for bit in range(4):
            worst = max(worst, 1.0 / (1.0 + math.exp(-fk.flip_delta(prob, state, bit))))
    return worst


def test_double_well_gibbs_is_stuck_and_replica_exchange_mixes():
    model = double_well_model()
    states, probs = enumerate_posterior(model)
    draws, tune, chains = 2000, 200, 2
    # Plain Gibbs: each switch needs an entry into a barrier, i.e. a flip out of a mode, which a
    # bit visit makes with probability <= p_in; by Markov's inequality
    # P(any switch) <= E[entries] <= (visits per chain) * chains * p_in.
    p_in = _max_barrier_entry_prob(model)
    bound = (tune + draws) * 4 * chains * p_in
    assert bound < ALPHA_TEST, bound
    with model:
        gibbs = IncrementalGibbs([model["w"]])
    g_draws, _ = _run_steps(gibbs, model, draws=draws, tune=tune, chains=chains)
    g_switches = [_switches(_well_labels(g_draws[c])[:, k]) for c in range(2) for k in range(2)]
    assert sum(g_switches) == 0, g_switches

    with model:
        pt_step = ReplicaExchange([model["w"]])
    p_draws, stats = _run_steps(pt_step, model, draws=draws, tune=tune, chains=chains)
    # exact: four modes of mass 1/4 each (chi-square on the 16 joint states, thinned)
    assert_bits_match_exact(p_draws, states, probs, alpha=ALPHA_TEST)
    # and mixing: every chain visits every mode of every well many times
    p_switches = [_switches(_well_labels(p_draws[c])[:, k]) for c in range(2) for k in range(2)]
    assert min(p_switches) >= 100, p_switches
    rates = [np.nanmean([s[f"swap_accept_{i}"] for ch in stats for s in ch]) for i in range(3)]
    assert min(rates) > 0.1, rates


# ----------------------------------------------------------------------------------------------
# Pair moves of the two-output form
# ----------------------------------------------------------------------------------------------


def _two_output_wells(prior_p):
    """Two features on disjoint blocks with balanced labels, ±1 weights: w[1, j] - w[0, j] = 0
    is best, so (0, 0) and (1, 1) are the modes of each feature and (0, 1), (1, 0) barriers."""
    nb = N_BLOCK + 10  # a deeper barrier: the unequal prior lowers it by up to ~1.7 nats
    n = 2 * nb
    x = np.zeros((n, 2))
    x[:nb, 0] = 1.0
    x[nb:, 1] = 1.0
    y = np.tile([0, 1], n // 2)
    return bayesbin.binary_logistic(x, y, form="two_output", encoding="pm1", prior_p=prior_p)


def test_pair_moves_exact_and_mixing():
    prior = np.array([[0.3, 0.6], [0.45, 0.7]])
    model = _two_output_wells(prior)
    states, probs = enumerate_posterior(model)
    # the exact posterior puts almost all mass on the equal pairs, unequally (prior only)
    eq = (states[:, 0] == states[:, 2]) & (states[:, 1] == states[:, 3])
    assert probs[eq].sum() > 1 - 1e-6
    draws, tune, chains = 2000, 100, 2
    with model:
        step = IncrementalGibbs([model["w"]])
    assert step.pair_moves  # on by default for two_output
    d_on, stats = _run_steps(step, model, draws=draws, tune=tune, chains=chains)
    assert_bits_match_exact(d_on, states, probs, alpha=ALPHA_TEST)
    assert sum(s["n_pair_flips"] for ch in stats for s in ch) > 1000

    # without pair moves single-site Gibbs cannot cross: Markov bound as in the double well
    prob, _ = model_problem(model, own_bias=False, own_scale=False)
    p_in = 0.0
    for w in itertools.product([0, 1], repeat=2):
        st = fk.init(prob, np.array([w[0], w[1], w[0], w[1]]), 1.0, 0.0)
        for bit in range(4):
            p_in = max(p_in, 1.0 / (1.0 + math.exp(-fk.flip_delta(prob, st, bit))))
    assert (tune + draws) * 4 * chains * p_in < ALPHA_TEST
    with model:
        off = IncrementalGibbs([model["w"]], pair_moves=False)
    d_off, _ = _run_steps(off, model, draws=draws, tune=tune, chains=chains)
    for c in range(chains):
        for j in range(2):
            on_changes = np.count_nonzero(np.diff(d_on[c, :, j].astype(int)))
            off_changes = np.count_nonzero(np.diff(d_off[c, :, j].astype(int)))
            assert off_changes == 0
            assert on_changes >= 100


def test_pair_moves_argument():
    x, y = level_data(20, 3, 2, SEED + 4)
    sm = bayesbin.binary_softmax(x, y, 2)
    with sm:
        assert IncrementalGibbs([sm["w"]]).pair_moves  # softmax rows (test_group_moves.py)
    single = bayesbin.binary_logistic(x, y, form="single", bias=True)
    with single:
        with pytest.raises(ValueError, match="pair_moves"):
            IncrementalGibbs([single["w"]], pair_moves=True)
        with pytest.raises(ValueError, match="pair_moves"):
            IncrementalGibbs([single["w"]], pair_moves="yes")
    two = bayesbin.binary_logistic(x, y, form="two_output")
    with two:
        assert not IncrementalGibbs([two["w"]], pair_moves=False).pair_moves
        assert ReplicaExchange([two["w"]]).pair_moves


# ----------------------------------------------------------------------------------------------
# PyMC chain handling
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chain_model():
    x, y = level_data(30, 3, 3, SEED + 5)
    return bayesbin.binary_softmax(x, y, 3, bias=True, scale=True)


def _pt(model, **kw):
    return lambda: [ReplicaExchange(_free_vars(model), n_replicas=3, **kw)]


def test_same_seed_same_draws_and_no_leak(chain_model):
    model = chain_model
    a = _sample(model, _pt(model), draws=40, tune=60)
    b = _sample(model, _pt(model), draws=40, tune=60)
    for name in ("w", "b", "scale"):
        np.testing.assert_array_equal(a.posterior[name].values, b.posterior[name].values)
    for name in ("swap_accept_0", "beta_1", "lp"):
        np.testing.assert_array_equal(
            a.sample_stats[name].values, b.sample_stats[name].values, err_msg=name
        )
    assert not np.array_equal(a.posterior["b"].values[0], a.posterior["b"].values[1])
    # the ladder adapted during tuning (60 > first window) and is frozen afterwards
    beta1 = a.sample_stats["beta_1"].values
    assert np.all(beta1 == beta1[:, :1])
    # one step object reused for further runs starts from scratch each time
    with model:
        step = ReplicaExchange(_free_vars(model), n_replicas=3)
    c = _sample(model, lambda: [step], draws=40, tune=60)
    d = _sample(model, lambda: [step], draws=40, tune=60)
    for name in ("w", "b", "scale"):
        np.testing.assert_array_equal(c.posterior[name].values, a.posterior[name].values)
        np.testing.assert_array_equal(d.posterior[name].values, a.posterior[name].values)


@pytest.mark.parametrize("mp_ctx", ["fork", "forkserver"])
def test_parallel_chains_match_sequential(chain_model, mp_ctx):
    model = chain_model
    with model:
        step = ReplicaExchange(_free_vars(model), n_replicas=3)
    seq = _sample(model, lambda: [step], draws=30, tune=20, cores=1)
    par = _sample(model, lambda: [step], draws=30, tune=20, cores=2, mp_ctx=mp_ctx)
    for name in ("w", "b", "scale"):
        np.testing.assert_array_equal(seq.posterior[name].values, par.posterior[name].values)
    for name in ("n_flips", "n_changed", "swap_accept_0", "swap_accept_1", "beta_2", "lp"):
        assert par.sample_stats[name].shape[:2] == (2, 30), name
        np.testing.assert_array_equal(
            seq.sample_stats[name].values, par.sample_stats[name].values, err_msg=name
        )


def test_ladder_and_proposals_frozen_after_tuning(chain_model):
    model = chain_model
    with model:
        step = ReplicaExchange(_free_vars(model), n_replicas=4, continuous_steps=3)
    step.set_rng(np.random.default_rng(SEED))
    pt = dict(model.initial_point())
    for _ in range(120):  # two ladder windows
        pt, _ = step.step(pt)
    assert not np.array_equal(step.betas, step._betas0)  # adapted
    step.stop_tuning()
    betas = step.betas
    chols = [t.chol.copy() for t in step._tuners]
    lams = [t.log_lambda for t in step._tuners]
    for _ in range(30):
        pt, _ = step.step(pt)
    np.testing.assert_array_equal(step.betas, betas)
    for t, c, lam in zip(step._tuners, chols, lams, strict=True):
        np.testing.assert_array_equal(t.chol, c)
        assert t.log_lambda == lam
    step.reset_tuning()
    assert step._replicas is None and np.array_equal(step.betas, step._betas0)
    state = step.sampling_state
    step.step(dict(model.initial_point()))
    step.sampling_state = state
    assert step._replicas is None


def test_model_logp_stat_matches_model(chain_model):
    model = chain_model
    logp = model.compile_logp()
    with model:
        step = ReplicaExchange(_free_vars(model), n_replicas=3)
    step.set_rng(np.random.default_rng(SEED + 6))
    pt = dict(model.initial_point())
    changed = 0
    for _ in range(30):
        new, stats = step.step(pt)
        assert stats[0]["model_logp"] == pytest.approx(float(logp(new)), abs=1e-8)
        assert stats[0]["n_changed"] == np.count_nonzero(new["w"] != pt["w"])
        changed += stats[0]["n_changed"]
        pt = new
    assert changed > 0


# ----------------------------------------------------------------------------------------------
# Competence and input validation
# ----------------------------------------------------------------------------------------------


def test_competence_and_bad_arguments(chain_model):
    model = chain_model
    with model:
        assert ReplicaExchange.competence(model["w"], False) == Competence.COMPATIBLE
        assert ReplicaExchange.competence(model["b"], True) == Competence.INCOMPATIBLE
        with pytest.raises(ValueError, match="must own every free variable"):
            ReplicaExchange([model["w"]])
        with pytest.raises(ValueError, match="must own every free variable"):
            ReplicaExchange([model["w"], model["b"]])
        with pytest.raises(ValueError, match="n_replicas"):
            ReplicaExchange(_free_vars(model), n_replicas=1)
        with pytest.raises(ValueError, match="betas"):
            ReplicaExchange(_free_vars(model), betas=[0.9, 0.5])
        with pytest.raises(ValueError, match="betas"):
            ReplicaExchange(_free_vars(model), betas=[1.0, 0.5, 0.6])
        with pytest.raises(ValueError, match="beta_min"):
            ReplicaExchange(_free_vars(model), beta_min=1.5)
        with pytest.raises(ValueError, match="adapt_ladder"):
            ReplicaExchange(_free_vars(model), adapt_ladder="no")
        step = ReplicaExchange(_free_vars(model), betas=[1.0, 0.2])
        assert "swap_accept_0" in step.stats_dtypes_shapes
        assert "swap_accept_1" not in step.stats_dtypes_shapes
    relaxed = bayesbin.binary_softmax(*level_data(10, 2, 2, 0), 2, relaxed=True)
    with relaxed, pytest.raises(ValueError, match="relaxed"):
        ReplicaExchange([relaxed["w"]])
