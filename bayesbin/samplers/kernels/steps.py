"""Composed kernels: incremental Gibbs sweeps with group moves, the adaptive random walk on theta.

These are what a PyMC step (:class:`~bayesbin.samplers.IncrementalGibbs`, one chain) and replica
exchange (:class:`~bayesbin.samplers.ReplicaExchange`, one call per replica) run each step. They
are functions of ``(problem, state, rng, ...)`` returning the new state and an info record; the
adaptation state of the random walk is an immutable :class:`RWTuner` passed in and returned.

Random walk on ``theta = (bias..., log scale)`` (:func:`rw_step`): ``n_steps`` random-walk
Metropolis proposals, each costing one O(n C) likelihood from the cached activations. The
proposal covariance starts as ``lambda^2 F^{-1}`` (``F``: Fisher information plus prior precision
at the current state) and is replaced, at the end of doubling windows of tuning steps (50, 100,
200, ...), by the empirical covariance of the window's draws (shrunk towards ``F^{-1}``);
``lambda`` follows a Robbins-Monro rule towards acceptance 0.25. All of it adapts during tuning
only (``tune=True``) and is frozen afterwards, so the post-tuning chain is exact.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from bayesbin.samplers.kernels.continuous import (
    ContinuousPrior,
    continuous_rwm,
    join_theta,
    theta_precision,
)
from bayesbin.samplers.kernels.flips import draw_scan, sweep
from bayesbin.samplers.kernels.groups import group_sweep
from bayesbin.samplers.kernels.problem import FlipProblem, FlipState, refresh

__all__ = [
    "SweepsInfo",
    "RWTuner",
    "gibbs_sweeps",
    "rw_tuner",
    "fisher_chol",
    "rw_adapt",
    "rw_step",
    "FIRST_WINDOW",
]

_TARGET_ACCEPT = 0.25
FIRST_WINDOW = 50  # tuning steps in the first covariance window; windows then double
_LOG_SCALE_MIN_PRECISION = 1.0  # caps the proposal sd of log scale at 1 where F is flat


class SweepsInfo(NamedTuple):
    """What :func:`gibbs_sweeps` did.

    Attributes
    ----------
    n_flips : int
        Accepted single-site flips.
    n_proposed : int
        Bits visited.
    n_pair_flips : int
        Accepted likelihood-neutral group moves.
    drift : float
        Largest relative log-likelihood drift found by a periodic refresh (0 if none).
    refreshed : bool
        Whether the cache was rebuilt from scratch.
    """

    n_flips: int
    n_proposed: int
    n_pair_flips: int
    drift: float
    refreshed: bool


def gibbs_sweeps(
    problem: FlipProblem,
    state: FlipState,
    groups: np.ndarray,
    rng: np.random.Generator,
    *,
    beta: float,
    mode: str,
    scan: str,
    n_sweeps: int,
    refresh_every: int,
    since_refresh: int,
) -> tuple[FlipState, int, SweepsInfo]:
    """``n_sweeps`` single-site sweeps at inverse temperature ``beta``, each followed by group moves.

    Parameters
    ----------
    problem : FlipProblem
    state : FlipState
        Updated in place.
    groups : ndarray of shape (n_groups, g), int32
        Likelihood-neutral groups flipped jointly after every sweep (may be empty).
    rng : numpy.random.Generator
        Source of the scan orders and uniforms (drawn in a fixed order, so the same generator
        state gives the same result).
    beta : float
        Inverse temperature of the likelihood.
    mode : {"gibbs", "metropolis", "greedy"}
    scan : {"random", "systematic"}
    n_sweeps : int
    refresh_every : int
        Rebuild the cache from scratch once ``since_refresh`` reaches this many sweeps.
    since_refresh : int
        Sweeps since the last rebuild.

    Returns
    -------
    state : FlipState
    since_refresh : int
    info : SweepsInfo
    """
    n_flips = n_proposed = n_pair_flips = 0
    drift = 0.0
    refreshed = False
    n_groups = groups.shape[0]
    for _ in range(n_sweeps):
        if since_refresh >= refresh_every:
            state, rinfo = refresh(problem, state)
            drift = max(drift, rinfo.loglik_drift)
            since_refresh = 0
            refreshed = True
        order, uniforms = draw_scan(problem, rng, scan)
        state, sinfo = sweep(problem, state, order, uniforms, beta=beta, mode=mode)
        n_flips += sinfo.n_flips
        n_proposed += sinfo.n_proposed
        if n_groups:
            state, n_group = group_sweep(problem, state, groups, rng.random(n_groups))
            n_pair_flips += n_group
        since_refresh += 1
    return state, since_refresh, SweepsInfo(n_flips, n_proposed, n_pair_flips, drift, refreshed)


class RWTuner(NamedTuple):
    """Adaptation state of the random walk on theta (one per chain, or per temperature).

    Attributes
    ----------
    n_tune_steps : int
        Tuning steps seen.
    log_lambda : float
        Log of the step factor.
    rm_count : int
        Robbins-Monro step count since the last covariance update.
    chol : ndarray of shape (dim, dim) or None
        Proposal covariance factor (None until first computed).
    window : tuple or None
        ``(count, sum, sum of outer products)`` of theta in the current window.
    window_end : int
        Tuning step at which the current window closes.
    """

    n_tune_steps: int
    log_lambda: float
    rm_count: int
    chol: np.ndarray | None
    window: tuple | None
    window_end: int


def rw_tuner(dim: int) -> RWTuner:
    """Make a fresh :class:`RWTuner` for a theta of length ``dim``."""
    return RWTuner(
        n_tune_steps=0,
        log_lambda=math.log(2.38 / math.sqrt(dim)) if dim else 0.0,
        rm_count=0,
        chol=None,
        window=None,
        window_end=FIRST_WINDOW,
    )


def fisher_chol(
    problem: FlipProblem, state: FlipState, prior: ContinuousPrior, beta: float
) -> np.ndarray:
    """Cholesky factor of the inverse of (beta Fisher information + prior precision).

    Returns
    -------
    ndarray of shape (dim, dim)
    """
    dim = prior.dim
    prec = theta_precision(problem, state, prior, beta=beta)
    prec = 0.5 * (prec + prec.T)
    if prior.learn_scale:
        prec[-1, -1] += _LOG_SCALE_MIN_PRECISION
    try:
        cov = np.linalg.inv(prec + 1e-10 * np.eye(dim))
        return np.linalg.cholesky(0.5 * (cov + cov.T))
    except np.linalg.LinAlgError:
        return np.eye(dim) * 0.1


def rw_adapt(
    problem: FlipProblem,
    prior: ContinuousPrior,
    state: FlipState,
    tuner: RWTuner,
    path: np.ndarray,
    rate: float,
    beta: float,
) -> RWTuner:
    """One tuning update: Robbins-Monro on the step factor, windowed covariance of theta.

    Parameters
    ----------
    problem, prior, state
        As for :func:`rw_step`.
    tuner : RWTuner
    path : ndarray of shape (n_steps, dim)
        Theta after each proposal of the step.
    rate : float
        The step's acceptance rate.
    beta : float
        Inverse temperature (for the Fisher fallback).

    Returns
    -------
    RWTuner
    """
    dim = prior.dim
    n_tune_steps = tuner.n_tune_steps + 1
    rm_count = tuner.rm_count + 1
    gamma = 1.0 / math.sqrt(rm_count + 1.0)
    log_lambda = float(np.clip(tuner.log_lambda + gamma * (rate - _TARGET_ACCEPT), -12.0, 3.0))
    window = tuner.window
    if window is None:
        window = (0, np.zeros(dim), np.zeros((dim, dim)))
    count, total, outer = window
    window = (count + path.shape[0], total + path.sum(axis=0), outer + path.T @ path)
    chol = tuner.chol
    window_end = tuner.window_end
    if n_tune_steps >= window_end:
        count, total, outer = window
        if count > 2 * dim + 2:
            mean = total / count
            emp = (outer - count * np.outer(mean, mean)) / (count - 1)
            base = fisher_chol(problem, state, prior, beta)
            shrink = 10.0
            cov = (count * emp + shrink * base @ base.T) / (count + shrink)
            try:
                chol = np.linalg.cholesky(0.5 * (cov + cov.T) + 1e-12 * np.eye(dim))
                # the empirical covariance has its own scale: restart the step factor
                log_lambda = math.log(2.38 / math.sqrt(dim))
                rm_count = 0
            except np.linalg.LinAlgError:
                pass
        window = None
        window_end *= 2
    return RWTuner(n_tune_steps, log_lambda, rm_count, chol, window, window_end)


def rw_step(
    problem: FlipProblem,
    prior: ContinuousPrior,
    state: FlipState,
    tuner: RWTuner,
    rng: np.random.Generator,
    *,
    n_steps: int,
    beta: float,
    tune: bool,
) -> tuple[FlipState, np.ndarray, RWTuner, float]:
    """``n_steps`` random-walk Metropolis proposals on theta at inverse temperature ``beta``.

    Parameters
    ----------
    problem : FlipProblem
    prior : ContinuousPrior
    state : FlipState
        Its ``scale`` and ``bias`` are the current theta.
    tuner : RWTuner
    rng : numpy.random.Generator
    n_steps : int
    beta : float
    tune : bool
        Adapt the tuner (tuning phase); otherwise the proposal is frozen.

    Returns
    -------
    state : FlipState
    theta : ndarray of shape (dim,)
    tuner : RWTuner
    rate : float
        Acceptance rate of the proposals.
    """
    dim = prior.dim
    if tuner.chol is None or (tune and tuner.window_end == FIRST_WINDOW):
        # until the first covariance window closes: Fisher preconditioning at the current
        # state (tuning only; after tuning the factor is frozen)
        tuner = tuner._replace(chol=fisher_chol(problem, state, prior, beta))
    normals = rng.standard_normal((n_steps, dim))
    log_u = np.log(rng.random(n_steps))
    theta = join_theta(prior, state.scale, state.bias)
    chol = math.exp(tuner.log_lambda) * tuner.chol
    path = np.empty((n_steps, dim)) if tune else None
    state, theta, n_acc = continuous_rwm(
        problem, state, prior, theta, chol, normals, log_u, beta=beta, path=path
    )
    rate = n_acc / n_steps
    if tune:
        tuner = rw_adapt(problem, prior, state, tuner, path, rate, beta)
    return state, theta, tuner, rate
