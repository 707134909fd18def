"""The JAX backend against the numpy inference: same binary net, same CLT forward, gradients."""

from __future__ import annotations

import numpy as np
import pytest

from bayesbin.nets.architecture import parse_architecture
from bayesbin.nets.clt import clt_forward
from bayesbin.nets.export import build_network, network_template, run_network

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
J = pytest.importorskip("bayesbin.nets._jax")

ARCHS = {"cnn": ("6C3-MP2-8C3-MP2-16FC-SM3", (8, 8, 1)), "mlp": ("20-16-12-4", (20,))}


def random_net(rng, arch: str, shape, output_sign=False):
    plan = parse_architecture(arch).resolve(shape, output_sign=output_sign)
    tmpl = network_template(plan, list(range(plan.n_outputs)))
    weights = {lay.name: rng.choice([-1, 1], size=lay.weight_shape) for lay in plan.layers}
    bn = {lay.name: {"gamma": rng.uniform(0.5, 2.0, lay.n_out), "beta": rng.normal(0, 0.5, lay.n_out),
                     "mean": rng.normal(0, 2, lay.n_out), "var": rng.uniform(1, 9, lay.n_out)}
          for lay in plan.layers}
    return plan, tmpl, build_network(tmpl, weights, bn)


def random_clt_params(rng, plan):
    """Random latent weights, batch-norm parameters and statistics of every layer (float32)."""
    params = {lay.name: {"w": rng.uniform(-2, 2, lay.weight_shape).astype(np.float32),
                         "gamma": rng.uniform(0.5, 2.0, lay.n_out).astype(np.float32),
                         "beta": rng.normal(0, 0.5, lay.n_out).astype(np.float32)}
              for lay in plan.layers}
    stats = {lay.name: {"mean": rng.normal(0, 1, lay.n_out).astype(np.float32),
                        "var": rng.uniform(1, 9, lay.n_out).astype(np.float32)}
             for lay in plan.layers}
    return params, stats


@pytest.mark.parametrize("kind", sorted(ARCHS))
def test_numpy_forward_equals_jax_forward(rng, kind):
    arch, shape = ARCHS[kind]
    _, _, net = random_net(rng, arch, shape)
    # dyadic pixels (k/8): first-layer sums are exact in float32 in both backends
    x = (rng.integers(0, 9, size=(300, *shape)) / 8).astype(np.float32)
    a = run_network(net, x)
    b = J.run_binary_network(net, x)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(a.argmax(1), b.argmax(1))
    # hidden ±1 activations agree exactly
    stop = max(i for i, lay in enumerate(net["layers"]) if lay["kind"] == "sign") + 1
    hid_np = run_network(net, x, stop=stop)
    hid_jax = J.run_binary_network({**net, "layers": net["layers"][:stop]}, x)
    np.testing.assert_array_equal(hid_np, hid_jax)
    assert set(np.unique(hid_np)) <= {-1.0, 1.0}


@pytest.mark.parametrize("pool", ["moments", "sample"])
def test_numpy_clt_forward_equals_jax(rng, pool):
    arch, shape = ARCHS["cnn"]
    plan, tmpl, _ = random_net(rng, arch, shape)
    params, stats = random_clt_params(rng, plan)
    x = rng.random((50, *shape)).astype(np.float32)
    theta = {k: np.tanh(p["w"]) for k, p in params.items()}
    bn = {k: {**{g: params[k][g] for g in ("gamma", "beta")}, **stats[k]} for k in params}
    mu_np, _ = clt_forward(tmpl, theta, bn, x, pool=pool)
    fwd = jax.jit(lambda p, s, v: J.clt_forward(tmpl, p, s, v, pool=pool)[0])
    mu_jax = fwd(jax.tree.map(jnp.asarray, params), jax.tree.map(jnp.asarray, stats),
                 jnp.asarray(x))
    np.testing.assert_allclose(mu_np, np.asarray(mu_jax), rtol=1e-4, atol=1e-4)


def test_clark_gradient_matches_autodiff(rng):
    """The hand-written gradient of Clark's max equals autodiff through its formulas."""
    from jax.scipy.special import ndtr

    from bayesbin.nets.layers import gaussian_max

    m1, m2 = (jnp.asarray(rng.normal(0, 1.5, 40)) for _ in range(2))
    v1, v2 = (jnp.asarray(rng.uniform(0.01, 3, 40)) for _ in range(2))
    c_mean, c_var = (jnp.asarray(rng.normal(size=40)) for _ in range(2))

    def loss(f):
        return lambda *a: (f(*a)[0] * c_mean + f(*a)[1] * c_var).sum()

    ref = jax.jit(jax.grad(loss(lambda *a: gaussian_max(*a, xp=jnp, ndtr=ndtr)),
                           argnums=(0, 1, 2, 3)))(m1, v1, m2, v2)
    got = jax.jit(jax.grad(loss(J.gaussian_max), argnums=(0, 1, 2, 3)))(m1, v1, m2, v2)
    for r, g in zip(ref, got, strict=True):
        np.testing.assert_allclose(np.asarray(g), np.asarray(r), rtol=2e-4, atol=1e-5)


def test_jax_gaussian_conv_matches_numpy(rng):
    from bayesbin.nets.layers import gaussian_conv2d

    phi = rng.uniform(-1, 1, (2, 5, 4, 3)).astype(np.float32)
    theta = rng.uniform(-1, 1, (4, 3, 3, 3)).astype(np.float32)
    a = gaussian_conv2d(phi, 1 - phi**2, theta)
    b = J.gaussian_conv2d(jnp.asarray(phi), jnp.asarray(1 - phi**2), jnp.asarray(theta))
    for u, v in zip(a, b, strict=True):
        np.testing.assert_allclose(u, np.asarray(v), rtol=1e-5, atol=1e-4)


def test_trainer_noise_size(rng):
    arch, shape = ARCHS["cnn"]
    plan = parse_architecture(arch).resolve(shape)
    tmpl = network_template(plan, [0, 1, 2])
    shapes = {lay.name: lay.weight_shape for lay in plan.layers}
    tr = J.Trainer("pbnet", tmpl, shapes, lr=1e-2, lr_schedule="constant", total_steps=10,
                   pool="sample", seed=3)
    # pools see 8x8x6 and 4x4x8 maps; signs follow 4x4x6, 2x2x8 and 16 units
    assert tr.noise_size(5) == (5 * (8 * 8 * 6 + 4 * 4 * 8), 5 * (4 * 4 * 6 + 2 * 2 * 8 + 16))


def test_padded_batch_equals_unpadded(rng):
    """A batch padded to a fixed shape with mask 0 gives the same step as its real rows
    (PBNet: masked stochastic batch-norm statistics, masked loss)."""
    arch, shape = ARCHS["mlp"]
    plan = parse_architecture(arch).resolve(shape)
    tmpl = network_template(plan, list(range(4)))
    shapes = {lay.name: lay.weight_shape for lay in plan.layers}
    opts = dict(lr=1e-2, lr_schedule="constant", total_steps=10, seed=3,
                kernel_quantizer=_ste(), activation_quantizer=_ste(), activations="mean")
    tr = J.Trainer("pbnet", tmpl, shapes, **opts)
    s0 = tr.init(np.random.default_rng(0), 0.5)
    x = rng.random((4, *shape)).astype(np.float32)
    y = rng.integers(0, 4, 4)
    xp = np.concatenate([x, rng.random((3, *shape)).astype(np.float32)])
    yp = np.concatenate([y, [0, 0, 0]])
    mask = np.array([1, 1, 1, 1, 0, 0, 0], np.float32)
    s_pad, loss_pad, _ = tr.step(s0, xp, yp, mask, 0)
    s_4, loss_4, _ = tr.step(s0, x, y, np.ones(4, np.float32), 0)
    np.testing.assert_allclose(float(loss_pad), float(loss_4), rtol=1e-5)
    for a, b in zip(jax.tree.leaves(s_pad[:2]), jax.tree.leaves(s_4[:2]), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
    # and the step changed something
    assert not np.allclose(np.asarray(s_4[0]["dense1"]["w"]), np.asarray(s0[0]["dense1"]["w"]))


def _ste():
    from bayesbin.nets.quantizers import SteSign

    return SteSign()
