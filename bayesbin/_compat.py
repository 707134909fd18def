"""The only place that branches on PyMC 5/6 and ArviZ 0.x/1.x versions."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    import arviz as az
import pymc as pm
import pytensor

__all__ = [
    "PYMC_MAJOR",
    "ARVIZ_MAJOR",
    "az",
    "floatX",
    "get_group",
    "has_group",
    "set_group",
    "group_names",
    "to_idata",
    "plot_trace",
    "is_result",
    "to_netcdf",
    "from_netcdf",
    "graph_inputs",
]

try:  # PyTensor >= 2.31 moved the graph walkers
    from pytensor.graph.traversal import graph_inputs
except ImportError:  # pragma: no cover - older PyTensor
    from pytensor.graph.basic import graph_inputs

PYMC_MAJOR = int(pm.__version__.split(".")[0])
ARVIZ_MAJOR = int(az.__version__.split(".")[0])


def floatX() -> str:
    """Return PyTensor's float type (``floatX`` left PyMC's namespace in PyMC 6)."""
    return pytensor.config.floatX


def is_result(obj: Any) -> bool:
    """Whether ``obj`` is a sampling result: ArviZ ``InferenceData`` or an xarray ``DataTree``."""
    if isinstance(obj, az.InferenceData):
        return True
    try:  # xarray >= 2024.10
        from xarray import DataTree
    except ImportError:  # pragma: no cover - old xarray
        return False
    return isinstance(obj, DataTree)


def group_names(result: Any) -> list[str]:
    """Names of the groups of an InferenceData or DataTree."""
    if isinstance(result, az.InferenceData):
        return list(result.groups())
    return list(result.children)


def has_group(result: Any, name: str) -> bool:
    """Whether ``result`` has group ``name``."""
    return name in group_names(result)


def get_group(result: Any, name: str):
    """Return group ``name`` as an ``xarray.Dataset`` (InferenceData or DataTree)."""
    if isinstance(result, az.InferenceData):
        return result[name]
    return result[name].to_dataset()


def set_group(result: Any, name: str, dataset) -> None:
    """Add or replace group ``name`` with ``dataset`` (an ``xarray.Dataset``)."""
    if isinstance(result, az.InferenceData):
        if name in result.groups():
            # not result[name] = ...: ArviZ 0.23 appends the name to its group list again
            setattr(result, name, dataset)
        else:
            result.add_groups({name: dataset})
        return
    from xarray import DataTree

    result[name] = DataTree(dataset)


def to_idata(
    posterior: dict[str, np.ndarray], *, dims=None, coords=None, sample_stats=None, attrs=None
):
    """Build a result object (InferenceData, or DataTree under ArviZ 1.x) from arrays.

    Parameters
    ----------
    posterior : dict of str to ndarray of shape (chain, draw, ...)
    dims, coords : dict, optional
        Named dims and coordinates as in :func:`arviz.from_dict`.
    sample_stats : dict of str to ndarray of shape (chain, draw, ...), optional
    attrs : dict, optional
        Attributes stored on the posterior group.
    """
    if ARVIZ_MAJOR >= 1:  # pragma: no cover - ArviZ 1.x (Python >= 3.12)
        from arviz_base import from_dict

        groups = {"posterior": posterior}
        if sample_stats is not None:
            groups["sample_stats"] = sample_stats
        tree = from_dict(groups, dims=dims, coords=coords)
        if attrs:
            tree["posterior"].attrs.update(attrs)
        return tree
    idata = az.from_dict(
        posterior=posterior, sample_stats=sample_stats, dims=dims, coords=coords, attrs=attrs
    )
    if attrs:
        idata.posterior.attrs.update(attrs)
    return idata


def plot_trace(data, var_names=None, **kwargs):
    """Trace + density plot: ``plot_trace`` in ArviZ 0.x, ``plot_trace_dist`` in 1.x."""
    if ARVIZ_MAJOR >= 1:  # pragma: no cover
        return az.plot_trace_dist(data, var_names=var_names, **kwargs)
    return az.plot_trace(data, var_names=var_names, **kwargs)


def to_netcdf(result, path) -> None:
    """Write a result to netCDF atomically (temp file in the same folder, then rename)."""
    from bayesbin._io import atomic_path

    with atomic_path(path, suffix=".nc.tmp") as tmp:
        result.to_netcdf(tmp)


def from_netcdf(path):
    """Read a result written by :func:`to_netcdf`."""
    if ARVIZ_MAJOR >= 1:  # pragma: no cover
        import xarray as xr

        return xr.open_datatree(path).load()
    return az.from_netcdf(path)
