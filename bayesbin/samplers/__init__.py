"""Samplers for binary weights: pure kernels and the thin PyMC step methods built on them."""

from bayesbin.samplers.dmala import DiscreteLangevin, TemperedTargetWarning
from bayesbin.samplers.incremental import IncrementalGibbs
from bayesbin.samplers.replica import ReplicaExchange

__all__ = ["DiscreteLangevin", "IncrementalGibbs", "ReplicaExchange", "TemperedTargetWarning"]
