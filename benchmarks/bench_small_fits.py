"""Benchmark: bayesbin.fit with its defaults on data nobody here prepared (CPU, accuracy, mixing).

Run from the repository root::

    python benchmarks/bench_small_fits.py                 # digits /16 and raw 0..16
    python benchmarks/bench_small_fits.py --fashion       # also full Fashion-MNIST (minutes)

Each fit runs in a fresh process, as a user would run it: no thread pinning, the estimator's
defaults (1,000 draws after 500 tuning steps, 2 chains in 2 processes, start at find_mode).
Reported: wall time, CPU time of the fit in the process plus its sampling workers
(``RUSAGE_CHILDREN``), with the one-off import of bayesbin, PyMC and ArviZ outside it (the
original tree imported PyMC at ``import bayesbin``, the layered one on first use: both are
timed after it) and shown in its own column,
test accuracy against scikit-learn's LogisticRegression on the same split, and what the
convergence checks found. Quote the load average beside the times: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys

import numpy as np

__all__ = ["main"]

CHILD = r"""
import json, os, resource, sys, time, warnings
sys.path.insert(0, sys.argv[1])
c_import = time.process_time()
import numpy as np
import bayesbin
bayesbin.BayesBinClassifier  # PyMC and ArviZ load lazily since P5: import them outside the fit
import arviz, pymc
c_import = time.process_time() - c_import
name, div = sys.argv[2], float(sys.argv[3])
if name in ("digits", "breast"):
    from sklearn.datasets import load_breast_cancer, load_digits
    from sklearn.model_selection import train_test_split
    x, y = (load_digits if name == "digits" else load_breast_cancer)(return_X_y=True)
    x, xt, y, yt = train_test_split(x, y, test_size=0.25, random_state=0)
    if div == 0.0:  # min-max scaling fitted on the training rows
        lo, hi = x.min(axis=0), x.max(axis=0)
        span = np.where(hi > lo, hi - lo, 1.0)
        x, xt, div = (x - lo) / span, (xt - lo) / span, 1.0
else:
    x, y = bayesbin.load_fashion_mnist("train", download=False)
    xt, yt = bayesbin.load_fashion_mnist("test", download=False)
x, xt = x / div, xt / div
load0 = os.getloadavg()[0]
t0, c0 = time.time(), time.process_time()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    clf = bayesbin.fit(x, y, random_seed=0, progressbar=False)
wall, cpu = time.time() - t0, time.process_time() - c0
kids = resource.getrusage(resource.RUSAGE_CHILDREN)
acc = float(clf.score(xt, yt))
conv = json.loads(clf.idata_.posterior.attrs.get("bayesbin_convergence", "{}"))
said = [str(w.message)[:160] for w in caught if "trust" in str(w.message)]
print(json.dumps({
    "wall": wall, "cpu": cpu + kids.ru_utime + kids.ru_stime, "accuracy": acc, "import": c_import,
    "problems": len(conv.get("problems", [])), "warned": bool(said),
    "load": [load0, os.getloadavg()[0]], "rows": int(x.shape[0]),
}))
"""


def _baseline(name: str, div: float) -> float:
    """LogisticRegression's test accuracy on the same split."""
    from sklearn.linear_model import LogisticRegression

    if name in ("digits", "breast"):
        from sklearn.datasets import load_breast_cancer, load_digits
        from sklearn.model_selection import train_test_split

        x, y = (load_digits if name == "digits" else load_breast_cancer)(return_X_y=True)
        x, xt, y, yt = train_test_split(x, y, test_size=0.25, random_state=0)
        if div == 0.0:
            lo, hi = x.min(axis=0), x.max(axis=0)
            span = np.where(hi > lo, hi - lo, 1.0)
            x, xt, div = (x - lo) / span, (xt - lo) / span, 1.0
    else:
        sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
        import bayesbin

        x, y = bayesbin.load_fashion_mnist("train", download=False)
        xt, yt = bayesbin.load_fashion_mnist("test", download=False)
    clf = LogisticRegression(max_iter=2000).fit(x / div, y)
    return float(clf.score(xt / div, yt))


def main() -> None:
    """Fit each case in a fresh process and print a markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fashion", action="store_true", help="also full Fashion-MNIST")
    ap.add_argument(
        "--tree",
        default=str(pathlib.Path(__file__).resolve().parents[1]),
        help="checkout whose bayesbin to run (default: this one)",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="fits per case, each in a fresh process; the table shows the one of least CPU "
        "(this machine's speed drifts by tens of percent from minute to minute)",
    )
    ap.add_argument("--only", choices=("digits", "breast"), help="only this small data set")
    args = ap.parse_args()
    cases = [("digits", 16.0), ("digits", 1.0), ("breast", 1.0), ("breast", 0.0)]
    if args.only:
        cases = [c for c in cases if c[0] == args.only]
    if args.fashion:
        cases.append(("fashion", 255.0))
    print(f"bayesbin from {args.tree}; python {sys.version.split()[0]}; {os.cpu_count()} cpus")
    print(
        "| data | inputs | wall s | CPU s | import CPU s | test acc | LogisticRegression "
        "| said 'do not trust' | load |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, div in cases:
        runs = []
        for _ in range(max(args.repeat, 1)):
            out = subprocess.run(
                [sys.executable, "-c", CHILD, args.tree, name, str(div)],
                capture_output=True,
                text=True,
                check=True,
            )
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        row = min(runs, key=lambda r: r["cpu"])
        if len(runs) > 1:
            cpus = ", ".join(f"{r['cpu']:.1f}" for r in runs)
            print(f"  ({name} {div:g}: CPU s of the {len(runs)} fits: {cpus})", file=sys.stderr)
        inputs = {1.0: "raw", 0.0: "min-max scaled"}.get(div, f"/ {div:g}")
        print(
            f"| {name} ({row['rows']} rows) | {inputs} | {row['wall']:.1f} | {row['cpu']:.1f} | "
            f"{row['import']:.1f} | "
            f"{row['accuracy']:.3f} | {_baseline(name, div):.3f} | "
            f"{'yes' if row['warned'] else 'no'} | {row['load'][0]:.1f}-{row['load'][1]:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
