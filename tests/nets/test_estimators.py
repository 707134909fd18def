"""BNN and PBNet as scikit-learn classifiers on a tiny synthetic image problem."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from bayesbin import nets
from bayesbin.nets import _base
from bayesbin.nets.export import networks_from_idata, run_network

pytest.importorskip("jax")

@pytest.fixture(scope="module")
def kw(toy):
    return toy


def test_bnn_api(bnn, blocks):
    _, _, xt, yt = blocks
    proba = bnn.predict_proba(xt)
    assert proba.shape == (len(yt), 3)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    np.testing.assert_array_equal(bnn.predict(xt), bnn.classes_[proba.argmax(1)])
    assert bnn.score(xt, yt) > 0.9
    assert bnn.input_shape_ == (8, 8, 1) and bnn.n_features_in_ == 64
    assert bnn.n_epochs_ == 3 and len(bnn.history_["loss"]) == 3 and not bnn.interrupted_
    # flat rows of an image network are reshaped: same predictions
    np.testing.assert_array_equal(bnn.predict_proba(xt.reshape(len(xt), -1)), proba)
    np.testing.assert_array_equal(bnn.predict_proba(xt[..., 0]), proba)  # (n, H, W)
    # the exported network: int8 ±1 weights, and it reproduces the predictions
    net = bnn.binary_network()
    kinds = [lay["kind"] for lay in net["layers"]]
    assert kinds == ["conv2d", "maxpool2d", "batchnorm", "sign", "flatten", "dense", "batchnorm",
                     "sign", "dense", "batchnorm"]
    for lay in net["layers"]:
        if "weights" in lay:
            assert lay["weights"].dtype == np.int8
            assert set(np.unique(lay["weights"])) <= {-1, 1}
    np.testing.assert_array_equal(run_network(net, xt), bnn.decision_function(xt))
    # latent weights are clipped to [-1, 1] and the binary weights are their signs
    for name, w in bnn.latent_weights_.items():
        assert np.abs(w).max() <= 1.0
        lay = next(lay for lay in net["layers"] if lay.get("name") == name and "weights" in lay)
        np.testing.assert_array_equal(lay["weights"], np.where(w >= 0, 1, -1))


def test_pbnet_api(pbnet, blocks):
    _, _, xt, yt = blocks
    for method in ("clt", "map", "ensemble"):
        proba = pbnet.predict_proba(xt, method=method)
        assert proba.shape == (len(yt), 3)
        np.testing.assert_allclose(proba.sum(1), 1.0)
        acc = np.mean(pbnet.predict(xt, method=method) == yt)
        assert acc > 0.8, (method, acc)
    assert pbnet.score(xt, yt) == np.mean(pbnet.predict(xt) == yt)  # default method: ensemble
    for t in pbnet.theta_.values():
        assert np.abs(t).max() <= 1.0
    # MAP network = the signs of theta, reproduced by its export
    net = pbnet.binary_network("map")
    for lay in net["layers"]:
        if "weights" in lay:
            np.testing.assert_array_equal(lay["weights"], np.where(pbnet.theta_[lay["name"]] >= 0,
                                                                   1, -1))
    np.testing.assert_allclose(pbnet.predict_proba(xt, method="map"),
                               _softmax(run_network(net, xt)), rtol=1e-6)
    one = pbnet.binary_network("sample", random_state=1)
    assert one["layers"][0]["weights"].shape == (6, 1, 3, 3)
    # the ensemble is cached: the same networks on every call
    np.testing.assert_array_equal(pbnet.predict_proba(xt), pbnet.predict_proba(xt))
    with pytest.raises(ValueError, match="method must be one of"):
        pbnet.predict_proba(xt, method="mean")
    with pytest.raises(ValueError, match="n_networks must be >= 1"):
        pbnet.predict_proba(xt, n_networks=0)
    with pytest.raises(TypeError, match="n_networks must be an integer"):
        pbnet.predict_proba(xt, n_networks=2.5)
    with pytest.raises(ValueError, match="rule must be one of"):
        pbnet.binary_network("mode")


def _softmax(z):
    z = z - z.max(1, keepdims=True)
    e = np.exp(z.astype(np.float64))
    return e / e.sum(1, keepdims=True)


def test_sample_networks_idata(pbnet, blocks, tmp_path):
    from bayesbin._compat import from_netcdf, get_group, to_netcdf

    _, _, xt, _ = blocks
    idata = pbnet.sample_networks(5, random_state=11)
    post = get_group(idata, "posterior")
    assert post["conv1"].dims == ("chain", "draw", "conv1_out", "conv1_in", "kh", "kw")
    assert post["dense1"].dims == ("chain", "draw", "dense1_out", "dense1_in")
    assert post["conv1"].dtype == np.int8 and post.sizes["chain"] == 1
    assert post.sizes["draw"] == 5
    assert set(np.unique(post["dense2"].values)) <= {-1, 1}
    assert post["conv1_bn_mean"].dims == ("chain", "draw", "conv1_out")
    const = get_group(idata, "constant_data")
    np.testing.assert_allclose(const["dense1_p"].values, (1 + pbnet.theta_["dense1"]) / 2)
    note = post.attrs["inference"]
    assert "independent draws" in note.lower() and "no prior" in note and "no MCMC" in note
    # rebuilt networks (also after a netCDF round trip, without the estimator) predict the same
    # as the estimator's ensemble with the same random_state
    path = tmp_path / "nets.nc"
    to_netcdf(idata, path)
    for result in (idata, from_netcdf(path)):
        rebuilt = networks_from_idata(result)
        assert len(rebuilt) == 5
        proba = np.mean([_softmax(run_network(net, xt)) for net in rebuilt], axis=0)
        np.testing.assert_allclose(
            proba, pbnet.predict_proba(xt, method="ensemble", n_networks=5, random_state=11),
            rtol=1e-6, atol=1e-9)
    # batch-norm statistics are re-estimated per draw (they differ between draws)
    assert not np.allclose(post["dense1_bn_mean"].values[0, 0], post["dense1_bn_mean"].values[0, 1])
    with pytest.raises(ValueError, match="not written by PBNet.sample_networks"):
        networks_from_idata(_plain_idata())
    with pytest.raises(TypeError, match="InferenceData"):
        networks_from_idata({"posterior": None})


def test_weight_probability_images(pbnet):
    idata = pbnet.sample_networks(2, random_state=0)
    imgs, titles = nets.weight_probability_images(idata)
    assert imgs.shape == (6, 3, 3) and titles[0] == "conv1[0]"
    np.testing.assert_allclose(imgs, (1 + pbnet.theta_["conv1"][:, 0]) / 2)
    imgs, titles = nets.weight_probability_images(idata, "dense2")
    assert imgs.shape == (3, 1, 12) and titles == ["0", "1", "2"]
    with pytest.raises(ValueError, match="layer must be one of"):
        nets.weight_probability_images(idata, "dense9")


def test_summary_and_plots_on_sampled_networks(pbnet):
    """bayesbin.summary gives P(w = +1) for ±1 weights; the weight-probability plot draws them."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import bayesbin
    import bayesbin.plots as bbp

    idata = pbnet.sample_networks(6, random_state=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ArviZ: one chain is too few for R-hat (the point)
        table = bayesbin.summary(idata, var_names=["dense2"])
    draws = idata.posterior["dense2"].values.reshape(6, -1)
    np.testing.assert_allclose(table["p_one"].to_numpy(), (draws.mean(0) + 1) / 2)
    assert table["p_one"].between(0, 1).all()
    fig = bbp.plot_weight_probabilities(idata)
    shown = [ax.images[0].get_array() for ax in fig.axes if ax.images]
    assert len(shown) == 6  # one 3x3 image per conv1 filter
    np.testing.assert_allclose(np.asarray(shown[0]), (1 + pbnet.theta_["conv1"][0, 0]) / 2,
                               rtol=1e-6)
    plt.close(fig)
    fig = bbp.plot_weight_probabilities(idata, layer="dense2", max_panels=2)
    assert sum(bool(ax.images) for ax in fig.axes) == 2
    plt.close(fig)
    with pytest.raises(ValueError, match="probabilities in"):
        bbp.plot_probability_images(np.full((2, 3, 3), 1.5))


def _plain_idata():
    from bayesbin._compat import to_idata

    return to_idata({"w": np.zeros((1, 3, 2), np.int8)})


def test_sampled_weights_follow_theta(pbnet, blocks):
    from scipy import stats

    idata = pbnet.sample_networks(100, random_state=2)
    draws = idata.posterior["conv1"].values[0].astype(float)  # (100, 6, 1, 3, 3)
    theta = pbnet.theta_["conv1"]
    se = np.sqrt(np.maximum(1 - theta**2, 1e-12) / draws.shape[0])
    z = np.abs(draws.mean(0) - theta) / se
    crit = stats.norm.ppf(1 - 1e-3 / (2 * theta.size))
    assert z.max() < crit


def test_same_random_state_same_weights(bnn, pbnet, blocks, kw):
    x, y, _, _ = blocks
    again = nets.BNN(kw["arch"], **kw["bnn"]).fit(x, y)
    for k in bnn.latent_weights_:
        np.testing.assert_array_equal(again.latent_weights_[k], bnn.latent_weights_[k])
    pb2 = nets.PBNet(kw["arch"], **kw["pbnet"]).fit(x, y)
    for k in pbnet.theta_:
        np.testing.assert_array_equal(pb2.theta_[k], pbnet.theta_[k])
    other = nets.BNN(kw["arch"], **{**kw["bnn"], "random_state": 4}).fit(x, y)
    assert not np.array_equal(other.latent_weights_["dense1"], bnn.latent_weights_["dense1"])


def test_string_labels_pandas_and_pickle(blocks, tmp_path, kw):
    x, y, xt, yt = blocks
    names = np.array(["cat", "dog", "eel"])
    frame = pd.DataFrame(x.reshape(len(x), -1), columns=[f"p{i}" for i in range(64)])
    clf = nets.BNN(kw["arch"], **kw["bnn"]).fit(frame, pd.Series(names[y]))
    np.testing.assert_array_equal(clf.classes_, names)
    assert set(clf.predict(xt)) <= set(names)
    assert clf.score(xt, names[yt]) > 0.9
    assert list(clf.feature_names_in_[:2]) == ["p0", "p1"]
    with pytest.raises(ValueError, match="not among the classes seen in fit"):
        clf.score(xt, np.array(["cat", "cow"] * 150))
    clone = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(clone.predict_proba(xt), clf.predict_proba(xt))


def test_interrupt_keeps_last_epoch_and_checkpoint_resumes(blocks, tmp_path, monkeypatch, kw):
    x, y, _, _ = blocks
    arch = kw["arch"]
    kw = {**kw["bnn"], "progressbar": True}
    full = nets.BNN(arch, **kw).fit(x, y)
    ckpt = tmp_path / "bnn.ckpt"
    real_update = _base._Progress.update

    def interrupt(self, epoch, *args, **kwargs):
        if epoch == 1:  # Ctrl-C during the second epoch, before it is completed
            raise KeyboardInterrupt
        return real_update(self, epoch, *args, **kwargs)

    monkeypatch.setattr(_base._Progress, "update", interrupt)
    with pytest.warns(nets.TrainingInterruptedWarning, match="last completed epoch"):
        cut = nets.BNN(arch, **kw, checkpoint=str(ckpt)).fit(x, y)
    assert cut.interrupted_ and cut.n_epochs_ == 1 and len(cut.history_["loss"]) == 1
    with open(ckpt, "rb") as fh:
        saved = pickle.load(fh)
    assert saved["book"]["epoch"] == 1
    for k, w in cut.latent_weights_.items():
        np.testing.assert_array_equal(w, saved["state"][0][k]["w"])
    monkeypatch.setattr(_base._Progress, "update", real_update)
    resumed = nets.BNN(arch, **kw, checkpoint=str(ckpt)).fit(x, y)
    assert resumed.n_epochs_ == 3 and not resumed.interrupted_
    for k in full.latent_weights_:  # bit for bit the uninterrupted run
        np.testing.assert_array_equal(resumed.latent_weights_[k], full.latent_weights_[k])
    np.testing.assert_array_equal(resumed.history_["loss"], full.history_["loss"])
    with pytest.raises(ValueError, match="written for other data or options"):
        nets.BNN(arch, **kw, checkpoint=str(ckpt)).fit(x[:500], y[:500])
    # an interrupt before any epoch completed is not swallowed
    monkeypatch.setattr(_base._Progress, "update",
                        lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        nets.BNN(arch, **kw).fit(x, y)


def test_progressbar_and_early_stopping(blocks, capsys, kw):
    x, y, _, _ = blocks
    clf = nets.BNN(kw["arch"], **{**kw["bnn"], "epochs": 12, "early_stopping": True,
                                  "patience": 1, "progressbar": True}).fit(x, y)
    err = capsys.readouterr().err
    assert "epoch 1/12" in err and "loss" in err and "val_acc" in err
    assert clf.stopped_early_ and clf.n_epochs_ < 12
    assert clf.best_epoch_ == int(np.argmax(clf.history_["val_accuracy"])) + 1
    nets.BNN(kw["arch"], **{**kw["bnn"], "epochs": 1, "lr_schedule": "constant"}).fit(x, y)
    assert capsys.readouterr().err == ""  # progressbar=False is silent


def test_sklearn_conventions(bnn, kw):
    from sklearn.base import clone

    params = bnn.get_params()
    assert params["architecture"] == kw["arch"] and params["epochs"] == kw["bnn"]["epochs"]
    fresh = clone(bnn)
    assert fresh.get_params() == params and not hasattr(fresh, "network_")
    assert not hasattr(nets.PBNet(kw["arch"]), "classes_")  # __init__ only stores arguments
    fresh.set_params(epochs=2)
    assert fresh.epochs == 2


def test_binarized_output_trap(blocks, kw):
    x, y, xt, _ = blocks
    with pytest.raises(ValueError, match="9.87% trap"):
        nets.BNN(kw["arch"], output="sign").fit(x, y)
    with pytest.raises(ValueError, match="allow_binary_output=True"):
        nets.PBNet(kw["arch"], output="sign").fit(x, y)
    clf = nets.BNN(kw["arch"], output="sign", allow_binary_output=True, **kw["bnn"]).fit(x, y)
    assert clf.binary_network()["layers"][-1]["kind"] == "sign"
    assert set(np.unique(clf.decision_function(xt))) <= {-1.0, 1.0}


@pytest.mark.parametrize("kind", ["bnn", "pbnet"])
def test_warm_start_continues_from_the_fitted_state(blocks, kw, kind):
    x, y, xt, yt = blocks
    cls = nets.BNN if kind == "bnn" else nets.PBNet
    opts = {**kw[kind], "epochs": 1}
    first = cls(kw["arch"], **opts, warm_start=True).fit(x, y)
    start = pickle.loads(pickle.dumps(first.train_state_))
    # a step size of 1e-12 leaves the weights where the first fit ended: the warm fit starts
    # there, not from a fresh initialisation
    still = pickle.loads(pickle.dumps(first)).set_params(lr=1e-12, lr_schedule="constant")
    still.fit(x, y)
    for name, p in start["params"].items():
        np.testing.assert_allclose(still.train_state_["params"][name]["w"], p["w"], atol=1e-8)
    # a real second round goes on learning: its epoch has a lower loss than a fresh first one
    first.fit(x, y)
    fresh = cls(kw["arch"], **opts).fit(x, y)
    assert first.history_["loss"][0] < fresh.history_["loss"][0]
    assert len(first.history_["loss"]) == 1  # history_ is this call's
    if kind == "bnn":  # (the toy PBNet needs about 8 epochs)
        assert first.score(xt, yt) > 0.8
    # deterministic: the same two calls give the same weights bit for bit
    again = cls(kw["arch"], **opts, warm_start=True).fit(x, y).fit(x, y)
    for name, p in first.train_state_["params"].items():
        np.testing.assert_array_equal(again.train_state_["params"][name]["w"], p["w"])
    # warm_start=False (the default) starts afresh: the same weights as a new estimator
    refit = pickle.loads(pickle.dumps(first)).set_params(warm_start=False).fit(x, y)
    for name, p in fresh.train_state_["params"].items():
        np.testing.assert_array_equal(refit.train_state_["params"][name]["w"], p["w"])


def test_warm_start_refuses_another_network_and_keeps_the_fitted_one(bnn, blocks, kw):
    x, y, xt, _ = blocks
    clf = pickle.loads(pickle.dumps(bnn)).set_params(warm_start=True)
    before = clf.predict_proba(xt)
    with pytest.raises(ValueError, match="warm_start=True continues from the fitted network"):
        clf.set_params(architecture="6C3-MP2-16FC-SM3").fit(x, y)
    with pytest.raises(ValueError, match="weight shapes"):
        clf.set_params(architecture=kw["arch"]).fit(x[:, :6, :6], y)
    labels = np.array(["a", "b", "c"])
    with pytest.raises(ValueError, match="fitted on classes"):
        clf.fit(x, labels[y])
    with pytest.raises(ValueError, match="has 3 outputs but y has 2 classes"):
        clf.fit(x[y < 2], y[y < 2])
    assert clf.input_shape_ == (8, 8, 1) and list(clf.classes_) == [0, 1, 2]
    np.testing.assert_array_equal(clf.predict_proba(xt), before)  # still the fitted network
    with pytest.raises(TypeError, match="warm_start must be True or False"):
        clf.set_params(warm_start="yes").fit(x, y)
    # an estimator pickled before warm_start existed loads with warm_start=False
    state = bnn.__getstate__()
    state.pop("warm_start")
    old = nets.BNN.__new__(nets.BNN)
    old.__setstate__(state)
    assert old.get_params()["warm_start"] is False


def test_weight_temperature_sharpens_a_warm_started_pbnet(pbnet, blocks):
    x, y, _, _ = blocks
    base = pickle.loads(pickle.dumps(pbnet))
    latent = {k: v["w"] for k, v in base.train_state_["params"].items()}
    for name, w in latent.items():  # theta = tanh(latent / weight_temperature), here 1
        np.testing.assert_array_equal(base.theta_[name], np.tanh(w))
    sharp = base.set_params(warm_start=True, weight_temperature=0.5, lr=1e-12,
                            lr_schedule="constant", epochs=1).fit(x, y)
    for name, w in latent.items():  # the same signs, pushed towards +-1
        np.testing.assert_allclose(sharp.theta_[name], np.tanh(2 * w), atol=1e-6)
        assert np.all(np.abs(sharp.theta_[name]) >= np.abs(pbnet.theta_[name]) - 1e-6)
    with pytest.raises(ValueError, match="weight_temperature must lie in"):
        nets.PBNet("6C3-MP2-12FC-SM3", weight_temperature=0.0).fit(x, y)


def _shift_reference(img, dy, dx):
    out = np.zeros_like(img)
    h, w = img.shape[:2]
    for r in range(h):
        for c in range(w):
            if 0 <= r - dy < h and 0 <= c - dx < w:
                out[r, c] = img[r - dy, c - dx]
    return out


def test_shift_images_matches_a_pixel_by_pixel_reference():
    rng = np.random.default_rng(0)
    for shape, s in (((5, 7, 6, 2), 2), ((3, 4, 4, 1), 3), ((2, 9, 5, 3), 1)):
        x = rng.random(shape).astype(np.float32)
        d = np.random.default_rng(1).integers(-s, s + 1, size=(shape[0], 2))
        out = _base.shift_images(x.copy(), s, np.random.default_rng(1))
        for i in range(shape[0]):
            np.testing.assert_array_equal(out[i], _shift_reference(x[i], *d[i]))


def test_augment_shift_trains_on_shifted_images(blocks, kw, monkeypatch):
    x, y, _, _ = blocks
    opts = {**kw["bnn"], "epochs": 1, "validation_fraction": 0.0}
    seen = []
    step = _base.load_backend().Trainer.step

    def spy(self, state, xb, yb, mask, step_idx):
        seen.append(np.array(xb[mask > 0]))
        return step(self, state, xb, yb, mask, step_idx)

    monkeypatch.setattr(_base.load_backend().Trainer, "step", spy)
    a = nets.BNN(kw["arch"], augment_shift=2, **opts).fit(x, y)
    batches, seen[:] = list(seen), []
    b = nets.BNN(kw["arch"], augment_shift=2, **opts).fit(x, y)
    for k in a.latent_weights_:  # deterministic for a given random_state
        np.testing.assert_array_equal(a.latent_weights_[k], b.latent_weights_[k])
    plain = nets.BNN(kw["arch"], **opts).fit(x, y)
    assert not np.array_equal(plain.latent_weights_["conv1"], a.latent_weights_["conv1"])
    # every training row fed to the step is one of the training images shifted by at most
    # 2 pixels each way, and most are really moved
    shifted = {(dy, dx): np.stack([_shift_reference(im, dy, dx) for im in x])
               for dy in range(-2, 3) for dx in range(-2, 3)}
    rows = np.concatenate(batches)
    assert len(rows) == len(x)
    moved = 0
    for row in rows:
        hits = [d for d, imgs in shifted.items() if np.any(np.all(imgs == row, axis=(1, 2, 3)))]
        assert hits, "a training row is not a shifted training image"
        moved += (0, 0) not in hits
    assert moved > 0.7 * len(rows)


@pytest.mark.parametrize("bad, err, match", [
    (-1, ValueError, "augment_shift must be >= 0"),
    (1.5, TypeError, "augment_shift must be an integer"),
    (True, TypeError, "augment_shift must be an integer"),
    (8, ValueError, "smaller than the image's height and width"),
])
def test_augment_shift_refusals(blocks, kw, bad, err, match):
    x, y, _, _ = blocks
    with pytest.raises(err, match=match):
        nets.BNN(kw["arch"], augment_shift=bad, **kw["bnn"]).fit(x, y)


def test_augment_shift_refused_for_flat_rows(blocks):
    x, y, _, _ = blocks
    with pytest.raises(ValueError, match="augment_shift=1 shifts images, but this network"):
        nets.PBNet("64-8-3", augment_shift=1, epochs=1, progressbar=False).fit(
            x.reshape(len(x), -1), y)
