"""Benchmark: one exact sweep of IncrementalGibbs vs PyMC BinaryGibbsMetropolis on full MNIST.

Run from the repository root::

    python benchmarks/bench_sweep.py               # 784x10 softmax, n = 60,000 (a few minutes)
    python benchmarks/bench_sweep.py --quick       # 10,000 rows, fewer repeats (smoke run)

Model: ``bayesbin.binary_softmax(x, y, 10, bias=True, scale=0.5)`` on the MNIST training set
(pixels / 255), so a sweep visits 7,840 bits. Timed, single thread (numba kernels are serial;
BLAS is limited to one thread before numpy is imported):

* IncrementalGibbs: ``step.step(point)`` with one sweep per step, random scan, heat-bath, after a
  burn-in of ``--burn`` sweeps from a random start (the first call builds the cache and compiles).
  Reported: median and best wall time per sweep, and CPU time (less sensitive to other load).
* BinaryGibbsMetropolis: the same model, ``step.step(point)`` restricted to ``--bgm-bits``
  random bits (its ``order``), each proposed with ``transit_p = 0.8`` and costing one full model
  logp; per-bit time x 7,840 gives the extrapolated seconds per sweep.
* Phase 2: ``IncrementalGibbs([w, b, scale])`` on the learned-scale model (one sweep plus
  ``continuous_steps`` random-walk proposals on (b, log scale) from the cached activations), and
  for comparison the cost of one logp+gradient of the model in (b, scale), which NUTS pays per
  leapfrog step.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import gzip  # noqa: E402
import pathlib  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import pymc as pm  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # this checkout
import bayesbin  # noqa: E402
from bayesbin.samplers import IncrementalGibbs  # noqa: E402

__all__ = ["main"]

MNIST_DIRS = [
    pathlib.Path("/work/shared/data/mnist"),
    pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist",
]


def _read_idx(path: pathlib.Path) -> np.ndarray:
    with gzip.open(path) as f:
        data = f.read()
    nd = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * nd).reshape(dims)


def load_train() -> tuple[np.ndarray, np.ndarray]:
    """MNIST training set as float64 pixels / 255 and int64 labels."""
    loader = getattr(bayesbin, "load_mnist", None)
    if loader is not None:
        x, y = loader("train", download=False)
        return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.int64)
    for d in MNIST_DIRS:
        img = d / "train-images-idx3-ubyte.gz"
        if img.exists():
            x = _read_idx(img).reshape(-1, 784) / 255.0
            y = _read_idx(d / "train-labels-idx1-ubyte.gz").astype(np.int64)
            return x, y
    raise SystemExit(
        "MNIST IDX files not found (looked in " + ", ".join(map(str, MNIST_DIRS)) + ")"
    )


def _timed(fn, n: int):
    wall, cpu = [], []
    for _ in range(n):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return np.array(wall), np.array(cpu)


def bench_incremental(model, n_sweeps: int, burn: int, seed: int) -> dict:
    t0 = time.perf_counter()
    with model:
        step = IncrementalGibbs([model["w"]], mode="gibbs", scan="random")
    build = time.perf_counter() - t0
    rng = np.random.default_rng(seed)
    step.set_rng(rng)
    point = dict(model.initial_point())
    point["w"] = rng.integers(0, 2, size=point["w"].shape)
    point["b"] = np.log(np.bincount(model_y(model), minlength=10) / model_y(model).size)
    t0 = time.perf_counter()
    point, _ = step.step(point)
    first = time.perf_counter() - t0
    for _ in range(burn):
        point, _ = step.step(point)
    box = {"point": point, "flips": []}

    def one():
        box["point"], stats = step.step(box["point"])
        box["flips"].append(stats[0]["n_flips"])

    wall, cpu = _timed(one, n_sweeps)
    return {
        "build": build,
        "first": first,
        "wall": wall,
        "cpu": cpu,
        "flips": float(np.mean(box["flips"])),
        "point": box["point"],
    }


def model_y(model) -> np.ndarray:
    return np.asarray(model["y"].get_value(), dtype=np.int64)


def bench_bgm(model, point: dict, n_bits: int, repeat: int, seed: int) -> dict:
    with model:
        t0 = time.perf_counter()
        step = pm.BinaryGibbsMetropolis([model["w"]])
        compile_s = time.perf_counter() - t0
    rng = np.random.default_rng(seed)
    step.set_rng(rng)
    step.order = list(rng.choice(step.dim, size=n_bits, replace=False))
    logp = model.compile_logp()
    t0 = time.perf_counter()
    for _ in range(3):
        logp(point)
    one_logp = (time.perf_counter() - t0) / 3
    box = {"point": dict(point)}

    def partial():
        box["point"], _ = step.step(box["point"])

    partial()  # warm-up
    wall, cpu = _timed(partial, repeat)
    return {
        "compile": compile_s,
        "wall": wall,
        "cpu": cpu,
        "bits": n_bits,
        "dim": step.dim,
        "logp": one_logp,
    }


def bench_phase2(x, y, n_steps: int, seed: int) -> dict:
    model = bayesbin.binary_softmax(x, y, 10, bias=True, scale=True)
    with model:
        step = IncrementalGibbs([model["w"], model["b"], model["scale"]])
    rng = np.random.default_rng(seed)
    step.set_rng(rng)
    point = dict(model.initial_point())
    point["w"] = rng.integers(0, 2, size=point["w"].shape)
    point["b"] = np.log(np.bincount(y, minlength=10) / y.size)
    point["scale_log__"] = np.asarray(np.log(0.5))
    step.tune = True
    for _ in range(5):
        point, _ = step.step(point)
    step.stop_tuning()
    box = {"point": point, "acc": []}

    def one():
        box["point"], stats = step.step(box["point"])
        box["acc"].append(stats[0]["cont_accept"])

    wall, cpu = _timed(one, n_steps)
    # NUTS on (b, scale) instead pays one full-data logp + gradient per leapfrog step
    with model:
        fn = model.logp_dlogp_function(
            [model.rvs_to_values[model["b"]], model.rvs_to_values[model["scale"]]],
            ravel_inputs=True,
        )
    fn.set_extra_values({"w": box["point"]["w"]})
    q = np.concatenate([np.ravel(box["point"]["b"]), np.ravel(box["point"]["scale_log__"])])
    fn(q)
    gw, _ = _timed(lambda: fn(q), 5)
    return {
        "wall": wall,
        "cpu": cpu,
        "acc": float(np.mean(box["acc"])),
        "logp_grad": float(np.median(gw)),
        "continuous_steps": step.continuous_steps,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 rows, fewer repeats")
    parser.add_argument("--sweeps", type=int, default=20, help="timed sweeps")
    parser.add_argument("--burn", type=int, default=10, help="untimed sweeps first")
    parser.add_argument("--bgm-bits", type=int, default=50, help="bits in the BGM partial sweep")
    parser.add_argument("--bgm-repeat", type=int, default=2, help="timed BGM partial sweeps")
    parser.add_argument("--phase2-steps", type=int, default=10, help="timed phase-2 steps")
    parser.add_argument("--seed", type=int, default=20240611)
    args = parser.parse_args(argv)

    warnings.simplefilter("ignore")
    x, y = load_train()
    if args.quick:
        x, y = x[:10_000], y[:10_000]
        args.sweeps, args.burn, args.bgm_bits, args.phase2_steps = 5, 3, 20, 3
    n, d = x.shape
    nnz = int(np.count_nonzero(x))
    print(
        f"bench_sweep: MNIST train {n} x {d}, 10 classes, {nnz:,} nonzero pixels; "
        f"python {platform.python_version()}, numpy {np.__version__}, pymc {pm.__version__}, "
        f"{os.cpu_count()} cpus, single thread, load average {os.getloadavg()[0]:.2f}"
    )
    model = bayesbin.binary_softmax(x, y, 10, bias=True, scale=0.5)

    inc = bench_incremental(model, args.sweeps, args.burn, args.seed)
    bits = 10 * d
    print(f"\nIncrementalGibbs (heat-bath, random scan), {bits} bits per sweep")
    print(f"  build step (sparse columns, levels)  {inc['build']:8.2f} s")
    print(f"  first step (cache + numba load)      {inc['first']:8.2f} s")
    print(
        f"  per sweep: median wall {np.median(inc['wall']):.3f} s, best {inc['wall'].min():.3f} s,"
        f" median cpu {np.median(inc['cpu']):.3f} s   ({args.sweeps} sweeps,"
        f" {inc['flips']:.0f} flips per sweep)"
    )

    bgm = bench_bgm(model, inc["point"], args.bgm_bits, args.bgm_repeat, args.seed)
    per_bit = np.median(bgm["wall"]) / bgm["bits"]
    per_bit_cpu = np.median(bgm["cpu"]) / bgm["bits"]
    sweep_bgm = per_bit * bgm["dim"]
    print(
        f"\nPyMC BinaryGibbsMetropolis, partial sweep of {bgm['bits']} random bits x "
        f"{args.bgm_repeat}"
    )
    print(f"  one model logp                       {bgm['logp']:8.3f} s")
    print(
        f"  per bit: wall {per_bit:.4f} s, cpu {per_bit_cpu:.4f} s -> extrapolated sweep of "
        f"{bgm['dim']} bits: {sweep_bgm:,.0f} s"
    )

    med = float(np.median(inc["wall"]))
    print("\nSide by side (seconds per sweep, median wall)")
    print(f"  IncrementalGibbs        {med:10.3f}")
    print(f"  BinaryGibbsMetropolis   {sweep_bgm:10.1f}")
    print(
        f"  ratio                   {sweep_bgm / med:10,.0f}x   (cpu-time ratio "
        f"{per_bit_cpu * bgm['dim'] / float(np.median(inc['cpu'])):,.0f}x)"
    )
    print(
        f"  target <= 0.3 s/sweep: {'met' if med <= 0.3 else 'NOT met'}; "
        f"target ratio >= 4,000x: {'met' if sweep_bgm / med >= 4000 else 'NOT met'}"
    )

    p2 = bench_phase2(x, y, args.phase2_steps, args.seed)
    print(
        f"\nPhase 2: IncrementalGibbs([w, b, scale]), learned scale: one sweep + "
        f"{p2['continuous_steps']} RWM proposals on (b, log scale) per step"
    )
    print(
        f"  per step: median wall {np.median(p2['wall']):.3f} s, median cpu "
        f"{np.median(p2['cpu']):.3f} s, continuous acceptance {p2['acc']:.2f}"
    )
    print(
        f"  NUTS alternative: one full-data logp+gradient in (b, scale) = {p2['logp_grad']:.3f} s"
        " per leapfrog step (times 2^depth per NUTS step)"
    )


if __name__ == "__main__":
    main()
