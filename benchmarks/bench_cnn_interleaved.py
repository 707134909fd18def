"""The packed CNN against JAX float32, interleaved: rounds of (JAX best of N, packed best of N).

One thread on each side (JAX in ``bench_bits``'s single-threaded worker process, numba and BLAS
pinned to one thread here), the PBNet CNN's most likely network of a ``bench_nets.py`` run,
1,000 MNIST test images. Interleaving the two in short rounds keeps a drifting machine from
favouring either side; ``bench_bits.py`` times all JAX cases first and then all packed ones.

Usage::

    python benchmarks/bench_cnn_interleaved.py --trained /work/runs/nets/bench
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import bench_bits  # noqa: E402

from bayesbin.bits import pack_network, reference_forward  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trained", default=None, help="bench_nets.py output folder (else random)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--rows", type=int, default=1000)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(2)
    x, _, source = bench_bits.test_pixels(args.rows, rng)
    trained = bench_bits._load_trained(args.trained, 1)
    cnn = trained.get("cnn") or bench_bits.cnn_description(rng)
    packed = pack_network(cnn)
    assert np.array_equal(packed.decision_function(x[:100]), reference_forward(cnn, x[:100]))
    print(f"{'trained' if 'cnn' in trained else 'random'} CNN, {args.rows} rows of {source}; "
          "load average " + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
    case = {"name": "cnn", "net": "cnn", "batch": args.rows, "repeat": args.repeat}
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        npz = os.path.join(tmp, "nets.npz")
        bench_bits._save_nets(npz, {"cnn": [cnn]}, x)  # the worker reads only the timed net
        for r in range(args.rounds):
            jax_wall = bench_bits.run_jax(1, npz, [case])["cnn"][0]
            bits_wall = bench_bits.best_of(lambda: packed.predict(x), args.repeat)
            ratios.append(jax_wall / bits_wall)
            print(f"round {r + 1}: JAX float32 {1e3 * jax_wall:7.1f} ms   packed "
                  f"{1e3 * bits_wall:6.1f} ms   speed-up {ratios[-1]:.2f}x")
    print(f"speed-up {min(ratios):.2f}x to {max(ratios):.2f}x; load average at end "
          + ", ".join(f"{v:.2f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
