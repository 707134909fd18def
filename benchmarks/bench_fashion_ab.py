"""Benchmark: bayesbin.fit on full Fashion-MNIST, two source trees side by side (one core each).

Run from the repository root, with the original tree checked out elsewhere::

    python benchmarks/bench_fashion_ab.py /path/to/old/tree . --draws 100 --tune 50

Both fits start at the same moment, each in its own process pinned to its own core (one BLAS,
numba and XLA thread), with the same seed and the estimator's defaults except the number of
draws: 2 chains sampled one after the other (``cores=1``). Reported per tree: CPU seconds of
``find_mode`` and of the whole fit (the import of bayesbin, PyMC and ArviZ before the timer),
test accuracy and the load average. Short chains suffice to compare the cost per sweep; a
default fit (1,000 draws after 500 tuning steps) costs about ten times the sampling part.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

__all__ = ["main"]

CHILD = r"""
import importlib, json, os, sys, time, warnings
tree, draws, tune = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sys.path.insert(0, tree)
import numpy as np
import bayesbin
bayesbin.BayesBinClassifier  # the layered tree imports PyMC lazily: before the timer
import arviz, pymc
import bayesbin.sampling as S
mod = importlib.import_module(
    "bayesbin.mode" if os.path.exists(os.path.join(tree, "bayesbin", "mode.py"))
    else "bayesbin.tempering"
)
spent = {}
orig = mod.find_mode
def timed(*a, **k):
    c = time.process_time()
    out = orig(*a, **k)
    spent["find_mode"] = time.process_time() - c
    return out
mod.find_mode = timed
if hasattr(S, "find_mode"):
    S.find_mode = timed
x, y = bayesbin.load_fashion_mnist("train", download=False)
xt, yt = bayesbin.load_fashion_mnist("test", download=False)
load0 = os.getloadavg()[0]
c0, t0 = time.process_time(), time.time()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    clf = bayesbin.fit(x / 255.0, y, random_seed=0, progressbar=False, draws=draws, tune=tune,
                       cores=1)
cpu, wall = time.process_time() - c0, time.time() - t0
print(json.dumps({"cpu": cpu, "wall": wall, "find_mode": spent.get("find_mode", float("nan")),
                  "accuracy": float(clf.score(xt / 255.0, yt)),
                  "load": [load0, os.getloadavg()[0]]}))
"""


def main() -> None:
    """Start both fits together, one core each, and print a markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", help="source tree of the 'before' bayesbin")
    ap.add_argument("after", help="source tree of the 'after' bayesbin")
    ap.add_argument("--draws", type=int, default=100)
    ap.add_argument("--tune", type=int, default=50)
    args = ap.parse_args()
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = "1"
    cores = sorted(os.sched_getaffinity(0))
    procs = []
    for i, tree in enumerate((args.before, args.after)):
        cmd = [sys.executable, "-c", CHILD, os.path.abspath(tree), str(args.draws), str(args.tune)]
        if len(cores) > 1:
            cmd = ["taskset", "-c", str(cores[i % len(cores)]), *cmd]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                      text=True, env=env))
    rows = []
    for proc in procs:
        out, _ = proc.communicate()
        if proc.returncode:
            raise SystemExit(f"a fit failed (exit {proc.returncode})")
        rows.append(json.loads(out.strip().splitlines()[-1]))
    print(f"{args.draws} draws after {args.tune} tuning steps, 2 chains, one core per tree")
    print("| tree | find_mode CPU s | fit CPU s | sampling and the rest | wall s | accuracy | load |")
    print("|---|---|---|---|---|---|---|")
    for name, tree, row in zip(("before", "after"), (args.before, args.after), rows):
        print(f"| {name} ({tree}) | {row['find_mode']:.0f} | {row['cpu']:.0f} | "
              f"{row['cpu'] - row['find_mode']:.0f} | {row['wall']:.0f} | {row['accuracy']:.4f} | "
              f"{row['load'][0]:.1f}-{row['load'][1]:.1f} |")
    ratio = rows[1]["cpu"] / rows[0]["cpu"]
    print(f"after / before fit CPU: {ratio:.2f}")


if __name__ == "__main__":
    main()
