"""The model description of bayesbin's linear classifiers: ``ModelSpec`` and how a model carries it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pymc as pm

__all__ = ["ModelSpec", "get_spec", "is_bayesbin_model", "attach_spec"]

_SPEC_ATTR = "_bayesbin_spec"


@dataclass(frozen=True)
class ModelSpec:
    """What a bayesbin builder made; read by samplers, posterior tools and the estimator.

    Attributes
    ----------
    family : {"logistic", "softmax"}
    form : {"single", "two_output", "softmax"}
    likelihood : {"bernoulli", "categorical", "multinomial"}
    encoding : {"01", "pm1"}
        Effective weight ``W = w`` or ``W = 2 w - 1``.
    n_features : int
        D, the number of inputs.
    n_classes : int
        K (2 for the logistic models).
    weight_shape : tuple of int
        Shape of ``w``: (D,), (2, D) or (D, K).
    weight_dims : tuple of str
        Named dims of ``w``.
    prior_p : ndarray of shape ``weight_shape``
        Bernoulli prior probabilities of ``w = 1`` (unused when relaxed).
    bias : bool
        Whether a learned bias ``b`` (scalar for logistic, (K,) for softmax) is in the model.
    bias_sigma : float
        Prior sd of the bias.
    scale : bool or float
        ``False`` (1), ``True`` (learned ``"scale"``, HalfNormal(scale_sigma)) or a fixed float.
    scale_sigma : float
        Prior scale of the learned logit scale.
    relaxed : tuple of float or None
        ``(a, b)`` of the Beta prior when weights are relaxed to [0, 1], else None.
    """

    family: str
    form: str
    likelihood: str
    encoding: str
    n_features: int
    n_classes: int
    weight_shape: tuple
    weight_dims: tuple
    prior_p: np.ndarray = field(repr=False, compare=False)
    bias: bool = False
    bias_sigma: float = 5.0
    scale: bool | float = False
    scale_sigma: float = 1.0
    relaxed: tuple | None = None

    @property
    def learned_scale(self) -> bool:
        """Whether the logit scale is a model variable ``"scale"``."""
        return self.scale is True

    @property
    def fixed_scale(self) -> float:
        """The fixed logit scale (1.0 when off; meaningless when learned)."""
        if self.scale is False or self.scale is True:
            return 1.0
        return float(self.scale)

    def to_dict(self) -> dict:
        """JSON-friendly description (stored in result attributes)."""
        return {
            "family": self.family,
            "form": self.form,
            "likelihood": self.likelihood,
            "encoding": self.encoding,
            "n_features": self.n_features,
            "n_classes": self.n_classes,
            "weight_shape": list(self.weight_shape),
            "weight_dims": list(self.weight_dims),
            "bias": self.bias,
            "bias_sigma": self.bias_sigma,
            "scale": self.scale,
            "scale_sigma": self.scale_sigma,
            "relaxed": list(self.relaxed) if self.relaxed is not None else None,
        }


def get_spec(model: pm.Model) -> ModelSpec:
    """Return the :class:`ModelSpec` of a model built by bayesbin.

    Raises
    ------
    ValueError
        If ``model`` was not built by :func:`binary_logistic` or :func:`binary_softmax`.
    """
    spec = getattr(model, _SPEC_ATTR, None)
    if spec is None:
        raise ValueError(
            "model was not built by bayesbin.binary_logistic or bayesbin.binary_softmax"
        )
    return spec


def is_bayesbin_model(model) -> bool:
    """Whether ``model`` carries a bayesbin :class:`ModelSpec`."""
    return getattr(model, _SPEC_ATTR, None) is not None


def attach_spec(model: pm.Model, spec: ModelSpec) -> None:
    """Record ``spec`` on ``model`` (read back by :func:`get_spec`)."""
    setattr(model, _SPEC_ATTR, spec)
