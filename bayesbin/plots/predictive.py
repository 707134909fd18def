"""Plots of the posterior predictive: calibration, accuracy against draws, uncertain rows."""

from __future__ import annotations

import math
from typing import Literal

import matplotlib.pyplot as plt
import numpy as np

from bayesbin._compat import get_group, is_result
from bayesbin._validation import check_choice, check_positive_int, check_x
from bayesbin.linear.maths import class_proba, iter_draw_logits
from bayesbin.plots._common import (
    _check_proba,
    _image_axes,
    _image_shape,
    _label_codes,
    _unpack,
)
from bayesbin.posterior import (
    draw_parameters,
    posterior_predictive_proba,
    result_classes,
    result_spec,
)

__all__ = [
    "reliability_bins",
    "plot_reliability",
    "plot_classifier_reliability",
    "plot_accuracy_vs_draws",
    "predictive_uncertainty",
    "plot_prediction_uncertainty",
]


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


def _entropy(p: np.ndarray) -> np.ndarray:
    """Entropy (nats) over the last axis, ``0 log 0 = 0``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return -terms.sum(axis=-1)


def predictive_uncertainty(
    result_or_clf, x, *, measure: Literal["entropy", "mutual_info"] = "entropy"
):
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
    w, bias, scale = draw_parameters(result, spec=spec)
    n, k = x.shape[0], spec.n_classes
    total_p = np.zeros((n, k))
    total_h = np.zeros(n)
    for eta in iter_draw_logits(w, bias, scale, x, form=spec.form):
        p = class_proba(eta, form=spec.form)
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
    measure: Literal["entropy", "mutual_info"] = "entropy",
    image_shape=None,
    n_hist_bins: int = 20,
    panel_size: float = 1.6,
):
    """Plot the most uncertain rows with their predictive probabilities and uncertainty by outcome.

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
