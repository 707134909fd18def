"""Trained networks as packed bits (P8): the packed logits equal the float64 reference exactly.

``BNN.to_bits``, ``PBNet.to_bits(rule="map" | "draws")`` and ``bayesbin.to_bits`` on a
``PBNet.sample_networks`` result, on the toy fits of conftest.py (8x8 images, a small CNN).
Inputs are pixels ``k / 255`` as float32 (what ``bayesbin.load_mnist`` returns), for which the
packed path is exact.
"""

from __future__ import annotations

import numpy as np
import pytest

import bayesbin
from bayesbin.bits import PackedNetwork, load_bits, reference_forward

pytest.importorskip("jax")


def _pixels(x: np.ndarray) -> np.ndarray:
    """float32 nearest k / 255 (the loaders' pixels), clipped to [0, 1]."""
    k = np.clip(np.round(np.asarray(x, np.float64) * 255.0), 0, 255)
    return (k / 255.0).astype(np.float32)


def _assert_exact(packed: PackedNetwork, networks: list[dict], x: np.ndarray) -> None:
    assert packed.input_path(x) == "levels255"
    logits = packed.member_logits(x)
    assert logits.shape == (len(networks), x.shape[0], packed.n_classes)
    for m, net in enumerate(networks):
        np.testing.assert_array_equal(logits[m], reference_forward(net, x))


def test_bnn_to_bits_is_exact(bnn, blocks):
    xt = _pixels(blocks[2])
    packed = bnn.to_bits()
    assert isinstance(packed, PackedNetwork) and packed.n_members == 1
    _assert_exact(packed, [bnn.binary_network()], xt)
    np.testing.assert_array_equal(packed.classes_, bnn.classes_)
    # the float32 forward of the estimator: same labels up to float32 rounding near a threshold
    agree = np.mean(packed.predict(xt) == bnn.predict(xt))
    assert agree >= 0.99, agree
    np.testing.assert_allclose(packed.predict_proba(xt), bnn.predict_proba(xt), atol=0.05)
    # flat rows and images give the same answer
    np.testing.assert_array_equal(packed.decision_function(xt.reshape(len(xt), -1)),
                                  packed.decision_function(xt))
    assert packed.metadata["source"] == "bayesbin.nets.BNN"


def test_pbnet_to_bits_map_and_draws(pbnet, blocks):
    xt = _pixels(blocks[2])
    packed = pbnet.to_bits("map")
    _assert_exact(packed, [pbnet.binary_network("map")], xt)
    agree = np.mean(packed.predict(xt) == pbnet.predict(xt, method="map"))
    assert agree >= 0.99, agree

    ens = pbnet.to_bits("draws", n_networks=3)
    assert ens.n_members == 3 and ens.metadata["n_networks"] == 3
    members = pbnet._ensemble(3, None)  # the cached draws predict_proba(method="ensemble") uses
    _assert_exact(ens, members, xt)
    p_ref = np.mean([bayesbin.linear.maths.softmax(reference_forward(n, xt)) for n in members],
                    axis=0)
    np.testing.assert_allclose(ens.predict_proba(xt), p_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ens.predict_proba(xt),
                               pbnet.predict_proba(xt, method="ensemble", n_networks=3), atol=0.05)


def test_to_bits_of_sampled_networks(pbnet, blocks, tmp_path):
    from bayesbin.nets import networks_from_idata

    xt = _pixels(blocks[2])
    idata = pbnet.sample_networks(4, random_state=11)
    packed = bayesbin.to_bits(idata)
    networks = networks_from_idata(idata)
    assert packed.n_members == 4
    _assert_exact(packed, networks, xt)

    two = bayesbin.to_bits(idata, draws=2)  # evenly spaced, as select_draws for linear results
    _assert_exact(two, [networks[0], networks[3]], xt)
    picked = bayesbin.to_bits(idata, draws=[3, 1])
    _assert_exact(picked, [networks[3], networks[1]], xt)

    path = tmp_path / "ens.bbits"
    packed.save(path)
    back = load_bits(path)
    np.testing.assert_array_equal(back.member_logits(xt), packed.member_logits(xt))
    np.testing.assert_array_equal(back.predict(xt), packed.predict(xt))


def test_to_bits_errors(pbnet, bnn):
    idata = pbnet.sample_networks(2, random_state=1)
    with pytest.raises(ValueError, match="rule='map' is not available for sampled networks"):
        bayesbin.to_bits(idata, rule="map")
    with pytest.raises(ValueError, match="draws must be between 1 and the number of draws 2"):
        bayesbin.to_bits(idata, draws=5)
    with pytest.raises(ValueError, match="draws indices must lie in 0..1"):
        bayesbin.to_bits(idata, draws=[0, 7])
    with pytest.raises(ValueError, match="draws indices must lie in 0..1"):
        bayesbin.to_bits(idata, draws=[-1])
    with pytest.raises(TypeError, match="linear models only"):
        bayesbin.to_bits(idata, inputs="binarize")
    with pytest.raises(ValueError, match="rule"):
        pbnet.to_bits("marginal")
    with pytest.raises(ValueError, match="n_networks"):
        pbnet.to_bits("draws", n_networks=0)
    from bayesbin import nets

    with pytest.raises(Exception, match="not fitted|fit"):
        nets.BNN("784-10").to_bits()


def test_cli_exports_a_packed_network(bnn, blocks, tmp_path, capsys):
    """`python -m bayesbin export --bits net.bbits -o ... --c-header net.h` handles networks."""
    from bayesbin.cli import main

    xt = _pixels(blocks[2])
    src = tmp_path / "net.bbits"
    bnn.to_bits().save(src)
    out, header = tmp_path / "again.bbits", tmp_path / "net.h"
    assert main(["export", "--bits", str(src), "--output", str(out),
                 "--c-header", str(header)]) == 0
    said = capsys.readouterr().out
    assert "packed network written" in said and "C header written" in said
    np.testing.assert_array_equal(load_bits(out).decision_function(xt),
                                  bnn.to_bits().decision_function(xt))
    text = header.read_text()
    assert "#include <stdint.h>" in text and "bayesbin" in text
