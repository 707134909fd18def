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

from bayesbin.plots.predictive import (
    plot_accuracy_vs_draws,
    plot_classifier_reliability,
    plot_prediction_uncertainty,
    plot_reliability,
    predictive_uncertainty,
    reliability_bins,
)
from bayesbin.plots.weights import (
    plot_bit_traces,
    plot_probability_images,
    plot_rhat_ess_maps,
    plot_weight_probabilities,
)

__all__ = [
    "plot_accuracy_vs_draws",
    "plot_bit_traces",
    "plot_classifier_reliability",
    "plot_prediction_uncertainty",
    "plot_probability_images",
    "plot_reliability",
    "plot_rhat_ess_maps",
    "plot_weight_probabilities",
    "predictive_uncertainty",
    "reliability_bins",
]
