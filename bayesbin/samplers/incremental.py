"""PyMC step method ``IncrementalGibbs``: exact single-site updates of bayesbin's binary weights.

Each chain keeps the scale-free activations ``A = x @ Weff``, the class probabilities of every row
and the log-likelihood, so the exact Δlogp of flipping one bit is a sum over the nonzeros of that
bit's feature (see :mod:`bayesbin.samplers.kernels` for the maths and the compiled kernels). A step is
``sweeps_per_step`` sweeps over all bits, each bit updated by heat-bath Gibbs (``mode="gibbs"``,
flip with probability ``sigmoid(Δ)``) or Metropolized Gibbs (``mode="metropolis"``, always
propose the flip, accept with ``min(1, e^Δ)``), in a fresh random order (``scan="random"``) or in
C order (``scan="systematic"``); every sweep draws its order and one uniform per bit from the
step's ``rng`` (PyMC's per-chain generator), so the same seed gives the same draws. The cache is
rebuilt from scratch every ``refresh_every`` sweeps
and whenever ``w``, the bias or the scale differ from the cached values (e.g. after a NUTS step on
them, or at the start of a chain), so floating-point drift stays bounded.

Likelihood-neutral group moves (``pair_moves``, on by default for
``binary_logistic(form="two_output")`` and for ``binary_softmax``): the two-output form's
likelihood depends only on ``w[1, j] - w[0, j]``, so ``(0, 0)`` and ``(1, 1)`` have the same
likelihood; the softmax likelihood is unchanged when a whole row ``w[j, :]`` of K bits flips from
all 0 to all 1 (every class logit moves by the same amount). Single-site updates can only move
between the two through mixed states, whose likelihood may be far lower (chains stick, R-hat
explodes). After every sweep each feature whose group is all equal (the pair ``w[0, j] ==
w[1, j]``, or for softmax the K bits of row ``j``) proposes flipping the whole group; the
likelihood changes by exactly 0, so the move is accepted with ``min(1, e^Δ)`` for the prior change
``Δ = ±sum logit p`` alone (always, for p = 0.5). Features with a bit of prior p in {0, 1} have no
such move. The single-vector logistic form has none at all.

Passed the bias ``b`` and/or the learned ``scale`` as well, the step also moves them: after the
sweeps, ``continuous_steps`` random-walk Metropolis proposals on ``theta = (b, log scale)``, each
costing one O(n C) likelihood from the cached ``A`` (no matrix product). The proposal covariance
starts as ``lambda^2 F^{-1}`` (``F``: Fisher information plus prior precision at the current state)
and is replaced, at the end of doubling windows of tuning steps (50, 100, 200, ...), by the
empirical covariance of the window's draws (shrunk towards ``F^{-1}``); ``lambda`` follows a
Robbins-Monro rule towards acceptance 0.25. All of it adapts during tuning only and is frozen
afterwards, so the post-tuning chain is an exact Metropolis-within-Gibbs sampler.

Examples
--------
>>> import numpy as np, pymc as pm, bayesbin
>>> from bayesbin.samplers import IncrementalGibbs
>>> rng = np.random.default_rng(0)
>>> x = rng.integers(0, 2, size=(60, 4)).astype(float)
>>> model = bayesbin.binary_softmax(x, rng.integers(0, 3, 60), 3, bias=True)
>>> with model:  # doctest: +SKIP
...     idata = pm.sample(step=[IncrementalGibbs([model["w"], model["b"]])], chains=2)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pymc.blocking import DictToArrayBijection, RaveledVars
from pymc.step_methods.state import dataclass_state

from bayesbin.samplers.adapter import BinaryStep, BinaryStepState

__all__ = ["IncrementalGibbs", "IncrementalGibbsState"]


@dataclass_state
class IncrementalGibbsState(BinaryStepState):
    """Everything that changes while an :class:`IncrementalGibbs` step samples a chain."""


class IncrementalGibbs(BinaryStep):
    """Exact single-site sampler for the bits ``w`` of a bayesbin linear model (numba kernels).

    Parameters
    ----------
    vars : list of variables, optional
        ``[w]``, or ``w`` together with ``b`` and/or ``scale`` (random or value variables) to
        also move the continuous parameters (see the module docstring). Omitted: all free
        variables of the model (PyMC's convention).
    mode : {"gibbs", "metropolis"}
        Heat-bath Gibbs or Metropolized Gibbs (always propose the flip).
    scan : {"random", "systematic"}
        Fresh random feature order (and random order of a feature's bits) every sweep, or C
        order.
    sweeps_per_step : int
        Sweeps over all bits per step (per draw).
    refresh_every : int
        Rebuild the cache from scratch every this many sweeps.
    continuous_steps : int or "auto"
        Random-walk Metropolis proposals for the owned continuous parameters per step;
        ``"auto"`` keeps their cost near a sweep's
        (:func:`~bayesbin.samplers.adapter.default_continuous_steps`).
    beta : float
        Inverse temperature of the likelihood (1 samples the posterior).
    pair_moves : bool, optional
        After every sweep, propose flipping each all-equal likelihood-neutral group together:
        ``w[0, j]`` and ``w[1, j]`` for the two-output logistic form, the whole row ``w[j, :]``
        of K bits for the softmax form (exact; see the module docstring). Default: on for both;
        ``True`` for the single-vector logistic form raises ``ValueError`` (it has no
        likelihood-neutral groups).
    model : pm.Model, optional
        A bayesbin model with Bernoulli weights; taken from the context when omitted.
    rng : RandomGenerator, optional
        Seed or generator; PyMC replaces it per chain.
    initial_point : dict, optional
    blocked : bool
        Kept for PyMC; the step always updates its variables jointly.

    Notes
    -----
    Sampler statistics: ``n_flips`` (accepted flips this step), ``flip_rate`` (per bit visit),
    ``n_pair_flips`` (accepted group moves this step: pairs, or softmax rows of K bits),
    ``model_logp`` (the model's log-posterior in value space, Jacobian included, exactly as
    ``model.compile_logp()`` gives it, at the point the step returns; PyMC keeps the last step's
    ``model_logp`` of a compound step and ArviZ shows it as ``sample_stats["lp"]``),
    ``loglik`` (log-likelihood), ``refreshed`` (cache rebuilt or re-derived this step),
    ``max_drift`` (relative log-likelihood drift found by a periodic refresh, 0 if none),
    ``cont_accept`` and ``cont_step`` (acceptance rate and step factor of the continuous
    proposals; NaN when the step moves no continuous parameter).

    Bits whose prior probability is 0 or 1 are set to their only feasible value and never
    visited. The data ``x``, ``y`` are read from the model when the step is built; the step holds
    only their sparse columns (and drops its cache when pickled to worker processes).

    Examples
    --------
    >>> import numpy as np, pymc as pm, bayesbin
    >>> rng = np.random.default_rng(0)
    >>> x = rng.integers(0, 2, size=(50, 3)).astype(float)
    >>> model = bayesbin.binary_logistic(x, rng.integers(0, 2, 50), bias=True)
    >>> with model:
    ...     step = IncrementalGibbs([model["w"]], mode="metropolis")
    ...     idata = pm.sample(
    ...         50, tune=50, step=[pm.NUTS([model["b"]]), step], chains=1,
    ...         progressbar=False, compute_convergence_checks=False, random_seed=1,
    ...     )  # doctest: +SKIP
    """

    name = "incremental_gibbs"

    stats_dtypes_shapes = {
        "n_flips": (np.int64, []),
        "flip_rate": (np.float64, []),
        "n_pair_flips": (np.int64, []),
        "model_logp": (np.float64, []),
        "loglik": (np.float64, []),
        "refreshed": (bool, []),
        "max_drift": (np.float64, []),
        "cont_accept": (np.float64, []),
        "cont_step": (np.float64, []),
    }

    _state_class = IncrementalGibbsState

    def astep(self, q0: RaveledVars) -> tuple[RaveledVars, list[dict[str, Any]]]:
        """Run ``sweeps_per_step`` sweeps (and the continuous moves) from ``q0``."""
        values = DictToArrayBijection.rmap(q0)
        w_in = self._w_in(values)
        scale, bias = self._continuous_values(values)
        state, rebuilt, refreshed = self._sync_cache(self._cache, w_in, scale, bias)
        if rebuilt:
            self._sweeps_since_refresh = 0

        state, self._sweeps_since_refresh, info = self._sweeps(
            state, self.beta, self._sweeps_since_refresh
        )
        cont_rate = math.nan
        cont_step = math.nan
        theta = None
        if self._prior.dim:
            state, theta, self._tuner, cont_rate = self._rw(state, self._tuner, self.beta)
            cont_step = math.exp(self._tuner.log_lambda)
        self._cache = state
        q, lp = self._write_point(values, state, theta, self._log_scale_in(values))
        stats = {
            "n_flips": int(info.n_flips),
            "flip_rate": info.n_flips / max(info.n_proposed, 1),
            "n_pair_flips": int(info.n_pair_flips),
            "model_logp": lp,
            "loglik": float(state.loglik),
            "refreshed": bool(refreshed or info.refreshed),
            "max_drift": float(info.drift),
            "cont_accept": float(cont_rate),
            "cont_step": float(cont_step),
        }
        return q, [stats]
