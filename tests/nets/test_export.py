"""Exported networks: interchange format, batch-norm re-estimation, CLT = binary net at |theta| = 1."""

from __future__ import annotations

import numpy as np
import pytest

from bayesbin.nets.architecture import parse_architecture
from bayesbin.nets.clt import clt_bn_statistics, clt_forward
from bayesbin.nets.export import (
    build_network,
    estimate_bn_statistics,
    network_template,
    run_network,
)
from bayesbin.nets.layers import conv2d, maxpool2d

CNN = ("6C3-MP2-8C3-MP2-16FC-SM3", (8, 8, 1))
MLP = ("20-16-12-4", (20,))


def _setup(rng, arch, shape, theta_pm1=True):
    plan = parse_architecture(arch).resolve(shape)
    tmpl = network_template(plan, ["a", "b", "c", "d"][: plan.n_outputs])
    weights = {lay.name: rng.choice([-1, 1], size=lay.weight_shape) for lay in plan.layers}
    bn = {lay.name: {"gamma": rng.uniform(0.5, 2, lay.n_out).astype(np.float32),
                     "beta": rng.normal(0, 0.5, lay.n_out).astype(np.float32),
                     "mean": np.zeros(lay.n_out), "var": np.ones(lay.n_out)}
          for lay in plan.layers}
    return plan, tmpl, weights, bn


def test_interchange_format(rng):
    plan, tmpl, weights, bn = _setup(rng, *CNN)
    net = build_network(tmpl, weights, bn)
    assert net["input_shape"] == (8, 8, 1) and net["classes"] == ["a", "b", "c"]
    conv = net["layers"][0]
    assert conv["kind"] == "conv2d" and conv["padding"] == "same"
    assert conv["weights"].dtype == np.int8 and conv["weights"].shape == (6, 1, 3, 3)
    assert net["layers"][1] == {"kind": "maxpool2d", "size": 2}
    norm = net["layers"][2]
    assert set(norm) >= {"gamma", "beta", "mean", "var", "eps"} and norm["gamma"].shape == (6,)
    assert net["layers"][3] == {"kind": "sign"}
    dense = next(lay for lay in net["layers"] if lay["kind"] == "dense")
    assert dense["weights"].shape == (16, 2 * 2 * 8)  # (out, in) after NHWC flatten
    with pytest.raises(ValueError, match=r"weights of conv1 must all be -1 or \+1"):
        build_network(tmpl, {**weights, "conv1": np.zeros((6, 1, 3, 3))}, bn)
    with pytest.raises(ValueError, match=r"x has per-row shape \(10,\)"):
        run_network(net, np.zeros((2, 10)))


def test_flatten_is_nhwc_c_order(rng):
    """The first dense layer after the convolutions reads feature (h * W + w) * C + c."""
    plan, tmpl, weights, bn = _setup(rng, *CNN)
    net = build_network(tmpl, weights, bn)
    x = rng.random((5, 8, 8, 1)).astype(np.float32)
    k = next(i for i, lay in enumerate(net["layers"]) if lay["kind"] == "flatten")
    maps = run_network(net, x, stop=k)  # (5, 2, 2, 8)
    flat = run_network(net, x, stop=k + 1)
    h, w, c = 1, 0, 5
    np.testing.assert_array_equal(flat[:, (h * 2 + w) * 8 + c], maps[:, h, w, c])


def test_bn_statistics_are_population_statistics(rng):
    plan, tmpl, weights, bn = _setup(rng, *CNN)
    x = rng.random((300, 8, 8, 1)).astype(np.float32)
    net = estimate_bn_statistics(build_network(tmpl, weights, bn), x)
    # first batch norm: statistics of the pooled conv scores over rows and positions
    s = maxpool2d(conv2d(x, weights["conv1"]), 2).reshape(-1, 6).astype(np.float64)
    np.testing.assert_allclose(net["layers"][2]["mean"], s.mean(0), rtol=1e-6)
    np.testing.assert_allclose(net["layers"][2]["var"], s.var(0), rtol=1e-5)
    # every batch norm now standardises its input on x: outputs have mean beta and sd |gamma|
    for j, lay in enumerate(net["layers"]):
        if lay["kind"] == "batchnorm":
            out = run_network(net, x, stop=j + 1).reshape(-1, lay["gamma"].shape[0])
            np.testing.assert_allclose(out.mean(0), lay["beta"], atol=1e-3)
            np.testing.assert_allclose(out.std(0), np.abs(lay["gamma"]), rtol=1e-3)


@pytest.mark.parametrize("arch, shape", [CNN, MLP])
@pytest.mark.parametrize("pool", ["moments", "sample"])
def test_clt_equals_binary_network_when_weights_are_certain(rng, arch, shape, pool):
    """With theta = ±1 every weight is deterministic: the Gaussian forward pass reproduces the
    binary network (same batch-norm statistics). Not to the last bit: a unit whose
    pre-activation lies within ~1e-4 of 0 gets a fractional Phi(mu / 1e-4) (about 0.02% of
    units here). Population statistics of the first batch norm agree exactly; later ones only
    nearly (a threshold that falls on an integer score flips a whole group of units, so tiny
    differences can be amplified; compared through the shared statistics instead)."""
    plan, tmpl, weights, bn = _setup(rng, arch, shape)
    theta = {k: w.astype(np.float32) for k, w in weights.items()}
    x = rng.random((400, *shape)).astype(np.float32)
    net = estimate_bn_statistics(build_network(tmpl, weights, bn), x)
    shared = {lay["name"]: {k: lay[k] for k in ("gamma", "beta", "mean", "var")}
              for lay in net["layers"] if lay["kind"] == "batchnorm"}
    mu, var = clt_forward(tmpl, theta, shared, x, pool=pool)
    out = run_network(net, x)
    # rows where some sign input is within 1e-3 of 0 may legitimately differ
    ambiguous = np.zeros(len(x), bool)
    for j, lay in enumerate(net["layers"]):
        if lay["kind"] == "sign":
            pre = run_network(net, x, stop=j).reshape(len(x), -1)
            ambiguous |= np.abs(pre).min(axis=1) < 1e-3
    assert (~ambiguous).sum() >= len(x) // 2  # enough rows left to compare
    np.testing.assert_allclose(mu[~ambiguous], out[~ambiguous], atol=1e-3)
    assert np.median(var) < 1e-6
    stats = clt_bn_statistics(tmpl, theta, bn, x, pool=pool)
    first = plan.layers[0].name
    np.testing.assert_allclose(stats[first]["mean"], shared[first]["mean"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats[first]["var"], shared[first]["var"], rtol=1e-4)
