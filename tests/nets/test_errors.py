"""Bad input gets a clear ValueError/TypeError that names the argument."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse
from sklearn.exceptions import NotFittedError

from bayesbin import nets

pytest.importorskip("jax")

ARCH = "4C3-MP2-SM3"


@pytest.fixture(scope="module")
def data(blocks):
    x, y, xt, _ = blocks
    return x[:200], y[:200], xt


BAD_PARAMS = [
    (nets.BNN, {"epochs": 0}, ValueError, "epochs must be >= 1"),
    (nets.BNN, {"epochs": 1.5}, TypeError, "epochs must be an integer"),
    (nets.BNN, {"batch_size": 0}, ValueError, "batch_size must be >= 1"),
    (nets.BNN, {"lr": 0.0}, ValueError, r"lr must lie in \(0.0, inf\)"),
    (nets.BNN, {"lr": float("nan")}, ValueError, "lr must lie in"),
    (nets.BNN, {"lr": "fast"}, TypeError, "lr must be a real number"),
    (nets.BNN, {"lr_schedule": "step"}, ValueError, "lr_schedule must be one of"),
    (nets.BNN, {"final_lr_ratio": 0.0}, ValueError, "final_lr_ratio must lie in"),
    (nets.BNN, {"validation_fraction": 1.0}, ValueError, "validation_fraction must lie in"),
    (nets.BNN, {"validation_fraction": 0.0}, ValueError, "early_stopping=True needs"),
    (nets.BNN, {"patience": 0}, ValueError, "patience must be >= 1"),
    (nets.BNN, {"bn_rows": 0}, ValueError, "bn_rows must be >= 1"),
    (nets.BNN, {"init_scale": -1.0}, ValueError, "init_scale must lie in"),
    (nets.BNN, {"output": "bits"}, ValueError, "output must be one of"),
    (nets.BNN, {"output": "sign"}, ValueError, "9.87% trap"),
    (nets.BNN, {"allow_binary_output": "yes"}, TypeError, "allow_binary_output must be True"),
    (nets.BNN, {"early_stopping": 1}, TypeError, "early_stopping must be True or False"),
    (nets.BNN, {"progressbar": None}, TypeError, "progressbar must be True or False"),
    (nets.BNN, {"kernel_quantizer": "sgn"}, ValueError, "kernel_quantizer must be one of"),
    (nets.BNN, {"activation_quantizer": 1}, TypeError, "activation_quantizer must be"),
    (nets.BNN, {"checkpoint": 12}, TypeError, "checkpoint must be a path"),
    (nets.BNN, {"random_state": "a"}, TypeError, "random_state must be"),
    (nets.BNN, {"random_state": -1}, ValueError, "random_state must be >= 0"),
    (nets.BNN, {"input_threshold": float("nan")}, ValueError, "input_threshold must lie in"),
    (nets.BNN, {"input_threshold": float("inf")}, ValueError, "input_threshold must lie in"),
    (nets.BNN, {"input_threshold": True}, TypeError, "input_threshold must be a real number"),
    (nets.PBNet, {"input_threshold": "0.5"}, TypeError, "input_threshold must be a real number"),
    (nets.PBNet, {"pool": "avg"}, ValueError, "pool must be one of"),
    (nets.PBNet, {"activations": "relu"}, ValueError, "activations must be one of"),
    (nets.PBNet, {"temperature": 0.0}, ValueError, "temperature must lie in"),
    (nets.PBNet, {"method": "mean"}, ValueError, "method must be one of"),
    (nets.PBNet, {"n_networks": 0}, ValueError, "n_networks must be >= 1"),
    (nets.PBNet, {"output": "sign"}, ValueError, "allow_binary_output=True"),
]


@pytest.mark.parametrize("cls, params, exc, match", BAD_PARAMS)
def test_bad_hyperparameters(data, cls, params, exc, match):
    x, y, _ = data
    with pytest.raises(exc, match=match):
        cls(ARCH, **{"progressbar": False, **params}).fit(x, y)


def test_bad_architecture(data):
    x, y, _ = data
    with pytest.raises(ValueError, match="architecture '4C3-MP2'.* the last token must be"):
        nets.BNN("4C3-MP2").fit(x, y)
    with pytest.raises(TypeError, match="architecture must be a string"):
        nets.PBNet(["4C3", "SM3"]).fit(x, y)
    with pytest.raises(ValueError, match="has 10 outputs but y has 3 classes"):
        nets.BNN("4C3-MP2-SM10").fit(x, y)
    with pytest.raises(ValueError, match=r"declares input shape \(100,\)"):
        nets.BNN("100-10-3").fit(x, y)


def test_bad_x(data):
    x, y, _ = data
    est = nets.BNN(ARCH, progressbar=False)
    bad = x.copy()
    bad[3, 2, 2, 0] = np.nan
    with pytest.raises(ValueError, match=r"x contains 1 NaN or infinite"):
        est.fit(bad, y)
    bad[3, 2, 2, 0] = np.inf
    with pytest.raises(ValueError, match=r"x contains 1 NaN or infinite"):
        est.fit(bad, y)
    with pytest.raises(ValueError, match=r"x must have shape \(n, D\)"):
        est.fit(x.ravel(), y)
    with pytest.raises(ValueError, match=r"x must have shape"):
        est.fit(x[..., None], y)
    with pytest.raises(TypeError, match="x must be numeric"):
        est.fit(np.full((200, 64), "a"), y)
    with pytest.raises(TypeError, match="x is a scipy sparse matrix"):
        est.fit(scipy.sparse.csr_matrix(x.reshape(200, -1)), y)
    with pytest.raises(ValueError, match="x is empty"):
        est.fit(x[:0], y[:0])
    with pytest.raises(ValueError, match="x must be real-valued"):
        est.fit(x.reshape(200, -1) + 1j, y)
    # an image net given flat rows of a length that fits no image
    with pytest.raises(ValueError, match="x has 63 values per row, which is not a square image"):
        est.fit(x.reshape(200, -1)[:, :63], y)
    with pytest.raises(ValueError, match=r"x has 64 values per row but the network expects "
                                         r"images of shape \(4, 4, 1\)"):
        nets.BNN(ARCH, input_shape=(4, 4)).fit(x.reshape(200, -1), y)


def test_bad_y(data):
    x, y, _ = data
    est = nets.BNN(ARCH, progressbar=False)
    with pytest.raises(ValueError, match="y has 199 labels but x has 200 rows"):
        est.fit(x, y[:199])
    with pytest.raises(ValueError, match="y must be 1-D"):
        est.fit(x, np.c_[y, y])
    with pytest.raises(ValueError, match="non-integer float labels"):
        est.fit(x, y + 0.5)
    with pytest.raises(ValueError, match="y is required"):
        est.fit(x, None)
    with pytest.raises(ValueError, match="y has labels outside classes"):
        nets.BNN(ARCH, classes=[0, 1, 5]).fit(x, y)
    with pytest.raises(ValueError, match="at least 2 classes"):
        est.fit(x, np.zeros(200, int))


def test_bad_prediction_input(pbnet, data):
    fitted = pbnet
    _, y, xt = data
    with pytest.raises(ValueError, match=r"x has per-row shape \(50,\) but the network expects "
                                         r"images of shape \(8, 8, 1\)"):
        fitted.predict(np.zeros((3, 50)))
    with pytest.raises(ValueError, match="x contains"):
        fitted.predict_proba(np.full((2, 64), np.nan))
    with pytest.raises(ValueError, match="y has label 7, which is not among the classes"):
        fitted.score(xt[:3], [0, 1, 7])
    with pytest.raises(ValueError, match="n must be >= 1"):
        fitted.sample_networks(0)
    with pytest.raises(TypeError, match="n must be an integer"):
        fitted.sample_networks(2.0)
    with pytest.raises(TypeError, match="random_state must be"):
        fitted.sample_networks(2, random_state="x")
    with pytest.raises(NotFittedError):
        nets.PBNet(ARCH).predict(xt)
    with pytest.raises(NotFittedError):
        nets.BNN(ARCH).binary_network()
