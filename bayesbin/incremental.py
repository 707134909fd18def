"""PyMC step method ``IncrementalGibbs``: exact single-site updates of bayesbin's binary weights.

Each chain keeps the scale-free activations ``A = x @ Weff``, the class probabilities of every row
and the log-likelihood, so the exact Δlogp of flipping one bit is a sum over the nonzeros of that
bit's feature (see :mod:`bayesbin._flipkernel` for the maths and the compiled kernels). A step is
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
>>> from bayesbin.incremental import IncrementalGibbs
>>> rng = np.random.default_rng(0)
>>> x = rng.integers(0, 2, size=(60, 4)).astype(float)
>>> model = bayesbin.binary_softmax(x, rng.integers(0, 3, 60), 3, bias=True)
>>> with model:  # doctest: +SKIP
...     idata = pm.sample(step=[IncrementalGibbs([model["w"], model["b"]])], chains=2)
"""

from __future__ import annotations

import math
from dataclasses import field
from typing import Any

import numpy as np
import pymc as pm
from pymc.blocking import DictToArrayBijection, RaveledVars
from pymc.pytensorf import make_shared_replacements
from pymc.step_methods.arraystep import ArrayStepShared
from pymc.step_methods.compound import Competence, StepMethodState
from pymc.step_methods.state import dataclass_state
from pymc.util import get_value_vars_from_user_vars
from pytensor.tensor.random.basic import BernoulliRV

from bayesbin import _flipkernel as fk
from bayesbin.models import get_spec, is_bayesbin_model, model_data

__all__ = ["IncrementalGibbs", "IncrementalGibbsState", "model_problem"]

_TARGET_ACCEPT = 0.25
_FIRST_WINDOW = 50  # tuning steps in the first covariance window; windows then double
_LOG_SCALE_MIN_PRECISION = 1.0  # caps the proposal sd of log scale at 1 where F is flat


@dataclass_state
class IncrementalGibbsState(StepMethodState):
    """Everything that changes while an :class:`IncrementalGibbs` step samples a chain."""

    mode: str = field(metadata={"frozen": True})
    scan: str = field(metadata={"frozen": True})
    sweeps_per_step: int = field(metadata={"frozen": True})
    refresh_every: int = field(metadata={"frozen": True})
    continuous_steps: int = field(metadata={"frozen": True})
    pair_moves: bool = field(metadata={"frozen": True})
    beta: float
    tune: bool
    _cache: Any
    _sweeps_since_refresh: int
    _n_tune_steps: int
    _log_lambda: float
    _rm_count: int
    _chol: Any
    _window: Any
    _window_end: int


def _binary_spec(model, who: str):
    """The ModelSpec of a bayesbin model with Bernoulli weights (ValueError otherwise)."""
    if not is_bayesbin_model(model):
        raise ValueError(
            f"{who} needs a model built by bayesbin.binary_logistic or bayesbin.binary_softmax"
        )
    spec = get_spec(model)
    if spec.relaxed is not None:
        raise ValueError(f"{who} needs Bernoulli weights; the model is relaxed")
    return spec


def model_problem(
    model: pm.Model, *, own_bias: bool, own_scale: bool
) -> tuple[fk.FlipProblem, fk.ContinuousPrior]:
    """Static kernel description of a bayesbin binary model (shared by the samplers).

    Parameters
    ----------
    model : pm.Model
        Built by :func:`bayesbin.binary_logistic` or :func:`bayesbin.binary_softmax`, Bernoulli
        weights.
    own_bias, own_scale : bool
        Whether the continuous parameters ``theta`` include the bias / the log scale.

    Returns
    -------
    problem : FlipProblem
    prior : ContinuousPrior
    """
    spec = _binary_spec(model, "model_problem")
    x, y = model_data(model)
    problem = fk.build_problem(
        x,
        y,
        form=spec.form,
        encoding=spec.encoding,
        n_classes=spec.n_classes,
        prior_p=spec.prior_p,
    )
    prior = fk.ContinuousPrior(
        n_bias=problem.n_cols if own_bias else 0,
        bias_sigma=float(spec.bias_sigma),
        learn_scale=bool(own_scale),
        scale_sigma=float(spec.scale_sigma),
    )
    return problem, prior


def _choice(value, name: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {choices}; got {value!r}")
    return value


def _pos_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


class IncrementalGibbs(ArrayStepShared):
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
    continuous_steps : int
        Random-walk Metropolis proposals for the owned continuous parameters per step.
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
    default_blocked = True

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

    def __init__(
        self,
        vars=None,
        *,
        mode: str = "gibbs",
        scan: str = "random",
        sweeps_per_step: int = 1,
        refresh_every: int = 50,
        continuous_steps: int = 10,
        beta: float = 1.0,
        pair_moves: bool | None = None,
        model=None,
        rng=None,
        initial_point=None,
        blocked: bool = True,
    ):
        model = pm.modelcontext(model)
        spec = _binary_spec(model, type(self).__name__)
        self.mode = _choice(mode, "mode", ("gibbs", "metropolis"))
        self.scan = _choice(scan, "scan", ("random", "systematic"))
        self.sweeps_per_step = _pos_int(sweeps_per_step, "sweeps_per_step")
        self.refresh_every = _pos_int(refresh_every, "refresh_every")
        self.continuous_steps = _pos_int(continuous_steps, "continuous_steps")
        beta = float(beta)
        if not (np.isfinite(beta) and beta >= 0):
            raise ValueError(f"beta must be a finite number >= 0; got {beta!r}")
        self.beta = beta

        if vars is None:  # BlockedStep.__new__ normally fills in all free variables
            vars = model.value_vars
        vars = get_value_vars_from_user_vars(vars, model)
        w_value = model.rvs_to_values[model["w"]]
        self._w_name = w_value.name
        self._b_name = model.rvs_to_values[model["b"]].name if spec.bias else None
        self._s_name = model.rvs_to_values[model["scale"]].name if spec.learned_scale else None
        if spec.learned_scale:
            tr = model.rvs_to_transforms.get(model["scale"])
            if tr is None or type(tr).__name__ != "LogTransform":
                raise ValueError("IncrementalGibbs expects the learned scale on a log transform")
        names = [v.name for v in vars]
        if self._w_name not in names:
            raise ValueError(f"vars must include the weights {self._w_name!r}; got {names}")
        allowed = {self._w_name, self._b_name, self._s_name} - {None}
        extra = [n for n in names if n not in allowed]
        if extra:
            raise ValueError(
                f"IncrementalGibbs can only sample {sorted(allowed)}; got also {extra}"
            )
        self._own_bias = self._b_name in names
        self._own_scale = self._s_name is not None and self._s_name in names

        self._spec = spec
        self._problem, self._prior = model_problem(
            model, own_bias=self._own_bias, own_scale=self._own_scale
        )
        if pair_moves is not None and not isinstance(pair_moves, bool | np.bool_):
            raise ValueError(f"pair_moves must be True, False or None; got {pair_moves!r}")
        has_groups = spec.form in ("two_output", "softmax")
        if pair_moves and not has_groups:
            raise ValueError(
                "pair_moves=True needs binary_logistic(form='two_output') or binary_softmax; the "
                f"model's form is {spec.form!r}, which has no likelihood-neutral groups"
            )
        self.pair_moves = bool(has_groups if pair_moves is None else pair_moves)
        groups = fk.likelihood_neutral_groups(self._problem)
        # (n_groups, g) bit indices: pairs (two-output) or rows of K bits (softmax)
        self._pairs = groups if self.pair_moves else groups[:0]
        self._init_chain_state()
        self.tune = True

        if initial_point is None:
            initial_point = model.initial_point()
        shared = make_shared_replacements(initial_point, vars, model)
        super().__init__(vars, shared, blocked=True, rng=rng)

    # -- chain state ------------------------------------------------------------------------

    def _fresh_tuner_state(self) -> dict:
        """Adaptation state of the continuous proposals (one per temperature)."""
        dim = self._prior.dim
        return {
            "_n_tune_steps": 0,
            "_log_lambda": math.log(2.38 / math.sqrt(dim)) if dim else 0.0,
            "_rm_count": 0,
            "_chol": None,
            "_window": None,  # (count, sum, sum of outer products) of theta in this window
            "_window_end": _FIRST_WINDOW,
        }

    def _fresh_chain_state(self) -> dict:
        return {"_cache": None, "_sweeps_since_refresh": 0, **self._fresh_tuner_state()}

    def _init_chain_state(self) -> None:
        for name, value in self._fresh_chain_state().items():
            setattr(self, name, value)

    def reset_tuning(self) -> None:
        """Forget the cache and the continuous-proposal adaptation (PyMC calls this per chain)."""
        self._init_chain_state()

    def set_rng(self, rng) -> None:
        """Take a new generator and start a fresh chain (cache, adaptation, tuning on).

        PyMC calls ``set_rng`` exactly once at the start of every chain, in the main process and
        in worker processes (where ``reset_tuning`` is not called and, with the "fork" start
        method, the step arrives as it was left by any earlier run), so this is where a chain's
        state is reset. PyMC then sets ``tune`` itself and stops tuning at draw ``tune``.
        """
        super().set_rng(rng)
        self._init_chain_state()
        self.tune = True

    def __getstate__(self):
        # PyMC pickles steps for "spawn"/"forkserver" worker processes; the cache is derived data
        # (rebuilt on the first step), so it is not shipped, and the copy starts a fresh chain.
        state = self.__dict__.copy()
        state.update(self._fresh_chain_state())
        state["tune"] = True
        return state

    # -- PyMC contract ----------------------------------------------------------------------

    @staticmethod
    def competence(var, has_grad=None):
        """IDEAL for the Bernoulli weights ``w`` of a bayesbin model, INCOMPATIBLE otherwise."""
        try:
            model = pm.modelcontext(None)
        except TypeError:
            return Competence.INCOMPATIBLE
        if not is_bayesbin_model(model) or get_spec(model).relaxed is not None:
            return Competence.INCOMPATIBLE
        if "w" not in model.named_vars:
            return Competence.INCOMPATIBLE
        w_rv = model["w"]
        if var is not w_rv and var is not model.rvs_to_values.get(w_rv):
            return Competence.INCOMPATIBLE
        if not isinstance(getattr(w_rv.owner, "op", None), BernoulliRV):
            return Competence.INCOMPATIBLE
        return Competence.IDEAL

    def _continuous_values(self, values: dict) -> tuple[float, np.ndarray]:
        spec = self._spec
        if self._s_name is None:
            scale = spec.fixed_scale
        elif self._own_scale:
            scale = math.exp(float(values[self._s_name]))
        else:
            scale = math.exp(float(self.shared[self._s_name].get_value()))
        if self._b_name is None:
            bias = np.zeros(self._problem.n_cols)
        elif self._own_bias:
            bias = np.asarray(values[self._b_name], dtype=np.float64).reshape(-1)
        else:
            bias = np.asarray(self.shared[self._b_name].get_value(), dtype=np.float64).reshape(-1)
        return scale, np.broadcast_to(bias, (self._problem.n_cols,)).astype(np.float64)

    def _fisher_chol(self, state: fk.FlipState, beta: float | None = None) -> np.ndarray:
        """Cholesky factor of the inverse of (beta Fisher information + prior precision)."""
        prior = self._prior
        dim = prior.dim
        beta = self.beta if beta is None else beta
        prec = fk.theta_precision(self._problem, state, prior, beta=beta)
        prec = 0.5 * (prec + prec.T)
        if prior.learn_scale:
            prec[-1, -1] += _LOG_SCALE_MIN_PRECISION
        try:
            cov = np.linalg.inv(prec + 1e-10 * np.eye(dim))
            return np.linalg.cholesky(0.5 * (cov + cov.T))
        except np.linalg.LinAlgError:
            return np.eye(dim) * 0.1

    def _adapt(self, state: fk.FlipState, path: np.ndarray, rate: float, tuner, beta) -> None:
        """Tuning only: Robbins-Monro on the step factor, windowed covariance of theta.

        ``tuner`` holds the adaptation state (``self``, or one temperature's record in
        :class:`bayesbin.tempering.ReplicaExchange`).
        """
        t = tuner
        dim = self._prior.dim
        t._n_tune_steps += 1
        t._rm_count += 1
        gamma = 1.0 / math.sqrt(t._rm_count + 1.0)
        t._log_lambda = float(np.clip(t._log_lambda + gamma * (rate - _TARGET_ACCEPT), -12.0, 3.0))
        if t._window is None:
            t._window = (0, np.zeros(dim), np.zeros((dim, dim)))
        count, total, outer = t._window
        t._window = (count + path.shape[0], total + path.sum(axis=0), outer + path.T @ path)
        if t._n_tune_steps >= t._window_end:
            count, total, outer = t._window
            if count > 2 * dim + 2:
                mean = total / count
                emp = (outer - count * np.outer(mean, mean)) / (count - 1)
                base = self._fisher_chol(state, beta)
                shrink = 10.0
                cov = (count * emp + shrink * base @ base.T) / (count + shrink)
                try:
                    t._chol = np.linalg.cholesky(0.5 * (cov + cov.T) + 1e-12 * np.eye(dim))
                    # the empirical covariance has its own scale: restart the step factor
                    t._log_lambda = math.log(2.38 / math.sqrt(dim))
                    t._rm_count = 0
                except np.linalg.LinAlgError:
                    pass
            t._window = None
            t._window_end *= 2

    def _continuous_move(self, state: fk.FlipState, tuner=None, beta: float | None = None):
        """``continuous_steps`` RWM proposals on theta at inverse temperature ``beta``.

        Returns ``(state, theta, acceptance rate)``; adapts ``tuner`` (default ``self``) while
        tuning.
        """
        t = self if tuner is None else tuner
        beta = self.beta if beta is None else float(beta)
        dim = self._prior.dim
        if t._chol is None or (self.tune and t._window_end == _FIRST_WINDOW):
            # until the first covariance window closes: Fisher preconditioning at the current
            # state (tuning only; after tuning the factor is frozen)
            t._chol = self._fisher_chol(state, beta)
        n = self.continuous_steps
        normals = self.rng.standard_normal((n, dim))
        log_u = np.log(self.rng.random(n))
        theta = fk.join_theta(self._prior, state.scale, state.bias)
        chol = math.exp(t._log_lambda) * t._chol
        path = np.empty((n, dim)) if self.tune else None
        state, theta, n_acc = fk.continuous_rwm(
            self._problem,
            state,
            self._prior,
            theta,
            chol,
            normals,
            log_u,
            beta=beta,
            path=path,
        )
        rate = n_acc / n
        if self.tune:
            self._adapt(state, path, rate, t, beta)
        return state, theta, rate

    # -- building blocks shared with ReplicaExchange -----------------------------------------

    def _sync_cache(self, state, w_in: np.ndarray, scale: float, bias: np.ndarray):
        """The cache for the point ``(w_in, scale, bias)``: ``state`` if it matches, else rebuilt.

        Returns ``(state, rebuilt_from_scratch, rederived)``.
        """
        if state is None or not np.array_equal(state.w, w_in):
            return fk.init(self._problem, w_in, scale, bias), True, True
        if scale != state.scale or not np.array_equal(bias, state.bias):
            return fk.set_continuous(self._problem, state, scale, bias), False, True
        return state, False, False

    def _sweeps(self, state: fk.FlipState, beta: float, since_refresh: int):
        """``sweeps_per_step`` sweeps at ``beta``, each followed by the group moves.

        Returns ``(state, since_refresh, info)`` with ``info`` a dict of ``n_flips``,
        ``n_proposed``, ``n_pair_flips``, ``drift`` and ``refreshed``.
        """
        problem = self._problem
        info = {"n_flips": 0, "n_proposed": 0, "n_pair_flips": 0, "drift": 0.0, "refreshed": False}
        n_groups = self._pairs.shape[0]
        for _ in range(self.sweeps_per_step):
            if since_refresh >= self.refresh_every:
                state, rinfo = fk.refresh(problem, state)
                info["drift"] = max(info["drift"], rinfo.loglik_drift)
                since_refresh = 0
                info["refreshed"] = True
            order, uniforms = fk.draw_scan(problem, self.rng, self.scan)
            state, sinfo = fk.sweep(problem, state, order, uniforms, beta=beta, mode=self.mode)
            info["n_flips"] += sinfo.n_flips
            info["n_proposed"] += sinfo.n_proposed
            if n_groups:
                state, n_group = fk.group_sweep(
                    problem, state, self._pairs, self.rng.random(n_groups)
                )
                info["n_pair_flips"] += n_group
            since_refresh += 1
        return state, since_refresh, info

    def _log_scale_in(self, values: dict) -> float:
        """Log scale of the incoming point (0 when the model has no learned scale)."""
        if self._s_name is None:
            return 0.0
        if self._own_scale:
            return float(values[self._s_name])
        return float(self.shared[self._s_name].get_value())

    def _write_point(self, values: dict, state: fk.FlipState, theta, log_scale: float):
        """Write ``w`` (and owned theta) into ``values``; return ``(q, model_logp)``."""
        if theta is not None:
            if self._own_bias:
                values[self._b_name] = theta[: self._prior.n_bias].reshape(
                    np.shape(values[self._b_name])
                )
            if self._own_scale:
                log_scale = float(theta[self._prior.n_bias])
                values[self._s_name] = np.asarray(log_scale).reshape(np.shape(values[self._s_name]))
        lp = state.loglik + fk.exact_logprior(self._problem, state.w)
        if self._b_name is not None:
            lp += fk.bias_logprior(state.bias, self._spec.bias_sigma)
        if self._s_name is not None:
            lp += fk.log_scale_logprior(log_scale, self._spec.scale_sigma)
        values[self._w_name] = state.w.astype(np.int64).reshape(np.shape(values[self._w_name]))
        return DictToArrayBijection.map(values), float(lp)

    def astep(self, q0: RaveledVars) -> tuple[RaveledVars, list[dict[str, Any]]]:
        """Run ``sweeps_per_step`` sweeps (and the continuous moves) from ``q0``."""
        values = DictToArrayBijection.rmap(q0)
        w_in = np.asarray(values[self._w_name]).reshape(-1)
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
            state, theta, cont_rate = self._continuous_move(state)
            cont_step = math.exp(self._log_lambda)
        self._cache = state
        q, lp = self._write_point(values, state, theta, self._log_scale_in(values))
        stats = {
            "n_flips": int(info["n_flips"]),
            "flip_rate": info["n_flips"] / max(info["n_proposed"], 1),
            "n_pair_flips": int(info["n_pair_flips"]),
            "model_logp": lp,
            "loglik": float(state.loglik),
            "refreshed": bool(refreshed or info["refreshed"]),
            "max_drift": float(info["drift"]),
            "cont_accept": float(cont_rate),
            "cont_step": float(cont_step),
        }
        return q, [stats]
