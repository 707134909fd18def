"""The pure DMALA kernel: flip logits and one Metropolis-adjusted discrete Langevin step (no PyMC).

See :mod:`bayesbin.samplers.dmala` for the sampler, its maths and its adaptation.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.special import expit

__all__ = ["DMALAInfo", "dmala_flip_logits", "dmala_step", "flip_penalty"]


class DMALAInfo(NamedTuple):
    """What one DMALA step did.

    Attributes
    ----------
    accept : float
        Metropolis-Hastings acceptance probability ``min(1, r)`` of the proposal.
    accepted : bool
        Whether the proposal was accepted.
    n_flips : int
        Number of bits the proposal flipped (0 means the proposal was the current state).
    expected_flips : float
        Expected number of flipped bits under the forward proposal.
    proposal : ndarray of shape (k,) or None
        The proposed bits (None when nothing was flipped).
    proposal_grad : ndarray of shape (k,) or None
        Gradient at the proposal (None when nothing was flipped or its logp was not finite).
    """

    accept: float
    accepted: bool
    n_flips: int
    expected_flips: float
    proposal: np.ndarray | None = None
    proposal_grad: np.ndarray | None = None


def _log_sigmoid(x: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -x)


def flip_penalty(a: np.ndarray, lam: float, max_flips: float | None) -> float:
    """Smallest ``lambda >= lam`` with ``sum(sigmoid(a - lambda)) <= max_flips`` (bisection)."""
    if max_flips is None or expit(a - lam).sum() <= max_flips:
        return lam
    lo, hi = lam, max(lam, float(np.max(a))) + 50.0
    for _ in range(64):  # fixed iteration count: a deterministic function of (a, lam)
        mid = 0.5 * (lo + hi)
        if expit(a - mid).sum() > max_flips:
            lo = mid
        else:
            hi = mid
    return hi


def dmala_flip_logits(
    theta: np.ndarray,
    grad: np.ndarray,
    kappa: np.ndarray | float,
    lam: float,
    max_flips: float | None = None,
) -> np.ndarray:
    """Log-odds of flipping each bit under the DMALA proposal at ``theta``.

    Parameters
    ----------
    theta : ndarray of shape (k,), float64
        Current bits in {0, 1}.
    grad : ndarray of shape (k,), float64
        Gradient of the target log density at ``theta`` with the bits treated as reals.
    kappa : ndarray of shape (k,) or float
        Non-negative per-coordinate curvature correction (0 gives the paper's DMALA).
    lam : float
        Flip penalty ``1 / (2 alpha)``, >= 0.
    max_flips : float, optional
        Cap on the expected number of flips; raises the penalty for this state if needed.

    Returns
    -------
    ndarray of shape (k,), float64
        ``0.5 * (grad * (1 - 2 theta) - kappa) - lambda(theta)``.
    """
    a = 0.5 * (grad * (1.0 - 2.0 * theta) - kappa)
    a = np.where(np.isnan(a), -np.inf, a)
    return a - flip_penalty(a, lam, max_flips)


def dmala_step(
    rng: np.random.Generator,
    theta: np.ndarray,
    logp: float,
    grad: np.ndarray,
    logp_dlogp,
    kappa: np.ndarray | float,
    lam: float,
    max_flips: float | None = None,
) -> tuple[np.ndarray, float, np.ndarray, DMALAInfo]:
    """One DMALA Metropolis-Hastings step on bits.

    Parameters
    ----------
    rng : numpy.random.Generator
        The only source of randomness.
    theta : ndarray of shape (k,), float64
        Current bits in {0, 1}.
    logp : float
        Target log density at ``theta``.
    grad : ndarray of shape (k,), float64
        Its gradient at ``theta`` (bits treated as reals).
    logp_dlogp : callable
        ``logp_dlogp(theta) -> (logp, grad)`` for a float64 array of shape (k,).
    kappa : ndarray of shape (k,) or float
        Per-coordinate curvature correction, fixed for this step.
    lam : float
        Flip penalty ``1 / (2 alpha)``.
    max_flips : float, optional
        Cap on expected flips per step.

    Returns
    -------
    theta, logp, grad : the new state (the old arrays if the proposal was rejected)
    info : DMALAInfo
    """
    logits = dmala_flip_logits(theta, grad, kappa, lam, max_flips)
    p_flip = expit(logits)
    expected = float(p_flip.sum())
    mask = rng.random(theta.shape[0]) < p_flip
    n_flips = int(np.count_nonzero(mask))
    if n_flips == 0:  # proposal equals the current state: accepted with probability one
        return theta, logp, grad, DMALAInfo(1.0, True, 0, expected)
    theta_new = theta.copy()
    theta_new[mask] = 1.0 - theta_new[mask]
    logp_new, grad_new = logp_dlogp(theta_new)
    logp_new = float(logp_new)
    log_u = np.log(rng.random())
    if not np.isfinite(logp_new):
        return theta, logp, grad, DMALAInfo(0.0, False, n_flips, expected, theta_new)
    logits_rev = dmala_flip_logits(theta_new, grad_new, kappa, lam, max_flips)
    log_fwd = _log_sigmoid(logits[mask]).sum() + _log_sigmoid(-logits[~mask]).sum()
    log_rev = _log_sigmoid(logits_rev[mask]).sum() + _log_sigmoid(-logits_rev[~mask]).sum()
    log_r = logp_new - logp + log_rev - log_fwd
    if np.isnan(log_r):
        log_r = -np.inf
    accept = float(np.exp(min(0.0, log_r)))
    info = DMALAInfo(accept, bool(log_u < log_r), n_flips, expected, theta_new, grad_new)
    if info.accepted:
        return theta_new, logp_new, grad_new, info
    return theta, logp, grad, info
