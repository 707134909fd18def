"""Imports flow one way: data -> models -> samplers -> posterior -> bits; the estimator ties them."""

from __future__ import annotations

import ast
import pathlib

import pytest

PKG = pathlib.Path(__file__).resolve().parent.parent / "bayesbin"

# Layer of every module; a module may import bayesbin modules of its own or a lower layer.
LAYERS = {
    "_compat": 0,
    "_validation": 0,
    "_io": 0,
    "data": 1,
    "models": 2,
    "_flipkernel": 3,
    "incremental": 3,
    "dmala": 3,
    "tempering": 3,
    "sampling": 3,
    "posterior": 4,
    "diagnostics": 4,
    "_popcount": 5,
    "bits": 5,
    "estimator": 6,
    "plots": 7,
    "cli": 8,
    "__main__": 9,
    "__init__": 9,
}


def _imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bayesbin"):
            parts = node.module.split(".")
            if len(parts) > 1:
                out.add(parts[1])
            else:
                out.update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("bayesbin."):
                    out.add(a.name.split(".")[1])
    return out


MODULES = sorted(p.stem for p in PKG.glob("*.py"))


def test_every_module_has_a_layer():
    assert set(MODULES) <= set(LAYERS), set(MODULES) - set(LAYERS)


@pytest.mark.parametrize("module", MODULES)
def test_imports_flow_one_way(module):
    mine = LAYERS[module]
    for dep in _imports(PKG / f"{module}.py"):
        if dep not in LAYERS:
            continue
        assert LAYERS[dep] <= mine, (
            f"bayesbin.{module} (layer {mine}) imports {dep} ({LAYERS[dep]})"
        )


@pytest.mark.parametrize("module", MODULES)
def test_module_docstring_and_all(module):
    tree = ast.parse((PKG / f"{module}.py").read_text())
    assert ast.get_docstring(tree), f"bayesbin/{module}.py has no module docstring"
    if module in ("__main__",):
        return
    names = {
        t.id
        for n in tree.body
        if isinstance(n, ast.Assign)
        for t in n.targets
        if isinstance(t, ast.Name)
    }
    assert "__all__" in names, f"bayesbin/{module}.py has no __all__"
