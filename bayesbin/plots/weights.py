"""Plots of the weight posterior: P(w = 1) images, bit traces and ranks, R-hat/ESS maps."""

from __future__ import annotations

import numbers
import warnings
from typing import Literal

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib import colors as mcolors

from bayesbin._compat import az, get_group, plot_trace
from bayesbin._validation import check_choice, check_positive_int
from bayesbin.bits.netdata import is_networks_result
from bayesbin.plots._common import (
    _given_axes,
    _grid,
    _image_axes,
    _image_shape,
    _panel_values,
    _panels,
    _unpack,
)
from bayesbin.posterior import (
    bit_probabilities,
    result_spec,
    weight_draws,
)

__all__ = [
    "plot_bit_traces",
    "plot_probability_images",
    "plot_rhat_ess_maps",
    "plot_weight_probabilities",
]


def plot_weight_probabilities(
    result,
    *,
    image_shape=None,
    classes=None,
    axes=None,
    ncols: int | None = None,
    cmap: str = "viridis",
    diff_cmap: str = "RdBu_r",
    panel_size: float = 2.2,
    layer: str | None = None,
    max_panels: int | None = 32,
):
    """Posterior P(w = 1) of every weight, drawn as one image per class.

    Also takes sampled binary networks (``PBNet.sample_networks``): then it draws P(w = +1)
    of one binary ``layer`` (default the first), one image per unit (28x28 per hidden unit of
    an MLP on MNIST, 3x3 per filter of a convolution), with :func:`plot_probability_images`.

    Parameters
    ----------
    result : arviz.InferenceData, xarray.DataTree or fitted BayesBinClassifier
        A bayesbin result (``posterior["w"]`` with a ``"bayesbin_spec"``).
    image_shape : (int, int), optional
        Shape of one image, ``rows * cols == n_features``. Default: a square when
        ``n_features`` is a perfect square (28x28 for MNIST, 5x5 for MNIST56), else a
        ``(1, n_features)`` strip.
    classes : label or list of labels, optional
        Softmax only: which classes to draw (default all), as class labels.
    axes : sequence of matplotlib Axes, optional
        One per panel (K selected classes; 1 for the single logistic form; 3 for the
        two-output form). Default: a new figure with ``ncols`` columns.
    ncols : int, optional
        Columns of the new figure (default ``min(panels, 5)``).
    cmap : str
        Colour map of the probabilities (shared scale [0, 1], one colourbar).
    diff_cmap : str
        Diverging colour map of ``P(w[1]=1) - P(w[0]=1)`` (two-output form, scale [-1, 1]).
    panel_size : float
        Inches per panel in a new figure.
    layer : str, optional
        Sampled networks only: the binary layer (e.g. ``"conv1"``, ``"dense3"``).
    max_panels : int or None
        Sampled networks only: draw the first ``max_panels`` units (None: all).

    Returns
    -------
    matplotlib.figure.Figure
        Panel ``i`` holds one ``AxesImage`` whose array (float64, ``image_shape``) is P(w = 1)
        of that class's weight vector reshaped row-major (``P[:, k]`` for softmax; ``P`` for
        the single logistic form; ``P[0]``, ``P[1]`` and ``P[1] - P[0]`` for two outputs).
        Titles name the class label.
    """
    if is_networks_result(result):
        from bayesbin.nets import weight_probability_images

        images, titles = weight_probability_images(result, layer)
        return plot_probability_images(images, titles, axes=axes, ncols=ncols, cmap=cmap,
                                       panel_size=panel_size, max_panels=max_panels)
    if layer is not None:
        raise ValueError("layer applies to sampled binary networks (PBNet.sample_networks) only")
    result, labels = _unpack(result)
    spec = result_spec(result)
    shape = _image_shape(image_shape, spec.n_features)
    probs = np.asarray(bit_probabilities(result, spec=spec).values, dtype=np.float64)
    panels = [
        (_panel_values(probs, spec, index).reshape(shape), title)
        for index, title in _panels(spec, labels, classes)
    ]
    diff = None
    if spec.form == "two_output":
        diff = ((probs[1] - probs[0]).reshape(shape), "P(w[1]=1) - P(w[0]=1)")
    n_panels = len(panels) + (diff is not None)
    if axes is None:
        fig, axs = _grid(n_panels, ncols, panel_size)
    else:
        axs = _given_axes(axes, n_panels)
        fig = axs[0].figure
    aspect = "equal" if shape[0] > 1 else "auto"
    image = None
    for ax, (img, title) in zip(axs, panels):
        image = ax.imshow(
            img, vmin=0.0, vmax=1.0, cmap=cmap, aspect=aspect, interpolation="nearest"
        )
        ax.set_title(title, fontsize=9)
        _image_axes(ax)
    prob_axes = axs[: len(panels)]
    fig.colorbar(image, ax=prob_axes, label="P(w = 1)", shrink=0.9)
    if diff is not None:
        ax = axs[-1]
        image = ax.imshow(
            diff[0], vmin=-1.0, vmax=1.0, cmap=diff_cmap, aspect=aspect, interpolation="nearest"
        )
        ax.set_title(diff[1], fontsize=9)
        _image_axes(ax)
        fig.colorbar(image, ax=ax, label="difference", shrink=0.9)
    return fig


def plot_probability_images(
    images,
    titles=None,
    *,
    axes=None,
    ncols: int | None = None,
    max_panels: int | None = 32,
    cmap: str = "viridis",
    panel_size: float = 2.2,
):
    """Images of probabilities in [0, 1], one panel each, on a shared colour scale.

    For results that are not a linear model, e.g. the first layer of a sampled binary network:
    ``plot_probability_images(*bayesbin.nets.weight_probability_images(idata))``.

    Parameters
    ----------
    images : array-like of shape (n_panels, rows, cols)
        Values in [0, 1] (P(w = +1) per weight).
    titles : list of str, optional
        One per panel.
    axes : sequence of matplotlib Axes, optional
        One per drawn panel. Default: a new figure with ``ncols`` columns.
    ncols : int, optional
        Columns of the new figure (default ``min(panels, 8)``).
    max_panels : int or None
        Draw only the first ``max_panels`` images (None: all).
    cmap : str
    panel_size : float
        Inches per panel in a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        Panel ``i`` holds one ``AxesImage`` with ``images[i]``; one colourbar "P(w = +1)".
    """
    imgs = np.asarray(images, dtype=np.float64)
    if imgs.ndim != 3 or imgs.shape[0] == 0:
        raise ValueError(f"images must have shape (n_panels, rows, cols); got {imgs.shape}")
    if not np.all(np.isfinite(imgs)) or imgs.min() < 0 or imgs.max() > 1:
        raise ValueError("images must hold probabilities in [0, 1]")
    if max_panels is not None:
        imgs = imgs[: check_positive_int(max_panels, "max_panels")]
    titles = list(titles)[: len(imgs)] if titles is not None else [str(i) for i in range(len(imgs))]
    if axes is None:
        fig, axs = _grid(len(imgs), ncols if ncols is not None else min(len(imgs), 8), panel_size)
    else:
        axs = _given_axes(axes, len(imgs))
        fig = axs[0].figure
    image = None
    for ax, img, title in zip(axs, imgs, titles):
        image = ax.imshow(img, vmin=0.0, vmax=1.0, cmap=cmap, interpolation="nearest",
                          aspect="equal" if img.shape[0] > 1 else "auto")
        ax.set_title(title, fontsize=8)
        _image_axes(ax)
    fig.colorbar(image, ax=list(axs[: len(imgs)]), label="P(w = +1)", shrink=0.9)
    return fig


def _select_bits(bits, probs: np.ndarray, n: int) -> list[tuple[int, ...]]:
    shape = probs.shape
    if bits is None:
        n = check_positive_int(n, "n")
        order = np.argsort(np.abs(probs.ravel() - 0.5), kind="stable")[: min(n, probs.size)]
        return [tuple(int(i) for i in np.unravel_index(f, shape)) for f in order]
    if isinstance(bits, numbers.Integral) or (
        isinstance(bits, tuple)
        and all(isinstance(b, numbers.Integral) for b in bits)
        and len(bits) == len(shape)
        and len(shape) > 1
    ):
        bits = [bits]
    out = []
    for bit in bits:
        if isinstance(bit, numbers.Integral) and not isinstance(bit, bool):
            if not 0 <= int(bit) < probs.size:
                raise ValueError(
                    f"bits: flat index {bit} is outside 0..{probs.size - 1} (weights of shape "
                    f"{shape})"
                )
            out.append(tuple(int(i) for i in np.unravel_index(int(bit), shape)))
            continue
        try:
            idx = tuple(int(i) for i in bit)
        except TypeError as exc:
            raise TypeError(
                "bits must be None, flat int indices or tuples of positions along the weight "
                f"dims; got {bit!r}"
            ) from exc
        if len(idx) != len(shape) or any(not 0 <= i < s for i, s in zip(idx, shape)):
            raise ValueError(f"bits: {bit!r} is not a position in weights of shape {shape}")
        out.append(idx)
    if not out:
        raise ValueError("bits must select at least one weight")
    return out


def plot_bit_traces(
    result, bits=None, *, kind: Literal["trace", "rank"] = "trace", n: int = 4, **kwargs
):
    """ArviZ trace or rank plots of selected weight bits.

    Parameters
    ----------
    result : arviz.InferenceData, xarray.DataTree or fitted BayesBinClassifier
    bits : int, tuple or list of them, optional
        Weights to plot: flat indices into ``weight_shape`` (row-major) or tuples of positions
        along ``weight_dims`` (e.g. ``(feature, class)`` for softmax). Default: the ``n``
        least-certain bits, P(w = 1) closest to 0.5 (ties in row-major order).
    kind : {"trace", "rank"}
        ``"trace"``: ArviZ's trace plot (through ``bayesbin._compat.plot_trace``); ``"rank"``:
        ``arviz.plot_rank``.
    n : int
        Number of bits chosen when ``bits`` is None.
    **kwargs
        Passed to the ArviZ function (e.g. ``figsize``, ``axes``/``ax``).

    Returns
    -------
    ndarray of matplotlib Axes
        ``"trace"``: shape (n_bits, 2), distribution left, trace right; ``"rank"``: (n_bits,).
        Each row is titled ``"w[feature, class label]"`` (``"w[output, feature]"``,
        ``"w[feature]"`` for the logistic forms) with coordinate values of the posterior.
    """
    check_choice(kind, "kind", ("trace", "rank"))
    result, labels = _unpack(result)
    spec = result_spec(result)
    probs = np.asarray(bit_probabilities(result, spec=spec).values)
    chosen = _select_bits(bits, probs, n)
    var = spec.names.w
    da = get_group(result, "posterior")[var]
    canon = np.arange(int(np.prod(spec.weight_shape))).reshape(spec.weight_shape)
    in_model = spec.from_canonical(canon)  # the model's layout holding canonical flat indices
    names, where = [], []
    for pos in chosen:
        flat = int(np.ravel_multi_index(pos, spec.weight_shape))
        where.append(tuple(int(v) for v in np.argwhere(in_model == flat)[0]))
        parts = []
        for dim, i in zip(spec.weight_dims, pos, strict=True):
            if dim == "class":
                parts.append(str(labels[i]))
            elif spec.layout is None:
                parts.append(str(da.coords[dim].values[i]))
            else:
                parts.append(str(i))
        names.append(", ".join(parts))
    coords = {
        dim: xr.DataArray(
            [da.coords[dim].values[pos[j]] for pos in where], dims="bit", coords={"bit": names}
        )
        for j, dim in enumerate(spec.w_dims)
    }
    if kind == "trace":
        kwargs.setdefault("compact", False)
        if "axes" not in kwargs:
            kwargs.setdefault("figsize", (10.0, 1.0 + 1.8 * len(chosen)))
    with warnings.catch_warnings():
        # ArviZ 0.x's own matplotlib >= 3.11 deprecation (normalize_kwargs), not ours
        warnings.filterwarnings("ignore", message=".*alias_mapping.*")
        if kind == "trace":
            out = plot_trace(result, var_names=[var], coords=coords, **kwargs)
        else:
            out = az.plot_rank(result, var_names=[var], coords=coords, **kwargs)
    if isinstance(out, np.ndarray) and out.size >= len(chosen):
        # one-line titles "w[feature, class]" (ArviZ's two-line ones overlap stacked rows)
        rows = out.reshape(len(chosen), -1) if kind == "trace" else out.reshape(-1, 1)
        for row, name in zip(rows, names):
            for ax in row:
                ax.set_title(f"w[{name}]", fontsize=9)
        if kind == "trace" and "axes" not in kwargs:
            rows[0, 0].figure.tight_layout()
    return out


def plot_rhat_ess_maps(
    result,
    *,
    image_shape=None,
    classes=None,
    axes=None,
    panel_size: float = 2.0,
    bad_colour: str = "lightgrey",
    rhat_max: float | None = None,
):
    """Split R-hat and bulk ESS of every weight bit as images, constant bits masked.

    A bit that never changed in any chain carries no mixing evidence (ArviZ gives R-hat NaN
    and ESS = number of draws), so it is masked (drawn in ``bad_colour``), as are NaN values.

    Parameters
    ----------
    result : arviz.InferenceData, xarray.DataTree or fitted BayesBinClassifier
    image_shape : (int, int), optional
        As in :func:`plot_weight_probabilities`.
    classes : label or list of labels, optional
        Softmax only: which classes to draw.
    axes : array of matplotlib Axes of shape (2, n_panels), optional
        Row 0 for R-hat, row 1 for ESS; panels are the selected classes (softmax), the one
        vector (single logistic) or the two outputs.
    panel_size : float
        Inches per panel in a new figure.
    bad_colour : str
        Colour of masked (constant or NaN) bits.
    rhat_max : float, optional
        Top of the R-hat colour scale (values above take the top colour). Default: the largest
        finite R-hat of the moving bits, at least 1.1; a few bits with R-hat 10 then squeeze
        all ordinary bits into one colour, so ``rhat_max=1.1`` is often the more telling view.

    Returns
    -------
    matplotlib.figure.Figure
        Each panel holds one ``AxesImage`` whose masked array (``image_shape``) is
        ``arviz.rhat`` (row 0) or ``arviz.ess(method="bulk")`` (row 1) of that panel's bits,
        with the mask set on constant bits; titles name the class; the suptitle counts the
        constant bits.
    """
    result, labels = _unpack(result)
    spec = result_spec(result)
    shape = _image_shape(image_shape, spec.n_features)
    panels = _panels(spec, labels, classes)
    da = xr.DataArray(
        weight_draws(result, spec=spec).astype(np.float64),
        dims=("chain", "draw", *spec.weight_dims),
    )
    n_chain, n_draw = int(da.sizes["chain"]), int(da.sizes["draw"])
    flat = da.values.reshape(n_chain * n_draw, -1)
    constant = np.all(flat == flat[:1], axis=0).reshape(spec.weight_shape)
    ds = xr.Dataset({"w": da})
    dims = spec.weight_dims
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # constant bits: 0 / 0 in R-hat
        rhat = np.asarray(az.rhat(ds)["w"].transpose(*dims).values, dtype=np.float64)
        ess = np.asarray(az.ess(ds, method="bulk")["w"].transpose(*dims).values, dtype=np.float64)
    if axes is None:
        fig, grid = plt.subplots(
            2,
            len(panels),
            squeeze=False,
            layout="constrained",
            figsize=(panel_size * len(panels) + 1.4, 2 * panel_size + 0.9),
        )
    else:
        grid = np.asarray(axes, dtype=object)
        if grid.shape != (2, len(panels)):
            raise ValueError(
                f"axes must be an array of shape (2, {len(panels)}) (R-hat row, ESS row); got "
                f"shape {grid.shape}"
            )
        fig = grid[0, 0].figure
    if rhat_max is not None:
        if isinstance(rhat_max, bool) or not isinstance(rhat_max, int | float | np.number):
            raise TypeError(f"rhat_max must be a number > 1; got {rhat_max!r}")
        if not (np.isfinite(rhat_max) and rhat_max > 1.0):
            raise ValueError(f"rhat_max must be a finite number > 1; got {rhat_max!r}")
    finite_rhat = rhat[~constant & np.isfinite(rhat)]
    rows = [
        (
            "R-hat",
            rhat,
            "viridis",
            1.0,
            float(rhat_max)
            if rhat_max is not None
            else (max(1.1, float(finite_rhat.max())) if finite_rhat.size else 1.1),
        ),
        (
            "ESS bulk",
            ess,
            "magma",
            0.0,
            float(max(n_chain * n_draw, np.nanmax(ess)))
            if np.isfinite(ess).any()
            else float(n_chain * n_draw),
        ),
    ]
    aspect = "equal" if shape[0] > 1 else "auto"
    for i, (name, values, cmap_name, vmin, vmax) in enumerate(rows):
        cmap = plt.get_cmap(cmap_name).with_extremes(bad=bad_colour)
        image = None
        for j, (index, title) in enumerate(panels):
            vals = _panel_values(values, spec, index).reshape(shape)
            mask = _panel_values(constant, spec, index).reshape(shape) | ~np.isfinite(vals)
            ax = grid[i, j]
            image = ax.imshow(
                np.ma.masked_array(vals, mask=mask),
                cmap=cmap,
                norm=mcolors.Normalize(vmin=vmin, vmax=vmax),
                aspect=aspect,
                interpolation="nearest",
            )
            ax.set_title(f"{name}, {title}", fontsize=8)
            _image_axes(ax)
        fig.colorbar(image, ax=list(grid[i]), label=name, shrink=0.9)
    fig.suptitle(
        f"{int(constant.sum())} of {constant.size} bits constant (masked); "
        f"{n_chain} chains x {n_draw} draws",
        fontsize=9,
    )
    return fig
