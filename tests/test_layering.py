"""Imports flow one way through the sub-packages; every module says what it owns and exports.

The chain (lower layers first): shared helpers -> data -> linear -> samplers (kernels, then PyMC
adapters) -> mode -> sampling -> posterior/diagnostics -> bits -> estimator -> plots -> cli. A
module may import bayesbin modules of its own layer or a lower one, never a higher one; the pure
kernels import no PyMC, PyTensor or ArviZ, and only ``bayesbin/nets/_jax.py`` imports JAX.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

PKG = pathlib.Path(__file__).resolve().parent.parent / "bayesbin"

# Layer of every module (dotted path inside bayesbin; a package's __init__ is the package name).
LAYERS = {
    "_compat": 0,
    "_validation": 0,
    "_io": 0,
    "_progress": 0,
    "encoding": 0,
    "data": 1,
    "linear.spec": 2,
    "linear.maths": 3,
    "linear.graph": 4,
    "linear.model": 5,
    "linear": 6,
    "samplers.kernels.problem": 10,
    "samplers.kernels.tempering": 10,
    "samplers.kernels.dmala": 10,
    "samplers.kernels.flips": 11,
    "samplers.kernels.groups": 12,
    "samplers.kernels.continuous": 12,
    "samplers.kernels.steps": 13,
    "samplers.kernels": 14,
    "samplers.adapter": 15,
    "samplers.incremental": 16,
    "samplers.dmala": 16,
    "samplers.replica": 17,
    "samplers": 18,
    "mode": 20,
    "sampling": 21,
    "posterior": 22,
    "diagnostics": 19,
    "bits.kernels": 30,  # compiled kernels: no bayesbin imports but bits.kernels itself
    "bits.levelkernels": 30,
    "bits.netkernels": 30,
    "bits.simdkernels": 30,  # AVX2 hidden dense kernel (x86-64), used only where the host has AVX2
    "bits.packing": 31,  # bit order, pack/unpack, inputs
    "bits.description": 31,  # the interchange description of a network (pure numpy)
    "bits.reference": 31,  # the float64 reference forward pass (pure numpy)
    "bits.layers": 32,
    "bits.netdata": 32,  # sampled networks as ArviZ data (reader and writer)  # the layer seam: packed weights + output step
    "bits.fileformat": 33,
    "bits.cexport": 33,
    "bits.netlayers": 33,
    "bits.linear": 34,  # PackedClassifier, PackedEnsemble, to_bits
    "bits.network": 35,  # PackedNetwork, pack_network
    "bits.loading": 36,  # load_bits: every model kind
    "bits": 39,
    "estimator": 50,
    "plots._common": 51,
    "plots.weights": 52,
    "plots.predictive": 52,
    "plots": 53,
    "cli": 55,
    "__main__": 60,
    "": 60,  # bayesbin/__init__.py
}

# Sub-trees with their own, later-checked layering (filled in as they land).
PREFIX_LAYERS = {
    "nets.": 45,
    "nets": 46,
}

NO_PYMC = ("samplers.kernels",)
JAX_MODULES = {"nets._jax"}


def _module_name(path: pathlib.Path) -> str:
    rel = path.relative_to(PKG).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = sorted(_module_name(p) for p in PKG.rglob("*.py"))


def _layer(name: str) -> int | None:
    if name in LAYERS:
        return LAYERS[name]
    for prefix, layer in PREFIX_LAYERS.items():
        if name == prefix or name.startswith(prefix):
            return layer
    return None


def _is_module(name: str) -> bool:
    base = PKG.joinpath(*name.split(".")) if name else PKG
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def _imports(path: pathlib.Path) -> tuple[set[str], set[str]]:
    """(bayesbin modules imported, top-level third-party packages imported), anywhere in the file."""
    tree = ast.parse(path.read_text())
    ours, theirs = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "bayesbin" or node.module.startswith("bayesbin."):
                base = node.module.split(".", 1)[1] if "." in node.module else ""
                for alias in node.names:
                    sub = f"{base}.{alias.name}" if base else alias.name
                    ours.add(sub if _is_module(sub) else base)
            else:
                theirs.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("bayesbin."):
                    ours.add(alias.name.split(".", 1)[1])
                elif alias.name != "bayesbin":
                    theirs.add(alias.name.split(".")[0])
    return ours, theirs


def _path(name: str) -> pathlib.Path:
    base = PKG.joinpath(*name.split(".")) if name else PKG
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def test_every_module_has_a_layer():
    missing = [m for m in MODULES if _layer(m) is None]
    assert not missing, f"modules without a layer in tests/test_layering.py: {missing}"


@pytest.mark.parametrize("module", MODULES)
def test_imports_flow_one_way(module):
    mine = _layer(module)
    ours, _ = _imports(_path(module))
    for dep in ours:
        if dep == module:
            continue
        layer = _layer(dep)
        if layer is None:
            continue
        assert layer <= mine, f"bayesbin.{module} (layer {mine}) imports {dep} ({layer})"


@pytest.mark.parametrize("module", [m for m in MODULES if m.startswith(NO_PYMC)])
def test_kernels_import_no_pymc(module):
    _, theirs = _imports(_path(module))
    bad = theirs & {"pymc", "pytensor", "arviz", "xarray"}
    assert not bad, f"bayesbin.{module} is a pure kernel but imports {sorted(bad)}"


@pytest.mark.parametrize("module", MODULES)
def test_only_the_backend_imports_jax(module):
    _, theirs = _imports(_path(module))
    if module not in JAX_MODULES:
        assert not theirs & {"jax", "jaxlib", "optax"}, f"bayesbin.{module} imports JAX"


@pytest.mark.parametrize("module", MODULES)
def test_module_docstring_and_all(module):
    tree = ast.parse(_path(module).read_text())
    assert ast.get_docstring(tree), f"bayesbin/{module} has no module docstring"
    if module in ("__main__",):
        return
    names = {
        t.id
        for n in tree.body
        if isinstance(n, ast.Assign)
        for t in n.targets
        if isinstance(t, ast.Name)
    }
    assert "__all__" in names, f"bayesbin/{module} has no __all__"


def test_the_checks_catch_an_upward_import(tmp_path, monkeypatch):
    """The layering check itself: an upward import in a fake module is reported."""
    fake = tmp_path / "fake.py"
    fake.write_text('"""Fake."""\nfrom bayesbin.estimator import fit\n__all__ = []\n')
    ours, _ = _imports(fake)
    assert ours == {"estimator"}
    assert _layer("estimator") > _layer("linear.spec")
