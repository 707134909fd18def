"""Quantizers: sign(0) = +1, the alias registry, and exact straight-through gradients in JAX."""

from __future__ import annotations

import numpy as np
import pytest

from bayesbin.nets import quantizers as q


def test_sign_of_zero_is_plus_one():
    x = np.array([-3.0, -1e-30, -0.0, 0.0, 1e-30, 2.0], dtype=np.float32)
    np.testing.assert_array_equal(q.sign(x), [-1, -1, 1, 1, 1, 1])
    np.testing.assert_array_equal(q.ste_sign(x), [-1, -1, 1, 1, 1, 1])
    for name in q.QUANTIZERS:
        out = q.get_quantizer(name).forward(x)
        np.testing.assert_array_equal(out, [-1, -1, 1, 1, 1, 1])
        assert out.dtype == x.dtype


def test_registry_and_errors():
    assert {"ste_sign", "approx_sign", "swish_sign"} <= set(q.QUANTIZERS)
    assert isinstance(q.get_quantizer("ste_sign"), q.SteSign)
    inst = q.SwishSign(beta=3.0)
    assert q.get_quantizer(inst) is inst
    assert q.SteSign(2.0) == q.SteSign(2.0) and q.SteSign(2.0) != q.SteSign(1.0)
    with pytest.raises(ValueError, match="kernel_quantizer must be one of"):
        q.get_quantizer("sgn", "kernel_quantizer")
    with pytest.raises(TypeError, match="quantizer"):
        q.get_quantizer(3)
    with pytest.raises(ValueError, match="clip_value"):
        q.SteSign(0.0)
    with pytest.raises(ValueError, match="already registered"):
        q.register_alias("ste_sign")(q.SteSign)


def test_pseudo_gradients_values():
    x = np.array([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5])
    np.testing.assert_array_equal(q.SteSign().pseudo_grad(x), [0, 1, 1, 1, 1, 1, 0])
    np.testing.assert_array_equal(q.SteSign(0.5).pseudo_grad(x), [0, 0, 1, 1, 1, 0, 0])
    np.testing.assert_allclose(q.ApproxSign().pseudo_grad(x), [0, 0, 1, 2, 1, 0, 0])
    # SignSwish derivative = d/dx [2 sigmoid(bx)(1 + bx(1 - sigmoid(bx))) - 1], by differences
    b, h = 5.0, 1e-6
    f = lambda t: 2 / (1 + np.exp(-b * t)) * (1 + b * t * (1 - 1 / (1 + np.exp(-b * t)))) - 1  # noqa: E731
    np.testing.assert_allclose(q.SwishSign(b).pseudo_grad(x), (f(x + h) - f(x - h)) / (2 * h),
                               rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", sorted(q.QUANTIZERS))
def test_jax_straight_through_gradient_is_exact(name):
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    from bayesbin.nets._jax import make_quantizer

    quant = q.get_quantizer(name)
    f = make_quantizer(quant)
    x = jnp.asarray(np.linspace(-2.0, 2.0, 81, dtype=np.float32))  # includes 0 and +-1
    cot = jnp.asarray(np.linspace(0.5, 1.5, 81, dtype=np.float32))
    y, vjp = jax.vjp(f, x)
    np.testing.assert_array_equal(np.asarray(y), q.sign(np.asarray(x)))
    (g,) = vjp(cot)
    np.testing.assert_array_equal(np.asarray(g), np.asarray(cot * quant.pseudo_grad(x, jnp)))
    if name == "ste_sign":  # the hard-tanh derivative: 1 on [-1, 1], cancelled outside
        grad = np.asarray(jax.grad(lambda t: f(t).sum())(x))
        np.testing.assert_array_equal(grad, (np.abs(np.asarray(x)) <= 1).astype(np.float32))
