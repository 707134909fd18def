"""Full MNIST end to end: ``bayesbin.fit(x, y, classes=10)`` with its defaults.

Prints wall time, posterior-predictive test accuracy, single-draw accuracies, and how the bits mix
(share of bits with R-hat <= 1.01 among those that moved, constant bits, ESS), plus R-hat/ESS of
the bias and scale.

    python benchmarks/bench_fit_mnist.py               # defaults: 1000 draws x 2 chains
    python benchmarks/bench_fit_mnist.py --draws 200   # quicker look
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time
import warnings

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # this checkout
import bayesbin


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--draws", type=int, default=None, help="default: the fit default")
    p.add_argument("--tune", type=int, default=None)
    p.add_argument("--chains", type=int, default=None)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--save", default=None, help="write the InferenceData here (netCDF)")
    args = p.parse_args()
    warnings.filterwarnings("ignore")
    x, y = bayesbin.load_mnist("train")
    xt, yt = bayesbin.load_mnist("test")
    opts = {
        k: v
        for k, v in dict(draws=args.draws, tune=args.tune, chains=args.chains).items()
        if v is not None
    }
    print(
        f"bayesbin.fit(x, y, classes=10, random_seed={args.seed}, {opts}) on "
        f"{x.shape[0]} x {x.shape[1]}; load average {os.getloadavg()[0]:.1f}"
    )
    t0, c0 = time.perf_counter(), time.process_time()
    clf = bayesbin.fit(x, y, classes=10, random_seed=args.seed, progressbar=False, **opts)
    wall = time.perf_counter() - t0
    post = clf.idata_.posterior
    nc, nd = post.sizes["chain"], post.sizes["draw"]
    t1 = time.perf_counter()
    acc = clf.score(xt, yt)
    t_pred = time.perf_counter() - t1
    from bayesbin.posterior import posterior_predictive_proba

    singles = [
        float((posterior_predictive_proba(clf.idata_, xt, draws=[i]).argmax(1) == yt).mean())
        for i in (0, nd - 1, nc * nd - 1)
    ]
    ov = bayesbin.mixing_overview(clf)
    table = bayesbin.summary(clf, var_names=["b", "scale"])
    print(
        f"wall time of fit: {wall:.0f} s (this process' CPU {time.process_time() - c0:.0f} s; "
        "chains run in worker processes)"
    )
    print(f"steps: {json.loads(post.attrs['bayesbin_steps'])}")
    print(
        f"posterior-predictive test accuracy: {acc:.4f} ({nc} chains x {nd} draws; predict "
        f"{t_pred:.1f} s)"
    )
    print(f"single-draw test accuracy (first, last of chain 0, last): {singles}")
    print(
        f"bits: {ov['n_bits']}, constant {ov['n_constant']} "
        f"({ov['n_constant'] / ov['n_bits']:.1%}); among the {ov['n_bits'] - ov['n_constant']} "
        f"that moved: R-hat <= 1.01 for {ov['frac_mixing']:.1%}, max R-hat {ov['max_rhat']:.3f}, "
        f"ESS bulk min {ov['min_ess_bulk']:.0f} / median {ov['median_ess_bulk']:.0f}"
    )
    print(
        f"stuck apart (constant per chain, different across chains): {ov['n_stuck_apart']}; "
        f"max finite R-hat {ov['max_finite_rhat']:.3f}"
    )
    start = json.loads(post.attrs.get("bayesbin_start", "{}"))
    print(f"start: {start}")
    lp = clf.idata_.sample_stats["lp"].values
    for c in range(nc):
        print(
            f"chain {c}: lp mean {lp[c].mean():.1f}, first {lp[c, 0]:.1f}, last {lp[c, -1]:.1f},"
            f" max {lp[c].max():.1f}"
        )
    print(table[["mean", "sd", "ess_bulk", "ess_tail", "r_hat"]].round(3).to_string())
    if args.save:
        from bayesbin._compat import to_netcdf

        to_netcdf(clf.idata_, args.save)
        print(f"saved {args.save}")


if __name__ == "__main__":
    main()
