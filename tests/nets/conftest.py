"""Fixtures of the bayesbin.nets tests: single-threaded JAX, tiny data, toy fits, MNIST."""

from __future__ import annotations

import os

# One thread (2 shared cores; the rule of the house). XLA_FLAGS takes effect here, before the
# first `import jax`; the BLAS/OpenMP variables only if numpy is not imported yet, which
# tests/conftest.py already does: the thread pinning belongs at the top of that file.
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
for _var in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

# MNIST: tests that need the IDX files carry ``@pytest.mark.needs_data("mnist")``
# (tests/conftest.py: skip with a reason without the files, fail instead with
# BAYESBIN_REQUIRE_DATA=1). ``rng`` (seeded from the test name, never tuned) comes from there too.


@pytest.fixture(scope="session")
def mnist_train():
    """MNIST training split (x float32 (60000, 784) in [0, 1], y int64); never downloads."""
    import bayesbin

    return bayesbin.load_mnist("train", download=False)


def make_blocks(n: int, seed: int, size: int = 8, classes: int = 3):
    """A tiny separable image problem: class k lights up quadrant k of an 8x8 image."""
    r = np.random.default_rng(seed)
    x = (r.random((n, size, size, 1)) * 0.4).astype(np.float32)
    y = r.integers(0, classes, n)
    h = size // 2
    corners = [(0, 0), (h, h), (0, h), (h, 0)]
    for k in range(classes):
        i, j = corners[k]
        x[y == k, i : i + h, j : j + h] += 0.6
    return x, y


@pytest.fixture(scope="session")
def blocks():
    """600 training images (8x8x1, 3 classes) and 300 test images."""
    x, y = make_blocks(900, 7)
    return x[:600], y[:600], x[600:], y[600:]


TOY_ARCH = "6C3-MP2-12FC-SM3"
TOY_BNN = dict(epochs=3, batch_size=64, lr=1e-2, random_state=3, progressbar=False,
               early_stopping=False)
TOY_PBNET = dict(epochs=8, batch_size=64, lr=1e-2, random_state=5, progressbar=False,
                 early_stopping=False, n_networks=4, pool="sample")


@pytest.fixture(scope="session")
def toy():
    """Architecture and options of the toy fits (shared so compiled steps are reused)."""
    return {"arch": TOY_ARCH, "bnn": dict(TOY_BNN), "pbnet": dict(TOY_PBNET)}


@pytest.fixture(scope="session")
def bnn(blocks):
    pytest.importorskip("jax")
    from bayesbin import nets

    x, y, _, _ = blocks
    return nets.BNN(TOY_ARCH, **TOY_BNN).fit(x, y)


@pytest.fixture(scope="session")
def pbnet(blocks):
    pytest.importorskip("jax")
    from bayesbin import nets

    x, y, _, _ = blocks
    return nets.PBNet(TOY_ARCH, **TOY_PBNET).fit(x, y)
