"""ArviZ diagnostics for bayesbin results: per-weight R-hat, ESS and posterior P(w=1)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from bayesbin._compat import az, get_group, is_result

__all__ = ["summary", "mixing_overview"]


def _as_result(result):
    if is_result(result):
        return result
    idata = getattr(result, "idata_", None)
    if idata is None:
        raise TypeError(
            "result must be an ArviZ InferenceData / DataTree from bayesbin.sample or a fitted "
            f"bayesbin classifier; got {type(result).__name__}"
        )
    return idata


def summary(result, var_names=None, *, hdi_prob: float = 0.94) -> pd.DataFrame:
    """Per-parameter posterior summary and convergence diagnostics.

    Parameters
    ----------
    result : InferenceData, DataTree or fitted classifier
        From :func:`bayesbin.sample` or :func:`bayesbin.fit` (uses ``idata_``).
    var_names : list of str, optional
        Variables to include (default: every posterior variable).
    hdi_prob : float
        Probability mass of the reported HDI.

    Returns
    -------
    pandas.DataFrame
        One row per scalar parameter (``w[feature, class]``, ``b[class]``, ``scale``) with ArviZ's
        ``mean``, ``sd``, HDI, ``mcse_mean``, ``ess_bulk``, ``ess_tail``, ``r_hat``; for the bit
        weights ``mean`` is the posterior P(w=1), repeated in the column ``p_one`` (NaN for
        non-bit rows), and ``constant`` flags parameters that never changed in any chain (ArviZ
        then reports R-hat NaN and ESS = number of draws: such rows carry no mixing evidence).
    """
    idata = _as_result(result)
    post = get_group(idata, "posterior")
    if var_names is None:
        var_names = list(post.data_vars)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = az.summary(idata, var_names=list(var_names), hdi_prob=hdi_prob)
    const = []
    p_one = []
    for name in var_names:
        da = post[name]
        arr = da.values.reshape(da.sizes["chain"] * da.sizes["draw"], -1)
        const.extend(np.all(arr == arr[:1], axis=0).tolist())
        is_bits = np.issubdtype(da.dtype, np.integer) or da.dtype == bool
        p_one.extend(arr.mean(axis=0).tolist() if is_bits else [np.nan] * arr.shape[1])
    table["p_one"] = p_one
    table["constant"] = const
    return table


def mixing_overview(result, var_name: str = "w") -> dict:
    """Summary of how the bits mix: counts, constant bits, R-hat and ESS over non-constant bits.

    Parameters
    ----------
    result : InferenceData, DataTree or fitted classifier
    var_name : str
        The bit-weight variable.

    Returns
    -------
    dict
        ``n_bits``, ``n_constant`` (never changed in any chain), ``frac_mixing`` (share of
        non-constant bits with R-hat <= 1.01), ``max_rhat`` and ``min_ess_bulk`` /
        ``median_ess_bulk`` over non-constant bits, ``n_stuck_apart`` (bits constant within
        every chain but different between chains: R-hat infinite, where ArviZ reports NaN),
        ``max_finite_rhat`` (the worst R-hat among the others) and ``draws`` (chains x draws).
    """
    idata = _as_result(result)
    post = get_group(idata, "posterior")
    da = post[var_name]
    nc, nd = da.sizes["chain"], da.sizes["draw"]
    arr = da.values.reshape(nc, nd, -1).astype(np.float64)
    flat = arr.reshape(nc * nd, -1)
    constant = np.all(flat == flat[:1], axis=0)
    moving = arr[:, :, ~constant]
    out = {"n_bits": int(arr.shape[-1]), "n_constant": int(constant.sum()), "draws": int(nc * nd)}
    if moving.shape[-1] == 0:
        out.update(
            frac_mixing=float("nan"),
            max_rhat=float("nan"),
            min_ess_bulk=float("nan"),
            median_ess_bulk=float("nan"),
        )
        return out
    import xarray as xr

    ds = xr.Dataset({"m": (("chain", "draw", "bit"), moving)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rhat = az.rhat(ds)["m"].values if nc > 1 else np.full(moving.shape[-1], np.nan)
        ess = az.ess(ds, method="bulk")["m"].values
    if nc > 1:
        # A bit constant within every chain but not across chains has zero within-chain
        # variance: ArviZ gives NaN, but the chains plainly disagree, so its R-hat is infinite.
        stuck = np.all(moving == moving[:, :1, :], axis=(0, 1))
        rhat = np.where(stuck & ~np.isfinite(rhat), np.inf, rhat)
    finite = ~np.isnan(rhat)
    out.update(
        n_stuck_apart=int(np.sum(np.isinf(rhat))),
        frac_mixing=float(np.mean(rhat[finite] <= 1.01)) if finite.any() else float("nan"),
        max_rhat=float(np.max(rhat[finite])) if finite.any() else float("nan"),
        max_finite_rhat=float(np.max(rhat[np.isfinite(rhat)]))
        if np.isfinite(rhat).any()
        else float("nan"),
        min_ess_bulk=float(np.nanmin(ess)),
        median_ess_bulk=float(np.nanmedian(ess)),
    )
    return out
