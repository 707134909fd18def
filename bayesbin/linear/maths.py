"""The numpy reference maths of the linear models: logits, log posterior, predictive probabilities.

Written once here; the compiled kernels (:mod:`bayesbin.samplers.kernels`, :mod:`bayesbin.bits`)
are tested against it. ``W = w`` (encoding ``"01"``) or ``2 w - 1`` (``"pm1"``); softmax
``eta = scale * (x @ W) + b`` with ``W`` of shape (D, K); logistic single ``eta = scale * (x @ W)
+ b``; two-output ``eta = scale * (x @ W[1] - x @ W[0]) + b`` with ``P(y = 1) = sigmoid(eta)``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from bayesbin._progress import progress
from bayesbin.linear.spec import Form, ModelSpec

__all__ = [
    "class_proba",
    "draw_logits",
    "iter_draw_logits",
    "log_posterior",
    "predictive_proba_from_draws",
    "row_lse",
    "softmax",
]

# Largest float64 block (in elements) held at once by the chunked float64 predictive.
_CHUNK_ELEMENTS = 1 << 23


def draw_logits(
    w_eff: np.ndarray, bias: np.ndarray, scale: np.ndarray, x: np.ndarray, *, form: Form
) -> np.ndarray:
    """Float64 logits of S weight draws: the model maths of :mod:`bayesbin.linear`.

    Parameters
    ----------
    w_eff : ndarray of shape (S, *weight_shape)
        Effective weights ``W`` (already ``2 w - 1`` for the pm1 encoding).
    bias : ndarray of shape (S,) (logistic) or (S, K) (softmax)
    scale : ndarray of shape (S,)
    x : ndarray of shape (n, D), float64
    form : {"single", "two_output", "softmax"}

    Returns
    -------
    ndarray of float64, shape (S, n, K) for softmax, (S, n) for logistic
    """
    w_eff = np.asarray(w_eff, dtype=np.float64)
    scale = np.asarray(scale, dtype=np.float64)
    bias = np.asarray(bias, dtype=np.float64)
    if form == "softmax":
        z = np.matmul(x, w_eff)  # (S, n, K)
        return scale[:, None, None] * z + bias[:, None, :]
    if form == "single":
        z = np.matmul(w_eff, x.T)  # (S, n)
    else:
        z = np.matmul(w_eff[:, 1, :], x.T) - np.matmul(w_eff[:, 0, :], x.T)
    return scale[:, None] * z + bias[:, None]


def _log_sigmoid(z: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -z)


def row_lse(eta: np.ndarray, *, reference: bool = False) -> np.ndarray:
    """Log-sum-exp over the last axis: the normaliser of the softmax likelihood.

    Parameters
    ----------
    eta : ndarray of shape (..., C), float64
        Logit columns.
    reference : bool
        Include an implicit class of logit 0 (the logistic forms as a softmax over ``[0, eta]``).

    Returns
    -------
    ndarray of shape (...,), float64
    """
    top = eta.max(axis=-1, keepdims=True)
    if reference:
        top = np.maximum(top, 0.0)
        return np.log(np.exp(-top[..., 0]) + np.exp(eta - top).sum(axis=-1)) + top[..., 0]
    return np.log(np.exp(eta - top).sum(axis=-1)) + top[..., 0]


def log_posterior(
    spec: ModelSpec,
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    b=None,
    scale=None,
    *,
    jacobian: bool = True,
    chunk: int = 64,
) -> np.ndarray:
    """Exact model log-posterior for many draws at once (numpy, float64).

    Equals ``model.compile_logp(jacobian=jacobian)`` at each draw (PyMC's transforms: log for
    ``scale``, logodds-interval for relaxed ``w``), without a PyTensor call per draw.

    Parameters
    ----------
    spec : ModelSpec
    x : ndarray of shape (n, D), float64
    y : ndarray of shape (n,), int
    w : ndarray of shape (S, *spec.weight_shape)
        Bits (or relaxed weights in (0, 1)).
    b : ndarray of shape (S,) or (S, K), optional
        Bias draws when ``spec.bias``.
    scale : ndarray of shape (S,), optional
        Logit-scale draws when ``spec.scale is True``.
    jacobian : bool
        Include the log-Jacobian of PyMC's default transforms.
    chunk : int
        Draws per matrix product.

    Returns
    -------
    ndarray of shape (S,)
    """
    w = np.asarray(w, dtype=np.float64)
    S = w.shape[0]
    out = np.zeros(S)
    W = w if spec.encoding == "01" else 2.0 * w - 1.0
    if spec.relaxed is not None:
        from scipy import stats

        a_, b_ = spec.relaxed
        wc = np.clip(w, 1e-300, 1 - 1e-16)
        lp_w = stats.beta.logpdf(wc, a_, b_)
        if jacobian:
            lp_w = lp_w + np.log(wc) + np.log1p(-wc)
        out += lp_w.reshape(S, -1).sum(axis=1)
    else:
        p = spec.prior_p
        with np.errstate(divide="ignore"):
            lp1, lp0 = np.log(p), np.log1p(-p)
        bits = w.reshape(S, -1)
        out += np.where(bits > 0.5, lp1.ravel(), lp0.ravel()).sum(axis=1)
    s = np.full(S, spec.fixed_scale)
    if spec.scale is True:
        s = np.asarray(scale, dtype=np.float64).reshape(S)
        sig = spec.scale_sigma
        out += np.log(2.0) - 0.5 * np.log(2 * np.pi * sig**2) - 0.5 * (s / sig) ** 2
        if jacobian:
            out += np.log(s)
    if spec.bias:
        bb = np.asarray(b, dtype=np.float64).reshape(S, -1)
        sig = spec.bias_sigma
        out += (-0.5 * np.log(2 * np.pi * sig**2) - 0.5 * (bb / sig) ** 2).sum(axis=1)
    else:
        bb = np.zeros((S, 1))
    y = np.asarray(y, dtype=np.int64)
    n = x.shape[0]
    if spec.form != "softmax":
        bb = bb[:, 0]
    for lo in range(0, S, chunk):
        hi = min(S, lo + chunk)
        z = draw_logits(W[lo:hi], bb[lo:hi], s[lo:hi], x, form=spec.form)
        if spec.form == "softmax":
            out[lo:hi] += (z[:, np.arange(n), y] - row_lse(z)).sum(axis=1)
        else:
            out[lo:hi] += np.where(y == 1, _log_sigmoid(z), _log_sigmoid(-z)).sum(axis=1)
    return out


def softmax(eta: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, float64: ``exp(eta - max) / sum(exp(eta - max))``."""
    eta = np.asarray(eta, dtype=np.float64)
    e = np.exp(eta - eta.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def class_proba(eta: np.ndarray, *, form: Form) -> np.ndarray:
    """Class probabilities from logits: softmax, or ``[1 - p, p]`` with ``p = sigmoid(eta)``.

    Parameters
    ----------
    eta : ndarray of shape (..., K) (softmax) or (...) (logistic forms)
    form : {"single", "two_output", "softmax"}

    Returns
    -------
    ndarray of shape (..., K), float64
    """
    if form == "softmax":
        return softmax(eta)
    p1 = expit(eta)
    return np.stack([1.0 - p1, p1], axis=-1)


def iter_draw_logits(
    w_eff: np.ndarray, bias: np.ndarray, scale: np.ndarray, x: np.ndarray, *, form: Form
):
    """:func:`draw_logits` in chunks of draws that keep memory bounded.

    Yields
    ------
    ndarray of float64, shape (S_chunk, n, K) for softmax, (S_chunk, n) for logistic
    """
    x = np.asarray(x, dtype=np.float64)
    n_draws = w_eff.shape[0]
    n, k = x.shape[0], (w_eff.shape[-1] if form == "softmax" else 1)
    chunk = max(1, _CHUNK_ELEMENTS // max(1, n * k))
    for lo in range(0, n_draws, chunk):
        hi = min(lo + chunk, n_draws)
        yield draw_logits(w_eff[lo:hi], bias[lo:hi], scale[lo:hi], x, form=form)


def predictive_proba_from_draws(
    w_eff: np.ndarray,
    bias: np.ndarray,
    scale: np.ndarray,
    x: np.ndarray,
    *,
    form: Form,
    progressbar: bool = False,
) -> np.ndarray:
    """Mean over draws of the class probabilities (float64, chunked over draws).

    Parameters are as in :func:`draw_logits`; ``progressbar`` shows a bar over the draws.

    Returns
    -------
    ndarray of shape (n, K), float64
        ``mean_s softmax(eta_s)``; for logistic forms ``[1 - p, p]`` with
        ``p = mean_s sigmoid(eta_s)``.
    """
    n, k = x.shape[0], (w_eff.shape[-1] if form == "softmax" else 1)
    total = np.zeros((n, k) if form == "softmax" else n)
    with progress("predictive over draws", w_eff.shape[0], progressbar) as task:
        for eta in iter_draw_logits(w_eff, bias, scale, x, form=form):
            total += (softmax(eta) if form == "softmax" else expit(eta)).sum(axis=0)
            task.advance(eta.shape[0])
    mean = total / w_eff.shape[0]
    if form == "softmax":
        return mean
    return np.stack([1.0 - mean, mean], axis=1)
