"""Where a packed network's time goes: one thread, 1,000 MNIST test images, per layer.

Each layer of ``bits.pack_network`` runs on the previous layer's packed output, best of 7 after
a warm-up; the first layer starts from the ``k / 255`` levels of ``load_mnist``'s float32 pixels.

Usage::

    python benchmarks/bench_packed_layers.py                                   # random CNN
    python benchmarks/bench_packed_layers.py --trained /work/runs/nets/bench   # its PBNet MAP net
    python benchmarks/bench_packed_layers.py --net mlp --trained /work/runs/nets/bench
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import bench_bits  # noqa: E402

from bayesbin.bits import pack_network  # noqa: E402


def best_ms(fn, repeat: int = 7) -> float:
    """Best wall time of ``repeat`` calls after a warm-up, in milliseconds."""
    return 1e3 * bench_bits.best_of(fn, repeat)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--net", choices=["cnn", "mlp"], default="cnn")
    ap.add_argument("--trained", default=None, help="bench_nets.py output folder")
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--core", type=int, default=None, help="pin to this core")
    args = ap.parse_args(argv)
    if args.core is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.core})
    rng = np.random.default_rng(2)
    x, _, source = bench_bits.test_pixels(args.rows, rng)
    trained = bench_bits._load_trained(args.trained, 1)
    desc = trained.get(args.net) or (
        bench_bits.cnn_description(rng) if args.net == "cnn" else bench_bits.mlp_description(rng)
    )
    net = pack_network(desc)
    kind = "trained" if args.net in trained else "random"
    print(f"{kind} {args.net}, {args.rows} rows of {source}; load average "
          + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
    print(f"  predict (whole network)    {best_ms(lambda: net.predict(x)):8.1f} ms")
    print(f"  input check (levels)       {best_ms(lambda: net._prepare(x)):8.1f} ms")
    path, data = net._prepare(x)
    first = net.layers[0]
    h = first.run_levels(data.q, data.divisor, 0)
    t = best_ms(lambda: first.run_levels(data.q, data.divisor, 0))
    print(f"  layer 0 {first.kind:7s} on levels {t:8.1f} ms -> {h.shape}")
    for i, lay in enumerate(net.layers[1:], 1):
        hin = h
        t = best_ms(lambda lay=lay, hin=hin: lay.run_bits(hin, 0))
        h = lay.run_bits(hin, 0)
        pool = f", pool {lay.pool}" if lay.pool else ""
        print(f"  layer {i} {lay.kind:7s} on bits   {t:8.1f} ms -> {h.shape}{pool}")


if __name__ == "__main__":
    main()
