"""Networks that binarize their inputs (``input_threshold``): the step is part of the network.

``+1`` where ``x > threshold``, else ``-1``, applied in training (JAX), in the numpy forward
passes (binary and CLT), in every prediction and in the exported/sampled networks; the packed
network then runs its first layer by XNOR-popcount and equals the float reference exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

import bayesbin
from bayesbin.bits import PackedNetwork, load_bits, reference_forward
from bayesbin.nets.architecture import parse_architecture
from bayesbin.nets.clt import clt_forward
from bayesbin.nets.export import build_network, network_template, run_network
from bayesbin.nets.layers import binarize

ARCHS = {"cnn": ("6C3-MP2-8C3-MP2-16FC-SM3", (8, 8, 1)), "mlp": ("20-16-12-4", (20,))}


def _random(rng, arch, shape, threshold):
    plan = parse_architecture(arch).resolve(shape)
    weights = {lay.name: rng.choice([-1, 1], size=lay.weight_shape) for lay in plan.layers}
    bn = {lay.name: {"gamma": rng.uniform(0.5, 2.0, lay.n_out), "beta": rng.normal(0, 0.5, lay.n_out),
                     "mean": rng.normal(0, 2, lay.n_out), "var": rng.uniform(1, 9, lay.n_out)}
          for lay in plan.layers}
    classes = list(range(plan.n_outputs))
    plain = build_network(network_template(plan, classes), weights, bn)
    tmpl = network_template(plan, classes, input_threshold=threshold)
    return plan, tmpl, weights, bn, plain, build_network(tmpl, weights, bn)


def test_binarize_is_strictly_greater_in_float32():
    f = np.float32
    x = np.array([-1.0, 0.0, 0.5, np.nextafter(f(0.5), f(1.0)), 1.0], np.float32)
    np.testing.assert_array_equal(binarize(x, 0.5), [-1, -1, -1, 1, 1])
    assert binarize(x, 0.5).dtype == np.float32
    # float32(0.1) > 0.1 in float64, but not in float32 (what JAX training compares)
    np.testing.assert_array_equal(binarize(np.array([0.1], np.float32), 0.1), [-1])
    np.testing.assert_array_equal(binarize(np.array([0.1], np.float64), 0.1), [-1])


@pytest.mark.parametrize("kind", sorted(ARCHS))
def test_binarize_step_leads_the_network(rng, kind):
    arch, shape = ARCHS[kind]
    t = 0.4
    _, tmpl, _, _, plain, net = _random(rng, arch, shape, t)
    assert tmpl["layers"][0] == {"kind": "binarize", "threshold": t}
    assert net["layers"][0] == {"kind": "binarize", "threshold": t}
    x = rng.random((64, *shape)).astype(np.float32)
    x[:4] = t  # exactly at the threshold: -1
    np.testing.assert_array_equal(run_network(net, x), run_network(plain, binarize(x, t)))
    np.testing.assert_array_equal(run_network(net, x)[:4],
                                  run_network(plain, -np.ones_like(x[:4])))
    assert not np.array_equal(run_network(net, x), run_network(plain, x))


def test_clt_forward_binarizes(rng):
    arch, shape = ARCHS["cnn"]
    plan, tmpl, _, bn, _, _ = _random(rng, arch, shape, 0.5)
    plain = network_template(plan, list(range(plan.n_outputs)))
    theta = {lay.name: rng.uniform(-1, 1, lay.weight_shape).astype(np.float32)
             for lay in plan.layers}
    bn = {k: {g: np.asarray(v[g], np.float32) for g in v} for k, v in bn.items()}
    x = rng.random((40, *shape)).astype(np.float32)
    a = clt_forward(tmpl, theta, bn, x)
    b = clt_forward(plain, theta, bn, binarize(x, 0.5))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("kind", sorted(ARCHS))
def test_jax_forwards_binarize(rng, kind):
    jax = pytest.importorskip("jax")
    jnp = pytest.importorskip("jax.numpy")
    J = pytest.importorskip("bayesbin.nets._jax")
    arch, shape = ARCHS[kind]
    plan, tmpl, _, _, plain, net = _random(rng, arch, shape, 0.25)
    x = rng.random((50, *shape)).astype(np.float32)
    a = J.run_binary_network(net, x)
    np.testing.assert_array_equal(a.argmax(1), run_network(net, x).argmax(1))
    np.testing.assert_allclose(a, run_network(net, x), rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(a, J.run_binary_network(plain, binarize(x, 0.25)))
    from test_backend import random_clt_params

    params, stats = random_clt_params(rng, plan)
    plain_t = network_template(plan, list(range(plan.n_outputs)))
    p, s = jax.tree.map(jnp.asarray, params), jax.tree.map(jnp.asarray, stats)
    mu = J.clt_forward(tmpl, p, s, jnp.asarray(x), pool="moments")[0]
    mu_ref = J.clt_forward(plain_t, p, s, jnp.asarray(binarize(x, 0.25)), pool="moments")[0]
    np.testing.assert_array_equal(np.asarray(mu), np.asarray(mu_ref))


@pytest.fixture(scope="module")
def bin_bnn(blocks, toy):
    pytest.importorskip("jax")
    from bayesbin import nets

    x, y, _, _ = blocks
    return nets.BNN(toy["arch"], **toy["bnn"], input_threshold=0.5).fit(x, y)


def test_bnn_trains_and_predicts_on_binarized_inputs(bin_bnn, blocks, toy):
    from bayesbin import nets

    x, y, xt, yt = blocks
    assert bin_bnn.network_["layers"][0] == {"kind": "binarize", "threshold": 0.5}
    assert bin_bnn.score(xt, yt) > 0.8  # 3 balanced classes: chance is 1/3
    # training sees only the binarized inputs: 0/1 images give the very same network
    ones = (x > 0.5).astype(np.float32)
    same = nets.BNN(toy["arch"], **toy["bnn"], input_threshold=0.5).fit(ones, y)
    for a, b in zip(same.network_["layers"], bin_bnn.network_["layers"], strict=True):
        for key in ("weights", "gamma", "beta", "mean", "var"):
            if key in a:
                np.testing.assert_array_equal(a[key], b[key])
    # and so does every prediction
    np.testing.assert_array_equal(bin_bnn.predict_proba(xt),
                                  bin_bnn.predict_proba((xt > 0.5).astype(np.float32)))
    real = nets.BNN(toy["arch"], **toy["bnn"]).fit(x, y)
    assert not np.array_equal(real.latent_weights_["conv1"], bin_bnn.latent_weights_["conv1"])


def test_bnn_to_bits_binarizes_and_is_exact(bin_bnn, blocks):
    _, _, xt, _ = blocks
    packed = bin_bnn.to_bits()
    assert isinstance(packed, PackedNetwork)
    assert packed.input_path(xt) == "binarize"
    net = bin_bnn.binary_network()
    np.testing.assert_array_equal(packed.decision_function(xt), reference_forward(net, xt))
    np.testing.assert_array_equal(packed.predict(xt), bin_bnn.predict(xt))
    np.testing.assert_allclose(packed.predict_proba(xt), bin_bnn.predict_proba(xt), atol=1e-5)


def test_pbnet_binarized_sampled_networks_pack_exactly(blocks, toy, tmp_path):
    pytest.importorskip("jax")
    from bayesbin import nets

    x, y, xt, yt = blocks
    est = nets.PBNet(toy["arch"], **toy["pbnet"], input_threshold=0.5).fit(x, y)
    assert np.mean(est.predict(xt, method="clt") == yt) > 0.6  # 3 classes: chance is 1/3
    idata = est.sample_networks(3, random_state=1)
    assert "x > 0.5" in idata.posterior.attrs["inputs"]
    ens = bayesbin.to_bits(idata)
    assert ens.input_threshold == 0.5
    members = nets.networks_from_idata(idata)
    assert all(m["layers"][0]["kind"] == "binarize" for m in members)
    logits = ens.member_logits(xt)
    for m, net in enumerate(members):
        np.testing.assert_array_equal(logits[m], reference_forward(net, xt))
    path = tmp_path / "draws.bbits"  # the file keeps the input step
    ens.save(path)
    back = load_bits(path)
    assert back.input_threshold == 0.5 and back.input_path(xt) == "binarize"
    np.testing.assert_array_equal(back.member_logits(xt), logits)
    packed_map = est.to_bits("map")
    np.testing.assert_array_equal(packed_map.decision_function(xt),
                                  reference_forward(est.binary_network("map"), xt))
