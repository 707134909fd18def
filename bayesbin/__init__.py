"""bayesbin: Bayesian binary-weight classifiers on PyMC, with fast exact samplers and packed bits."""

from importlib import metadata as _metadata

from bayesbin.bits import (
    PackedClassifier,
    PackedEnsemble,
    PackedInput,
    load_bits,
    pack_bits,
    to_bits,
    unpack_bits,
)
from bayesbin.data import (
    DataNotFoundError,
    load_fashion_mnist,
    load_mnist,
    load_mnist56,
    make_mnist56,
    read_idx,
)
from bayesbin.diagnostics import ConvergenceWarning, convergence_report, mixing_overview, summary
from bayesbin.estimator import BayesBinClassifier, fit
from bayesbin.linear import (
    ModelSpec,
    OneVectorTrapWarning,
    RecognitionError,
    binary_logistic,
    binary_softmax,
    get_spec,
    set_data,
)
from bayesbin.mode import find_mode
from bayesbin.posterior import (
    BinaryWeights,
    bit_probabilities,
    posterior_predictive_proba,
    threshold,
)
from bayesbin.samplers import (
    DiscreteLangevin,
    IncrementalGibbs,
    ReplicaExchange,
    TemperedTargetWarning,
)
from bayesbin.sampling import sample

try:
    __version__ = _metadata.version("bayesbin")
except _metadata.PackageNotFoundError:  # pragma: no cover - source tree without install
    __version__ = "0.0.0"

__all__ = [
    "BayesBinClassifier",
    "ConvergenceWarning",
    "RecognitionError",
    "convergence_report",
    "BinaryWeights",
    "PackedClassifier",
    "PackedEnsemble",
    "PackedInput",
    "ReplicaExchange",
    "find_mode",
    "bit_probabilities",
    "load_bits",
    "pack_bits",
    "posterior_predictive_proba",
    "threshold",
    "to_bits",
    "unpack_bits",
    "DataNotFoundError",
    "DiscreteLangevin",
    "TemperedTargetWarning",
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
