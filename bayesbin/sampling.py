"""Sampler presets around ``pm.sample``: step assignment, compact bits, exact lp, provenance.

Presets (``sampler=``):

* ``"pymc-gibbs"``: PyMC's ``BinaryGibbsMetropolis`` on the bits (full-model logp per bit), NUTS on
  continuous parameters (bias, scale) in one compound step. The reference, slow on large data.
* ``"incremental"``: bayesbin's exact incremental Gibbs sampler (:class:`IncrementalGibbs`), which
  also updates bias and scale from its cached activations; O(nonzeros of a column) per bit.
* ``"incremental+nuts"``: incremental Gibbs on the bits, PyMC NUTS on bias/scale.
* ``"tempering"``: replica exchange (:class:`ReplicaExchange`) over a temperature ladder of
  incremental-Gibbs replicas owning w, bias and scale; only the beta = 1 replica is returned.
* ``"dmala"``: gradient-informed parallel flips (:class:`DiscreteLangevin`), NUTS on the rest.
* ``"nuts"``: NUTS on everything (relaxed Beta-weight models only).
* ``"auto"`` (default): ``"nuts"`` for relaxed models, ``"incremental"`` for bayesbin binary
  models, ``"pymc-gibbs"`` for other models with Bernoulli variables. ``"auto"`` never picks
  ``"dmala"``: measured, it is exact and 22-26x BinaryGibbsMetropolis in ESS per CPU second
  within an MNIST56 mode, roughly on par on small generic models, and it accepts no flip on
  full MNIST (see BENCHMARKS.md); use it explicitly for large generic models, tuning for at
  least as many steps as there are bits.

Start (``start=``): bayesbin's own samplers start every chain at :func:`bayesbin.find_mode`'s
result by default; ``"pymc-gibbs"`` keeps PyMC's initial point (every bit at its prior moment).
From that point, chains of the large-n binary posteriors settle in separate local modes
(MNIST56: R-hat 1.8 for bias and lp; from the mode: 1.00). ``posterior.attrs["bayesbin_start"]``
records the start and the log-posterior of every candidate ``find_mode`` compared.

The result is what ``pm.sample`` returns (``InferenceData``; a ``DataTree`` on PyMC 6) with bits
stored as int8, ``sample_stats["lp"]`` holding the exact model log-posterior per draw, and the
provenance in ``posterior.attrs``: ``"bayesbin_sampler"`` (the preset), ``"bayesbin_steps"``
(JSON list of step methods and their variables), ``"bayesbin_spec"`` (JSON model spec) and
``"bayesbin_start"`` (JSON record of the start).
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pymc as pm
import pytensor

from bayesbin._compat import get_group, has_group, set_group
from bayesbin._progress import RICH_JUPYTER_WARNING
from bayesbin._validation import check_positive_int
from bayesbin.diagnostics import ConvergenceWarning, convergence_report
from bayesbin.linear import (
    RecognitionError,
    get_spec,
    is_bayesbin_model,
    log_posterior,
    model_data,
)
from bayesbin.linear.graph import initial_point
from bayesbin.mode import find_mode
from bayesbin.samplers import DiscreteLangevin, IncrementalGibbs, ReplicaExchange
from bayesbin.samplers.adapter import BinaryStep

__all__ = [
    "sample",
    "SAMPLERS",
    "SamplerName",
    "PRESETS",
    "Preset",
    "register_preset",
    "build_steps",
    "check_start",
    "compact_array",
    "expand_array",
    "resolve_sampler",
    "add_log_posterior",
]


def _split_vars(model: pm.Model):
    """Return (bernoulli free RVs, other free RVs)."""
    bern, cont = [], []
    for rv in model.free_RVs:
        op = rv.owner.op
        if isinstance(op, pm.Bernoulli.rv_type) or getattr(op, "name", "") == "bernoulli":
            bern.append(rv)
        else:
            cont.append(rv)
    return bern, cont


@dataclass(frozen=True)
class Preset:
    """A named sampler preset: what it needs and how it builds its step methods.

    Attributes
    ----------
    name : str
    build : callable
        ``build(model, bern, cont, step_kwargs) -> list of step methods`` (inside the model
        context); ``bern`` and ``cont`` are the model's Bernoulli and other free variables.
    needs : {"bits", "bayesbin-bits", "continuous"}
        Bernoulli variables of any model, the Bernoulli weights of a bayesbin binary model, or
        no Bernoulli variables at all (relaxed models).
    own : bool
        Whether it is one of bayesbin's own samplers (their chains start at
        :func:`bayesbin.find_mode` by default).
    exact_lp : bool
        Whether its step reports the exact model log-posterior of every draw as
        ``sample_stats["lp"]`` (otherwise it is computed after sampling).
    compiled_only : bool
        Whether its steps move every free variable with bayesbin's numba kernels, so PyMC
        compiles no log density, only small bookkeeping graphs (initial point, trace): those
        are then compiled in PyTensor's ``FAST_COMPILE`` mode (no C compilation; on
        scikit-learn's digits about 2 CPU s of a 10 s fit, the same values).
    """

    name: str
    build: Callable
    needs: str
    own: bool = False
    exact_lp: bool = False
    compiled_only: bool = False


PRESETS: dict[str, Preset] = {}


def register_preset(preset: Preset) -> Preset:
    """Add ``preset`` to :data:`PRESETS` (its name becomes a valid ``sampler=``)."""
    if preset.needs not in ("bits", "bayesbin-bits", "continuous"):
        raise ValueError(
            f"needs must be 'bits', 'bayesbin-bits' or 'continuous'; got {preset.needs!r}"
        )
    PRESETS[preset.name] = preset
    return preset


def _nuts(model, bern, cont, kw):
    return [pm.NUTS(cont, **kw)] if cont else []


def _pymc_gibbs(model, bern, cont, kw):
    return ([pm.NUTS(cont)] if cont else []) + [pm.BinaryGibbsMetropolis(bern, **kw)]


def _incremental(model, bern, cont, kw):
    return [IncrementalGibbs([model[get_spec(model).names.w], *cont], **kw)]


def _incremental_nuts(model, bern, cont, kw):
    w = model[get_spec(model).names.w]
    return ([pm.NUTS(cont)] if cont else []) + [IncrementalGibbs([w], **kw)]


def _tempering(model, bern, cont, kw):
    return [ReplicaExchange([model[get_spec(model).names.w], *cont], **kw)]


def _dmala(model, bern, cont, kw):
    return ([pm.NUTS(cont)] if cont else []) + [DiscreteLangevin(bern, **kw)]


for _preset in (
    Preset("pymc-gibbs", _pymc_gibbs, "bits"),
    Preset("incremental", _incremental, "bayesbin-bits", own=True, exact_lp=True, compiled_only=True),
    Preset("incremental+nuts", _incremental_nuts, "bayesbin-bits", own=True),
    Preset("tempering", _tempering, "bayesbin-bits", own=True, exact_lp=True, compiled_only=True),
    Preset("dmala", _dmala, "bits", own=True),
    Preset("nuts", _nuts, "continuous"),
):
    register_preset(_preset)
del _preset

SAMPLERS = ("auto", *PRESETS)
# the built-in presets (register_preset can add more at run time)
SamplerName = Literal[
    "auto", "pymc-gibbs", "incremental", "incremental+nuts", "tempering", "dmala", "nuts"
]


def _is_binary_bayesbin(model) -> bool:
    return is_bayesbin_model(model) and get_spec(model).relaxed is None


def resolve_sampler(model: pm.Model, sampler: SamplerName = "auto") -> str:
    """Name of the preset ``sampler="auto"`` (or an explicit name) resolves to for ``model``.

    Raises
    ------
    ValueError
        For an unknown preset, or one that cannot sample ``model`` (e.g. ``"nuts"`` on bits).
    """
    if sampler != "auto" and sampler not in PRESETS:
        raise ValueError(f"sampler must be one of {['auto', *PRESETS]}; got {sampler!r}")
    bern, _ = _split_vars(model)
    if sampler == "auto":
        if not bern:
            return "nuts"
        reason = _not_ours(model)
        if reason is None:
            return "incremental"
        warnings.warn(
            f"bayesbin's exact incremental sampler needs a linear binary-weight model, and "
            f"this one is not: {reason}. sampler='auto' falls back to PyMC's "
            "BinaryGibbsMetropolis (exact, but one full model evaluation per bit)",
            UserWarning,
            stacklevel=3,
        )
        return "pymc-gibbs"
    needs = PRESETS[sampler].needs
    if needs == "continuous" and bern:
        raise ValueError(
            f"sampler={sampler!r} needs continuous weights: build the model with relaxed=True, or "
            "use sampler='pymc-gibbs' / 'incremental' for binary weights"
        )
    if needs != "continuous" and not bern:
        raise ValueError(
            f"sampler={sampler!r} samples Bernoulli weights but the model has none "
            "(relaxed model?); use sampler='nuts'"
        )
    if needs == "bayesbin-bits":
        reason = _not_ours(model)
        if reason is not None:
            raise ValueError(f"sampler={sampler!r} needs a linear binary-weight model: {reason}")
    return sampler


def _not_ours(model) -> str | None:
    """Return why bayesbin's own samplers cannot take ``model`` (None when they can)."""
    try:
        spec = get_spec(model)
    except RecognitionError as exc:
        return str(exc)
    if spec.relaxed is not None:
        return "its weights are relaxed (Beta), not Bernoulli"
    return None


def build_steps(model: pm.Model, sampler: SamplerName = "auto", step_kwargs: dict | None = None):
    """Step methods of a preset for ``model``.

    Parameters
    ----------
    model : pm.Model
    sampler : str
        A preset name (see module docstring).
    step_kwargs : dict, optional
        Keyword arguments for the preset's bit sampler (e.g. ``{"mode": "metropolis"}``).

    Returns
    -------
    preset : str
        The resolved preset name.
    steps : list of step methods (empty list: let PyMC assign).
    """
    preset = resolve_sampler(model, sampler)
    return preset, _preset_steps(model, preset, step_kwargs)


def _preset_steps(model: pm.Model, preset: str, step_kwargs: dict | None) -> list:
    """The step methods of an already resolved ``preset``."""
    bern, cont = _split_vars(model)
    with model:
        return PRESETS[preset].build(model, bern, cont, dict(step_kwargs or {}))


def _describe_steps(steps, model: pm.Model) -> list[dict]:
    """Step class names and the model variables (RV names, not value vars) each one samples."""
    out = []
    for s in steps:
        names = []
        for v in getattr(s, "vars", []):
            rv = model.values_to_rvs.get(v)
            names.append(rv.name if rv is not None else v.name)
        out.append({"step": type(s).__name__, "vars": names})
    return out


def add_log_posterior(result, model: pm.Model) -> None:
    """Write the exact model log-posterior per draw into ``sample_stats["lp"]`` (in place).

    Vectorised numpy for bayesbin models (:func:`bayesbin.linear.log_posterior`), one compiled
    ``model.compile_logp()`` call per draw otherwise.
    """
    import xarray as xr

    post = get_group(result, "posterior")
    nc, nd = post.sizes["chain"], post.sizes["draw"]
    if is_bayesbin_model(model):
        spec = get_spec(model)
        x, y = model_data(model)
        names = spec.names
        w_user = post[names.w].transpose("chain", "draw", *spec.w_dims).values
        w = spec.to_canonical(w_user).reshape(nc * nd, *spec.weight_shape)
        b = post[names.b].values.reshape(nc * nd, -1) if spec.bias else None
        s = post[names.scale].values.reshape(nc * nd) if spec.scale is True else None
        lp = log_posterior(spec, x, y, w, b, s).reshape(nc, nd)
    else:
        logp = model.compile_logp()
        lp = np.empty((nc, nd))
        names = [rv.name for rv in model.free_RVs]
        for c in range(nc):
            for d in range(nd):
                point = {}
                for rv in model.free_RVs:
                    vv = model.rvs_to_values[rv]
                    val = post[rv.name].values[c, d]
                    tr = model.rvs_to_transforms.get(rv)
                    if tr is not None:
                        val = tr.forward(val, *rv.owner.inputs).eval()
                    point[vv.name] = np.asarray(val, dtype=vv.dtype)
                lp[c, d] = logp(point)
        del names
    da = xr.DataArray(
        lp,
        dims=("chain", "draw"),
        coords={"chain": post["chain"].values, "draw": post["draw"].values},
    )
    if has_group(result, "sample_stats"):
        ss = get_group(result, "sample_stats").copy()
        ss["lp"] = da
    else:
        ss = xr.Dataset({"lp": da})
    set_group(result, "sample_stats", ss)


def _step_lp_is_exact(result, preset: str) -> bool:
    """Whether ``sample_stats["lp"]`` already is the exact model log-posterior of every draw.

    True for presets whose one step owns every free variable and reports the exact
    log-posterior of the point it returns (tested against the model's logp).
    """
    if not PRESETS[preset].exact_lp or not has_group(result, "sample_stats"):
        return False
    stats = get_group(result, "sample_stats")
    return "lp" in stats and bool(np.all(np.isfinite(stats["lp"].values)))


def _check_complete(result, chains: int, draws: int) -> None:
    """Raise KeyboardInterrupt when PyMC returned fewer draws than asked (it swallows Ctrl-C).

    A posterior cut short by Ctrl-C looks complete and is not: bayesbin returns none at all.
    """
    post = get_group(result, "posterior") if has_group(result, "posterior") else None
    got_chains = int(post.sizes.get("chain", 0)) if post is not None else 0
    got_draws = int(post.sizes.get("draw", 0)) if post is not None else 0
    if got_chains < chains or got_draws < draws:
        raise KeyboardInterrupt(
            f"sampling was interrupted: {got_draws} of {draws} draws in {got_chains} of {chains} "
            "chains; bayesbin.sample returns no partial posterior"
        )


def compact_array(arr: np.ndarray) -> tuple[np.ndarray, dict]:
    """Find the smallest exact storage of an array of data, and the attributes to decode it.

    Integers take the smallest integer dtype that holds them; floats that are exactly
    ``k / d`` for small integers ``k`` (pixels k/255 from the loaders, in float32 or float64
    arithmetic) are stored as the integers ``k`` with ``bayesbin_divisor = d`` and
    ``bayesbin_dtype`` (the float type of the division); floats exact in float32 become
    float32. :func:`expand_array` returns the original values exactly.

    Parameters
    ----------
    arr : ndarray

    Returns
    -------
    values : ndarray
    attrs : dict
        Empty when the values are stored as they are.
    """
    arr = np.asarray(arr)
    if arr.size == 0 or arr.dtype == bool:
        return arr, {}
    if np.issubdtype(arr.dtype, np.integer):
        lo, hi = int(arr.min()), int(arr.max())
        for dt in (np.uint8, np.int8, np.uint16, np.int16, np.int32):
            info = np.iinfo(dt)
            if info.min <= lo and hi <= info.max:
                return (arr.astype(dt), {}) if np.dtype(dt).itemsize < arr.itemsize else (arr, {})
        return arr, {}
    if not np.issubdtype(arr.dtype, np.floating) or not np.all(np.isfinite(arr)):
        return arr, {}
    for divisor in (1.0, 255.0):
        k = np.rint(arr * divisor)
        if k.min() < 0 or k.max() > 65535:
            continue
        kt = k.astype(np.uint8 if k.max() <= 255 else np.uint16)
        for dt in (np.float32, np.float64):
            decoded = (kt.astype(dt) / dt(divisor)).astype(arr.dtype)
            if np.array_equal(decoded, arr):
                return kt, {"bayesbin_divisor": divisor, "bayesbin_dtype": np.dtype(dt).name}
    if arr.dtype == np.float64 and np.array_equal(arr.astype(np.float32).astype(np.float64), arr):
        return arr.astype(np.float32), {"bayesbin_dtype": "float64"}
    return arr, {}


def expand_array(values: np.ndarray, attrs: dict) -> np.ndarray:
    """Invert :func:`compact_array`: the stored values back to float64 (or their integers).

    Parameters
    ----------
    values : ndarray
    attrs : dict

    Returns
    -------
    ndarray
    """
    values = np.asarray(values)
    if "bayesbin_divisor" in attrs:
        dt = np.dtype(attrs.get("bayesbin_dtype", "float64")).type
        return (values.astype(dt) / dt(attrs["bayesbin_divisor"])).astype(np.float64)
    if "bayesbin_dtype" in attrs:
        return values.astype(np.dtype(attrs["bayesbin_dtype"]))
    return values


def _compact_data(result) -> None:
    """Store the data groups (inputs, labels) in their smallest exact dtypes.

    A full-MNIST fit kept its 60,000 x 784 inputs as float64: 376 MB of a 378 MB result.
    As k/255 in uint8 they take 47 MB and decode exactly (:func:`expand_array`).
    """
    for group in ("constant_data", "observed_data"):
        if not has_group(result, group):
            continue
        ds = get_group(result, group).copy()
        changed = False
        for name in list(ds.data_vars):
            values, attrs = compact_array(ds[name].values)
            if values.dtype != ds[name].dtype:
                ds[name] = ds[name].copy(data=values)
                ds[name].attrs.update(attrs)
                changed = True
        if changed:
            set_group(result, group, ds)


def _compact_bits(result, bern_names) -> None:
    post = get_group(result, "posterior").copy()
    changed = False
    for name in bern_names:
        if name in post and post[name].dtype != np.int8:
            post[name] = post[name].astype(np.int8)
            changed = True
    if changed:
        set_group(result, "posterior", post)


def _resolve_start(
    model, preset: str, start, kwargs: dict, random_seed, progressbar: bool = False
) -> dict:
    """Fill ``kwargs["initvals"]`` according to ``start``; return a JSON-able record of it."""
    if isinstance(start, dict):
        if "initvals" in kwargs:
            raise ValueError("give the start either as start=dict or as initvals=, not both")
        kwargs["initvals"] = check_start(model, start, "start")
        return {"kind": "given"}
    if "initvals" in kwargs and kwargs["initvals"] is not None:
        kwargs["initvals"] = check_start(model, kwargs["initvals"], "initvals")
    if not isinstance(start, str) or start not in ("auto", "mode", "model"):
        raise ValueError(f"start must be 'auto', 'mode', 'model' or a dict; got {start!r}")
    binary = _is_binary_bayesbin(model)
    if start == "auto":
        if "initvals" in kwargs:
            return {"kind": "given"}
        start = "mode" if binary and PRESETS[preset].own else "model"
    if start == "model":
        return {"kind": "given" if "initvals" in kwargs else "model"}
    if "initvals" in kwargs:
        raise ValueError("start='mode' computes the initial values; do not pass initvals too")
    if not binary:
        raise ValueError(
            "start='mode' needs a model built by bayesbin.binary_logistic or "
            "bayesbin.binary_softmax with Bernoulli weights"
        )
    t0 = time.process_time()
    mode = find_mode(model, random_seed=_derived_seed(random_seed), progressbar=progressbar)
    kwargs["initvals"] = dict(mode)
    return {
        "kind": "mode",
        "logp": float(mode.logp),
        "candidates": [
            [label, float(lp)]
            for label, lp in zip(mode.candidates, mode.restart_logps, strict=True)
        ],
        "cpu_seconds": round(time.process_time() - t0, 3),
    }


def check_start(model: pm.Model, values, name: str = "start") -> dict:
    """Validate initial values (by random-variable name, untransformed) against ``model``.

    Bits must be 0 or 1, a positive variable (a learned scale) positive and finite, anything
    else finite, and every shape the variable's own; PyMC would otherwise start a chain at
    w = 2 or at a NaN scale and return a posterior of impossible values.

    Parameters
    ----------
    model : pm.Model
    values : dict
        ``{name: value}``; PyMC's ``initvals`` format.
    name : str
        The argument name for messages.

    Returns
    -------
    dict
        The values as numpy arrays.

    Raises
    ------
    TypeError
        When ``values`` is not a dict.
    ValueError
        Naming the variable: unknown name, wrong shape, bits outside {0, 1}, a non-positive or
        non-finite value.
    """
    if not isinstance(values, dict):
        raise TypeError(f"{name} must be a dict of initial values; got {type(values).__name__}")
    point = initial_point(model)
    out = {}
    for key, value in values.items():
        if key not in model.named_vars or model[key] not in model.free_RVs:
            free = [rv.name for rv in model.free_RVs]
            raise ValueError(
                f"{name} names {key!r}, which is not a free variable of the model {free}"
            )
        rv = model[key]
        vv = model.rvs_to_values[rv]
        want = tuple(point[vv.name].shape)
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name}[{key!r}] must be numeric; got {value!r}") from exc
        if arr.shape != want:
            raise ValueError(f"{name}[{key!r}] has shape {arr.shape}; the variable's is {want}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name}[{key!r}] holds NaN or infinite values; all must be finite")
        if isinstance(rv.owner.op, pm.Bernoulli.rv_type):
            if not np.all((arr == 0) | (arr == 1)):
                raise ValueError(
                    f"{name}[{key!r}] must hold bits 0 or 1; found {np.unique(arr)[:5]}"
                )
            arr = arr.astype(np.int64)
        tr = model.rvs_to_transforms.get(rv)
        if tr is not None and type(tr).__name__ == "LogTransform" and np.any(arr <= 0):
            raise ValueError(f"{name}[{key!r}] must be positive; got {arr.min()}")
        out[key] = arr
    return out


def _derived_seed(random_seed):
    """Make a generator for find_mode, independent of the chains' streams, fixed by the seed."""
    if random_seed is None:
        return None
    if isinstance(random_seed, np.random.Generator):
        return np.random.default_rng(random_seed.integers(2**63))
    seeds = np.atleast_1d(np.asarray(random_seed, dtype=np.int64)).tolist()
    return np.random.default_rng([*seeds, 0x5EED])


def _bookkeeping_mode(light: bool):
    """PyTensor's ``FAST_COMPILE`` mode while ``light`` (see ``Preset.compiled_only``)."""
    return pytensor.config.change_flags(mode="FAST_COMPILE") if light else nullcontext()


def _covers_all(steps, model: pm.Model) -> bool:
    """Whether the step methods move every free variable (PyMC assigns none of its own)."""
    moved = {v.name for step in steps for v in getattr(step, "vars", [])}
    return bool(steps) and moved >= {v.name for v in model.value_vars}


def sample(
    model: pm.Model | None = None,
    *,
    sampler: SamplerName = "auto",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 2,
    cores: int | None = None,
    random_seed=None,
    progressbar: bool = True,
    step_kwargs: dict | None = None,
    start="auto",
    convergence_checks: bool = True,
    **kwargs,
):
    """Sample a (bayesbin) model with a preset and return ArviZ-ready results.

    Parameters
    ----------
    model : pm.Model, optional
        The model (default: the model on the context stack).
    sampler : str
        ``"auto"``, ``"pymc-gibbs"``, ``"incremental"``, ``"incremental+nuts"``, ``"dmala"`` or
        ``"nuts"``; see the module docstring.
    draws, tune, chains : int
        Posterior draws and tuning iterations per chain, number of chains.
    cores : int, optional
        Worker processes; default ``min(chains, os.cpu_count())``.
    random_seed : int or sequence of int, optional
    progressbar : bool
    step_kwargs : dict, optional
        Options of the preset's bit sampler.
    start : {"auto", "mode", "model"} or dict
        Where every chain starts. ``"mode"``: at :func:`bayesbin.find_mode`'s result (seeded
        from ``random_seed``). ``"model"``: PyMC's initial point (every bit at its prior
        moment, i.e. all 1 for p = 0.5). A dict: those values (``initvals``). ``"auto"``
        (default): ``initvals`` if given, else ``"mode"`` for bayesbin binary models sampled
        by bayesbin's own samplers (``incremental``, ``incremental+nuts``, ``tempering``,
        ``dmala``) and ``"model"`` otherwise (``pymc-gibbs`` keeps PyMC's behaviour). Large-n
        binary posteriors have isolated local modes hundreds of nats apart; chains from the
        initial point settle in different ones (R-hat >> 1), chains from the mode agree.
        Starting all chains at one point means R-hat cannot reveal other modes of comparable
        mass: ``posterior.attrs["bayesbin_start"]`` records the candidates ``find_mode``
        compared (log-posterior of each) as evidence.
    convergence_checks : bool
        After sampling, check R-hat (<= 1.01) and bulk ESS (>= 100 per chain) of the bits that
        moved, the bias, the scale and the log posterior, and bits stuck at different values in
        different chains (:func:`bayesbin.diagnostics.convergence_report`); store the findings
        in ``posterior.attrs["bayesbin_convergence"]`` and warn in one line
        (:class:`bayesbin.ConvergenceWarning`) when the posterior is not to be trusted yet.
    **kwargs
        Passed to ``pm.sample`` (e.g. ``initvals``, ``target_accept`` is not: use step_kwargs).

    Returns
    -------
    arviz.InferenceData (xarray.DataTree on PyMC 6)
        ``posterior`` with bits as int8 and dims ("chain", "draw", ...); ``sample_stats["lp"]``,
        the exact model log-posterior of every draw; provenance in ``posterior.attrs``.

    Raises
    ------
    KeyboardInterrupt
        When sampling is interrupted (Ctrl-C): PyMC would return the draws so far as if they
        were the whole posterior; bayesbin returns nothing rather than a shorter posterior.
    ValueError
        For a ``start`` (or ``initvals``) with bits outside {0, 1}, a non-positive scale,
        non-finite values or wrong shapes, naming the variable.
    """
    model = pm.modelcontext(model)
    draws = check_positive_int(draws, "draws")
    tune = check_positive_int(tune, "tune", minimum=0)
    chains = check_positive_int(chains, "chains")
    if cores is None:
        cores = min(chains, os.cpu_count() or 1)  # PyMC's own default is half the CPUs
    cores = check_positive_int(cores, "cores")
    preset = resolve_sampler(model, sampler)
    with _bookkeeping_mode(PRESETS[preset].compiled_only):
        steps = _preset_steps(model, preset, step_kwargs)
    kwargs.setdefault("compute_convergence_checks", False)
    light = PRESETS[preset].compiled_only and _covers_all(steps, model)
    with _bookkeeping_mode(light):
        start_record = _resolve_start(model, preset, start, kwargs, random_seed, progressbar)
    if cores > 1 and chains > 1:  # forked workers inherit the loaded kernels
        for step in steps:
            if isinstance(step, BinaryStep):
                step.warm_up()
    with model, warnings.catch_warnings(), _bookkeeping_mode(light):
        warnings.filterwarnings("ignore", message=".*could not link to a BLAS.*")
        warnings.filterwarnings("ignore", message=RICH_JUPYTER_WARNING, category=UserWarning)
        result = pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            cores=cores,
            step=steps or None,
            random_seed=random_seed,
            progressbar=progressbar,
            return_inferencedata=True,
            **kwargs,
        )
    _check_complete(result, chains, draws)
    bern, _ = _split_vars(model)
    _compact_bits(result, [rv.name for rv in bern])
    _compact_data(result)
    if not _step_lp_is_exact(result, preset):
        add_log_posterior(result, model)
    post = get_group(result, "posterior")
    attrs = {
        "bayesbin_sampler": preset,
        "bayesbin_steps": json.dumps(
            _describe_steps(steps, model) or [{"step": "pymc-auto", "vars": []}]
        ),
    }
    if is_bayesbin_model(model):
        attrs["bayesbin_spec"] = json.dumps(get_spec(model).to_dict())
    attrs["bayesbin_start"] = json.dumps(start_record)
    post = post.assign_attrs(**attrs)
    set_group(result, "posterior", post)
    if convergence_checks:
        report = convergence_report(result)
        post = post.assign_attrs(
            bayesbin_convergence=json.dumps(
                {
                    "problems": report["problems"],
                    "bits": report.get("bits", {}),
                    "continuous": report["continuous"],
                },
                default=float,
            )
        )
        if report["message"] is not None:
            warnings.warn(f"bayesbin.sample: {report['message']}", ConvergenceWarning, stacklevel=2)
    set_group(result, "posterior", post)
    return result
