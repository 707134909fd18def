"""Benchmark: the floor under the README quickstart's packed prediction (one thread).

Run from the repository root (needs the MNIST files)::

    python benchmarks/bench_quickstart_floor.py

Times, on the 10,000 MNIST test images as ``load_mnist`` returns them (float32 ``k / 255``), best
of 30: one read of the pixels (``x.max()``, a numba loop that only reads and compares,
``x.copy()``), the float32 matmul + argmax of the README's baseline, and ``bits.predict`` of a
small fitted model. Any exact packed path must read every value and prove it is a ``k / 255``
level, so the first rows bound what ``bits.predict`` can gain over the matmul.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import time  # noqa: E402

import numba as nb  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["main"]


@nb.njit
def _read_max(a):
    m = np.float32(0)
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            if a[i, j] > m:
                m = a[i, j]
    return m


def _best(f, n=30) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return min(times) * 1e3


def main() -> None:
    """Print the timings in ms and the load average."""
    import bayesbin

    xt, _ = bayesbin.load_mnist("test", download=False)
    x, y = bayesbin.load_mnist("train", download=False)
    w = np.random.default_rng(0).standard_normal((xt.shape[1], 10)).astype(np.float32)
    _read_max(xt)
    clf = bayesbin.fit(x[:2000], y[:2000], classes=10, draws=20, tune=10, progressbar=False,
                       random_seed=0)
    bits = clf.to_bits()
    bits.predict(xt)
    rows = {
        "x.max() (one read)": lambda: xt.max(),
        "numba loop: read and compare": lambda: _read_max(xt),
        "x.copy()": lambda: xt.copy(),
        "float32 matmul + argmax": lambda: np.argmax(xt @ w, axis=1),
        "bits.predict": lambda: bits.predict(xt),
    }
    print(f"10,000 x 784 float32, one thread, best of 30, load {os.getloadavg()[0]:.1f}")
    for name, f in rows.items():
        print(f"| {name} | {_best(f):.2f} ms |")


if __name__ == "__main__":
    main()
