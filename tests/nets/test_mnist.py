"""One epoch on a 2,000-row MNIST subset beats chance by a wide margin; same seed, same weights.

Needs the MNIST files (found by :func:`bayesbin.load_mnist`, never downloaded): the
``needs_data`` mark skips the tests with a reason when they are missing, and fails them instead
when ``BAYESBIN_REQUIRE_DATA=1``.
"""

from __future__ import annotations

import numpy as np
import pytest

from bayesbin import nets
from bayesbin.bits import reference_forward

pytest.importorskip("jax")
pytestmark = pytest.mark.needs_data("mnist")


@pytest.fixture(scope="module")
def subset(mnist_train):
    x, y = mnist_train
    idx = np.random.default_rng(2000).permutation(len(y))
    return x[idx[:2000]], y[idx[:2000]], x[idx[2000:3000]], y[idx[2000:3000]]


def _packed_is_exact(packed, networks, xt, float_labels):
    """Packed logits == float64 reference on real MNIST rows; labels as the float32 forward."""
    assert packed.input_path(xt) == "levels255"  # load_mnist's float32 pixels: exact path
    logits = packed.member_logits(xt)
    for m, net in enumerate(networks):
        np.testing.assert_array_equal(logits[m], reference_forward(net, xt))
    assert np.mean(packed.predict(xt) == float_labels) >= 0.995


def test_bnn_mlp_one_epoch(subset):
    x, y, xt, yt = subset
    kw = dict(epochs=1, batch_size=100, lr=1e-2, random_state=0, progressbar=False,
              validation_fraction=0.1, early_stopping=False, bn_rows=1000)
    clf = nets.BNN("784-256-10", **kw).fit(x, y)
    acc = clf.score(xt, yt)
    assert acc > 0.6, acc  # chance is about 0.1
    again = nets.BNN("784-256-10", **kw).fit(x, y)
    for k in clf.latent_weights_:
        np.testing.assert_array_equal(again.latent_weights_[k], clf.latent_weights_[k])
    np.testing.assert_array_equal(again.predict_proba(xt), clf.predict_proba(xt))
    _packed_is_exact(clf.to_bits(), [clf.binary_network()], xt, clf.predict(xt))


def test_pbnet_one_epoch(subset):
    x, y, xt, yt = subset
    kw = dict(epochs=1, batch_size=25, lr=2e-2, random_state=0, progressbar=False,
              validation_fraction=0.1, early_stopping=False, bn_rows=1000, n_networks=4)
    clf = nets.PBNet("784-256-10", **kw).fit(x, y)
    accs = {m: float(np.mean(clf.predict(xt, method=m) == yt)) for m in ("clt", "map", "ensemble")}
    assert min(accs.values()) > 0.6, accs  # chance is about 0.1
    again = nets.PBNet("784-256-10", **kw).fit(x, y)
    for k in clf.theta_:
        np.testing.assert_array_equal(again.theta_[k], clf.theta_[k])
    ens = clf.to_bits("draws", n_networks=4)
    _packed_is_exact(ens, clf._ensemble(4, None), xt, clf.predict(xt, method="ensemble"))


def test_bnn_cnn_exports_exactly(subset):
    """A small CNN (conv, pool after sign, dense) trained on MNIST, packed bit-exactly."""
    x, y, xt, yt = subset
    clf = nets.BNN("8C3-MP2-16C3-MP2-32FC-SM10", epochs=1, batch_size=100, lr=1e-2,
                   random_state=0, progressbar=False, early_stopping=False,
                   validation_fraction=0.1, bn_rows=1000).fit(x[:1000], y[:1000])
    assert clf.score(xt, yt) > 0.3  # chance is about 0.1
    _packed_is_exact(clf.to_bits(), [clf.binary_network()], xt, clf.predict(xt))

