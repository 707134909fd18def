"""Sampled binary networks as ArviZ data, and layer dicts filled from a template: one reader/writer.

A *template* describes a network without arrays (``input_shape``, ``classes``, ``eps`` and a list
of ``{"kind", "name"[, "size"]}``, led by ``{"kind": "binarize", "threshold"}`` for binarized
inputs); :func:`build_network` fills it with ±1 weights and batch-norm
statistics to give a network in the interchange format of :mod:`bayesbin.bits.description`.
:func:`networks_to_idata` stores a list of such networks (PBNet's sampled networks) as ArviZ
``InferenceData`` and :func:`networks_from_idata` reads them back. Both live here, below
``bayesbin.nets``, so that :func:`bayesbin.to_bits` can pack a saved result without the training
code or JAX.
"""

from __future__ import annotations

import json

import numpy as np

__all__ = ["IDATA_KIND", "build_network", "is_networks_result", "networks_from_idata",
           "networks_to_idata"]

IDATA_KIND = "bayesbin.nets.sampled_networks"
"""Value of the ``bayesbin_nets_kind`` attribute of a :func:`networks_to_idata` result."""

_INFERENCE_NOTE = (
    "Independent draws of binary networks from PBNet's learned variational (mean-field "
    "Binary(theta)) distribution, P(w = +1) = (1 + theta) / 2, each with batch-norm statistics "
    "re-estimated on training data. There is no prior and no MCMC: the draws are exactly "
    "independent, so R-hat and ESS are not the point (they only restate that)."
)


def build_network(template: dict, weights: dict, bn: dict) -> dict:
    """Fill a :func:`network_template` with arrays.

    Parameters
    ----------
    template : dict
    weights : dict of str to ndarray
        Binary weights per layer name, values in {-1, +1} (stored as int8).
    bn : dict of str to dict
        Per layer name: ``gamma``, ``beta``, ``mean``, ``var`` of shape (C,).

    Returns
    -------
    dict
        A network in the interchange format.
    """
    layers = []
    for spec in template["layers"]:
        kind = spec["kind"]
        if kind in ("conv2d", "dense"):
            w = np.asarray(weights[spec["name"]])
            if not np.all(np.abs(w) == 1):
                raise ValueError(f"weights of {spec['name']} must all be -1 or +1")
            d = {"kind": kind, "name": spec["name"], "weights": w.astype(np.int8)}
            if kind == "conv2d":
                d["padding"] = "same"
            layers.append(d)
        elif kind == "batchnorm":
            stats = bn[spec["name"]]
            layers.append(
                {
                    "kind": kind,
                    "name": spec["name"],
                    **{k: np.asarray(stats[k], dtype=np.float32) for k in ("gamma", "beta")},
                    **{k: np.asarray(stats[k], dtype=np.float64) for k in ("mean", "var")},
                    "eps": float(template["eps"]),
                }
            )
        elif kind == "maxpool2d":
            layers.append({"kind": kind, "size": int(spec["size"])})
        elif kind == "binarize":
            layers.append({"kind": kind, "threshold": float(spec["threshold"])})
        else:
            layers.append({"kind": kind})
    return {
        "input_shape": tuple(template["input_shape"]),
        "layers": layers,
        "classes": list(template["classes"]),
    }


def networks_to_idata(
    template: dict, draws: list[dict], p_plus: dict, *, attrs: dict | None = None
):
    """Store sampled networks as ArviZ ``InferenceData`` (one chain; dims named per layer).

    Parameters
    ----------
    template : dict
        :func:`network_template` of the networks.
    draws : list of dict
        Networks (interchange format) with the same template.
    p_plus : dict of str to ndarray
        P(w = +1) per weight for every binary layer.
    attrs : dict, optional
        Extra attributes for the posterior group.

    Returns
    -------
    InferenceData
        ``posterior``: per binary layer ``<name>`` int8 ±1 with dims ``("chain", "draw",
        "<name>_out", "<name>_in"[, "kh", "kw"])`` and ``<name>_bn_mean`` / ``<name>_bn_var``
        ``("chain", "draw", "<name>_out")``; ``constant_data``: ``<name>_p`` (P(w = +1)),
        ``<name>_bn_gamma``, ``<name>_bn_beta``; attrs with the template as JSON and a note that
        these are independent variational draws. Weight variables carry the attribute
        ``encoding="pm1"`` (their posterior mean is ``2 P(w = +1) - 1``).
    """
    import xarray as xr

    from bayesbin._compat import get_group, set_group, to_idata

    posterior: dict[str, np.ndarray] = {}
    dims: dict[str, list[str]] = {}
    const: dict[str, tuple[list[str], np.ndarray]] = {}
    by_name = [{lay.get("name", ""): lay for lay in d["layers"] if "weights" in lay} for d in draws]
    bns = [{lay["name"]: lay for lay in d["layers"] if lay["kind"] == "batchnorm"} for d in draws]
    for spec in template["layers"]:
        name = spec.get("name")
        if spec["kind"] in ("conv2d", "dense"):
            wd = [f"{name}_out", f"{name}_in"] + (["kh", "kw"] if spec["kind"] == "conv2d" else [])
            posterior[name] = np.stack([b[name]["weights"] for b in by_name])[None]
            dims[name] = wd
            const[f"{name}_p"] = (wd, np.asarray(p_plus[name], dtype=np.float32))
        elif spec["kind"] == "batchnorm":
            for key in ("mean", "var"):
                posterior[f"{name}_bn_{key}"] = np.stack([b[name][key] for b in bns])[None]
                dims[f"{name}_bn_{key}"] = [f"{name}_out"]
            for key in ("gamma", "beta"):
                const[f"{name}_bn_{key}"] = ([f"{name}_out"], bns[0][name][key])
    meta = {
        "bayesbin_nets_kind": IDATA_KIND,
        "bayesbin_nets_template": json.dumps(template),
        "inference": _INFERENCE_NOTE,
        "weight_encoding": "int8 in {-1, +1} (packed: bit 1 <-> +1); sign(0) = +1",
        "conv_layout": "OIHW, 3x3, stride 1, padding 'same' with zero padding",
        "inputs": _inputs_note(template),
        **(attrs or {}),
    }
    idata = to_idata(posterior, dims=dims, attrs=meta)
    post = get_group(idata, "posterior")
    for spec in template["layers"]:
        if spec["kind"] in ("conv2d", "dense"):
            post[spec["name"]].attrs.update(
                encoding="pm1", meaning="binary weight in {-1, +1}; P(w = +1) in constant_data "
                f"{spec['name']}_p")
    set_group(idata, "posterior", post)
    ds = xr.Dataset(
        {k: xr.DataArray(v, dims=d) for k, (d, v) in const.items()},
        attrs={"p_meaning": "<layer>_p = P(w = +1) = (1 + theta) / 2"},
    )
    set_group(idata, "constant_data", ds)
    return idata


def _inputs_note(template: dict) -> str:
    first = template["layers"][0] if template["layers"] else {}
    if first.get("kind") == "binarize":
        return f"binarized: +1 where x > {first['threshold']!r}, else -1"
    return "real values into the first layer"


def networks_from_idata(result) -> list[dict]:
    """Rebuild the list of binary networks from a :func:`networks_to_idata` result.

    Needs neither the estimator nor JAX (works on a result read back from netCDF).

    Parameters
    ----------
    result : InferenceData or DataTree
        From :meth:`PBNet.sample_networks <bayesbin.nets.PBNet.sample_networks>`.

    Returns
    -------
    list of dict
        One network per (chain, draw), in the interchange format.
    """
    from bayesbin._compat import get_group, has_group, is_result

    if not is_result(result):
        raise TypeError(f"result must be InferenceData or DataTree; got {type(result).__name__}")
    post = get_group(result, "posterior")
    if post.attrs.get("bayesbin_nets_kind") != IDATA_KIND or not has_group(
        result, "constant_data"
    ):
        raise ValueError("result was not written by PBNet.sample_networks (no network template)")
    const = get_group(result, "constant_data")
    template = json.loads(post.attrs["bayesbin_nets_template"])
    bn_names = [s["name"] for s in template["layers"] if s["kind"] == "batchnorm"]
    w_names = [s["name"] for s in template["layers"] if s["kind"] in ("conv2d", "dense")]
    arrays = {n: post[n].values.reshape(-1, *post[n].shape[2:]) for n in w_names}
    stats = {
        f"{n}_{k}": post[f"{n}_bn_{k}"].values.reshape(-1, post[f"{n}_bn_{k}"].shape[-1])
        for n in bn_names
        for k in ("mean", "var")
    }
    n_draws = next(iter(arrays.values())).shape[0]
    nets = []
    for i in range(n_draws):
        bn = {
            n: {
                "gamma": const[f"{n}_bn_gamma"].values,
                "beta": const[f"{n}_bn_beta"].values,
                "mean": stats[f"{n}_mean"][i],
                "var": stats[f"{n}_var"][i],
            }
            for n in bn_names
        }
        nets.append(build_network(template, {n: arrays[n][i] for n in w_names}, bn))
    return nets


def is_networks_result(result) -> bool:
    """True if ``result`` was written by :func:`networks_to_idata` (PBNet.sample_networks).

    Parameters
    ----------
    result : object

    Returns
    -------
    bool
    """
    from bayesbin._compat import get_group, has_group, is_result

    if not is_result(result) or not has_group(result, "posterior"):
        return False
    return get_group(result, "posterior").attrs.get("bayesbin_nets_kind") == IDATA_KIND
