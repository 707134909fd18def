"""Notebooks: every notebooks/*.ipynb runs top to bottom in fast mode and keeps a real run's outputs.

The execution test runs each notebook in a fresh ``python3`` kernel with ``BAYESBIN_FAST=1`` and
``MPLBACKEND=Agg``, on an in-memory copy whose working directory is a temporary folder (the
committed notebook and its outputs are never written). The cheap tests read the committed files:
every code cell was executed, in order, in full mode, without errors; the files stay small; code
cells import only bayesbin's public API, the standard library and bayesbin's own dependencies.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
import sys
from pathlib import Path

import pytest

import bayesbin

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT = 600  # seconds per cell
MAX_NOTEBOOK_BYTES = 3_000_000  # outputs are PNGs and short tables, not data dumps
# Third-party modules a notebook may import: bayesbin's install_requires (a fresh
# ``pip install bayesbin`` has them) and what they bring along.
ALLOWED_THIRD_PARTY = {
    "arviz",
    "bayesbin",
    "matplotlib",
    "numba",
    "numpy",
    "pandas",
    "pymc",
    "pytensor",
    "scipy",
    "sklearn",
    "xarray",
}
FAST_LINE = re.compile(r"fast mode: (True|False)")


def _ids(paths):
    return [p.name for p in paths]


def _read(path: Path) -> dict:
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _code_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def _python_source(cell: dict) -> str:
    """Cell source with IPython magics and shell escapes blanked out (line numbers kept)."""
    lines = _source(cell).splitlines()
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in lines)


def _output_text(cell: dict) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            text = out.get("text", "")
            parts.append("".join(text) if isinstance(text, list) else text)
        elif "data" in out and "text/plain" in out["data"]:
            text = out["data"]["text/plain"]
            parts.append("".join(text) if isinstance(text, list) else text)
    return "".join(parts)


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _failure_report(nb, exc: Exception) -> str:
    """Index, source and error of the failing cell of an executed notebook."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                tb = _ANSI.sub("", "\n".join(out.get("traceback", [])))
                return (
                    f"cell {index} (execution_count {cell.get('execution_count')}) failed with "
                    f"{out.get('ename')}: {out.get('evalue')}\n--- source ---\n{cell.source}\n"
                    f"--- traceback ---\n{tb}"
                )
    return f"{type(exc).__name__}: {_ANSI.sub('', str(exc))}"


# ---------------------------------------------------------------------------------------------
# execution in fast mode
# ---------------------------------------------------------------------------------------------


def _datasets(path: Path) -> list[str]:
    """The IDX datasets a notebook loads (its run needs their files)."""
    text = path.read_text()
    out = []
    if "load_mnist(" in text:
        out.append("mnist")
    if "load_fashion_mnist(" in text:
        out.append("fashion-mnist")
    return out


RUNS = [
    pytest.param(p, marks=[pytest.mark.needs_data(*_datasets(p))] if _datasets(p) else [])
    for p in NOTEBOOKS
]


@pytest.mark.parametrize("path", RUNS, ids=_ids(NOTEBOOKS))
def test_notebook_runs_in_fast_mode(path, tmp_path, monkeypatch):
    # declared test dependencies (nbclient, nbformat, ipykernel): an ImportError is a failure
    import nbclient
    import nbformat
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    monkeypatch.setenv("BAYESBIN_FAST", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    committed = path.read_bytes()
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:  # start from a clean copy: no stale outputs can satisfy a check
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    client = nbclient.NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    failure = None
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as exc:
        failure = _failure_report(nb, exc)
    if failure is not None:  # outside the except block: no chained, ANSI-coloured traceback
        pytest.fail(f"{path.name} in fast mode:\n{failure}", pytrace=False)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)
    text = "".join(_output_text(c) for c in code)
    assert "fast mode: True" in text, "the notebook did not pick up BAYESBIN_FAST=1"
    assert path.read_bytes() == committed, "executing must not touch the committed notebook"


# ---------------------------------------------------------------------------------------------
# the committed files
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_committed_notebook_shows_a_full_run(path):
    nb = _read(path)
    code = _code_cells(nb)
    assert code, f"{path.name} has no code cells"
    counts = [c.get("execution_count") for c in code]
    missing = [i for i, n in enumerate(counts) if n is None]
    assert not missing, f"{path.name}: code cells {missing} were never executed"
    assert counts == list(range(1, len(code) + 1)), (
        f"{path.name}: execution counts {counts} are not one top-to-bottom run in a fresh kernel"
    )
    errors = [
        i
        for i, c in enumerate(code)
        if any(o.get("output_type") == "error" for o in c.get("outputs", []))
    ]
    assert not errors, f"{path.name}: code cells {errors} store an error"
    modes = FAST_LINE.findall("".join(_output_text(c) for c in code))
    assert modes, f"{path.name}: a code cell must print 'fast mode: ...' (see notebooks/README.md)"
    assert set(modes) == {"False"}, f"{path.name}: the stored outputs come from a fast-mode run"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_committed_notebook_is_small(path):
    size = path.stat().st_size
    assert size <= MAX_NOTEBOOK_BYTES, f"{path.name} is {size:,} bytes (> {MAX_NOTEBOOK_BYTES:,})"


def _bayesbin_aliases(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "bayesbin" or alias.name.startswith("bayesbin."):
                    names.add(alias.asname or "bayesbin")
        elif isinstance(node, ast.ImportFrom) and node.module == "bayesbin":
            for alias in node.names:
                if _is_public_submodule(alias.name):
                    names.add(alias.asname or alias.name)
    return names


def _is_public_submodule(name: str) -> bool:
    if name.startswith("_"):
        return False
    try:
        importlib.import_module(f"bayesbin.{name}")
    except ImportError:
        return False
    return True


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def import_problems(source: str) -> list[str]:
    """What in ``source`` reaches past bayesbin's public API or outside the allowed modules.

    Parameters
    ----------
    source : str
        Python source of one code cell (magics removed).

    Returns
    -------
    list of str
        One message per offending import or attribute access; empty when clean.
    """
    tree = ast.parse(source)
    problems = []
    stdlib = sys.stdlib_module_names
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                problems.append(f"line {node.lineno}: relative import")
                continue
            modules = [node.module]
        else:
            continue
        for module in modules:
            top = module.split(".")[0]
            if top not in stdlib and top not in ALLOWED_THIRD_PARTY:
                problems.append(
                    f"line {node.lineno}: imports {module!r}, not a bayesbin dependency"
                )
            if top == "bayesbin" and any(_private(part) for part in module.split(".")):
                problems.append(f"line {node.lineno}: imports private module {module!r}")
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bayesbin"):
            for alias in node.names:
                if alias.name == "*":
                    problems.append(f"line {node.lineno}: star import from {node.module}")
                elif _private(alias.name):
                    problems.append(
                        f"line {node.lineno}: imports private name {alias.name!r} from "
                        f"{node.module}"
                    )
                elif node.module == "bayesbin" and not (
                    alias.name in bayesbin.__all__
                    or alias.name == "__version__"
                    or _is_public_submodule(alias.name)
                ):
                    problems.append(
                        f"line {node.lineno}: {alias.name!r} is not in bayesbin.__all__ nor a "
                        "public submodule"
                    )
    aliases = _bayesbin_aliases(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            base = node.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if isinstance(base, ast.Name) and base.id in aliases:
                problems.append(f"line {node.lineno}: private attribute {node.attr!r} of bayesbin")
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_uses_only_public_api(path):
    nb = _read(path)
    problems = []
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        try:
            found = import_problems(_python_source(cell))
        except SyntaxError as exc:
            found = [f"syntax error: {exc}"]
        problems.extend(f"cell {index}, {p}" for p in found)
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    "source, expected",
    [
        ("import bayesbin\nfrom bayesbin import plots, fit\nimport numpy as np", []),
        ("import bayesbin.plots as bbp\nbbp.plot_bit_traces", []),
        ("import bayesbin\nbayesbin.__version__", []),
        ("from bayesbin._compat import az", ["private module"]),
        ("import bayesbin._validation", ["private module"]),
        ("from bayesbin.linear import _onehot", ["private name"]),
        ("import bayesbin\nbayesbin.linear._onehot", ["private attribute"]),
        ("import bayesbin as bb\nbb._compat.az", ["private attribute"]),
        ("from bayesbin import no_such_name", ["not in bayesbin.__all__"]),
        ("from bayesbin import *", ["star import"]),
        ("import torch", ["not a bayesbin dependency"]),
        ("from .helpers import x", ["relative import"]),
    ],
)
def test_import_checker(source, expected):
    problems = import_problems(source)
    assert len(problems) == len(expected), problems
    for problem, fragment in zip(problems, expected):
        assert fragment in problem
