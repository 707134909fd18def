"""Shared fixtures: deterministic seeds, tiny data sets, the repository root."""

from __future__ import annotations

import os
import pathlib
import sys
import warnings

import numpy as np
import pytest

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))  # for `import helpers` (shared test helpers)

os.environ.setdefault("BAYESBIN_FAST", "1")

# Tests that need the MNIST / Fashion-MNIST IDX files carry ``@pytest.mark.needs_data("mnist")``.
# Without the files (and tests never download) they skip with a reason; with
# BAYESBIN_REQUIRE_DATA=1 (set by .ci/run) a missing file fails them instead, so CI cannot pass
# by skipping.
REQUIRE_DATA_ENV = "BAYESBIN_REQUIRE_DATA"
_DATA_TITLES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}
warnings.filterwarnings("ignore", message=".*could not link to a BLAS.*")


def seed_for(name: str) -> int:
    """Deterministic seed from a test name (PyMC style), never tuned."""
    return sum(ord(c) for c in name)


@pytest.fixture
def rng(request):
    return np.random.default_rng(seed_for(request.node.name))


@pytest.fixture(scope="session")
def repo_root() -> pathlib.Path:
    return REPO


@pytest.fixture(scope="session")
def tiny_binary():
    """40 rows, 3 binary features, labels {0,1}."""
    r = np.random.default_rng(11)
    x = r.integers(0, 2, size=(40, 3)).astype(float)
    y = (r.random(40) < 0.3 + 0.4 * x[:, 0]).astype(int)
    return x, y


@pytest.fixture(scope="session")
def tiny_multiclass():
    """60 rows, 3 real features in [0, 1], 3 classes."""
    r = np.random.default_rng(12)
    x = r.random((60, 3))
    y = np.argmax(x + 0.5 * r.random((60, 3)), axis=1)
    return x, y


def data_available(name: str) -> bool:
    """Whether both splits of dataset ``name`` ("mnist", "fashion-mnist") are on disk."""
    from bayesbin import data

    ds = data._DATASETS[name]
    try:
        for split in ("train", "test"):
            data._resolve_split_files(ds, split, None, download=False)
    except data.DataNotFoundError:
        return False
    return True


def require_data(name: str) -> None:
    """Skip (or, with BAYESBIN_REQUIRE_DATA=1, fail) the calling test when ``name`` is absent."""
    if name not in _DATA_TITLES:
        raise ValueError(f"unknown dataset {name!r}; known: {sorted(_DATA_TITLES)}")
    if data_available(name):
        return
    reason = (
        f"{_DATA_TITLES[name]} IDX files not found (looked in BAYESBIN_DATA_DIR, "
        "shared/data and ../shared/data beside the repository, and the download cache); "
        "tests never download"
    )
    if os.environ.get(REQUIRE_DATA_ENV) == "1":
        pytest.fail(f"{reason}; {REQUIRE_DATA_ENV}=1 turns this skip into a failure")
    pytest.skip(reason)


def pytest_runtest_setup(item):
    for marker in item.iter_markers("needs_data"):
        for name in marker.args:
            require_data(name)
