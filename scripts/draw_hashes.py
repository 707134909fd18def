"""Print hashes of seeded draws, to show a refactor leaves the samplers' output unchanged.

Run from the repository root, before and after a change, and compare::

    python scripts/draw_hashes.py

Each line hashes the posterior ``w``, ``b``, ``scale`` and ``sample_stats["lp"]`` of one seeded
run of :func:`bayesbin.sample` (one process, chains in sequence), plus ``find_mode``'s start.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import hashlib  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # this checkout
import bayesbin  # noqa: E402

__all__ = ["main"]


def _digest(result) -> str:
    h = hashlib.sha256()
    post = result.posterior
    for name in ("w", "b", "scale"):
        if name in post:
            h.update(np.ascontiguousarray(post[name].values).tobytes())
    h.update(np.ascontiguousarray(result.sample_stats["lp"].values, dtype=np.float64).tobytes())
    return h.hexdigest()[:16]


def _cases():
    x, y = bayesbin.load_mnist56("train")
    yield (
        "mnist56 two_output incremental",
        bayesbin.binary_logistic(x, y, form="two_output", bias=True, scale=True),
        "incremental",
    )
    yield (
        "mnist56 two_output tempering",
        bayesbin.binary_logistic(x[:2000], y[:2000], form="two_output", bias=True, scale=True),
        "tempering",
    )
    rng = np.random.default_rng(3)
    xs = (rng.random((600, 12)) < 0.4).astype(float) * rng.integers(1, 4, (600, 12)) / 3.0
    ys = np.argmax(xs[:, :3] + 0.5 * rng.random((600, 3)), axis=1)
    yield (
        "softmax incremental",
        bayesbin.binary_softmax(xs, ys, 3, bias=True, scale=True),
        "incremental",
    )
    yield "softmax dmala", bayesbin.binary_softmax(xs, ys, 3, bias=True, scale=0.7), "dmala"
    yield (
        "single pm1 incremental",
        bayesbin.binary_logistic(
            xs, (ys == 0).astype(int), form="single", encoding="pm1", scale=0.5
        ),
        "incremental",
    )


def main() -> None:
    """Sample every case with a fixed seed and print one hash per case."""
    warnings.simplefilter("ignore")
    for label, model, sampler in _cases():
        res = bayesbin.sample(
            model,
            sampler=sampler,
            draws=150,
            tune=150,
            chains=2,
            cores=1,
            random_seed=7,
            progressbar=False,
        )
        start = json.loads(res.posterior.attrs.get("bayesbin_start", "{}"))
        start.pop("cpu_seconds", None)  # timing, not a result
        sh = hashlib.sha256(json.dumps(start, sort_keys=True).encode()).hexdigest()[:8]
        print(f"{label:34s} draws {_digest(res)}  start {sh}", flush=True)


if __name__ == "__main__":
    main()
