"""Benchmark: the AVX2 hidden dense kernel (bayesbin.bits.simdkernels) vs the shipped one.

Run from the repository root (one thread; AVX2 host)::

    python benchmarks/bench_simd.py

Prints, best of ``--repeat`` after warm-up, ``--rounds`` interleaved rounds (the minimum over
rounds, then each round's ratio):

* one hidden dense layer 784 -> 512 and 512 -> 512 at n = 1,000 rows: the shipped
  ``dense_bits_serial`` vs ``dense_tbl_serial`` (outputs checked identical);
* the whole packed MLP 784-512-512-10 behind a ``binarize`` input step (random weights and batch
  norm, ``bench_bits.mlp_description``), SIMD off (``simdkernels.set_enabled(False)``) and on,
  vs numpy float32 (``bench_bits.numpy_forward``).

``os.getloadavg()`` is printed before and after.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

if __name__ == "__main__":  # benchmark the checkout this script lives in
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

__all__ = ["main"]


def _layer_case(rng, n_in: int, u: int, n: int):
    win = (n_in + 63) // 64

    def bits(rows):
        b = rng.integers(0, 2, size=(rows, win * 64), dtype=np.uint8)
        b[:, n_in:] = 0
        return np.packbits(b, axis=1, bitorder="little").view("<u8").astype(np.uint64)

    x = np.ascontiguousarray(bits(n))
    wt = np.ascontiguousarray(bits(u).T)
    s = int(np.sqrt(n_in))
    tau = rng.integers(-s, s + 1, size=u).astype(np.int64)
    flip = rng.integers(0, 2, size=u).astype(np.uint8)
    return x, wt, tau, flip


def _rounds(fns: dict, rounds: int, repeat: int, best_of) -> dict:
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            times[k].append(best_of(f, repeat))
    return times


def _print(title: str, times: dict, base: str) -> None:
    print(title)
    for k, ts in times.items():
        ratios = " ".join(f"{a / b:.2f}" for a, b in zip(times[base], ts))
        print(f"  {k:28s} {min(ts) * 1e3:8.3f} ms  {min(times[base]) / min(ts):5.2f}x  ({ratios})")


def _layer_bench(rng, n_in: int, u: int, args, best_of) -> None:
    from bayesbin.bits import netkernels as nk
    from bayesbin.bits import simdkernels as sk

    x, wt, tau, flip = _layer_case(rng, n_in, u, args.n)
    out_a = np.empty((args.n, u // 64), np.uint64)
    out_b = np.empty_like(out_a)
    no_scores = np.empty((0, u), np.int64)
    t0 = time.perf_counter()
    ws, lim, fw = sk.prep_weights(wt, n_in, tau, flip)
    t_prep = time.perf_counter() - t0
    t0 = time.perf_counter()
    sk.dense_tbl_serial(x, ws, lim, fw, out_b, sk.TABLES)
    t_first = time.perf_counter() - t0
    nk.dense_bits_serial(x, wt, n_in, tau, flip, out_a, no_scores)
    assert np.array_equal(out_a, out_b), "SIMD kernel differs from the shipped kernel"
    fns = {
        "shipped dense_bits_serial": lambda: nk.dense_bits_serial(
            x, wt, n_in, tau, flip, out_a, no_scores
        ),
        "simd dense_tbl_serial": lambda: sk.dense_tbl_serial(x, ws, lim, fw, out_b, sk.TABLES),
    }
    times = _rounds(fns, args.rounds, args.repeat, best_of)
    _print(
        f"hidden dense {n_in} -> {u}, n = {args.n} (prep_weights {t_prep * 1e3:.1f} ms, "
        f"first SIMD call {t_first * 1e3:.0f} ms incl. compile/cache load), identical outputs",
        times,
        "shipped dense_bits_serial",
    )


def main(argv=None) -> None:
    from bench_bits import best_of, mlp_description, numpy_forward

    from bayesbin.bits import pack_network
    from bayesbin.bits import simdkernels as sk

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    print(f"load average {os.getloadavg()}")
    if not sk.available():
        print("simdkernels.available() is False on this host: nothing to compare")
        return
    rng = np.random.default_rng(0)
    for n_in, u in [(784, 512), (512, 512)]:
        _layer_bench(rng, n_in, u, args, best_of)
    desc = mlp_description(rng)
    desc = {**desc, "layers": [{"kind": "binarize", "threshold": 0.5}, *desc["layers"]]}
    xf = rng.random((args.n, 784)).astype(np.float32)
    net = pack_network(desc)
    npf = numpy_forward(desc)

    def packed(flag):
        def run():
            sk.set_enabled(flag)
            return net.predict(xf)

        return run

    sk.set_enabled(False)
    p_off = net.predict(xf)
    sk.set_enabled(True)
    p_on = net.predict(xf)
    assert np.array_equal(p_off, p_on)
    agree = float(np.mean(p_on == npf(xf)))
    times = _rounds(
        {
            "numpy float32": lambda: npf(xf),
            "packed, shipped kernels": packed(False),
            "packed, SIMD hidden layers": packed(True),
        },
        args.rounds,
        args.repeat,
        best_of,
    )
    sk.set_enabled(True)
    _print(
        f"MLP 784-512-512-10, binarize(0.5) input, predict n = {args.n} "
        f"(packed == numpy float32 on {agree:.1%} of rows)",
        times,
        "numpy float32",
    )
    print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
