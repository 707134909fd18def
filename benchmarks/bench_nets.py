"""Deep binary networks on full MNIST: BNN (STE) MLP, the 9.87% trap, PBNet CNN; CPU s per epoch.

Single-threaded per process (set before JAX is imported). Every fit writes a checkpoint after
each epoch under ``--out``; running the same command again resumes from it, and a finished fit
is pickled (``<row>.pkl``) so the table can be printed again without training (``--table``).

Usage::

    python benchmarks/bench_nets.py --rows bnn,bnn_sign --out /work/runs/nets/bench
    python benchmarks/bench_nets.py --rows bnn_bin --out /work/runs/nets/bench  # binarized pixels
    nice -n 10 nohup python benchmarks/bench_nets.py --rows pbnet --pbnet-epochs 40 \\
        --out /work/runs/nets/bench > /work/runs/nets/bench/pbnet.log 2>&1 &
    python benchmarks/bench_nets.py --rows timing
    python benchmarks/bench_nets.py --table --out /work/runs/nets/bench
"""

from __future__ import annotations

import os

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import pickle  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout

CNN = "32C3-MP2-64C3-MP2-512FC-SM10"
MLP = "784-512-512-10"


def _pin_one_core(core: int | None) -> None:
    """Run on one core: XLA's CPU runtime also runs independent ops on a thread pool."""
    if hasattr(os, "sched_getaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[-1] if core is None else core})


def nll(proba: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood of the true labels."""
    return float(-np.mean(np.log(np.clip(proba[np.arange(len(y)), y], 1e-12, 1.0))))


def ece(proba: np.ndarray, y: np.ndarray, n_bins: int = 15) -> float:
    """Expected calibration error of the top-label confidence (equal-width bins): the
    library's own :func:`bayesbin.plots.reliability_bins`, so notebook and benchmark agree."""
    from bayesbin.plots import reliability_bins

    return float(reliability_bins(y, proba, n_bins=n_bins)["ece"])


def _metrics(proba, y) -> dict:
    return {"acc": float(np.mean(proba.argmax(1) == y)), "nll": nll(proba, y), "ece": ece(proba, y)}


def _fit(make, name: str, out: Path, x, y):
    """Fit (resuming from the checkpoint) or load the pickled fitted estimator."""
    pkl = out / f"{name}.pkl"
    if pkl.exists():
        with open(pkl, "rb") as fh:
            return pickle.load(fh)
    est = make(str(out / f"{name}.ckpt"))
    est.fit(x, y)
    from bayesbin._io import atomic_write

    atomic_write(pkl, lambda fh: pickle.dump(est, fh))
    return est


def _train_record(est) -> dict:
    h = est.history_
    return {
        "epochs": est.n_epochs_,
        "best_epoch": est.best_epoch_,
        "stopped_early": est.stopped_early_,
        "interrupted": est.interrupted_,
        "train_wall_s": float(np.sum(h["wall_time"])),
        "train_cpu_s": float(np.sum(h["cpu_time"])),
        "cpu_s_per_epoch": float(np.median(h["cpu_time"])),
        "val_accuracy": h["val_accuracy"],
        "params": {k: v for k, v in est.get_params().items() if k not in ("checkpoint",)},
    }


def run_bnn(args, x, y, xt, yt, out: Path, sign: bool, binarized: bool = False) -> dict:
    from bayesbin import nets

    name = "bnn_sign" if sign else ("bnn_bin" if binarized else "bnn")

    def make(ckpt):
        return nets.BNN(
            MLP, epochs=args.bnn_epochs, batch_size=100, lr=args.bnn_lr, lr_schedule="cosine",
            final_lr_ratio=args.final_lr_ratio, validation_fraction=args.validation_fraction,
            early_stopping=False, output="sign" if sign else "real", allow_binary_output=sign,
            random_state=args.seed, progressbar=args.progressbar, checkpoint=ckpt,
            input_threshold=0.5 if binarized else None,
        )

    est = _fit(make, name, out, x, y)
    model = f"BNN {MLP}" + (" + output sign" if sign else "")
    if binarized:
        model += " on binarized pixels (input_threshold=0.5)"
    rec = {"row": name, "model": model, **_train_record(est),
           "test": _metrics(est.predict_proba(xt), yt)}
    return rec


def _stage_one(path: Path):
    """A fitted PBNet to continue from; estimators pickled before ``train_state_`` existed get
    it from the checkpoint written beside them (``<name>.ckpt``: the same final state)."""
    with open(path, "rb") as fh:
        est = pickle.load(fh)
    if not hasattr(est, "train_state_"):
        with open(path.with_suffix(".ckpt"), "rb") as fh:
            ck = pickle.load(fh)
        if ck["book"]["epoch"] != est.n_epochs_:
            raise ValueError(f"{path.with_suffix('.ckpt')} is not the final state of {path}")
        est.train_state_ = {"params": ck["state"][0], "stats": ck["state"][1]}
    return est


def run_pbnet(args, x, y, xt, yt, out: Path) -> dict:
    from bayesbin import nets

    name = args.pbnet_name
    src = Path(args.pbnet_warm_from) if args.pbnet_warm_from else None
    first = _stage_one(src) if src is not None else None
    stage_one = None
    if first is not None:  # read before the second stage overwrites the estimator's history
        done = _train_record(first)
        stage_one = {"path": str(src), "epochs": done["epochs"],
                     "train_cpu_s": done["train_cpu_s"], "train_wall_s": done["train_wall_s"],
                     "weight_temperature": first.weight_temperature}
        earlier = src.parent / "results.json"
        if earlier.exists():  # a chain of stages: carry the earlier ones along
            for r in json.loads(earlier.read_text()).values():
                if r.get("row") == src.stem and "stage_one" in r:
                    stage_one["earlier"] = r["stage_one"]

    def make(ckpt):
        opts = dict(
            epochs=args.pbnet_epochs, batch_size=100, lr=args.pbnet_lr,
            lr_schedule="cosine", final_lr_ratio=args.final_lr_ratio,
            validation_fraction=args.validation_fraction, early_stopping=False,
            activations=args.pbnet_activations, temperature=args.pbnet_temperature,
            weight_temperature=args.pbnet_weight_temperature,
            augment_shift=args.pbnet_augment_shift,
            random_state=args.seed, progressbar=args.progressbar, checkpoint=ckpt,
        )
        if first is None:
            return nets.PBNet(CNN, **opts)
        return first.set_params(**opts, warm_start=True)  # a second stage from the first

    est = _fit(make, name, out, x, y)
    rec = {"row": name, "model": f"PBNet {CNN}", **_train_record(est), "test": {}}
    if stage_one is not None:
        rec["stage_one"] = stage_one
        rec["model"] += (f" + {est.n_epochs_} epochs at weight_temperature="
                         f"{args.pbnet_weight_temperature}")
    if args.pbnet_augment_shift:
        rec["model"] += f" (shifts up to {args.pbnet_augment_shift} px)"
    t0 = time.process_time()
    for method, n in (("clt", None), ("map", None), ("ensemble", 16)):
        proba = est.predict_proba(xt, method=method, n_networks=n)
        rec["test"][method] = _metrics(proba, yt)
    by_n = {}
    members = [nets.run_network(net, xt) for net in est._ensemble(16, None)]
    probs = [np.exp(z - z.max(1, keepdims=True)) for z in members]
    probs = [p / p.sum(1, keepdims=True) for p in probs]
    for n in (1, 2, 4, 8, 16):
        by_n[n] = _metrics(np.mean(probs[:n], axis=0), yt)
    rec["ensemble_by_n"] = by_n
    rec["single_sampled_acc"] = [float(np.mean(p.argmax(1) == yt)) for p in probs]
    rec["predict_cpu_s"] = time.process_time() - t0
    return rec


def peek_pbnet(args, x, y, xt, yt, out: Path) -> dict:
    """Evaluate the latest PBNet checkpoint (while the run goes on): CLT, MAP, 4-net ensemble."""
    from bayesbin import nets
    from bayesbin.nets.export import network_template

    with open(out / "pbnet.ckpt", "rb") as fh:
        ck = pickle.load(fh)
    est = nets.PBNet(CNN, progressbar=False)
    arch = nets.parse_architecture(CNN)
    xs = est._prepare_x(x, arch, reset=True)
    est._encode_y(y, xs.shape[0])
    est.plan_ = arch.resolve(est.input_shape_)
    est.template_ = network_template(est.plan_, est.classes_)
    est.random_seed_ = int(ck["seed"])
    rows = np.random.default_rng([ck["seed"], 9]).choice(len(xs), 5000, replace=False)
    est._finalise(ck["state"][0], xs[np.sort(rows)], int(ck["seed"]))
    rec = {"row": "pbnet_peek", "model": f"PBNet {CNN} (checkpoint)", "epochs": ck["book"]["epoch"],
           "val_accuracy": ck["history"]["val_accuracy"], "test": {}}
    for method, n in (("clt", None), ("map", None), ("ensemble", 4)):
        rec["test"][f"{method}{n or ''}"] = _metrics(
            est.predict_proba(xt, method=method, n_networks=n), yt)
    print(json.dumps(rec, indent=1), flush=True)
    return rec


def run_timing(args, x, y) -> list[dict]:
    """CPU seconds per epoch (550 batches of 100) from timed steps, binary vs float."""
    from bayesbin import nets
    from bayesbin.nets import _jax
    from bayesbin.nets.export import network_template

    rows = []
    ste = nets.get_quantizer("ste_sign")
    for kind, arch in (("bnn", MLP), ("float", MLP), ("pbnet", CNN), ("float", CNN)):
        a = nets.parse_architecture(arch)
        plan = a.resolve((28, 28, 1) if a.is_image else (784,))
        tmpl = network_template(plan, list(range(10)))
        shapes = {lay.name: lay.weight_shape for lay in plan.layers}
        tr = _jax.Trainer(kind, tmpl, shapes, lr=1e-3, lr_schedule="cosine", total_steps=10**4,
                          kernel_quantizer=ste, activation_quantizer=ste, pool="sample",
                          activations="sample", seed=0)
        state = tr.init(np.random.default_rng(0), 0.05)
        xb = x[:100].reshape((100, *plan.input_shape))
        mask = np.ones(100, np.float32)
        state, loss, _ = tr.step(state, xb, y[:100], mask, 0)
        float(loss)  # compiled
        n = args.timing_steps if kind != "pbnet" else max(5, args.timing_steps // 10)
        c0, t0 = time.process_time(), time.monotonic()
        for i in range(n):
            state, loss, _ = tr.step(state, x[i * 100:(i + 1) * 100].reshape(xb.shape),
                                     y[i * 100:(i + 1) * 100], mask, i + 1)
        float(loss)
        cpu = (time.process_time() - c0) / n
        rows.append({"row": "timing", "model": f"{kind} {arch}", "cpu_ms_per_batch": 1e3 * cpu,
                     "wall_ms_per_batch": 1e3 * (time.monotonic() - t0) / n,
                     "cpu_s_per_epoch_550": 550 * cpu, "steps": n})
    return rows


def table(records: list[dict]) -> str:
    lines = ["| model | epochs | train time (CPU) | CPU s/epoch | test accuracy | test NLL | "
             "test ECE |", "|---|---|---|---|---|---|---|"]
    for r in records:
        if r["row"] == "timing":
            continue
        tests = r["test"]
        if "acc" in tests:
            tests = {"": tests}
        for label, m in tests.items():
            model = r["model"] + (f" — {label}" if label else "")
            if label == "ensemble":
                model += " (16 sampled nets)"
            lines.append(
                f"| {model} | {r['epochs']} | {r['train_cpu_s'] / 60:.1f} min | "
                f"{r['cpu_s_per_epoch']:.1f} | {100 * m['acc']:.2f}% | {m['nll']:.4f} | "
                f"{m['ece']:.4f} |")
    timing = [r for r in records if r["row"] == "timing"]
    if timing:
        lines += ["", "| training step (batch 100, one core) | CPU ms / batch | "
                  "CPU s / epoch (550 batches) |", "|---|---|---|"]
        lines += [f"| {r['model']} | {r['cpu_ms_per_batch']:.1f} | {r['cpu_s_per_epoch_550']:.1f} |"
                  for r in timing]
    ens = [r for r in records if "ensemble_by_n" in r]
    for r in ens:
        lines += ["", "| sampled nets in the ensemble | accuracy | NLL | ECE |", "|---|---|---|---|"]
        for n, m in r["ensemble_by_n"].items():
            lines.append(f"| {n} | {100 * m['acc']:.2f}% | {m['nll']:.4f} | {m['ece']:.4f} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", default="bnn,bnn_sign,pbnet,timing")
    p.add_argument("--out", default="/work/runs/nets/bench")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bnn-epochs", type=int, default=50)
    p.add_argument("--bnn-lr", type=float, default=3e-3)
    p.add_argument("--pbnet-epochs", type=int, default=40)
    p.add_argument("--pbnet-lr", type=float, default=3e-3)
    p.add_argument("--pbnet-activations", default="sample")
    p.add_argument("--pbnet-temperature", type=float, default=1.0)
    p.add_argument("--pbnet-weight-temperature", type=float, default=1.0)
    p.add_argument("--pbnet-augment-shift", type=int, default=0,
                   help="random image shifts of up to this many pixels in training")
    p.add_argument("--pbnet-warm-from", default=None,
                   help="a fitted PBNet pickle to continue from (warm_start=True)")
    p.add_argument("--pbnet-name", default="pbnet", help="file and row name of the PBNet fit")
    p.add_argument("--final-lr-ratio", type=float, default=0.01)
    p.add_argument("--validation-fraction", type=float, default=1 / 12)
    p.add_argument("--timing-steps", type=int, default=100)
    p.add_argument("--no-progressbar", dest="progressbar", action="store_false")
    p.add_argument("--no-pin", dest="pin", action="store_false",
                   help="do not restrict the process to one core")
    p.add_argument("--core", type=int, default=None, help="the core to run on (default: last)")
    p.add_argument("--table", action="store_true", help="only print the table of saved results")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.json"
    records = json.loads(results.read_text()) if results.exists() else {}
    if not args.table:
        if args.pin:
            _pin_one_core(args.core)
        from bayesbin import load_mnist

        x, y = load_mnist("train")
        xt, yt = load_mnist("test")
        for row in args.rows.split(","):
            t0 = time.monotonic()
            if row in ("bnn", "bnn_sign", "bnn_bin"):
                rec = run_bnn(args, x, y, xt, yt, out, sign=row == "bnn_sign",
                              binarized=row == "bnn_bin")
            elif row == "pbnet":
                rec = run_pbnet(args, x, y, xt, yt, out)
            elif row == "peek":
                peek_pbnet(args, x, y, xt, yt, out)
                continue
            elif row == "timing":
                rec = run_timing(args, x, y)
            else:
                raise SystemExit(f"unknown row {row!r}")
            wall = time.monotonic() - t0
            # merge with what other benchmark processes wrote meanwhile
            records = json.loads(results.read_text()) if results.exists() else {}
            for r in rec if isinstance(rec, list) else [rec]:
                r["bench_wall_s"] = wall
                r["machine"] = platform.processor() or platform.machine()
                records[f"{r['row']}:{r['model']}"] = r
            from bayesbin._io import atomic_write

            blob = json.dumps(records, indent=1, default=str).encode()
            atomic_write(results, lambda fh, b=blob: fh.write(b))
            print(f"[{row}] done in {wall / 60:.1f} min", flush=True)
    print(table(list(records.values())))


if __name__ == "__main__":
    main()
