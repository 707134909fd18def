"""Sign quantizers with straight-through pseudo-gradients, registered under string aliases.

A quantizer maps a real tensor to {-1, +1} in the forward pass and replaces the (zero almost
everywhere) derivative of the sign by a *pseudo-gradient* in the backward pass, as in larq
(``larq/quantizers.py``). The sign convention is stated once and used everywhere in
:mod:`bayesbin.nets`: ``sign(x) = +1 if x >= 0 else -1``, so **sign(0) = +1** (and sign(-0.0) =
+1; NaN maps to -1, but NaN never reaches a quantizer: inputs are checked to be finite).

This module is numpy only. The JAX backend (:mod:`bayesbin.nets._jax`) turns a quantizer into a
differentiable function with ``jax.custom_vjp`` from :meth:`Quantizer.forward` and
:meth:`Quantizer.pseudo_grad`, so the maths lives here and is tested here.

Examples
--------
>>> import numpy as np
>>> from bayesbin.nets.quantizers import get_quantizer
>>> q = get_quantizer("ste_sign")
>>> q.forward(np.array([-2.0, -0.0, 0.0, 0.5]))
array([-1.,  1.,  1.,  1.])
>>> q.pseudo_grad(np.array([-2.0, -1.0, 0.0, 1.5]))
array([0., 1., 1., 0.])
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = [
    "QUANTIZERS",
    "ApproxSign",
    "Quantizer",
    "SteSign",
    "SwishSign",
    "get_quantizer",
    "register_alias",
    "sign",
    "ste_sign",
]

QUANTIZERS: dict[str, type[Quantizer]] = {}
"""Registry: string alias -> quantizer class (filled by :func:`register_alias`)."""


def register_alias(name: str) -> Callable[[type[Quantizer]], type[Quantizer]]:
    """Class decorator registering a quantizer under a string alias (larq style).

    Parameters
    ----------
    name : str
        The alias, e.g. ``"ste_sign"``.

    Returns
    -------
    callable
        The decorator; it returns the class unchanged.
    """

    def decorate(cls: type[Quantizer]) -> type[Quantizer]:
        if name in QUANTIZERS:
            raise ValueError(f"quantizer alias {name!r} is already registered")
        QUANTIZERS[name] = cls
        cls.name = name
        return cls

    return decorate


def sign(x, xp=np):
    """Binary sign with sign(0) = +1.

    Parameters
    ----------
    x : ndarray of any shape
        Real values.
    xp : module
        Array namespace (``numpy`` by default; the JAX backend passes ``jax.numpy``).

    Returns
    -------
    ndarray of the same shape and dtype as ``x``
        ``+1`` where ``x >= 0`` (including 0 and -0.0), ``-1`` elsewhere.
    """
    one = xp.ones_like(x)
    return xp.where(x >= 0, one, -one)


def ste_sign(x, clip_value: float = 1.0):
    r"""Forward pass of the straight-through sign (numpy): :func:`sign`.

    .. math:: q(x) = \begin{cases} +1 & x \ge 0 \\ -1 & x < 0 \end{cases},
       \qquad \frac{\partial q}{\partial x} := 1_{|x| \le \text{clip\_value}}

    The pseudo-gradient (hard-tanh derivative, "cancelled" where :math:`|x| > 1`) is
    :meth:`SteSign.pseudo_grad`; the JAX backend applies it in the backward pass.

    Parameters
    ----------
    x : ndarray of any shape
    clip_value : float
        Where the gradient is cancelled (larq's default 1.0).

    Returns
    -------
    ndarray of the same shape as ``x``, values in {-1, +1}
    """
    return SteSign(clip_value).forward(x)


class Quantizer:
    """A sign quantizer: ``forward`` is :func:`sign`, ``pseudo_grad`` the backward surrogate.

    Subclasses set ``pseudo_grad``; all forward passes are the same sign, so a network trained
    with any registered quantizer is a binary network (exportable to packed bits).
    """

    name = "quantizer"

    def forward(self, x, xp=np):
        """Quantized values ``q(x)``: :func:`sign` (sign(0) = +1).

        Parameters
        ----------
        x : ndarray of any shape
        xp : module
            Array namespace.

        Returns
        -------
        ndarray of the same shape and dtype, values in {-1, +1}
        """
        return sign(x, xp)

    def pseudo_grad(self, x, xp=np):  # pragma: no cover - abstract
        """Return the surrogate derivative ``dq/dx`` of the backward pass (shape of ``x``)."""
        raise NotImplementedError

    def get_config(self) -> dict:
        """Return the constructor arguments (for ``repr``, equality and hashing)."""
        return {}

    def __repr__(self) -> str:
        """Show the class and its configuration."""
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other) -> bool:
        """Compare class and configuration (quantizers key the compiled-step cache)."""
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self) -> int:
        """Hash class and configuration."""
        return hash((type(self).__name__, tuple(sorted(self.get_config().items()))))


@register_alias("ste_sign")
class SteSign(Quantizer):
    r"""Straight-through sign (Hubara, Courbariaux et al. 2016; larq ``SteSign``).

    .. math:: q(x) = \operatorname{sign}(x) \text{ with } \operatorname{sign}(0) = +1, \qquad
       \frac{\partial q}{\partial x} = 1_{|x| \le c}

    i.e. the derivative of the hard tanh :math:`\operatorname{clip}(x, -c, c)`: the gradient
    passes unchanged where :math:`|x| \le c` and is cancelled where :math:`|x| > c`.

    Parameters
    ----------
    clip_value : float
        :math:`c`, default 1.0.
    """

    def __init__(self, clip_value: float = 1.0):
        if not np.isfinite(clip_value) or clip_value <= 0:
            raise ValueError(f"clip_value must be a positive number; got {clip_value!r}")
        self.clip_value = float(clip_value)

    def pseudo_grad(self, x, xp=np):
        """``1`` where ``|x| <= clip_value``, else ``0`` (same shape and dtype as ``x``)."""
        return xp.where(xp.abs(x) <= self.clip_value, xp.ones_like(x), xp.zeros_like(x))

    def get_config(self) -> dict:
        """``{"clip_value": c}``."""
        return {"clip_value": self.clip_value}


@register_alias("approx_sign")
class ApproxSign(Quantizer):
    r"""Sign with the piecewise-linear ApproxSign gradient (Bi-Real Net; larq ``ApproxSign``).

    .. math:: q(x) = \operatorname{sign}(x), \qquad
       \frac{\partial q}{\partial x} = \max(0,\ 2 - 2|x|)
    """

    def pseudo_grad(self, x, xp=np):
        """``max(0, 2 - 2|x|)`` (same shape and dtype as ``x``)."""
        return xp.maximum(2.0 - 2.0 * xp.abs(x), xp.zeros_like(x))


@register_alias("swish_sign")
class SwishSign(Quantizer):
    r"""Sign with the SignSwish gradient (BNN+; larq ``SwishSign``).

    .. math:: q(x) = \operatorname{sign}(x), \qquad
       \frac{\partial q}{\partial x} = \frac{\beta\,(2 - \beta x \tanh(\beta x / 2))}
       {1 + \cosh(\beta x)}

    Parameters
    ----------
    beta : float
        Sharpness, default 5.0.
    """

    def __init__(self, beta: float = 5.0):
        if not np.isfinite(beta) or beta <= 0:
            raise ValueError(f"beta must be a positive number; got {beta!r}")
        self.beta = float(beta)

    def pseudo_grad(self, x, xp=np):
        """Return the SignSwish derivative (same shape and dtype as ``x``)."""
        b = self.beta
        bx = xp.clip(b * x, -40.0, 40.0)  # cosh overflows beyond; the gradient is ~0 there
        return b * (2.0 - bx * xp.tanh(bx / 2.0)) / (1.0 + xp.cosh(bx))

    def get_config(self) -> dict:
        """``{"beta": beta}``."""
        return {"beta": self.beta}


def get_quantizer(identifier, name: str = "quantizer") -> Quantizer:
    """Resolve a quantizer from an alias or an instance.

    Parameters
    ----------
    identifier : str or Quantizer
        A registered alias (``"ste_sign"``, ``"approx_sign"``, ``"swish_sign"``) or an instance.
    name : str
        Argument name used in error messages.

    Returns
    -------
    Quantizer
    """
    if isinstance(identifier, Quantizer):
        return identifier
    if isinstance(identifier, str):
        if identifier not in QUANTIZERS:
            raise ValueError(
                f"{name} must be one of {sorted(QUANTIZERS)} or a Quantizer; got {identifier!r}"
            )
        return QUANTIZERS[identifier]()
    raise TypeError(
        f"{name} must be a quantizer alias (str) or a Quantizer; got {type(identifier).__name__}"
    )
