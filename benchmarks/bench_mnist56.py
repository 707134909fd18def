"""Benchmark: ESS per CPU second on MNIST56, bayesbin's samplers vs PyMC BinaryGibbsMetropolis.

Run from the repository root::

    python benchmarks/bench_mnist56.py            # about 4 minutes
    python benchmarks/bench_mnist56.py --quick    # smaller budgets, a smoke run

Model: the ``bayesbin.fit`` defaults on MNIST 5 vs 6 as 5x5 bits (11,339 training rows):
``binary_logistic(form="two_output", bias=True, scale=True)``, 50 bits plus bias and log scale.

1. ``bayesbin.find_mode`` (relax-and-round over a scale grid, annealing restarts, profile
   search) gives one start; its CPU time and every candidate's log-posterior are printed.
2. From that start, in this one process, one after the other (``cores=1``, 2 chains each):
   ``sampler="incremental"`` (IncrementalGibbs owning w, b and scale) and
   ``sampler="pymc-gibbs"`` (BinaryGibbsMetropolis on w, NUTS on b and scale), with CPU time
   measured around ``bayesbin.sample`` (tuning included).
3. For reference, ``sampler="incremental"`` from PyMC's initial point (``start="model"``): the
   chains settle in separate local modes.

Reported per run: CPU and wall seconds, bulk ESS and R-hat of ``b``, ``scale`` and the
log-posterior ``lp``, the minimum bulk ESS and maximum R-hat over every quantity that moved
(bits that never flipped in any chain have no ESS), and ESS per CPU second; then the ratios
incremental / BGM of ESS per CPU second for ``b``, ``scale``, ``lp`` and the minimum over the
quantities that moved in both runs. Test accuracy of the posterior predictive is printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import resource
import sys
import time
import warnings

import arviz as az
import numpy as np
import pymc as pm

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # this checkout
import bayesbin
from bayesbin.posterior import posterior_predictive_proba

__all__ = ["main"]


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


def _diagnostics(idata) -> dict:
    """Bulk ESS and R-hat per moving scalar (w entries, b, scale) and of lp."""
    post = idata.posterior
    out = {}
    for name in ("w", "b", "scale"):
        if name not in post:
            continue
        arr = post[name].values.astype(np.float64)
        arr = arr.reshape(arr.shape[0], arr.shape[1], -1)
        for k in range(arr.shape[2]):
            v = arr[:, :, k]
            if np.ptp(v) == 0:
                continue
            label = name if arr.shape[2] == 1 and name != "w" else f"{name}[{k}]"
            if name == "w":
                label = f"w{np.unravel_index(k, post[name].shape[2:])}"
            out[label] = (float(az.ess(v, method="bulk")), float(az.rhat(v)))
    lp = idata.sample_stats["lp"].values
    out["lp"] = (float(az.ess(lp, method="bulk")), float(az.rhat(lp)))
    return out


def run(model, sampler: str, start, draws: int, tune: int, seed: int, x_test, y_test) -> dict:
    """Sample 2 chains sequentially; return timings, diagnostics and accuracy."""
    c0, t0 = _cpu(), time.perf_counter()
    idata = bayesbin.sample(
        model,
        sampler=sampler,
        draws=draws,
        tune=tune,
        chains=2,
        cores=1,
        random_seed=seed,
        progressbar=False,
        start=start,
    )
    cpu, wall = _cpu() - c0, time.perf_counter() - t0
    diag = _diagnostics(idata)
    proba = posterior_predictive_proba(idata, x_test)
    acc = float(np.mean(np.argmax(proba, axis=1) == y_test))
    return {"cpu": cpu, "wall": wall, "diag": diag, "acc": acc, "draws": draws, "tune": tune}


def report(label: str, r: dict) -> None:
    d = r["diag"]
    moving = {k: v for k, v in d.items() if k != "lp"}
    min_ess = min(v[0] for v in moving.values())
    max_rhat = max(v[1] for v in d.values())
    print(f"\n### {label}: {r['tune']} tune + {r['draws']} draws x 2 chains")
    print(f"  CPU {r['cpu']:.1f} s, wall {r['wall']:.1f} s, test accuracy {r['acc']:.4f}")
    print(
        f"  moving quantities: {len(moving)}; max R-hat {max_rhat:.3f}; min bulk ESS {min_ess:.0f}"
    )
    for k in ("b", "scale", "lp"):
        if k in d:
            ess, rhat = d[k]
            print(
                f"  {k:6s} bulk ESS {ess:7.0f}  R-hat {rhat:.3f}  ESS/CPU-s {ess / r['cpu']:9.2f}"
            )
    print(f"  min ESS/CPU-s over moving quantities: {min_ess / r['cpu']:.3f}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller budgets")
    parser.add_argument("--seed", type=int, default=20180913)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    q = args.quick
    print(f"# bench_mnist56  (python {platform.python_version()}, pymc {pm.__version__})")
    print(f"# {_load()} on {os.cpu_count()} cores")
    x, y = bayesbin.load_mnist56("train")
    x_test, y_test = bayesbin.load_mnist56("test")
    model = bayesbin.binary_logistic(x, y, form="two_output", bias=True, scale=True)

    c0 = _cpu()
    mode = bayesbin.find_mode(model, random_seed=args.seed)
    print(f"\n## find_mode: {_cpu() - c0:.1f} CPU s, logp {mode.logp:.2f}")
    for label, lp in zip(mode.candidates, mode.restart_logps, strict=True):
        print(f"  {label:22s} {lp:10.2f}")
    start = dict(mode)

    inc = run(
        model,
        "incremental",
        start,
        300 if q else 2000,
        200 if q else 500,
        args.seed,
        x_test,
        y_test,
    )
    report("incremental from the mode", inc)
    bgm = run(
        model, "pymc-gibbs", start, 100 if q else 500, 100 if q else 300, args.seed, x_test, y_test
    )
    report("pymc-gibbs (BGM + NUTS) from the mode", bgm)
    ref = run(
        model,
        "incremental",
        "model",
        300 if q else 2000,
        200 if q else 500,
        args.seed,
        x_test,
        y_test,
    )
    report("incremental from PyMC's initial point (all bits 1)", ref)

    print("\n## ratio incremental / pymc-gibbs, ESS per CPU second (both from the mode)")
    for k in ("b", "scale", "lp"):
        a, b = inc["diag"][k][0] / inc["cpu"], bgm["diag"][k][0] / bgm["cpu"]
        print(f"  {k:6s} {a:9.2f} / {b:7.3f} = {a / b:8.1f}x")
    common = sorted(set(inc["diag"]) & set(bgm["diag"]) - {"lp"})
    a = min(inc["diag"][k][0] for k in common) / inc["cpu"]
    b = min(bgm["diag"][k][0] for k in common) / bgm["cpu"]
    print(
        f"  min over the {len(common)} quantities moving in both: {a:.2f} / {b:.3f} = {a / b:.1f}x"
    )
    only = sorted(set(inc["diag"]) - set(bgm["diag"]) - {"lp"})
    print(f"  moving only in the incremental run (pair moves): {len(only)}")
    print("\n" + json.dumps({"ess_per_cpu_s_ratio_min_common": a / b}))
    print(f"# {_load()}")


if __name__ == "__main__":
    main()
