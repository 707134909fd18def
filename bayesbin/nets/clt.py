"""Numpy forward pass of a PBNet in its Gaussian (CLT) form, and its population batch-norm statistics.

The state between layers is a Gaussian per unit, ``(mu, sigma2)``: Gaussian dense/conv layers
(:func:`bayesbin.nets.layers.gaussian_dense`, :func:`~bayesbin.nets.layers.gaussian_conv2d`),
pooling of Gaussians, stochastic batch norm, and a sign that turns ``N(mu, sigma2)`` into a ±1
activation with P(+1) = ``q = Phi(mu / sigma)`` (mean ``2q - 1``, variance ``4q(1 - q)``). The
output is the Gaussian mean of the last batch norm (what PBNet's cross-entropy is trained on).
"""

from __future__ import annotations

import numpy as np

from bayesbin.nets.export import _as_rows, _chunk_rows, _Moments
from bayesbin.nets.layers import (
    binarize,
    binary_moments,
    binary_probability,
    gaussian_conv2d,
    gaussian_dense,
    gaussian_maxpool2d,
    sampled_maxpool2d,
    stochastic_batch_norm,
)

__all__ = ["clt_bn_statistics", "clt_forward"]


def _apply(spec: dict, state, theta: dict, bn: dict, pool: str, eps: float):
    mu, var = state
    kind = spec["kind"]
    if kind == "binarize":  # deterministic ±1 inputs
        return binarize(mu, spec["threshold"]), None
    if kind == "conv2d":
        return gaussian_conv2d(mu, var, theta[spec["name"]])
    if kind == "dense":
        th = theta[spec["name"]]
        return gaussian_dense(mu, var, th)
    if kind == "maxpool2d":
        v = np.zeros_like(mu) if var is None else var
        if pool == "moments":
            return gaussian_maxpool2d(mu, v, spec["size"])
        m, s2, _ = sampled_maxpool2d(mu, v, np.zeros_like(mu), spec["size"])
        return m, s2
    if kind == "batchnorm":
        p = bn[spec["name"]]
        return stochastic_batch_norm(
            mu, var, p["gamma"], p["beta"], p["mean"].astype(np.float32),
            p["var"].astype(np.float32), eps,
        )
    if kind == "sign":
        return binary_moments(binary_probability(mu, var))
    if kind == "flatten":
        return mu.reshape(mu.shape[0], -1), (None if var is None else var.reshape(mu.shape[0], -1))
    raise ValueError(f"unknown layer kind {kind!r}")


def _shell(template: dict, theta: dict) -> dict:
    """Make a network-like dict (input and weight shapes) for row reshaping and chunk sizes."""
    layers = [
        {"weights": np.empty(theta[s["name"]].shape[:1] + (0,) * (theta[s["name"]].ndim - 1))}
        for s in template["layers"]
        if s["kind"] in ("conv2d", "dense")
    ]
    return {"input_shape": tuple(template["input_shape"]), "layers": layers}


def clt_forward(template: dict, theta: dict, bn: dict, x, *, pool: str = "moments", stop=None):
    """Gaussian forward pass of a PBNet (numpy, float32, in chunks of rows).

    Parameters
    ----------
    template : dict
        :func:`bayesbin.nets.export.network_template` of the network.
    theta : dict of str to ndarray
        ``E[w]`` per binary layer, shapes ``(out, in[, 3, 3])``.
    bn : dict of str to dict
        Per layer: ``gamma``, ``beta``, ``mean``, ``var`` (C,) of the stochastic batch norm.
    x : array-like of shape (n, *input_shape) or flat
    pool : {"moments", "sample"}
        Max pooling of Gaussians: Clark's moment matching, or the sampled-index pool with zero
        noise (the cell of largest mean) for a deterministic prediction.
    stop : int, optional
        Run only the first ``stop`` layers of the template.

    Returns
    -------
    mu, sigma2 : ndarray of shape (n, n_outputs), float32
        Mean and variance of the output (after a final sign: mean and variance of the ±1
        output).
    """
    shell = _shell(template, theta)
    x = _as_rows(shell, x)
    specs = template["layers"][:stop]
    step = _chunk_rows(shell, x.shape[0], copies=8)
    mus, vars_ = [], []
    for lo in range(0, x.shape[0], step):
        state = (x[lo : lo + step], None)
        for spec in specs:
            state = _apply(spec, state, theta, bn, pool, template["eps"])
        mu, var = state
        mus.append(mu.astype(np.float32))
        vars_.append(np.zeros_like(mus[-1]) if var is None else var.astype(np.float32))
    return np.concatenate(mus, axis=0), np.concatenate(vars_, axis=0)


def clt_bn_statistics(template: dict, theta: dict, bn: dict, x, *, pool: str = "moments") -> dict:
    """Estimate population statistics of every stochastic batch norm over ``x`` (in order).

    For the Gaussian pre-activations ``N(mu_i, sigma2_i)`` over all rows and positions, the
    expected mean ``m = mean mu_i`` and variance ``v = mean sigma2_i + var mu_i`` (what
    :func:`bayesbin.nets.layers.stochastic_batch_stats` computes per batch in training), each
    batch norm estimated with the earlier ones already set.

    Parameters
    ----------
    template, theta, bn : as in :func:`clt_forward` (``bn`` needs ``gamma`` and ``beta``)
    x : array-like of shape (n, *input_shape) or flat
    pool : {"moments", "sample"}

    Returns
    -------
    dict of str to dict
        A copy of ``bn`` with ``mean`` and ``var`` (float64) replaced.
    """
    out = {k: dict(v) for k, v in bn.items()}
    shell = _shell(template, theta)
    x = _as_rows(shell, x)
    step = _chunk_rows(shell, x.shape[0], copies=8)
    for j, spec in enumerate(template["layers"]):
        if spec["kind"] != "batchnorm":
            continue
        acc_mu, acc_var = _Moments(), _Moments()
        for lo in range(0, x.shape[0], step):
            state = (x[lo : lo + step], None)
            for s in template["layers"][:j]:
                state = _apply(s, state, theta, out, pool, template["eps"])
            acc_mu.add(state[0])
            acc_var.add(state[1])
        m, spread = acc_mu.result()
        noise, _ = acc_var.result()
        out[spec["name"]]["mean"], out[spec["name"]]["var"] = m, spread + noise
    return out
