"""bayesbin: Bayesian binary-weight classifiers on PyMC, with fast exact samplers and packed bits."""

from importlib import metadata as _metadata

from bayesbin.data import (
    DataNotFoundError,
    load_fashion_mnist,
    load_mnist,
    load_mnist56,
    make_mnist56,
    read_idx,
)
from bayesbin.diagnostics import mixing_overview, summary
from bayesbin.estimator import BayesBinClassifier, fit
from bayesbin.incremental import IncrementalGibbs
from bayesbin.models import (
    ModelSpec,
    OneVectorTrapWarning,
    binary_logistic,
    binary_softmax,
    get_spec,
    set_data,
)
from bayesbin.sampling import sample

try:
    __version__ = _metadata.version("bayesbin")
except _metadata.PackageNotFoundError:  # pragma: no cover - source tree without install
    __version__ = "0.0.0"

__all__ = [
    "BayesBinClassifier",
    "DataNotFoundError",
    "IncrementalGibbs",
    "ModelSpec",
    "OneVectorTrapWarning",
    "binary_logistic",
    "binary_softmax",
    "fit",
    "get_spec",
    "load_fashion_mnist",
    "load_mnist",
    "load_mnist56",
    "make_mnist56",
    "mixing_overview",
    "read_idx",
    "sample",
    "set_data",
    "summary",
]
