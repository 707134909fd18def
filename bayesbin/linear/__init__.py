"""The Bayesian binary-weight linear classifier: model description, PyMC builders, numpy maths."""

from bayesbin.linear.graph import RecognitionError, get_spec, is_bayesbin_model, recognise
from bayesbin.linear.maths import (
    draw_logits,
    log_posterior,
    predictive_proba_from_draws,
    softmax,
)
from bayesbin.linear.model import (
    OneVectorTrapWarning,
    binary_logistic,
    binary_softmax,
    model_data,
    set_data,
)
from bayesbin.linear.spec import (
    Encoding,
    Family,
    Form,
    Likelihood,
    ModelSpec,
    VarNames,
    WeightLayout,
    attach_spec,
    weight_layout,
)

__all__ = [
    "Encoding",
    "Family",
    "Form",
    "Likelihood",
    "ModelSpec",
    "OneVectorTrapWarning",
    "RecognitionError",
    "VarNames",
    "WeightLayout",
    "attach_spec",
    "binary_logistic",
    "binary_softmax",
    "draw_logits",
    "get_spec",
    "is_bayesbin_model",
    "log_posterior",
    "model_data",
    "predictive_proba_from_draws",
    "recognise",
    "set_data",
    "softmax",
    "weight_layout",
]
