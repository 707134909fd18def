"""Helpers shared by the plotting modules: argument checks, panel layout, image axes."""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from bayesbin._compat import is_result
from bayesbin._validation import check_positive_int, label_vector
from bayesbin.linear.spec import ModelSpec
from bayesbin.posterior import (
    result_classes,
)

__all__ = []  # private helpers of bayesbin.plots


def _unpack(result_or_clf) -> tuple:
    """Return ``(result, class labels)`` of a sampling result or a fitted classifier."""
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
    """Validate (rows, cols); default a square when ``n_features`` is one, else (1, D)."""
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
    arr = label_vector(y, name, n_samples=n_samples, rows="there are")
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
    """Return the per-feature vector (D,) of one panel from an array of ``weight_shape``."""
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
