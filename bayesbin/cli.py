"""Command line: ``python -m bayesbin {demo,fit,predict,export,benchmark}``."""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

import numpy as np

__all__ = ["main", "build_parser"]

FAST_ENV = "BAYESBIN_FAST"


def _fast() -> bool:
    return os.environ.get(FAST_ENV, "") not in ("", "0", "false", "False")


def _write_json(path: pathlib.Path, obj) -> None:
    from bayesbin._io import atomic_write

    text = json.dumps(obj, indent=2, default=float).encode()
    atomic_write(path, lambda fh: fh.write(text))


def _write_csv(path: pathlib.Path, frame) -> None:
    from bayesbin._io import atomic_path

    with atomic_path(path, suffix=".csv.tmp") as tmp:
        frame.to_csv(tmp)


def _load_dataset(name: str, split: str, label_column: str, data_dir=None, n=None):
    """Return (x, y) for 'mnist', 'fashion-mnist', 'mnist56' or a CSV path."""
    import bayesbin

    if name == "mnist":
        x, y = bayesbin.load_mnist(split, data_dir=data_dir)
    elif name == "fashion-mnist":
        x, y = bayesbin.load_fashion_mnist(split, data_dir=data_dir)
    elif name == "mnist56":
        x, y = bayesbin.load_mnist56(split)
    else:
        import pandas as pd

        path = pathlib.Path(name)
        if not path.is_file():
            raise SystemExit(
                f"error: --data {name!r} is neither mnist, fashion-mnist, mnist56 nor an existing "
                "CSV file"
            )
        frame = pd.read_csv(path)
        if label_column not in frame.columns:
            if split == "predict":
                return frame.to_numpy(dtype=float), None
            raise SystemExit(
                f"error: CSV {path} has no label column {label_column!r} (columns: "
                f"{list(frame.columns)[:8]}...); set --label-column"
            )
        y = frame.pop(label_column).to_numpy()
        x = frame.to_numpy(dtype=float)
    if n is not None:
        x, y = x[:n], y[:n]
    return x, y


def _report(clf, x_test, y_test, out: pathlib.Path, elapsed: float, extra: dict) -> dict:
    import bayesbin
    from bayesbin._compat import to_netcdf

    acc = float(clf.score(x_test, y_test)) if x_test is not None else float("nan")
    table = bayesbin.summary(clf)
    overview = bayesbin.mixing_overview(clf)
    out.mkdir(parents=True, exist_ok=True)
    to_netcdf(clf.idata_, out / "idata.nc")
    _write_csv(out / "summary.csv", table)
    post_attrs = clf.idata_.posterior.attrs
    info = {
        "test_accuracy": acc,
        "seconds": elapsed,
        "sampler": post_attrs.get("bayesbin_sampler"),
        "steps": json.loads(post_attrs.get("bayesbin_steps", "[]")),
        "mixing": overview,
        **extra,
    }
    _write_json(out / "results.json", info)
    return {"accuracy": acc, "table": table, "overview": overview, "info": info}


def cmd_demo(args) -> int:
    """Fit the bundled MNIST56 toy and print accuracy and diagnostics."""
    import pandas as pd

    import bayesbin

    draws, tune = (60, 30) if _fast() else (args.draws, args.tune)
    x, y = bayesbin.load_mnist56("train")
    xt, yt = bayesbin.load_mnist56("test")
    print(
        f"MNIST56 toy: {x.shape[0]} train / {xt.shape[0]} test rows, {x.shape[1]} binary "
        "pixels, digit 5 -> 0, 6 -> 1"
    )
    t0 = time.perf_counter()
    clf = bayesbin.fit(
        x,
        y,
        classes=2,
        draws=draws,
        tune=tune,
        chains=args.chains,
        sampler=args.sampler,
        start=args.start,
        random_seed=args.seed,
        progressbar=not args.quiet,
    )
    elapsed = time.perf_counter() - t0
    out = pathlib.Path(args.out) / "demo"
    rep = _report(clf, xt, yt, out, elapsed, {"draws": draws, "tune": tune, "chains": args.chains})
    steps = ", ".join(f"{s['step']}[{','.join(s['vars'])}]" for s in rep["info"]["steps"])
    print(
        f"sampler: {rep['info']['sampler']} ({steps}); {args.chains} chains x {draws} draws "
        f"in {elapsed:.1f} s"
    )
    print(f"test accuracy (posterior predictive): {rep['accuracy']:.4f}")
    ov = rep["overview"]
    print(
        f"bits: {ov['n_bits']} ({ov['n_constant']} constant); max R-hat {ov['max_rhat']:.3f}; "
        f"min ESS bulk {ov['min_ess_bulk']:.0f}; share of bits with R-hat <= 1.01: "
        f"{ov['frac_mixing']:.2f}"
    )
    cols = ["p_one", "mean", "sd", "ess_bulk", "ess_tail", "r_hat"]
    with pd.option_context("display.max_rows", 80, "display.width", 120):
        print(rep["table"][cols].round(3).to_string())
    print(f"results written to {out.resolve()} (idata.nc, summary.csv, results.json)")
    return 0


def cmd_fit(args) -> int:
    """Fit MNIST, Fashion-MNIST, MNIST56 or a CSV file."""
    import bayesbin

    x, y = _load_dataset(args.data, "train", args.label_column, args.data_dir, args.n_train)
    xt = yt = None
    if args.data in ("mnist", "fashion-mnist", "mnist56"):
        xt, yt = _load_dataset(args.data, "test", args.label_column, args.data_dir)
    options = dict(
        draws=args.draws,
        tune=args.tune,
        chains=args.chains,
        sampler=args.sampler,
        start=args.start,
        random_seed=args.seed,
        progressbar=not args.quiet,
        encoding=args.encoding,
        bias=not args.no_bias,
    )
    if args.scale is not None:
        options["scale"] = True if args.scale == "learn" else float(args.scale)
    if args.relaxed:
        options["relaxed"] = True
    if args.family != "auto":
        options["family"] = args.family
    if _fast():
        options.update(draws=min(args.draws, 40), tune=min(args.tune, 20))
    t0 = time.perf_counter()
    clf = bayesbin.fit(x, y, classes=None if args.classes is None else args.classes, **options)
    elapsed = time.perf_counter() - t0
    out = pathlib.Path(args.out)
    rep = _report(
        clf,
        xt,
        yt,
        out,
        elapsed,
        {"data": args.data, **{k: v for k, v in options.items() if k != "progressbar"}},
    )
    print(f"fitted in {elapsed:.1f} s with sampler {rep['info']['sampler']}")
    if xt is not None:
        print(f"test accuracy (posterior predictive): {rep['accuracy']:.4f}")
    ov = rep["overview"]
    print(f"bits: {ov['n_bits']} ({ov['n_constant']} constant), max R-hat {ov['max_rhat']:.3f}")
    print(f"results written to {out.resolve()}")
    return 0


def _load_clf(folder: str):
    from bayesbin._compat import from_netcdf
    from bayesbin.estimator import BayesBinClassifier

    path = pathlib.Path(folder) / "idata.nc"
    if not path.is_file():
        raise SystemExit(f"error: no fit found: {path} does not exist (run `bayesbin fit` first)")
    return BayesBinClassifier.from_result(from_netcdf(path))


def cmd_predict(args) -> int:
    """Predict with a saved fit."""
    import pandas as pd

    clf = _load_clf(args.fit)
    x, _ = _load_dataset(
        args.data,
        "predict" if args.data.endswith(".csv") else "test",
        args.label_column,
        args.data_dir,
    )
    proba = clf.predict_proba(x)
    pred = clf.classes_[np.argmax(proba, axis=1)]
    frame = pd.DataFrame(proba, columns=[f"p_{c}" for c in clf.classes_])
    frame.insert(0, "prediction", pred)
    out = pathlib.Path(args.output)
    _write_csv(out, frame)
    print(f"{len(pred)} predictions written to {out.resolve()}")
    return 0


def cmd_export(args) -> int:
    """Export a saved fit as packed bits (and optionally a C header)."""
    clf = _load_clf(args.fit)
    packed = clf.to_bits(
        rule=args.rule, **({"draws": args.n_draws} if args.rule == "draws" and args.n_draws else {})
    )
    out = pathlib.Path(args.output)
    packed.save(out)
    print(f"packed {args.rule} model written to {out.resolve()}")
    if args.c_header:
        packed.export_c_header(args.c_header)
        print(f"C header written to {pathlib.Path(args.c_header).resolve()}")
    return 0


def cmd_benchmark(args) -> int:
    """Run a benchmark script from benchmarks/ (in a source checkout)."""
    import runpy

    root = pathlib.Path(__file__).resolve().parent.parent / "benchmarks"
    script = root / f"bench_{args.name}.py"
    if not script.is_file():
        have = sorted(p.stem.removeprefix("bench_") for p in root.glob("bench_*.py"))
        raise SystemExit(f"error: no benchmark {args.name!r}; available: {have}")
    sys.argv = [str(script), *args.extra]
    runpy.run_path(str(script), run_name="__main__")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of ``python -m bayesbin``."""
    p = argparse.ArgumentParser(prog="bayesbin", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="fit the bundled MNIST56 toy; print accuracy + diagnostics")
    d.add_argument("--draws", type=int, default=1000)
    d.add_argument("--tune", type=int, default=500)
    d.add_argument("--chains", type=int, default=2)
    d.add_argument("--sampler", default="auto")
    d.add_argument(
        "--start",
        choices=["auto", "mode", "model"],
        default="auto",
        help="where chains start: auto (find_mode for bayesbin's samplers), mode, model (PyMC's point)",
    )
    d.add_argument("--seed", type=int, default=2018)
    d.add_argument("--out", default="bayesbin_results")
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    d.set_defaults(func=cmd_demo)

    f = sub.add_parser("fit", help="fit mnist, fashion-mnist, mnist56 or a CSV file")
    f.add_argument("--data", required=True, help="mnist | fashion-mnist | mnist56 | FILE.csv")
    f.add_argument("--label-column", default="label")
    f.add_argument("--data-dir", default=None, help="folder with the IDX files")
    f.add_argument("--n-train", type=int, default=None, help="use the first N training rows")
    f.add_argument("--classes", type=int, default=None)
    f.add_argument("--family", choices=["auto", "logistic", "softmax"], default="auto")
    f.add_argument("--encoding", choices=["01", "pm1"], default="01")
    f.add_argument("--no-bias", action="store_true")
    f.add_argument("--scale", default=None, help="'learn' or a fixed positive float")
    f.add_argument("--relaxed", action="store_true", help="Beta(1,1) weights (NUTS)")
    f.add_argument("--sampler", default="auto")
    f.add_argument(
        "--start",
        choices=["auto", "mode", "model"],
        default="auto",
        help="where chains start: auto (find_mode for bayesbin's samplers), mode, model (PyMC's point)",
    )
    f.add_argument("--draws", type=int, default=1000)
    f.add_argument("--tune", type=int, default=500)
    f.add_argument("--chains", type=int, default=2)
    f.add_argument("--seed", type=int, default=None)
    f.add_argument("--out", default="bayesbin_results/fit")
    f.add_argument("--quiet", action="store_true")
    f.set_defaults(func=cmd_fit)

    r = sub.add_parser("predict", help="predict with a saved fit")
    r.add_argument("--fit", required=True, help="output folder of `bayesbin fit`")
    r.add_argument("--data", required=True, help="mnist | fashion-mnist | mnist56 | FILE.csv")
    r.add_argument("--label-column", default="label")
    r.add_argument("--data-dir", default=None)
    r.add_argument("--output", default="predictions.csv")
    r.set_defaults(func=cmd_predict)

    e = sub.add_parser("export", help="write packed bits (and a C header) from a saved fit")
    e.add_argument("--fit", required=True, help="output folder of `bayesbin fit`")
    e.add_argument("--rule", choices=["marginal", "map", "draws"], default="marginal")
    e.add_argument("--n-draws", type=int, default=None, help="draws kept with --rule draws")
    e.add_argument("--output", default="model.bbits")
    e.add_argument("--c-header", default=None, help="also write a C header here")
    e.set_defaults(func=cmd_export)

    b = sub.add_parser("benchmark", help="run benchmarks/bench_NAME.py (source checkout)")
    b.add_argument("name")
    b.add_argument("extra", nargs=argparse.REMAINDER)
    b.set_defaults(func=cmd_benchmark)
    return p


def main(argv=None) -> int:
    """Entry point of ``python -m bayesbin``."""
    import warnings

    warnings.filterwarnings("ignore", message=".*could not link to a BLAS.*")
    warnings.filterwarnings("ignore", category=FutureWarning)
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)
