"""Execute the notebooks top to bottom and store their outputs (the repo shows a real run).

Usage::

    python scripts/run_notebooks.py                      # every notebooks/*.ipynb, full mode,
                                                         # outputs written back in place
    python scripts/run_notebooks.py notebooks/01_mnist56_toy.ipynb
    python scripts/run_notebooks.py --fast --output-dir /tmp/nb   # fast mode, copies elsewhere

Full mode writes the executed notebook over the original (atomically: a temp file in the same
folder, then ``os.replace``), so the committed outputs are regenerated when results change.
Fast mode (``BAYESBIN_FAST=1``) never overwrites a notebook: it needs ``--output-dir`` or
``--check`` (execute only). Figures are rendered inline (``MPLBACKEND`` is removed from the
kernel's environment), cell timing metadata is not recorded, and the kernel is ``python3``
(this interpreter's ipykernel).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

__all__ = ["execute_notebook", "main"]

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"


def execute_notebook(
    path: Path, *, fast: bool, timeout: int = 600, kernel_name: str = "python3"
) -> nbformat.NotebookNode:
    """Execute one notebook in a fresh kernel and return it with outputs.

    Parameters
    ----------
    path : Path
        The ``.ipynb`` file; it is read, never written.
    fast : bool
        Run with ``BAYESBIN_FAST=1`` (small budgets) instead of the full mode.
    timeout : int
        Seconds allowed per cell.
    kernel_name : str
        Jupyter kernel to start.

    Returns
    -------
    nbformat.NotebookNode
        The executed notebook (outputs and execution counts filled in).

    Raises
    ------
    nbclient.exceptions.CellExecutionError
        When a cell raises; the message holds the cell's source and traceback.
    """
    nb = nbformat.read(path, as_version=4)
    saved = {k: os.environ.get(k) for k in ("BAYESBIN_FAST", "MPLBACKEND")}
    os.environ.pop("MPLBACKEND", None)  # ipykernel then picks the inline backend (PNG outputs)
    if fast:
        os.environ["BAYESBIN_FAST"] = "1"
    else:
        os.environ.pop("BAYESBIN_FAST", None)
    try:
        client = NotebookClient(
            nb,
            timeout=timeout,
            kernel_name=kernel_name,
            record_timing=False,
            resources={"metadata": {"path": str(path.parent)}},
        )
        client.execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return nb


def _write_atomic(nb: nbformat.NotebookNode, target: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            nbformat.write(nb, fh)
        # mkstemp makes the file private (0600); keep the target's mode, or the umask default
        if target.exists():
            mode = target.stat().st_mode & 0o777
        else:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "notebooks", nargs="*", type=Path, help="notebooks to run (default: notebooks/*.ipynb)"
    )
    parser.add_argument("--fast", action="store_true", help="run with BAYESBIN_FAST=1")
    parser.add_argument(
        "--output-dir", type=Path, help="write executed copies here instead of in place"
    )
    parser.add_argument("--check", action="store_true", help="execute only, write nothing")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell (600)")
    args = parser.parse_args(argv)
    if args.fast and args.output_dir is None and not args.check:
        parser.error("--fast never overwrites the committed notebooks: add --output-dir or --check")
    paths = args.notebooks or sorted(NOTEBOOK_DIR.glob("*.ipynb"))
    if not paths:
        parser.error(f"no notebooks found in {NOTEBOOK_DIR}")
    for path in paths:
        if path.suffix != ".ipynb" or not path.is_file():
            parser.error(f"not a notebook file: {path}")
    if args.output_dir is not None:
        args.output_dir.mkdir(parents=True, exist_ok=True)
    status = 0
    for path in paths:
        t0 = time.perf_counter()
        try:
            nb = execute_notebook(path, fast=args.fast, timeout=args.timeout)
        except CellExecutionError as exc:
            print(f"FAILED {path}:\n{exc}", file=sys.stderr)
            status = 1
            continue
        elapsed = time.perf_counter() - t0
        if args.check:
            where = "not written"
        else:
            target = path if args.output_dir is None else args.output_dir / path.name
            _write_atomic(nb, target)
            where = str(target)
        mode = "fast" if args.fast else "full"
        print(f"{path}: {mode} mode, {elapsed:.0f} s, {where}")
    return status


if __name__ == "__main__":
    sys.exit(main())
