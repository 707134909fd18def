"""Regenerate bayesbin/_data/mnist56.npz (MNIST 5 vs 6 as 5x5 binary images) from the IDX files.

Usage::

    python scripts/make_mnist56.py [--data-dir DIR] [--threshold 0.1] [--output PATH]
                                   [--no-download]

The MNIST files are found as :func:`bayesbin.load_mnist` finds them (``--data-dir``,
``$BAYESBIN_DATA_DIR``, ``shared/data`` or ``../shared/data`` beside the repository, the user
cache, then a verified download unless ``--no-download``). The output is written atomically.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from pathlib import Path

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # this checkout
from bayesbin.data import MNIST56_THRESHOLD, make_mnist56

__all__ = ["main"]

DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "bayesbin" / "_data" / "mnist56.npz"


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, build MNIST56, write the npz and print a summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="directory holding mnist/ IDX files")
    parser.add_argument(
        "--threshold",
        type=float,
        default=MNIST56_THRESHOLD,
        help=f"block-average threshold in [0, 1) (default {MNIST56_THRESHOLD})",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="npz to write")
    parser.add_argument("--no-download", action="store_true", help="never download MNIST")
    args = parser.parse_args(argv)

    data = make_mnist56(
        args.data_dir, args.threshold, path=args.output, download=not args.no_download
    )
    for split in ("train", "test"):
        x, y = data[f"x_{split}"], data[f"y_{split}"]
        print(
            f"{split}: {x.shape[0]} rows ({int((y == 0).sum())} fives, {int(y.sum())} sixes), "
            f"pixel density {x.mean():.4f}"
        )
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
