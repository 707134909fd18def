"""Likelihood-neutral group flips: two-output pairs and softmax rows, all 0 <-> all 1 exactly.

Likelihood-neutral group moves (:func:`likelihood_neutral_groups`, :func:`group_sweep`): some
groups of bits of one feature leave the likelihood exactly unchanged when they are all equal and
flip together, so the move between all-0 and all-1 is accepted on the prior change alone.
For the two-output logistic form the group is the pair ``w[0, j], w[1, j]`` (only
``w[1, j] - w[0, j]`` enters the logit; :func:`pair_sweep` is the pair-only special case); for
the softmax form it is the row ``w[j, :]`` of K bits: flipping all of them shifts every class
logit of every row by the same ``±unit * scale * x[i, j]``, which the softmax ignores. Single-site
updates can only cross between all-0 and all-1 through mixed states of possibly much lower
likelihood. ``sweep(..., mode="greedy")`` flips a bit only when ``Δ > 0`` (zero-temperature
polishing for mode finding).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from bayesbin.samplers.kernels.flips import mode_code
from bayesbin.samplers.kernels.problem import FlipProblem, FlipState

__all__ = [
    "likelihood_neutral_groups",
    "group_sweep",
    "likelihood_neutral_pairs",
    "pair_sweep",
]


def _feature_bits(problem: FlipProblem, j: int) -> np.ndarray:
    return problem.group_bits[problem.group_ptr[j] : problem.group_ptr[j + 1]]


def likelihood_neutral_groups(problem: FlipProblem) -> np.ndarray:
    """Find the groups of bits whose joint flip never changes the likelihood when all are equal.

    * Two-output logistic form: the pair ``w[0, j], w[1, j]`` (two active bits of one feature in
      the same logit column with opposite signs) contributes ``sigma unit (w_b - w_a)`` to the
      effective weight, zero whenever ``w_a == w_b``: flipping both from ``(0, 0)`` to
      ``(1, 1)`` or back leaves ``A``, ``P`` and the log-likelihood exactly unchanged.
    * Softmax form (no reference class): the row ``w[j, :]`` of K >= 2 active bits, one per
      class column, all with the same sign. Flipping all of them while they are equal moves
      every class logit of row ``i`` by the same ``±unit * scale * x[i, j]``; the softmax is
      invariant to that, so ``P`` and the log-likelihood are exactly unchanged (``A`` moves by a
      per-row constant common to all columns, which the cache does not track, see
      :class:`FlipState`).
    * Single-vector logistic form: no groups.

    Features with a frozen bit (prior p in {0, 1}) or any other bit layout contribute no group.

    Parameters
    ----------
    problem : FlipProblem

    Returns
    -------
    ndarray of shape (n_groups, g), int32
        One row of bit indices (C-order flattening of ``w``) per group, ascending feature;
        ``g`` is the number of bits per feature (2 for the two-output form, K for softmax,
        1 for the single form, which has no groups).
    """
    d = problem.n_features
    g = int(problem.n_bits // d) if d else 0
    out = []
    for j in range(d):
        bits = _feature_bits(problem, j)
        if bits.shape[0] != g or not np.all(problem.active[bits]):
            continue
        if problem.reference:
            if g != 2:
                continue
            a, b = int(bits[0]), int(bits[1])
            if problem.bit_col[a] == problem.bit_col[b] and int(problem.bit_sign[a]) == -int(
                problem.bit_sign[b]
            ):
                out.append((a, b))
        else:
            cols = np.sort(problem.bit_col[bits])
            if (
                g >= 2
                and g == problem.n_cols
                and np.array_equal(cols, np.arange(g))
                and np.all(problem.bit_sign[bits] == problem.bit_sign[bits[0]])
            ):
                out.append(tuple(int(b) for b in bits))
    return np.array(out, dtype=np.int32).reshape(-1, max(g, 1))


@nb.njit(cache=True, nogil=True)
def _group_kernel(groups, w, prior_logit, uniforms, mode):
    n_flips = 0
    g = groups.shape[1]
    for p in range(groups.shape[0]):
        v = w[groups[p, 0]]
        equal = True
        d = 0.0
        for q in range(g):
            b = groups[p, q]
            if w[b] != v:
                equal = False
                break
            d += prior_logit[b]
        if not equal:
            continue
        if v == 1:
            d = -d
        if mode == 0:
            if d >= 0.0:
                flip = uniforms[p] < 1.0 / (1.0 + math.exp(-d))
            else:
                ed = math.exp(d)
                flip = uniforms[p] < ed / (1.0 + ed)
        elif mode == 1:
            flip = d >= 0.0 or uniforms[p] < math.exp(d)
        else:
            flip = d > 0.0
        if flip:
            for q in range(g):
                w[groups[p, q]] = 1 - v
            n_flips += 1
    return n_flips


def group_sweep(
    problem: FlipProblem,
    state: FlipState,
    groups: np.ndarray,
    uniforms: np.ndarray,
    mode: str = "metropolis",
) -> tuple[FlipState, int]:
    """Flip all-equal likelihood-neutral groups (all 0 <-> all 1) by an exact move, in place.

    For every group whose bits are all equal the joint flip changes the log-likelihood by
    exactly 0 (see :func:`likelihood_neutral_groups`), so ``Δ`` is the change of the Bernoulli
    log-prior only, ``±sum_b logit p_b`` (``+`` from all 0 to all 1); any likelihood temperature
    drops out. The proposal is a deterministic involution on the set of all-equal groups, hence
    symmetric. Groups are disjoint and independent given the rest, so their order does not
    matter. Only ``state.w`` changes: ``A``, ``P`` and ``loglik`` are untouched (for the softmax
    form ``A`` is then off by a per-row constant common to all columns, which nothing derived
    from it sees). Cost ``O(n_groups * g)``.

    Parameters
    ----------
    problem : FlipProblem
    state : FlipState
        ``state.w`` is updated in place.
    groups : ndarray of shape (n_groups, g), int
        From :func:`likelihood_neutral_groups` (or :func:`likelihood_neutral_pairs`).
    uniforms : ndarray of shape (>= n_groups,), float64
        One uniform per group (ignored by ``"greedy"``).
    mode : {"metropolis", "gibbs", "greedy"}
        Accept with ``min(1, e^Δ)`` (default), with ``sigmoid(Δ)`` (heat bath), or iff
        ``Δ > 0``.

    Returns
    -------
    state : FlipState
    n_flips : int
        Groups flipped.
    """
    mcode = mode_code(mode)
    groups = np.asarray(groups)
    if groups.ndim != 2:
        raise ValueError(f"groups must be a 2-D array (n_groups, g); got shape {groups.shape}")
    groups = np.ascontiguousarray(groups, dtype=np.int32)
    if groups.size and (groups.min() < 0 or groups.max() >= problem.n_bits):
        raise ValueError(f"groups must hold bit indices in 0..{problem.n_bits - 1}")
    u = np.asarray(uniforms, dtype=np.float64).reshape(-1)
    if u.shape[0] < groups.shape[0]:
        raise ValueError(f"need {groups.shape[0]} uniforms; got {u.shape[0]}")
    if groups.shape[0] == 0 or groups.shape[1] == 0:
        return state, 0
    n = _group_kernel(groups, state.w, problem.prior_logit, u, mcode)
    return state, int(n)


def likelihood_neutral_pairs(problem: FlipProblem) -> np.ndarray:
    """Pairs of bits whose joint flip never changes the likelihood when they are equal.

    The two-output special case of :func:`likelihood_neutral_groups`: two active bits of the
    same feature, in the same logit column, with opposite signs (the ``w[0, j]``, ``w[1, j]`` of
    the two-output logistic form) contribute ``sigma unit (w_b - w_a)`` to the effective weight:
    zero whenever ``w_a == w_b``, so flipping both from ``(0, 0)`` to ``(1, 1)`` or back leaves
    ``A``, ``P`` and the log-likelihood exactly unchanged. Other forms (softmax included, whose
    groups are rows of K bits) give no pairs.

    Returns
    -------
    ndarray of shape (n_pairs, 2), int32
        Bit indices ``(a, b)`` (C-order flattening of ``w``); empty for other forms.
    """
    if not problem.reference:
        return np.zeros((0, 2), dtype=np.int32)
    return likelihood_neutral_groups(problem).reshape(-1, 2)


def pair_sweep(
    problem: FlipProblem,
    state: FlipState,
    pairs: np.ndarray,
    uniforms: np.ndarray,
    mode: str = "metropolis",
) -> tuple[FlipState, int]:
    """Flip equal likelihood-neutral pairs ``(0, 0) <-> (1, 1)`` by an exact MH move, in place.

    :func:`group_sweep` with groups of two: for every pair with ``w_a == w_b`` the joint flip
    changes the log-likelihood by exactly 0 (see :func:`likelihood_neutral_pairs`), so ``Δ`` is
    the change of the Bernoulli log-prior only (``±(logit p_a + logit p_b)``; any likelihood
    temperature drops out). The proposal is a deterministic involution on the set of equal pairs,
    hence symmetric. Pairs are independent given the rest, so their order does not matter; ``A``,
    ``P`` and ``loglik`` are untouched.

    Parameters
    ----------
    problem : FlipProblem
    state : FlipState
        ``state.w`` is updated in place.
    pairs : ndarray of shape (n_pairs, 2), int32
        From :func:`likelihood_neutral_pairs`.
    uniforms : ndarray of shape (n_pairs,), float64
    mode : {"metropolis", "gibbs", "greedy"}
        Accept with ``min(1, e^Δ)`` (default), with ``sigmoid(Δ)``, or iff ``Δ > 0``.

    Returns
    -------
    state : FlipState
    n_flips : int
        Pairs flipped.
    """
    pairs = np.asarray(pairs, dtype=np.int32).reshape(-1, 2)
    return group_sweep(problem, state, pairs, uniforms, mode)
