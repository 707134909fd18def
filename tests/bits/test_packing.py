"""Packing, bit order, popcount identities and exact input levels."""

from __future__ import annotations

import numpy as np
import pytest
from _bitsutil import PROPS
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bayesbin.bits import PackedClassifier, PackedInput, n_words, pack_bits, unpack_bits

# ------------------------------------------------------------------------------ pack / unpack


@PROPS
@given(
    hnp.arrays(
        dtype=st.sampled_from([np.bool_, np.uint8, np.int64, np.float64]),
        shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=9).flatmap(
            lambda s: st.integers(0, 200).map(lambda n: (*s[:-1], n))
        ),
        elements=st.integers(0, 1),
    )
)
def test_pack_unpack_round_trip_every_shape(bits):
    packed = pack_bits(bits)
    n = bits.shape[-1]
    assert packed.dtype == np.uint64 and packed.shape == (*bits.shape[:-1], n_words(n))
    out = unpack_bits(packed, n)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, bits.astype(np.uint8))
    if n % 64 and packed.size:  # padding bits are zero
        assert not np.any(packed[..., -1] >> np.uint64(n % 64))


def test_bit_order_is_lsb_first_in_uint64_words():
    bits = np.zeros(130, dtype=np.uint8)
    bits[[0, 3, 63, 64, 129]] = 1
    words = pack_bits(bits)
    assert words.tolist() == [(1 << 0) | (1 << 3) | (1 << 63), 1, 1 << 1]
    for j in range(130):
        assert (int(words[j // 64]) >> (j % 64)) & 1 == bits[j]


def test_unpack_ignores_padding_bits():
    words = np.array([np.uint64(0b1011) | np.uint64(1 << 40)], dtype=np.uint64)
    np.testing.assert_array_equal(unpack_bits(words, 4), [1, 1, 0, 1])


def test_pack_unpack_errors():
    with pytest.raises(ValueError, match="0 and 1"):
        pack_bits([0, 2, 1])
    with pytest.raises(ValueError, match="0 and 1"):
        pack_bits([0.5, 1.0])
    with pytest.raises(ValueError, match="1-D"):
        pack_bits(np.uint8(1))
    with pytest.raises(TypeError, match="dtype"):
        pack_bits(np.array(["1", "0"]))
    with pytest.raises(TypeError, match="uint64"):
        unpack_bits(np.zeros(2, dtype=np.int64), 100)
    with pytest.raises(ValueError, match="2 words"):
        unpack_bits(np.zeros(3, dtype=np.uint64), 100)
    with pytest.raises(ValueError, match="n_bits"):
        unpack_bits(np.zeros(1, dtype=np.uint64), -1)


# ------------------------------------------------------------------------------ identities


def _pm1_pairs(draw, max_d=300):
    d = draw(st.integers(1, max_d))
    n = draw(st.integers(1, 12))
    r = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    return rng.integers(0, 2, size=(n, d)), rng.integers(0, 2, size=(r, d))


@PROPS
@given(st.data())
def test_xnor_popcount_identity_is_exact(data):
    xb, wb = _pm1_pairs(data.draw)
    d = xb.shape[1]
    x, w = 2 * xb - 1, 2 * wb - 1
    dot = x @ w.T  # exact integer dot products
    xp, wp = pack_bits(xb), pack_bits(wb)
    c = np.bitwise_count(xp[:, None, :] ^ wp[None, :, :]).sum(axis=2).astype(np.int64)
    np.testing.assert_array_equal(d - 2 * c, dot)  # the identity itself
    clf = PackedClassifier(
        wp,
        n_features=d,
        form="softmax" if len(wb) > 1 else "single",
        weight_encoding="pm1",
        input_encoding="pm1",
    )
    got = clf.scores(PackedInput.from_words(xp, d, "pm1"))
    np.testing.assert_array_equal(got, dot)
    np.testing.assert_array_equal(clf.scores(x), dot)  # dense ±1 input, exact path


@PROPS
@given(st.data())
def test_and_and_mixed_identities_are_exact(data):
    xb, wb = _pm1_pairs(data.draw)
    d = xb.shape[1]
    form = "softmax" if len(wb) > 1 else "single"
    for x_enc in ("01", "pm1"):
        x = xb if x_enc == "01" else 2 * xb - 1
        xin = PackedInput.from_words(pack_bits(xb), d, x_enc)
        for w_enc in ("01", "pm1"):
            w = wb if w_enc == "01" else 2 * wb - 1
            clf = PackedClassifier(pack_bits(wb), n_features=d, form=form, weight_encoding=w_enc)
            np.testing.assert_array_equal(clf.scores(xin), x @ w.T)
            np.testing.assert_array_equal(clf.scores(x), x @ w.T)


@PROPS
@given(st.data())
def test_padding_never_changes_a_result(data):
    xb, wb = _pm1_pairs(data.draw)
    d = xb.shape[1]
    xp = pack_bits(xb)
    junk = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))).integers(
        0, 2**63, size=xp.shape[0], dtype=np.uint64
    )
    dirty = xp.copy()
    if d % 64:
        dirty[:, -1] |= junk << np.uint64(d % 64)  # garbage in the padding bits only
    form = "softmax" if len(wb) > 1 else "single"
    for enc in ("01", "pm1"):
        for w_enc in ("01", "pm1"):
            clf = PackedClassifier(pack_bits(wb), n_features=d, form=form, weight_encoding=w_enc)
            clean = clf.scores(PackedInput.from_words(xp, d, enc))
            np.testing.assert_array_equal(clf.scores(PackedInput.from_words(dirty, d, enc)), clean)


def test_weight_padding_must_be_zero():
    wp = pack_bits(np.ones((2, 70), dtype=np.uint8))
    wp[0, -1] |= np.uint64(1 << 63)
    with pytest.raises(ValueError, match="padding"):
        PackedClassifier(wp, n_features=70, form="two_output")


def test_planes_identity_for_integer_inputs(rng):
    w = rng.integers(0, 2, size=(50, 3))
    q = rng.integers(0, 256, size=(9, 50))
    for enc in ("01", "pm1"):
        clf = PackedClassifier.from_bits(w, form="softmax", weight_encoding=enc)
        weff = w if enc == "01" else 2 * w - 1
        assert clf.input_path(q) == "planes"
        np.testing.assert_array_equal(clf.scores(q), q @ weff)
        np.testing.assert_array_equal(clf.scores(q.astype(np.uint8)), q @ weff)
        np.testing.assert_array_equal(clf.scores(q.astype(np.float32)), q @ weff)
        assert clf.input_path(q / 255.0) == "planes255"
        np.testing.assert_array_equal(clf.scores(q / 255.0), q @ weff)  # levels k of k/255


# ------------------------------------------------------------------------------ exact levels


def test_levels255_detects_exactly_the_pixels_k_over_255():
    from bayesbin.bits import levelkernels as lk

    k = np.arange(256)
    for x in (k / 255.0, k.astype(np.float32) / np.float32(255)):
        q = np.empty((1, 256), dtype=np.uint8)
        assert lk.levels255_serial(x[None], q) == 0
        np.testing.assert_array_equal(q[0], k)
    # every near miss, special value or out-of-range value is refused, in both precisions
    for x in (k / 255.0, k.astype(np.float32) / np.float32(255)):
        near = np.concatenate([np.nextafter(x, 2 * x.dtype.type(1)), np.nextafter(x, -1)[1:]])
        odd = np.array([np.nan, np.inf, -np.inf, 2.0, 0.5, -1 / 255, 1e30], dtype=x.dtype)
        for bad in (near, odd):
            q = np.empty((1, bad.size), dtype=np.uint8)
            assert lk.levels255_serial(bad[None], q) == bad.size
    # the float64 levels are not float32 levels and vice versa (except 0 and 1 and a few)
    q = np.empty((1, 256), dtype=np.uint8)
    f64_as_32 = (k / 255.0).astype(np.float32).astype(np.float64)
    assert lk.levels255_serial(f64_as_32[None], q) > 200


@pytest.mark.parametrize("n_out", [3, 10, 16, 17, 70])
@pytest.mark.parametrize("pm1", [False, True])
def test_level_weights_are_exact_on_every_kernel(rng, n_out, pm1):
    """Narrow float32 dot products (<= 16 units) and level accumulation: q @ W exactly."""
    from bayesbin.bits.layers import LevelWeights

    d = 777
    bits = rng.integers(0, 2, size=(n_out, d))
    w = 2 * bits - 1 if pm1 else bits
    lw = LevelWeights(bits, pm1)
    assert (lw.narrow is not None) == (n_out <= 16)
    for n in (1, 300):  # serial and parallel kernels
        q8 = rng.integers(0, 256, size=(n, d))
        q8[rng.random(q8.shape) < 0.6] = 0
        np.testing.assert_array_equal(lw.scores(q8.astype(np.uint8)), q8 @ w.T)
        if n == 1:  # (the parallel uint16 kernels compile slowly; the code is the same)
            q16 = rng.integers(0, 65536, size=(n, d))
            np.testing.assert_array_equal(lw.scores(q16.astype(np.uint16)), q16 @ w.T)
        x32 = q8.astype(np.float32) / np.float32(255)
        got = lw.scores_255(x32)
        if n_out <= 16:
            np.testing.assert_array_equal(got, q8 @ w.T)
            if n == 1:
                np.testing.assert_array_equal(lw.scores_255(q8 / 255.0), q8 @ w.T)
            x32[-1, -1] = np.nextafter(x32[-1, -1], np.float32(2))
            assert lw.scores_255(x32) is None  # one value off a level: refused
        else:
            assert got is None  # wide layers take levels_input + level accumulation


def test_levels_input_kinds(rng):
    from bayesbin.bits.packing import levels_input

    q = rng.integers(0, 256, size=(4, 9))
    lev = levels_input(q.astype(np.float32) / np.float32(255))
    assert lev.divisor == 255.0 and lev.q.dtype == np.uint8
    np.testing.assert_array_equal(lev.q, q)
    lev = levels_input(q.astype(np.int64))
    assert lev.divisor == 1.0 and lev.q.dtype == np.uint8
    lev = levels_input((q * 200).astype(np.int64))
    assert lev.divisor == 1.0 and lev.q.dtype == np.uint16
    np.testing.assert_array_equal(lev.q, q * 200)
    assert levels_input(q.astype(np.float64) * 1000.5) is None
    assert levels_input(-q.astype(np.int64) - 1) is None
    assert levels_input(np.full((2, 3), np.nan)) is None
    assert levels_input(np.full((2, 3), 70000.0)) is None
