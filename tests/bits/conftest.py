"""Fixtures of the bits tests: one numba thread per pytest-xdist worker."""

from __future__ import annotations

import os

import numba

if os.environ.get("PYTEST_XDIST_WORKER"):  # workers share the cores: no nested parallelism
    numba.set_num_threads(1)
