"""Benchmark: DMALA (bayesbin.DiscreteLangevin) on MNIST56 and full MNIST.

Run from the repository root::

    python benchmarks/bench_dmala.py                 # MNIST56 + full MNIST (~15 minutes)
    python benchmarks/bench_dmala.py --quick         # smaller budgets (~4 minutes)
    python benchmarks/bench_dmala.py --skip-full     # MNIST56 only

MNIST56 model: ``bayesbin.binary_logistic(x, y, encoding="pm1")`` (25 bits, n = 11,339, the
untempered posterior). Sections:

1. The pitfall: the paper's DMALA with one fixed ``alpha`` (no adaptation, no curvature
   correction), from PyMC's initial point and from the best mode found by greedy single-bit
   ascent: acceptance, proposed flips and accepted ("moved") flips per step.
2. The fixes, from the same two starts: ``alpha`` adapted while tuning (dual averaging to a
   target acceptance), a cap on expected flips, the per-coordinate curvature correction (the
   default), and a tempered likelihood (``beta = 100 / n``; NOT the posterior).
3. ESS per second against PyMC ``BinaryGibbsMetropolis`` with the same CPU-time budget per
   chain (tuning included), two chains from each start; ESS over the bits that moved, pooled
   over chains (chains stuck in different modes give a small ESS, as they should).

4. Small models (a generic two-variable Gaussian model with 5 bits, pm1 logistic models with
   10, 40 and 100 bits on 200 rows): ESS per CPU second through ``pm.sample``.

Full MNIST: ``bayesbin.binary_softmax(x, y, 10, bias=True, scale=0.5)`` (7,840 bits,
n = 60,000) with the bias held at the log class frequencies; the cost of one logp+gradient and
of one BinaryGibbsMetropolis logp, and DMALA (fixed alpha grid, then the default with tuning):
seconds per step, acceptance, flips per step, log posterior reached.

Steps are driven by ``step.step(point)`` in a loop (no trace backend), single-threaded BLAS.
Times and budgets are CPU seconds of this process (``time.process_time``), so that other jobs
on a shared machine do not bias the comparison.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import logging  # noqa: E402
import pathlib  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import pymc as pm  # noqa: E402
from scipy.special import log_expit  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # this checkout
import bayesbin  # noqa: E402
from bayesbin._compat import az  # noqa: E402
from bayesbin.samplers import DiscreteLangevin, TemperedTargetWarning  # noqa: E402

__all__ = ["main"]

# CPU time of this process: other jobs on a shared 2-core machine inflate wall-clock times
# unevenly between samplers; BLAS is single-threaded, so CPU time is the cost.
_clock = time.process_time

warnings.filterwarnings("ignore", message=".*could not link to a BLAS.*")
warnings.filterwarnings("ignore", category=TemperedTargetWarning)
logging.getLogger("pymc").setLevel(logging.ERROR)


# ----------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------


def load_mnist56() -> tuple[np.ndarray, np.ndarray]:
    """MNIST56 training rows (x float64 (11339, 25) in {0, 1}, y int64: 1 for the digit 6)."""
    from bayesbin.data import load_mnist56 as loader

    return loader("train")


def greedy_mode(x: np.ndarray, y: np.ndarray, restarts: int, seed: int = 0) -> np.ndarray:
    """Best local maximum of the pm1 single-vector logistic log-likelihood (single-bit ascent)."""
    rng = np.random.default_rng(seed)

    def lp(w):
        eta = x @ (2.0 * w - 1.0)
        return float(np.sum(y * log_expit(eta) + (1 - y) * log_expit(-eta)))

    best_w, best = None, -np.inf
    for _ in range(restarts):
        w = rng.integers(0, 2, x.shape[1]).astype(float)
        cur = lp(w)
        improved = True
        while improved:
            improved = False
            for i in rng.permutation(x.shape[1]):
                w[i] = 1 - w[i]
                new = lp(w)
                if new > cur:
                    cur, improved = new, True
                else:
                    w[i] = 1 - w[i]
        if cur > best:
            best_w, best = w.copy(), cur
    return best_w.astype(np.int64)


# ----------------------------------------------------------------------------------------------
# drivers
# ----------------------------------------------------------------------------------------------


def run_dmala(model, start, *, tune, draws, seed, budget=None, **kwargs):
    """Drive a DiscreteLangevin step: (w draws (n, k), stats list, seconds, step)."""
    with model:
        step = DiscreteLangevin([model["w"]], **kwargs)
    step.set_rng(np.random.default_rng(seed))
    step.tune = tune > 0
    point = dict(model.initial_point())
    point["w"] = np.asarray(start).copy()
    ws, stats = [], []
    t0 = _clock()
    i = 0
    while True:
        if i == tune:
            step.stop_tuning()
        point, st = step.step(point)
        i += 1
        if i > tune:
            ws.append(point["w"].ravel().copy())
            stats.append(st[0])
        elapsed = _clock() - t0
        if budget is not None:
            if elapsed >= budget and i > tune:
                break
        elif i >= tune + draws:
            break
    return np.array(ws), stats, _clock() - t0, step


def run_bgm(model, start, *, budget, seed):
    """Drive PyMC BinaryGibbsMetropolis for ``budget`` seconds: (w draws, seconds)."""
    with model:
        step = pm.BinaryGibbsMetropolis([model["w"]])
    step.set_rng(np.random.default_rng(seed))
    point = dict(model.initial_point())
    point["w"] = np.asarray(start).copy()
    ws = []
    t0 = _clock()
    while _clock() - t0 < budget:
        point, _ = step.step(point)
        ws.append(point["w"].ravel().copy())
    return np.array(ws), _clock() - t0


def summarize(stats) -> dict:
    acc = np.array([s["accepted"] for s in stats], dtype=float)
    nf = np.array([s["n_flips"] for s in stats], dtype=float)
    return {
        "accept_rate": acc.mean(),
        "mean_accept_prob": float(np.mean([s["accept"] for s in stats])),
        "proposed_flips": nf.mean(),
        "moved_flips": (nf * acc).mean(),
        "alpha": stats[-1]["alpha"],
        "lp_last": stats[-1]["lp"],
    }


def ess_bits(chains: list[np.ndarray]) -> tuple[float, float, int]:
    """Min and median bulk ESS over bits that are not constant across all chains."""
    n = min(len(c) for c in chains)
    arr = np.stack([c[:n] for c in chains]).astype(float)  # (chains, draws, k)
    ess = []
    for j in range(arr.shape[2]):
        b = arr[:, :, j]
        if np.all(b == b.flat[0]):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            e = float(az.ess(b, method="bulk"))
        ess.append(e if np.isfinite(e) else 0.0)
    if not ess:
        return 0.0, 0.0, 0
    return float(np.min(ess)), float(np.median(ess)), len(ess)


def _model_lp(model):
    f = model.compile_logp()

    def lp(w):
        p = dict(model.initial_point())
        p["w"] = np.asarray(w)
        return float(f(p))

    return lp


# ----------------------------------------------------------------------------------------------
# sections
# ----------------------------------------------------------------------------------------------


def mnist56(args) -> None:
    x, y = load_mnist56()
    n = x.shape[0]
    model = bayesbin.binary_logistic(x, y, encoding="pm1")
    lp = _model_lp(model)
    init = np.asarray(model.initial_point()["w"])
    t0 = _clock()
    mode = greedy_mode(x, y, restarts=args.restarts)
    print(f"MNIST56: n = {n}, 25 bits, encoding pm1, untempered.")
    print(
        f"  greedy single-bit ascent ({args.restarts} restarts, "
        f"{_clock() - t0:.1f} s): best mode lp = {lp(mode):.1f}; "
        f"PyMC initial point (all ones) lp = {lp(init):.1f}"
    )
    starts = {"init": init, "mode": mode}

    print(
        "\n[1] The pitfall: paper DMALA, one fixed alpha, no adaptation "
        f"({args.pitfall_steps} steps)"
    )
    print(
        f"  {'start':5s} {'alpha':>8s} {'accept':>7s} {'proposed':>9s} {'moved':>7s} "
        f"{'lp_last':>10s}"
    )
    for sname, start in starts.items():
        for alpha in (1e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 1e-1):
            _, st, _, _ = run_dmala(
                model,
                start,
                tune=0,
                draws=args.pitfall_steps,
                seed=1,
                alpha=alpha,
                adapt=False,
                precondition=False,
            )
            s = summarize(st)
            print(
                f"  {sname:5s} {alpha:8.0e} {s['accept_rate']:7.3f} {s['proposed_flips']:9.3f} "
                f"{s['moved_flips']:7.3f} {s['lp_last']:10.1f}"
            )

    print(f"\n[2] Fixes (tune {args.tune}, then {args.draws} frozen draws; per-draw means)")
    variants = {
        "adapted alpha (dual averaging, target 0.5)": {"precondition": False},
        "adapted alpha + max_flips=1": {"precondition": False, "max_flips": 1.0},
        "curvature correction + adapted alpha (default)": {},
        "tempered beta=100/n, plain + adapted alpha (NOT post.)": {
            "precondition": False,
            "beta": 100.0 / n,
        },
        "tempered beta=100/n, default (NOT posterior)": {"beta": 100.0 / n},
    }
    print(
        f"  {'variant':54s} {'start':5s} {'accept':>7s} {'proposed':>9s} {'moved':>7s} "
        f"{'alpha':>9s} {'ms/step':>8s} {'lp_last':>10s}"
    )
    for vname, kw in variants.items():
        for sname, start in starts.items():
            ws, st, sec, _ = run_dmala(model, start, tune=args.tune, draws=args.draws, seed=2, **kw)
            s = summarize(st)
            lp_last = lp(ws[-1])  # the untempered log posterior, also for the tempered chain
            print(
                f"  {vname:54s} {sname:5s} {s['accept_rate']:7.3f} {s['proposed_flips']:9.3f} "
                f"{s['moved_flips']:7.3f} {s['alpha']:9.3g} "
                f"{1e3 * sec / (args.tune + args.draws):8.2f} {lp_last:10.1f}"
            )

    print(
        f"\n[3] ESS/s, same CPU-time budget: {args.budget:.0f} s per chain, 2 chains per "
        "start (DMALA: tuning included in the budget; the first quarter of each chain's "
        "draws discarded as warm-up for both samplers)"
    )
    print(
        f"  {'sampler':24s} {'start':5s} {'draws':>7s} {'draws/s':>8s} {'moved/s':>8s} "
        f"{'bits':>4s} {'minESS':>7s} {'medESS':>7s} {'minESS/s':>9s} {'medESS/s':>9s} "
        f"{'lp_mean':>10s}"
    )
    for sname, start in starts.items():
        rows = {}
        for sampler in ("BinaryGibbsMetropolis", "DMALA (default)"):
            chains, secs, moved = [], 0.0, 0.0
            for c in range(2):
                if sampler == "DMALA (default)":
                    ws, st, sec, _ = run_dmala(
                        model, start, tune=args.tune, draws=0, seed=10 + c, budget=args.budget
                    )
                    moved += sum(s["n_flips"] * s["accepted"] for s in st)
                else:
                    ws, sec = run_bgm(model, start, budget=args.budget, seed=10 + c)
                    moved += float(np.abs(np.diff(ws.astype(int), axis=0)).sum())
                chains.append(ws[len(ws) // 4 :])
                secs += sec
            mn, md, nb = ess_bits(chains)
            nd = sum(len(c) for c in chains)
            lp_mean = np.mean([lp(w) for w in np.concatenate(chains)[:: max(1, nd // 200)]])
            rows[sampler] = (mn / secs, md / secs)
            print(
                f"  {sampler:24s} {sname:5s} {nd:7d} {nd / secs:8.1f} {moved / secs:8.1f} "
                f"{nb:4d} {mn:7.0f} {md:7.0f} {mn / secs:9.2f} {md / secs:9.2f} {lp_mean:10.1f}"
            )
        b, d = rows["BinaryGibbsMetropolis"], rows["DMALA (default)"]
        ratio = [d[i] / b[i] if b[i] > 0 else float("nan") for i in range(2)]
        print(
            f"  ratio DMALA / BGM       {sname:5s} min ESS/s x{ratio[0]:.2f}, "
            f"median ESS/s x{ratio[1]:.2f}"
        )


def full_mnist(args) -> None:
    from bayesbin.data import load_mnist

    x, y = load_mnist("train")
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    freq = np.bincount(y, minlength=10) / n
    model = bayesbin.binary_softmax(x, y, 10, bias=True, scale=0.5)
    b = np.log(freq) - np.log(freq).mean()
    print(
        f"\nFull MNIST: binary_softmax(bias=True, scale=0.5), 7,840 bits, n = {n}; bias fixed "
        "at centred log class frequencies, DMALA on w only."
    )
    with model:
        step = DiscreteLangevin([model["w"]])
    point = dict(model.initial_point())
    point["b"] = b
    step.step(point)  # sets the shared bias, compiles
    theta = np.asarray(point["w"], dtype=float).ravel()
    times = []
    for _ in range(3):
        t0 = _clock()
        step.logp_dlogp(theta)
        times.append(_clock() - t0)
    f = model.compile_logp()
    f(point)
    t_logp = []
    for _ in range(3):
        t0 = _clock()
        f(point)
        t_logp.append(_clock() - t0)
    print(
        f"  one logp+grad (DMALA): {min(times):.3f} s; one model logp (what "
        f"BinaryGibbsMetropolis pays per bit): {min(t_logp):.3f} s -> one BGM sweep ~ "
        f"{7840 * min(t_logp):.0f} s"
    )

    def drive(tune, draws, seed, start_w, **kw):
        with model:
            st_ = DiscreteLangevin([model["w"]], **kw)
        st_.set_rng(np.random.default_rng(seed))
        st_.tune = tune > 0
        p = dict(point)
        p["w"] = start_w.copy()
        out = []
        t0 = _clock()
        for i in range(tune + draws):
            if i == tune:
                st_.stop_tuning()
            p, s = st_.step(p)
            if i >= tune:
                out.append(s[0])
        return out, _clock() - t0, p

    start = np.asarray(point["w"]).copy()
    print(f"  paper DMALA, fixed alpha, {args.full_pitfall_steps} steps from PyMC's initial point:")
    print(
        f"    {'alpha':>8s} {'accept':>7s} {'proposed':>9s} {'moved':>7s} {'s/step':>7s} "
        f"{'lp_last':>11s}"
    )
    for alpha in (1e-4, 1e-3, 1e-2, 1e-1):
        st, sec, _ = drive(
            0, args.full_pitfall_steps, 1, start, alpha=alpha, adapt=False, precondition=False
        )
        s = summarize(st)
        print(
            f"    {alpha:8.0e} {s['accept_rate']:7.3f} {s['proposed_flips']:9.2f} "
            f"{s['moved_flips']:7.2f} {sec / len(st):7.3f} {s['lp_last']:11.1f}"
        )
    w0 = start.reshape(784, 10).astype(float)
    t0 = _clock()
    _, g0 = step.logp_dlogp(w0.ravel())
    kappa = exact_kappa_softmax(x, y, w0, b, 0.5, g0)
    print(
        f"  exact per-bit curvature at the start computed outside the sampler in "
        f"{_clock() - t0:.1f} s (what {7840} tuning probes, ~{7840 * 2 * min(times) / 60:.0f} "
        f"CPU-minutes, would learn): median kappa {np.median(kappa):.1f}, max {kappa.max():.0f}"
    )
    for name, kw in (
        ("adapted alpha", {"precondition": False}),
        ("default (curvature + adapted alpha)", {}),
        (
            "exact start curvature (kappa=...) + adapted alpha",
            {"kappa": kappa, "precondition": False},
        ),
        (
            "exact start curvature, no alpha penalty, max_flips=5",
            {"kappa": kappa, "precondition": False, "alpha": 1e8, "adapt": False, "max_flips": 5.0},
        ),
    ):
        st, sec, p = drive(args.full_tune, args.full_draws, 2, start, **kw)
        s = summarize(st)
        print(
            f"  {name}: tune {args.full_tune} + {args.full_draws} draws in {sec:.0f} s "
            f"({sec / (args.full_tune + args.full_draws):.2f} s/step incl. tuning probes): "
            f"accept {s['accept_rate']:.3f}, proposed {s['proposed_flips']:.2f}, moved "
            f"{s['moved_flips']:.2f} flips/step after tuning, alpha {s['alpha']:.3g}, lp "
            f"{start_lp(f, point, start):.1f} -> {s['lp_last']:.1f}"
        )


def small_models(args) -> None:
    """DMALA vs BinaryGibbsMetropolis through ``pm.sample`` on small models."""
    print(
        "\n[4] Small models through pm.sample (2 chains; CPU time includes compilation; DMALA "
        f"tune max(500, k) + {args.small_draws} draws, BGM {args.small_draws // 3} sweeps, no "
        "tuning)"
    )
    r = np.random.default_rng(0)
    with pm.Model() as generic:
        a = pm.Bernoulli("a", p=[0.2, 0.5, 0.8], shape=3)
        bb = pm.Bernoulli("b", p=0.35, shape=2)
        mu = 1.5 * a[0] - a[1] + 0.7 * a[2] + 2.0 * bb[0] * a[1] - bb[1] - 0.4 * a.sum()
        pm.Normal("obs", mu=mu, sigma=0.8, observed=[0.4, 1.1, 0.9])
    models = {"generic Gaussian, 2 variables, k=5": (generic, ("a", "b"))}
    for d in (10, 40, 100):
        x = r.normal(size=(200, d))
        y = (x @ r.choice([-1.0, 1.0], d) * 0.1 + r.normal(size=200) > 0).astype(int)
        model = bayesbin.binary_logistic(0.3 * x, y, encoding="pm1")
        models[f"logistic pm1, n=200, k={d}"] = (model, ("w",))
    for name, (model, names) in models.items():
        k = sum(int(np.size(model.initial_point()[n])) for n in names)
        res = {}
        for sampler in ("dmala", "bgm"):
            with model:
                vs = [model[n] for n in names]
                if sampler == "dmala":
                    step, draws, tune = DiscreteLangevin(vs), args.small_draws, max(500, k)
                else:
                    step, draws, tune = pm.BinaryGibbsMetropolis(vs), args.small_draws // 3, 0
                t0 = _clock()
                idata = pm.sample(
                    draws,
                    tune=tune,
                    chains=2,
                    cores=1,
                    step=step,
                    random_seed=1,
                    progressbar=False,
                    compute_convergence_checks=False,
                )
                sec = _clock() - t0
            post = idata.posterior
            bits = np.concatenate([post[n].values.reshape(2, draws, -1) for n in names], axis=-1)
            mn, md, _ = ess_bits(list(bits))
            res[sampler] = (mn / sec, md / sec)
        dm, bg = res["dmala"], res["bgm"]
        print(
            f"  {name:36s} DMALA min/med ESS/s {dm[0]:7.1f} /{dm[1]:7.1f}   BGM {bg[0]:7.1f} /"
            f"{bg[1]:7.1f}   ratio x{dm[0] / bg[0]:.2f} / x{dm[1] / bg[1]:.2f}"
        )


def exact_kappa_softmax(x, y, w, b, scale, grad) -> np.ndarray:
    """Exact per-bit secant curvature ``d_i - Delta_i`` of the {0,1} softmax model at ``w``.

    ``Delta_i`` is the exact change of the log likelihood when bit ``i`` of ``w`` (D, K) flips
    (prior p = 0.5 contributes nothing), from the cached softmax probabilities: flipping
    ``w[j, c]`` adds ``delta = scale * (1 - 2 w[j, c]) * x[:, j]`` to the logits of class ``c``.
    """
    z = scale * x @ w + b
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    d_, k_ = w.shape
    onehot = np.eye(k_)[y]
    delta_lp = np.zeros((d_, k_))
    for j in range(d_):
        nz = np.flatnonzero(x[:, j])
        if nz.size == 0:
            continue
        dz = scale * x[nz, j][:, None] * (1.0 - 2.0 * w[j])[None, :]
        delta_lp[j] = (dz * onehot[nz] - np.log1p(p[nz] * np.expm1(dz))).sum(axis=0)
    d = grad.reshape(d_, k_) * (1.0 - 2.0 * w)
    return np.maximum(d - delta_lp, 0.0).ravel()


def start_lp(f, point, w) -> float:
    p = dict(point)
    p["w"] = w
    return float(f(p))


def main(argv=None) -> None:
    """Run the benchmark (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller budgets")
    ap.add_argument("--skip-full", action="store_true", help="MNIST56 only")
    ap.add_argument("--skip-56", action="store_true", help="full MNIST only")
    args = ap.parse_args(argv)
    q = args.quick
    args.restarts = 10 if q else 30
    args.pitfall_steps = 200 if q else 500
    args.tune = 300 if q else 500
    args.draws = 500 if q else 2000
    args.budget = 10.0 if q else 30.0
    args.full_pitfall_steps = 5 if q else 10
    args.full_tune = 20 if q else 100
    args.full_draws = 20 if q else 100
    args.small_draws = 1500 if q else 3000
    print(
        f"python {platform.python_version()}, pymc {pm.__version__}, numpy {np.__version__}, "
        f"{os.cpu_count()} cpus"
    )
    if not args.skip_56:
        mnist56(args)
        small_models(args)
    if not args.skip_full:
        full_mnist(args)


if __name__ == "__main__":
    main()
