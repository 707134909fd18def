"""A user's own PyMC model recognised as a bayesbin linear model: the graph read into a ModelSpec.

bayesbin's builders record what they built; a model written by hand (the forum's
``w = pm.Bernoulli("w", p=0.5, shape=(25, 2))`` with
``pm.Categorical("y_obs", p=pm.math.softmax(pm.math.dot(x, w), axis=-1), observed=y)``, or the
JAGS two-output form ``pm.Bernoulli("y_obs", logit_p=dot(x, w[1]) - dot(x, w[0]), observed=y)``)
has the same log density but no record. :func:`recognise` reads it from the PyTensor graph:

1. exactly one Bernoulli free variable (the weights, any shape and orientation, used as ``w``
   or ``2 w - 1``), optionally one ``Normal(0, sigma)`` bias (scalar for the logistic forms,
   (K,) for softmax) and one ``HalfNormal(sigma)`` scale; no other free variable;
2. exactly one observed variable: ``Bernoulli`` whose ``p`` is ``sigmoid(eta)`` (``logit_p=``
   gives that), ``Categorical`` or ``Multinomial(n=1)`` whose ``p`` is ``softmax(eta, axis=-1)``;
3. one input matrix of shape (n, D) in ``eta`` (a ``pm.Data`` or a constant);
4. ``eta = scale * (x @ W) + b`` with ``W`` one of the builders' layouts of ``w`` (single,
   two-output ``w[1] - w[0]`` in either orientation and order, softmax ``(D, K)`` or ``(K, D)``),
   found by evaluating the model's own ``eta`` at random points and comparing exactly.

Finally the model's log density (``model.compile_logp()``) is compared with the recognised
description's (:func:`bayesbin.linear.log_posterior`) at random points. Anything that does not
fit raises :class:`RecognitionError` naming the part. The result is cached on the model.

Examples
--------
>>> import numpy as np, pymc as pm, bayesbin
>>> rng = np.random.default_rng(0)
>>> x = rng.integers(0, 2, size=(40, 5)).astype(float)
>>> y = rng.integers(0, 2, size=40)
>>> with pm.Model() as model:
...     w = pm.Bernoulli("w", p=0.5, shape=(5, 2))
...     _ = pm.Categorical("y_obs", p=pm.math.softmax(pm.math.dot(x, w), axis=-1), observed=y)
>>> spec = bayesbin.get_spec(model)
>>> spec.form, spec.weight_shape
('softmax', (5, 2))
"""

from __future__ import annotations

import itertools

import numpy as np
import pymc as pm
import pytensor
from pytensor.graph.basic import Constant
from pytensor.scalar.math import Sigmoid
from pytensor.tensor.elemwise import Elemwise
from pytensor.tensor.random.basic import (
    BernoulliRV,
    CategoricalRV,
    HalfNormalRV,
    MultinomialRV,
    NormalRV,
)
from pytensor.tensor.random.type import RandomGeneratorType
from pytensor.tensor.sharedvar import TensorSharedVariable
from pytensor.tensor.special import Softmax

from bayesbin._compat import graph_inputs
from bayesbin.linear.maths import log_posterior
from bayesbin.linear.spec import (
    ModelSpec,
    VarNames,
    WeightLayout,
    attach_data,
    attach_spec,
    attached_spec,
    weight_layout,
)

__all__ = [
    "RecognitionError",
    "data_value",
    "get_spec",
    "initial_point",
    "is_bayesbin_model",
    "recognise",
]

_FAILED_ATTR = "_bayesbin_not_recognised"
_RTOL = 1e-9


_IP_ATTR = "_bayesbin_initial_point"


def _initial_point_key(model) -> tuple:
    """What ``model.initial_point()`` depends on: the free variables, initvals, data shapes."""
    inits = []
    for rv, value in model.rvs_to_initial_values.items():
        if isinstance(value, np.ndarray):
            value = (value.shape, value.dtype.str, hash(value.tobytes()))
        elif not isinstance(value, str | int | float | type(None)):
            value = id(value)
        inits.append((id(rv), value))
    shapes = []
    for var in getattr(model, "data_vars", []):
        get = getattr(var, "get_value", None)
        shapes.append((var.name, np.shape(get(borrow=True)) if get is not None else None))
    return (tuple(id(v) for v in model.free_RVs), tuple(inits), tuple(shapes))


def initial_point(model) -> dict:
    """``model.initial_point()``, compiled once per model state (each call compiles a function).

    Parameters
    ----------
    model : pm.Model

    Returns
    -------
    dict
        A fresh copy ``{value variable name: ndarray}``, safe to modify.
    """
    if any(isinstance(v, str) and v == "prior" for v in model.rvs_to_initial_values.values()):
        return model.initial_point()  # a random draw each time: nothing to cache
    key = _initial_point_key(model)
    cached = getattr(model, _IP_ATTR, None)
    if cached is None or cached[0] != key:
        cached = (key, model.initial_point())
        setattr(model, _IP_ATTR, cached)
    return {name: np.array(value, copy=True) for name, value in cached[1].items()}


class RecognitionError(ValueError):
    """A PyMC model is not in bayesbin's linear binary-weight family (the message says why)."""


def _fail(msg: str):
    raise RecognitionError(f"not a bayesbin linear binary-weight model: {msg}")


def _signature(model) -> tuple:
    """Return what a cached recognition depends on: the model's variables."""
    return (
        tuple(v.name for v in model.free_RVs),
        tuple(v.name for v in model.observed_RVs),
        tuple(v.name for v in model.potentials),
        tuple(v.name for v in model.deterministics),
    )


def get_spec(model: pm.Model) -> ModelSpec:
    """Return the :class:`ModelSpec` of a bayesbin model, or of a recognised hand-written one.

    Models built by :func:`bayesbin.binary_logistic` / :func:`bayesbin.binary_softmax` carry
    their spec; any other model is read by :func:`recognise` (the result is cached).

    Raises
    ------
    RecognitionError
        A ``ValueError`` naming the part of the model that does not fit the family.
    """
    spec = attached_spec(model)
    if spec is not None:
        return spec
    return recognise(model)


def is_bayesbin_model(model) -> bool:
    """Whether ``model`` is a bayesbin linear model (built by bayesbin or recognised)."""
    if attached_spec(model) is not None:
        return True
    if not isinstance(model, pm.Model):
        return False
    failed = getattr(model, _FAILED_ATTR, None)
    if failed is not None and failed[0] == _signature(model):
        return False
    try:
        recognise(model)
    except RecognitionError:
        return False
    return True


def recognise(model: pm.Model) -> ModelSpec:
    """Read a hand-written PyMC model into a :class:`ModelSpec` (see the module docstring).

    Parameters
    ----------
    model : pm.Model

    Returns
    -------
    ModelSpec
        Also attached to the model, so samplers, ``find_mode`` and the posterior tools find it.

    Raises
    ------
    RecognitionError
        Naming the part that did not fit: the variables, the likelihood, the logits, a prior or
        the final log-density comparison.
    """
    if not isinstance(model, pm.Model):
        raise TypeError(f"model must be a pymc.Model; got {type(model).__name__}")
    spec = attached_spec(model)
    if spec is not None:
        return spec
    failed = getattr(model, _FAILED_ATTR, None)
    if failed is not None and failed[0] == _signature(model):
        raise RecognitionError(failed[1])
    try:
        spec, data = _recognise(model)
    except RecognitionError as exc:
        setattr(model, _FAILED_ATTR, (_signature(model), str(exc)))
        raise
    attach_spec(model, spec)
    attach_data(model, data)
    return spec


# --------------------------------------------------------------------------------------------
# the pieces
# --------------------------------------------------------------------------------------------


def _const(var, what: str) -> np.ndarray:
    """Evaluate a graph that depends on no random variable (a constant prior parameter)."""
    for inp in graph_inputs([var]):
        if isinstance(inp.type, RandomGeneratorType) or not isinstance(
            inp, Constant | TensorSharedVariable
        ):
            _fail(f"{what} must be a constant; it depends on another variable")
    return np.asarray(var.eval(), dtype=np.float64)


def data_value(var) -> np.ndarray:
    """Return the value of a data variable (shared, constant, or an expression such as a cast)."""
    if isinstance(var, TensorSharedVariable):
        return np.asarray(var.get_value())
    if isinstance(var, Constant):
        return np.asarray(var.data)
    return np.asarray(var.eval())


def _variables(model):
    """(w, bias, scale, observed) random variables, checked."""
    bern = [rv for rv in model.free_RVs if isinstance(rv.owner.op, BernoulliRV)]
    if len(bern) != 1:
        _fail(
            f"it needs exactly one Bernoulli weight variable; found {len(bern)} "
            f"({[rv.name for rv in bern]})"
        )
    w = bern[0]
    bias = scale = None
    for rv in model.free_RVs:
        if rv is w:
            continue
        if isinstance(rv.owner.op, NormalRV) and bias is None:
            bias = rv
        elif isinstance(rv.owner.op, HalfNormalRV) and scale is None:
            scale = rv
        else:
            _fail(
                f"free variable {rv.name!r} ({type(rv.owner.op).__name__}) is neither the one "
                "Normal(0, sigma) bias nor the one HalfNormal(sigma) logit scale"
            )
    if len(model.observed_RVs) != 1:
        _fail(f"it needs exactly one observed variable; found {len(model.observed_RVs)}")
    if model.potentials:
        _fail(f"it has potentials {[p.name for p in model.potentials]}, which the family lacks")
    return w, bias, scale, model.observed_RVs[0]


def _likelihood(obs):
    """(family, likelihood, logits variable) of the observed variable."""
    op = obs.owner.op
    params = op.dist_params(obs.owner)
    if isinstance(op, BernoulliRV):
        (p,) = params
        node = p.owner
        if node is None or not (
            isinstance(node.op, Elemwise) and isinstance(node.op.scalar_op, Sigmoid)
        ):
            _fail(
                f"the Bernoulli likelihood {obs.name!r} must be Bernoulli(logit_p=eta) or "
                "Bernoulli(p=pm.math.sigmoid(eta))"
            )
        return "logistic", "bernoulli", node.inputs[0]
    if isinstance(op, CategoricalRV | MultinomialRV):
        kind = "categorical" if isinstance(op, CategoricalRV) else "multinomial"
        p = params[-1]
        if kind == "multinomial":
            n = _const(params[0], f"n of the Multinomial {obs.name!r}")
            if not np.all(n == 1):
                _fail(f"the Multinomial likelihood {obs.name!r} needs n=1 (one label per row)")
        node = p.owner
        if node is None or not isinstance(node.op, Softmax):
            _fail(
                f"the class probabilities of {obs.name!r} must be "
                "pm.math.softmax(eta, axis=-1) (or logit_p=eta)"
            )
        z = node.inputs[0]
        axis = node.op.axis
        if axis is None or (axis != -1 and axis != z.ndim - 1):
            _fail(
                f"the softmax of {obs.name!r} runs over axis {axis!r}: it must normalise each row "
                "over the classes, pm.math.softmax(eta, axis=-1) (without axis it normalises "
                "over all rows and classes at once)"
            )
        return "softmax", kind, z
    _fail(
        f"the likelihood {obs.name!r} is {type(op).__name__}; the family has Bernoulli, "
        "Categorical and Multinomial(n=1)"
    )


def _labels(model, obs, family: str, likelihood: str):
    """(y codes int64 (n,), the observed data variable)."""
    data_var = model.rvs_to_values[obs]
    y = data_value(data_var)
    if likelihood == "multinomial":
        if y.ndim != 2 or not np.all((y == 0) | (y == 1)) or not np.all(y.sum(axis=1) == 1):
            _fail(f"the Multinomial observations of {obs.name!r} must be one-hot rows")
        return np.argmax(y, axis=1).astype(np.int64), data_var
    if y.ndim != 1:
        _fail(f"the observations of {obs.name!r} must be a vector of labels; shape {y.shape}")
    if not np.all(y == np.round(y)) or (y.size and y.min() < 0):
        _fail(f"the observations of {obs.name!r} must be non-negative integer labels")
    if family == "logistic" and y.size and y.max() > 1:
        _fail(f"the Bernoulli observations of {obs.name!r} must be 0 or 1")
    return y.astype(np.int64), data_var


def _inputs(z_values, value_vars, n_obs: int):
    """Find the (n, D) input matrix variable inside the logits graph.

    A constant used twice (``dot(x, w[1]) - dot(x, w[0])``) appears as two equal constants;
    they count as one input.
    """
    cands, values = [], []
    for inp in graph_inputs([z_values]):
        if inp in value_vars or getattr(inp, "ndim", None) != 2:
            continue
        if not isinstance(inp, Constant | TensorSharedVariable):
            continue
        val = data_value(inp)
        if val.shape[0] != n_obs or val.shape[1] < 1:
            continue
        if any(v.shape == val.shape and np.array_equal(v, val) for v in values):
            continue
        cands.append(inp)
        values.append(val)
    if len(cands) != 1:
        _fail(
            f"the logits must contain exactly one input matrix of shape (n={n_obs}, D); "
            f"found {len(cands)}"
        )
    return cands[0]


def _layouts(w_shape: tuple, family: str, n_classes: int, d: int):
    """Candidate (form, perm, reverse) mappings of w's shape to a canonical layout."""
    out = []
    nd = len(w_shape)
    for perm in itertools.permutations(range(nd)):
        shape = tuple(w_shape[i] for i in perm)
        if family == "softmax" and shape == (d, n_classes):
            out.append(("softmax", perm, False))
        elif family == "logistic" and nd == 1 and shape == (d,):
            out.append(("single", perm, False))
        elif family == "logistic" and shape == (2, d):
            out.extend([("two_output", perm, False), ("two_output", perm, True)])
    return out


def _effective(form: str, encoding: str, w: np.ndarray) -> np.ndarray:
    """Canonical bits -> (D, C) effective weights of the logit columns."""
    unit, off = (1.0, 0.0) if encoding == "01" else (2.0, -1.0)
    weff = unit * w + off
    if form == "softmax":
        return weff
    if form == "single":
        return weff[:, None]
    return (weff[1] - weff[0])[:, None]


def _recognise(model):
    w_rv, b_rv, s_rv, obs = _variables(model)
    family, likelihood, z = _likelihood(obs)
    y, y_var = _labels(model, obs, family, likelihood)
    n = y.shape[0]
    w_value = model.rvs_to_values[w_rv]
    b_value = model.rvs_to_values[b_rv] if b_rv is not None else None
    s_value = model.rvs_to_values[s_rv] if s_rv is not None else None
    if s_rv is not None:
        tr = model.rvs_to_transforms.get(s_rv)
        if tr is None or type(tr).__name__ != "LogTransform":
            _fail(f"the logit scale {s_rv.name!r} needs PyMC's default log transform")
    if b_rv is not None and model.rvs_to_transforms.get(b_rv) is not None:
        _fail(f"the bias {b_rv.name!r} must not be transformed")
    (z_values,) = model.replace_rvs_by_values([z])
    value_vars = {v for v in (w_value, b_value, s_value) if v is not None}
    others = [
        v for v in graph_inputs([z_values]) if v in set(model.value_vars) and v not in value_vars
    ]
    if others:
        _fail(f"the logits depend on other variables {[v.name for v in others]}")
    x_var = _inputs(z_values, set(model.value_vars), n)
    x = np.asarray(data_value(x_var), dtype=np.float64)
    if not np.all(np.isfinite(x)):
        _fail("the input matrix holds NaN or infinite values")
    d = x.shape[1]
    ins = [w_value] + [v for v in (b_value, s_value) if v is not None]
    eta_fn = pytensor.function(ins, z_values, on_unused_input="ignore")
    point0 = initial_point(model)
    w_shape = tuple(int(v) for v in point0[w_value.name].shape)
    b_shape = tuple(point0[b_value.name].shape) if b_value is not None else ()
    rng = np.random.default_rng(0)

    def eta(w, b, log_s):
        args = [np.asarray(w, dtype=w_value.dtype)]
        if b_value is not None:
            args.append(np.asarray(b, dtype=b_value.dtype).reshape(b_shape))
        if s_value is not None:
            args.append(np.asarray(log_s, dtype=s_value.dtype))
        return np.asarray(eta_fn(*args), dtype=np.float64).reshape(n, -1)

    n_classes = eta(np.zeros(w_shape), np.zeros(b_shape), 0.0).shape[1]
    if family == "softmax":
        if n_classes < 2:
            _fail("a softmax likelihood needs logits for at least 2 classes")
        if y.size and y.max() >= n_classes:
            _fail(f"the labels of {obs.name!r} reach {y.max()} but there are {n_classes} classes")
    elif n_classes != 1:
        _fail(f"the Bernoulli logits have {n_classes} columns; expected one per row")
    else:
        n_classes = 2
    k_bias = n_classes if family == "softmax" else 1
    if b_value is not None and int(np.prod(b_shape)) != k_bias:
        need = f"K = {k_bias} entries, one per class" if family == "softmax" else "one entry"
        _fail(f"the bias {b_rv.name!r} has shape {b_shape}; it needs {need}")

    probes = [rng.integers(0, 2, size=w_shape) for _ in range(3)]
    base = [eta(wp, np.zeros(b_shape), 0.0) for wp in probes]
    match = None
    for form, perm, reverse in _layouts(w_shape, family, n_classes, d):
        for encoding in ("01", "pm1"):
            pred = []
            for wp in probes:
                wc = np.transpose(wp, perm)
                if reverse:
                    wc = wc[::-1]
                pred.append(x @ _effective(form, encoding, wc))
            c = _common_factor(base, pred)
            if c is None or (s_rv is not None and not np.isclose(c, 1.0, rtol=_RTOL)):
                continue
            if match is None or np.isclose(c, 1.0, rtol=_RTOL):  # prefer no fixed factor
                match = (form, perm, reverse, encoding, c)
            if np.isclose(c, 1.0, rtol=_RTOL):
                break
        if match is not None and np.isclose(match[4], 1.0, rtol=_RTOL):
            break
    if match is None:
        _fail(
            f"the logits are not scale * (x @ W) + b for any layout of {w_rv.name!r} (shape "
            f"{w_shape}) as W = w or 2 w - 1: "
            + (
                "the softmax form needs w of shape (D, K) or (K, D)"
                if family == "softmax"
                else "the logistic forms need w of shape (D,), (2, D) or (D, 2)"
            )
        )
    form, perm, reverse, encoding, c = match
    fixed_scale = float(c) if s_rv is None else None
    # the bias and the scale enter exactly as b + scale * (x @ W)
    for wp, ref in zip(probes, base, strict=True):
        b = rng.normal(size=b_shape)
        log_s = float(rng.normal(scale=0.5))
        got = eta(wp, b, log_s if s_rv is not None else 0.0)
        s = float(np.exp(log_s)) if s_rv is not None else 1.0
        want = s * ref + (b.reshape(-1) if b_rv is not None else 0.0)
        if not np.allclose(got, want, rtol=_RTOL, atol=1e-9 * (1 + np.abs(want).max())):
            parts = " and ".join(repr(v.name) for v in (b_rv, s_rv) if v is not None)
            _fail(f"{parts} must enter the logits as bias + scale * (x @ W); they do not")
    prior_p = _const(w_rv.owner.op.dist_params(w_rv.owner)[0], f"the prior p of {w_rv.name!r}")
    prior_p = np.broadcast_to(prior_p, w_shape)
    prior_c = np.transpose(prior_p, perm)
    if reverse:
        prior_c = prior_c[::-1]
    bias_sigma = 5.0
    if b_rv is not None:
        mu, sigma = (
            _const(p, f"the prior of {b_rv.name!r}") for p in b_rv.owner.op.dist_params(b_rv.owner)
        )
        if not np.all(mu == 0) or np.unique(sigma).size != 1 or not sigma.reshape(-1)[0] > 0:
            _fail(f"the bias {b_rv.name!r} needs a Normal(0, sigma) prior with one sigma")
        bias_sigma = float(sigma.reshape(-1)[0])
    scale_sigma = 1.0
    if s_rv is not None:
        loc, sigma = (
            _const(p, f"the prior of {s_rv.name!r}") for p in s_rv.owner.op.dist_params(s_rv.owner)
        )
        if not np.all(loc == 0) or sigma.size != 1 or not float(sigma) > 0:
            _fail(f"the logit scale {s_rv.name!r} needs a HalfNormal(sigma) prior")
        scale_sigma = float(sigma)
    canon_shape, canon_dims = weight_layout(form, d, n_classes)
    w_dims = model.named_vars_to_dims.get(w_rv.name) or tuple(
        f"{w_rv.name}_dim_{i}" for i in range(len(w_shape))
    )
    names = VarNames(
        w=w_rv.name,
        b=b_rv.name if b_rv is not None else None,
        scale=s_rv.name if s_rv is not None else None,
        y_obs=obs.name,
        x=_data_name(model, x_var),
        y=_data_name(model, y_var),
    )
    spec = ModelSpec(
        family=family,
        form=form,
        likelihood=likelihood,
        encoding=encoding,
        n_features=d,
        n_classes=n_classes,
        weight_shape=canon_shape,
        weight_dims=canon_dims,
        prior_p=np.ascontiguousarray(prior_c),
        bias=b_rv is not None,
        bias_sigma=bias_sigma,
        scale=True
        if s_rv is not None
        else (False if np.isclose(fixed_scale, 1.0, rtol=_RTOL) else fixed_scale),
        scale_sigma=scale_sigma,
        names=names,
        layout=WeightLayout(w_shape, tuple(w_dims), tuple(perm), bool(reverse)),
    )
    _check_logp(model, spec, x, y, w_value, b_value, s_value, rng)
    return spec, (x_var, y_var)


def _data_name(model, var) -> str | None:
    """Return the ``pm.Data`` name behind a data expression (possibly cast), or None."""
    shared = [
        v
        for v in graph_inputs([var])
        if isinstance(v, TensorSharedVariable) and not isinstance(v.type, RandomGeneratorType)
    ]
    if len(shared) == 1 and shared[0].name in model.named_vars:
        return shared[0].name
    return None


def _common_factor(actual: list, predicted: list) -> float | None:
    """Return the constant c with actual == c * predicted at every probe, or None."""
    num = den = 0.0
    for a, p in zip(actual, predicted, strict=True):
        num += float(np.sum(a * p))
        den += float(np.sum(p * p))
    if den == 0.0:
        return None if any(np.any(a != 0) for a in actual) else 1.0
    c = num / den
    if not (np.isfinite(c) and c > 0):
        return None
    for a, p in zip(actual, predicted, strict=True):
        if not np.allclose(a, c * p, rtol=_RTOL, atol=1e-9 * (1.0 + np.abs(a).max())):
            return None
    return c


def _check_logp(model, spec, x, y, w_value, b_value, s_value, rng) -> None:
    """Check that the model's log density equals the description's at random points."""
    logp = model.compile_logp(jacobian=True)
    point = initial_point(model)
    for _ in range(3):
        w_user = rng.integers(0, 2, size=spec.w_shape)
        point[w_value.name] = w_user.astype(point[w_value.name].dtype)
        b = s = None
        if b_value is not None:
            b = rng.normal(size=point[b_value.name].shape)
            point[b_value.name] = b
        if s_value is not None:
            log_s = float(rng.normal(scale=0.5))
            point[s_value.name] = np.asarray(log_s)
            s = np.array([np.exp(log_s)])
        got = float(logp(point))
        want = float(
            log_posterior(
                spec,
                x,
                y,
                spec.to_canonical(w_user)[None],
                None if b is None else b.reshape(1, -1),
                s,
            )[0]
        )
        if not np.isclose(got, want, rtol=1e-8, atol=1e-8):
            _fail(
                f"the model's log density ({got:.6g}) differs from the recognised description's "
                f"({want:.6g}) at a random point: something else enters the model (a prior, "
                "a Potential or a term of the likelihood the family lacks)"
            )
