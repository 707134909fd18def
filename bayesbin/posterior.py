"""From a sampling result to weights: bit probabilities, thresholding rules, the float64 predictive.

A *result* is what sampling returns: ArviZ ``InferenceData`` (an xarray ``DataTree`` on PyMC 6)
whose posterior holds ``w`` with dims ``("chain", "draw", *weight_dims)`` and optionally ``b``
and ``scale``; ``result.posterior.attrs["bayesbin_spec"]`` is the JSON of
:meth:`bayesbin.ModelSpec.to_dict` and ``result.posterior.attrs["bayesbin_classes"]`` optionally
the JSON list of class labels.

Model maths (:mod:`bayesbin.linear.maths`): ``W = w`` (encoding ``"01"``) or ``2 w - 1``
(``"pm1"``); softmax ``eta = scale * (x @ W) + b`` with ``W`` of shape (D, K); logistic single
``eta = scale * (x @ W) + b``; two-output ``eta = scale * (x @ W[1] - x @ W[0]) + b``, and
``P(y = 1) = sigmoid(eta)``. ``scale`` is 1 (off), the fixed float, or the draw's ``"scale"``;
``b`` is 0 without bias.

Draws are flattened chain-major: flat index ``c * n_draw + d`` is chain ``c``, draw ``d``.
Relaxed (Beta) weight draws are floats in [0, 1]; wherever bits are needed each draw is first
rounded to a bit by ``w > 0.5`` (0.5 itself gives 0).

Examples
--------
>>> import bayesbin
>>> probs = bayesbin.bit_probabilities(result)              # doctest: +SKIP
>>> weights = bayesbin.threshold(result, rule="marginal")   # doctest: +SKIP
>>> weights.bits.shape, weights.pm1.dtype                   # doctest: +SKIP
((784, 10), dtype('int8'))
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import xarray as xr

from bayesbin._compat import get_group, has_group, is_result
from bayesbin._validation import check_x, draw_indices
from bayesbin.linear.maths import predictive_proba_from_draws
from bayesbin.linear.spec import ModelSpec
from bayesbin.sampling import expand_array

__all__ = [
    "BinaryWeights",
    "bit_probabilities",
    "draw_parameters",
    "training_data",
    "weight_draws",
    "posterior_predictive_proba",
    "result_classes",
    "result_spec",
    "select_draws",
    "threshold",
]

_RULES = ("marginal", "map", "draws")
_FORMS = {"logistic": ("single", "two_output"), "softmax": ("softmax",)}

# --------------------------------------------------------------------------------------------
# reading a result
# --------------------------------------------------------------------------------------------


def _check_result(result) -> None:
    if not is_result(result):
        raise TypeError(
            "result must be a sampling result (arviz.InferenceData or xarray.DataTree); got "
            f"{type(result).__name__}"
        )
    if not has_group(result, "posterior"):
        raise ValueError("result has no 'posterior' group")


def result_spec(result, spec=None) -> ModelSpec:
    """Return the model description of a result.

    Parameters
    ----------
    result : arviz.InferenceData or xarray.DataTree
        A bayesbin sampling result.
    spec : ModelSpec or dict or str, optional
        Overrides ``result.posterior.attrs["bayesbin_spec"]`` (a :class:`bayesbin.ModelSpec`,
        its ``to_dict()`` or that dict as JSON).

    Returns
    -------
    ModelSpec

    Raises
    ------
    ValueError
        If the spec is missing, not JSON, or inconsistent.
    """
    if spec is None:
        _check_result(result)
        attrs = get_group(result, "posterior").attrs
        if "bayesbin_spec" not in attrs:
            raise ValueError(
                "result.posterior.attrs has no 'bayesbin_spec'; set it to "
                "json.dumps(bayesbin.get_spec(model).to_dict()) or pass spec="
            )
        spec = attrs["bayesbin_spec"]
    try:
        return ModelSpec.from_dict(spec)
    except ValueError as exc:
        raise ValueError(f"bayesbin_spec: {exc}") from exc


def result_classes(result, n_classes: int | None = None, classes=None) -> np.ndarray:
    """Class labels of a result: ``classes``, else ``attrs["bayesbin_classes"]``, else range(K).

    Parameters
    ----------
    result : arviz.InferenceData or xarray.DataTree or None
    n_classes : int, optional
        K; read from the spec when omitted.
    classes : array-like of shape (K,), optional
        Explicit labels (take precedence).

    Returns
    -------
    ndarray of shape (K,)
    """
    if n_classes is None:
        n_classes = result_spec(result).n_classes
    if classes is None and result is not None:
        attrs = get_group(result, "posterior").attrs
        raw = attrs.get("bayesbin_classes")
        if raw is not None:
            if isinstance(raw, bytes | str):
                try:
                    raw = json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    raise ValueError(f"bayesbin_classes is not valid JSON: {exc}") from exc
            classes = raw
    if classes is None:
        return np.arange(n_classes)
    arr = np.asarray(classes)
    if arr.ndim != 1 or arr.shape[0] != n_classes:
        raise ValueError(
            f"classes must be 1-D with {n_classes} labels (one per class); got shape {arr.shape}"
        )
    if len(np.unique(arr)) != n_classes:
        raise ValueError("classes must be distinct labels")
    return arr


def _n_flat(result) -> tuple[int, int]:
    post = get_group(result, "posterior")
    return int(post.sizes["chain"]), int(post.sizes["draw"])


def _ordered(da: xr.DataArray, dims: tuple | None, shape: tuple, name: str) -> np.ndarray:
    """Values with dims ``("chain", "draw", *dims)``; ``dims=None`` keeps the stored order."""
    if dims is None:
        if "chain" not in da.dims or "draw" not in da.dims:
            raise ValueError(f"posterior[{name!r}] has dims {da.dims}; expected chain and draw")
        want = ("chain", "draw", *(d for d in da.dims if d not in ("chain", "draw")))
    else:
        want = ("chain", "draw", *dims)
        if set(da.dims) != set(want):
            raise ValueError(f"posterior[{name!r}] has dims {da.dims}; expected {want}")
    arr = np.asarray(da.transpose(*want).values)
    if arr.shape[2:] != tuple(shape):
        raise ValueError(
            f"posterior[{name!r}] has shape {arr.shape[2:]} per draw; expected {tuple(shape)}"
        )
    return arr


def _weight_values(result, spec: ModelSpec) -> np.ndarray:
    """``w`` draws as (chain, draw, *weight_shape): uint8 bits, or float64 when relaxed.

    Read from the model's own weight variable and layout (``spec.names.w``, ``spec.layout``),
    returned in the canonical layout.
    """
    post = get_group(result, "posterior")
    name = spec.names.w
    if name not in post:
        raise ValueError(f"result.posterior has no variable {name!r}")
    arr = spec.to_canonical(_ordered(post[name], spec.w_dims, spec.w_shape, name))
    if arr.dtype == bool:
        return arr.astype(np.uint8)
    if np.issubdtype(arr.dtype, np.integer):
        if arr.size and (arr.min() < 0 or arr.max() > 1):
            raise ValueError(f"posterior[{name!r}] holds integers outside {{0, 1}}")
        return arr.astype(np.uint8)
    if np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
        if not np.all(np.isfinite(arr)) or arr.min() < 0 or arr.max() > 1:
            raise ValueError(f"posterior[{name!r}] holds floats outside [0, 1] (relaxed weights)")
        return arr
    raise TypeError(f"posterior[{name!r}] must be integer, bool or float; got dtype {arr.dtype}")


def training_data(result, *, spec=None) -> tuple[np.ndarray, np.ndarray] | None:
    """Return the training inputs and labels stored in a result, exactly as fitted, if any.

    Results keep them in their smallest exact dtype (pixels k/255 as uint8); this decodes
    them (:func:`bayesbin.sampling.expand_array`).

    Parameters
    ----------
    result : arviz.InferenceData or xarray.DataTree
    spec : ModelSpec or dict, optional
        Overrides the stored spec.

    Returns
    -------
    (x, y) or None
        ``x`` float64 of shape (n, D), ``y`` int64 class codes of shape (n,); None when the
        model held its data as constants (a hand-written model without ``pm.Data``).
    """
    spec = result_spec(result, spec)
    if not has_group(result, "constant_data"):
        return None
    data = get_group(result, "constant_data")
    names = spec.names
    if names.x is None or names.x not in data or names.y is None or names.y not in data:
        return None
    x = expand_array(data[names.x].values, data[names.x].attrs).astype(np.float64)
    y = np.asarray(expand_array(data[names.y].values, data[names.y].attrs))
    if y.ndim == 2:  # one-hot labels of a hand-written Multinomial model
        y = np.argmax(y, axis=1)
    return x, y.astype(np.int64)


def weight_draws(result, *, spec=None) -> np.ndarray:
    """Return the weight draws in the canonical layout: (chain, draw, *weight_shape).

    Parameters
    ----------
    result : arviz.InferenceData or xarray.DataTree
    spec : ModelSpec or dict, optional
        Overrides the stored spec.

    Returns
    -------
    ndarray
        uint8 bits, or float64 in [0, 1] for relaxed weights; read from the model's own weight
        variable and layout.
    """
    spec = result_spec(result, spec)
    return _weight_values(result, spec)


def _draw_bits(values: np.ndarray) -> np.ndarray:
    """Bits of weight draws: integers as they are, relaxed floats by ``w > 0.5``."""
    if values.dtype == np.uint8:
        return values
    return (values > 0.5).astype(np.uint8)


def _real_values(result, spec: ModelSpec) -> tuple[np.ndarray, np.ndarray]:
    """``(bias, scale)`` per draw: (chain, draw[, K]) and (chain, draw), float64."""
    post = get_group(result, "posterior")
    n_chain, n_draw = _n_flat(result)
    softmax_family = spec.family == "softmax"
    if spec.bias:
        name = spec.names.b
        if name not in post:
            raise ValueError(f"the spec has a bias but result.posterior has no {name!r}")
        shape = (spec.n_classes,) if softmax_family else ()
        bias = _ordered(post[name], None, shape, name).astype(np.float64)
    else:
        shape = (n_chain, n_draw, spec.n_classes) if softmax_family else (n_chain, n_draw)
        bias = np.zeros(shape)
    if spec.scale is True:
        name = spec.names.scale
        if name not in post:
            raise ValueError(f"the spec has a learned scale but result.posterior has no {name!r}")
        scale = _ordered(post[name], None, (), name).astype(np.float64)
    else:
        scale = np.full((n_chain, n_draw), 1.0 if spec.scale is False else spec.scale)
    if not (np.all(np.isfinite(bias)) and np.all(np.isfinite(scale))):
        raise ValueError("posterior 'b' or 'scale' holds NaN or infinite values")
    return bias, scale


def select_draws(result, draws=None) -> np.ndarray:
    """Flat (chain-major) indices of the draws to use.

    Parameters
    ----------
    result : arviz.InferenceData or xarray.DataTree
    draws : None, int or array-like of int
        ``None``: every draw. An int ``m``: ``m`` draws evenly spaced over the flattened
        ``chain * draw`` sequence (thinning; ``m`` at most the number of draws). An array:
        explicit flat indices (``c * n_draw + d``).

    Returns
    -------
    ndarray of shape (S,), int64
    """
    _check_result(result)
    n_chain, n_draw = _n_flat(result)
    return draw_indices(draws, n_chain * n_draw)


def _flat(arr: np.ndarray) -> np.ndarray:
    return arr.reshape((-1, *arr.shape[2:]))


# --------------------------------------------------------------------------------------------
# summaries
# --------------------------------------------------------------------------------------------


def bit_probabilities(result, *, spec=None) -> xr.DataArray:
    """Posterior probability P(w = 1) of every weight.

    Parameters
    ----------
    result : arviz.InferenceData or xarray.DataTree
        A bayesbin sampling result.
    spec : ModelSpec or dict, optional
        Overrides the spec stored in the result.

    Returns
    -------
    xarray.DataArray of shape ``weight_shape``, float64
        Named ``"p_w1"`` with dims ``weight_dims`` (and their coordinates); the fraction of all
        draws with ``w = 1`` (relaxed draws count as 1 when ``w > 0.5``).
    """
    spec = result_spec(result, spec)
    bits = _draw_bits(_weight_values(result, spec))
    probs = bits.mean(axis=(0, 1), dtype=np.float64)
    post = get_group(result, "posterior")
    w_post = post[spec.names.w]
    coords = {
        d: w_post.coords[d].values
        for d in spec.weight_dims
        if spec.layout is None and d in w_post.coords
    }
    return xr.DataArray(
        probs,
        dims=spec.weight_dims,
        coords=coords,
        name="p_w1",
        attrs={"description": "posterior P(w = 1)"},
    )


@dataclass(frozen=True, eq=False)
class BinaryWeights:
    """Binary weights chosen from a posterior, with their real-valued parts.

    Attributes
    ----------
    bits : ndarray of uint8 in {0, 1}
        ``weight_shape`` for rules ``"marginal"``/``"map"``; ``(S, *weight_shape)`` for
        ``"draws"``.
    bias : ndarray of float64
        Per model: shape () for logistic, (K,) for softmax (zeros without bias); with a leading
        S axis for ``"draws"``.
    scale : ndarray of float64
        Shape () (or (S,) for ``"draws"``); 1 without scale, the fixed value, or the learned one.
    spec : ModelSpec
        The model description (see :func:`result_spec`).
    classes : ndarray of shape (K,)
        Class labels.
    rule : str
        The rule that chose the bits.
    draw_index : ndarray of int64
        Flat (chain-major) indices of the draws used.
    probabilities : ndarray of float64 or None
        P(w = 1) per weight for ``"marginal"``.
    """

    bits: np.ndarray
    bias: np.ndarray
    scale: np.ndarray
    spec: ModelSpec
    classes: np.ndarray
    rule: str
    draw_index: np.ndarray
    probabilities: np.ndarray | None = field(default=None, repr=False)

    @property
    def is_ensemble(self) -> bool:
        """Whether the bits hold a leading draws axis (rule ``"draws"``)."""
        return self.rule == "draws"

    @property
    def pm1(self) -> np.ndarray:
        """The ±1 view ``2 * bits - 1`` (int8): bit 1 is +1, bit 0 is -1."""
        return (2 * self.bits.astype(np.int8) - 1).astype(np.int8)

    @property
    def effective(self) -> np.ndarray:
        """The weights ``W`` the model multiplies by: ``bits`` ("01") or ``pm1`` ("pm1"), int8."""
        return self.pm1 if self.spec.encoding == "pm1" else self.bits.astype(np.int8)


def threshold(
    result,
    rule: Literal["marginal", "map", "draws"] = "marginal",
    *,
    threshold: float = 0.5,
    draws=None,
    summary: str = "mean",
    model=None,
    spec=None,
    classes=None,
) -> BinaryWeights:
    """Turn a posterior over binary weights into {0, 1} weights.

    Parameters
    ----------
    result : arviz.InferenceData or xarray.DataTree
        A bayesbin sampling result.
    rule : {"marginal", "map", "draws"}
        ``"marginal"``: bit = 1 where the posterior P(w = 1) over the selected draws is
        strictly greater than ``threshold`` (ties, P exactly equal to ``threshold``, give 0).
        Bias and scale are the posterior ``summary`` ("mean" or "median") over the same draws.
        ``"map"``: the single draw with the highest log-posterior
        ``sample_stats["lp"]`` (first one on ties), with its own bias and scale; when the
        result has no ``lp`` (PyMC's BinaryGibbsMetropolis records none) pass ``model=`` and
        the log-posterior is computed as log-likelihood + log-prior of every draw.
        ``"draws"``: every selected draw (an ensemble), each with its own bias and scale.
    threshold : float in [0, 1]
        Cut-off for ``"marginal"``.
    draws : None, int or array-like of int
        Which draws to use (see :func:`select_draws`): all, ``m`` evenly thinned, or indices.
    summary : {"mean", "median"}
        Posterior summary of bias and scale for ``"marginal"``.
    model : pm.Model, optional
        The model that produced ``result``; only used by ``"map"`` when ``lp`` is missing.
    spec : ModelSpec or dict, optional
        Overrides the stored spec.
    classes : array-like, optional
        Overrides the stored class labels.

    Returns
    -------
    BinaryWeights
        ``.bits`` (uint8), ``.pm1`` (int8 ±1 view), ``.bias``, ``.scale`` and provenance.
    """
    if rule not in _RULES:
        raise ValueError(f"rule must be one of {list(_RULES)}; got {rule!r}")
    if summary not in ("mean", "median"):
        raise ValueError(f"summary must be 'mean' or 'median'; got {summary!r}")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float | np.floating):
        raise TypeError(f"threshold must be a float in [0, 1]; got {threshold!r}")
    if not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"threshold must lie in [0, 1]; got {threshold}")
    spec = result_spec(result, spec)
    labels = result_classes(result, spec.n_classes, classes)
    idx = select_draws(result, draws)
    bits = _flat(_draw_bits(_weight_values(result, spec)))
    bias, scale = (_flat(a) for a in _real_values(result, spec))
    if rule == "marginal":
        probs = bits[idx].mean(axis=0, dtype=np.float64)
        reduce = np.mean if summary == "mean" else np.median
        return BinaryWeights(
            bits=(probs > float(threshold)).astype(np.uint8),
            bias=np.asarray(reduce(bias[idx], axis=0), dtype=np.float64),
            scale=np.asarray(reduce(scale[idx], axis=0), dtype=np.float64),
            spec=spec,
            classes=labels,
            rule=rule,
            draw_index=idx,
            probabilities=probs,
        )
    if rule == "map":
        lp = _log_posterior(result, model)[idx]
        best = idx[int(np.argmax(lp))]
        return BinaryWeights(
            bits=bits[best].copy(),
            bias=np.asarray(bias[best], dtype=np.float64),
            scale=np.asarray(scale[best], dtype=np.float64),
            spec=spec,
            classes=labels,
            rule=rule,
            draw_index=np.array([best], dtype=np.int64),
        )
    return BinaryWeights(
        bits=bits[idx],
        bias=bias[idx],
        scale=scale[idx],
        spec=spec,
        classes=labels,
        rule=rule,
        draw_index=idx,
    )


def _log_posterior(result, model) -> np.ndarray:
    """Flat log-posterior per draw: ``sample_stats["lp"]`` or, with a model, loglik + logprior."""
    n_chain, n_draw = _n_flat(result)
    if has_group(result, "sample_stats") and "lp" in get_group(result, "sample_stats"):
        da = get_group(result, "sample_stats")["lp"]
        lp = np.asarray(da.transpose("chain", "draw").values, dtype=np.float64).reshape(-1)
    elif model is not None:
        import pymc as pm

        kw = {"model": model, "extend_inferencedata": False, "progressbar": False}
        total = np.zeros((n_chain, n_draw))
        for ds in (pm.compute_log_likelihood(result, **kw), pm.compute_log_prior(result, **kw)):
            for name in ds.data_vars:
                da = ds[name]
                other = [d for d in da.dims if d not in ("chain", "draw")]
                total += np.asarray(da.sum(other).transpose("chain", "draw").values)
        lp = total.reshape(-1)
    else:
        raise ValueError(
            "rule='map' needs the log-posterior of every draw: the result has no "
            "sample_stats['lp'] (BinaryGibbsMetropolis records none); pass model= to compute it"
        )
    if lp.shape[0] != n_chain * n_draw:
        raise ValueError("sample_stats['lp'] does not have one value per draw")
    lp = np.where(np.isnan(lp), -np.inf, lp)
    return lp


# --------------------------------------------------------------------------------------------
# the float64 reference predictive
# --------------------------------------------------------------------------------------------


def draw_parameters(result, *, draws=None, spec=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Effective weights, bias and scale of the selected draws, float64 (the predictive's inputs).

    Parameters
    ----------
    result : arviz.InferenceData or xarray.DataTree
        A bayesbin sampling result.
    draws : None, int or array-like of int
        Which draws (see :func:`select_draws`).
    spec : ModelSpec or dict, optional
        Overrides the stored spec.

    Returns
    -------
    w_eff : ndarray of shape (S, *weight_shape)
        ``w`` (encoding "01") or ``2 w - 1`` ("pm1"); relaxed draws keep their real values.
    bias : ndarray of shape (S,) or (S, K)
    scale : ndarray of shape (S,)
    """
    spec = result_spec(result, spec)
    idx = select_draws(result, draws)
    w = _flat(_weight_values(result, spec))[idx].astype(np.float64)
    if spec.encoding == "pm1":
        w = 2.0 * w - 1.0
    bias, scale = (_flat(a)[idx] for a in _real_values(result, spec))
    return w, bias, scale


# a bar for the predictive when it multiplies more than this (several seconds of CPU)
_PREDICTIVE_BAR_WORK = 2e10


def posterior_predictive_proba(
    result, x, *, draws=None, spec=None, progressbar: bool | None = None
) -> np.ndarray:
    """Posterior predictive class probabilities, the float64 reference.

    Every selected draw's logits ``eta = scale * (x @ W) + b`` (softmax; the logistic forms as in
    the module docstring) are computed in float64 with the draw's own weights (relaxed draws
    keep their real values), bias and scale; the probabilities ``softmax(eta)`` (or
    ``sigmoid(eta)``) are averaged over draws (Bayesian model averaging).

    Parameters
    ----------
    result : arviz.InferenceData or xarray.DataTree
        A bayesbin sampling result.
    x : array-like of shape (n_samples, n_features)
        Finite numeric inputs.
    draws : None, int or array-like of int
        Draws to average over (see :func:`select_draws`); all by default.
    spec : ModelSpec or dict, optional
        Overrides the stored spec.
    progressbar : bool, optional
        Show a bar over the draws; by default only when the work is large (over about 2e10
        multiply-adds: about 250 draws of a 784x10 model on 10,000 rows).

    Returns
    -------
    ndarray of shape (n_samples, K), float64
        Rows sum to 1; for logistic models column 1 is P(y = 1).
    """
    spec = result_spec(result, spec)
    x = check_x(x, "x", n_features=spec.n_features)
    w, bias, scale = draw_parameters(result, draws=draws, spec=spec)
    if progressbar is None:
        progressbar = w.size * x.shape[0] > _PREDICTIVE_BAR_WORK
    return predictive_proba_from_draws(w, bias, scale, x, form=spec.form, progressbar=progressbar)
