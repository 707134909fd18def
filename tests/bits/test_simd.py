"""The AVX2 hidden dense kernel (bayesbin.bits.simdkernels): bit-exact with the shipped kernel.

On a host without AVX2 (or with numba not targeting the host CPU) the kernel tests skip; the
dispatch tests run everywhere and check that the fallback is chosen there.
"""

from __future__ import annotations

import platform

import numpy as np
import pytest
from _bitsutil import batchnorm, pm1

from bayesbin.bits import netkernels as nk
from bayesbin.bits import pack_network, reference_forward
from bayesbin.bits import simdkernels as sk
from bayesbin.bits.netlayers import NetLayer

SIMD = pytest.mark.skipif(
    not sk.available(),
    reason="needs an x86-64 host with AVX2 and numba targeting the host CPU "
    "(bayesbin.bits.simdkernels.available() is False: the shipped kernels are used)",
)


@pytest.fixture(autouse=True)
def _simd_on(monkeypatch):
    """Every test starts with the SIMD switch on and BAYESBIN_SIMD unset."""
    monkeypatch.delenv("BAYESBIN_SIMD", raising=False)
    old = sk.set_enabled(True)
    yield
    sk.set_enabled(old)


# ------------------------------------------------------------------------------ helpers


def _case(seed: int, n: int, n_in: int, u: int, taus: str):
    """Packed rows x (n, win), transposed weights wt (win, U), tau, flip."""
    rng = np.random.default_rng([seed, n, n_in, u])
    win = (n_in + 63) // 64

    def bits(rows, p):
        b = (rng.random((rows, win * 64)) < p).astype(np.uint8)
        b[:, n_in:] = 0
        return np.packbits(b, axis=1, bitorder="little").view("<u8").astype(np.uint64)

    x = bits(n, rng.uniform(0.05, 0.95))
    w = bits(u, 0.5)
    if n >= 2:  # extreme scores: a row equal to a unit's weights (+n_in) and its complement
        x[0] = w[0]
        x[1] = w[1] ^ bits(1, 1.0)[0]
    if taus == "range":
        s = int(np.sqrt(n_in)) + 1
        tau = rng.integers(-s, s + 1, size=u)
    elif taus == "outside":
        tau = rng.integers(-3 * n_in, 3 * n_in + 1, size=u)
    elif taus == "ties":  # exactly ±n_in and just beyond: the extreme scores tie
        tau = rng.choice([-n_in - 1, -n_in, -n_in + 1, n_in - 1, n_in, n_in + 1], size=u)
    else:  # scores of the exact rows, so that score == tau happens
        sc = _scores(x, np.ascontiguousarray(w.T), n_in)
        tau = sc[rng.integers(0, n, size=u), np.arange(u)]
    tau = tau.astype(np.int64)
    flip = rng.integers(0, 2, size=u).astype(np.uint8)
    return x, np.ascontiguousarray(w.T), tau, flip


def _scores(x, wt, n_in):
    u = wt.shape[1]
    out = np.empty((x.shape[0], 1), np.uint64)
    sc = np.empty((x.shape[0], u), np.int64)
    nk.dense_bits_serial(x, wt, n_in, np.zeros(u, np.int64), np.zeros(u, np.uint8), out, sc)
    return sc


def _shipped(x, wt, n_in, tau, flip):
    out = np.empty((x.shape[0], (wt.shape[1] + 63) // 64), np.uint64)
    nk.dense_bits_serial(x, wt, n_in, tau, flip, out, np.empty((0, wt.shape[1]), np.int64))
    return out


def _simd(x, wt, n_in, tau, flip, parallel: bool):
    ws, lim, fw = sk.prep_weights(wt, n_in, tau, flip)
    out = np.full((x.shape[0], wt.shape[1] // 64), 0xDEADBEEF, np.uint64)  # all overwritten
    (sk.dense_tbl if parallel else sk.dense_tbl_serial)(x, ws, lim, fw, out, sk.TABLES)
    return out


# ------------------------------------------------------------------------------ kernel


@SIMD
@pytest.mark.parametrize("u", [128, 512])
@pytest.mark.parametrize("n_in", [64, 100, 512, 784, 2000])
@pytest.mark.parametrize("n", [1, 2, 7, 33, 997])
def test_kernel_equals_shipped(n, n_in, u):
    """Packed outputs identical to dense_bits_serial: seeds, thresholds in and outside the
    score range, ties at ±n_in, thresholds equal to attained scores, random flips."""
    for seed, taus in enumerate(["range", "outside", "ties", "attained"]):
        x, wt, tau, flip = _case(seed, n, n_in, u, taus)
        ref = _shipped(x, wt, n_in, tau, flip)
        for parallel in (False, True):
            got = _simd(x, wt, n_in, tau, flip, parallel)
            assert np.array_equal(got, ref), (seed, taus, parallel)


@SIMD
def test_kernel_at_the_int16_bound():
    """Fan-in 64 * MAX_IN_WORDS: d reaches 32704 (complemented row), still exact."""
    n_in = 64 * sk.MAX_IN_WORDS
    for taus in ("ties", "attained"):
        x, wt, tau, flip = _case(5, 3, n_in, 128, taus)
        ref = _shipped(x, wt, n_in, tau, flip)
        assert _scores(x, wt, n_in)[1, 1] == -n_in  # d = n_in for unit 1 of row 1
        assert np.array_equal(_simd(x, wt, n_in, tau, flip, False), ref), taus


def test_prep_weights_layout():
    """ws byte (blk, k, m, q, b) = nibble m of word k of unit 128 blk + 32 q + t(b); lim, fw."""
    rng = np.random.default_rng(0)
    win, u, n_in = 3, 256, 150
    wt = rng.integers(0, 2**63, size=(win, u), dtype=np.uint64)
    tau = np.array([-(2**62), 2**62, -n_in, n_in, 0, 1, -1, 7] * (u // 8), np.int64)
    flip = rng.integers(0, 2, size=u).astype(np.uint8)
    ws, lim, fw = sk.prep_weights(wt, n_in, tau, flip)
    ws = ws.reshape(u // 128, win, 16, 4, 32)
    for blk, k, m, q, b in [(0, 0, 0, 0, 0), (1, 2, 15, 3, 31), (0, 1, 7, 2, 6), (1, 0, 3, 1, 9)]:
        t = b // 2 if b % 2 == 0 else 16 + b // 2
        unit = 128 * blk + 32 * q + t
        assert ws[blk, k, m, q, b] == (int(wt[k, unit]) >> (4 * m)) & 15
    # score >= tau  <=>  d <= lim, for every attainable d
    d = np.arange(n_in + 1)
    for c in range(8):
        assert np.array_equal(n_in - 2 * d >= tau[c], d <= lim[c]), tau[c]
    bits = np.unpackbits(fw.view(np.uint8), bitorder="little")
    assert np.array_equal(bits, flip)
    with pytest.raises(ValueError):
        sk.prep_weights(wt[:, :200], n_in, tau[:200], flip[:200])


def test_nibble_tables():
    tt = sk.TABLES.reshape(16, 32)
    for v in range(16):
        for j in range(32):
            assert tt[v, j] == bin((j % 16) ^ v).count("1")


# ------------------------------------------------------------------------------ dispatch


def test_host_check(monkeypatch):
    """available() follows the host: AVX2 on x86-64 with numba targeting the host CPU."""
    import llvmlite.binding as llvm
    from numba import config

    x86 = platform.machine().lower() in ("x86_64", "amd64")
    avx2 = bool(llvm.get_host_cpu_features().get("avx2", False))
    host_target = (
        not config.DISABLE_JIT
        and config.CPU_NAME in (None, "", "host")
        and (not config.CPU_FEATURES or "+avx2" in str(config.CPU_FEATURES).split(","))
    )
    assert sk._host_has_avx2() == (x86 and avx2 and host_target)
    monkeypatch.setattr(config, "CPU_NAME", "generic")
    assert not sk._host_has_avx2()
    monkeypatch.setattr(config, "CPU_NAME", None)
    monkeypatch.setattr(config, "CPU_FEATURES", "+sse2,+sse4.2")
    assert not sk._host_has_avx2()
    monkeypatch.setattr(config, "CPU_FEATURES", None)
    monkeypatch.setattr(config, "DISABLE_JIT", True)
    assert not sk._host_has_avx2()
    monkeypatch.setattr(config, "DISABLE_JIT", False)
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    assert not sk._host_has_avx2()


def test_usable_conditions(monkeypatch):
    monkeypatch.setattr(sk, "_available", True)  # pretend: only the flags are looked at
    assert sk.usable(512, 13, head=False)
    assert not sk.usable(512, 13, head=True)
    assert not sk.usable(500, 13, head=False)
    assert not sk.usable(64, 13, head=False)
    assert not sk.usable(128, sk.MAX_IN_WORDS + 1, head=False)
    assert sk.usable(128, sk.MAX_IN_WORDS, head=False)
    monkeypatch.setenv("BAYESBIN_SIMD", "0")
    assert not sk.usable(512, 13, head=False)
    monkeypatch.setenv("BAYESBIN_SIMD", "1")
    assert sk.usable(512, 13, head=False)
    assert sk.set_enabled(False) is True
    assert not sk.usable(512, 13, head=False)
    sk.set_enabled(True)
    monkeypatch.setattr(sk, "_available", False)
    assert not sk.usable(512, 13, head=False)


def _layer(rng, u=128, d=300):
    """The second layer (64 -> u, hidden, not first) of a small random network."""
    desc = {
        "input_shape": (d,),
        "layers": [
            {"kind": "dense", "weights": pm1(rng, 64, d)},
            {"kind": "sign"},
            {"kind": "dense", "weights": pm1(rng, u, 64)},
            batchnorm(rng, u, scale=d**0.5),
            {"kind": "sign"},
            {"kind": "dense", "weights": pm1(rng, 3, u)},
        ],
        "classes": [0, 1, 2],
    }
    return pack_network(desc).layers[1]


def _boom(*args):
    raise AssertionError("this kernel must not run here")


def test_dispatch_picks_the_fallback_when_unavailable(monkeypatch):
    """No AVX2 (or switched off): NetLayer never calls a SIMD kernel."""
    rng = np.random.default_rng(1)
    lay = _layer(rng)
    assert isinstance(lay, NetLayer) and not lay.head and not lay.first
    x = rng.integers(0, 2**63, size=(40, 1), dtype=np.uint64)
    monkeypatch.setattr(sk, "dense_tbl", _boom)
    monkeypatch.setattr(sk, "dense_tbl_serial", _boom)
    monkeypatch.setattr(sk, "_available", False)
    a = lay.run_bits(x, 0)
    b = lay.run_bits(x[:3], 0)
    monkeypatch.setattr(sk, "_available", None)  # the real host check again
    sk.set_enabled(False)
    assert np.array_equal(lay.run_bits(x, 0), a)
    monkeypatch.setenv("BAYESBIN_SIMD", "0")
    sk.set_enabled(True)
    assert np.array_equal(lay.run_bits(x[:3], 0), b)


@SIMD
def test_dispatch_picks_simd_when_available(monkeypatch):
    """AVX2 host: hidden dense layers with 128k units run the SIMD kernel (serial for small n,
    parallel above the work threshold), the head and other widths the shipped one."""
    rng = np.random.default_rng(2)
    lay = _layer(rng)
    x = rng.integers(0, 2**63, size=(997, 1), dtype=np.uint64)  # 64 inputs: one word
    sk.set_enabled(False)
    ref = lay.run_bits(x, 0)
    sk.set_enabled(True)
    monkeypatch.setattr(nk, "dense_bits", _boom)
    monkeypatch.setattr(nk, "dense_bits_serial", _boom)
    assert lay._serial(3) and not lay._serial(997)
    assert np.array_equal(lay.run_bits(x, 0), ref)
    assert np.array_equal(lay.run_bits(x[:3], 0), ref[:3])
    head = pack_network(
        {
            "input_shape": (300,),
            "layers": [{"kind": "dense", "weights": pm1(rng, 128, 300)}],
            "classes": list(range(128)),
        }
    ).layers[0]
    x5 = rng.integers(0, 2**63, size=(3, 5), dtype=np.uint64)
    x5[:, -1] &= np.uint64(2**44 - 1)  # 300 inputs
    with pytest.raises(AssertionError, match="must not run"):
        head.run_bits(x5, 0)  # the head: shipped kernel (here: the trap)


# ------------------------------------------------------------------------------ networks


def _mlp(rng, sizes, binarize: bool) -> dict:
    layers = [{"kind": "binarize", "threshold": 0.5}] if binarize else []
    d = sizes[0]
    for i, u in enumerate(sizes[1:]):
        layers.append({"kind": "dense", "weights": pm1(rng, u, d)})
        layers.append(batchnorm(rng, u, divisor=255.0 if i == 0 else 1.0, scale=d**0.5))
        if i < len(sizes) - 2:
            layers.append({"kind": "sign"})
        d = u
    return {"input_shape": (sizes[0],), "layers": layers, "classes": list(range(sizes[-1]))}


def _cnn_dense(rng) -> dict:
    """conv on a 6x6x3 image, then a dense layer on the image (3 channels per pixel word)."""
    return {
        "input_shape": (6, 6, 3),
        "layers": [
            {"kind": "binarize", "threshold": 0.5},
            {"kind": "conv2d", "weights": pm1(rng, 5, 3, 3, 3), "padding": "same"},
            batchnorm(rng, 5, scale=5.0),
            {"kind": "sign"},
            {"kind": "flatten"},
            {"kind": "dense", "weights": pm1(rng, 256, 180)},
            batchnorm(rng, 256, scale=13.0),
            {"kind": "sign"},
            {"kind": "dense", "weights": pm1(rng, 4, 256)},
            batchnorm(rng, 4),
        ],
        "classes": [0, 1, 2, 3],
    }


@SIMD
@pytest.mark.parametrize("kind", ["mlp", "mlp_binarize", "mlp_pm1", "cnn_dense"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_network_equals_reference_and_fallback(kind, seed, monkeypatch):
    """PackedNetwork logits == reference_forward == the same network with SIMD off, and the
    SIMD kernel really ran for every hidden dense layer of 128k units."""
    rng = np.random.default_rng(seed)
    if kind == "cnn_dense":
        desc = _cnn_dense(rng)
    else:
        sizes = (784, 512, 256, 10) if seed == 0 else (100, 128, 384, 7)
        desc = _mlp(rng, sizes, binarize=kind == "mlp_binarize")
    calls = []

    def counting(kernel):
        def run(*args):
            calls.append(kernel)
            return kernel(*args)

        return run

    monkeypatch.setattr(sk, "dense_tbl", counting(sk.dense_tbl))
    monkeypatch.setattr(sk, "dense_tbl_serial", counting(sk.dense_tbl_serial))
    shape = desc["input_shape"]
    for n in (1, 7, 33, 997):
        if kind == "mlp_pm1":
            x = rng.choice([-1.0, 1.0], size=(n, *shape))
        elif kind == "mlp":
            x = rng.integers(0, 256, size=(n, *shape)) / 255.0
        else:  # binarize: values on the threshold too
            x = rng.choice([0.0, 0.25, 0.5, 0.75, 1.0], size=(n, *shape))
        sk.set_enabled(False)
        off = pack_network(desc)
        want = off.decision_function(x)
        sk.set_enabled(True)
        net = pack_network(desc)
        before = len(calls)
        got = net.decision_function(x)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(got, reference_forward(desc, x))
        n_simd = {"mlp": 1, "mlp_pm1": 2, "mlp_binarize": 2, "cnn_dense": 1}[kind]
        assert len(calls) - before == n_simd, (kind, n)
