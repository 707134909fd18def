"""Deep binary networks: the straight-through BNN and PBNet, trained with JAX, run with numpy.

``from bayesbin import nets`` needs only numpy: JAX and optax are imported lazily by ``fit``
(install them with ``pip install "bayesbin[nets]"``). Fitted estimators, their exported binary
networks and :meth:`PBNet.sample_networks` results predict with numpy alone.

Examples
--------
>>> from bayesbin import nets
>>> nets.parse_architecture("784-512-512-10").n_outputs
10
>>> clf = nets.BNN("784-512-512-10", epochs=20, random_state=0)     # doctest: +SKIP
>>> pb = nets.PBNet("32C3-MP2-64C3-MP2-512FC-SM10", epochs=30)       # doctest: +SKIP
"""

from bayesbin.nets import layers, quantizers
from bayesbin.nets._base import TrainingInterruptedWarning
from bayesbin.nets.architecture import Architecture, Plan, parse_architecture
from bayesbin.nets.bnn import BNN
from bayesbin.nets.clt import clt_forward
from bayesbin.nets.export import (
    estimate_bn_statistics,
    networks_from_idata,
    networks_to_idata,
    run_network,
    weight_probability_images,
)
from bayesbin.nets.pbnet import PBNet
from bayesbin.nets.quantizers import QUANTIZERS, get_quantizer

__all__ = [
    "BNN",
    "PBNet",
    "QUANTIZERS",
    "Architecture",
    "Plan",
    "TrainingInterruptedWarning",
    "clt_forward",
    "estimate_bn_statistics",
    "get_quantizer",
    "layers",
    "networks_from_idata",
    "networks_to_idata",
    "parse_architecture",
    "quantizers",
    "run_network",
    "weight_probability_images",
]
