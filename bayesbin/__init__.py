"""bayesbin: Bayesian binary-weight classifiers on PyMC, with fast exact samplers and packed bits."""

from importlib import metadata as _metadata

from bayesbin.models import (
    ModelSpec,
    OneVectorTrapWarning,
    binary_logistic,
    binary_softmax,
    get_spec,
    set_data,
)

try:
    __version__ = _metadata.version("bayesbin")
except _metadata.PackageNotFoundError:  # pragma: no cover - source tree without install
    __version__ = "0.0.0"

__all__ = [
    "ModelSpec",
    "OneVectorTrapWarning",
    "binary_logistic",
    "binary_softmax",
    "get_spec",
    "set_data",
]
