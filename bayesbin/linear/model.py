"""PyMC model builders for binary-weight (and relaxed Beta-weight) linear classifiers.

Every model has bit weights ``w ~ Bernoulli(prior_p)`` (or ``w ~ Beta(a, b)`` when relaxed),
an effective weight ``W = w`` (``encoding="01"``) or ``W = 2 w - 1`` (``encoding="pm1"``) and
logits

* ``binary_logistic(form="single")``:     ``eta = scale * (x @ W) + b``,  ``w`` of shape (D,)
* ``binary_logistic(form="two_output")``: ``eta = scale * (x @ W[1] - x @ W[0]) + b``,
  ``w`` of shape (2, D) (the JAGS form of the forum)
* ``binary_softmax``:                     ``eta = scale * (x @ W) + b``, ``w`` of shape (D, K),
  ``b`` of shape (K,), softmax over the last axis

with ``y ~ Bernoulli(sigmoid(eta))``, ``y ~ Categorical(softmax(eta))`` or
``onehot(y) ~ Multinomial(1, softmax(eta))``. ``scale`` is 1 when off, a learned
``HalfNormal(1)`` variable ``"scale"`` when ``True``, or a fixed float; ``b`` is 0 when off or a
``Normal(0, bias_sigma)`` variable ``"b"``.

The builder records what it built in a :class:`ModelSpec` (``get_spec(model)``); the fast samplers
read it. Data enter as ``pm.Data`` (``"x"``, ``"y"`` and for the multinomial likelihood
``"y_onehot"``), so :func:`set_data` can swap in new rows for prediction.

Examples
--------
>>> import numpy as np, bayesbin
>>> x = np.random.default_rng(0).integers(0, 2, size=(50, 5)).astype(float)
>>> y = (x[:, 0] > 0).astype(int)
>>> model = bayesbin.binary_logistic(x, y, form="two_output")
>>> sorted(model.named_vars)[:3]
['w', 'x', 'y']
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from bayesbin._validation import (
    InputScaleWarning,
    check_choice,
    check_classes,
    check_labels,
    check_prior_p,
    check_x,
    input_scale_problem,
)
from bayesbin.linear.graph import data_value, get_spec
from bayesbin.linear.spec import (
    Encoding,
    ModelSpec,
    attach_spec,
    attached_data,
    weight_layout,
)

__all__ = [
    "OneVectorTrapWarning",
    "binary_logistic",
    "binary_softmax",
    "set_data",
    "model_data",
]


class OneVectorTrapWarning(UserWarning):
    """The single-vector {0,1} logistic model without bias cannot predict P(y=1) < 0.5."""


def model_data(model: pm.Model) -> tuple[np.ndarray, np.ndarray]:
    """Return the current ``(x, y)`` of a bayesbin model: x float64 (n, D), y int64 (n,).

    For a recognised hand-written model, the input matrix and the observed labels of its graph
    (one-hot Multinomial rows become class codes).
    """
    spec = get_spec(model)
    data = attached_data(model)
    if data is None:
        x = np.asarray(model[spec.names.x].get_value(), dtype=np.float64)
        y = np.asarray(model[spec.names.y].get_value(), dtype=np.int64)
        return x, y
    x_var, y_var = data
    x = np.asarray(data_value(x_var), dtype=np.float64)
    y = np.asarray(data_value(y_var))
    if spec.likelihood == "multinomial":
        y = np.argmax(y, axis=1)
    return x, y.astype(np.int64)


def set_data(model: pm.Model, x, y=None) -> None:
    """Replace the data of a bayesbin model (for prediction or refitting).

    Parameters
    ----------
    model : pm.Model
        A bayesbin model.
    x : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,), optional
        Integer class codes; zeros when omitted (prediction).
    """
    spec = get_spec(model)
    x = check_x(x, "x", n_features=spec.n_features)
    n = x.shape[0]
    if y is None:
        y = np.zeros(n, dtype=np.int64)
    else:
        y = check_labels(y, spec.n_classes, "y", n_samples=n)
    if attached_data(model) is None:  # built by bayesbin
        values = {"x": x, "y": y}
        if spec.likelihood == "multinomial":
            values["y_onehot"] = _onehot(y, spec.n_classes)
        with model:
            pm.set_data(values, coords={"obs": np.arange(n)})
        return
    if spec.names.x is None or spec.names.y is None:
        missing = [
            w for k, w in (("x", "inputs"), ("y", "labels")) if getattr(spec.names, k) is None
        ]
        raise ValueError(
            f"the {' and the '.join(missing)} of this hand-written model are constant arrays in "
            "its graph, not pm.Data, so set_data cannot replace them. Predict from the "
            "posterior instead: bayesbin.posterior_predictive_proba(result, x)"
        )
    y_val = _onehot(y, spec.n_classes) if spec.likelihood == "multinomial" else y
    old_y = model[spec.names.y].get_value()
    with model:
        pm.set_data({spec.names.x: x, spec.names.y: y_val.astype(old_y.dtype)})


def _warn_input_scale(x: np.ndarray) -> None:
    problem = input_scale_problem(x)
    if problem is not None:
        warnings.warn(f"x: {problem}", InputScaleWarning, stacklevel=3)


def _onehot(y: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((y.shape[0], k), dtype=np.int64)
    out[np.arange(y.shape[0]), y] = 1
    return out


def _parse_relaxed(relaxed) -> tuple[float, float] | None:
    if relaxed is False or relaxed is None:
        return None
    if relaxed is True:
        return (1.0, 1.0)
    try:
        a, b = (float(v) for v in relaxed)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"relaxed must be False, True or a pair (a, b) of positive floats; got {relaxed!r}"
        ) from exc
    if not (np.isfinite(a) and np.isfinite(b) and a > 0 and b > 0):
        raise ValueError(f"relaxed=(a, b) needs a > 0 and b > 0; got {relaxed!r}")
    return (a, b)


def _parse_scale(scale) -> bool | float:
    if isinstance(scale, bool | np.bool_):
        return bool(scale)
    try:
        value = float(scale)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"scale must be False, True or a positive float; got {scale!r}") from exc
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"scale must be a positive finite float when fixed; got {scale!r}")
    return value


def _parse_bias(bias) -> bool:
    if not isinstance(bias, bool | np.bool_):
        raise TypeError(f"bias must be a bool; got {bias!r}")
    return bool(bias)


def _f64(value):
    """Make a float64 constant (PyMC would store 5.0 as float32 and lose logp precision)."""
    return pt.constant(np.asarray(value, dtype=np.float64))


def _weights(spec: ModelSpec, p: np.ndarray):
    """Create ``w`` and return the effective weight tensor ``W``."""
    if spec.relaxed is not None:
        a, b = spec.relaxed
        w = pm.Beta("w", alpha=_f64(a), beta=_f64(b), dims=spec.weight_dims)
    else:
        w = pm.Bernoulli("w", p=p, dims=spec.weight_dims)
    return w if spec.encoding == "01" else _f64(2.0) * w - _f64(1.0)


def _scale_and_bias(spec: ModelSpec):
    if spec.scale is True:
        s = pm.HalfNormal("scale", sigma=_f64(spec.scale_sigma))
    else:
        s = _f64(spec.fixed_scale)
    if spec.bias:
        dims = "class" if spec.family == "softmax" else None
        b = pm.Normal("b", mu=_f64(0.0), sigma=_f64(spec.bias_sigma), dims=dims)
    else:
        b = 0.0
    return s, b


def binary_logistic(
    x,
    y,
    *,
    form: Literal["single", "two_output"] = "single",
    encoding: Encoding = "01",
    prior_p=0.5,
    bias: bool = False,
    scale=False,
    relaxed=False,
    bias_sigma: float = 5.0,
    scale_sigma: float = 1.0,
) -> pm.Model:
    """Logistic regression with binary (or relaxed [0, 1]) weights.

    Parameters
    ----------
    x : array-like of shape (n_samples, n_features)
        Finite numeric inputs; cast to float64 before entering the graph.
    y : array-like of shape (n_samples,)
        Labels in {0, 1}.
    form : {"single", "two_output"}
        ``"single"``: ``w`` of shape (D,), ``eta = scale * x @ W + b``. ``"two_output"``: the
        forum's JAGS form, ``w`` of shape (2, D), ``eta = scale * (x @ W[1] - x @ W[0]) + b``.
    encoding : {"01", "pm1"}
        Effective weights ``W = w`` or ``W = 2 w - 1``.
    prior_p : float or array-like broadcastable to the shape of ``w``
        Bernoulli prior P(w = 1), in [0, 1].
    bias : bool
        Add a learned scalar bias ``b ~ Normal(0, bias_sigma)``.
    scale : bool or float
        ``False``: no scale; ``True``: learned ``scale ~ HalfNormal(scale_sigma)``; a float:
        fixed positive logit scale.
    relaxed : bool or (float, float)
        ``True`` for ``w ~ Beta(1, 1)``, a pair ``(a, b)`` for ``Beta(a, b)`` (for NUTS).
    bias_sigma, scale_sigma : float
        Prior scales of the bias and the learned logit scale.

    Returns
    -------
    pm.Model
        With coords ``"obs"``, ``"feature"`` (and ``"output"`` for the two-output form), data
        ``"x"``, ``"y"``, weights ``"w"`` and the observed ``"y_obs"``.

    Warns
    -----
    OneVectorTrapWarning
        For ``form="single"``, ``encoding="01"``, no bias and non-negative ``x``: the logit is
        then ``>= 0`` so P(y=1) can never fall below 0.5.
    """
    check_choice(form, "form", ("single", "two_output"))
    check_choice(encoding, "encoding", ("01", "pm1"))
    x = check_x(x, "x")
    n, d = x.shape
    _warn_input_scale(x)
    if hasattr(y, "to_numpy") and not isinstance(y, np.ndarray):
        y = y.to_numpy()
    y_arr = np.asarray(y)
    if y_arr.ndim == 1 and y_arr.size and np.issubdtype(y_arr.dtype, np.number):
        uniq = np.unique(y_arr[np.isfinite(y_arr)] if y_arr.dtype.kind == "f" else y_arr)
        if uniq.size > 2:
            raise ValueError(
                f"y has {uniq.size} distinct labels but a logistic model needs labels in "
                "{0, 1}; use bayesbin.binary_softmax for more classes"
            )
    y = check_labels(y, 2, "y", n_samples=n)
    bias = _parse_bias(bias)
    scale = _parse_scale(scale)
    relaxed_ab = _parse_relaxed(relaxed)
    shape, dims = weight_layout(form, d, 2)
    p = check_prior_p(prior_p, shape)
    spec = ModelSpec(
        family="logistic",
        form=form,
        likelihood="bernoulli",
        encoding=encoding,
        n_features=d,
        n_classes=2,
        weight_shape=shape,
        weight_dims=dims,
        prior_p=p,
        bias=bias,
        bias_sigma=float(bias_sigma),
        scale=scale,
        scale_sigma=float(scale_sigma),
        relaxed=relaxed_ab,
    )
    if form == "single" and encoding == "01" and not bias and np.all(x >= 0):
        warnings.warn(
            "binary_logistic(form='single', encoding='01', bias=False) on non-negative x has "
            "logit = x @ w >= 0, so it can never predict P(y=1) < 0.5 (the forum's one-vector "
            "trap). Use form='two_output', encoding='pm1' or bias=True.",
            OneVectorTrapWarning,
            stacklevel=2,
        )
    coords = {"obs": np.arange(n), "feature": np.arange(d)}
    if form == "two_output":
        coords["output"] = [0, 1]
    with pm.Model(coords=coords) as model:
        xd = pm.Data("x", x, dims=("obs", "feature"))
        yd = pm.Data("y", y, dims="obs")
        W = _weights(spec, p)
        s, b = _scale_and_bias(spec)
        # scale the (D,) weights, not the (n,) products: one pass over x (measured 1.2-1.3x)
        weff = W if form == "single" else W[1] - W[0]
        eta = pt.dot(xd, s * weff) + b
        pm.Bernoulli("y_obs", logit_p=eta, observed=yd, dims="obs")
    attach_spec(model, spec)
    return model


def binary_softmax(
    x,
    y,
    classes,
    *,
    likelihood: Literal["categorical", "multinomial"] = "categorical",
    encoding: Encoding = "01",
    prior_p=0.5,
    bias: bool = False,
    scale=False,
    relaxed=False,
    bias_sigma: float = 5.0,
    scale_sigma: float = 1.0,
) -> pm.Model:
    """Softmax (multinomial logistic) regression with binary or relaxed weights.

    Parameters
    ----------
    x : array-like of shape (n_samples, n_features)
        Finite numeric inputs.
    y : array-like of shape (n_samples,)
        Integer class codes in ``0..K-1``.
    classes : int
        K >= 2, the number of classes.
    likelihood : {"categorical", "multinomial"}
        ``Categorical(softmax(eta))`` on the codes, or ``Multinomial(n=1, softmax(eta))`` on
        one-hot rows (data ``"y_onehot"``); both give the same log-likelihood.
    encoding : {"01", "pm1"}
        Effective weights ``W = w`` or ``W = 2 w - 1``.
    prior_p : float or array-like broadcastable to (n_features, K)
        Bernoulli prior P(w = 1), in [0, 1].
    bias : bool
        Learned per-class bias ``b ~ Normal(0, bias_sigma)`` of shape (K,).
    scale : bool or float
        ``False``, ``True`` (learned ``HalfNormal(scale_sigma)``) or a fixed positive float.
    relaxed : bool or (float, float)
        Relax ``w`` to ``Beta(1, 1)`` or ``Beta(a, b)``.
    bias_sigma, scale_sigma : float
        Prior scales of the bias and learned scale.

    Returns
    -------
    pm.Model
        Coords ``"obs"``, ``"feature"``, ``"class"``; weights ``"w"`` of shape (D, K).
    """
    check_choice(likelihood, "likelihood", ("categorical", "multinomial"))
    check_choice(encoding, "encoding", ("01", "pm1"))
    if isinstance(classes, bool) or not isinstance(classes, int | np.integer):
        raise TypeError(f"classes must be an integer number of classes; got {classes!r}")
    k = int(classes)
    if k < 2:
        raise ValueError(f"classes must be >= 2; got {k}")
    x = check_x(x, "x")
    n, d = x.shape
    y = check_labels(y, k, "y", n_samples=n)
    check_classes(k, int(np.unique(y).size), d)
    _warn_input_scale(x)
    bias = _parse_bias(bias)
    scale = _parse_scale(scale)
    relaxed_ab = _parse_relaxed(relaxed)
    shape, dims = weight_layout("softmax", d, k)
    p = check_prior_p(prior_p, shape)
    spec = ModelSpec(
        family="softmax",
        form="softmax",
        likelihood=likelihood,
        encoding=encoding,
        n_features=d,
        n_classes=k,
        weight_shape=shape,
        weight_dims=dims,
        prior_p=p,
        bias=bias,
        bias_sigma=float(bias_sigma),
        scale=scale,
        scale_sigma=float(scale_sigma),
        relaxed=relaxed_ab,
    )
    coords = {"obs": np.arange(n), "feature": np.arange(d), "class": np.arange(k)}
    with pm.Model(coords=coords) as model:
        xd = pm.Data("x", x, dims=("obs", "feature"))
        yd = pm.Data("y", y, dims="obs")
        W = _weights(spec, p)
        s, b = _scale_and_bias(spec)
        eta = pt.dot(xd, s * W) + b
        if likelihood == "categorical":
            pm.Categorical("y_obs", logit_p=eta, observed=yd, dims="obs")
        else:
            yo = pm.Data("y_onehot", _onehot(y, k), dims=("obs", "class"))
            probs = pt.special.softmax(eta, axis=-1)
            pm.Multinomial("y_obs", n=1, p=probs, observed=yo, dims=("obs", "class"))
    attach_spec(model, spec)
    return model
