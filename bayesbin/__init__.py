"""bayesbin: Bayesian binary-weight classifiers on PyMC, with fast exact samplers and packed bits.

The public names load on first use (PEP 562), so ``import bayesbin`` and ``python -m bayesbin
--help`` do not import PyMC; ``from bayesbin import fit`` imports what ``fit`` needs.
"""

from __future__ import annotations

import importlib
from importlib import metadata as _metadata
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the names below, for type checkers and readers
    from bayesbin._validation import InputScaleWarning
    from bayesbin.bits import (
        PackedClassifier,
        PackedEnsemble,
        PackedInput,
        PackedNetwork,
        load_bits,
        pack_bits,
        pack_network,
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
    from bayesbin.diagnostics import (
        ConvergenceWarning,
        convergence_report,
        mixing_overview,
        summary,
    )
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

# public name -> the module that defines it
_EXPORTS = {
    "BayesBinClassifier": "bayesbin.estimator",
    "BinaryWeights": "bayesbin.posterior",
    "ConvergenceWarning": "bayesbin.diagnostics",
    "DataNotFoundError": "bayesbin.data",
    "DiscreteLangevin": "bayesbin.samplers",
    "IncrementalGibbs": "bayesbin.samplers",
    "InputScaleWarning": "bayesbin._validation",
    "ModelSpec": "bayesbin.linear",
    "OneVectorTrapWarning": "bayesbin.linear",
    "PackedClassifier": "bayesbin.bits",
    "PackedEnsemble": "bayesbin.bits",
    "PackedInput": "bayesbin.bits",
    "PackedNetwork": "bayesbin.bits",
    "pack_network": "bayesbin.bits",
    "RecognitionError": "bayesbin.linear",
    "ReplicaExchange": "bayesbin.samplers",
    "TemperedTargetWarning": "bayesbin.samplers",
    "binary_logistic": "bayesbin.linear",
    "binary_softmax": "bayesbin.linear",
    "bit_probabilities": "bayesbin.posterior",
    "convergence_report": "bayesbin.diagnostics",
    "find_mode": "bayesbin.mode",
    "fit": "bayesbin.estimator",
    "get_spec": "bayesbin.linear",
    "load_bits": "bayesbin.bits",
    "load_fashion_mnist": "bayesbin.data",
    "load_mnist": "bayesbin.data",
    "load_mnist56": "bayesbin.data",
    "make_mnist56": "bayesbin.data",
    "mixing_overview": "bayesbin.diagnostics",
    "pack_bits": "bayesbin.bits",
    "posterior_predictive_proba": "bayesbin.posterior",
    "read_idx": "bayesbin.data",
    "sample": "bayesbin.sampling",
    "set_data": "bayesbin.linear",
    "summary": "bayesbin.diagnostics",
    "threshold": "bayesbin.posterior",
    "to_bits": "bayesbin.bits",
    "unpack_bits": "bayesbin.bits",
}
_SUBMODULES = {
    "bits",
    "data",
    "diagnostics",
    "estimator",
    "linear",
    "mode",
    "nets",
    "plots",
    "posterior",
    "samplers",
    "sampling",
}

__all__ = [
    "BayesBinClassifier",
    "ConvergenceWarning",
    "InputScaleWarning",
    "RecognitionError",
    "convergence_report",
    "BinaryWeights",
    "PackedClassifier",
    "PackedEnsemble",
    "PackedInput",
    "PackedNetwork",
    "pack_network",
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


def __getattr__(name: str):
    """Import a public name, or a sub-package, on first use."""
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"bayesbin.{name}")
    else:
        raise AttributeError(f"module 'bayesbin' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """List the public names and sub-packages (for tab completion)."""
    return sorted({*globals(), *__all__, *_SUBMODULES})
