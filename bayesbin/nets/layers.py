"""Layers as pure functions: binary dense/conv, batch norm, max pool, and their CLT (PBNet) forms.

Conventions (the same as :mod:`bayesbin.nets.export` and the packed-bit inference):

* sign(0) = +1 (:func:`bayesbin.nets.quantizers.sign`); binary values are in {-1, +1}.
* Images are NHWC ``(n, H, W, C)``; dense inputs ``(n, D)``; dense weights ``(out, in)`` with
  ``s = x @ W.T``; conv weights OIHW ``(out, in, 3, 3)``, stride 1, padding "same" with ZERO
  padding (a padded pixel contributes 0, neither +1 nor -1), cross-correlation (no kernel flip).
* Batch norm normalises the last axis: ``y = gamma * (s - mean) / sqrt(var + eps) + beta``.
* Max pooling: ``size x size`` windows, stride ``size``, no padding (rows/columns that do not
  fill a window are dropped).
* Binarized inputs (a network's optional first step, ``input_threshold``): ``+1`` where
  ``x > threshold``, else ``-1`` (strictly greater, as the linear models' ``binarize_threshold``),
  compared in float32 (``float32(x) > float32(threshold)``, what training in JAX does).

PBNet (Peters & Welling 2018) propagates a Gaussian approximation of each pre-activation (the
Lyapunov CLT). A weight is ``w in {-1, +1}`` with mean ``theta = E[w]`` (``E[w^2] = 1``), an
input has mean ``phi`` and variance ``v``; for independent terms the score ``s = sum_d w_d h_d``
has

* mean ``sum_d theta_d phi_d``,
* variance ``sum_d (v_d + phi_d^2) - theta_d^2 phi_d^2 = sum_d v_d + sum_d (1 - theta_d^2)
  phi_d^2``, i.e. for real inputs (``v = 0``) ``sum (1 - theta^2) x^2`` and for binary inputs
  (``v = 1 - phi^2``) ``D - sum theta^2 phi^2``.

So a Gaussian convolution is two convolutions (``phi`` with ``theta`` and ``phi^2`` with
``1 - theta^2``) plus a box sum of ``v`` (zero padding contributes nothing to either).

Functions taking ``xp`` work on numpy or ``jax.numpy`` arrays (the JAX backend reuses them);
the convolutions here are numpy only (batched im2col via ``sliding_window_view``, float32,
in chunks of rows so that no temporary exceeds ``_CHUNK_BYTES``).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from bayesbin.nets.quantizers import sign

__all__ = [
    "BN_EPS",
    "batch_norm",
    "batch_stats",
    "binary_moments",
    "binary_probability",
    "binarize",
    "conv2d",
    "dense",
    "gaussian_conv2d",
    "gaussian_dense",
    "gaussian_max",
    "gaussian_maxpool2d",
    "maxpool2d",
    "ndtr",
    "sampled_maxpool2d",
    "sign",
    "stochastic_batch_norm",
    "stochastic_batch_stats",
]

BN_EPS = 1e-4
"""Batch-norm epsilon used throughout :mod:`bayesbin.nets` (Courbariaux et al.'s value)."""

_CHUNK_BYTES = 32 * 2**20  # im2col block size of conv2d (the output block comes on top)
_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def ndtr(x):
    """Compute the standard normal CDF Phi(x) of a numpy array (``scipy.special.ndtr``)."""
    from scipy.special import ndtr as _ndtr

    return _ndtr(x)


# -- deterministic layers ------------------------------------------------------------------------
def dense(x, w):
    """Dense layer ``s = x @ W.T`` (no bias: batch norm follows).

    Parameters
    ----------
    x : ndarray of shape (n, in)
    w : ndarray of shape (out, in)

    Returns
    -------
    ndarray of shape (n, out)
    """
    return x @ w.T


def conv2d(x: np.ndarray, w: np.ndarray, *, chunk_bytes: int = _CHUNK_BYTES) -> np.ndarray:
    """3x3 convolution (cross-correlation), stride 1, padding "same" with zeros (numpy).

    Parameters
    ----------
    x : ndarray of shape (n, H, W, C)
    w : ndarray of shape (O, C, 3, 3)
        OIHW, any real dtype (binary weights as int8 are fine).
    chunk_bytes : int
        Memory bound of one im2col block; rows are processed in chunks that fit it.

    Returns
    -------
    ndarray of shape (n, H, W, O), float32 (float64 if ``x`` is float64)
    """
    x = np.asarray(x)
    dtype = np.float64 if x.dtype == np.float64 else np.float32
    n, h, wd, c = x.shape
    o, c2, kh, kw = w.shape
    if c2 != c or (kh, kw) != (3, 3):
        raise ValueError(f"conv2d: weights {w.shape} do not fit input channels {c} (OIHW, 3x3)")
    wmat = np.ascontiguousarray(np.asarray(w, dtype=dtype).reshape(o, c * 9).T)
    out = np.empty((n, h, wd, o), dtype=dtype)
    per_row = h * wd * c * 9 * np.dtype(dtype).itemsize
    step = max(1, chunk_bytes // max(per_row, 1))
    for lo in range(0, n, step):
        xb = np.pad(x[lo : lo + step].astype(dtype, copy=False), ((0, 0), (1, 1), (1, 1), (0, 0)))
        win = sliding_window_view(xb, (3, 3), axis=(1, 2))  # (m, H, W, C, 3, 3) view
        cols = win.reshape(-1, c * 9)  # one copy, (m*H*W, C*9)
        np.matmul(cols, wmat, out=out[lo : lo + step].reshape(-1, o))
    return out


def binarize(x, threshold: float, xp=np):
    """Binarize inputs: ``+1`` where ``x > threshold``, else ``-1``, compared in float32.

    Parameters
    ----------
    x : ndarray of any shape
    threshold : float
        Rounded to float32, as ``x`` is.
    xp : module
        Array namespace.

    Returns
    -------
    ndarray of the shape of ``x``, float32 in {-1, +1}
    """
    x = xp.asarray(x).astype(xp.float32)
    return xp.where(x > xp.float32(threshold), 1.0, -1.0).astype(xp.float32)


def maxpool2d(x, size: int = 2, xp=np):
    """Max pooling over ``size x size`` windows, stride ``size``, no padding (floor).

    Parameters
    ----------
    x : ndarray of shape (n, H, W, C)
    size : int
    xp : module
        Array namespace.

    Returns
    -------
    ndarray of shape (n, H // size, W // size, C)
    """
    n, h, w, c = x.shape
    h2, w2 = h // size, w // size
    x = x[:, : h2 * size, : w2 * size, :].reshape(n, h2, size, w2, size, c)
    return x.max(axis=(2, 4))


def batch_stats(s, mask=None, xp=np):
    """Per-channel mean and (biased) variance over every axis but the last.

    Parameters
    ----------
    s : ndarray of shape (n, ..., C)
    mask : ndarray of shape (n,), optional
        Row weights (1 for real rows, 0 for the padding of a fixed-shape last batch).
    xp : module

    Returns
    -------
    mean, var : ndarray of shape (C,)
    """
    axes = tuple(range(s.ndim - 1))
    if mask is None:
        mean = s.mean(axis=axes)
        var = ((s - mean) ** 2).mean(axis=axes)
        return mean, var
    m = mask.reshape((-1,) + (1,) * (s.ndim - 1)).astype(s.dtype)
    count = m.sum() * (math.prod(s.shape[1:-1]) if s.ndim > 2 else 1)
    mean = (s * m).sum(axis=axes) / count
    var = (((s - mean) ** 2) * m).sum(axis=axes) / count
    return mean, var


def batch_norm(s, gamma, beta, mean, var, eps: float = BN_EPS, xp=np):
    """Batch norm with given statistics: ``gamma * (s - mean) / sqrt(var + eps) + beta``.

    Parameters
    ----------
    s : ndarray of shape (n, ..., C)
    gamma, beta, mean, var : ndarray of shape (C,)
    eps : float
    xp : module

    Returns
    -------
    ndarray of the shape of ``s``
    """
    return (s - mean) * (gamma / xp.sqrt(var + eps)) + beta


# -- PBNet: Gaussian (CLT) layers ------------------------------------------------------------------
def gaussian_dense(mean, var, theta, xp=np):
    """Gaussian (CLT) dense layer over Binary weights of mean ``theta``.

    Parameters
    ----------
    mean : ndarray of shape (n, in)
        Input means ``phi`` (the real input itself for the first layer).
    var : ndarray of shape (n, in) or None
        Input variances ``v`` (None: deterministic real input, ``v = 0``; binary inputs of mean
        ``phi`` have ``v = 1 - phi^2``).
    theta : ndarray of shape (out, in)
        ``E[w]`` in [-1, 1].
    xp : module

    Returns
    -------
    mu, sigma2 : ndarray of shape (n, out)
        ``mu = phi @ theta.T``; ``sigma2 = sum(v) + phi^2 @ (1 - theta^2).T``.
    """
    mu = mean @ theta.T
    sigma2 = (mean * mean) @ (1.0 - theta * theta).T
    if var is not None:
        sigma2 = sigma2 + var.sum(axis=1, keepdims=True)
    return mu, sigma2


def _box3(x: np.ndarray) -> np.ndarray:
    """Sum over channels and a 3x3 "same" zero-padded window: (n, H, W, C) -> (n, H, W, 1)."""
    t = np.pad(x.sum(axis=-1), ((0, 0), (1, 1), (1, 1)))
    return sliding_window_view(t, (3, 3), axis=(1, 2)).sum(axis=(-1, -2))[..., None]


def gaussian_conv2d(mean, var, theta, *, chunk_bytes: int = _CHUNK_BYTES):
    """Gaussian (CLT) 3x3 convolution, padding "same" with zeros (numpy): two convolutions.

    Parameters
    ----------
    mean : ndarray of shape (n, H, W, C)
        Input means ``phi``.
    var : ndarray of shape (n, H, W, C) or None
        Input variances (None: deterministic real input).
    theta : ndarray of shape (O, C, 3, 3)
        ``E[w]`` (OIHW).
    chunk_bytes : int

    Returns
    -------
    mu, sigma2 : ndarray of shape (n, H, W, O), float32
        ``mu = conv(phi, theta)``; ``sigma2 = conv(phi^2, 1 - theta^2) + boxsum(v)``; padded
        positions contribute 0 to both.
    """
    mean = np.asarray(mean, dtype=np.float32)
    theta = np.asarray(theta, dtype=np.float32)
    mu = conv2d(mean, theta, chunk_bytes=chunk_bytes)
    sigma2 = conv2d(mean * mean, 1.0 - theta * theta, chunk_bytes=chunk_bytes)
    if var is not None:
        sigma2 += _box3(np.asarray(var, dtype=np.float32))
    return mu, sigma2


def stochastic_batch_stats(mu, sigma2, mask=None, xp=np):
    """Batch statistics of Gaussian pre-activations: the batch's *expected* mean and variance.

    For ``a_i ~ N(mu_i, sigma2_i)`` over the batch (and positions), ``m = mean_i mu_i`` and
    ``v = mean_i (sigma2_i + mu_i^2) - m^2 = mean_i sigma2_i + mean_i (mu_i - m)^2``, i.e.
    ``m = E[mean_i a_i]`` and ``v + m^2 = E[mean_i a_i^2]``.

    Parameters
    ----------
    mu, sigma2 : ndarray of shape (n, ..., C)
    mask : ndarray of shape (n,), optional
    xp : module

    Returns
    -------
    mean, var : ndarray of shape (C,)
    """
    m, spread = batch_stats(mu, mask, xp)
    noise, _ = batch_stats(sigma2, mask, xp)
    return m, spread + noise


def stochastic_batch_norm(mu, sigma2, gamma, beta, mean, var, eps: float = BN_EPS, xp=np):
    """Stochastic batch norm: the affine batch norm applied to a Gaussian.

    Parameters
    ----------
    mu, sigma2 : ndarray of shape (n, ..., C)
    gamma, beta, mean, var : ndarray of shape (C,)
        ``mean``/``var`` from :func:`stochastic_batch_stats` (training) or population values.
    eps : float
    xp : module

    Returns
    -------
    mu_out, sigma2_out : ndarray of the shape of ``mu``
        ``gamma (mu - mean) / sqrt(var + eps) + beta`` and ``gamma^2 sigma2 / (var + eps)``.
    """
    scale = gamma / xp.sqrt(var + eps)
    return (mu - mean) * scale + beta, sigma2 * (scale * scale)


def binary_probability(mu, sigma2, xp=np, ndtr=ndtr, min_var: float = 1e-8):
    """P(sign(a) = +1) for ``a ~ N(mu, sigma2)``: ``q = 1 - Phi(0 | mu, sigma2) = Phi(mu/sigma)``.

    Parameters
    ----------
    mu, sigma2 : ndarray of the same shape
    xp : module
    ndtr : callable
        Standard normal CDF for ``xp`` arrays.
    min_var : float
        Added to ``sigma2``: a deterministic pre-activation gives the step (exactly at
        ``mu = 0`` its limit 1/2; sign(0) = +1 concerns values, not this probability).

    Returns
    -------
    ndarray of the same shape, values in [0, 1]
    """
    return ndtr(mu / xp.sqrt(sigma2 + min_var))


def binary_moments(q):
    """Mean and variance of the ±1 activation that is +1 with probability ``q``.

    Parameters
    ----------
    q : ndarray of any shape

    Returns
    -------
    phi, v : ndarray of the same shape
        ``phi = 2q - 1``, ``v = 1 - phi^2 = 4 q (1 - q)``.
    """
    phi = 2.0 * q - 1.0
    return phi, 4.0 * q * (1.0 - q)


def gaussian_max(mu1, var1, mu2, var2, xp=np, ndtr=ndtr, min_var: float = 1e-8):
    """Mean and variance of ``max(X1, X2)`` for independent Gaussians (Clark 1961, exact).

    With ``t = sqrt(var1 + var2)`` and ``a = (mu1 - mu2) / t``:
    ``E = mu1 Phi(a) + mu2 Phi(-a) + t phi(a)`` and
    ``E2 = (mu1^2 + var1) Phi(a) + (mu2^2 + var2) Phi(-a) + (mu1 + mu2) t phi(a)``.

    Parameters
    ----------
    mu1, var1, mu2, var2 : ndarray of the same shape
    xp : module
    ndtr : callable
    min_var : float
        Added to ``var1 + var2`` (two deterministic inputs give the plain max).

    Returns
    -------
    mean, var : ndarray of the same shape
    """
    t = xp.sqrt(var1 + var2 + min_var)
    a = (mu1 - mu2) / t
    cdf = ndtr(a)
    pdf = xp.exp(-0.5 * a * a) * _INV_SQRT_2PI
    mean = mu1 * cdf + mu2 * (1.0 - cdf) + t * pdf
    second = (mu1 * mu1 + var1) * cdf + (mu2 * mu2 + var2) * (1.0 - cdf) + (mu1 + mu2) * t * pdf
    return mean, xp.maximum(second - mean * mean, 0.0)


def _windows(x, size, xp):
    """(n, H, W, C) -> list of size*size arrays (n, H//size, W//size, C), one per window cell."""
    n, h, w, c = x.shape
    h2, w2 = h // size, w // size
    x = x[:, : h2 * size, : w2 * size, :].reshape(n, h2, size, w2, size, c)
    return [x[:, :, i, :, j, :] for i in range(size) for j in range(size)]


def gaussian_maxpool2d(mu, sigma2, size: int = 2, xp=np, ndtr=ndtr, gmax=None):
    """Max pooling of Gaussians by moment matching (Clark's max, applied pairwise).

    The window's cells are combined as a balanced tree of :func:`gaussian_max` (for 2x2:
    ``max(max(a, b), max(c, d))``), each intermediate max replaced by the Gaussian with its
    mean and variance. Exact for two cells; for more it is an approximation (the max of
    Gaussians is not Gaussian), accurate to a few percent of the spread.

    Parameters
    ----------
    mu, sigma2 : ndarray of shape (n, H, W, C)
    size : int
    xp : module
    ndtr : callable
    gmax : callable, optional
        Replacement of :func:`gaussian_max` with the same signature (the JAX backend passes a
        version with a hand-written gradient).

    Returns
    -------
    mu_out, sigma2_out : ndarray of shape (n, H // size, W // size, C)
    """
    gmax = gaussian_max if gmax is None else gmax
    cells = list(zip(_windows(mu, size, xp), _windows(sigma2, size, xp), strict=True))
    while len(cells) > 1:
        nxt = [
            gmax(*cells[i], *cells[i + 1], xp=xp, ndtr=ndtr)
            for i in range(0, len(cells) - 1, 2)
        ]
        if len(cells) % 2:
            nxt.append(cells[-1])
        cells = nxt
    return cells[0]


def sampled_maxpool2d(mu, sigma2, noise, size: int = 2, xp=np):
    """Stochastic max pooling by the local reparametrisation trick (sampled index).

    Per window, sample every cell ``s = mu + sigma * noise`` and keep the Gaussian
    ``(mu, sigma2)`` of the cell with the largest sample: cell ``i`` is picked with probability
    P(X_i = max_j X_j) for independent ``X_j ~ N(mu_j, sigma2_j)``. Ties go to the first cell.

    Parameters
    ----------
    mu, sigma2 : ndarray of shape (n, H, W, C)
    noise : ndarray of shape (n, H, W, C)
        Standard normal draws (zeros: pick the cell with the largest mean).
    size : int
    xp : module

    Returns
    -------
    mu_out, sigma2_out : ndarray of shape (n, H // size, W // size, C)
    index : ndarray of shape (n, H // size, W // size, C), int
        Picked cell, row-major within the window (``i * size + j``).
    """
    s = mu + xp.sqrt(sigma2) * noise
    sw = xp.stack(_windows(s, size, xp), axis=-1)
    idx = xp.argmax(sw, axis=-1)
    pick = idx[..., None]
    mw = xp.take_along_axis(xp.stack(_windows(mu, size, xp), axis=-1), pick, axis=-1)[..., 0]
    vw = xp.take_along_axis(xp.stack(_windows(sigma2, size, xp), axis=-1), pick, axis=-1)[..., 0]
    return mw, vw, idx
