"""Tests for likelihood-neutral group moves: softmax rows of K bits, two-output pairs."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
from helpers import (
    assert_bits_match_exact,
    bit_draws,
    enumerate_posterior,
    sample_with_steps,
)
from scipy import stats

import bayesbin
from bayesbin.samplers import IncrementalGibbs, ReplicaExchange
from bayesbin.samplers import kernels as fk
from bayesbin.samplers.adapter import model_problem
from bayesbin.samplers.kernels.problem import _FAST_MAX_STEP as FAST_MAX

SEED = sum(ord(c) for c in "test_group_moves")
ALPHA_TEST = 1e-3  # family-wise level of every statistical test in this file

# prior P(w = 1) of the 3 x 3 softmax weights; row 0 is the one the data pin to "all equal"
PRIOR = np.array([[0.3, 0.6, 0.45], [0.4, 0.55, 0.65], [0.35, 0.5, 0.7]])


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bayesbin.OneVectorTrapWarning)
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _sigmoid(d: float) -> float:
    return 1.0 / (1.0 + math.exp(-d)) if d >= 0 else math.exp(d) / (1.0 + math.exp(d))


def _wells(n: int = 36, level: float = 1.5, seed: int = SEED):
    """D = 3 features, K = 3 classes. Feature 0 is nonzero (``level``) on the first half of the
    rows, whose labels cycle through the classes: any difference between the class weights of
    feature 0 costs likelihood, so ``w[0, :]`` all 0 and all 1 are two wells (equal likelihood,
    prior-weighted) separated by mixed rows. Features 1, 2 are random small levels."""
    r = np.random.default_rng(seed)
    x = np.zeros((n, 3))
    y = np.tile([0, 1, 2], n // 3)
    x[: n // 2, 0] = level
    x[:, 1] = r.integers(0, 3, n) * 0.4
    x[:, 2] = r.integers(0, 2, n) * 0.5
    return x, y


def _random_data(n, d, k, seed, levels=4, step=0.35, density=0.7):
    r = np.random.default_rng(seed)
    x = r.integers(1, levels + 1, size=(n, d)) * step
    x[r.random((n, d)) > density] = 0.0
    return x, r.integers(0, k, n)


# ----------------------------------------------------------------------------------------------
# Which groups
# ----------------------------------------------------------------------------------------------


def test_groups_layout_per_form():
    x, y = _random_data(30, 4, 3, SEED)
    for enc in ("01", "pm1"):
        sm = fk.build_problem(x, y, form="softmax", encoding=enc, n_classes=3, prior_p=0.3)
        np.testing.assert_array_equal(
            fk.likelihood_neutral_groups(sm), np.arange(12, dtype=np.int32).reshape(4, 3)
        )
        assert fk.likelihood_neutral_groups(sm).dtype == np.int32
        # the pair API keeps its meaning: softmax has no pairs, even with K = 2
        assert fk.likelihood_neutral_pairs(sm).shape == (0, 2)
        sm2 = fk.build_problem(x, y % 2, form="softmax", encoding=enc, n_classes=2)
        np.testing.assert_array_equal(fk.likelihood_neutral_groups(sm2), np.arange(8).reshape(4, 2))
        assert fk.likelihood_neutral_pairs(sm2).shape == (0, 2)

        two = fk.build_problem(x, y % 2, form="two_output", encoding=enc)
        pairs = np.c_[np.arange(4), 4 + np.arange(4)]
        np.testing.assert_array_equal(fk.likelihood_neutral_groups(two), pairs)
        np.testing.assert_array_equal(fk.likelihood_neutral_pairs(two), pairs)
        assert fk.likelihood_neutral_pairs(two).dtype == np.int32

        single = fk.build_problem(x, y % 2, form="single", encoding=enc)
        assert fk.likelihood_neutral_groups(single).shape[0] == 0
        assert fk.likelihood_neutral_pairs(single).shape == (0, 2)

    # a frozen bit (p in {0, 1}) removes its feature's group
    p = np.full((4, 3), 0.4)
    p[1, 2] = 1.0
    p[3, 0] = 0.0
    sm = fk.build_problem(x, y, form="softmax", encoding="01", n_classes=3, prior_p=p)
    np.testing.assert_array_equal(fk.likelihood_neutral_groups(sm), [[0, 1, 2], [6, 7, 8]])
    p2 = np.full((2, 4), 0.4)
    p2[0, 2] = 0.0
    two = fk.build_problem(x, y % 2, form="two_output", encoding="01", prior_p=p2)
    np.testing.assert_array_equal(fk.likelihood_neutral_groups(two), [[0, 4], [1, 5], [3, 7]])


# ----------------------------------------------------------------------------------------------
# Exact identities of one group flip
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["01", "pm1"])
@pytest.mark.parametrize(
    "scale, with_bias",
    [(1.0, False), (0.7, True), (9.0, True)],  # 9.0: |a| > 10, the per-nonzero log-sum-exp path
)
def test_softmax_group_flip_keeps_cache_exact(encoding, scale, with_bias):
    r = np.random.default_rng(SEED + 1)
    d, k = 5, 3
    x, y = _random_data(50, d, k, SEED + 1)
    prior = r.uniform(0.2, 0.8, size=(d, k))
    bias = r.normal(size=k) if with_bias else None
    model = bayesbin.binary_softmax(
        x, y, k, encoding=encoding, bias=with_bias, scale=scale, prior_p=prior
    )
    logp = model.compile_logp()
    prob, _ = model_problem(model, own_bias=False, own_scale=False)
    assert (prob.unit * scale * prob.xmax > FAST_MAX) == (scale == 9.0)
    groups = fk.likelihood_neutral_groups(prob)
    np.testing.assert_array_equal(groups, np.arange(d * k).reshape(d, k))
    w = np.array([[0, 0, 0], [1, 1, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0]])  # rows 0, 1, 4 equal
    state = fk.init(prob, w, scale, bias)
    assert (state.block == 0) == (scale == 9.0)
    a0, p0, ll0 = state.A.copy(), state.P.copy(), state.loglik
    state, n = fk.group_sweep(prob, state, groups, np.zeros(d))  # u = 0: every MH accepts
    assert n == 3
    want = np.array([[1, 1, 1], [0, 0, 0], [0, 1, 0], [1, 1, 0], [1, 1, 1]])
    np.testing.assert_array_equal(state.w.reshape(d, k), want)
    # the cache is untouched ...
    np.testing.assert_array_equal(state.A, a0)
    np.testing.assert_array_equal(state.P, p0)
    assert state.loglik == ll0
    # ... and is the cache of the new w: P and loglik equal a fresh build's
    fresh = fk.init(prob, state.w, scale, bias)
    np.testing.assert_allclose(state.P, fresh.P, rtol=0, atol=1e-12)
    assert abs(state.loglik - fresh.loglik) <= 1e-12 * max(1.0, abs(fresh.loglik))
    # A only up to the per-row shift common to all columns: -unit * (x0 - x1 + x4) per row
    shift = state.A - fresh.A
    expect = prob.unit * (x[:, 0] - x[:, 1] + x[:, 4])
    np.testing.assert_allclose(shift, np.broadcast_to(-expect, shift.shape), rtol=0, atol=1e-12)
    # every bit's Δloglik from the shifted cache equals the fresh one
    for bit in range(prob.n_bits):
        assert fk.delta_loglik(prob, state, bit) == pytest.approx(
            fk.delta_loglik(prob, fresh, bit), rel=1e-10, abs=1e-10
        )
    # continuous quantities read from A do not see the shift
    for got, ref in zip(
        fk.continuous_loglik_grad(prob, state.A, scale, state.bias),
        fk.continuous_loglik_grad(prob, fresh.A, scale, fresh.bias),
        strict=True,
    ):
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
    # the model agrees: the log-posterior changed by the prior terms only
    pt = dict(model.initial_point())
    if with_bias:
        pt["b"] = bias
    d_model = logp(dict(pt, w=want)) - logp(dict(pt, w=w))
    lp1, lp0 = np.log(prior), np.log1p(-prior)
    d_prior = float(np.where(want == 1, lp1, lp0).sum() - np.where(w == 1, lp1, lp0).sum())
    assert d_model == pytest.approx(d_prior, abs=1e-10)
    # sweeps after group flips keep the cache exact; refresh sees no drift modulo the shift
    rs = np.random.default_rng(SEED + 2)
    for _ in range(5):
        order, u = fk.draw_scan(prob, rs, "random")
        state, _ = fk.sweep(prob, state, order, u, mode="gibbs")
        state, _ = fk.group_sweep(prob, state, groups, rs.random(d))
    exact = fk.exact_loglik(prob, state.w, scale, bias)
    assert abs(state.loglik - exact) <= 1e-10 * max(1.0, abs(exact))
    state, rinfo = fk.refresh(prob, state)
    assert rinfo.loglik_drift < 1e-12
    assert rinfo.prob_drift < 1e-12
    assert rinfo.activation_drift < 1e-12


def test_accept_rules_per_mode():
    x, y = _random_data(20, 3, 3, SEED + 3)
    prob = fk.build_problem(x, y, form="softmax", encoding="pm1", n_classes=3, prior_p=PRIOR)
    groups = fk.likelihood_neutral_groups(prob)
    logit = np.log(PRIOR) - np.log1p(-PRIOR)
    w = np.array([[0, 0, 0], [1, 1, 1], [1, 0, 1]])  # group 2 is mixed: never moves
    d_up = logit.sum(axis=1)  # Δ of flipping a row from all 0 to all 1
    assert d_up[0] < 0 < d_up[1]
    for w1, delta1 in ((1, -d_up[1]), (0, d_up[1])):
        w[1] = w1
        delta = np.array([d_up[0], delta1])
        for mode, accept in (
            ("gibbs", np.array([_sigmoid(v) for v in delta])),
            ("metropolis", np.minimum(1.0, np.exp(delta))),
        ):
            for side in (-1e-9, 1e-9):
                u = np.r_[np.clip(accept + side, 0.0, 1.0 - 1e-16), 0.0]
                state = fk.init(prob, w, 1.0, None)
                state, n = fk.group_sweep(prob, state, groups, u, mode=mode)
                got = state.w.reshape(3, 3)
                flipped = [not np.array_equal(got[g], w[g]) for g in range(3)]
                assert flipped[:2] == list(u[:2] < accept), (mode, side, w1)
                if side < 0:
                    assert flipped[:2] == [True, True]
                np.testing.assert_array_equal(got[2], w[2])
                np.testing.assert_array_equal(got[flipped], 1 - w[flipped])
                assert n == sum(flipped)
        # greedy: flip iff Δ > 0 (uniforms ignored)
        state = fk.init(prob, w, 1.0, None)
        state, n = fk.group_sweep(prob, state, groups, np.ones(3), mode="greedy")
        np.testing.assert_array_equal(state.w.reshape(3, 3), [[0, 0, 0], [1, 1, 1], [1, 0, 1]])
        assert n == (1 if w1 == 0 else 0)


def test_pair_sweep_is_group_sweep_on_pairs():
    """The two-output pair API is unchanged: same flips as a direct re-implementation."""
    r = np.random.default_rng(SEED + 4)
    x, y = _random_data(30, 6, 2, SEED + 4)
    prior = r.uniform(0.2, 0.8, size=(2, 6))
    prob = fk.build_problem(x, y, form="two_output", encoding="pm1", prior_p=prior)
    pairs = fk.likelihood_neutral_pairs(prob)
    for mode in ("gibbs", "metropolis", "greedy"):
        for _ in range(20):
            w = r.integers(0, 2, prob.n_bits)
            u = r.random(pairs.shape[0])
            a = fk.init(prob, w, 1.0, 0.2)
            b = fk.init(prob, w, 1.0, 0.2)
            a, na = fk.pair_sweep(prob, a, pairs, u, mode=mode)
            b, nb = fk.group_sweep(prob, b, pairs, u, mode=mode)
            ref = w.copy()
            nref = 0
            for (i, j), ui in zip(pairs, u, strict=True):
                if ref[i] != ref[j]:
                    continue
                dd = prob.prior_logit[i] + prob.prior_logit[j]
                dd = -dd if ref[i] == 1 else dd
                p = {"gibbs": _sigmoid(dd), "metropolis": min(1.0, math.exp(dd))}.get(mode)
                if (dd > 0) if mode == "greedy" else (ui < p):
                    ref[i] ^= 1
                    ref[j] ^= 1
                    nref += 1
            np.testing.assert_array_equal(a.w, ref)
            np.testing.assert_array_equal(b.w, ref)
            assert na == nb == nref


def test_group_sweep_bad_input():
    x, y = _random_data(20, 3, 3, SEED + 5)
    prob = fk.build_problem(x, y, form="softmax", encoding="01", n_classes=3)
    state = fk.init(prob, np.zeros(9, np.uint8))
    groups = fk.likelihood_neutral_groups(prob)
    with pytest.raises(ValueError, match="uniforms"):
        fk.group_sweep(prob, state, groups, np.zeros(2))
    with pytest.raises(ValueError, match="groups"):
        fk.group_sweep(prob, state, groups.reshape(-1), np.zeros(9))
    with pytest.raises(ValueError, match="groups"):
        fk.group_sweep(prob, state, groups + 1, np.zeros(3))
    with pytest.raises(ValueError, match="mode"):
        fk.group_sweep(prob, state, groups, np.zeros(3), mode="heat")
    # no groups: nothing happens
    state, n = fk.group_sweep(prob, state, groups[:0], np.zeros(0))
    assert n == 0
    np.testing.assert_array_equal(state.w, 0)


# ----------------------------------------------------------------------------------------------
# Exactness against enumeration (9 bits), row moves on
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("prior", ["0.5", "mixed"])
@pytest.mark.parametrize("mode", ["gibbs", "metropolis"])
@pytest.mark.parametrize("encoding", ["01", "pm1"])
def test_exact_softmax_with_row_moves(encoding, mode, prior):
    x, y = _wells()
    prior_p = 0.5 if prior == "0.5" else PRIOR
    model = bayesbin.binary_softmax(x, y, 3, encoding=encoding, prior_p=prior_p)
    states, probs = enumerate_posterior(model)
    row0 = states[:, :3].sum(axis=1)
    # designed: the all-equal rows of feature 0 carry most of the mass, split by the prior only
    assert probs[(row0 == 0) | (row0 == 3)].sum() > (0.9 if encoding == "01" else 0.999)
    ratio = probs[row0 == 3].sum() / probs[row0 == 0].sum()
    want = np.prod(np.asarray(prior_p) / (1 - np.asarray(prior_p)) * np.ones((3, 3)), axis=1)[0]
    assert ratio == pytest.approx(want, rel=0.05 if encoding == "01" else 1e-3)

    def steps():
        step = IncrementalGibbs([model["w"]], mode=mode)
        assert step.pair_moves and step._pairs.shape == (3, 3)
        return [step]

    idata = sample_with_steps(model, steps, draws=3000, tune=200, seed=SEED + 6)
    assert_bits_match_exact(bit_draws(idata), states, probs, alpha=ALPHA_TEST)
    assert float(idata.sample_stats["n_pair_flips"].mean()) > 0.5


# ----------------------------------------------------------------------------------------------
# Mixing: without row moves the two wells never exchange, with them they do
# ----------------------------------------------------------------------------------------------


def _run_from(step, model, w0, n_steps: int, seed) -> np.ndarray:
    """Drive ``step.step`` from ``w = w0`` for ``n_steps`` steps; w after each step (n, bits)."""
    step.set_rng(np.random.default_rng(seed))
    pt = dict(model.initial_point())
    pt["w"] = np.asarray(w0, dtype=pt["w"].dtype)
    out = np.empty((n_steps, np.asarray(w0).size), dtype=np.uint8)
    for t in range(n_steps):
        pt, _ = step.step(pt)
        out[t] = np.asarray(pt["w"]).reshape(-1)
    return out


@pytest.mark.parametrize("encoding", ["01", "pm1"])
def test_row_moves_let_stuck_chains_cross(encoding):
    x, y = _wells(n=60, level=5.0, seed=SEED + 7)
    model = bayesbin.binary_softmax(x, y, 3, encoding=encoding, prior_p=PRIOR)
    prob, _ = model_problem(model, own_bias=False, own_scale=False)
    n_steps, n_chains = 1000, 2
    # Single-site Gibbs leaves an all-equal row 0 only by a flip of one of its bits, which a
    # visit makes with probability <= p_out (max over every state of the other 6 bits); by
    # Markov's inequality P(any exit) <= (visits) * p_out.
    p_out = 0.0
    for rest in itertools.product((0, 1), repeat=6):
        for v in (0, 1):
            st = fk.init(prob, np.array([v, v, v, *rest]), 1.0, None)
            for bit in range(3):
                p_out = max(p_out, _sigmoid(fk.flip_delta(prob, st, bit)))
    bound = 2 * n_chains * n_steps * 3 * p_out  # two runs (off and on) of n_chains chains
    assert bound < ALPHA_TEST, bound
    starts = [np.r_[0, 0, 0, np.zeros(6)], np.r_[1, 1, 1, np.zeros(6)]]

    def row0(draws):
        s = draws[:, :3].sum(axis=1)
        assert np.all((s == 0) | (s == 3))  # never left the wells (probability >= 1 - bound)
        return s // 3

    with model:
        off = IncrementalGibbs([model["w"]], pair_moves=False)
        on = IncrementalGibbs([model["w"]])
    assert not off.pair_moves and on.pair_moves
    # without row moves: the two chains stay apart, each in its starting well
    for c, w0 in enumerate(starts):
        lab = row0(_run_from(off, model, w0, n_steps, [SEED, c]))
        assert np.all(lab == w0[0]), np.count_nonzero(lab != w0[0])
    # with them: each step ends with a row move accepted with probability min(1, e^Δ) >= q =
    # e^{-|Σ logit p|} from either well (fresh uniform each step), so the crossings of a chain
    # stochastically dominate Binomial(n_steps - 1, q); q n / 2 lies far in its lower tail
    logit = np.log(PRIOR[0]) - np.log1p(-PRIOR[0])
    q = math.exp(-abs(float(logit.sum())))
    need = int(q * (n_steps - 1) / 2)
    assert stats.binom.cdf(need, n_steps - 1, q) < 1e-9
    fracs = []
    for c, w0 in enumerate(starts):
        lab = row0(_run_from(on, model, w0, n_steps, [SEED, c]))
        crossings = int(np.count_nonzero(np.diff(lab)))
        assert crossings >= need, (crossings, need)
        fracs.append(lab.mean())
    # and the two chains agree on the time in the all-1 well (both near the prior ratio)
    assert abs(fracs[0] - fracs[1]) < 0.2, fracs


# ----------------------------------------------------------------------------------------------
# Arguments of the step
# ----------------------------------------------------------------------------------------------


def test_pair_moves_argument():
    x, y = _random_data(20, 3, 3, SEED + 8)
    sm = bayesbin.binary_softmax(x, y, 3)
    with sm:
        on = IncrementalGibbs([sm["w"]])
        assert on.pair_moves  # default on for softmax
        np.testing.assert_array_equal(on._pairs, np.arange(9).reshape(3, 3))
        assert IncrementalGibbs([sm["w"]], pair_moves=True).pair_moves
        off = IncrementalGibbs([sm["w"]], pair_moves=False)
        assert not off.pair_moves and off._pairs.shape[0] == 0
        with pytest.raises(ValueError, match="pair_moves"):
            IncrementalGibbs([sm["w"]], pair_moves="yes")
        rex = ReplicaExchange([sm["w"]], n_replicas=2)
        assert rex.pair_moves and rex._pairs.shape == (3, 3)
    # the step counts row flips in n_pair_flips; off means none
    pt = dict(sm.initial_point())
    pt["w"] = np.zeros((3, 3), dtype=pt["w"].dtype)
    for step, expect_moves in ((on, True), (off, False)):
        step.set_rng(np.random.default_rng(SEED))
        total = 0
        p = dict(pt)
        for _ in range(50):
            p, st = step.step(p)
            total += st[0]["n_pair_flips"]
        assert (total > 0) == expect_moves, total
    rex.set_rng(np.random.default_rng(SEED))
    p, st = rex.step(dict(pt))
    assert "n_pair_flips" in st[0]

    single = bayesbin.binary_logistic(x, y % 2, form="single", bias=True)
    with single:
        assert not IncrementalGibbs([single["w"]]).pair_moves
        assert not IncrementalGibbs([single["w"]], pair_moves=False).pair_moves
        with pytest.raises(ValueError, match=r"pair_moves=True .*'single'"):
            IncrementalGibbs([single["w"]], pair_moves=True)
    two = bayesbin.binary_logistic(x, y % 2, form="two_output")
    with two:
        step = IncrementalGibbs([two["w"]])
        assert step.pair_moves
        np.testing.assert_array_equal(step._pairs, np.c_[np.arange(3), 3 + np.arange(3)])
        assert not IncrementalGibbs([two["w"]], pair_moves=False).pair_moves
