"""What bayesbin's PyMC steps share: a model's kernel problem and the point <-> cache mapping.

:func:`model_problem` reduces a bayesbin binary model to the kernels' static
:class:`~bayesbin.samplers.kernels.FlipProblem` and :class:`~bayesbin.samplers.kernels.ContinuousPrior`;
:class:`BinaryStep` is the thin PyMC side of :class:`~bayesbin.samplers.IncrementalGibbs` and
:class:`~bayesbin.samplers.ReplicaExchange`: it parses the variables, reads a PyMC point into a
kernel state and writes the kernel state back as a point with its exact log-posterior. The
sampling maths lives in :mod:`bayesbin.samplers.kernels`.
"""

from __future__ import annotations

import math
from dataclasses import field
from typing import Any, Literal

import numpy as np
import pymc as pm
from pymc.blocking import DictToArrayBijection
from pymc.pytensorf import make_shared_replacements
from pymc.step_methods.arraystep import ArrayStepShared
from pymc.step_methods.compound import Competence, StepMethodState
from pymc.step_methods.state import dataclass_state
from pymc.util import get_value_vars_from_user_vars
from pytensor.tensor.random.basic import BernoulliRV

from bayesbin._validation import check_choice, check_positive_int
from bayesbin.linear import ModelSpec, get_spec, is_bayesbin_model, model_data
from bayesbin.linear.graph import initial_point as linear_initial_point
from bayesbin.samplers import kernels as fk

__all__ = [
    "BinaryStep",
    "BinaryStepState",
    "binary_spec",
    "default_continuous_steps",
    "model_problem",
]


def binary_spec(model, who: str) -> ModelSpec:
    """Return the ModelSpec of a bayesbin model with Bernoulli weights (ValueError otherwise)."""
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
    """Reduce a bayesbin binary model to the kernels' static description (shared by samplers).

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
    spec = binary_spec(model, "model_problem")
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


def default_continuous_steps(problem: fk.FlipProblem) -> int:
    """Random-walk proposals on (bias, log scale) per step for ``continuous_steps="auto"``.

    Each proposal costs one likelihood at the cached activations, O(n C) exponentials (table
    lookups instead when the inputs sit on a dyadic grid, e.g. integers or digits' k/16), or
    O(distinct activations) for the logistic forms on integer inputs (MNIST56: 51 groups of
    11,339 rows), while a sweep costs O(nonzeros C). ``"auto"`` keeps the proposals' cost near
    a sweep's: 10 when the likelihood groups, else one proposal per 10 nonzeros per row, between
    1 and 10 (scikit-learn's digits: 3, MNIST: 10). Measured on digits, 10 proposals per step
    cost 60% more CPU than 5 for the same ESS of the bias, the scale and the log posterior, and
    3 cost 18% less than 5 with no lower ESS (4 seeds from the mode, 1,000 draws: median bias
    ESS 24 against 17, scale 53 against 42, log posterior 36 against 23).
    """
    integer = bool(np.all(problem.levels == np.round(problem.levels)))
    if problem.reference and integer:
        return 10
    per_row = problem.nnz / max(problem.n_rows, 1)
    return int(np.clip(round(per_row / 10.0), 1, 10))


@dataclass_state
class BinaryStepState(StepMethodState):
    """Everything that changes while a :class:`BinaryStep` samples a chain."""

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
    _tuner: Any


class BinaryStep(ArrayStepShared):
    """PyMC plumbing shared by bayesbin's steps on the bits (and bias/scale) of a linear model.

    Subclasses set ``name``, ``stats_dtypes_shapes``, ``_state_class`` and ``astep``. The
    parameters are those of :class:`~bayesbin.samplers.IncrementalGibbs`.
    """

    default_blocked = True

    def __init__(
        self,
        vars=None,
        *,
        mode: Literal["gibbs", "metropolis"] = "gibbs",
        scan: Literal["random", "systematic"] = "random",
        sweeps_per_step: int = 1,
        refresh_every: int = 50,
        continuous_steps: int | Literal["auto"] = "auto",
        beta: float = 1.0,
        pair_moves: bool | None = None,
        model=None,
        rng=None,
        initial_point=None,
        blocked: bool = True,
    ):
        model = pm.modelcontext(model)
        spec = binary_spec(model, type(self).__name__)
        self.mode = check_choice(mode, "mode", ("gibbs", "metropolis"))
        self.scan = check_choice(scan, "scan", ("random", "systematic"))
        self.sweeps_per_step = check_positive_int(sweeps_per_step, "sweeps_per_step")
        self.refresh_every = check_positive_int(refresh_every, "refresh_every")
        self._continuous_steps_arg = continuous_steps
        if not (isinstance(continuous_steps, str) and continuous_steps == "auto"):
            check_positive_int(continuous_steps, "continuous_steps")
        beta = float(beta)
        if not (np.isfinite(beta) and beta >= 0):
            raise ValueError(f"beta must be a finite number >= 0; got {beta!r}")
        self.beta = beta

        if vars is None:  # BlockedStep.__new__ normally fills in all free variables
            vars = model.value_vars
        vars = get_value_vars_from_user_vars(vars, model)
        w_value = model.rvs_to_values[model[spec.names.w]]
        self._w_name = w_value.name
        self._b_name = model.rvs_to_values[model[spec.names.b]].name if spec.bias else None
        s_rv = model[spec.names.scale] if spec.learned_scale else None
        self._s_name = model.rvs_to_values[s_rv].name if s_rv is not None else None
        if s_rv is not None:
            tr = model.rvs_to_transforms.get(s_rv)
            if tr is None or type(tr).__name__ != "LogTransform":
                raise ValueError(
                    f"{type(self).__name__} expects the learned scale on a log transform"
                )
        names = [v.name for v in vars]
        if self._w_name not in names:
            raise ValueError(f"vars must include the weights {self._w_name!r}; got {names}")
        allowed = {self._w_name, self._b_name, self._s_name} - {None}
        extra = [n for n in names if n not in allowed]
        if extra:
            raise ValueError(
                f"{type(self).__name__} can only sample {sorted(allowed)}; got also {extra}"
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
        if isinstance(continuous_steps, str):
            continuous_steps = default_continuous_steps(self._problem)
        self.continuous_steps = int(continuous_steps)
        groups = fk.likelihood_neutral_groups(self._problem)
        # (n_groups, g) bit indices: pairs (two-output) or rows of K bits (softmax)
        self._pairs = groups if self.pair_moves else groups[:0]
        self._init_chain_state()
        self.tune = True

        if initial_point is None:
            initial_point = linear_initial_point(model)
        shared = make_shared_replacements(initial_point, vars, model)
        super().__init__(vars, shared, blocked=True, rng=rng)

    # -- chain state ------------------------------------------------------------------------

    def _fresh_chain_state(self) -> dict:
        return {"_cache": None, "_sweeps_since_refresh": 0, "_tuner": fk.rw_tuner(self._prior.dim)}

    def _init_chain_state(self) -> None:
        for name, value in self._fresh_chain_state().items():
            setattr(self, name, value)

    def warm_up(self) -> None:
        """Load (or compile) the step's numba kernels in this process, once.

        Called by :func:`bayesbin.sample` before PyMC forks its chain workers, so they inherit
        the loaded kernels instead of each loading them again from numba's cache (about half a
        CPU second per worker on scikit-learn's digits). Runs the step's sweeps and random-walk
        proposals once, through the same methods a step uses, on a throwaway state with its own
        generator: the chains' random streams and this step's state are untouched.
        """
        problem = self._problem
        rng = np.random.default_rng(0)
        state = fk.init(
            problem, np.zeros(problem.n_bits, dtype=np.int64), 1.0, np.zeros(problem.n_cols)
        )
        state, _, _ = self._sweeps(state, 1.0, 0, rng=rng)
        if self._prior.dim:
            self._rw(state, fk.rw_tuner(self._prior.dim), 1.0, rng=rng)

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
        """Pickle without the cache: the copy starts a fresh chain."""
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
        if not is_bayesbin_model(model):
            return Competence.INCOMPATIBLE
        spec = get_spec(model)
        if spec.relaxed is not None or spec.names.w not in model.named_vars:
            return Competence.INCOMPATIBLE
        w_rv = model[spec.names.w]
        if var is not w_rv and var is not model.rvs_to_values.get(w_rv):
            return Competence.INCOMPATIBLE
        if not isinstance(getattr(w_rv.owner, "op", None), BernoulliRV):
            return Competence.INCOMPATIBLE
        return Competence.IDEAL

    # -- point <-> cache ---------------------------------------------------------------------

    def _w_in(self, values: dict) -> np.ndarray:
        """Return the incoming point's bits, flattened in the canonical layout."""
        w = np.asarray(values[self._w_name]).reshape(self._spec.w_shape)
        return np.ascontiguousarray(self._spec.to_canonical(w)).reshape(-1)

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

    def _sync_cache(self, state, w_in: np.ndarray, scale: float, bias: np.ndarray):
        """Return the cache for the point ``(w_in, scale, bias)``: ``state`` if it matches, else rebuilt.

        Returns ``(state, rebuilt_from_scratch, rederived)``.
        """
        if state is None or not np.array_equal(state.w, w_in):
            return fk.init(self._problem, w_in, scale, bias), True, True
        if scale != state.scale or not np.array_equal(bias, state.bias):
            return fk.set_continuous(self._problem, state, scale, bias), False, True
        return state, False, False

    def _sweeps(self, state, beta: float, since_refresh: int, rng=None):
        """Run the step's sweeps (with group moves) at ``beta``: ``(state, since_refresh, info)``.

        ``rng`` defaults to the chain's generator (:meth:`warm_up` passes a throwaway one).
        """
        return fk.gibbs_sweeps(
            self._problem,
            state,
            self._pairs,
            self.rng if rng is None else rng,
            beta=beta,
            mode=self.mode,
            scan=self.scan,
            n_sweeps=self.sweeps_per_step,
            refresh_every=self.refresh_every,
            since_refresh=since_refresh,
        )

    def _rw(self, state, tuner, beta: float, rng=None):
        """Run the step's random walk on theta: ``(state, theta, tuner, acceptance rate)``."""
        return fk.rw_step(
            self._problem,
            self._prior,
            state,
            tuner,
            self.rng if rng is None else rng,
            n_steps=self.continuous_steps,
            beta=beta,
            tune=self.tune,
        )

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
        w = self._spec.from_canonical(state.w.reshape(self._spec.weight_shape))
        values[self._w_name] = w.astype(np.int64).reshape(np.shape(values[self._w_name]))
        return DictToArrayBijection.map(values), float(lp)
