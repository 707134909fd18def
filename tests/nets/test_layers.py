"""Layers: deterministic forms against direct loops; CLT forms against Monte Carlo (z-tests).

Every Monte Carlo check is a z-test with a Monte Carlo standard error (``sd / sqrt(N)`` for a
mean; ``sqrt((m4 - var^2) / N)`` for a variance), Bonferroni-corrected over the outputs of the
test at a family-wise alpha of 1e-3, with a seed derived from the test name (never tuned).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.special import ndtr

from bayesbin.nets import layers as L
from bayesbin.nets.export import sample_weights

ALPHA = 1e-3
N_MC = 20_000


def _z_crit(k: int) -> float:
    return float(stats.norm.ppf(1 - ALPHA / (2 * k)))


def assert_moments(draws: np.ndarray, mean: np.ndarray, var: np.ndarray) -> None:
    """z-tests of the Monte Carlo mean and variance of ``draws`` (N, ...) against formulas."""
    n = draws.shape[0]
    d = draws.astype(np.float64)
    m = d.mean(axis=0)
    c = d - m
    v = (c**2).mean(axis=0)
    m4 = (c**4).mean(axis=0)
    se_mean = np.sqrt(v / n)
    se_var = np.sqrt(np.maximum(m4 - v**2, 1e-300) / n)
    k = 2 * m.size
    z_mean = np.abs(m - mean) / np.maximum(se_mean, 1e-12)
    z_var = np.abs(v - var) / np.maximum(se_var, 1e-12)
    crit = _z_crit(k)
    assert z_mean.max() < crit, (z_mean.max(), crit)
    assert z_var.max() < crit, (z_var.max(), crit)


def _binary(p_plus, rng, n):
    """n draws of ±1 arrays that are +1 with probability p_plus."""
    return np.where(rng.random((n, *np.shape(p_plus))) < p_plus, 1.0, -1.0)


# -- deterministic layers ---------------------------------------------------------------------
def _naive_conv(x, w):
    n, h, wd, c = x.shape
    xp = np.zeros((n, h + 2, wd + 2, c))
    xp[:, 1:-1, 1:-1] = x  # zero padding
    out = np.zeros((n, h, wd, w.shape[0]))
    for i in range(h):
        for j in range(wd):
            patch = xp[:, i : i + 3, j : j + 3, :]  # (n, 3, 3, c)
            out[:, i, j, :] = np.einsum("nabc,ocab->no", patch, w)
    return out


def test_conv2d_matches_direct_loop_with_zero_padding(rng):
    x = rng.standard_normal((3, 5, 4, 2)).astype(np.float32)
    w = rng.choice([-1, 1], size=(3, 2, 3, 3)).astype(np.int8)
    np.testing.assert_allclose(L.conv2d(x, w), _naive_conv(x, w), rtol=1e-5, atol=1e-5)
    # chunking over rows changes nothing
    np.testing.assert_array_equal(L.conv2d(x, w, chunk_bytes=1), L.conv2d(x, w))
    # a corner output sees 4 of its 9 taps (zero padding: padded pixels contribute 0, not ±1)
    ones = np.ones((1, 3, 3, 1), np.float32)
    corner = L.conv2d(ones, np.ones((1, 1, 3, 3), np.int8))[0, :, :, 0]
    np.testing.assert_array_equal(corner, [[4, 6, 4], [6, 9, 6], [4, 6, 4]])
    with pytest.raises(ValueError, match="do not fit"):
        L.conv2d(x, w[:, :1])


def test_dense_maxpool_batchnorm(rng):
    x = rng.standard_normal((4, 6))
    w = rng.choice([-1, 1], size=(3, 6))
    np.testing.assert_allclose(L.dense(x, w), x @ w.T)
    img = rng.standard_normal((2, 5, 4, 3))
    pooled = L.maxpool2d(img, 2)
    assert pooled.shape == (2, 2, 2, 3)  # floor: the 5th row is dropped
    np.testing.assert_array_equal(pooled[1, 1, 0, 2], img[1, 2:4, 0:2, 2].max())
    s = rng.standard_normal((5, 3)) * 3 + 1
    g, b = np.array([1.0, 2.0, -1.0]), np.array([0.0, 0.5, 1.0])
    m, v = L.batch_stats(s)
    y = L.batch_norm(s, g, b, m, v, eps=0.0)
    np.testing.assert_allclose(y.mean(0), b, atol=1e-12)
    np.testing.assert_allclose(y.std(0), np.abs(g), rtol=1e-12)
    # masked statistics = statistics of the unmasked rows (the padded last batch)
    mask = np.array([1, 1, 0, 1, 0.0])
    mm, vm = L.batch_stats(img[[0, 1, 0, 1, 0]], mask)
    m2, v2 = L.batch_stats(img[[0, 1, 1]])
    np.testing.assert_allclose(mm, m2)
    np.testing.assert_allclose(vm, v2)


# -- CLT layers against Monte Carlo -------------------------------------------------------------
def test_gaussian_dense_binary_inputs(rng):
    theta = rng.uniform(-0.95, 0.95, (3, 12))
    phi = rng.uniform(-0.95, 0.95, 12)
    mu, s2 = L.gaussian_dense(phi[None], (1 - phi**2)[None], theta)
    w = _binary((1 + theta) / 2, rng, N_MC)
    h = _binary((1 + phi) / 2, rng, N_MC)
    draws = np.einsum("noi,ni->no", w, h)
    assert_moments(draws, mu[0], s2[0])
    # the formula for binary inputs: D - sum theta^2 phi^2
    np.testing.assert_allclose(s2[0], 12 - (theta**2 * phi**2).sum(1))


def test_gaussian_dense_real_inputs(rng):
    theta = rng.uniform(-0.95, 0.95, (3, 12))
    x = rng.uniform(0, 1, 12) * (rng.random(12) < 0.7)  # pixels, some exactly 0
    mu, s2 = L.gaussian_dense(x[None], None, theta)
    w = _binary((1 + theta) / 2, rng, N_MC)
    assert_moments(w @ x, mu[0], s2[0])
    np.testing.assert_allclose(s2[0], ((1 - theta**2) * x**2).sum(1))


@pytest.mark.parametrize("inputs", ["binary", "real"])
def test_gaussian_conv2d(rng, inputs):
    theta = rng.uniform(-0.95, 0.95, (2, 2, 3, 3)).astype(np.float32)
    shape = (4, 5, 2)
    if inputs == "binary":
        phi = rng.uniform(-0.95, 0.95, shape).astype(np.float32)
        mu, s2 = L.gaussian_conv2d(phi[None], (1 - phi**2)[None], theta)
        h = _binary((1 + phi) / 2, rng, N_MC)
    else:
        x = (rng.uniform(0, 1, shape) * (rng.random(shape) < 0.7)).astype(np.float32)
        mu, s2 = L.gaussian_conv2d(x[None], None, theta)
        h = np.broadcast_to(x, (N_MC, *shape))
    w = _binary((1 + theta) / 2, rng, N_MC)
    hp = np.pad(h, ((0, 0), (1, 1), (1, 1), (0, 0)))  # zero padding
    win = np.lib.stride_tricks.sliding_window_view(hp, (3, 3), axis=(1, 2))  # (N,H,W,C,3,3)
    draws = np.einsum("nijcab,nocab->nijo", win, w)
    assert_moments(draws, mu[0], s2[0])


def test_stochastic_batch_norm(rng):
    b, c = 6, 2
    mu = rng.standard_normal((b, 3, c)) * 2 + 1
    s2 = rng.uniform(0.1, 3.0, (b, 3, c))
    mean, var = L.stochastic_batch_stats(mu, s2)
    a = mu + np.sqrt(s2) * rng.standard_normal((N_MC, b, 3, c))
    # the batch's expected mean and variance: m = E[mean a], v + m^2 = E[mean a^2]
    batch_mean = a.mean(axis=(1, 2))
    batch_sq = (a**2).mean(axis=(1, 2))
    for draws, target in ((batch_mean, mean), (batch_sq, var + mean**2)):
        z = np.abs(draws.mean(0) - target) / (draws.std(0) / np.sqrt(N_MC))
        assert z.max() < _z_crit(2 * c), z
    # masked rows do not count
    m2, v2 = L.stochastic_batch_stats(np.concatenate([mu, mu * 7]), np.concatenate([s2, s2]),
                                      np.r_[np.ones(b), np.zeros(b)])
    np.testing.assert_allclose(m2, mean)
    np.testing.assert_allclose(v2, var)
    # normalising the Gaussian with given statistics: mean and variance of the normalised draws
    gamma, beta = np.array([1.5, -0.7]), np.array([0.2, -1.0])
    mo, so = L.stochastic_batch_norm(mu, s2, gamma, beta, mean, var, eps=1e-4)
    normed = (a - mean) * gamma / np.sqrt(var + 1e-4) + beta
    assert_moments(normed, mo, so)


def test_binary_probability(rng):
    mu = np.array([-2.0, -0.3, 0.0, 0.4, 1.5])
    s2 = np.array([1.0, 0.5, 2.0, 0.1, 4.0])
    q = L.binary_probability(mu, s2)
    np.testing.assert_allclose(q, ndtr(mu / np.sqrt(s2)), rtol=1e-6)
    a = mu + np.sqrt(s2) * rng.standard_normal((N_MC, 5))
    signs = np.where(a >= 0, 1.0, -1.0)
    phi, v = L.binary_moments(q)
    assert_moments(signs, phi, v)
    # a (nearly) deterministic pre-activation gives the step; exactly at mu = 0 the limit 1/2
    np.testing.assert_array_equal(L.binary_probability(np.array([-1.0, 0.0, 1.0]), np.zeros(3)),
                                  [0.0, 0.5, 1.0])


CASES = [(0.0, 1.0, 0.0, 1.0), (1.0, 0.5, -0.5, 2.0), (0.3, 1e-6, 0.0, 1.0),
         (-2.0, 0.2, 2.0, 0.3), (5.0, 1.0, -5.0, 1.0)]


def test_gaussian_max_is_exact_for_two(rng):
    mu1, v1, mu2, v2 = (np.array(c) for c in zip(*CASES, strict=True))
    mean, var = L.gaussian_max(mu1, v1, mu2, v2)
    x1 = mu1 + np.sqrt(v1) * rng.standard_normal((N_MC, len(CASES)))
    x2 = mu2 + np.sqrt(v2) * rng.standard_normal((N_MC, len(CASES)))
    assert_moments(np.maximum(x1, x2), mean, var)


def test_gaussian_maxpool2d_moment_matching(rng):
    """2x2 windows: a tree of Clark's max; exact for each pair, approximate for four cells."""
    mu = rng.standard_normal((1, 4, 4, 3)) * 1.5
    s2 = rng.uniform(0.05, 2.0, (1, 4, 4, 3))
    mean, var = L.gaussian_maxpool2d(mu, s2, 2)
    a = mu + np.sqrt(s2) * rng.standard_normal((N_MC, 4, 4, 3))
    mc = L.maxpool2d(a, 2)
    m, sd = mc.mean(0), mc.std(0)
    # pooling must not be confused with a plain max of means: E[max] >= max of means
    assert np.all(mean[0] >= L.maxpool2d(mu, 2)[0] - 1e-9)
    # approximation error bound (Clark 1961 reports errors of a few percent for such trees):
    # mean within 5% of the spread (+ Monte Carlo error), variance within 15%
    assert np.all(np.abs(m - mean[0]) <= 0.05 * sd + 4 * sd / np.sqrt(N_MC))
    assert np.all(np.abs(sd**2 / var[0] - 1) <= 0.15)
    # for a 1x2 window (two cells) the tree is a single Clark max: exact
    m2, v2 = L.gaussian_max(mu[0, 0, 0], s2[0, 0, 0], mu[0, 0, 1], s2[0, 0, 1])
    assert_moments(np.maximum(a[:, 0, 0], a[:, 0, 1]), m2, v2)


def test_sampled_maxpool_picks_each_cell_with_its_probability(rng):
    mu = np.array([0.0, 0.5, -0.3, 0.2])
    s2 = np.array([1.0, 0.3, 2.0, 0.6])
    # exact P(cell i is the max) = int phi_i(x) prod_{j != i} Phi_j(x) dx
    sd = np.sqrt(s2)
    exact = np.array([
        integrate.quad(lambda t, i=i: stats.norm.pdf(t, mu[i], sd[i]) * np.prod(
            [stats.norm.cdf(t, mu[j], sd[j]) for j in range(4) if j != i]), -np.inf, np.inf)[0]
        for i in range(4)])
    np.testing.assert_allclose(exact.sum(), 1.0, atol=1e-6)
    n = N_MC
    grid_mu = np.broadcast_to(mu.reshape(1, 2, 2, 1), (n, 2, 2, 1))
    grid_s2 = np.broadcast_to(s2.reshape(1, 2, 2, 1), (n, 2, 2, 1))
    noise = rng.standard_normal((n, 2, 2, 1))
    m_out, v_out, idx = L.sampled_maxpool2d(grid_mu, grid_s2, noise, 2)
    counts = np.bincount(idx.ravel(), minlength=4)
    assert stats.chisquare(counts, exact * n).pvalue > ALPHA
    # the pooled unit carries the picked cell's Gaussian
    np.testing.assert_array_equal(m_out.ravel(), mu[idx.ravel()])
    np.testing.assert_array_equal(v_out.ravel(), s2[idx.ravel()])
    # zero noise picks the largest mean
    _, _, idx0 = L.sampled_maxpool2d(grid_mu[:1], grid_s2[:1], np.zeros((1, 2, 2, 1)), 2)
    assert idx0.item() == 1


def test_sample_weights_probability(rng):
    theta = np.array([-0.9, -0.2, 0.0, 0.5, 0.99], np.float32)
    draws = np.stack([sample_weights(theta, rng) for _ in range(4000)])
    assert draws.dtype == np.int8 and set(np.unique(draws)) <= {-1, 1}
    assert_moments(draws, theta, 1 - theta**2)
