"""Command line: ``python -m bayesbin {demo,fit,predict,export,benchmark}``.

Arguments are checked before any data is read; a user error prints one line and exits with
status 2; Ctrl-C exits with status 130 and writes nothing that claims to be complete. PyMC is
imported only once a command runs, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pathlib
import sys
import time
import warnings

import numpy as np

__all__ = ["main", "build_parser", "SAMPLER_CHOICES"]

FAST_ENV = "BAYESBIN_FAST"
# bayesbin.sampling.SAMPLERS, spelled out so that parsing arguments imports no PyMC (a test
# keeps the two lists equal)
SAMPLER_CHOICES = (
    "auto",
    "pymc-gibbs",
    "incremental",
    "incremental+nuts",
    "tempering",
    "dmala",
    "nuts",
)
_DATASETS = ("mnist", "fashion-mnist", "mnist56")


class UserError(Exception):
    """A mistake in the command line or its input files: reported in one line, status 2."""


def _fast() -> bool:
    return os.environ.get(FAST_ENV, "") not in ("", "0", "false", "False")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _nonneg_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (np.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _scale_arg(text: str):
    if text == "learn":
        return True
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'learn' or a positive number, got {text!r}"
        ) from None
    if not (np.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected 'learn' or a positive number, got {text!r}")
    return value


def _data_arg(text: str) -> str:
    if text in _DATASETS or text.lower().endswith(".csv"):
        return text
    raise argparse.ArgumentTypeError(
        f"expected {', '.join(_DATASETS)} or a .csv file, got {text!r}"
    )


def _write_json(path: pathlib.Path, obj) -> None:
    from bayesbin._io import atomic_write

    text = json.dumps(obj, indent=2, default=float).encode()
    atomic_write(path, lambda fh: fh.write(text))


def _write_csv(path: pathlib.Path, frame) -> None:
    from bayesbin._io import atomic_path

    with atomic_path(path, suffix=".csv.tmp") as tmp:
        frame.to_csv(tmp, index=False)


def _label_index(columns: list, label_column: str, header: bool, path) -> int:
    if not header and label_column == "label":  # the default: the last column
        label_column = "-1"
    if header and label_column in columns:
        return columns.index(label_column)
    try:
        index = int(label_column)
    except ValueError:
        if not header:
            raise UserError(
                f"{path} has no header row: --label-column must be a column number "
                f"(0-based, negative from the end); got {label_column!r}"
            ) from None
        raise UserError(
            f"{path} has no label column {label_column!r} (columns: {columns[:8]}...); set "
            "--label-column to a name or a column number"
        ) from None
    if not -len(columns) <= index < len(columns):
        raise UserError(f"--label-column {index} is outside the {len(columns)} columns of {path}")
    return index % len(columns)


def _read_csv(path_text: str, label_column: str, header: bool, need_labels: bool):
    """(x float64, y or None) from a CSV file; every problem is a UserError naming the file."""
    import pandas as pd

    path = pathlib.Path(path_text)
    if not path.is_file():
        raise UserError(f"--data {path_text!r}: no such file")
    try:
        frame = pd.read_csv(path, header=0 if header else None)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise UserError(f"{path}: not a readable CSV file ({exc})") from None
    if frame.shape[0] == 0:
        raise UserError(f"{path}: no rows")
    columns = list(frame.columns)
    y = None
    if need_labels or (header and label_column in columns):
        idx = _label_index(columns, label_column, header, path)
        y = frame.iloc[:, idx].to_numpy()
        frame = frame.drop(columns=columns[idx])
    try:
        x = frame.to_numpy(dtype=float)
    except ValueError as exc:
        raise UserError(f"{path}: the feature columns must be numbers ({exc})") from None
    return x, y


def _load(name: str, split: str, args, need_labels: bool = True):
    """(x, y) of a dataset name or a CSV file."""
    import bayesbin

    if name == "mnist":
        return bayesbin.load_mnist(split, data_dir=args.data_dir)
    if name == "fashion-mnist":
        return bayesbin.load_fashion_mnist(split, data_dir=args.data_dir)
    if name == "mnist56":
        return bayesbin.load_mnist56(split)
    return _read_csv(name, args.label_column, not args.no_header, need_labels)


def _mixing_words(clf) -> list[str]:
    """Say what the convergence checks found, in words."""
    raw = clf.idata_.posterior.attrs.get("bayesbin_convergence")
    if raw is None:
        return []
    problems = json.loads(raw).get("problems", [])
    if not problems:
        return [
            "mixing: no problem found (R-hat <= 1.01 and bulk ESS >= 100 per chain for every "
            "quantity that moved, no bits stuck apart)"
        ]
    return [
        "mixing: DO NOT TRUST THIS POSTERIOR YET. The chains disagree or move too slowly:",
        *(f"  - {p}" for p in problems),
        "  Sample longer (--draws, --tune), and see bayesbin.mixing_overview on the saved "
        "idata.nc.",
    ]


def _report(clf, x_test, y_test, out: pathlib.Path, elapsed: float, extra: dict) -> dict:
    import bayesbin
    from bayesbin._compat import to_netcdf

    acc = float(clf.score(x_test, y_test)) if x_test is not None else None
    table = bayesbin.summary(clf)
    overview = bayesbin.mixing_overview(clf)
    post = clf.idata_.posterior
    out.mkdir(parents=True, exist_ok=True)
    to_netcdf(clf.idata_, out / "idata.nc")
    _write_csv(out / "summary.csv", table.reset_index(names="parameter"))
    info = {
        **extra,
        "test_accuracy": acc,
        "seconds": elapsed,
        "sampler": post.attrs.get("bayesbin_sampler"),
        "steps": json.loads(post.attrs.get("bayesbin_steps", "[]")),
        "chains": int(post.sizes["chain"]),
        "draws": int(post.sizes["draw"]),
        "mixing": overview,
        "convergence": json.loads(post.attrs.get("bayesbin_convergence", "{}")),
    }
    _write_json(out / "results.json", info)  # last: its presence means the run completed
    return {"accuracy": acc, "table": table, "overview": overview, "info": info}


def _fit_options(args) -> dict:
    draws, tune = args.draws, args.tune
    if _fast():
        draws, tune = min(draws, 60), min(tune, 30)
    return dict(
        draws=draws,
        tune=tune,
        chains=args.chains,
        sampler=args.sampler,
        start=args.start,
        random_seed=args.seed,
        progressbar=not args.quiet,
    )


def cmd_demo(args, say) -> int:
    """Fit the bundled MNIST56 toy and print accuracy and diagnostics."""
    import pandas as pd

    import bayesbin

    options = _fit_options(args)
    x, y = bayesbin.load_mnist56("train")
    xt, yt = bayesbin.load_mnist56("test")
    say(
        f"MNIST56 toy: {x.shape[0]} train / {xt.shape[0]} test rows, {x.shape[1]} binary "
        "pixels, digit 5 -> 0, 6 -> 1"
    )
    t0 = time.perf_counter()
    clf = bayesbin.fit(x, y, classes=2, **options)
    elapsed = time.perf_counter() - t0
    out = pathlib.Path(args.out) / "demo"
    rep = _report(clf, xt, yt, out, elapsed, {"data": "mnist56", "sampler_requested": args.sampler})
    info = rep["info"]
    steps = ", ".join(f"{s['step']}[{','.join(s['vars'])}]" for s in info["steps"])
    say(
        f"sampler: {info['sampler']} ({steps}); {info['chains']} chains x {info['draws']} draws "
        f"in {elapsed:.1f} s"
    )
    say(f"test accuracy (posterior predictive): {rep['accuracy']:.4f}")
    for line in _mixing_words(clf):
        say(line)
    cols = ["p_one", "mean", "sd", "ess_bulk", "ess_tail", "r_hat"]
    with pd.option_context("display.max_rows", 80, "display.width", 120):
        say(rep["table"][cols].round(3).to_string())
    say(f"results written to {out.resolve()} (idata.nc, summary.csv, results.json)")
    return 0


def cmd_fit(args, say) -> int:
    """Fit MNIST, Fashion-MNIST, MNIST56 or a CSV file."""
    import bayesbin

    x, y = _load(args.data, "train", args)
    if args.n_train is not None:
        if args.n_train > x.shape[0]:
            raise UserError(f"--n-train {args.n_train} exceeds the {x.shape[0]} training rows")
        x, y = x[: args.n_train], y[: args.n_train]
    xt = yt = None
    if args.test is not None:
        xt, yt = _load(args.test, "test", args)
    elif args.data in _DATASETS:
        xt, yt = _load(args.data, "test", args)
    options = _fit_options(args)
    options.update(encoding=args.encoding, bias=not args.no_bias)
    if args.scale is not None:
        options["scale"] = args.scale
    if args.relaxed:
        options["relaxed"] = True
    if args.family != "auto":
        options["family"] = args.family
    t0 = time.perf_counter()
    clf = bayesbin.fit(x, y, classes=args.classes, **options)
    elapsed = time.perf_counter() - t0
    out = pathlib.Path(args.out)
    record = {k: v for k, v in options.items() if k not in ("progressbar", "sampler")}
    record.update(data=args.data, test=args.test, n_train=int(x.shape[0]))
    record["sampler_requested"] = args.sampler
    rep = _report(clf, xt, yt, out, elapsed, record)
    say(f"fitted in {elapsed:.1f} s with sampler {rep['info']['sampler']}")
    if rep["accuracy"] is not None:
        say(f"test accuracy (posterior predictive): {rep['accuracy']:.4f}")
    ov = rep["overview"]
    say(f"bits: {ov['n_bits']} ({ov['n_constant']} never changed)")
    for line in _mixing_words(clf):
        say(line)
    say(f"results written to {out.resolve()}")
    return 0


def _load_clf(folder: str):
    from bayesbin._compat import from_netcdf
    from bayesbin.estimator import BayesBinClassifier

    base = pathlib.Path(folder)
    path = base / "idata.nc"
    if not path.is_file():
        raise UserError(f"no fit found: {path} does not exist (run `bayesbin fit` first)")
    if not (base / "results.json").is_file():
        raise UserError(f"{base} holds no complete fit (results.json is missing)")
    return BayesBinClassifier.from_result(from_netcdf(path))


def cmd_predict(args, say) -> int:
    """Predict with a saved fit."""
    import pandas as pd

    clf = _load_clf(args.fit)
    x, _ = _load(args.data, "test", args, need_labels=False)
    proba = clf.predict_proba(x)
    pred = clf.classes_[np.argmax(proba, axis=1)]
    frame = pd.DataFrame(proba, columns=[f"p_{c}" for c in clf.classes_])
    frame.insert(0, "prediction", pred)
    out = pathlib.Path(args.output)
    _write_csv(out, frame)
    say(f"{len(pred)} predictions written to {out.resolve()}")
    return 0


def cmd_export(args, say) -> int:
    """Export a saved fit as packed bits, or a saved ``.bbits`` model; optionally a C header."""
    from bayesbin.bits import PackedNetwork, load_bits

    if (args.fit is None) == (args.bits is None):
        raise UserError("give exactly one of --fit (a saved fit) or --bits (a .bbits file)")
    if args.n_draws is not None and (args.bits is not None or args.rule != "draws"):
        raise UserError("--n-draws needs --fit and --rule draws")
    if args.bits is not None:
        if not pathlib.Path(args.bits).is_file():
            raise UserError(f"--bits {args.bits!r}: no such file")
        packed = load_bits(args.bits)
        what = "network" if isinstance(packed, PackedNetwork) else "model"
    else:
        clf = _load_clf(args.fit)
        kwargs = {"draws": args.n_draws} if args.n_draws is not None else {}
        packed = clf.to_bits(rule=args.rule, **kwargs)
        what = f"{args.rule} model"
    out = pathlib.Path(args.output)
    packed.save(out)
    say(f"packed {what} written to {out.resolve()}")
    if args.c_header:
        extra = {"divisor": args.divisor} if isinstance(packed, PackedNetwork) else {}
        packed.export_c_header(args.c_header, **extra)
        say(f"C header written to {pathlib.Path(args.c_header).resolve()}")
    return 0


def cmd_benchmark(args, say) -> int:
    """Run a benchmark script from benchmarks/ (in a source checkout)."""
    import runpy

    root = pathlib.Path(__file__).resolve().parent.parent / "benchmarks"
    script = root / f"bench_{args.name}.py"
    if not script.is_file():
        have = sorted(p.stem.removeprefix("bench_") for p in root.glob("bench_*.py"))
        raise UserError(f"no benchmark {args.name!r}; available: {have}")
    sys.argv = [str(script), *args.extra]
    runpy.run_path(str(script), run_name="__main__")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse, with a one-line error (usage lines stay in --help)."""

    def error(self, message):
        """Print ``prog: error: message`` on one line and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {message}\n")


def _sampling_options(p) -> None:
    p.add_argument(
        "--sampler",
        choices=SAMPLER_CHOICES,
        default="auto",
        help="sampler preset (see bayesbin.sample)",
    )
    p.add_argument(
        "--start",
        choices=["auto", "mode", "model"],
        default="auto",
        help="where chains start: auto (find_mode for bayesbin's samplers), mode, model "
        "(PyMC's initial point)",
    )
    p.add_argument("--draws", type=_positive_int, default=1000, help="draws per chain")
    p.add_argument("--tune", type=_nonneg_int, default=500, help="tuning steps per chain")
    p.add_argument("--chains", type=_positive_int, default=2, help="number of chains")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors; no bars")


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of ``python -m bayesbin``."""
    fmt = argparse.ArgumentDefaultsHelpFormatter
    p = _Parser(prog="bayesbin", description=__doc__.splitlines()[0], formatter_class=fmt)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    d = sub.add_parser(
        "demo",
        help="fit the bundled MNIST56 toy; print accuracy + diagnostics",
        formatter_class=fmt,
    )
    _sampling_options(d)
    d.add_argument("--seed", type=_nonneg_int, default=2018, help="random seed")
    d.add_argument("--out", default="bayesbin_results", help="results folder (demo/ inside)")
    d.set_defaults(func=cmd_demo)

    f = sub.add_parser(
        "fit", help="fit mnist, fashion-mnist, mnist56 or a CSV file", formatter_class=fmt
    )
    f.add_argument(
        "--data", type=_data_arg, required=True, help="mnist | fashion-mnist | mnist56 | FILE.csv"
    )
    f.add_argument(
        "--test",
        type=_data_arg,
        default=None,
        help="held-out data scored after the fit (default: the dataset's test split; none for "
        "a CSV)",
    )
    f.add_argument(
        "--label-column",
        default="label",
        help="CSV label column: a name, or a 0-based number (negative from the end)",
    )
    f.add_argument(
        "--no-header",
        action="store_true",
        help="the CSV files have no header row (the label column then is the last one unless "
        "--label-column gives its number)",
    )
    f.add_argument("--data-dir", default=None, help="folder with the IDX files")
    f.add_argument("--n-train", type=_positive_int, default=None, help="use the first N rows")
    f.add_argument("--classes", type=_positive_int, default=None, help="number of classes")
    f.add_argument(
        "--family",
        choices=["auto", "logistic", "softmax"],
        default="auto",
        help="logistic (2 classes) or softmax; auto picks by the number of classes",
    )
    f.add_argument("--encoding", choices=["01", "pm1"], default="01", help="w or 2w - 1")
    f.add_argument("--no-bias", action="store_true", help="no learned per-class bias")
    f.add_argument(
        "--scale", type=_scale_arg, default=None, help="'learn' or a fixed positive logit scale"
    )
    f.add_argument("--relaxed", action="store_true", help="Beta(1,1) weights (NUTS)")
    _sampling_options(f)
    f.add_argument("--seed", type=_nonneg_int, default=None, help="random seed")
    f.add_argument("--out", default="bayesbin_results/fit", help="results folder")
    f.set_defaults(func=cmd_fit)

    r = sub.add_parser("predict", help="predict with a saved fit", formatter_class=fmt)
    r.add_argument("--fit", required=True, help="output folder of `bayesbin fit`")
    r.add_argument(
        "--data", type=_data_arg, required=True, help="mnist | fashion-mnist | mnist56 | FILE.csv"
    )
    r.add_argument("--label-column", default="label", help="CSV column to ignore, if present")
    r.add_argument("--no-header", action="store_true", help="the CSV has no header row")
    r.add_argument("--data-dir", default=None, help="folder with the IDX files")
    r.add_argument("--output", default="predictions.csv", help="CSV of predictions")
    r.add_argument("--quiet", action="store_true", help="print nothing but errors")
    r.set_defaults(func=cmd_predict)

    e = sub.add_parser(
        "export", help="write packed bits (and a C header) from a saved fit", formatter_class=fmt
    )
    e.add_argument("--fit", default=None, help="output folder of `bayesbin fit`")
    e.add_argument(
        "--bits", default=None, help="a saved .bbits model instead (a packed network, say)"
    )
    e.add_argument(
        "--divisor",
        type=_positive_float,
        default=255.0,
        help="networks: the C input q means x = q / divisor (255 for pixels k/255)",
    )
    e.add_argument(
        "--rule",
        choices=["marginal", "map", "draws"],
        default="marginal",
        help="which bits: P(w=1) > 0.5, the best draw, or an ensemble of draws",
    )
    e.add_argument(
        "--n-draws", type=_positive_int, default=None, help="draws kept with --rule draws"
    )
    e.add_argument("--output", default="model.bbits", help="packed model file")
    e.add_argument("--c-header", default=None, help="also write a C header here")
    e.add_argument("--quiet", action="store_true", help="print nothing but errors")
    e.set_defaults(func=cmd_export)

    b = sub.add_parser("benchmark", help="run benchmarks/bench_NAME.py (source checkout)")
    b.add_argument("name", help="benchmark name, e.g. bits")
    b.add_argument("extra", nargs=argparse.REMAINDER, help="arguments for the script")
    b.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)
    b.set_defaults(func=cmd_benchmark)
    return p


def main(argv=None) -> int:
    """Entry point of ``python -m bayesbin``: run a command, map errors to exit codes.

    Returns
    -------
    int
        0 on success, 2 for a user error (one line on stderr), 130 when interrupted.
    """
    args = build_parser().parse_args(argv)
    prog = f"bayesbin {args.command}"

    def say(*parts) -> None:
        if not args.quiet:
            print(*parts, flush=True)

    warnings.filterwarnings("ignore", message=".*could not link to a BLAS.*")
    warnings.filterwarnings("ignore", category=FutureWarning)
    if args.quiet:
        logging.getLogger("pymc").setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            from bayesbin.diagnostics import ConvergenceWarning

            warnings.simplefilter("ignore", ConvergenceWarning)  # said in words instead
            return int(args.func(args, say) or 0)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; no results were written", file=sys.stderr)
        return 130
    except (UserError, ValueError, TypeError, OSError) as exc:
        text = " ".join(str(exc).split())
        print(f"{prog}: error: {text}", file=sys.stderr)
        return 2
