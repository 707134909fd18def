"""Benchmark: sampler presets on MNIST56 (PyMC Gibbs) and relaxed Beta + NUTS on full MNIST.

Run from the repository root::

    python benchmarks/bench_presets.py --which all          # everything (30+ minutes)
    python benchmarks/bench_presets.py --which mnist56      # estimator defaults vs forum JAGS
    python benchmarks/bench_presets.py --which grad         # one logp+gradient, per backend
    python benchmarks/bench_presets.py --which relaxed      # NUTS on 784x10, 60,000 rows
    python benchmarks/bench_presets.py --quick              # small budgets, a smoke run

Sections:

* ``mnist56``: MNIST 5 vs 6 as 5x5 bits (11,339 train / 1,850 test rows), sampled with
  ``sampler="pymc-gibbs"`` (PyMC's BinaryGibbsMetropolis on the bits, NUTS on bias and scale)
  for two models side by side: the ``bayesbin.BayesBinClassifier`` defaults (two-output form,
  01 encoding, bias, learned scale) and the forum's exact JAGS model (two-output, no bias, no
  scale). Reported: fit wall time (model build, compilation, tuning, draws, lp), kept draws per
  second over all chains, seconds per iteration per chain (chains run in parallel, one per
  core), min bulk ESS over non-constant bits per second of fit wall time, constant bits, max
  R-hat over the bits and over the effective weights ``w[1] - w[0]``, and test accuracy of the
  posterior predictive (``bayesbin.posterior.posterior_predictive_proba``). In the two-output
  form the pairs ``(w[0, j], w[1, j]) = (0, 0)`` and ``(1, 1)`` have the same likelihood and
  single-site Gibbs must pass through ``(0, 1)`` or ``(1, 0)`` to switch between them, so
  bits can have a huge R-hat even where the effective weight agrees across chains: R-hat is
  printed for both (the effective weights need not mix either on short runs).
* ``grad``: wall and CPU time of one log-density + gradient of the relaxed 784x10 softmax
  on the 60,000 MNIST training rows, with the model bayesbin builds under PyTensor's default C
  backend and under ``mode="NUMBA"``, and two equivalent graphs written here for comparison:
  ``dot(x, scale * W)`` (one pass over ``x`` less) and ``x`` as a scipy CSR sparse constant
  (MNIST is 19% non-zero). All give the same log-density (checked). With
  ``--scipy-openblas32`` the C backend is linked to the ``scipy-openblas32`` wheel.
* ``relaxed``: ``bayesbin.binary_softmax(x, y, 10, relaxed=True, bias=True, scale=True)``
  sampled with ``bayesbin.sample(sampler="nuts")`` on the full training set (or ``--rows``),
  ``max_treedepth`` (default 5) applied during tuning too. The pixel columns are strongly
  correlated, so the posterior is ill-conditioned: from PyMC's initial point (all w = 0.5)
  NUTS needs step sizes near 1e-4 and saturates any tree depth, which is why the default start
  (``--init map``) is an L-BFGS MAP point (``pm.find_MAP``, timed and reported separately).
  The default budget (1 chain, 30 tune + 30 draws) is a time-per-draw measurement, not a
  converged posterior. Reported: wall and CPU seconds per iteration and per gradient, tree
  depth, step size, divergences, how far w moved from the start, and test accuracy of the
  posterior predictive, the posterior mean weights, and the weights thresholded at 0.5
  (posterior mean > 0.5 -> 1) with the posterior mean bias/scale, with bias and scale
  re-fitted by maximum likelihood for the fixed bits, and with bits alone (b = 0); beside
  the forum (0.802, one Gibbs draw) and float multinomial logistic regression.

Timings on a shared 2-core machine are inflated by concurrent load: the 1-minute load average
is printed before and after every section.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np

__all__ = ["main"]

FORUM_MNIST56_ACC = 0.913
FORUM_MNIST_ACC = 0.802
MNIST56_CONFIGS = (
    ("bayesbin defaults", {}),
    ("forum JAGS", {"bias": False, "scale": False}),
)


# ------------------------------------------------------------------------------------------
# small helpers
# ------------------------------------------------------------------------------------------


def load_line() -> str:
    """The 1/5/15-minute load averages as text."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def header(title: str) -> None:
    """Print a section title with the current load."""
    print(f"\n== {title} ==  ({load_line()})", flush=True)


def table(rows: list[tuple[str, list[str]]], columns: list[str]) -> None:
    """Print rows of (label, cells) under column titles, aligned."""
    width0 = max(len(r[0]) for r in rows)
    widths = [max(len(c), *(len(r[1][i]) for r in rows)) for i, c in enumerate(columns)]
    print("  " + " " * width0 + "  " + "  ".join(c.rjust(w) for c, w in zip(columns, widths)))
    for label, cells in rows:
        body = "  ".join(c.rjust(w) for c, w in zip(cells, widths))
        print(f"  {label.ljust(width0)}  {body}")


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished child processes."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def fmt(value, spec: str = ".3f") -> str:
    """Format a number, 'n/a' for None/NaN."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    return format(value, spec)


def accuracy(proba: np.ndarray, y: np.ndarray) -> float:
    """Share of rows whose most probable class is the label."""
    return float(np.mean(np.argmax(proba, axis=1) == y))


def quiet_warnings() -> None:
    """Silence the BLAS, convergence and future warnings that would drown the tables."""
    warnings.filterwarnings("ignore", message=".*could not link to a BLAS.*")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    warnings.filterwarnings("ignore", message=".*ConvergenceWarning.*")
    try:
        from sklearn.exceptions import ConvergenceWarning

        warnings.filterwarnings("ignore", category=ConvergenceWarning)
    except ImportError:  # pragma: no cover
        pass


def float_logreg_accuracy(x, y, x_test, y_test, *, max_iter: int = 300) -> tuple[float, float]:
    """Test accuracy and fit seconds of float (multinomial) logistic regression with intercept."""
    from sklearn.linear_model import LogisticRegression

    t0 = time.perf_counter()
    clf = LogisticRegression(max_iter=max_iter).fit(x, y)
    seconds = time.perf_counter() - t0
    return float(clf.score(x_test, y_test)), seconds


# ------------------------------------------------------------------------------------------
# MNIST56 with PyMC Gibbs
# ------------------------------------------------------------------------------------------


def effective_rhat(idata) -> tuple[float, int]:
    """Max R-hat of the two-output effective weights ``w[1] - w[0]`` and how many are constant."""
    import xarray as xr

    from bayesbin._compat import az, get_group

    w = get_group(idata, "posterior")["w"].transpose("chain", "draw", "output", "feature")
    eff = (w.values[:, :, 1, :].astype(np.int16) - w.values[:, :, 0, :]).astype(np.float64)
    flat = eff.reshape(-1, eff.shape[-1])
    constant = np.all(flat == flat[:1], axis=0)
    if eff.shape[0] < 2 or constant.all():
        return float("nan"), int(constant.sum())
    ds = xr.Dataset({"d": (("chain", "draw", "feature"), eff[:, :, ~constant])})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rhat = az.rhat(ds)["d"].values
    return float(np.nanmax(rhat)), int(constant.sum())


def continuous_rhat(idata) -> float:
    """Max R-hat over ``b`` and ``scale`` (NaN when the model has neither or one chain)."""
    from bayesbin._compat import az, get_group

    post = get_group(idata, "posterior")
    names = [n for n in ("b", "scale") if n in post]
    if not names or post.sizes["chain"] < 2:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = az.rhat(idata, var_names=names)
    return float(max(float(np.nanmax(r[n].values)) for n in names))


def bench_mnist56(args) -> None:
    """MNIST56: BayesBinClassifier defaults vs the forum's JAGS model, both PyMC Gibbs."""
    import bayesbin
    from bayesbin.posterior import posterior_predictive_proba

    draws = args.draws or (200 if args.quick else 1000)
    tune = args.tune if args.tune is not None else (100 if args.quick else 500)
    chains = args.chains or 2
    header(
        f"MNIST56, sampler='pymc-gibbs', {chains} chains x ({tune} tune + {draws} draws), "
        f"seed {args.seed}"
    )
    x, y = bayesbin.load_mnist56("train")
    xt, yt = bayesbin.load_mnist56("test")
    lr_acc, _ = float_logreg_accuracy(x, y, xt, yt)
    results = []
    for label, overrides in MNIST56_CONFIGS:
        clf = bayesbin.BayesBinClassifier(
            sampler="pymc-gibbs",
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=args.seed,
            **overrides,
        )
        t0, c0 = time.perf_counter(), cpu_seconds()
        clf.fit(x, y)
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        acc = accuracy(posterior_predictive_proba(clf.idata_, xt), yt)
        mix = bayesbin.mixing_overview(clf.idata_)
        eff_rhat, eff_const = effective_rhat(clf.idata_)
        results.append(
            dict(
                label=label,
                wall=wall,
                cpu=cpu,
                acc=acc,
                mix=mix,
                eff_rhat=eff_rhat,
                eff_const=eff_const,
                cont_rhat=continuous_rhat(clf.idata_),
            )
        )
        print(f"  done: {label} in {wall:.1f} s ({load_line()})", flush=True)
    cols = [r["label"] for r in results]
    rows = []

    def add(name, fn):
        rows.append((name, [fn(r) for r in results]))

    add("fit wall time (s)", lambda r: fmt(r["wall"], ".1f"))
    add("CPU time, all processes (s)", lambda r: fmt(r["cpu"], ".1f"))
    add("kept draws / s (all chains)", lambda r: fmt(chains * draws / r["wall"], ".1f"))
    add("s / iteration / chain", lambda r: fmt(r["wall"] / (tune + draws), ".4f"))
    add("bits (constant)", lambda r: f"{r['mix']['n_bits']} ({r['mix']['n_constant']})")
    add("min bulk ESS, moving bits", lambda r: fmt(r["mix"]["min_ess_bulk"], ".1f"))
    add("median bulk ESS, moving bits", lambda r: fmt(r["mix"]["median_ess_bulk"], ".1f"))
    add("min ESS / s (fit wall)", lambda r: fmt(r["mix"]["min_ess_bulk"] / r["wall"], ".2f"))
    add("min ESS / CPU s", lambda r: fmt(r["mix"]["min_ess_bulk"] / r["cpu"], ".2f"))
    add("max R-hat, bits", lambda r: fmt(r["mix"]["max_rhat"], ".4g"))
    add("share of moving bits R-hat<=1.01", lambda r: fmt(r["mix"]["frac_mixing"], ".2f"))
    add(
        "max R-hat, w[1]-w[0] (constant)",
        lambda r: f"{fmt(r['eff_rhat'], '.4g')} ({r['eff_const']})",
    )
    add("max R-hat, b and scale", lambda r: fmt(r["cont_rhat"], ".3f"))
    add("test accuracy (posterior predictive)", lambda r: fmt(r["acc"], ".4f"))
    table(rows, cols)
    print(
        f"  reference: forum PyMC3 run {FORUM_MNIST56_ACC} test accuracy at < 1 s per draw "
        f"(its own 5x5 preprocessing); float logistic regression with intercept on these 25 "
        f"bits {lr_acc:.4f}"
    )
    print(f"  ({load_line()})")


# ------------------------------------------------------------------------------------------
# logp + gradient of the relaxed 784x10 softmax
# ------------------------------------------------------------------------------------------


def scipy_openblas32_ldflags() -> str:
    """``blas__ldflags`` for the scipy-openblas32 wheel (its symbols carry a ``scipy_`` prefix).

    PyTensor's C BLAS code calls ``dgemm_`` etc.; ``-D`` macros rename them to the wheel's
    ``scipy_dgemm_`` (the flags are passed to the same g++ call that compiles the module).
    """
    try:
        import scipy_openblas32
    except ImportError as exc:
        raise SystemExit(
            "--scipy-openblas32 needs the wheel: pip install scipy-openblas32"
        ) from exc
    lib_dir = scipy_openblas32.get_lib_dir()
    names = "axpy copy dot gemm gemv ger scal".split()
    renames = " ".join(f"-D{p}{n}_=scipy_{p}{n}_" for p in "sd" for n in names)
    return f"-L{lib_dir} -l{scipy_openblas32.get_library()} -Wl,-rpath,{lib_dir} {renames}"


def _relaxed_variant(x: np.ndarray, y: np.ndarray, kind: str):
    """The relaxed softmax model written with ``dot(x, scale * W)``, dense or CSR-sparse ``x``."""
    import pymc as pm
    import pytensor.sparse as psp
    import pytensor.tensor as pt
    import scipy.sparse as sps

    f64 = lambda v: pt.constant(np.float64(v))  # noqa: E731
    coords = {"obs": np.arange(len(y)), "feature": np.arange(x.shape[1]), "class": np.arange(10)}
    with pm.Model(coords=coords) as model:
        w = pm.Beta("w", f64(1.0), f64(1.0), dims=("feature", "class"))
        s = pm.HalfNormal("scale", f64(1.0))
        b = pm.Normal("b", f64(0.0), f64(5.0), dims="class")
        if kind == "sparse":
            eta = psp.structured_dot(psp.as_sparse_variable(sps.csr_matrix(x)), s * w) + b
        else:
            eta = pt.dot(pm.Data("x", x, dims=("obs", "feature")), s * w) + b
        pm.Categorical("y_obs", logit_p=eta, observed=y, dims="obs")
    return model


def time_logp_grad(model, mode=None, repeat: int = 10) -> tuple[float, float, float]:
    """Compile + first call, best and median wall, best CPU seconds of one logp+grad; logp."""
    from pymc.blocking import DictToArrayBijection

    kw = {} if mode is None else {"mode": mode}
    t0 = time.perf_counter()
    fn = model.logp_dlogp_function(ravel_inputs=True, **kw)
    fn.set_extra_values({})
    ip = model.initial_point()
    q = DictToArrayBijection.map({v.name: ip[v.name] for v in model.value_vars}).data
    logp = float(fn(q)[0])
    first = time.perf_counter() - t0
    times, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn(q)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return first, min(times), float(np.median(times)), min(cpu), logp


def bench_grad(args) -> None:
    """Time one logp+gradient of the relaxed softmax under several backends and graphs."""
    import pytensor

    import bayesbin

    if args.scipy_openblas32:
        pytensor.config.blas__ldflags = scipy_openblas32_ldflags()
    rows_n = args.rows or (10_000 if args.quick else None)
    x, y = bayesbin.load_mnist("train")
    if rows_n:
        x, y = x[:rows_n], y[:rows_n]
    x = x.astype(np.float64)
    blas = pytensor.config.blas__ldflags or "(none: NumPy C-API fallback)"
    header(f"logp + gradient, relaxed 784x10 softmax, {len(y)} rows, float64")
    print(f"  pytensor {pytensor.__version__}, blas__ldflags = {blas[:90]}")
    model = bayesbin.binary_softmax(x, y, 10, relaxed=True, bias=True, scale=True)
    cases = [
        ("bayesbin model, C backend (default)", model, None),
        ("bayesbin model, mode='NUMBA'", model, "NUMBA"),
        ("dot(x, scale*W), C backend", _relaxed_variant(x, y, "dense"), None),
        ("dot(x, scale*W), mode='NUMBA'", _relaxed_variant(x, y, "dense"), "NUMBA"),
        ("sparse CSR x, dot(x, scale*W), C backend", _relaxed_variant(x, y, "sparse"), None),
    ]
    rows, base, ref_logp = [], None, None
    for label, m, mode in cases:
        first, best, median, best_cpu, logp = time_logp_grad(
            m, mode, repeat=5 if args.quick else 10
        )
        base = base or best
        ref_logp = ref_logp if ref_logp is not None else logp
        same = "yes" if abs(logp - ref_logp) <= 1e-9 * abs(ref_logp) else f"NO ({logp:.6g})"
        rows.append(
            (
                label,
                [
                    fmt(first, ".1f"),
                    fmt(best * 1e3, ".1f"),
                    fmt(median * 1e3, ".1f"),
                    fmt(best_cpu * 1e3, ".1f"),
                    fmt(base / best, ".2f") + "x",
                    same,
                ],
            )
        )
        print(f"  done: {label} ({load_line()})", flush=True)
    table(
        rows,
        ["compile+1st (s)", "best (ms)", "median (ms)", "best CPU (ms)", "speed-up", "same logp"],
    )
    print(f"  ({load_line()})")


# ------------------------------------------------------------------------------------------
# relaxed Beta + NUTS on full MNIST
# ------------------------------------------------------------------------------------------


def refit_bias_scale(z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Maximum-likelihood ``(b, scale)`` of ``softmax(scale * z + b)`` for fixed logits ``z``."""
    from scipy.optimize import minimize
    from scipy.special import logsumexp

    k = z.shape[1]
    rows = np.arange(len(y))

    def nll(theta):
        s, b = np.exp(theta[0]), theta[1:]
        eta = s * z + b
        lse = logsumexp(eta, axis=1)
        p = np.exp(eta - lse[:, None])
        p[rows, y] -= 1.0
        g_b = p.sum(axis=0)
        g_s = float(np.sum(p * z)) * s
        return float(np.sum(lse - eta[rows, y])), np.concatenate([[g_s], g_b])

    res = minimize(nll, np.zeros(k + 1), jac=True, method="L-BFGS-B")
    return res.x[1:], float(np.exp(res.x[0]))


def bench_relaxed(args) -> None:
    """Relaxed Beta weights + NUTS on MNIST (784x10), accuracies of several weight summaries."""
    import bayesbin
    from bayesbin._compat import get_group
    from bayesbin.posterior import posterior_predictive_proba, predictive_proba_from_draws

    quick = args.quick
    draws = args.draws or (10 if quick else 30)
    tune = args.tune if args.tune is not None else (10 if quick else 30)
    chains = args.chains or 1
    depth = args.max_treedepth or (4 if quick else 5)
    maxeval = args.map_maxeval or (30 if quick else 300)
    cores = min(chains, 2)
    rows_n = args.rows or (5_000 if quick else None)
    x, y = bayesbin.load_mnist("train")
    xt, yt = bayesbin.load_mnist("test")
    if rows_n:
        x, y = x[:rows_n], y[:rows_n]
    x, xt = x.astype(np.float64), xt.astype(np.float64)
    n_rows = "all 60,000" if len(y) == 60_000 else f"the first {len(y):,} of 60,000"
    header(
        f"relaxed Beta(1,1) + NUTS, MNIST 784x10, {n_rows} training rows, {chains} chain(s) x "
        f"({tune} tune + {draws} draws), max_treedepth {depth} (also while tuning), "
        f"start {args.init}, seed {args.seed}"
    )
    model = bayesbin.binary_softmax(x, y, 10, relaxed=True, bias=True, scale=True)
    init_note, initvals, map_seconds = "PyMC's initial point (w = 0.5, b = 0)", None, 0.0
    if args.init == "map":
        import pymc as pm

        t0 = time.perf_counter()
        start = pm.find_MAP(model=model, maxeval=maxeval, progressbar=False)
        map_seconds = time.perf_counter() - t0
        initvals = {name: start[name] for name in ("w", "b", "scale")}
        proba = predictive_proba_from_draws(
            initvals["w"][None],
            initvals["b"][None],
            np.array([initvals["scale"]]),
            xt,
            form="softmax",
        )
        init_note = (
            f"L-BFGS MAP, at most {maxeval} evaluations, {map_seconds:.1f} s, "
            f"test accuracy {accuracy(proba, yt):.4f}"
        )
        print(f"  MAP start found ({load_line()})", flush=True)
    print(f"  start: {init_note}")
    t0, c0 = time.perf_counter(), cpu_seconds()
    idata = bayesbin.sample(
        model,
        sampler="nuts",
        draws=draws,
        tune=tune,
        chains=chains,
        cores=cores,
        random_seed=args.seed,
        progressbar=False,
        step_kwargs={"max_treedepth": depth, "early_max_treedepth": depth},
        discard_tuned_samples=False,
        initvals=initvals,
    )
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    print(f"  sampled in {wall:.1f} s ({load_line()})", flush=True)
    ss = get_group(idata, "sample_stats")
    warm = get_group(idata, "warmup_sample_stats")
    steps_total = float(ss["n_steps"].sum() + warm["n_steps"].sum())
    iters = tune + draws
    depth_draws = ss["tree_depth"].values.ravel()
    post = get_group(idata, "posterior")
    w = post["w"].transpose("chain", "draw", "feature", "class").values.astype(np.float64)
    b = post["b"].transpose("chain", "draw", "class").values.reshape(-1, 10)
    s = post["scale"].values.reshape(-1)
    w_mean, b_mean, s_mean = w.reshape(-1, 784, 10).mean(0), b.mean(0), float(s.mean())
    bits = (w_mean > 0.5).astype(np.float64)
    w_start = initvals["w"] if initvals is not None else np.full((784, 10), 0.5)
    moved = float(np.sqrt(np.mean((w[0, -1] - w_start) ** 2)))

    def acc_single(weights, bias, scale):
        proba = predictive_proba_from_draws(
            weights[None], np.asarray(bias)[None], np.array([scale]), xt, form="softmax"
        )
        return accuracy(proba, yt)

    b_fit, s_fit = refit_bias_scale(x @ bits, y)
    accs = [
        (
            "posterior predictive (mean over draws)",
            accuracy(posterior_predictive_proba(idata, xt), yt),
        ),
        ("posterior mean w, b, scale", acc_single(w_mean, b_mean, s_mean)),
        ("bits (mean w > 0.5), posterior mean b, scale", acc_single(bits, b_mean, s_mean)),
        (
            f"bits, b and scale re-fitted by ML (scale {s_fit:.3f})",
            acc_single(bits, b_fit, s_fit),
        ),
        ("bits alone (b = 0)", acc_single(bits, np.zeros(10), 1.0)),
    ]
    print(f"  accuracies computed ({load_line()})", flush=True)
    if args.no_baseline:
        lr = None
    else:
        lr, lr_seconds = float_logreg_accuracy(x, y, xt, yt)
    run_rows = [
        ("sampling wall time (s)", fmt(wall, ".1f")),
        ("CPU time, all processes (s)", fmt(cpu, ".1f")),
        ("s / iteration (wall / (tune + draws))", fmt(wall / iters, ".2f")),
        ("gradient evaluations (all chains, tune + draws)", fmt(steps_total, ".0f")),
        ("core-s / gradient (wall x cores / gradients)", fmt(wall * cores / steps_total, ".3f")),
        ("CPU s / gradient", fmt(cpu / steps_total, ".3f")),
        ("mean tree depth, draws (max)", f"{depth_draws.mean():.2f} ({depth_draws.max()})"),
        ("share of draws at max_treedepth", fmt(float(np.mean(depth_draws >= depth)), ".2f")),
        ("mean leapfrog steps / draw", fmt(float(ss["n_steps"].values.mean()), ".1f")),
        ("step size after tuning", fmt(float(ss["step_size"].values.ravel()[-1]), ".4g")),
        ("mean acceptance, draws", fmt(float(ss["acceptance_rate"].values.mean()), ".3f")),
        (
            "divergences (tune / draws)",
            f"{int(warm['diverging'].sum())} / {int(ss['diverging'].sum())}",
        ),
        ("RMS change of w, start -> last draw", fmt(moved, ".4f")),
        ("posterior mean scale", fmt(s_mean, ".4f")),
        ("share of weights with mean > 0.5", fmt(float(bits.mean()), ".3f")),
        (
            "share of weights with mean in (0.1, 0.9)",
            fmt(float(np.mean(np.abs(w_mean - 0.5) < 0.4)), ".3f"),
        ),
    ]
    table([(label, [cell]) for label, cell in run_rows], ["value"])
    acc_rows = [(label, [fmt(a, ".4f")]) for label, a in accs]
    acc_rows.append(
        ("forum: one Gibbs draw, {0,1} weights (reported)", [fmt(FORUM_MNIST_ACC, ".3f")])
    )
    if lr is not None:
        acc_rows.append(
            (f"float logistic regression (sklearn, {lr_seconds:.0f} s)", [fmt(lr, ".4f")])
        )
    table(acc_rows, ["test accuracy"])
    print(f"  ({load_line()})")


# ------------------------------------------------------------------------------------------


def main(argv=None) -> None:
    """Parse arguments, run the chosen sections and print their tables."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--which", choices=("mnist56", "grad", "relaxed", "all"), default="all")
    ap.add_argument("--draws", type=int, default=None, help="draws per chain (section default)")
    ap.add_argument("--tune", type=int, default=None, help="tuning iterations per chain")
    ap.add_argument("--chains", type=int, default=None, help="chains (2 MNIST56, 1 relaxed)")
    ap.add_argument("--quick", action="store_true", help="small budgets, for a smoke run")
    ap.add_argument("--seed", type=int, default=20180913)
    ap.add_argument("--rows", type=int, default=None, help="training rows for grad/relaxed")
    ap.add_argument("--max-treedepth", type=int, default=None, help="NUTS max tree depth")
    ap.add_argument(
        "--init",
        choices=("default", "map"),
        default="map",
        help="relaxed NUTS start: PyMC's initial point or an L-BFGS MAP (timed separately)",
    )
    ap.add_argument(
        "--map-maxeval", type=int, default=None, help="L-BFGS evaluations for MAP (300)"
    )
    ap.add_argument("--no-baseline", action="store_true", help="skip float logistic regression")
    ap.add_argument(
        "--scipy-openblas32",
        action="store_true",
        help="link PyTensor's C BLAS to the scipy-openblas32 wheel (grad section)",
    )
    args = ap.parse_args(argv)
    quiet_warnings()
    import numba
    import pymc
    import pytensor

    print(
        f"bayesbin benchmark: presets | python {platform.python_version()}, pymc "
        f"{pymc.__version__}, pytensor {pytensor.__version__}, numba {numba.__version__}, "
        f"numpy {np.__version__} | {load_line()}"
    )
    if args.which in ("mnist56", "all"):
        bench_mnist56(args)
    if args.which in ("grad", "all"):
        bench_grad(args)
    if args.which in ("relaxed", "all"):
        bench_relaxed(args)


if __name__ == "__main__":
    main()
