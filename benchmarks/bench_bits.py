"""Benchmark: packed-bit popcount inference vs float32 (numpy, JAX), side by side in one run.

Run from the repository root::

    python benchmarks/bench_bits.py              # everything (several minutes on 2 cores)
    python benchmarks/bench_bits.py --threads 1  # sections [1]-[4] with numba and BLAS at 1 thread
    python benchmarks/bench_bits.py --quick      # smaller ensembles, for a smoke run
    python benchmarks/bench_bits.py --only nets  # only the network sections [5]-[10]

Sections [1]-[4] (linear models; unchanged since P5): see below. Sections [5]-[10] (packed
binary networks, P8) run at 1 and at 2 threads (``--net-threads``) side by side: numba and
OpenBLAS are capped in this process, and the JAX float32 baselines run in a worker process
pinned to that many cores (CPU affinity plus XLA's thread flags). Every row gives the best
wall time of several runs and the CPU time of that same run (CPU > wall means threads ran in
parallel; CPU < wall means the process waited for a core). The networks are random (trained
ones come from ``bayesbin.nets``); their inputs are the MNIST test images as ``load_mnist``
returns them (float32 ``k / 255``), or random sparse pixels when the files are absent.

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
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numba
import numpy as np

if __name__ == "__main__":  # benchmark the checkout this script lives in, not an installed copy
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

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
    ap.add_argument("--only", choices=["linear", "nets"], default=None)
    ap.add_argument("--net-threads", default="1,2", help="thread counts of sections [5]-[10]")
    ap.add_argument(
        "--trained",
        default=None,
        help="folder with bench_nets.py's fitted bnn.pkl / pbnet.pkl: use those networks "
        "(BNN MLP; PBNet CNN MAP net and its 16 sampled nets) instead of random ones",
    )
    ap.add_argument("--jax-worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.jax_worker:
        return jax_worker(args.jax_worker)
    if args.only != "nets":
        linear_sections(args)
    if args.only != "linear":
        network_sections(args)


def linear_sections(args) -> None:
    """Sections [1]-[4]: the packed linear models (unchanged since P5)."""
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
        clf._layer.transposed(),
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


# ============================================================================================
# packed binary networks (P8)
# ============================================================================================


def timed(fn, repeat: int) -> tuple[float, float]:
    """(best wall time, CPU time of that run) of ``repeat`` calls after one warm-up, seconds."""
    fn()
    best = (float("inf"), 0.0)
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        best = min(best, (wall, cpu))
    return best


def timed_call(fn, seconds: float = 0.5) -> tuple[float, float]:
    """(mean wall, mean CPU) of a fast call looped for about ``seconds`` (best of 3 loops)."""
    fn()
    best = (float("inf"), 0.0)
    for _ in range(3):
        n, t0, c0 = 0, time.perf_counter(), time.process_time()
        while time.perf_counter() - t0 < seconds / 3:
            for _ in range(20):
                fn()
            n += 20
        best = min(best, ((time.perf_counter() - t0) / n, (time.process_time() - c0) / n))
    return best


def _pm1(rng, *shape):
    return (2 * rng.integers(0, 2, size=shape) - 1).astype(np.int8)


def _bn(rng, c, *, center: float, spread: float) -> dict:
    return {
        "kind": "batchnorm",
        "gamma": rng.uniform(0.5, 1.5, c) * rng.choice([-1.0, 1.0], c),
        "beta": rng.normal(0.0, 0.1, c),
        "mean": center + rng.normal(0.0, spread / 4, c),
        "var": (spread * rng.uniform(0.8, 1.2, c)) ** 2,
        "eps": 1e-5,
    }


def mlp_description(rng, sizes=(784, 512, 512, 10)) -> dict:
    """A random BNN MLP 784-512-512-10 (batch norm statistics of a typical input)."""
    layers, d = [], sizes[0]
    for i, u in enumerate(sizes[1:]):
        layers.append({"kind": "dense", "weights": _pm1(rng, u, d)})
        spread = np.sqrt(d) * (0.3 if i == 0 else 1.0)
        layers.append(_bn(rng, u, center=0.0, spread=spread))
        if i < len(sizes) - 2:
            layers.append({"kind": "sign"})
        d = u
    return {"input_shape": (sizes[0],), "layers": layers, "classes": list(range(sizes[-1]))}


def cnn_description(rng, c1=32, c2=64, hidden=512, k=10) -> dict:
    """A random PBNet-style CNN 32C3-MP2-64C3-MP2-512FC-SM10 on 28x28x1 images."""
    layers = [
        {"kind": "conv2d", "weights": _pm1(rng, c1, 1, 3, 3), "padding": "same"},
        {"kind": "maxpool2d", "size": 2},
        _bn(rng, c1, center=0.5, spread=1.0),
        {"kind": "sign"},
        {"kind": "conv2d", "weights": _pm1(rng, c2, c1, 3, 3), "padding": "same"},
        _bn(rng, c2, center=0.0, spread=np.sqrt(9 * c1)),
        {"kind": "sign"},
        {"kind": "maxpool2d", "size": 2},
        {"kind": "flatten"},
        {"kind": "dense", "weights": _pm1(rng, hidden, 7 * 7 * c2)},
        _bn(rng, hidden, center=0.0, spread=np.sqrt(7 * 7 * c2)),
        {"kind": "sign"},
        {"kind": "dense", "weights": _pm1(rng, k, hidden)},
        _bn(rng, k, center=0.0, spread=np.sqrt(hidden)),
    ]
    return {"input_shape": (28, 28, 1), "layers": layers, "classes": list(range(k))}


def resample(rng, net: dict) -> dict:
    """Another member of a PBNet-style ensemble: same architecture, new bits and statistics."""
    layers = []
    for lay in net["layers"]:
        lay = dict(lay)
        if lay["kind"] in ("dense", "conv2d"):
            flip = rng.random(np.shape(lay["weights"])) < 0.1
            lay["weights"] = np.where(flip, -lay["weights"], lay["weights"]).astype(np.int8)
        elif lay["kind"] == "batchnorm":
            lay["mean"] = lay["mean"] + rng.normal(0.0, 0.05, len(lay["mean"])) * np.sqrt(
                lay["var"]
            )
        layers.append(lay)
    return {**net, "layers": layers}


def numpy_forward(net: dict):
    """A float32 numpy forward pass (dense layers only) with batch norm folded into a*s + b."""
    steps = []
    for lay in net["layers"]:
        if lay["kind"] == "binarize":
            steps.append(("binarize", np.float32(lay["threshold"])))
        elif lay["kind"] == "dense":
            steps.append(("dense", np.ascontiguousarray(np.asarray(lay["weights"], np.float32).T)))
        elif lay["kind"] == "batchnorm":
            a = lay["gamma"] / np.sqrt(lay["var"] + lay["eps"])
            steps.append(
                ("affine", a.astype(np.float32), (lay["beta"] - lay["mean"] * a).astype(np.float32))
            )
        elif lay["kind"] == "sign":
            steps.append(("sign",))
    one, minus = np.float32(1), np.float32(-1)

    def predict(x):
        h = x
        for step in steps:
            if step[0] == "dense":
                h = h @ step[1]
            elif step[0] == "affine":
                h = h * step[1] + step[2]
            elif step[0] == "binarize":
                h = np.where(h > step[1], one, minus)
            else:
                h = np.where(h >= 0, one, minus)
        return np.argmax(h, axis=1)

    return predict


def _save_nets(path: str, nets: dict, x: np.ndarray) -> None:
    arrays = {"x": x}
    meta = {}
    for name, members in nets.items():
        meta[name] = []
        for m, net in enumerate(members):
            layers = []
            for i, lay in enumerate(net["layers"]):
                entry = {}
                for key, value in lay.items():
                    if isinstance(value, np.ndarray):
                        arrays[f"{name}.{m}.{i}.{key}"] = value
                        entry[key] = f"{name}.{m}.{i}.{key}"
                    else:
                        entry[key] = value
                layers.append(entry)
            meta[name].append({"input_shape": list(net["input_shape"]), "layers": layers})
    np.savez(path, **arrays)
    with open(path + ".json", "w") as fh:
        json.dump(meta, fh)


def run_jax(threads: int, npz: str, cases: list) -> dict:
    """Run the JAX float32 baselines in a worker pinned to ``threads`` cores."""
    spec = {"threads": threads, "npz": npz, "cases": cases}
    spec_path = npz + f".{threads}.spec.json"
    with open(spec_path, "w") as fh:
        json.dump(spec, fh)
    env = dict(os.environ)
    if threads == 1:
        env["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    out = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--jax-worker", spec_path],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def jax_worker(spec_path: str) -> None:
    """Worker: time the JAX float32 forward passes listed in ``spec_path``; print JSON."""
    with open(spec_path) as fh:
        spec = json.load(fh)
    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, set(cpus[: spec["threads"]]))
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_platforms", "cpu")
    data = np.load(spec["npz"])
    with open(spec["npz"] + ".json") as fh:
        meta = json.load(fh)

    def params(net):
        out = []
        for lay in net["layers"]:
            get = {
                k: (data[v] if isinstance(v, str) and v in data.files else v)
                for k, v in lay.items()
            }
            if get["kind"] == "dense":
                out.append(("dense", jnp.asarray(np.asarray(get["weights"], np.float32).T)))
            elif get["kind"] == "conv2d":
                w = np.asarray(get["weights"], np.float32).transpose(2, 3, 1, 0)  # HWIO
                out.append(("conv2d", jnp.asarray(w)))
            elif get["kind"] == "batchnorm":
                a = get["gamma"] / np.sqrt(get["var"] + get["eps"])
                out.append(
                    (
                        "affine",
                        jnp.asarray(a, jnp.float32),
                        jnp.asarray(get["beta"] - get["mean"] * a, jnp.float32),
                    )
                )
            elif get["kind"] == "maxpool2d":
                out.append(("pool", int(get.get("size", 2))))
            elif get["kind"] == "binarize":
                out.append(("binarize", np.float32(get["threshold"])))
            else:
                out.append((get["kind"],))
        return out

    def forward(ps, h):
        for p in ps:
            if p[0] == "dense":
                h = h @ p[1]
            elif p[0] == "conv2d":
                h = jax.lax.conv_general_dilated(
                    h, p[1], (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
                )
            elif p[0] == "affine":
                h = h * p[1] + p[2]
            elif p[0] == "sign":
                h = jnp.where(h >= 0, 1.0, -1.0).astype(jnp.float32)
            elif p[0] == "pool":
                s = p[1]
                h = jax.lax.reduce_window(
                    h, -jnp.inf, jax.lax.max, (1, s, s, 1), (1, s, s, 1), "VALID"
                )
            elif p[0] == "flatten":
                h = h.reshape(h.shape[0], -1)
            elif p[0] == "binarize":
                h = jnp.where(h > p[1], 1.0, -1.0).astype(jnp.float32)
        return h

    results = {}
    for case in spec["cases"]:
        members = [params(n) for n in meta[case["net"]]]
        shape = tuple(meta[case["net"]][0]["input_shape"])
        x = jnp.asarray(data["x"][: case["batch"]].reshape(-1, *shape))

        @jax.jit
        def run(x, members=members):
            if len(members) == 1:
                return jnp.argmax(forward(members[0], x), axis=1)
            p = sum(jax.nn.softmax(forward(m, x), axis=1) for m in members) / len(members)
            return jnp.argmax(p, axis=1)

        fn = lambda x=x, run=run: run(x).block_until_ready()  # noqa: E731
        if case.get("latency"):
            results[case["name"]] = timed_call(fn)
        else:
            results[case["name"]] = timed(fn, case["repeat"])
        if case.get("labels"):
            results[case["name"] + ".labels"] = np.asarray(run(x)).tolist()
    print(json.dumps(results))


def test_pixels(n: int, rng) -> np.ndarray:
    """MNIST test pixels as ``load_mnist`` returns them (float32 k / 255), else random ones."""
    import bayesbin

    try:
        x, y = bayesbin.load_mnist("test", download=False)
        return x[:n], y[:n], "MNIST test images"
    except (FileNotFoundError, ValueError):
        q = rng.integers(0, 256, size=(n, 784))
        q[rng.random(q.shape) < 0.8] = 0
        return (
            q.astype(np.float32) / np.float32(255),
            rng.integers(0, 10, n),
            "random sparse pixels (MNIST files not found)",
        )


def _load_trained(folder, n_members: int) -> dict:
    """The fitted networks of bench_nets.py (pickled estimators), if ``folder`` has them."""
    import pickle

    out = {}
    if folder is None:
        return out
    bnn_pkl, pb_pkl = os.path.join(folder, "bnn.pkl"), os.path.join(folder, "pbnet.pkl")
    if os.path.exists(bnn_pkl):
        with open(bnn_pkl, "rb") as fh:
            out["mlp"] = pickle.load(fh).binary_network()
    bin_pkl = os.path.join(folder, "bnn_bin.pkl")  # trained on binarized pixels
    if os.path.exists(bin_pkl):
        with open(bin_pkl, "rb") as fh:
            out["mlpb"] = pickle.load(fh).binary_network()
    if os.path.exists(pb_pkl):
        with open(pb_pkl, "rb") as fh:
            pb = pickle.load(fh)
        out["cnn"] = pb.binary_network("map")
        out["ens"] = pb._ensemble(n_members, None)  # the draws predict_proba(method="ensemble") uses
    return out


def network_sections(args) -> None:
    """Sections [5]-[10]: the README quickstart and packed binary networks, 1 and 2 threads."""
    from threadpoolctl import threadpool_limits

    from bayesbin.bits import PackedClassifier, pack_network, reference_forward

    threads = [int(t) for t in args.net_threads.split(",")]
    rng = np.random.default_rng(2)
    n_rows = 2_000 if args.quick else 10_000
    n_members = 4 if args.quick else 16
    x, y, source = test_pixels(n_rows, rng)
    print(f"\n=== packed binary networks (P8); inputs: {source}, float32 k/255 ===")
    if hasattr(os, "getloadavg"):
        print("load average: " + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
    bits = rng.integers(0, 2, size=(784, 10))
    clf = PackedClassifier.from_bits(bits, form="softmax", scale=0.05, bias=rng.normal(size=10))
    w32, b32 = bits.astype(np.float32), clf.bias.astype(np.float32)
    mlp = mlp_description(rng)
    cnn = cnn_description(rng)
    ens = [cnn] + [resample(rng, cnn) for _ in range(n_members - 1)]
    trained = _load_trained(args.trained, n_members)
    mlp = trained.get("mlp", mlp)
    cnn = trained.get("cnn", cnn)
    ens = trained.get("ens", ens)
    # the MLP trained on binarized pixels (input_threshold=0.5): its first layer is XNOR-popcount
    mlpb = trained.get("mlpb", {**mlp, "layers": [{"kind": "binarize", "threshold": 0.5},
                                                 *mlp["layers"]]})
    kinds = {k: ("trained" if k in trained else "random") for k in ("mlp", "mlpb", "cnn", "ens")}
    print(f"networks: MLP {kinds['mlp']}, MLP on binarized pixels {kinds['mlpb']}, "
          f"CNN {kinds['cnn']}, ensemble {kinds['ens']}")
    p_mlp, p_cnn, p_ens = pack_network(mlp), pack_network(cnn), pack_network(ens)
    p_mlpb = pack_network(mlpb)
    assert p_mlpb.input_path(x[:10]) == "binarize"
    x1k = x[:1000]
    # exactness first: the packed forward passes equal the float64 reference bit for bit
    assert clf.input_path(x) == "planes255"
    k = np.rint(x.astype(np.float64) * 255).astype(np.int64)
    assert np.array_equal(clf.decision_function(x), 0.05 * ((k @ bits) / 255.0) + clf.bias)
    for net, desc in ((p_mlp, mlp), (p_cnn, cnn), (p_ens[3], ens[3])):
        assert net.input_path(x1k[:200]) == "levels255"
        assert np.array_equal(net.decision_function(x1k[:200]), reference_forward(desc, x1k[:200]))
    assert np.array_equal(p_mlpb.decision_function(x1k[:200]), reference_forward(mlpb, x1k[:200]))
    print("exactness: packed logits == float64 reference on 200 rows (MLPs, CNN, a member): yes")
    if trained:
        for label, net, descs in (("MLP", p_mlp, [mlp]), ("MLP binarized", p_mlpb, [mlpb]),
                                  ("CNN", p_cnn, [cnn]), ("ensemble", p_ens, ens)):
            if label == "MLP binarized" and "mlpb" not in trained:
                continue
            n_chk = n_rows if label != "ensemble" else min(n_rows, 1000)  # float64 CNN x 16: slow
            logits = net.member_logits(x[:n_chk])
            same = all(np.array_equal(logits[m], reference_forward(d, x[:n_chk]))
                       for m, d in enumerate(descs))
            acc = np.mean(net.predict(x[:n_chk]) == y[:n_chk])
            print(f"  trained {label}: packed logits == reference on all {n_chk:,} rows: {same}; "
                  f"packed accuracy {acc:.4f}")
    f32_mlp = numpy_forward(mlp)
    agree_mlp = np.mean(f32_mlp(x1k) == p_mlp.predict(x1k))
    f32_mlpb = numpy_forward(mlpb)
    agree_mlpb = np.mean(f32_mlpb(x1k) == p_mlpb.predict(x1k))
    with tempfile.TemporaryDirectory() as tmp:
        npz = os.path.join(tmp, "nets.npz")
        _save_nets(npz, {"mlp": [mlp], "mlpb": [mlpb], "cnn": [cnn], "ens": ens}, x)
        rep = args.repeat
        cases = [
            {"name": "mlp", "net": "mlp", "batch": 1000, "repeat": rep, "labels": True},
            {"name": "mlpb", "net": "mlpb", "batch": 1000, "repeat": rep},
            # best of `rep` like the packed side: with best of 2 the JAX CNN measured 185-330 ms
            # in quiet runs minutes apart; best of 7, interleaved, 172-180 ms
            {"name": "cnn", "net": "cnn", "batch": 1000, "repeat": rep, "labels": True},
            {"name": "ens", "net": "ens", "batch": n_rows, "repeat": 2, "labels": True},
            {"name": "mlp1", "net": "mlp", "batch": 1, "latency": True},
            {"name": "mlpb1", "net": "mlpb", "batch": 1, "latency": True},
            {"name": "cnn1", "net": "cnn", "batch": 1, "latency": True},
        ]
        rows = {}
        x1 = x[:1]
        for t in threads:
            numba.set_num_threads(t)
            with threadpool_limits(limits=t):
                r = rows[t] = {}
                r["qs_bits"] = timed(lambda: clf.predict(x), rep * 2)
                r["qs_f32"] = timed(lambda: np.argmax(x @ w32 + b32, axis=1), rep * 2)
                r["mlp_bits"] = timed(lambda: p_mlp.predict(x1k), rep)
                r["mlp_f32"] = timed(lambda: f32_mlp(x1k), rep)
                r["mlpb_bits"] = timed(lambda: p_mlpb.predict(x1k), rep)
                r["mlpb_f32"] = timed(lambda: f32_mlpb(x1k), rep)
                r["cnn_bits"] = timed(lambda: p_cnn.predict(x1k), rep)
                r["ens_bits"] = timed(lambda: p_ens.predict(x), 2)
                r["mlp1_bits"] = timed_call(lambda: p_mlp.predict(x1))
                r["mlp1_f32"] = timed_call(lambda: f32_mlp(x1))
                r["mlpb1_bits"] = timed_call(lambda: p_mlpb.predict(x1))
                r["mlpb1_f32"] = timed_call(lambda: f32_mlpb(x1))
                r["cnn1_bits"] = timed_call(lambda: p_cnn.predict(x1))
            r.update(run_jax(t, npz, cases))
    la = ", ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"

    def show(title, base_key, items):
        print(f"\n{title}")
        print(f"  {'':<46s} {'threads':>7s} {'wall':>11s} {'CPU':>11s}   {'speed-up':>9s}")
        for label, key in items:
            for t in threads:
                wall, cpu = rows[t][key][:2]
                base = rows[t][base_key][0]
                unit, s = ("ms", 1e3) if wall >= 1e-3 else ("us", 1e6)
                print(
                    f"  {label:<46s} {t:>7d} {wall * s:8.3f} {unit} {cpu * s:8.3f} {unit}"
                    f"   {base / wall:8.2f}x"
                )

    show(
        f"[5] README quickstart: 784x10 softmax, predict on {n_rows:,} float32 test pixels",
        "qs_f32",
        [
            ("numpy float32 x @ W + b, argmax", "qs_f32"),
            ("bayesbin bits.predict (exact k/255 levels)", "qs_bits"),
        ],
    )
    show(
        "[6] BNN MLP 784-512-512-10, batch 1,000, float32 pixels in, labels out",
        "mlp_f32",
        [
            ("numpy float32 (same weights, folded batch norm)", "mlp_f32"),
            ("JAX float32 (jit, CPU)", "mlp"),
            ("bayesbin packed network", "mlp_bits"),
        ],
    )
    print(f"  labels equal to numpy float32: {agree_mlp:.3f} (float32 rounding near a sign)")
    show(
        "[6b] the same MLP trained on binarized pixels (input_threshold=0.5: +1 where x > 0.5), "
        "batch 1,000, float32 pixels in, labels out",
        "mlpb_f32",
        [
            ("numpy float32 (binarize, same weights, folded BN)", "mlpb_f32"),
            ("JAX float32 (jit, CPU)", "mlpb"),
            ("bayesbin packed network (XNOR first layer)", "mlpb_bits"),
        ],
    )
    print(f"  labels equal to numpy float32: {agree_mlpb:.3f}; packed test accuracy "
          f"{np.mean(p_mlpb.predict(x) == y):.4f} ({kinds['mlpb']} network, {n_rows:,} rows)")
    show(
        "[7] CNN 32C3-MP2-64C3-MP2-512FC-SM10, batch 1,000",
        "cnn",
        [("JAX float32 (jit, CPU)", "cnn"), ("bayesbin packed network", "cnn_bits")],
    )
    t0 = threads[0]
    agree = np.mean(np.asarray(rows[t0]["cnn.labels"]) == p_cnn.predict(x1k))
    print(f"  labels equal to JAX float32: {agree:.3f}")
    show(
        f"[8] {n_members}-network ensemble (mean softmax), {n_rows:,} rows",
        "ens",
        [("JAX float32 ensemble (jit, CPU)", "ens"), ("bayesbin packed ensemble", "ens_bits")],
    )
    lab = p_ens.predict(x)
    print(
        f"  accuracy: packed {np.mean(lab == y):.4f}, JAX float32 "
        f"{np.mean(np.asarray(rows[t0]['ens.labels']) == y):.4f} ({kinds['ens']} networks); "
        f"labels equal: {np.mean(lab == np.asarray(rows[t0]['ens.labels'])):.4f}"
    )
    show(
        "[9] batch-1 latency (predict one image)",
        "mlp1_f32",
        [
            ("MLP numpy float32", "mlp1_f32"),
            ("MLP JAX float32", "mlp1"),
            ("MLP bayesbin packed", "mlp1_bits"),
            ("MLP on binarized pixels, numpy float32", "mlpb1_f32"),
            ("MLP on binarized pixels, JAX float32", "mlpb1"),
            ("MLP on binarized pixels, bayesbin packed", "mlpb1_bits"),
        ],
    )
    show("", "cnn1", [("CNN JAX float32", "cnn1"), ("CNN bayesbin packed", "cnn1_bits")])
    print("\n[10] model size: packed (weights + thresholds / batch norm) vs float32")
    for name, net, desc in (("MLP", p_mlp, mlp), ("CNN", p_cnn, cnn)):
        f32 = sum(
            np.asarray(v).size * 4
            for lay in desc["layers"]
            for k, v in lay.items()
            if k in ("weights", "gamma", "beta", "mean", "var")
        )
        print(
            f"  {name}: float32 {f32:,d} bytes, packed {net.storage_bytes:,d} bytes "
            f"({f32 / net.storage_bytes:.1f}x smaller)"
        )
    print(f"\nload average at end: {la}")


if __name__ == "__main__":
    main()
