r"""Replica exchange (parallel tempering) for multimodal posteriors: the ``ReplicaExchange`` step.

:class:`ReplicaExchange` runs ``R`` copies ("replicas") of a bayesbin binary model at inverse
temperatures ``1 = beta_0 > beta_1 > ... > beta_{R-1} > 0`` of the likelihood only:

.. math::

    \pi_\beta(w, \theta) \propto p(w)\, p(\theta)\, L(w, \theta)^{\beta},

where ``theta`` is the bias ``b`` and/or the log scale when the model has them. Each replica holds
a whole state ``(w_r, theta_r)`` and is moved by the machinery of
:class:`~bayesbin.samplers.IncrementalGibbs` at its own temperature (exact single-site sweeps
of the cached activations, the two-output pair moves, random-walk Metropolis on ``theta`` with
``beta_r``), so the extended target ``prod_r pi_{beta_r}(w_r, theta_r)`` is invariant. Then whole
states of adjacent temperatures ``i, j = i + 1`` are proposed for exchange and accepted with

.. math::

    \min\{1, \exp((\beta_i - \beta_j)(L_j - L_i))\},

``L`` the untempered log-likelihood of each state (the prior terms cancel): also exact for the
extended target. Pairs alternate deterministically, even ``i`` on even steps and odd ``i`` on odd
steps (the non-reversible "DEO" scheme of Syed et al., JRSS-B 2022, which moves states along the
ladder in ``O(R)`` rather than ``O(R^2)`` steps). Only the ``beta = 1`` replica is returned to PyMC:
its marginal is the posterior. The step owns every free variable of the model (``w`` and, when
present, ``b`` and ``scale``): a swap exchanges ``theta`` together with ``w``, which another
step method could not follow.

Ladder. ``betas`` explicitly, or a geometric ladder ``beta_r = beta_min^(r / (R - 1))``. The
default ``beta_min = exp(-2.38 (R - 1) / sqrt(d))`` with ``d`` the number of sampled bits plus
continuous parameters: successive ratios ``exp(-2.38 / sqrt(d))``, the spacing that gives
adjacent swaps their optimal acceptance (~0.23) for a target of ``d`` independent coordinates
(Atchadé, Roberts & Rosenthal, Stat. Comput. 2011). Posteriors whose bits are mostly determined
behave like fewer coordinates and tolerate hotter ladders; pass ``beta_min`` (or ``betas``) to go
hotter. With ``adapt_ladder`` (default) the interior temperatures move during tuning, at the end
of doubling windows, so that every adjacent pair has the same estimated rejection rate (the
endpoints stay; Syed et al.'s communication-barrier schedule); after tuning the ladder, like every
other adapted quantity, is frozen, so the post-tuning chain is exact.

What to expect (``benchmarks/bench_tempering.py``). Large-n binary posteriors are rugged: on
MNIST56's two-output model a single flip costs tens to hundreds of nats, chains from different
starts settle in isolated local modes hundreds of nats apart, and a 4-replica ladder rarely swaps
between them (acceptance ~0 for the top pair); more replicas reaching ``beta_min ~ 0.1`` raise the
level the cold chain reaches but do not make chains agree within a minute of CPU. There,
:func:`find_mode` (and starting chains at its result, what :func:`bayesbin.sample` does by
default) is the cheaper fix. On small or moderately multimodal posteriors (tests: two wells 17
nats deep) replica exchange mixes where single-site Gibbs cannot move at all.

Examples
--------
>>> import numpy as np, pymc as pm, bayesbin
>>> from bayesbin.samplers import ReplicaExchange
>>> rng = np.random.default_rng(0)
>>> x = rng.integers(0, 2, size=(60, 4)).astype(float)
>>> model = bayesbin.binary_logistic(x, rng.integers(0, 2, 60), form="two_output", bias=True)
>>> mode = bayesbin.find_mode(model, n_sweeps=50, restarts=2, random_seed=1)
>>> with model:  # doctest: +SKIP
...     idata = pm.sample(step=[ReplicaExchange([model["w"], model["b"]])], initvals=mode)
"""

from __future__ import annotations

import math
from dataclasses import field
from typing import Any, Literal

import numpy as np
from pymc.blocking import DictToArrayBijection, RaveledVars
from pymc.step_methods.compound import Competence
from pymc.step_methods.state import dataclass_state

from bayesbin.samplers import kernels as fk
from bayesbin.samplers.adapter import BinaryStep, BinaryStepState
from bayesbin.samplers.incremental import IncrementalGibbs

__all__ = ["ReplicaExchange", "ReplicaExchangeState"]

_FIRST_LADDER_WINDOW = 50  # tuning steps before the first ladder update; windows then double


class _Replica:
    """A state that travels along the ladder on swaps: cache, theta, sweeps since refresh."""

    def __init__(self, cache: fk.FlipState, theta, since_refresh: int = 0):
        self.cache = cache
        self.theta = theta
        self.since_refresh = since_refresh


@dataclass_state
class ReplicaExchangeState(BinaryStepState):
    """Everything that changes while a :class:`ReplicaExchange` step samples a chain."""

    adapt_ladder: bool = field(metadata={"frozen": True})
    _betas0: Any = field(metadata={"frozen": True})
    _betas: Any
    _replicas: Any
    _tuners: Any
    _n_steps: int
    _swap_window: Any
    _ladder_window_end: int


class ReplicaExchange(BinaryStep):
    """Replica exchange (parallel tempering) for the bits (and bias/scale) of a bayesbin model.

    Parameters
    ----------
    vars : list of variables, optional
        ``w`` together with ``b`` and ``scale`` when the model has them (the step must own every
        free variable; see the module docstring). Omitted: all free variables of the model.
    n_replicas : int
        Number of temperatures ``R >= 2`` (ignored when ``betas`` is given).
    betas : sequence of float, optional
        The ladder, strictly decreasing from ``1``, all ``> 0``.
    beta_min : float, optional
        Hottest inverse temperature of the default geometric ladder (see
        :func:`default_ladder`).
    adapt_ladder : bool
        Re-space the interior temperatures during tuning to equalise adjacent swap rejection
        rates (frozen after tuning; no effect for ``R = 2``).
    mode, scan, sweeps_per_step, refresh_every, continuous_steps, pair_moves
        As for :class:`~bayesbin.samplers.IncrementalGibbs`, applied to every replica.
    model, rng, initial_point, blocked
        PyMC's step-method arguments.

    Notes
    -----
    Each step: every replica (coldest first) does ``sweeps_per_step`` sweeps and its continuous
    moves at its temperature, then adjacent swaps are proposed (even pairs on even steps, odd
    pairs on odd steps). The cost of a step is about ``R`` IncrementalGibbs steps.

    Sampler statistics: those of IncrementalGibbs for the ``beta = 1`` replica (``n_flips``,
    ``flip_rate`` and ``n_pair_flips`` of its own sweeps this step, ``model_logp``, ``loglik``,
    ``cont_accept``, ``cont_step``; ``max_drift`` and ``refreshed`` over all replicas), plus
    ``n_changed`` (bits of ``w`` that differ from the step's input: sweeps and swaps),
    ``swap_accept_{i}`` for ``i = 0..R-2`` (acceptance probability of the exchange of
    temperatures ``i`` and ``i + 1`` when it was proposed this step, NaN otherwise; its mean over
    draws, ignoring NaN, is the pair's swap rate) and ``beta_{r}`` for ``r = 1..R-1`` (the
    ladder).

    Examples
    --------
    >>> import numpy as np, pymc as pm, bayesbin
    >>> rng = np.random.default_rng(0)
    >>> x = rng.integers(0, 2, size=(40, 3)).astype(float)
    >>> model = bayesbin.binary_softmax(x, rng.integers(0, 3, 40), 3)
    >>> with model:
    ...     step = ReplicaExchange([model["w"]], n_replicas=3)
    ...     idata = pm.sample(20, tune=20, step=[step], chains=1, progressbar=False,
    ...                       compute_convergence_checks=False, random_seed=1)
    >>> float(idata.sample_stats["beta_1"][0, 0]) < 1.0
    True
    """

    name = "replica_exchange"

    stats_dtypes_shapes = {
        **IncrementalGibbs.stats_dtypes_shapes,
        "n_changed": (np.int64, []),
    }

    _state_class = ReplicaExchangeState

    def __init__(
        self,
        vars=None,
        *,
        n_replicas: int = 4,
        betas=None,
        beta_min: float | None = None,
        adapt_ladder: bool = True,
        mode: Literal["gibbs", "metropolis"] = "gibbs",
        scan: Literal["random", "systematic"] = "random",
        sweeps_per_step: int = 1,
        refresh_every: int = 50,
        continuous_steps: int | Literal["auto"] = "auto",
        pair_moves: bool | None = None,
        model=None,
        rng=None,
        initial_point=None,
        blocked: bool = True,
    ):
        if betas is not None:
            betas = fk.check_betas(betas)
        else:
            # validated now, resolved against the problem's dimension in _initial_ladder
            fk.default_ladder(n_replicas, 1, 0.5 if beta_min is None else beta_min)
        if not isinstance(adapt_ladder, bool | np.bool_):
            raise ValueError(f"adapt_ladder must be a bool; got {adapt_ladder!r}")
        self.adapt_ladder = bool(adapt_ladder)
        self._ladder_args = (betas, int(n_replicas) if betas is None else len(betas), beta_min)
        self._betas0 = None
        super().__init__(
            vars,
            mode=mode,
            scan=scan,
            sweeps_per_step=sweeps_per_step,
            refresh_every=refresh_every,
            continuous_steps=continuous_steps,
            beta=1.0,
            pair_moves=pair_moves,
            model=model,
            rng=rng,
            initial_point=initial_point,
            blocked=blocked,
        )
        missing = []
        if self._b_name is not None and not self._own_bias:
            missing.append(self._b_name)
        if self._s_name is not None and not self._own_scale:
            missing.append(self._s_name)
        if missing:
            raise ValueError(
                f"ReplicaExchange must own every free variable of the model: vars lacks "
                f"{missing}. Swaps exchange whole states (w with bias and scale), which another "
                "step method could not follow; pass [model['w'], model['b'], model['scale']] "
                "(those the model has)."
            )
        n_rep = self._betas0.shape[0]
        sds = dict(type(self).stats_dtypes_shapes)
        for i in range(n_rep - 1):
            sds[f"swap_accept_{i}"] = (np.float64, [])
        for r in range(1, n_rep):
            sds[f"beta_{r}"] = (np.float64, [])
        self.stats_dtypes_shapes = sds
        self.stats_dtypes = [{k: dt for k, (dt, _) in sds.items()}]

    # -- chain state ------------------------------------------------------------------------

    def _initial_ladder(self) -> np.ndarray:
        betas, n_rep, beta_min = self._ladder_args
        if betas is not None:
            return betas.copy()
        dim = int(self._problem.active.sum()) + self._prior.dim
        return fk.default_ladder(n_rep, dim, beta_min)

    def _fresh_chain_state(self) -> dict:
        state = super()._fresh_chain_state()
        if getattr(self, "_betas0", None) is None:
            self._betas0 = self._initial_ladder()
        n_rep = self._betas0.shape[0]
        state.update(
            {
                "_betas": self._betas0.copy(),
                "_replicas": None,
                "_tuners": [fk.rw_tuner(self._prior.dim) for _ in range(n_rep)],
                "_n_steps": 0,
                "_swap_window": None,  # (sum of rejection probabilities, proposals) per pair
                "_ladder_window_end": _FIRST_LADDER_WINDOW,
            }
        )
        return state

    @property
    def betas(self) -> np.ndarray:
        """The current ladder (a copy), ``betas[0] == 1``."""
        return np.array(self._betas, copy=True)

    @staticmethod
    def competence(var, has_grad=None):
        """COMPATIBLE for the weights of a bayesbin model (IncrementalGibbs is IDEAL)."""
        if BinaryStep.competence(var, has_grad) == Competence.IDEAL:
            return Competence.COMPATIBLE
        return Competence.INCOMPATIBLE

    # -- the step ---------------------------------------------------------------------------

    def _start_replicas(self, w_in, scale, bias, theta) -> list[_Replica]:
        reps = []
        for _ in range(self._betas.shape[0]):
            state = fk.init(self._problem, w_in, scale, bias)
            reps.append(_Replica(state, None if theta is None else theta.copy()))
        return reps

    def _adapt_ladder(self, accept: np.ndarray) -> None:
        n_pairs = accept.shape[0]
        if self._swap_window is None:
            self._swap_window = (np.zeros(n_pairs), np.zeros(n_pairs))
        rej, cnt = self._swap_window
        proposed = ~np.isnan(accept)
        rej = rej + np.where(proposed, 1.0 - np.nan_to_num(accept), 0.0)
        cnt = cnt + proposed
        self._swap_window = (rej, cnt)
        if self._n_steps + 1 < self._ladder_window_end:
            return
        if np.all(cnt > 0) and n_pairs >= 2:
            self._betas = fk.respace_ladder(self._betas, rej / cnt)
        self._swap_window = None
        self._ladder_window_end *= 2

    def astep(self, q0: RaveledVars) -> tuple[RaveledVars, list[dict[str, Any]]]:
        """Move every replica at its temperature, propose swaps, return the ``beta = 1`` state."""
        values = DictToArrayBijection.rmap(q0)
        w_in = self._w_in(values)
        scale, bias = self._continuous_values(values)
        theta_in = fk.join_theta(self._prior, scale, bias) if self._prior.dim else None
        if self._s_name is not None and self._prior.dim:
            theta_in[-1] = self._log_scale_in(values)  # exact, not log(exp(.))
        refreshed = False
        if self._replicas is None:
            self._replicas = self._start_replicas(w_in, scale, bias, theta_in)
            refreshed = True
        else:
            cold = self._replicas[0]
            state, rebuilt, rederived = self._sync_cache(cold.cache, w_in, scale, bias)
            if rederived:
                cold.cache, cold.theta, refreshed = state, theta_in, True
                if rebuilt:
                    cold.since_refresh = 0
        reps = self._replicas
        betas = self._betas
        n_rep = betas.shape[0]

        drift = 0.0
        cold_info = None
        cont_rate = math.nan
        for r in range(n_rep):
            rep = reps[r]
            rep.cache, rep.since_refresh, info = self._sweeps(
                rep.cache, float(betas[r]), rep.since_refresh
            )
            drift = max(drift, info.drift)
            refreshed = refreshed or info.refreshed
            if self._prior.dim:
                rep.cache, rep.theta, self._tuners[r], rate = self._rw(
                    rep.cache, self._tuners[r], float(betas[r])
                )
                if r == 0:
                    cont_rate = rate
            if r == 0:
                cold_info = info

        # exchanges of adjacent temperatures (even pairs on even steps, odd on odd)
        uniforms = self.rng.random(n_rep - 1)
        accept = np.full(n_rep - 1, np.nan)
        for i in range(self._n_steps % 2, n_rep - 1, 2):
            log_a = fk.swap_log_accept(
                betas[i], betas[i + 1], reps[i].cache.loglik, reps[i + 1].cache.loglik
            )
            a = 1.0 if log_a >= 0.0 else math.exp(log_a)
            accept[i] = a
            if uniforms[i] < a:
                reps[i], reps[i + 1] = reps[i + 1], reps[i]
        if self.tune and self.adapt_ladder:
            self._adapt_ladder(accept)
        self._n_steps += 1

        cold = reps[0]
        self._cache = cold.cache
        q, lp = self._write_point(values, cold.cache, cold.theta, self._log_scale_in(values))
        stats = {
            "n_flips": int(cold_info.n_flips),
            "flip_rate": cold_info.n_flips / max(cold_info.n_proposed, 1),
            "n_pair_flips": int(cold_info.n_pair_flips),
            "model_logp": lp,
            "loglik": float(cold.cache.loglik),
            "refreshed": bool(refreshed),
            "max_drift": float(drift),
            "cont_accept": float(cont_rate),
            "cont_step": math.exp(self._tuners[0].log_lambda) if self._prior.dim else math.nan,
            "n_changed": int(np.count_nonzero(cold.cache.w != w_in)),
        }
        for i in range(n_rep - 1):
            stats[f"swap_accept_{i}"] = float(accept[i])
        for r in range(1, n_rep):
            stats[f"beta_{r}"] = float(self._betas[r])
        return q, [stats]
