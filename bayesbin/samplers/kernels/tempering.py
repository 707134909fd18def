"""Replica-exchange ladder maths: default geometric ladder, swap acceptance, ladder re-spacing."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["default_ladder", "swap_log_accept", "check_betas", "respace_ladder"]

_OPTIMAL_SPACING = 2.38  # sqrt(d) log(beta_r / beta_{r+1}) for ~0.23 swap acceptance


_MIN_REJECTION = 1e-3  # floor of a pair's rejection rate when the ladder is re-spaced


def default_ladder(n_replicas: int, dim: int, beta_min: float | None = None) -> np.ndarray:
    """Geometric ladder ``beta_r = beta_min^(r / (R - 1))`` with the default ``beta_min``.

    Parameters
    ----------
    n_replicas : int
        ``R >= 2``.
    dim : int
        Number of sampled coordinates (bits plus continuous parameters), ``>= 1``.
    beta_min : float, optional
        Hottest inverse temperature in ``(0, 1)``; default ``exp(-2.38 (R - 1) / sqrt(dim))``.

    Returns
    -------
    ndarray of shape (R,), float64
        Strictly decreasing, ``betas[0] == 1``.
    """
    if isinstance(n_replicas, bool) or not isinstance(n_replicas, int | np.integer):
        raise ValueError(f"n_replicas must be an integer >= 2; got {n_replicas!r}")
    if n_replicas < 2:
        raise ValueError(f"n_replicas must be an integer >= 2; got {n_replicas!r}")
    r = int(n_replicas)
    if beta_min is None:
        beta_min = math.exp(-_OPTIMAL_SPACING * (r - 1) / math.sqrt(max(int(dim), 1)))
    beta_min = float(beta_min)
    if not (0.0 < beta_min < 1.0):
        raise ValueError(f"beta_min must be in (0, 1); got {beta_min!r}")
    betas = beta_min ** (np.arange(r) / (r - 1))
    betas[0] = 1.0
    betas[-1] = beta_min
    return betas


def swap_log_accept(beta_i: float, beta_j: float, loglik_i: float, loglik_j: float) -> float:
    """Log acceptance ratio of exchanging the states at inverse temperatures ``beta_i, beta_j``.

    With the likelihood tempered, ``pi_beta(x) ∝ p(x) L(x)^beta``, exchanging ``x_i`` and
    ``x_j`` multiplies the extended target by ``exp((beta_i - beta_j)(loglik_j - loglik_i))``
    (priors and normalising constants cancel). Accept with ``min(1, exp(.))``.

    Parameters
    ----------
    beta_i, beta_j : float
    loglik_i, loglik_j : float
        Untempered log-likelihoods of the states currently at ``beta_i`` and ``beta_j``.

    Returns
    -------
    float
    """
    return float((beta_i - beta_j) * (loglik_j - loglik_i))


def check_betas(betas) -> np.ndarray:
    """Validate a ladder: strictly decreasing from 1, all positive; return it as float64."""
    try:
        b = np.asarray(betas, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"betas must be a sequence of floats; got {betas!r}") from exc
    if b.shape[0] < 2:
        raise ValueError(f"betas needs at least 2 temperatures; got {b.tolist()}")
    if b[0] != 1.0:
        raise ValueError(f"betas[0] must be 1 (the posterior); got {b[0]!r}")
    if not np.all(np.isfinite(b)) or np.any(b <= 0.0) or np.any(np.diff(b) >= 0.0):
        raise ValueError(
            f"betas must be strictly decreasing from 1 and positive; got {np.round(b, 6).tolist()}"
        )
    return b


def respace_ladder(betas: np.ndarray, rejection: np.ndarray) -> np.ndarray:
    """Interior temperatures at equal steps of the cumulative rejection (endpoints kept).

    ``rejection[i]`` is the mean rejection probability of swaps between ``betas[i]`` and
    ``betas[i + 1]``; the cumulative barrier ``Lambda`` is piecewise linear in ``beta``.
    """
    r = betas.shape[0]
    asc = betas[::-1]  # increasing
    rej = np.maximum(rejection[::-1], _MIN_REJECTION)
    lam = np.concatenate([[0.0], np.cumsum(rej)])
    targets = np.linspace(0.0, lam[-1], r)
    new = np.interp(targets, lam, asc)[::-1].copy()
    new[0], new[-1] = betas[0], betas[-1]
    if np.any(np.diff(new) >= 0.0):  # degenerate (rounding): keep the old ladder
        return betas.copy()
    return new
