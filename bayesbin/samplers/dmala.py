r"""DMALA: gradient-informed parallel bit flips as a PyMC step method for Bernoulli variables.

The discrete Langevin sampler with Metropolis-Hastings correction (DMALA; Zhang, Liu & Liu,
"A Langevin-like Sampler for Discrete Distributions", ICML 2022), for any PyMC model with
Bernoulli variables. For bits ``theta`` in {0, 1} with ``g = grad log p(theta)`` taken with the
bits treated as reals, every bit flips independently with probability

.. math::

    P(\text{flip } i) = \sigma(\ell_i), \qquad
    \ell_i(\theta) = \tfrac12\,(g_i (1 - 2\theta_i) - \kappa_i) - \lambda(\theta),
    \qquad \lambda = \frac{1}{2\alpha},

and the proposal ``theta'`` is accepted with probability
``min{1, p(theta') q(theta | theta') / (p(theta) q(theta' | theta))}``, the reverse
probabilities computed from the gradient at ``theta'`` for the same flip mask. With
``kappa = 0`` and a fixed ``alpha`` this is exactly the DMALA of the paper. ``g_i (1 - 2 theta_i)``
is the first-order estimate of the change of ``log p`` when bit ``i`` flips; ``kappa_i >= 0`` is
a per-coordinate curvature correction (equivalently a per-coordinate step size
``alpha_i = 1 / (kappa_i + 1 / alpha)``) so that ``2 ell_i + 2 lambda`` estimates the exact
one-bit change: ``kappa_i = (g_i - g'_i)(theta'_i - theta_i) / 2`` with ``g'`` the gradient after
flipping bit ``i`` alone (the trapezoid rule). ``lambda(theta)`` is ``1 / (2 alpha)``, raised when
``max_flips`` is set until the expected number of flips is at most ``max_flips``; it is a
deterministic function of the state, recomputed at ``theta'`` for the reverse move, so the chain
stays exact.

PyMC refuses gradients for discrete variables; the step compiles one PyTensor function returning
``(log p, grad log p)`` of a float clone of the model's log-probability graph, in which the
Bernoulli values are replaced by a float vector. PyMC's Bernoulli log-probability is a
``switch`` on the value and has zero gradient, so for each sampled Bernoulli variable the
gradient-only term ``logit(p)`` (the derivative of the multilinear extension
``theta log p + (1 - theta) log(1 - p)``) is added without changing the value of ``log p``.

Adaptation (only while ``self.tune``; frozen when tuning stops so the chain is exact):
``log alpha`` by dual averaging towards ``target_accept``; ``kappa`` from one single-bit probe per
tuning step (round robin over the bits; the probe doubles as a single-site Metropolis move) and
from tuning proposals with at most four flips. Why: on a large-n posterior the one-bit changes
are hundreds of nats smaller than their first-order estimates, so without ``kappa`` any fixed
``alpha`` either flips nothing or proposes flips that are always rejected. With ``beta < 1`` the
observed-data log-likelihood is tempered (``log prior + beta log lik``); the chain then targets
the tempered posterior, not the posterior, unless it is used inside replica exchange.

Examples
--------
>>> import numpy as np, pymc as pm
>>> from bayesbin.samplers import DiscreteLangevin
>>> with pm.Model():
...     w = pm.Bernoulli("w", 0.5, shape=4)
...     _ = pm.Normal("y", w.sum(), 1.0, observed=[2.0])
...     idata = pm.sample(50, tune=50, chains=1, step=DiscreteLangevin([w]),
...                       progressbar=False, random_seed=1, compute_convergence_checks=False)
>>> idata.sample_stats["accepted"].shape
(1, 50)
"""

from __future__ import annotations

import warnings
from dataclasses import field
from typing import Any

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
from pymc.blocking import RaveledVars, StatsType
from pymc.pytensorf import compile as pm_compile
from pymc.step_methods.arraystep import ArrayStepShared
from pymc.step_methods.compound import Competence, StepMethodState
from pymc.step_methods.state import dataclass_state
from pymc.util import get_value_vars_from_user_vars
from pytensor.gradient import zero_grad
from pytensor.tensor.elemwise import CAReduce
from pytensor.tensor.random.basic import BernoulliRV

from bayesbin._compat import floatX
from bayesbin.linear.graph import initial_point as linear_initial_point
from bayesbin.samplers.kernels.dmala import dmala_step, flip_penalty

__all__ = [
    "DiscreteLangevin",
    "DiscreteLangevinState",
    "TemperedTargetWarning",
]

_LOGIT_CLIP = 1e4  # gradient-only prior term: finite stand-in for logit(0) / logit(1)
_LOG_ALPHA_BOUNDS = (-20.0, 20.0)
_MAX_LEARN_FLIPS = 4  # proposals with more flips carry too much cross-curvature to learn kappa


class TemperedTargetWarning(UserWarning):
    """``beta != 1``: the chain targets a tempered posterior, not the posterior."""


# ----------------------------------------------------------------------------------------------
# Float clone of the model's log-probability graph
# ----------------------------------------------------------------------------------------------


def _bernoulli_p(model: pm.Model, rv) -> Any:
    """Return the probability parameter of a Bernoulli RV, with RVs replaced by values."""
    (p,) = rv.owner.op.dist_params(rv.owner)
    (p,) = model.replace_rvs_by_values([p])
    return p


def _float_logp_graph(
    model: pm.Model, value_vars: list, shapes: list[tuple], shared: dict, beta: float
):
    """Build ``(q, logp, dlogp)``: a float vector input and the graph of the tempered logp."""
    rvs = [model.values_to_rvs[v] for v in value_vars]
    sampled = set(rvs)
    free_other = [rv for rv in model.free_RVs if rv not in sampled]
    prior = model.logp(vars=rvs + free_other, sum=False)
    terms = [t.sum() for t in prior]
    if model.observed_RVs:
        lik = model.logp(vars=model.observed_RVs, sum=False)
        lik_sum = pt.add(*[t.sum() for t in lik]) if len(lik) > 1 else lik[0].sum()
        terms.append(lik_sum if beta == 1.0 else beta * lik_sum)
    if model.potentials:
        terms.extend(t.sum() for t in model.logp(vars=model.potentials, sum=False))
    # Gradient-only prior terms: value 0, derivative logit(p) with respect to each bit.
    for v, rv in zip(value_vars, rvs, strict=True):
        p = _bernoulli_p(model, rv)
        logit_p = pt.clip(pt.log(p) - pt.log1p(-p), -_LOGIT_CLIP, _LOGIT_CLIP)
        vf = pt.cast(v, "float64")
        terms.append(((vf - zero_grad(vf)) * logit_p).sum())
    logp = pt.add(*terms) if len(terms) > 1 else terms[0]

    dtype = floatX()
    q = pt.vector("dmala_q", dtype=dtype)
    replace = {}
    start = 0
    for v, shape in zip(value_vars, shapes, strict=True):
        size = int(np.prod(shape))
        replace[v] = q[start : start + size].reshape(shape)
        start += size
    for var, sh in shared.items():
        replace[var] = sh
    logp_f = _rebuild_with_floats(logp, replace, dtype)
    dlogp_f = pytensor.grad(logp_f, q)
    return q, logp_f, dlogp_f


def _toposort(output) -> list:
    """Apply nodes of the graph of ``output`` in topological order (iterative DFS)."""
    order, done, stack = [], set(), [(output.owner, False)] if output.owner else []
    while stack:
        node, expanded = stack.pop()
        if node in done:
            continue
        if expanded:
            done.add(node)
            order.append(node)
            continue
        stack.append((node, True))
        stack.extend((i.owner, False) for i in node.inputs if i.owner is not None)
    return order


def _rebuild_with_floats(output, replace: dict, dtype: str):
    """Clone ``output`` with ``replace`` applied, re-inferring types (bits become floats).

    Like ``pytensor.clone_replace(..., rebuild_strict=False)``, except that reductions built
    for integer bits (``w.sum()`` accumulates in int64) are rebuilt to accumulate in ``dtype``.
    """
    memo = dict(replace)
    for node in _toposort(output):
        new_inputs = [memo.get(i, i) for i in node.inputs]
        if all(a is b for a, b in zip(new_inputs, node.inputs, strict=True)):
            continue
        op = node.op
        float_in = any(getattr(i, "dtype", "").startswith("float") for i in new_inputs)
        int_out = all(getattr(o, "dtype", "").startswith(("int", "uint")) for o in node.outputs)
        if isinstance(op, CAReduce) and float_in and int_out and op.acc_dtype is not None:
            new_node = op.clone(dtype=dtype, acc_dtype=dtype).make_node(*new_inputs)
        else:
            new_node = node.clone_with_new_inputs(new_inputs, strict=False)
        memo.update(zip(node.outputs, new_node.outputs, strict=True))
    return memo.get(output, output)


# ----------------------------------------------------------------------------------------------
# PyMC adapter
# ----------------------------------------------------------------------------------------------


@dataclass_state
class DiscreteLangevinState(StepMethodState):
    """Every mutable field of :class:`DiscreteLangevin`; PyMC resets it for each chain."""

    tune: bool
    log_alpha: float
    log_alpha_bar: float
    da_mu: float
    da_hbar: float
    da_t: int
    alpha_initialized: bool
    kappa: np.ndarray
    kappa_est: np.ndarray
    kappa_count: np.ndarray
    kappa_prop_est: np.ndarray
    kappa_prop_count: np.ndarray
    probe_order: np.ndarray
    probe_pos: int
    cache: tuple | None
    alpha_init: Any = field(metadata={"frozen": True})
    target_accept: float = field(metadata={"frozen": True})
    adapt: bool = field(metadata={"frozen": True})
    precondition: bool = field(metadata={"frozen": True})
    max_flips: Any = field(metadata={"frozen": True})
    beta: float = field(metadata={"frozen": True})


class DiscreteLangevin(ArrayStepShared):
    """DMALA step method: gradient-informed parallel flips for PyMC Bernoulli variables.

    Parameters
    ----------
    vars : list of Bernoulli random or value variables, optional
        Variables to sample jointly (all of the model's free variables when omitted; they
        must all be Bernoulli).
    alpha : float or "auto"
        Initial step size ``alpha`` (flip penalty ``1 / (2 alpha)``) in the {0, 1} space of the
        variables (for ``W = 2 w - 1`` encodings, ``alpha_pm1 = 4 alpha``). ``"auto"``: chosen at
        the first step so that one flip is expected.
    target_accept : float
        Acceptance probability that ``alpha`` is adapted to while tuning, in (0, 1).
    adapt : bool
        Adapt ``alpha`` (and ``kappa`` if ``precondition``) while tuning. Everything is frozen
        when tuning stops; with ``adapt=False`` (or ``tune=0``) the step is the fixed-``alpha``
        DMALA throughout.
    precondition : bool
        Learn the per-coordinate curvature correction ``kappa`` while tuning (``False``: the
        paper's DMALA, ``kappa = 0``). Each tuning step then also probes one bit (round robin
        over a random order): the gradient at the state with only that bit flipped gives
        ``kappa_i = (g_i - g'_i)(theta'_i - theta_i) / 2``, and the probe doubles as a
        single-site Metropolis move (tuning draws are discarded). Bits not probed by the end of
        tuning get an estimate from small tuning proposals, else the largest estimate (so they
        rarely flip; a warning says so): tune for at least as many steps as there are bits.
    max_flips : float, optional
        Cap on the expected number of flips per step (state-dependent penalty, exact).
    beta : float
        Likelihood temperature in (0, 1]; ``beta < 1`` targets ``prior * likelihood**beta``
        (observed variables only; potentials are not tempered).
    kappa : array-like of shape (k,), optional
        Initial per-coordinate curvature correction (non-negative, in the raveled order of
        ``vars``), e.g. computed from the model's structure. Probes while tuning refine it bit by
        bit; bits never probed keep it (instead of the conservative fallback). With
        ``precondition=False`` it is used as given throughout.
    model : pm.Model, optional
    rng : RandomGenerator, optional
        Seed or generator; PyMC replaces it per chain through ``set_rng``.
    initial_point : dict, optional
    compile_kwargs : dict, optional
        Passed to PyMC's ``compile`` for the logp-and-gradient function.
    blocked : bool
        Sample all ``vars`` jointly (default).

    Notes
    -----
    Sampler stats: ``accept`` (MH acceptance probability of the DMALA proposal), ``accepted``,
    ``n_flips`` (bits flipped by the proposal, whether or not accepted), ``expected_flips``,
    ``alpha`` (step size in use) and ``lp`` (target log density at the returned point).
    Each step costs one log-density-and-gradient evaluation (none if nothing was proposed);
    a tuning step with ``precondition`` costs one more. Tune for at least as many steps as
    there are bits.

    When to use it (measured, ``benchmarks/bench_dmala.py``): it is the generic fallback for
    PyMC models with Bernoulli variables whose log density is differentiable in the bits
    treated as reals and that are not bayesbin linear models (for those, exact incremental
    Gibbs costs O(nonzeros of a column) per bit instead of a full-data gradient per step). It
    wins where few bits are uncertain among many (MNIST56 within a mode: about 20 times the ESS
    per CPU second of ``BinaryGibbsMetropolis``), is on par with it for small weakly coupled
    models, loses on tiny strongly coupled ones, and does not move far from the posterior
    mode on large data (full MNIST from PyMC's initial point: no accepted flips).
    """

    name = "dmala"
    default_blocked = True
    stats_dtypes_shapes = {
        "accept": (np.float64, []),
        "accepted": (bool, []),
        "n_flips": (np.int64, []),
        "expected_flips": (np.float64, []),
        "alpha": (np.float64, []),
        "lp": (np.float64, []),
    }
    _state_class = DiscreteLangevinState

    def __init__(
        self,
        vars=None,
        *,
        alpha: float | str = "auto",
        target_accept: float = 0.5,
        adapt: bool = True,
        precondition: bool = True,
        max_flips: float | None = None,
        beta: float = 1.0,
        kappa=None,
        model=None,
        rng=None,
        initial_point=None,
        compile_kwargs: dict | None = None,
        blocked: bool = True,
    ):
        model = pm.modelcontext(model)
        if initial_point is None:
            initial_point = linear_initial_point(model)
        if vars is None:
            vars = model.value_vars
        vars = get_value_vars_from_user_vars(vars, model)
        bad = [
            v.name
            for v in vars
            if not isinstance(getattr(model.values_to_rvs[v].owner, "op", None), BernoulliRV)
        ]
        if bad:
            raise ValueError(
                f"vars must be Bernoulli variables for DiscreteLangevin; not Bernoulli: {bad}"
            )
        if isinstance(alpha, str):
            if alpha != "auto":
                raise ValueError(f"alpha must be a positive float or 'auto'; got {alpha!r}")
            log_alpha = 0.0
        else:
            try:
                alpha_f = float(alpha)
            except (TypeError, ValueError) as exc:
                raise TypeError(f"alpha must be a positive float or 'auto'; got {alpha!r}") from exc
            if not (alpha_f > 0 and np.isfinite(alpha_f)):
                raise ValueError(f"alpha must be a positive finite float or 'auto'; got {alpha!r}")
            log_alpha = float(np.clip(np.log(alpha_f), *_LOG_ALPHA_BOUNDS))
        if not (0.0 < float(target_accept) < 1.0):
            raise ValueError(f"target_accept must be in (0, 1); got {target_accept!r}")
        if max_flips is not None and not (float(max_flips) > 0):
            raise ValueError(f"max_flips must be a positive float or None; got {max_flips!r}")
        if not (0.0 < float(beta) <= 1.0):
            raise ValueError(f"beta must be in (0, 1]; got {beta!r}")
        if float(beta) != 1.0:
            warnings.warn(
                f"DiscreteLangevin(beta={beta}) samples prior * likelihood**beta, not the "
                "posterior; use it inside replica exchange for exact posterior draws.",
                TemperedTargetWarning,
                stacklevel=2,
            )

        self.alpha_init = alpha if isinstance(alpha, str) else float(alpha)
        self.target_accept = float(target_accept)
        self.adapt = bool(adapt)
        self.precondition = bool(precondition)
        self.max_flips = None if max_flips is None else float(max_flips)
        self.beta = float(beta)
        self.tune = True
        self.size = int(sum(np.size(initial_point[v.name]) for v in vars))
        self._out_dtype = np.result_type(*[initial_point[v.name].dtype for v in vars])
        if kappa is not None:
            kappa = np.array(kappa, dtype=np.float64).ravel()
            if kappa.shape != (self.size,) or not np.all(np.isfinite(kappa) & (kappa >= 0)):
                raise ValueError(
                    f"kappa must be {self.size} finite non-negative values (one per bit); got "
                    f"shape {kappa.shape}"
                )
        self._kappa_init = kappa
        self._initial_log_alpha = log_alpha
        self._reset_adaptation()

        shared = pm.make_shared_replacements(initial_point, vars, model)
        try:
            shapes = [tuple(np.shape(initial_point[v.name])) for v in vars]
            self._graph = _float_logp_graph(model, vars, shapes, shared, self.beta)
        except Exception as exc:  # integer-only ops on the bits (indexing, ...)
            raise ValueError(
                "DiscreteLangevin needs log p to be differentiable in the Bernoulli values "
                f"treated as reals; building the float clone failed: {exc}"
            ) from exc
        self._compile_kwargs = dict(compile_kwargs or {})
        self._fn = None
        super().__init__(vars, shared, blocked=blocked, rng=rng)

    # -- adaptation state ----------------------------------------------------------------------
    def _reset_adaptation(self) -> None:
        self.log_alpha = self._initial_log_alpha
        self.log_alpha_bar = self._initial_log_alpha
        self.da_mu = self._initial_log_alpha
        self.da_hbar = 0.0
        self.da_t = 0
        self.alpha_initialized = not isinstance(self.alpha_init, str)
        self.kappa = np.zeros(self.size) if self._kappa_init is None else self._kappa_init.copy()
        self.kappa_est = np.zeros(self.size)
        self.kappa_count = np.zeros(self.size, dtype=np.int64)
        self.kappa_prop_est = np.zeros(self.size)
        self.kappa_prop_count = np.zeros(self.size, dtype=np.int64)
        self.probe_order = np.zeros(0, dtype=np.int64)
        self.probe_pos = 0
        self.cache = None

    def reset_tuning(self) -> None:
        """Restore the untuned ``alpha`` and ``kappa`` (PyMC calls this before each chain)."""
        self._reset_adaptation()

    def stop_tuning(self) -> None:
        """Freeze ``alpha`` at its dual-averaged value and ``kappa`` at its estimate."""
        if self.tune and self.adapt and self.da_t > 0:
            self.log_alpha = self.log_alpha_bar
            n_probed = int(np.count_nonzero(self.kappa_count))
            if self.precondition and n_probed < self.size and self._kappa_init is None:
                warnings.warn(
                    f"DiscreteLangevin probed the curvature of only {n_probed} of {self.size} "
                    f"bits while tuning; the others use the largest estimate and flip rarely. "
                    f"Tune for at least {self.size} steps.",
                    UserWarning,
                    stacklevel=2,
                )
        self.tune = False

    def set_rng(self, rng) -> None:
        """Set the generator (PyMC calls this at the start of every chain); clears the cache."""
        super().set_rng(rng)
        self.cache = None

    @property
    def alpha(self) -> float:
        """The step size in use."""
        return float(np.exp(self.log_alpha))

    # -- compiled function (lazy, not pickled) -------------------------------------------------
    def __getstate__(self):
        """Pickle without the compiled functions and caches (rebuilt lazily)."""
        state = self.__dict__.copy()
        state["_fn"] = None
        return state

    def logp_dlogp(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """Target log density and its gradient at bits ``theta`` (other variables as shared).

        Parameters
        ----------
        theta : ndarray of shape (k,)
            Bits in the raveled order of ``self.vars`` (any real values are accepted).

        Returns
        -------
        logp : float
        grad : ndarray of shape (k,), float64
        """
        if self._fn is None:
            q, logp, dlogp = self._graph
            self._fn = pm_compile([q], [logp, dlogp], **self._compile_kwargs)
            self._fn.trust_input = True
        logp, dlogp = self._fn(np.ascontiguousarray(theta, dtype=floatX()))
        return float(logp), np.asarray(dlogp, dtype=np.float64)

    def _shared_key(self) -> tuple:
        return tuple(np.array(sh.get_value(borrow=True), copy=True) for sh in self.shared.values())

    def _current(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """``(logp, grad)`` at ``theta`` and the current values of the other variables."""
        if self.cache is not None:
            c_theta, c_shared, c_logp, c_grad = self.cache
            if np.array_equal(c_theta, theta) and all(
                np.array_equal(a, sh.get_value(borrow=True))
                for a, sh in zip(c_shared, self.shared.values(), strict=True)
            ):
                return c_logp, c_grad
        return self.logp_dlogp(theta)

    # -- one step ------------------------------------------------------------------------------
    def _lam(self) -> float:
        return 0.5 * float(np.exp(-self.log_alpha))

    def _auto_alpha(self, theta: np.ndarray, grad: np.ndarray) -> None:
        """Choose ``alpha`` so that one flip is expected at ``theta`` (``alpha="auto"``)."""
        a = 0.5 * (grad * (1.0 - 2.0 * theta) - self.kappa)
        a = np.where(np.isnan(a), -np.inf, a)
        lam = flip_penalty(a, 0.0, 1.0)
        log_alpha = -np.log(2.0 * lam) if lam > 0 else _LOG_ALPHA_BOUNDS[1]
        log_alpha = float(np.clip(log_alpha, *_LOG_ALPHA_BOUNDS))
        self.log_alpha = self.log_alpha_bar = self.da_mu = log_alpha
        self.alpha_initialized = True

    def astep(self, q0: RaveledVars) -> tuple[RaveledVars, StatsType]:
        """One DMALA step on the raveled Bernoulli values."""
        theta = np.asarray(q0.data, dtype=np.float64)
        logp, grad = self._current(theta)
        tuning = self.tune and self.adapt
        if tuning and self.precondition:
            theta, logp, grad = self._probe(theta, logp, grad)
        if not self.alpha_initialized:
            self._auto_alpha(theta, grad)
        alpha_used = self.alpha
        theta_new, logp_new, grad_new, info = dmala_step(
            self.rng, theta, logp, grad, self.logp_dlogp, self.kappa, self._lam(), self.max_flips
        )
        if tuning:
            self._dual_average(info.accept)
            if (
                self.precondition
                and info.proposal_grad is not None
                and info.n_flips <= _MAX_LEARN_FLIPS
            ):
                self._learn_from_proposal(theta, grad, info.proposal, info.proposal_grad)
        self.cache = (theta_new, self._shared_key(), logp_new, grad_new)
        stats = {
            "accept": info.accept,
            "accepted": info.accepted,
            "n_flips": info.n_flips,
            "expected_flips": info.expected_flips,
            "alpha": alpha_used,
            "lp": logp_new,
        }
        q_new = theta_new.astype(self._out_dtype)
        return RaveledVars(q_new, q0.point_map_info), [stats]

    def _dual_average(self, accept: float) -> None:
        """Dual averaging of log alpha (Hoffman & Gelman 2014: t0 = 10, gamma = 0.05, k = 0.75)."""
        self.da_t += 1
        t = self.da_t
        eta = 1.0 / (t + 10.0)
        self.da_hbar = (1.0 - eta) * self.da_hbar + eta * (self.target_accept - accept)
        log_alpha = self.da_mu - np.sqrt(t) / 0.05 * self.da_hbar
        self.log_alpha = float(np.clip(log_alpha, *_LOG_ALPHA_BOUNDS))
        w = t**-0.75
        self.log_alpha_bar = float(w * self.log_alpha + (1.0 - w) * self.log_alpha_bar)

    def _probe(self, theta, logp, grad):
        """Tuning only: flip one bit, learn its curvature, keep the flip by Metropolis."""
        if self.probe_pos >= self.probe_order.size:
            self.probe_order = self.rng.permutation(self.size)
            self.probe_pos = 0
        j = int(self.probe_order[self.probe_pos])
        self.probe_pos += 1
        theta_j = theta.copy()
        theta_j[j] = 1.0 - theta_j[j]
        logp_j, grad_j = self.logp_dlogp(theta_j)
        s = theta_j[j] - theta[j]
        c = 0.5 * (grad[j] - grad_j[j]) * s
        if np.isfinite(c):
            n = self.kappa_count[j] + 1
            self.kappa_est[j] += max(1.0 / n, 0.5) * (c - self.kappa_est[j])
            self.kappa_count[j] = n
            self._refresh_kappa()
        if np.isfinite(logp_j) and np.log(self.rng.random()) < logp_j - logp:
            return theta_j, logp_j, grad_j
        return theta, logp, grad

    def _learn_from_proposal(self, theta, grad, proposal, proposal_grad) -> None:
        """Tuning only: trapezoid curvature along a multi-bit proposal (includes cross terms)."""
        flipped = proposal != theta
        c = 0.5 * (grad[flipped] - proposal_grad[flipped]) * (proposal[flipped] - theta[flipped])
        ok = np.isfinite(c)
        idx = np.flatnonzero(flipped)[ok]
        n = self.kappa_prop_count[idx] + 1
        self.kappa_prop_est[idx] += np.maximum(1.0 / n, 0.5) * (c[ok] - self.kappa_prop_est[idx])
        self.kappa_prop_count[idx] = n
        self._refresh_kappa()

    def _refresh_kappa(self) -> None:
        """kappa: single-bit probe estimate, else proposal estimate, else the largest of those.

        The fallback is conservative: an unseen bit with an underestimated curvature would be
        proposed and rejected at every step, one with an overestimate merely flips rarely.
        """
        probed = self.kappa_count > 0
        proposed = (self.kappa_prop_count > 0) & ~probed
        seen = probed | proposed
        est = np.where(probed, self.kappa_est, self.kappa_prop_est)
        if self._kappa_init is not None:
            fallback = self._kappa_init
        else:
            fallback = float(np.max(est[seen])) if seen.any() else 0.0
        self.kappa = np.maximum(np.where(seen, est, fallback), 0.0)

    @staticmethod
    def competence(var, has_grad=None) -> Competence:
        """COMPATIBLE for Bernoulli variables (bayesbin's incremental Gibbs owns IDEAL)."""
        if isinstance(getattr(var.owner, "op", None), BernoulliRV):
            return Competence.COMPATIBLE
        return Competence.INCOMPATIBLE
