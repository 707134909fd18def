"""Benchmark: packed-bit popcount inference vs numpy float32 matmul, side by side in one run.

Run from the repository root::

    python benchmarks/bench_bits.py              # full sizes (about 2 minutes on 2 cores)
    python benchmarks/bench_bits.py --threads 1  # numba and OpenBLAS both single-threaded
    python benchmarks/bench_bits.py --quick      # smaller ensemble, for a smoke run

Cases (784 inputs, 10 classes, as MNIST): a single model at batch 10,000 and at batch 1, and a
posterior ensemble of 1,000 draws on 10,000 rows (Bayesian model average of the softmax
probabilities). The float32 baselines are numpy matmuls on float32 inputs (OpenBLAS); the
ensemble baseline is both a per-draw loop and one batched GEMM over all draws, each followed by
a float32 softmax and the mean. The popcount timings are reported twice: with inputs that
arrive already packed, and including packing (binarizing) the float32 input, which is the fair
number when the input arrives as floats. Inputs and weights are random bits (the popcount work
does not depend on the values). Every timing is the best of ``--repeat`` runs after a warm-up
(numba compilation is excluded). Threads: numba and OpenBLAS both use every core unless
``--threads`` caps both (on a shared, loaded machine the single-threaded run is the steadier
comparison: a parallel region waits for a busy core's time slice).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import numba
import numpy as np

from bayesbin.bits import PackedClassifier, PackedEnsemble, PackedInput, pack_bits
from bayesbin.bits import kernels as _popcount

__all__ = ["main"]


def best_of(fn, repeat: int) -> float:
    """Best wall time of ``repeat`` calls after one warm-up call, in seconds."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def per_call(fn, seconds: float = 0.5) -> float:
    """Mean wall time of a fast call, looping for about ``seconds``."""
    fn()
    n, t0 = 0, time.perf_counter()
    while True:
        for _ in range(100):
            fn()
        n += 100
        elapsed = time.perf_counter() - t0
        if elapsed > seconds:
            return elapsed / n


def softmax32(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z


def header(*bases: str) -> None:
    print(f"  {'':<60s} {'time':>13s}" + "".join(f"   {b:>10s}" for b in bases))


def row(label: str, seconds: float, *bases: float) -> None:
    unit, scale = ("ms", 1e3) if seconds >= 1e-3 else ("us", 1e6)
    ratios = "".join(f"   {b / seconds:9.2f}x" for b in bases)
    print(f"  {label:<60s} {seconds * scale:10.3f} {unit}{ratios}")


def main(argv=None) -> None:
    """Run the benchmark and print the tables."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100 draws instead of 1,000")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="cap numba and BLAS threads")
    args = ap.parse_args(argv)
    from threadpoolctl import threadpool_info, threadpool_limits

    if args.threads is not None:
        numba.set_num_threads(args.threads)
        threadpool_limits(limits=args.threads)
    blas = ", ".join(f"{i['internal_api']} {i['num_threads']}" for i in threadpool_info())
    d, k, n = 784, 10, 10_000
    s_draws = 100 if args.quick else 1000
    rng = np.random.default_rng(0)

    print(
        f"bayesbin bits benchmark - {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, numpy {np.__version__}, numba {numba.__version__} "
        f"({numba.get_num_threads()} threads); BLAS threads: {blas}"
    )
    if hasattr(os, "getloadavg"):
        la = ", ".join(f"{v:.2f}" for v in os.getloadavg())
        print(f"load average at start: {la} (timings are noisy when it exceeds the core count)")
    x01 = (rng.random((n, d)) < 0.2).astype(np.float32)  # MNIST-like density of ones
    w_bits = rng.integers(0, 2, size=(d, k), dtype=np.uint8)
    w32 = (2.0 * w_bits - 1.0).astype(np.float32)  # pm1 weights
    xpm = 2 * x01 - 1  # pm1 inputs: the XNOR-popcount path
    clf = PackedClassifier.from_bits(w_bits, form="softmax", weight_encoding="pm1")
    clf_bin = PackedClassifier.from_bits(
        w_bits,
        form="softmax",
        weight_encoding="pm1",
        inputs="binarize",
        binarize_threshold=0.0,
        input_encoding="pm1",
    )
    xp = clf_bin.pack_input(xpm)
    assert np.array_equal(clf.scores(xpm), (xpm @ w32).astype(np.int64))
    assert np.array_equal(clf.scores(xp), (xpm @ w32).astype(np.int64))

    # ---------------------------------------------------------------- single model, batch n
    print(f"\n[1] single model {d}x{k}, batch {n:,} (+-1 weights x +-1 inputs)")
    t_f32 = best_of(lambda: xpm @ w32, args.repeat * 4)
    words = xp.words[:, 0, :]
    wp = clf.packed_weights

    def numpy_xnor():
        c = np.bitwise_count(words[:, None, :] ^ wp[None, :, :]).sum(axis=2, dtype=np.int64)
        return d - 2 * c

    assert np.array_equal(numpy_xnor(), clf.scores(xp))
    t_np = best_of(numpy_xnor, args.repeat)
    t_pk = best_of(lambda: clf.scores(xp), args.repeat * 4)
    t_pk_df = best_of(lambda: clf.decision_function(xp), args.repeat * 4)
    t_pack = best_of(lambda: clf_bin.pack_input(xpm), args.repeat * 4)
    t_bin = best_of(lambda: clf_bin.scores(xpm), args.repeat * 4)
    t_exact = best_of(lambda: clf.scores(xpm), args.repeat * 4)
    header("vs f32", "vs numpy")
    row("numpy float32 matmul x @ W", t_f32, t_f32, t_np)
    row("numpy XOR + bitwise_count (input packed)", t_np, t_f32, t_np)
    row("bayesbin popcount kernel, scores (input packed)", t_pk, t_f32, t_np)
    row("bayesbin decision_function (input packed)", t_pk_df, t_f32, t_np)
    row("bayesbin pack float32 input only (x > 0)", t_pack, t_f32, t_np)
    row("bayesbin scores incl. binarize+pack of float32 input", t_bin, t_f32, t_np)
    row("bayesbin scores incl. exact check+pack (inputs='exact')", t_exact, t_f32, t_np)

    # ---------------------------------------------------------------- single model, batch 1
    print(f"\n[2] single model {d}x{k}, batch 1")
    x1, xp1 = xpm[:1].copy(), PackedInput.from_words(words[:1].copy(), d, "pm1")
    w1 = words[:1]
    t1_f32 = per_call(lambda: x1 @ w32)
    t1_np = per_call(lambda: d - 2 * np.bitwise_count(w1[:, None, :] ^ wp[None]).sum(axis=2))
    kernel_args = (
        xp1.words,
        np.zeros(1, dtype=np.int64),
        clf._transposed(),
        np.uint64((1 << (d % 64)) - 1),
        True,
        np.int64(-2),
        np.int64(0),
        np.full(k, d, dtype=np.int64),
    )
    assert np.array_equal(_popcount.scores_serial(*kernel_args), clf.scores(xp1))
    t1_kern = per_call(lambda: _popcount.scores_serial(*kernel_args))
    t1_pk = per_call(lambda: clf.scores(xp1))
    t1_bin = per_call(lambda: clf_bin.predict(x1))
    header("vs f32", "vs numpy")
    row("numpy float32 matmul x @ W", t1_f32, t1_f32, t1_np)
    row("numpy XOR + bitwise_count (input packed)", t1_np, t1_f32, t1_np)
    row("bayesbin compiled kernel call alone (input packed)", t1_kern, t1_f32, t1_np)
    row("bayesbin clf.scores (input packed, incl. Python checks)", t1_pk, t1_f32, t1_np)
    row("bayesbin clf.predict incl. binarize+pack", t1_bin, t1_f32, t1_np)

    # ---------------------------------------------------------------- ensemble
    print(
        f"\n[3] posterior ensemble: {s_draws:,} draws x {d}x{k}, {n:,} rows, "
        "mean of softmax probabilities"
    )
    ens_bits = rng.integers(0, 2, size=(s_draws, d, k), dtype=np.uint8)
    scale = rng.uniform(0.02, 0.1, size=s_draws)
    bias = rng.normal(0.0, 1.0, size=(s_draws, k))
    ens = PackedEnsemble.from_bits(
        ens_bits,
        form="softmax",
        weight_encoding="pm1",
        scale=scale,
        bias=bias,
        inputs="binarize",
        binarize_threshold=0.0,
        input_encoding="pm1",
    )
    w_all = (2.0 * ens_bits - 1.0).astype(np.float32)  # (S, D, K)
    s32, b32 = scale.astype(np.float32), bias.astype(np.float32)

    def float_loop():
        acc = np.zeros((n, k), dtype=np.float32)
        for s in range(s_draws):
            acc += softmax32(s32[s] * (xpm @ w_all[s]) + b32[s])
        return acc / s_draws

    w_cat = np.ascontiguousarray(w_all.transpose(1, 0, 2).reshape(d, s_draws * k))
    chunk = 100

    def float_gemm():
        acc = np.zeros((n, k), dtype=np.float32)
        for lo in range(0, s_draws, chunk):
            hi = min(lo + chunk, s_draws)
            z = (xpm @ w_cat[:, lo * k : hi * k]).reshape(n, hi - lo, k)
            z *= s32[None, lo:hi, None]
            z += b32[None, lo:hi, :]
            acc += softmax32(z).sum(axis=1)
        return acc / s_draws

    ens_words = ens.packed_weights  # (S, K, n_words)

    def numpy_popcount_loop():
        acc = np.zeros((n, k), dtype=np.float32)
        for s in range(s_draws):
            c = np.bitwise_count(words[:, None, :] ^ ens_words[s][None]).sum(axis=2)
            z = (d - 2 * c).astype(np.float32)
            acc += softmax32(s32[s] * z + b32[s])
        return acc / s_draws

    p_bits = ens.predict_proba(xp)
    assert np.abs(float_gemm() - p_bits).max() < 1e-4  # float32 baseline agrees
    rep = max(2, args.repeat // 2)
    t_loop = best_of(float_loop, rep)
    t_gemm = best_of(float_gemm, rep)
    t_nploop = best_of(numpy_popcount_loop, 1)
    t_ens = best_of(lambda: ens.predict_proba(xp), rep)
    t_ens_pack = best_of(lambda: ens.predict_proba(xpm), rep)
    header("vs f32 loop", "vs f32 GEMM", "vs numpy")
    for label, t in [
        ("numpy float32 per-draw matmul + softmax loop", t_loop),
        ("numpy float32 batched GEMM (100 draws/chunk) + softmax", t_gemm),
        ("numpy XOR + bitwise_count per draw + softmax (packed)", t_nploop),
        ("bayesbin fused popcount ensemble (input packed)", t_ens),
        ("bayesbin fused popcount ensemble incl. packing input", t_ens_pack),
    ]:
        row(label, t, t_loop, t_gemm, t_nploop)

    # ---------------------------------------------------------------- storage
    print(f"\n[4] storage of one {d}x{k} model")
    f32_bytes = w32.nbytes
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.bbits")
        clf.save(path)
        file_bytes = os.path.getsize(path)
        path_e = os.path.join(tmp, "ens.bbits")
        ens.save(path_e)
        ens_file = os.path.getsize(path_e)
    ideal = pack_bits(np.zeros(d * k, dtype=np.uint8)).nbytes
    print(f"  float32 weights                                 {f32_bytes:10,d} bytes")
    print(
        f"  packed words in memory (rows padded to 64 bits) {clf.storage_bytes:10,d} bytes"
        f"   {f32_bytes / clf.storage_bytes:6.2f}x smaller"
    )
    print(
        f"  one unpadded bit stream (lower bound)           {ideal:10,d} bytes"
        f"   {f32_bytes / ideal:6.2f}x smaller"
    )
    print(f"  saved file (header + checksum)                  {file_bytes:10,d} bytes")
    print(
        f"  {s_draws}-draw ensemble: float32 {w_all.nbytes:,d} bytes, packed "
        f"{ens.storage_bytes:,d} ({w_all.nbytes / ens.storage_bytes:.2f}x), file {ens_file:,d}"
    )
    if hasattr(os, "getloadavg"):
        print("\nload average at end: " + ", ".join(f"{v:.2f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
