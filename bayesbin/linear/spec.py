"""The model description of bayesbin's linear classifiers: ``ModelSpec`` and how a model carries it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import pymc as pm

__all__ = [
    "Encoding",
    "Family",
    "Form",
    "Likelihood",
    "ModelSpec",
    "VarNames",
    "WeightLayout",
    "attach_data",
    "attach_spec",
    "attached_data",
    "attached_spec",
    "weight_layout",
]

Family = Literal["logistic", "softmax"]
Form = Literal["single", "two_output", "softmax"]
Likelihood = Literal["bernoulli", "categorical", "multinomial"]
Encoding = Literal["01", "pm1"]

_SPEC_ATTR = "_bayesbin_spec"
_DATA_ATTR = "_bayesbin_data"
_FORMS = {"logistic": ("single", "two_output"), "softmax": ("softmax",)}
_LIKELIHOODS = {"logistic": ("bernoulli",), "softmax": ("categorical", "multinomial")}
_REQUIRED_KEYS = (
    "family",
    "form",
    "encoding",
    "n_features",
    "n_classes",
    "weight_shape",
    "weight_dims",
    "bias",
    "scale",
)


def weight_layout(form: Form, n_features: int, n_classes: int) -> tuple[tuple, tuple]:
    """Shape and dim names of ``w`` for a form: (D,), (2, D) or (D, K).

    Returns
    -------
    shape : tuple of int
    dims : tuple of str
    """
    d, k = int(n_features), int(n_classes)
    return {
        "single": ((d,), ("feature",)),
        "two_output": ((2, d), ("output", "feature")),
        "softmax": ((d, k), ("feature", "class")),
    }[form]


@dataclass(frozen=True)
class VarNames:
    """Names of a model's variables: the builders' defaults, or a hand-written model's own.

    Attributes
    ----------
    w : str
        The Bernoulli weights.
    b, scale : str or None
        The learned bias and logit scale (None when the model has none).
    y_obs : str
        The observed likelihood variable.
    x, y : str or None
        ``pm.Data`` names of the inputs and of the labels (None when they are constants in the
        graph: such a model cannot take new data with :func:`bayesbin.set_data`).
    """

    w: str = "w"
    b: str | None = None
    scale: str | None = None
    y_obs: str = "y_obs"
    x: str | None = "x"
    y: str | None = "y"

    def to_dict(self) -> dict:
        """JSON-friendly form."""
        return {k: getattr(self, k) for k in ("w", "b", "scale", "y_obs", "x", "y")}


@dataclass(frozen=True)
class WeightLayout:
    """How a hand-written model's ``w`` maps to the canonical layout of its form.

    The canonical layouts are (D,) (single), (2, D) (two-output: row 1 minus row 0) and (D, K)
    (softmax). ``canonical = w.transpose(perm)``, then reversed along its first axis when
    ``reverse`` (a two-output model written as ``w[0] - w[1]``).

    Attributes
    ----------
    shape : tuple of int
        Shape of the model's own ``w``.
    dims : tuple of str
        Its dim names (as in the posterior).
    perm : tuple of int
        Axis permutation to the canonical layout.
    reverse : bool
        Reverse the canonical first axis.
    """

    shape: tuple
    dims: tuple
    perm: tuple
    reverse: bool = False

    def to_dict(self) -> dict:
        """JSON-friendly form."""
        return {
            "shape": list(self.shape),
            "dims": list(self.dims),
            "perm": list(self.perm),
            "reverse": self.reverse,
        }


@dataclass(frozen=True)
class ModelSpec:
    """What a bayesbin builder made; read by samplers, posterior tools, the estimator and files.

    The one description of a linear model: result attributes (``bayesbin_spec``), the
    estimator and the packed-bit file headers all store :meth:`to_dict` and read it back with
    :meth:`from_dict`. Fields are checked for consistency when the spec is made.

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
    names : VarNames
        The model's variable names (``b``/``scale`` filled in as ``"b"``/``"scale"`` when the
        model has them and no other name is given).
    layout : WeightLayout or None
        How the model's ``w`` maps to ``weight_shape``; None when it already is canonical.
    """

    family: Family
    form: Form
    likelihood: Likelihood
    encoding: Encoding
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
    names: VarNames = field(default_factory=VarNames)
    layout: WeightLayout | None = None

    def __post_init__(self):
        """Check the fields for consistency and normalise their types."""
        family, form = self.family, self.form
        if family not in _FORMS or form not in _FORMS[family]:
            raise ValueError(f"spec has an unknown family/form {family!r}/{form!r}")
        if self.likelihood not in _LIKELIHOODS[family]:
            raise ValueError(
                f"spec likelihood must be one of {list(_LIKELIHOODS[family])} for the {family} "
                f"family; got {self.likelihood!r}"
            )
        if self.encoding not in ("01", "pm1"):
            raise ValueError(f"spec encoding must be '01' or 'pm1'; got {self.encoding!r}")
        d, k = self.n_features, self.n_classes
        for name, v in (("n_features", d), ("n_classes", k)):
            if isinstance(v, bool) or not isinstance(v, int | np.integer):
                raise ValueError(f"spec {name} must be an integer; got {v!r}")
        d, k = int(d), int(k)
        if d < 1 or k < 2 or (family == "logistic" and k != 2):
            raise ValueError(f"spec has n_features={d}, n_classes={k}")
        shape = tuple(int(v) for v in self.weight_shape)
        dims = tuple(str(v) for v in self.weight_dims)
        expected = weight_layout(form, d, k)
        if shape != expected[0] or len(dims) != len(shape):
            raise ValueError(
                f"spec weight_shape {shape} does not match form {form!r} with n_features={d}, "
                f"n_classes={k} (expected {expected[0]})"
            )
        scale = self.scale
        if not isinstance(scale, bool | np.bool_):
            try:
                scale = float(scale)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"spec scale must be a bool or a float; got {scale!r}") from exc
            if not (np.isfinite(scale) and scale > 0):
                raise ValueError(f"spec fixed scale must be a positive float; got {scale}")
        else:
            scale = bool(scale)
        for name in ("bias_sigma", "scale_sigma"):
            v = float(getattr(self, name))
            if not (np.isfinite(v) and v > 0):
                raise ValueError(f"spec {name} must be a positive float; got {v}")
            object.__setattr__(self, name, v)
        relaxed = self.relaxed
        if relaxed is not None:
            relaxed = tuple(float(v) for v in relaxed)
            if len(relaxed) != 2 or not all(np.isfinite(v) and v > 0 for v in relaxed):
                raise ValueError(f"spec relaxed must be None or (a, b) > 0; got {self.relaxed!r}")
        p = np.asarray(self.prior_p, dtype=np.float64)
        try:
            p = np.broadcast_to(p, shape).copy()
        except ValueError as exc:
            raise ValueError(
                f"spec prior_p does not broadcast to the weight shape {shape}"
            ) from exc
        if not np.all(np.isfinite(p)) or np.any((p < 0) | (p > 1)):
            raise ValueError("spec prior_p must lie in [0, 1]")
        p.setflags(write=False)
        names = self.names if isinstance(self.names, VarNames) else VarNames(**self.names)
        updates = {}
        if self.bias and names.b is None:
            updates["b"] = "b"
        if not self.bias and names.b is not None:
            raise ValueError(f"spec has no bias but names a bias variable {names.b!r}")
        if scale is True and names.scale is None:
            updates["scale"] = "scale"
        if scale is not True and names.scale is not None:
            raise ValueError(f"spec has no learned scale but names {names.scale!r}")
        names = replace(names, **updates) if updates else names
        layout = self.layout
        if layout is not None:
            if not isinstance(layout, WeightLayout):
                layout = WeightLayout(**layout)
            layout = WeightLayout(
                tuple(int(v) for v in layout.shape),
                tuple(str(v) for v in layout.dims),
                tuple(int(v) for v in layout.perm),
                bool(layout.reverse),
            )
            if sorted(layout.perm) != list(range(len(shape))) or len(layout.dims) != len(
                layout.shape
            ):
                raise ValueError(f"spec layout perm {layout.perm} does not fit {shape}")
            if tuple(layout.shape[i] for i in layout.perm) != shape:
                raise ValueError(
                    f"spec layout of shape {layout.shape} with perm {layout.perm} does not give "
                    f"the weight shape {shape}"
                )
            if layout.perm == tuple(range(len(shape))) and not layout.reverse:
                if layout.dims == dims:
                    layout = None
        for name, v in (
            ("names", names),
            ("layout", layout),
            ("n_features", d),
            ("n_classes", k),
            ("weight_shape", shape),
            ("weight_dims", dims),
            ("scale", scale),
            ("bias", bool(self.bias)),
            ("relaxed", relaxed),
            ("prior_p", p),
        ):
            object.__setattr__(self, name, v)

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

    @property
    def w_shape(self) -> tuple:
        """Shape of the model's own ``w`` (the posterior variable)."""
        return self.weight_shape if self.layout is None else self.layout.shape

    @property
    def w_dims(self) -> tuple:
        """Dims of the model's own ``w`` (the posterior variable)."""
        return self.weight_dims if self.layout is None else self.layout.dims

    def to_canonical(self, w: np.ndarray) -> np.ndarray:
        """Model-layout weights ``(..., *w_shape)`` to the canonical ``(..., *weight_shape)``."""
        w = np.asarray(w)
        if self.layout is None:
            return w
        lead = w.ndim - len(self.layout.shape)
        out = np.transpose(w, (*range(lead), *(lead + i for i in self.layout.perm)))
        if self.layout.reverse:
            out = np.flip(out, axis=lead)
        return out

    def from_canonical(self, w: np.ndarray) -> np.ndarray:
        """Canonical weights ``(..., *weight_shape)`` to the model's layout ``(..., *w_shape)``."""
        w = np.asarray(w)
        if self.layout is None:
            return w
        lead = w.ndim - len(self.weight_shape)
        if self.layout.reverse:
            w = np.flip(w, axis=lead)
        inverse = np.argsort(self.layout.perm)
        return np.transpose(w, (*range(lead), *(lead + int(i) for i in inverse)))

    def to_dict(self) -> dict:
        """JSON-friendly description; :meth:`from_dict` reads it back.

        ``prior_p`` is a float when every weight has the same prior, else a nested list of the
        weight shape.
        """
        p = self.prior_p
        flat = p.reshape(-1)
        uniform = flat.size == 0 or bool(np.all(flat == flat[0]))
        return {
            "family": self.family,
            "form": self.form,
            "likelihood": self.likelihood,
            "encoding": self.encoding,
            "n_features": self.n_features,
            "n_classes": self.n_classes,
            "weight_shape": list(self.weight_shape),
            "weight_dims": list(self.weight_dims),
            "prior_p": float(flat[0]) if uniform else p.tolist(),
            "bias": self.bias,
            "bias_sigma": self.bias_sigma,
            "scale": self.scale,
            "scale_sigma": self.scale_sigma,
            "relaxed": list(self.relaxed) if self.relaxed is not None else None,
            "names": self.names.to_dict(),
            "layout": None if self.layout is None else self.layout.to_dict(),
        }

    @classmethod
    def from_dict(cls, data) -> ModelSpec:
        """Read a spec written by :meth:`to_dict` (a dict, or that dict as JSON text).

        Descriptions written before ``prior_p`` and ``likelihood`` were stored get the
        builders' defaults (p = 0.5; Bernoulli or categorical likelihood).

        Raises
        ------
        ValueError
            For missing keys, wrong types or inconsistent fields, naming the field.
        """
        if isinstance(data, ModelSpec):
            return data
        if isinstance(data, bytes | str):
            try:
                data = json.loads(data)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise ValueError(f"the model spec is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise TypeError(
                f"spec must be a ModelSpec, dict or JSON string; got {type(data).__name__}"
            )
        missing = [k for k in _REQUIRED_KEYS if k not in data]
        if missing:
            raise ValueError(f"the model spec lacks the keys {missing}")
        family = data["family"]
        kwargs = {k: data[k] for k in _REQUIRED_KEYS}
        kwargs["likelihood"] = data.get(
            "likelihood", "bernoulli" if family == "logistic" else "categorical"
        )
        for key, default in (("bias_sigma", 5.0), ("scale_sigma", 1.0), ("relaxed", None)):
            kwargs[key] = data.get(key, default)
        names = data.get("names") or {}
        if not isinstance(names, dict) or set(names) - set(VarNames().to_dict()):
            raise ValueError(
                f"the model spec's names must be a dict of {list(VarNames().to_dict())}"
            )
        kwargs["names"] = VarNames(**names)
        layout = data.get("layout")
        if layout is not None:
            if not isinstance(layout, dict) or set(layout) != {"shape", "dims", "perm", "reverse"}:
                raise ValueError("the model spec's layout must hold shape, dims, perm, reverse")
            kwargs["layout"] = WeightLayout(**layout)
        if not isinstance(kwargs["weight_shape"], list | tuple) or not isinstance(
            kwargs["weight_dims"], list | tuple
        ):
            raise ValueError("the model spec's weight_shape and weight_dims must be lists")
        kwargs["prior_p"] = np.asarray(data.get("prior_p", 0.5), dtype=np.float64)
        return cls(**kwargs)


def attached_spec(model) -> ModelSpec | None:
    """Return the :class:`ModelSpec` recorded on ``model`` (builder or recognition), or None."""
    return getattr(model, _SPEC_ATTR, None)


def attach_spec(model: pm.Model, spec: ModelSpec) -> None:
    """Record ``spec`` on ``model`` (read back by :func:`bayesbin.get_spec`)."""
    setattr(model, _SPEC_ATTR, spec)


def attach_data(model: pm.Model, data: tuple) -> None:
    """Record the graph variables ``(x, y)`` holding a recognised model's data."""
    setattr(model, _DATA_ATTR, data)


def attached_data(model) -> tuple | None:
    """Return the ``(x, y)`` graph variables recorded by :func:`attach_data`, or None."""
    return getattr(model, _DATA_ATTR, None)
