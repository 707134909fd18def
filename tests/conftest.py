"""Shared fixtures: deterministic seeds, tiny data sets, the repository root."""

from __future__ import annotations

import os
import pathlib
import sys
import warnings

# One thread per test process (two shared cores, pytest-xdist runs one process per core). This
# must precede `import numpy` (OpenBLAS reads its thread count once) and any `import jax`
# (XLA reads XLA_FLAGS once).
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from helpers import require_data  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))  # for `import helpers` (shared test helpers)

os.environ.setdefault("BAYESBIN_FAST", "1")

# Tests that need the MNIST / Fashion-MNIST IDX files carry ``@pytest.mark.needs_data("mnist")``
# (or call helpers.require_data): see tests/helpers.py.
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


def pytest_runtest_setup(item):
    for marker in item.iter_markers("needs_data"):
        for name in marker.args:
            require_data(name)
