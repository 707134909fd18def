"""Matplotlib/ArviZ plots of bayesbin results: weight images, bit traces, calibration, uncertainty.

Every plotting function takes a sampling result (ArviZ ``InferenceData``; an xarray ``DataTree``
on PyMC 6) or a fitted :class:`bayesbin.BayesBinClassifier` (its ``idata_`` and ``classes_`` are
used) and returns the matplotlib ``Axes`` or ``Figure`` it drew on; nothing is shown or closed.
matplotlib is imported here only, never from ``bayesbin/__init__``.

Examples
--------
>>> import bayesbin, bayesbin.plots as bbp
>>> clf = bayesbin.fit(x, y, classes=10, draws=200)              # doctest: +SKIP
>>> fig = bbp.plot_weight_probabilities(clf)                      # doctest: +SKIP
>>> ax = bbp.plot_classifier_reliability(clf, x_test, y_test)     # doctest: +SKIP
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib import colors as mcolors
from scipy.special import expit

from bayesbin._compat import az, get_group, is_result, plot_trace
from bayesbin._validation import check_choice, check_positive_int, check_x
from bayesbin.linear.maths import draw_logits, softmax
from bayesbin.linear.spec import ModelSpec
from bayesbin.posterior import (
    bit_probabilities,
    posterior_predictive_proba,
    result_classes,
    result_spec,
)

__all__ = [
    "plot_accuracy_vs_draws",
    "plot_bit_traces",
    "plot_classifier_reliability",
    "plot_prediction_uncertainty",
    "plot_reliability",
    "plot_rhat_ess_maps",
    "plot_weight_probabilities",
    "predictive_uncertainty",
    "reliability_bins",
]

# Largest float64 block (in elements) of per-draw probabilities held at once.
_CHUNK_ELEMENTS = 1 << 22


# --------------------------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------------------------


def _unpack(result_or_clf) -> tuple:
    """``(result, class labels)`` of a sampling result or a fitted classifier."""
    if is_result(result_or_clf):
        return result_or_clf, result_classes(result_or_clf)
    idata = getattr(result_or_clf, "idata_", None)
    if idata is None or not is_result(idata):
        raise TypeError(
            "result must be an ArviZ InferenceData / xarray DataTree from bayesbin.sample or a "
            f"fitted bayesbin classifier; got {type(result_or_clf).__name__}"
        )
    labels = getattr(result_or_clf, "classes_", None)
    if labels is None:
        labels = result_classes(idata)
    return idata, np.asarray(labels)


def _image_shape(image_shape, n_features: int) -> tuple[int, int]:
    """Validated (rows, cols); default a square when ``n_features`` is one, else (1, D)."""
    if image_shape is None:
        side = math.isqrt(n_features)
        return (side, side) if side * side == n_features else (1, n_features)
    try:
        shape = tuple(int(v) for v in image_shape)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"image_shape must be a pair of positive ints (rows, cols); got {image_shape!r}"
        ) from exc
    if len(shape) != 2 or min(shape) < 1 or shape[0] * shape[1] != n_features:
        raise ValueError(
            f"image_shape must be (rows, cols) with rows * cols == n_features = {n_features}; "
            f"got {image_shape!r}"
        )
    return shape


def _label_codes(y, labels: np.ndarray, n_samples: int, name: str = "y") -> np.ndarray:
    """Map labels to column indices of ``labels`` (int64)."""
    if hasattr(y, "to_numpy") and not isinstance(y, np.ndarray):
        y = y.to_numpy()
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D of shape (n_samples,); got shape {arr.shape}")
    if arr.shape[0] != n_samples:
        raise ValueError(
            f"{name} has {arr.shape[0]} labels but there are {n_samples} rows; lengths must match"
        )
    lookup = {v: i for i, v in enumerate(np.asarray(labels).tolist())}
    try:
        codes = np.fromiter((lookup[v] for v in arr.tolist()), dtype=np.int64, count=len(arr))
    except (KeyError, TypeError) as exc:
        unknown = [v for v in arr.tolist() if not _hashable_in(v, lookup)][:5]
        raise ValueError(
            f"{name} has labels outside the classes {np.asarray(labels).tolist()}: {unknown}"
        ) from exc
    return codes


def _hashable_in(value, lookup: dict) -> bool:
    try:
        return value in lookup
    except TypeError:
        return False


def _check_proba(proba, name: str = "proba") -> np.ndarray:
    """(n, K) float64 probabilities; a 1-D array is P(class 1) of a binary problem."""
    arr = np.asarray(proba, dtype=np.float64)
    if arr.ndim == 1:
        arr = np.stack([1.0 - arr, arr], axis=1)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] < 2:
        raise ValueError(
            f"{name} must be of shape (n_samples, n_classes) with n_classes >= 2 (or 1-D "
            f"P(class 1)); got shape {np.shape(proba)}"
        )
    if not np.all(np.isfinite(arr)) or arr.min() < 0.0 or arr.max() > 1.0:
        raise ValueError(f"{name} must hold finite probabilities in [0, 1]")
    if not np.allclose(arr.sum(axis=1), 1.0, rtol=0.0, atol=1e-6):
        raise ValueError(f"{name} rows must sum to 1")
    return arr


def _panels(spec: ModelSpec, labels: np.ndarray, classes) -> list[tuple[int, str]]:
    """``(index along the panel axis, title)`` for the weight maps of a result."""
    form = spec.form
    if form == "softmax":
        if classes is None:
            chosen = list(range(len(labels)))
        else:
            if isinstance(classes, str) or not isinstance(classes, Sequence | np.ndarray):
                classes = [classes]
            chosen = _label_codes(np.asarray(classes), labels, len(classes), "classes").tolist()
        return [(k, f"class {labels[k]}") for k in chosen]
    if classes is not None:
        raise ValueError(
            "classes selects panels of a softmax model; this result is a logistic "
            f"({form!r}) model whose panels are fixed"
        )
    if form == "single":
        return [(0, f"class {labels[1]} vs {labels[0]}")]
    return [(0, f"output 0 (class {labels[0]})"), (1, f"output 1 (class {labels[1]})")]


def _panel_values(values: np.ndarray, spec: ModelSpec, index: int) -> np.ndarray:
    """The per-feature vector (D,) of one panel from an array of shape ``weight_shape``."""
    form = spec.form
    if form == "softmax":
        return values[:, index]
    if form == "single":
        return values
    return values[index]


def _grid(n_panels: int, ncols: int | None, panel_size: float, extra_width: float = 1.2):
    if ncols is None:
        ncols = min(n_panels, 5)
    ncols = check_positive_int(ncols, "ncols")
    nrows = -(-n_panels // ncols)
    fig, grid = plt.subplots(
        nrows,
        ncols,
        squeeze=False,
        layout="constrained",
        figsize=(panel_size * ncols + extra_width, panel_size * nrows + 0.6),
    )
    flat = list(grid.ravel())
    for ax in flat[n_panels:]:
        fig.delaxes(ax)
    return fig, flat[:n_panels]


def _given_axes(axes, n: int, name: str = "axes") -> list:
    flat = list(np.ravel(np.asarray(axes, dtype=object)))
    if len(flat) != n:
        raise ValueError(f"{name} must hold {n} matplotlib Axes (one per panel); got {len(flat)}")
    return flat


def _image_axes(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


# --------------------------------------------------------------------------------------------
# weight probabilities
# --------------------------------------------------------------------------------------------


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
):
    """Posterior P(w = 1) of every weight, drawn as one image per class.

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

    Returns
    -------
    matplotlib.figure.Figure
        Panel ``i`` holds one ``AxesImage`` whose array (float64, ``image_shape``) is P(w = 1)
        of that class's weight vector reshaped row-major (``P[:, k]`` for softmax; ``P`` for
        the single logistic form; ``P[0]``, ``P[1]`` and ``P[1] - P[0]`` for two outputs).
        Titles name the class label.
    """
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


# --------------------------------------------------------------------------------------------
# traces and ranks of selected bits
# --------------------------------------------------------------------------------------------


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


def plot_bit_traces(result, bits=None, *, kind: str = "trace", n: int = 4, **kwargs):
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
    da = get_group(result, "posterior")["w"]
    dims = spec.weight_dims
    names = []
    for pos in chosen:
        parts = []
        for dim, i in zip(dims, pos):
            parts.append(str(labels[i]) if dim == "class" else str(da.coords[dim].values[i]))
        names.append(", ".join(parts))
    coords = {
        dim: xr.DataArray(
            [da.coords[dim].values[pos[j]] for pos in chosen], dims="bit", coords={"bit": names}
        )
        for j, dim in enumerate(dims)
    }
    if kind == "trace":
        kwargs.setdefault("compact", False)
        if "axes" not in kwargs:
            kwargs.setdefault("figsize", (10.0, 1.0 + 1.8 * len(chosen)))
    with warnings.catch_warnings():
        # ArviZ 0.x's own matplotlib >= 3.11 deprecation (normalize_kwargs), not ours
        warnings.filterwarnings("ignore", message=".*alias_mapping.*")
        if kind == "trace":
            out = plot_trace(result, var_names=["w"], coords=coords, **kwargs)
        else:
            out = az.plot_rank(result, var_names=["w"], coords=coords, **kwargs)
    if isinstance(out, np.ndarray) and out.size >= len(chosen):
        # one-line titles "w[feature, class]" (ArviZ's two-line ones overlap stacked rows)
        rows = out.reshape(len(chosen), -1) if kind == "trace" else out.reshape(-1, 1)
        for row, name in zip(rows, names):
            for ax in row:
                ax.set_title(f"w[{name}]", fontsize=9)
        if kind == "trace" and "axes" not in kwargs:
            rows[0, 0].figure.tight_layout()
    return out


# --------------------------------------------------------------------------------------------
# calibration
# --------------------------------------------------------------------------------------------


def reliability_bins(y_true, proba, *, n_bins: int = 10, classes=None) -> dict:
    """Confidence-binned accuracy and the expected calibration error (ECE).

    The confidence of a row is its largest probability, the prediction its argmax (first on
    ties). Bin ``i`` holds confidences in ``[i / n_bins, (i + 1) / n_bins)`` (the last bin also
    holds 1.0). ``ECE = sum_i (n_i / n) * |accuracy_i - confidence_i|`` over non-empty bins.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels, from ``classes``.
    proba : array-like of shape (n_samples, n_classes)
        Predicted probabilities (rows sum to 1); a 1-D array is P(class 1) of two classes.
    n_bins : int
        Equal-width bins on [0, 1].
    classes : array-like of shape (n_classes,), optional
        Label of each column of ``proba``; default ``0..n_classes-1``.

    Returns
    -------
    dict
        ``edges`` (n_bins + 1,) float64; ``count`` (n_bins,) int64; ``accuracy`` and
        ``confidence`` (n_bins,) float64, the mean correctness and mean confidence per bin
        (NaN for empty bins); ``ece`` float.
    """
    n_bins = check_positive_int(n_bins, "n_bins")
    proba = _check_proba(proba)
    labels = np.arange(proba.shape[1]) if classes is None else np.asarray(classes)
    if labels.ndim != 1 or labels.shape[0] != proba.shape[1]:
        raise ValueError(
            f"classes must hold {proba.shape[1]} labels (one per column of proba); got shape "
            f"{labels.shape}"
        )
    codes = _label_codes(y_true, labels, proba.shape[0], "y_true")
    conf = proba.max(axis=1)
    correct = (np.argmax(proba, axis=1) == codes).astype(np.float64)
    which = np.minimum((conf * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(which, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.bincount(which, weights=correct, minlength=n_bins) / count
        mean_conf = np.bincount(which, weights=conf, minlength=n_bins) / count
    full = count > 0
    ece = float(np.sum(count[full] / conf.shape[0] * np.abs(acc[full] - mean_conf[full])))
    return {
        "edges": np.linspace(0.0, 1.0, n_bins + 1),
        "count": count.astype(np.int64),
        "accuracy": acc,
        "confidence": mean_conf,
        "ece": ece,
    }


def plot_reliability(y_true, proba, *, n_bins: int = 10, classes=None, ax=None):
    """Reliability (calibration) diagram of predicted-class confidence against accuracy.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels, from ``classes``.
    proba : array-like of shape (n_samples, n_classes)
        Predicted probabilities (e.g. ``clf.predict_proba(x)``); 1-D means P(class 1).
    n_bins : int
        Equal-width confidence bins on [0, 1] (see :func:`reliability_bins`).
    classes : array-like of shape (n_classes,), optional
        Label of each column of ``proba`` (default ``0..n_classes-1``).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
        ``ax.containers[0]`` holds one bar per bin with height = accuracy in the bin (0 for
        empty bins); each non-empty bar is annotated with its count; mean confidences are
        marked, the diagonal drawn, and the title reads ``"... (ECE = 0.0123)"``.
    """
    stats = reliability_bins(y_true, proba, n_bins=n_bins, classes=classes)
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4.5))
    edges = stats["edges"]
    centres = 0.5 * (edges[:-1] + edges[1:])
    width = edges[1] - edges[0]
    full = stats["count"] > 0
    heights = np.where(full, stats["accuracy"], 0.0)
    ax.bar(
        centres,
        heights,
        width=width,
        color="C0",
        alpha=0.7,
        edgecolor="black",
        linewidth=0.6,
        label="accuracy",
    )
    ax.plot([0.0, 1.0], [0.0, 1.0], linestyle="--", color="grey", label="perfect calibration")
    ax.plot(
        stats["confidence"][full],
        stats["accuracy"][full],
        "o",
        color="C3",
        markersize=4,
        label="mean confidence",
    )
    for c, h, cnt in zip(centres[full], heights[full], stats["count"][full]):
        ax.text(c, min(h, 1.0) + 0.01, str(int(cnt)), ha="center", va="bottom", fontsize=7)
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.08)
    ax.set_xlabel("confidence (probability of the predicted class)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"Reliability diagram (ECE = {stats['ece']:.4f})")
    ax.legend(loc="upper left", fontsize=7)
    return ax


def plot_classifier_reliability(result_or_clf, x, y, *, n_bins: int = 10, ax=None):
    """:func:`plot_reliability` of a fitted classifier's (or a result's) predictions on ``(x, y)``.

    Parameters
    ----------
    result_or_clf : fitted BayesBinClassifier, arviz.InferenceData or xarray.DataTree
        A result gives :func:`bayesbin.posterior.posterior_predictive_proba`, a classifier its
        ``predict_proba`` (the same posterior-predictive mean).
    x : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
        True labels (``classes_`` of the classifier, or the result's class labels).
    n_bins : int
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    if is_result(result_or_clf):
        proba = posterior_predictive_proba(result_or_clf, x)
        labels = result_classes(result_or_clf)
    elif hasattr(result_or_clf, "predict_proba") and hasattr(result_or_clf, "classes_"):
        proba = result_or_clf.predict_proba(x)
        labels = np.asarray(result_or_clf.classes_)
    else:
        raise TypeError(
            "result_or_clf must be a fitted classifier (predict_proba, classes_) or a bayesbin "
            f"result; got {type(result_or_clf).__name__}"
        )
    return plot_reliability(y, proba, n_bins=n_bins, classes=labels, ax=ax)


# --------------------------------------------------------------------------------------------
# accuracy against the number of draws
# --------------------------------------------------------------------------------------------


def _default_steps(n_draw: int) -> np.ndarray:
    vals = {n_draw}
    m = 1
    while m <= n_draw:
        vals.update(v for v in (m, 2 * m, 5 * m) if v <= n_draw)
        m *= 10
    return np.array(sorted(vals), dtype=np.int64)


def _check_steps(steps, n_draw: int) -> np.ndarray:
    if steps is None:
        return _default_steps(n_draw)
    arr = np.asarray(steps)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"steps must be a non-empty 1-D sequence of ints; got {steps!r}")
    if arr.min() < 1 or arr.max() > n_draw:
        raise ValueError(f"steps must lie in 1..{n_draw} (draws per chain); got {arr.tolist()}")
    return np.unique(arr).astype(np.int64)


def plot_accuracy_vs_draws(result_or_clf, x, y, *, steps=None, ax=None):
    """Posterior-predictive accuracy using only the first ``s`` draws of every chain.

    For each ``s`` the prediction is the argmax of the class probabilities averaged over draws
    ``0..s-1`` of every chain (``s * chains`` draws pooled), computed incrementally with the
    float64 predictive of :func:`bayesbin.posterior.posterior_predictive_proba`.

    Parameters
    ----------
    result_or_clf : arviz.InferenceData, xarray.DataTree or fitted BayesBinClassifier
    x : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
        True labels.
    steps : sequence of int, optional
        Draws per chain, each in ``1..n_draw`` (sorted, duplicates dropped). Default a 1-2-5
        log grid up to and including ``n_draw``.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
        ``ax.lines[0]`` has x-data ``steps`` and y-data the accuracies (float64); log x-axis.
    """
    result, labels = _unpack(result_or_clf)
    spec = result_spec(result)
    x = check_x(x, "x", n_features=spec.n_features)
    codes = _label_codes(y, labels, x.shape[0])
    post = get_group(result, "posterior")
    n_chain, n_draw = int(post.sizes["chain"]), int(post.sizes["draw"])
    steps = _check_steps(steps, n_draw)
    total = np.zeros((x.shape[0], spec.n_classes))
    acc = np.empty(steps.shape[0])
    prev = 0
    for i, s in enumerate(steps):
        block = (np.arange(n_chain)[:, None] * n_draw + np.arange(prev, s)[None, :]).ravel()
        total += posterior_predictive_proba(result, x, draws=block) * block.size
        acc[i] = np.mean(np.argmax(total, axis=1) == codes)
        prev = int(s)
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(steps, acc, marker="o")
    ax.set_xscale("log")
    ax.set_xlabel(f"draws per chain (pooled over {n_chain} chains)")
    ax.set_ylabel("accuracy")
    ax.set_title("Posterior-predictive accuracy vs draws")
    ax.grid(True, alpha=0.3)
    return ax


# --------------------------------------------------------------------------------------------
# predictive uncertainty
# --------------------------------------------------------------------------------------------


def _entropy(p: np.ndarray) -> np.ndarray:
    """Entropy (nats) over the last axis, ``0 log 0 = 0``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return -terms.sum(axis=-1)


def _draw_parameters(result, spec: ModelSpec):
    """Flat (chain-major) effective weights, bias and scale of every draw, float64."""
    post = get_group(result, "posterior")
    n_chain, n_draw = int(post.sizes["chain"]), int(post.sizes["draw"])
    total = n_chain * n_draw
    w = post["w"].transpose("chain", "draw", *spec.weight_dims).values
    w = np.asarray(w, dtype=np.float64).reshape(total, *spec.weight_shape)
    if spec.encoding == "pm1":
        w = 2.0 * w - 1.0
    softmax_family = spec.family == "softmax"
    if spec.bias:
        dims = ("chain", "draw", "class") if softmax_family else ("chain", "draw")
        bias = np.asarray(post["b"].transpose(*dims).values, dtype=np.float64)
        bias = bias.reshape(total, -1) if softmax_family else bias.reshape(total)
    else:
        bias = np.zeros((total, spec.n_classes) if softmax_family else total)
    if spec.scale is True:
        scale = np.asarray(post["scale"].transpose("chain", "draw").values, dtype=np.float64)
        scale = scale.reshape(total)
    else:
        scale = np.full(total, 1.0 if spec.scale is False else float(spec.scale))
    return w, bias, scale


def predictive_uncertainty(result_or_clf, x, *, measure: str = "entropy"):
    """Posterior-predictive probabilities and a per-row uncertainty.

    Parameters
    ----------
    result_or_clf : arviz.InferenceData, xarray.DataTree or fitted BayesBinClassifier
    x : array-like of shape (n_samples, n_features)
    measure : {"entropy", "mutual_info"}
        ``"entropy"``: entropy (nats) of the mean predictive ``H(mean_s p_s)``;
        ``"mutual_info"``: the spread across draws, ``H(mean_s p_s) - mean_s H(p_s)``
        (the epistemic part; 0 when all draws agree), clipped at 0.

    Returns
    -------
    proba : ndarray of shape (n_samples, K), float64
        Mean predictive probabilities (rows sum to 1).
    uncertainty : ndarray of shape (n_samples,), float64
        In ``[0, log K]``.
    """
    check_choice(measure, "measure", ("entropy", "mutual_info"))
    result, _ = _unpack(result_or_clf)
    spec = result_spec(result)
    x = check_x(x, "x", n_features=spec.n_features)
    if measure == "entropy":
        proba = posterior_predictive_proba(result, x)
        return proba, _entropy(proba)
    w, bias, scale = _draw_parameters(result, spec)
    n, k = x.shape[0], spec.n_classes
    total_p = np.zeros((n, k))
    total_h = np.zeros(n)
    chunk = max(1, _CHUNK_ELEMENTS // max(1, n * k))
    for lo in range(0, w.shape[0], chunk):
        hi = min(lo + chunk, w.shape[0])
        eta = draw_logits(w[lo:hi], bias[lo:hi], scale[lo:hi], x, form=spec.form)
        if spec.form == "softmax":
            p = softmax(eta)
        else:
            p1 = expit(eta)
            p = np.stack([1.0 - p1, p1], axis=-1)
        total_p += p.sum(axis=0)
        total_h += _entropy(p).sum(axis=0)
    proba = total_p / w.shape[0]
    mi = np.maximum(_entropy(proba) - total_h / w.shape[0], 0.0)
    return proba, mi


def plot_prediction_uncertainty(
    result_or_clf,
    x,
    *,
    y=None,
    images: bool = True,
    n: int = 8,
    measure: str = "entropy",
    image_shape=None,
    n_hist_bins: int = 20,
    panel_size: float = 1.6,
):
    """The most uncertain rows with their predictive probabilities, and uncertainty by outcome.

    Rows are ranked by :func:`predictive_uncertainty` (largest first, ties in row order).

    Parameters
    ----------
    result_or_clf : arviz.InferenceData, xarray.DataTree or fitted BayesBinClassifier
    x : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,), optional
        True labels; adds the true label to the titles and a bottom panel with histograms of
        the uncertainty of correctly and incorrectly predicted rows.
    images : bool
        Draw each chosen row as an image (``image_shape``) above its probability bars.
    n : int
        Number of rows shown (at most ``n_samples``).
    measure : {"entropy", "mutual_info"}
        See :func:`predictive_uncertainty`.
    image_shape : (int, int), optional
        As in :func:`plot_weight_probabilities`.
    n_hist_bins : int
        Equal-width bins on ``[0, log K]`` for the histograms.
    panel_size : float
        Inches per column.

    Returns
    -------
    matplotlib.figure.Figure
        Axes in order: ``n`` image axes (when ``images``; ``images[0].get_array()`` is the row of
        ``x`` reshaped, titled ``"row i"``), ``n`` bar axes (one bar per class, heights the
        predictive probabilities, x tick labels the classes), then the histogram axes when ``y``
        is given (``containers[0]`` correct rows, ``containers[1]`` incorrect rows).
    """
    check_choice(measure, "measure", ("entropy", "mutual_info"))
    n = check_positive_int(n, "n")
    n_hist_bins = check_positive_int(n_hist_bins, "n_hist_bins")
    result, labels = _unpack(result_or_clf)
    spec = result_spec(result)
    x = check_x(x, "x", n_features=spec.n_features)
    codes = None if y is None else _label_codes(y, labels, x.shape[0])
    shape = _image_shape(image_shape, spec.n_features) if images else None
    proba, unc = predictive_uncertainty(result, x, measure=measure)
    k = proba.shape[1]
    rows = np.argsort(-unc, kind="stable")[: min(n, x.shape[0])]
    ncols = rows.shape[0]
    nrows = (2 if images else 1) + (codes is not None)
    heights = ([1.0] if images else []) + [0.8] + ([1.2] if codes is not None else [])
    fig = plt.figure(figsize=(max(panel_size * ncols, 4.0), 1.9 * sum(heights) + 0.4))
    gs = fig.add_gridspec(nrows, ncols, height_ratios=heights)
    pred = np.argmax(proba, axis=1)
    if images:
        for j, r in enumerate(rows):
            ax = fig.add_subplot(gs[0, j])
            ax.imshow(
                x[r].reshape(shape),
                cmap="gray_r",
                interpolation="nearest",
                aspect="equal" if shape[0] > 1 else "auto",
            )
            title = f"row {r}"
            if codes is not None:
                title += f"\ny={labels[codes[r]]} pred={labels[pred[r]]}"
            ax.set_title(title, fontsize=8)
            _image_axes(ax)
    bar_row = 1 if images else 0
    for j, r in enumerate(rows):
        ax = fig.add_subplot(gs[bar_row, j])
        colours = ["C0"] * k
        if codes is not None:
            colours[codes[r]] = "C2"
        ax.bar(np.arange(k), proba[r], color=colours)
        ax.set_ylim(0.0, 1.0)
        ax.set_xticks(np.arange(k), [str(v) for v in labels], fontsize=6)
        ax.tick_params(axis="y", labelsize=6)
        if j > 0:
            ax.set_yticklabels([])
        ax.set_title(("" if images else f"row {r}\n") + f"{measure}={unc[r]:.2f}", fontsize=7)
    if codes is not None:
        ax = fig.add_subplot(gs[-1, :])
        correct = pred == codes
        top = math.log(k)
        bins = np.linspace(0.0, top, n_hist_bins + 1)
        u = np.clip(unc, 0.0, top)
        ax.hist(
            u[correct], bins=bins, alpha=0.6, color="C2", label=f"correct ({int(correct.sum())})"
        )
        ax.hist(
            u[~correct],
            bins=bins,
            alpha=0.6,
            color="C3",
            label=f"incorrect ({int((~correct).sum())})",
        )
        ax.set_xlabel(f"predictive {measure} (nats)")
        ax.set_ylabel("rows")
        ax.legend(fontsize=7)
    fig.suptitle(f"{ncols} most uncertain rows by {measure}", fontsize=9)
    return fig


# --------------------------------------------------------------------------------------------
# R-hat and ESS maps
# --------------------------------------------------------------------------------------------


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
    post = get_group(result, "posterior")
    da = post["w"].transpose("chain", "draw", *spec.weight_dims).astype(np.float64)
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
