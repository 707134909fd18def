"""Plots of bayesbin results: content checks (axes, image arrays, bar heights, curves)."""

from __future__ import annotations

import json
import math
import warnings

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from scipy.special import expit

import bayesbin
from bayesbin import plots
from bayesbin._compat import az, to_idata

matplotlib.use("Agg")

CHAINS, DRAWS, D = 2, 40, 16
LABELS = ["cat", "dog", "eel"]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _spec(form: str, d: int, k: int, *, bias=True, scale=True, encoding="01") -> dict:
    shape, dims = {
        "softmax": ([d, k], ["feature", "class"]),
        "single": ([d], ["feature"]),
        "two_output": ([2, d], ["output", "feature"]),
    }[form]
    return {
        "family": "softmax" if form == "softmax" else "logistic",
        "form": form,
        "likelihood": "categorical" if form == "softmax" else "bernoulli",
        "encoding": encoding,
        "n_features": d,
        "n_classes": k,
        "weight_shape": shape,
        "weight_dims": dims,
        "bias": bias,
        "bias_sigma": 5.0,
        "scale": scale,
        "scale_sigma": 1.0,
        "relaxed": None,
    }


def _bits_with_frequencies(rng, ones: np.ndarray) -> np.ndarray:
    """Draws (CHAINS, DRAWS, *ones.shape) int8 where bit j is 1 in exactly ones[j] draws."""
    total = CHAINS * DRAWS
    flat = np.zeros((total, ones.size), dtype=np.int8)
    for j, m in enumerate(ones.ravel()):
        flat[rng.permutation(total)[:m], j] = 1
    return flat.reshape(CHAINS, DRAWS, *ones.shape)


def _fake_result(
    form: str = "softmax",
    *,
    d: int = D,
    k: int = 3,
    labels=LABELS,
    ones=None,
    seed: int = 0,
    bias=True,
    scale=True,
):
    """A result with a known count of ones per bit (so P(w=1) = ones / (chains*draws))."""
    rng = np.random.default_rng(seed)
    shape = {"softmax": (d, k), "single": (d,), "two_output": (2, d)}[form]
    if ones is None:
        ones = rng.integers(0, CHAINS * DRAWS + 1, size=shape)
    w = _bits_with_frequencies(rng, np.asarray(ones))
    spec = _spec(form, d, k, bias=bias, scale=scale)
    posterior = {"w": w}
    dims = {"w": spec["weight_dims"]}
    coords = {"feature": np.arange(d)}
    if form == "softmax":
        coords["class"] = np.arange(k)
    if form == "two_output":
        coords["output"] = [0, 1]
    if bias:
        posterior["b"] = rng.normal(
            size=(CHAINS, DRAWS, k) if form == "softmax" else (CHAINS, DRAWS)
        )
        if form == "softmax":
            dims["b"] = ["class"]
    if scale:
        posterior["scale"] = rng.uniform(0.5, 2.0, size=(CHAINS, DRAWS))
    attrs = {"bayesbin_spec": json.dumps(spec), "bayesbin_classes": json.dumps(list(labels))}
    result = to_idata(posterior, dims=dims, coords=coords, attrs=attrs)
    return result, w.astype(np.float64).mean(axis=(0, 1)), posterior


def _hand_draw_probs(posterior, x, form="softmax"):
    """Per-draw class probabilities (chains, draws, n, K), straight from the model formula."""
    w = posterior["w"].astype(np.float64)
    b = posterior.get("b")
    s = posterior.get("scale")
    if form == "softmax":
        eta = np.einsum("nd,cgdk->cgnk", x, w)
        eta = eta * (1.0 if s is None else s[:, :, None, None])
        eta = eta + (0.0 if b is None else b[:, :, None, :])
        e = np.exp(eta - eta.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    z = np.einsum("nd,cgd->cgn", x, w[:, :, 1] - w[:, :, 0] if form == "two_output" else w)
    eta = z * (1.0 if s is None else s[:, :, None]) + (0.0 if b is None else b[:, :, None])
    p1 = expit(eta)
    return np.stack([1 - p1, p1], axis=-1)


def _entropy(p):
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0.0), axis=-1)


@pytest.fixture(scope="module")
def real_fit():
    rng = np.random.default_rng(20)
    x = (rng.random((60, 16)) < 0.4).astype(float)
    y = np.argmax(x[:, :3] + 0.3 * rng.random((60, 3)), axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = bayesbin.fit(
            x,
            y,
            classes=3,
            draws=30,
            tune=10,
            chains=2,
            sampler="pymc-gibbs",
            random_seed=1,
            cores=1,
        )
    return clf, x, y


# --------------------------------------------------------------------------------------------
# weight probabilities
# --------------------------------------------------------------------------------------------


def test_weight_probabilities_softmax_images_equal_posterior_means():
    result, p, _ = _fake_result("softmax")
    fig = plots.plot_weight_probabilities(result)
    panels = [ax for ax in fig.axes if ax.images and ax.get_label() != "<colorbar>"]
    assert len(panels) == 3
    assert len(fig.axes) == 4  # three panels and one shared colourbar
    for k, ax in enumerate(panels):
        img = ax.images[0]
        arr = np.asarray(img.get_array())
        assert arr.shape == (4, 4)
        np.testing.assert_array_equal(arr, p[:, k].reshape(4, 4))
        assert img.get_clim() == (0.0, 1.0)
        assert LABELS[k] in ax.get_title()
    cbars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(cbars) == 1 and "P(w = 1)" in cbars[0].get_ylabel()


def test_weight_probabilities_class_subset_and_given_axes():
    result, p, _ = _fake_result("softmax")
    fig = plots.plot_weight_probabilities(result, classes=["eel", "cat"])
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert [ax.get_title() for ax in panels] == ["class eel", "class cat"]
    np.testing.assert_array_equal(panels[0].images[0].get_array(), p[:, 2].reshape(4, 4))
    np.testing.assert_array_equal(panels[1].images[0].get_array(), p[:, 0].reshape(4, 4))
    fig2, axs = plt.subplots(1, 3)
    out = plots.plot_weight_probabilities(result, axes=axs, image_shape=(2, 8))
    assert out is fig2
    np.testing.assert_array_equal(axs[1].images[0].get_array(), p[:, 1].reshape(2, 8))
    with pytest.raises(ValueError, match="axes"):
        plots.plot_weight_probabilities(result, axes=axs[:2])
    with pytest.raises(ValueError, match="classes"):
        plots.plot_weight_probabilities(result, classes=["fox"])
    with pytest.raises(ValueError, match="image_shape"):
        plots.plot_weight_probabilities(result, image_shape=(3, 5))


def test_weight_probabilities_two_output_shows_both_outputs_and_difference():
    result, p, _ = _fake_result("two_output", k=2, labels=["five", "six"])
    fig = plots.plot_weight_probabilities(result)
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == 3 and len(fig.axes) == 5  # two colourbars
    np.testing.assert_array_equal(panels[0].images[0].get_array(), p[0].reshape(4, 4))
    np.testing.assert_array_equal(panels[1].images[0].get_array(), p[1].reshape(4, 4))
    np.testing.assert_allclose(panels[2].images[0].get_array(), (p[1] - p[0]).reshape(4, 4))
    assert "five" in panels[0].get_title() and "six" in panels[1].get_title()
    assert panels[2].images[0].get_clim() == (-1.0, 1.0)
    with pytest.raises(ValueError, match="softmax"):
        plots.plot_weight_probabilities(result, classes=["six"])


def test_weight_probabilities_single_non_square_is_a_strip():
    result, p, _ = _fake_result("single", d=6, k=2, labels=[0, 1])
    fig = plots.plot_weight_probabilities(result)
    (ax,) = [a for a in fig.axes if a.get_label() != "<colorbar>"]
    np.testing.assert_array_equal(ax.images[0].get_array(), p.reshape(1, 6))
    assert "class 1 vs 0" in ax.get_title()
    fig = plots.plot_weight_probabilities(result, image_shape=(2, 3))
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), p.reshape(2, 3))


def test_weight_probabilities_of_a_real_fit(real_fit):
    clf, _, _ = real_fit
    fig = plots.plot_weight_probabilities(clf)
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    w = clf.idata_.posterior["w"].values.astype(float)  # (chain, draw, feature, class)
    assert len(panels) == 3
    for k, ax in enumerate(panels):
        np.testing.assert_allclose(
            ax.images[0].get_array(),
            w[:, :, :, k].mean(axis=(0, 1)).reshape(4, 4),
            rtol=0,
            atol=1e-12,
        )
        assert ax.get_title() == f"class {clf.classes_[k]}"


def test_bad_result_type():
    with pytest.raises(TypeError, match="InferenceData"):
        plots.plot_weight_probabilities(np.zeros((3, 3)))


# --------------------------------------------------------------------------------------------
# traces and ranks
# --------------------------------------------------------------------------------------------


def _ones_with_uncertain_bits():
    rng = np.random.default_rng(5)
    total = CHAINS * DRAWS
    ones = rng.choice([0, 8, 72, 80], size=(D, 3))  # P in {0, .1, .9, 1}
    # least certain first: |P - 0.5| = 0, 0.025, 0.0375, 0.0625
    ones[7, 1], ones[2, 0], ones[11, 2], ones[0, 0] = 40, 38, 43, 35
    assert total == 80
    return ones


def test_bit_traces_default_picks_least_certain_bits():
    result, _, post = _fake_result("softmax", ones=_ones_with_uncertain_bits())
    axes = plots.plot_bit_traces(result)
    assert axes.shape == (4, 2)
    expected = [(7, 1), (2, 0), (11, 2), (0, 0)]
    for row, (f, k) in enumerate(expected):
        assert axes[row, 1].get_title() == f"w[{f}, {LABELS[k]}]"
        lines = axes[row, 1].get_lines()
        for c in range(CHAINS):
            np.testing.assert_array_equal(lines[c].get_ydata(), post["w"][c, :, f, k])
    axes = plots.plot_bit_traces(result, n=2, kind="rank")
    assert np.shape(axes) == (2,)
    assert [ax.get_title() for ax in np.ravel(axes)] == ["w[7, dog]", "w[2, cat]"]
    for ax in np.ravel(axes):
        # one rank histogram per chain: bars of every chain sum to the draws of that chain
        assert len(ax.patches) > 0


def test_bit_traces_explicit_bits():
    result, _, post = _fake_result("softmax", ones=_ones_with_uncertain_bits())
    axes = plots.plot_bit_traces(result, bits=[(3, 1), 5])  # flat 5 = (1, 2)
    assert axes.shape == (2, 2)
    assert axes[0, 1].get_title() == "w[3, dog]"
    assert axes[1, 1].get_title() == "w[1, eel]"
    np.testing.assert_array_equal(axes[1, 1].get_lines()[1].get_ydata(), post["w"][1, :, 1, 2])
    axes = plots.plot_bit_traces(result, bits=(3, 1))
    assert axes.shape == (1, 2)
    with pytest.raises(ValueError, match="bits"):
        plots.plot_bit_traces(result, bits=[(16, 0)])
    with pytest.raises(ValueError, match="bits"):
        plots.plot_bit_traces(result, bits=[D * 3])
    with pytest.raises(ValueError, match="kind"):
        plots.plot_bit_traces(result, kind="pair")


def test_bit_traces_logistic_single():
    ones = np.full(6, 80)
    ones[4] = 41
    result, _, post = _fake_result("single", d=6, k=2, labels=[0, 1], ones=ones)
    axes = plots.plot_bit_traces(result, n=1)
    assert axes.shape == (1, 2)
    assert axes[0, 1].get_title() == "w[4]"
    np.testing.assert_array_equal(axes[0, 1].get_lines()[0].get_ydata(), post["w"][0, :, 4])


def test_bit_traces_real_fit(real_fit):
    clf, _, _ = real_fit
    p = clf.idata_.posterior["w"].values.mean(axis=(0, 1))
    order = np.argsort(np.abs(p.ravel() - 0.5), kind="stable")[:3]
    axes = plots.plot_bit_traces(clf, n=3)
    for row, flat in enumerate(order):
        f, k = np.unravel_index(flat, p.shape)
        assert axes[row, 1].get_title() == f"w[{f}, {clf.classes_[k]}]"


# --------------------------------------------------------------------------------------------
# reliability
# --------------------------------------------------------------------------------------------

PROBA = np.array(
    [
        [0.90, 0.05, 0.05],  # y a: conf .90 correct, bin 4
        [0.85, 0.10, 0.05],  # y b: conf .85 wrong,   bin 4
        [0.10, 0.70, 0.20],  # y b: conf .70 correct, bin 3
        [0.30, 0.25, 0.45],  # y a: conf .45 wrong,   bin 2
        [0.20, 0.30, 0.50],  # y c: conf .50 correct, bin 2
        [0.65, 0.30, 0.05],  # y a: conf .65 correct, bin 3
        [0.05, 0.05, 0.90],  # y c: conf .90 correct, bin 4
    ]
)
Y_ABC = np.array(["a", "b", "b", "a", "c", "a", "c"])


def test_reliability_bins_and_ece_by_hand():
    stats = plots.reliability_bins(Y_ABC, PROBA, n_bins=5, classes=["a", "b", "c"])
    np.testing.assert_array_equal(stats["count"], [0, 0, 2, 2, 3])
    np.testing.assert_allclose(stats["accuracy"][2:], [0.5, 1.0, 2 / 3])
    np.testing.assert_allclose(stats["confidence"][2:], [0.475, 0.675, 2.65 / 3])
    assert np.all(np.isnan(stats["accuracy"][:2]))
    # ECE = (2 * 0.025 + 2 * 0.325 + 3 * |2/3 - 2.65/3|) / 7 = 1.35 / 7
    assert stats["ece"] == pytest.approx(1.35 / 7, abs=1e-12)


def test_plot_reliability_content():
    ax = plots.plot_reliability(Y_ABC, PROBA, n_bins=5, classes=["a", "b", "c"])
    heights = [r.get_height() for r in ax.containers[0]]
    np.testing.assert_allclose(heights, [0.0, 0.0, 0.5, 1.0, 2 / 3])
    centres = [r.get_x() + r.get_width() / 2 for r in ax.containers[0]]
    np.testing.assert_allclose(centres, [0.1, 0.3, 0.5, 0.7, 0.9])
    assert [t.get_text() for t in ax.texts] == ["2", "2", "3"]
    assert f"ECE = {1.35 / 7:.4f}" in ax.get_title()
    diag = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    np.testing.assert_array_equal(diag[0].get_xydata(), [[0, 0], [1, 1]])


def test_plot_reliability_binary_1d_and_errors():
    fig, ax = plt.subplots()
    out = plots.plot_reliability([0, 1, 0], np.array([0.2, 0.7, 0.9]), n_bins=4, ax=ax)
    assert out is ax
    # confidences .8 (right), .7 (right), .9 (wrong): bins 3, 2, 3
    np.testing.assert_allclose([r.get_height() for r in ax.containers[0]], [0, 0, 1.0, 0.5])
    with pytest.raises(ValueError, match="sum to 1"):
        plots.plot_reliability([0, 1], np.array([[0.5, 0.6], [0.5, 0.5]]))
    with pytest.raises(ValueError, match="y_true"):
        plots.plot_reliability([0, 7], np.array([[0.5, 0.5], [0.5, 0.5]]))
    with pytest.raises(ValueError, match="classes"):
        plots.plot_reliability([0, 1], np.array([[0.5, 0.5], [0.5, 0.5]]), classes=[0, 1, 2])


def test_classifier_reliability_matches_predict_proba(real_fit):
    clf, x, y = real_fit
    ax = plots.plot_classifier_reliability(clf, x, y, n_bins=10)
    proba = clf.predict_proba(x)
    conf = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y
    which = np.minimum((conf * 10).astype(int), 9)
    expected = [correct[which == i].mean() if np.any(which == i) else 0.0 for i in range(10)]
    np.testing.assert_allclose([r.get_height() for r in ax.containers[0]], expected)
    ax2 = plots.plot_classifier_reliability(clf.idata_, x, y, n_bins=10)
    assert ax2.get_title() == ax.get_title()
    with pytest.raises(TypeError, match="classifier"):
        plots.plot_classifier_reliability(object(), x, y)


# --------------------------------------------------------------------------------------------
# accuracy against draws
# --------------------------------------------------------------------------------------------


def _hand_accuracy_curve(post, x, y, steps, form="softmax"):
    probs = _hand_draw_probs(post, x, form)  # (chain, draw, n, K)
    return [np.mean(probs[:, :s].mean(axis=(0, 1)).argmax(axis=1) == y) for s in steps]


def test_accuracy_vs_draws_equals_hand_computation():
    result, _, post = _fake_result("softmax", seed=3)
    rng = np.random.default_rng(4)
    x = rng.random((50, D))
    codes = rng.integers(0, 3, size=50)
    y = np.asarray(LABELS)[codes]
    ax = plots.plot_accuracy_vs_draws(result, x, y)
    line = ax.lines[0]
    steps = [1, 2, 5, 10, 20, 40]
    np.testing.assert_array_equal(line.get_xdata(), steps)
    np.testing.assert_array_equal(line.get_ydata(), _hand_accuracy_curve(post, x, codes, steps))
    assert ax.get_xscale() == "log"
    ax = plots.plot_accuracy_vs_draws(result, x, y, steps=[7, 3, 7])
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [3, 7])
    np.testing.assert_array_equal(
        ax.lines[0].get_ydata(), _hand_accuracy_curve(post, x, codes, [3, 7])
    )
    with pytest.raises(ValueError, match="steps"):
        plots.plot_accuracy_vs_draws(result, x, y, steps=[0, 3])
    with pytest.raises(ValueError, match="steps"):
        plots.plot_accuracy_vs_draws(result, x, y, steps=[41])
    with pytest.raises(ValueError, match="labels outside"):
        plots.plot_accuracy_vs_draws(result, x, codes)


def test_accuracy_vs_draws_two_output():
    result, _, post = _fake_result("two_output", k=2, labels=[0, 1], seed=8)
    rng = np.random.default_rng(9)
    x = rng.random((40, D))
    y = rng.integers(0, 2, size=40)
    ax = plots.plot_accuracy_vs_draws(result, x, y, steps=[1, 4, 40])
    np.testing.assert_array_equal(
        ax.lines[0].get_ydata(), _hand_accuracy_curve(post, x, y, [1, 4, 40], "two_output")
    )


def test_accuracy_vs_draws_real_fit_ends_at_score(real_fit):
    clf, x, y = real_fit
    ax = plots.plot_accuracy_vs_draws(clf, x, y)
    assert ax.lines[0].get_xdata()[-1] == 30
    assert ax.lines[0].get_ydata()[-1] == pytest.approx(clf.score(x, y), abs=1e-12)


# --------------------------------------------------------------------------------------------
# prediction uncertainty
# --------------------------------------------------------------------------------------------


def test_prediction_uncertainty_most_uncertain_rows():
    result, _, post = _fake_result("softmax", seed=11)
    rng = np.random.default_rng(12)
    x = rng.random((30, D))
    codes = rng.integers(0, 3, size=30)
    y = np.asarray(LABELS)[codes]
    probs = _hand_draw_probs(post, x).mean(axis=(0, 1))
    ent = _entropy(probs)
    rows = np.argsort(-ent)[:5]
    fig = plots.plot_prediction_uncertainty(result, x, y=y, n=5)
    assert len(fig.axes) == 5 + 5 + 1
    image_axes, bar_axes, hist_ax = fig.axes[:5], fig.axes[5:10], fig.axes[10]
    for ax, r in zip(image_axes, rows):
        np.testing.assert_array_equal(ax.images[0].get_array(), x[r].reshape(4, 4))
        assert ax.get_title().startswith(f"row {r}\ny={y[r]}")
    for ax, r in zip(bar_axes, rows):
        np.testing.assert_allclose([b.get_height() for b in ax.containers[0]], probs[r], rtol=1e-12)
        assert [t.get_text() for t in ax.get_xticklabels()] == LABELS
    correct = probs.argmax(axis=1) == codes
    heights = [sum(b.get_height() for b in c) for c in hist_ax.containers]
    assert heights == [correct.sum(), (~correct).sum()]
    # the plotted rows are the argmax-entropy rows
    assert ent[rows[0]] == ent.max()


def test_prediction_uncertainty_mutual_info_and_no_images():
    result, _, post = _fake_result("softmax", seed=13)
    x = np.random.default_rng(14).random((25, D))
    per_draw = _hand_draw_probs(post, x)
    mean = per_draw.mean(axis=(0, 1))
    mi = _entropy(mean) - _entropy(per_draw).mean(axis=(0, 1))
    proba, unc = plots.predictive_uncertainty(result, x, measure="mutual_info")
    np.testing.assert_allclose(proba, mean, rtol=1e-10)
    np.testing.assert_allclose(unc, np.maximum(mi, 0), atol=1e-12)
    fig = plots.plot_prediction_uncertainty(result, x, images=False, n=3, measure="mutual_info")
    assert len(fig.axes) == 3
    rows = np.argsort(-mi)[:3]
    for ax, r in zip(fig.axes, rows):
        assert ax.get_title().startswith(f"row {r}\n")
        np.testing.assert_allclose([b.get_height() for b in ax.containers[0]], mean[r], rtol=1e-10)
    with pytest.raises(ValueError, match="measure"):
        plots.plot_prediction_uncertainty(result, x, measure="variance")


def test_prediction_uncertainty_logistic_entropy():
    result, _, post = _fake_result("two_output", k=2, labels=["five", "six"], seed=15)
    x = np.random.default_rng(16).random((20, D))
    proba, unc = plots.predictive_uncertainty(result, x)
    hand = _hand_draw_probs(post, x, "two_output").mean(axis=(0, 1))
    np.testing.assert_allclose(proba, hand, rtol=1e-10)
    np.testing.assert_allclose(unc, _entropy(hand), rtol=1e-10)
    assert np.all(unc <= math.log(2) + 1e-12)


def test_prediction_uncertainty_real_fit(real_fit):
    clf, x, y = real_fit
    fig = plots.plot_prediction_uncertainty(clf, x, y=y, n=4)
    proba = clf.predict_proba(x)
    rows = np.argsort(-_entropy(proba), kind="stable")[:4]
    for ax, r in zip(fig.axes[:4], rows):
        np.testing.assert_array_equal(ax.images[0].get_array(), x[r].reshape(4, 4))


# --------------------------------------------------------------------------------------------
# R-hat and ESS maps
# --------------------------------------------------------------------------------------------


def test_rhat_ess_maps_values_and_mask():
    ones = np.random.default_rng(21).choice([0, 20, 40, 80], size=(D, 3))
    result, _, post = _fake_result("softmax", ones=ones, seed=22)
    fig = plots.plot_rhat_ess_maps(result)
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == 6 and len(fig.axes) == 8
    w = post["w"].astype(float)
    constant = (ones == 0) | (ones == 80)
    assert f"{int(constant.sum())} of {D * 3} bits constant" in fig._suptitle.get_text()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rhat = np.array([[az.rhat(w[:, :, f, k]) for k in range(3)] for f in range(D)])
        ess = np.array([[az.ess(w[:, :, f, k], method="bulk") for k in range(3)] for f in range(D)])
    for k in range(3):
        for row, ref in ((0, rhat), (1, ess)):
            ax = panels[row * 3 + k]
            arr = ax.images[0].get_array()
            assert LABELS[k] in ax.get_title()
            np.testing.assert_array_equal(np.ma.getmaskarray(arr), constant[:, k].reshape(4, 4))
            np.testing.assert_allclose(arr.compressed(), ref[:, k][~constant[:, k]], rtol=1e-10)


def test_rhat_ess_maps_two_output_and_real_fit(real_fit):
    result, _, _ = _fake_result("two_output", k=2, labels=["five", "six"], seed=23)
    fig = plots.plot_rhat_ess_maps(result)
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == 4
    assert "five" in panels[0].get_title() and "six" in panels[3].get_title()
    clf, _, _ = real_fit
    fig = plots.plot_rhat_ess_maps(clf, classes=[1])
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == 2
    w = clf.idata_.posterior["w"].values[:, :, :, 1]
    constant = np.all(w.reshape(-1, D) == w.reshape(-1, D)[:1], axis=0)
    np.testing.assert_array_equal(
        np.ma.getmaskarray(panels[1].images[0].get_array()), constant.reshape(4, 4)
    )
    with pytest.raises(ValueError, match="axes"):
        plots.plot_rhat_ess_maps(clf, axes=np.empty((1, 3), dtype=object))


def test_rhat_ess_maps_rhat_max_caps_the_colour_scale():
    ones = np.random.default_rng(24).choice([0, 20, 40, 80], size=(D, 3))
    result, _, _ = _fake_result("softmax", ones=ones, seed=25)
    default = plots.plot_rhat_ess_maps(result)
    rhat_images = [ax.images[0] for ax in default.axes[:3]]
    top = max(float(np.ma.max(im.get_array())) for im in rhat_images)
    assert rhat_images[0].norm.vmax == pytest.approx(max(1.1, top))
    capped = plots.plot_rhat_ess_maps(result, rhat_max=1.05)
    for ax in capped.axes[:3]:
        assert ax.images[0].norm.vmin == 1.0 and ax.images[0].norm.vmax == 1.05
    for ax in capped.axes[3:6]:  # the ESS row keeps its own scale
        assert ax.images[0].norm.vmax == default.axes[3].images[0].norm.vmax
    with pytest.raises(ValueError, match="rhat_max"):
        plots.plot_rhat_ess_maps(result, rhat_max=0.9)
    with pytest.raises(TypeError, match="rhat_max"):
        plots.plot_rhat_ess_maps(result, rhat_max="1.1")
    plt.close("all")
