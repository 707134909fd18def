"""Benchmark: replica exchange, two-output pair moves and find_mode on MNIST56 and full MNIST.

Run from the repository root::

    python benchmarks/bench_tempering.py              # MNIST56 + full MNIST (~25 CPU minutes)
    python benchmarks/bench_tempering.py --quick      # smaller budgets (~6 CPU minutes)
    python benchmarks/bench_tempering.py --skip-full  # MNIST56 only (~12 CPU minutes)
    python benchmarks/bench_tempering.py --skip-toy   # full MNIST only (~8 CPU minutes)

Sections:

1. Pair moves (MNIST56, ``binary_logistic(x, y, form="two_output")``, the forum's JAGS form, with
   and without a bias): IncrementalGibbs with ``pair_moves=False`` (single-site only) and ``True``,
   4 chains from dispersed random starts; rank-normalised R-hat over the bits (max, and how many
   bits exceed 1.01), bulk ESS, and how many bits are stuck (constant within every chain but not
   across chains).
2. Equal CPU time (MNIST56, two-output form with a bias, every sampler owns ``w`` and ``b``):
   IncrementalGibbs and ReplicaExchange (R = 4, default ladder, adapted while tuning), each with
   and without pair moves. Same CPU budget per chain, tuning included; 2 chains. Reported: steps,
   accepted flips per step of the cold chain, bits changed per step (flips and swaps), swap
   acceptance per adjacent pair and the final ladder, bulk ESS of the bits (min and median over
   bits that moved; pooled over chains) and of the log-posterior, ESS per CPU second, max R-hat.
3. Full MNIST (``binary_softmax(x, y, 10, bias=True, scale=0.5)``, 7,840 bits, n = 60,000; the
   steps own ``w`` and ``b``): IncrementalGibbs from ``w = 0``; ``find_mode``; then
   IncrementalGibbs and ReplicaExchange (default ladder, and a hotter one with ``beta_min=0.5``)
   at the same CPU budget from the mode: seconds per step, flips per step, swap acceptance,
   log-posterior reached, ESS of the log-posterior.
4. find_mode: CPU and wall time, and its log-posterior against the best draw of the chains
   (MNIST56: section 2's chains; full MNIST: the chain from ``w = 0``).

Steps are driven by ``step.step(point)`` in a loop (no trace backend), BLAS and numba single
threaded. Budgets are CPU seconds of this process (``time.process_time``) because the machine
is shared; wall time is printed too, with ``uptime`` before and after.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import logging  # noqa: E402
import pathlib  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import pymc as pm  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # this checkout
import bayesbin  # noqa: E402
from bayesbin._compat import az  # noqa: E402
from bayesbin.mode import find_mode  # noqa: E402
from bayesbin.samplers import IncrementalGibbs, ReplicaExchange  # noqa: E402

__all__ = ["main"]

warnings.filterwarnings("ignore")
logging.getLogger("pymc").setLevel(logging.ERROR)
_cpu = time.process_time
_wall = time.perf_counter


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:  # pragma: no cover
        return "uptime unavailable"


# ----------------------------------------------------------------------------------------------
# running chains
# ----------------------------------------------------------------------------------------------


def run_chains(step, model, *, chains, tune, seed, draws=None, budget=None, starts=None):
    """Drive ``step`` for ``chains`` chains; stop after ``draws`` draws or ``budget`` CPU s/chain.

    Returns a dict with ``w`` (chains, draws, bits) int8 truncated to the shortest chain, ``lp``
    (chains, draws), the per-draw stats, CPU and wall seconds (all chains, tuning included).
    """
    ws, lps, stats = [], [], []
    cpu0, wall0 = _cpu(), _wall()
    for c in range(chains):
        step.set_rng(np.random.default_rng([seed, c]))
        pt = dict(model.initial_point()) if starts is None else dict(starts[c])
        t_cpu = _cpu()
        for _ in range(tune):
            pt, _ = step.step(pt)
        step.stop_tuning()
        w_c, lp_c, st_c = [], [], []
        while True:
            if draws is not None and len(w_c) >= draws:
                break
            if budget is not None and _cpu() - t_cpu >= budget:
                break
            pt, st = step.step(pt)
            w_c.append(np.asarray(pt["w"], dtype=np.int8).reshape(-1))
            lp_c.append(st[0]["model_logp"])
            st_c.append(st[0])
        ws.append(np.array(w_c))
        lps.append(np.array(lp_c))
        stats.append(st_c)
    n = min(len(x) for x in ws)
    return {
        "w": np.stack([x[:n] for x in ws]),
        "lp": np.stack([x[:n] for x in lps]),
        "stats": [s[:n] for s in stats],
        "cpu": _cpu() - cpu0,
        "wall": _wall() - wall0,
        "draws": n,
    }


def bit_diagnostics(w: np.ndarray) -> dict:
    """R-hat / bulk ESS over the coordinates of (chains, draws, k) discrete draws.

    Coordinates constant over all draws are left out (ESS and R-hat are undefined); ``stuck``
    counts those constant within every chain but not across chains (R-hat infinite).
    """
    chains, _, k = w.shape
    pooled_const = np.all(w == w[:1, :1, :], axis=(0, 1))
    within_const = np.all(w == w[:, :1, :], axis=1).all(axis=0)  # constant in every chain
    stuck = within_const & ~pooled_const
    moving = ~pooled_const
    out = {
        "bits": k,
        "constant": int(pooled_const.sum()),
        "stuck": int(stuck.sum()),
        "rhat_max": float("nan"),
        "rhat_gt": 0,
        "ess_min": float("nan"),
        "ess_med": float("nan"),
    }
    if not moving.any():
        return out
    ds = az.convert_to_dataset({"w": w[:, :, moving].astype(np.float64)})
    ess = az.ess(ds, method="bulk")["w"].values
    ess = np.where(np.isfinite(ess), ess, 0.0)
    out["ess_min"], out["ess_med"] = float(ess.min()), float(np.median(ess))
    if chains > 1:
        rhat = az.rhat(ds)["w"].values
        rhat = np.where(np.isfinite(rhat), rhat, np.inf)
        out["rhat_max"] = float(rhat.max())
        out["rhat_gt"] = int((rhat > 1.01).sum())
    return out


def lp_ess(lp: np.ndarray) -> float:
    if np.all(lp == lp.flat[0]):
        return float("nan")
    return float(az.ess(lp, method="bulk"))


def effective_weights(w: np.ndarray) -> np.ndarray:
    """``w[1, j] - w[0, j]`` of two-output draws (chains, draws, 2 D): the identifiable part."""
    d = w.shape[-1] // 2
    return w[..., d:].astype(np.int8) - w[..., :d].astype(np.int8)


def summarize(run: dict, two_output: bool = False) -> dict:
    st = [s for ch in run["stats"] for s in ch]
    out = {
        "draws": run["draws"],
        "cpu": run["cpu"],
        "wall": run["wall"],
        "flips": float(np.mean([s["n_flips"] for s in st])),
        "pairs": float(np.mean([s["n_pair_flips"] for s in st])),
        "lp_mean": float(run["lp"].mean()),
        "lp_best": float(run["lp"].max()),
        "lp_ess": lp_ess(run["lp"]),
    }
    if "n_changed" in st[0]:
        out["changed"] = float(np.mean([s["n_changed"] for s in st]))
        i = 0
        acc, betas = [], []
        while f"swap_accept_{i}" in st[0]:
            acc.append(float(np.nanmean([s[f"swap_accept_{i}"] for s in st])))
            betas.append(st[-1][f"beta_{i + 1}"])
            i += 1
        out["swap"] = acc
        out["betas"] = [1.0, *betas]
    else:
        w = run["w"]
        out["changed"] = float(np.mean(np.count_nonzero(np.diff(w, axis=1), axis=2)))
    out.update(bit_diagnostics(run["w"]))
    out["lp_chains"] = [float(v) for v in run["lp"].mean(axis=1)]
    if two_output:
        out["d"] = bit_diagnostics(effective_weights(run["w"]))
    return out


def _fmt(x, spec=".3g"):
    if isinstance(x, float) and not np.isfinite(x):
        return "nan" if np.isnan(x) else "inf"
    return format(x, spec)


# ----------------------------------------------------------------------------------------------
# sections
# ----------------------------------------------------------------------------------------------


def dispersed_starts(model, chains, seed):
    rng = np.random.default_rng(seed)
    shape = bayesbin.get_spec(model).weight_shape
    out = []
    for _ in range(chains):
        pt = dict(model.initial_point())
        pt["w"] = rng.integers(0, 2, size=shape)
        out.append(pt)
    return out


def section_pairs(x, y, *, draws, tune, seed):
    print("\n## 1. Pair moves on MNIST56, two-output form (IncrementalGibbs, 4 chains)")
    print(f"   {tune} tuning + {draws} draws per chain, dispersed random starts\n")
    print("   bits w (50):                                    | effective weights d = w1 - w0 (25)")
    header = (
        f"{'model':<15} {'pairs':>5} {'rhat_max':>8} {'#>1.01':>6} {'stuck':>5} "
        f"{'const':>5} {'ess_min':>7} {'ess_med':>7} | {'rhat_max':>8} {'#>1.01':>6} "
        f"{'stuck':>5} {'ess_min':>7} {'ess_med':>7} | {'pairs/st':>8} {'cpu s':>6}  lp per chain"
    )
    print(header)
    results = {}
    for label, bias in (("JAGS (no bias)", False), ("with bias", True)):
        model = bayesbin.binary_logistic(x, y, form="two_output", bias=bias)
        vars_ = [model["w"], model["b"]] if bias else [model["w"]]
        starts = dispersed_starts(model, 4, seed)
        for pairs in (False, True):
            with model:
                step = IncrementalGibbs(vars_, pair_moves=pairs)
            run = run_chains(
                step, model, chains=4, tune=tune, draws=draws, seed=seed, starts=starts
            )
            s = summarize(run, two_output=True)
            results[(label, pairs)] = s
            d = s["d"]
            print(
                f"{label:<15} {pairs!s:>5} {_fmt(s['rhat_max']):>8} {s['rhat_gt']:>6} "
                f"{s['stuck']:>5} {s['constant']:>5} {_fmt(s['ess_min']):>7} "
                f"{_fmt(s['ess_med']):>7} | {_fmt(d['rhat_max']):>8} {d['rhat_gt']:>6} "
                f"{d['stuck']:>5} {_fmt(d['ess_min']):>7} {_fmt(d['ess_med']):>7} | "
                f"{s['pairs']:>8.2f} {s['cpu']:>6.1f}  {np.round(s['lp_chains'], 1).tolist()}"
            )
    return results


def section_equal_time(x, y, *, budget, tune, seed):
    print("\n## 2. Equal CPU time on MNIST56, two-output form with bias (owns w and b)")
    print(f"   {budget:.0f} CPU s per chain incl. {tune} tuning steps, 2 chains, random starts\n")
    model = bayesbin.binary_logistic(x, y, form="two_output", bias=True)
    starts = dispersed_starts(model, 2, seed + 1)
    configs = [
        ("Gibbs, no pairs", lambda: IncrementalGibbs([model["w"], model["b"]], pair_moves=False)),
        ("Gibbs + pairs", lambda: IncrementalGibbs([model["w"], model["b"]])),
        (
            "PT R=4, no pairs",
            lambda: ReplicaExchange([model["w"], model["b"]], pair_moves=False),
        ),
        ("PT R=4 + pairs", lambda: ReplicaExchange([model["w"], model["b"]])),
        (
            "PT R=8 bmin=.1",
            lambda: ReplicaExchange([model["w"], model["b"]], n_replicas=8, beta_min=0.1),
        ),
    ]
    print("   ESS and R-hat of the effective weights d = w1 - w0 (pair moves do not change d)")
    header = (
        f"{'sampler':<17} {'draws':>6} {'ms/step':>8} {'flips':>6} {'changed':>7} "
        f"{'d ess_min':>9} {'d ess_med':>9} {'ESSmed/s':>8} {'lpESS/s':>8} {'d rhat':>7} "
        f"{'stuck':>5} {'lp_best':>9}  lp per chain"
    )
    print(header)
    runs = {}
    for label, make in configs:
        with model:
            step = make()
        run = run_chains(step, model, chains=2, tune=tune, budget=budget, seed=seed, starts=starts)
        s = summarize(run, two_output=True)
        runs[label] = s
        d = s["d"]
        steps = 2 * (tune + s["draws"])
        print(
            f"{label:<17} {s['draws']:>6} {1e3 * s['cpu'] / steps:>8.2f} {s['flips']:>6.2f} "
            f"{s['changed']:>7.2f} {_fmt(d['ess_min']):>9} {_fmt(d['ess_med']):>9} "
            f"{_fmt(d['ess_med'] / s['cpu']):>8} {_fmt(s['lp_ess'] / s['cpu']):>8} "
            f"{_fmt(d['rhat_max']):>7} {d['stuck']:>5} {s['lp_best']:>9.2f}  "
            f"{np.round(s['lp_chains'], 1).tolist()}"
        )
    for label, s in runs.items():
        if "swap" in s:
            print(
                f"   {label}: swap acceptance {np.round(s['swap'], 3).tolist()}, "
                f"ladder {np.round(s['betas'], 4).tolist()}"
            )
    base = runs["Gibbs + pairs"]
    for label in ("PT R=4 + pairs", "PT R=8 bmin=.1", "PT R=4, no pairs", "Gibbs, no pairs"):
        s = runs[label]
        print(
            f"   ratio {label} / Gibbs + pairs: d median-ESS/s "
            f"{_fmt((s['d']['ess_med'] / s['cpu']) / (base['d']['ess_med'] / base['cpu']))}, "
            f"lp ESS/s {_fmt((s['lp_ess'] / s['cpu']) / (base['lp_ess'] / base['cpu']))}, "
            f"mean lp {np.mean(s['lp_chains']) - np.mean(base['lp_chains']):+.1f} nats"
        )
    return model, runs


def section_find_mode(model, runs, label, *, n_sweeps, restarts, seed):
    c0, w0 = _cpu(), _wall()
    mode = find_mode(model, method="anneal", n_sweeps=n_sweeps, restarts=restarts, random_seed=seed)
    cpu, wall = _cpu() - c0, _wall() - w0
    best = max(s["lp_best"] for s in runs.values())
    print(
        f"   find_mode({label}, n_sweeps={n_sweeps}, restarts={restarts}): {cpu:.1f} CPU s "
        f"({wall:.1f} wall s), log-posterior {mode.logp:.3f}; restarts "
        f"{np.round(mode.restart_logps, 3).tolist()}; best chain draw {best:.3f}; "
        f"difference {mode.logp - best:+.3f}"
    )
    return mode


def load_full():
    x, y = bayesbin.load_mnist("train", download=False)
    return np.asarray(x, dtype=np.float64), np.asarray(y)


def section_full(*, budget, tune, seed, n_sweeps):
    print("\n## 3. Full MNIST softmax 784x10, bias=True, scale=0.5 (7,840 bits, n = 60,000)")
    try:
        x, y = load_full()
    except Exception as exc:  # noqa: BLE001
        print(f"   skipped: {exc}")
        return
    model = bayesbin.binary_softmax(x, y, 10, bias=True, scale=0.5)
    print(
        f"   {budget:.0f} CPU s per run incl. {tune} tuning steps, 1 chain; first from w = 0, "
        "then every sampler from the find_mode point\n"
    )
    configs = [
        ("Gibbs", lambda: IncrementalGibbs([model["w"], model["b"]])),
        ("PT R=4 default", lambda: ReplicaExchange([model["w"], model["b"]])),
        ("PT R=4 bmin=0.5", lambda: ReplicaExchange([model["w"], model["b"]], beta_min=0.5)),
    ]
    header = (
        f"{'sampler':<16} {'start':<5} {'draws':>6} {'s/step':>7} {'flips':>7} {'changed':>8} "
        f"{'lp_mean':>10} {'lp_best':>10} {'lpESS':>6} {'swap acceptance':<24} {'ladder'}"
    )

    def one(label, make, start_label, starts):
        with model:
            step = make()
        run = run_chains(step, model, chains=1, tune=tune, budget=budget, seed=seed, starts=starts)
        s = summarize(run)
        swap = np.round(s.get("swap", []), 3).tolist()
        ladder = np.round(s.get("betas", [1.0]), 3).tolist()
        print(
            f"{label:<16} {start_label:<5} {s['draws']:>6} {s['cpu'] / (tune + s['draws']):>7.3f} "
            f"{s['flips']:>7.1f} {s['changed']:>8.1f} {s['lp_mean']:>10.1f} "
            f"{s['lp_best']:>10.1f} {_fmt(s['lp_ess']):>6} {swap!s:<24} {ladder}"
        )
        return s

    print(header)
    runs = {"Gibbs from w=0": one(*configs[0], "w=0", None)}
    print("\n## 4b. find_mode on full MNIST (against the chain from w = 0)")
    mode = section_find_mode(model, runs, "MNIST", n_sweeps=n_sweeps, restarts=1, seed=seed)
    start = dict(model.initial_point())
    start["w"] = mode["w"]
    start["b"] = mode["b"]
    print("\n   from the mode:")
    print(header)
    for label, make in configs:
        s = one(label, make, "mode", [start])
        print(f"{'':<23}best draw - mode log-posterior: {s['lp_best'] - mode.logp:+.2f}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller budgets")
    parser.add_argument("--skip-full", action="store_true", help="MNIST56 only")
    parser.add_argument("--skip-toy", action="store_true", help="full MNIST only")
    parser.add_argument("--seed", type=int, default=20240611)
    args = parser.parse_args(argv)
    q = args.quick
    print(f"# bench_tempering  ({platform.python_version()}, pymc {pm.__version__})")
    print(f"# start: {_uptime()}  (cpus: {os.cpu_count()})")
    t0c, t0w = _cpu(), _wall()
    if not args.skip_toy:
        x, y = bayesbin.load_mnist56("train")
        section_pairs(x, y, draws=300 if q else 1000, tune=100 if q else 200, seed=args.seed)
        model, runs = section_equal_time(
            x, y, budget=10.0 if q else 40.0, tune=100 if q else 200, seed=args.seed
        )
        print("\n## 4a. find_mode on MNIST56 (two-output with bias)")
        for restarts in (4, 16):
            section_find_mode(
                model, runs, "MNIST56", n_sweeps=200, restarts=restarts, seed=args.seed
            )
    if not args.skip_full:
        section_full(
            budget=30.0 if q else 100.0,
            tune=10 if q else 30,
            seed=args.seed,
            n_sweeps=50 if q else 200,
        )
    print(f"\n# total: {_cpu() - t0c:.0f} CPU s, {_wall() - t0w:.0f} wall s")
    print(f"# end: {_uptime()}")


if __name__ == "__main__":
    main()
