"""JAX + optax training backend of bayesbin.nets: the only module that imports JAX (lazily, by fit).

Pure functions over parameter pytrees (no flax): a straight-through binary forward pass (BNN),
PBNet's Gaussian (CLT) forward pass, a masked cross-entropy, and :class:`Trainer`, which owns
one ``jax.jit``-compiled training step per batch shape (the last batch is padded to the same
shape with a zero mask) and one compiled evaluation function. The maths of the layers is shared
with the numpy inference code (:mod:`bayesbin.nets.layers` functions take ``xp=jax.numpy``);
only the convolution and the straight-through gradients are JAX specific.
"""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jax.scipy.special import log_ndtr, ndtr

from bayesbin.nets.layers import (
    batch_norm,
    batch_stats,
    binarize,
    binary_moments,
    binary_probability,
    gaussian_dense,
    gaussian_maxpool2d,
    maxpool2d,
    sampled_maxpool2d,
    stochastic_batch_norm,
    stochastic_batch_stats,
)
from bayesbin.nets.quantizers import Quantizer, SteSign

__all__ = [
    "Trainer",
    "binary_forward",
    "clt_forward",
    "conv2d",
    "gaussian_conv2d",
    "gaussian_max",
    "make_quantizer",
    "run_binary_network",
]

_DN = ("NHWC", "OIHW", "NHWC")


def make_quantizer(q: Quantizer):
    """Make a differentiable JAX function from a quantizer (``jax.custom_vjp``).

    Parameters
    ----------
    q : Quantizer
        E.g. :class:`bayesbin.nets.quantizers.SteSign`.

    Returns
    -------
    callable
        ``f(x)`` with ``x`` of any shape: forward ``q.forward(x)`` (sign, sign(0) = +1),
        backward ``g * q.pseudo_grad(x)`` (the straight-through estimator).
    """

    @jax.custom_vjp
    def quantize(x):
        return q.forward(x, jnp)

    def fwd(x):
        return q.forward(x, jnp), x

    def bwd(x, g):
        return (g * q.pseudo_grad(x, jnp),)

    quantize.defvjp(fwd, bwd)
    return quantize


def _clark(mu1, var1, mu2, var2, min_var=1e-8):
    t = jnp.sqrt(var1 + var2 + min_var)
    a = (mu1 - mu2) / t
    cdf = ndtr(a)
    pdf = jnp.exp(-0.5 * a * a) * 0.3989422804014327
    mean = mu1 * cdf + mu2 * (1.0 - cdf) + t * pdf
    big_a, big_b, c = mu1 * mu1 + var1, mu2 * mu2 + var2, mu1 + mu2
    second = big_a * cdf + big_b * (1.0 - cdf) + c * t * pdf
    return mean, second, (t, a, cdf, pdf, big_a, big_b, c)


@jax.custom_vjp
def _gaussian_max(mu1, var1, mu2, var2):
    mean, second, _ = _clark(mu1, var1, mu2, var2)
    return mean, jnp.maximum(second - mean * mean, 0.0)


def _gaussian_max_fwd(mu1, var1, mu2, var2):
    mean, second, aux = _clark(mu1, var1, mu2, var2)
    var = second - mean * mean
    return (mean, jnp.maximum(var, 0.0)), (mean, var > 0, aux, mu1, mu2)


def _gaussian_max_bwd(res, g):
    # Clark's max: dE/dmu1 = Phi, dE/dmu2 = 1 - Phi, dE/dv = phi / (2t); the second moment's
    # derivatives follow from d/da Phi = phi, d/da phi = -a phi, da/dv = -a / (2 t^2).
    mean, live, (t, a, cdf, pdf, big_a, big_b, c), mu1, mu2 = res
    g_mean, g_var = g
    g_var = jnp.where(live, g_var, 0.0)
    g_e = g_mean - 2.0 * mean * g_var  # d(var) = d(E2) - 2 E dE
    d_ab = (big_a - big_b) / t
    e2_mu1 = 2.0 * mu1 * cdf + pdf * (d_ab + t - c * a)
    e2_mu2 = 2.0 * mu2 * (1.0 - cdf) + pdf * (-d_ab + t + c * a)
    e2_v = pdf / (2.0 * t) * (c * (1.0 + a * a) - d_ab * a)
    e_v = pdf / (2.0 * t)
    return (
        g_e * cdf + g_var * e2_mu1,
        g_e * e_v + g_var * (cdf + e2_v),
        g_e * (1.0 - cdf) + g_var * e2_mu2,
        g_e * e_v + g_var * (1.0 - cdf + e2_v),
    )


_gaussian_max.defvjp(_gaussian_max_fwd, _gaussian_max_bwd)


def gaussian_max(mu1, var1, mu2, var2, xp=jnp, ndtr=ndtr):
    """Clark's max of two independent Gaussians with a hand-written gradient (JAX).

    Same values as :func:`bayesbin.nets.layers.gaussian_max`; autodiff through the
    elementwise formulas was several times slower on XLA CPU (a 2x2 pool of a 100x28x28x32
    map: 0.63-0.94 s against 0.13 s for value and gradient, measured here).

    Parameters
    ----------
    mu1, var1, mu2, var2 : jax arrays of the same shape
    xp, ndtr : ignored (signature of the numpy version)

    Returns
    -------
    mean, var : jax arrays of the same shape
    """
    return _gaussian_max(mu1, var1, mu2, var2)


def conv2d(x, w):
    """3x3 cross-correlation, stride 1, padding "same" with zeros (JAX).

    Parameters
    ----------
    x : jax array of shape (n, H, W, C)
    w : jax array of shape (O, C, 3, 3)

    Returns
    -------
    jax array of shape (n, H, W, O)
    """
    return lax.conv_general_dilated(x, w.astype(x.dtype), (1, 1), "SAME", dimension_numbers=_DN)


def gaussian_conv2d(mu, var, theta):
    """Gaussian 3x3 convolution (JAX form of :func:`bayesbin.nets.layers.gaussian_conv2d`).

    Parameters
    ----------
    mu : jax array of shape (n, H, W, C)
        Input means.
    var : jax array of shape (n, H, W, C) or None
        Input variances (None: deterministic input).
    theta : jax array of shape (O, C, 3, 3)

    Returns
    -------
    mean, var : jax arrays of shape (n, H, W, O)
        ``conv(phi, theta)`` and ``conv(phi^2, 1 - theta^2) + boxsum(v)``.
    """
    m = conv2d(mu, theta)
    s2 = conv2d(mu * mu, 1.0 - theta * theta)
    if var is not None:
        ones = jnp.ones((1, 1, 3, 3), dtype=mu.dtype)
        s2 = s2 + conv2d(var.sum(axis=-1, keepdims=True), ones)
    return m, s2


def binary_forward(template, params, stats, x, *, kq, aq, mask=None, train=False, float_net=False):
    """Binary network forward pass (straight-through in training).

    Parameters
    ----------
    template : dict
        :func:`bayesbin.nets.export.network_template`.
    params : dict
        Per layer name: ``w`` (latent weights), ``gamma``, ``beta``.
    stats : dict
        Per layer name: ``mean``, ``var`` (used when ``train`` is False).
    x : jax array of shape (n, *input_shape)
    kq, aq : callable
        Weight and activation quantizers (:func:`make_quantizer`).
    mask : jax array of shape (n,), optional
        Row weights of the batch statistics.
    train : bool
        Batch statistics (returned) instead of ``stats``.
    float_net : bool
        Real weights and ReLU activations (the float baseline of the benchmarks).

    Returns
    -------
    logits : jax array of shape (n, n_outputs)
    batch : dict of name to (mean, var)
    """
    h = x
    batch = {}
    for spec in template["layers"]:
        kind = spec["kind"]
        if kind == "binarize":
            h = binarize(h, spec["threshold"], jnp)
        elif kind in ("conv2d", "dense"):
            w = params[spec["name"]]["w"]
            wb = w if float_net else kq(w)
            h = conv2d(h, wb) if kind == "conv2d" else h @ wb.T
        elif kind == "maxpool2d":
            h = maxpool2d(h, spec["size"], xp=jnp)
        elif kind == "batchnorm":
            name = spec["name"]
            if train:
                m, v = batch_stats(h, mask, jnp)
                batch[name] = (m, v)
            else:
                m, v = stats[name]["mean"], stats[name]["var"]
            p = params[name]
            h = batch_norm(h, p["gamma"], p["beta"], m, v, template["eps"], jnp)
        elif kind == "sign":
            h = jax.nn.relu(h) if float_net else aq(h)
        elif kind == "flatten":
            h = h.reshape(h.shape[0], -1)
    return h, batch


def clt_forward(template, params, stats, x, *, pool, noise=None, mask=None, train=False,
                act_noise=None, temperature=1.0, weight_temperature=1.0):
    """PBNet Gaussian forward pass; ``theta = tanh(latent / weight_temperature)``.

    Parameters
    ----------
    template, params, stats, x, mask, train : as in :func:`binary_forward`
    pool : {"moments", "sample"}
        Clark moment-matched max pool, or the sampled-index pool (local reparametrisation; in
        evaluation the noise is zero).
    noise : jax array of shape (n_noise,), optional
        Standard normal noise of the sampled-index pools in training, consumed in forward
        order (:meth:`Trainer.noise_size`); drawn on the host by numpy, which is about three
        times faster than ``jax.random.normal`` on one CPU core.
    act_noise : jax array of shape (n_act,), optional
        Uniform(0, 1) draws, one per hidden binary activation, consumed in forward order. Given
        (training only), hidden activations are *sampled* (PBNet-S): a binary Concrete
        relaxation ``h = tanh((logit(q) + log(u / (1 - u))) / (2 temperature))`` of the ±1
        activation that is +1 with probability ``q``, fed to the next layer as a real input.
        Without it, the activation's mean and variance are propagated (PBNet).
    temperature : float
        Of the relaxation.
    weight_temperature : float
        ``theta = tanh(latent / weight_temperature)``.

    Returns
    -------
    logits : jax array of shape (n, n_outputs)
        The output's Gaussian mean.
    batch : dict of name to (mean, var)
    """
    mu, var = x, None
    batch = {}
    for spec in template["layers"]:
        kind = spec["kind"]
        if kind == "binarize":  # deterministic ±1 inputs (variance 0)
            mu = binarize(mu, spec["threshold"], jnp)
        elif kind in ("conv2d", "dense"):
            theta = jnp.tanh(params[spec["name"]]["w"] / weight_temperature)
            if kind == "conv2d":
                mu, var = gaussian_conv2d(mu, var, theta)
            else:
                mu, var = gaussian_dense(mu, var, theta, xp=jnp)
        elif kind == "maxpool2d":
            v = jnp.zeros_like(mu) if var is None else var
            if pool == "moments":
                mu, var = gaussian_maxpool2d(mu, v, spec["size"], xp=jnp, ndtr=ndtr,
                                             gmax=gaussian_max)
            else:
                if train:  # standard normals from the host (numpy), one block per pool
                    size = math.prod(mu.shape)
                    eps = noise[:size].reshape(mu.shape)
                    noise = noise[size:]
                else:
                    eps = jnp.zeros_like(mu)
                mu, var, _ = sampled_maxpool2d(mu, v, eps, spec["size"], xp=jnp)
        elif kind == "batchnorm":
            name = spec["name"]
            if train:
                m, v = stochastic_batch_stats(mu, var, mask, jnp)
                batch[name] = (m, v)
            else:
                m, v = stats[name]["mean"], stats[name]["var"]
            p = params[name]
            mu, var = stochastic_batch_norm(mu, var, p["gamma"], p["beta"], m, v,
                                            template["eps"], jnp)
        elif kind == "sign":
            if train and act_noise is not None:
                size = math.prod(mu.shape)
                u = act_noise[:size].reshape(mu.shape)
                act_noise = act_noise[size:]
                a = mu / jnp.sqrt(var + 1e-8)
                logit_q = log_ndtr(a) - log_ndtr(-a)
                mu = jnp.tanh((logit_q + jnp.log(u) - jnp.log1p(-u)) / (2.0 * temperature))
                var = None
            else:
                mu, var = binary_moments(binary_probability(mu, var, jnp, ndtr))
        elif kind == "flatten":
            mu = mu.reshape(mu.shape[0], -1)
            var = None if var is None else var.reshape(var.shape[0], -1)
    return mu, batch


def run_binary_network(net: dict, x) -> np.ndarray:
    """JAX forward pass of an exported binary network dict (for cross-checks with numpy).

    Parameters
    ----------
    net : dict
        Interchange format (:mod:`bayesbin.nets.export`).
    x : array-like of shape (n, *input_shape) or flat

    Returns
    -------
    ndarray of shape (n, n_outputs), float32
    """
    weights = {
        lay["name"]: {"w": jnp.asarray(lay["weights"], jnp.float32)}
        for lay in net["layers"]
        if "weights" in lay
    }
    stats = {}
    for lay in net["layers"]:
        if lay["kind"] == "batchnorm":
            weights.setdefault(lay["name"], {})
            weights[lay["name"]].update(gamma=jnp.asarray(lay["gamma"]),
                                        beta=jnp.asarray(lay["beta"]))
            stats[lay["name"]] = {"mean": jnp.asarray(lay["mean"], jnp.float32),
                                  "var": jnp.asarray(lay["var"], jnp.float32)}
    eps = [lay["eps"] for lay in net["layers"] if lay["kind"] == "batchnorm"]
    template = {"layers": [{k: v for k, v in lay.items() if k in ("kind", "name", "size", "threshold")}
                           for lay in net["layers"]], "eps": eps[0] if eps else 1e-4}
    sign = make_quantizer(SteSign())
    x = jnp.asarray(np.asarray(x, np.float32).reshape((-1, *net["input_shape"])))
    logits, _ = binary_forward(template, weights, stats, x, kq=lambda w: w, aq=sign)
    return np.asarray(logits)


def _cross_entropy(logits, y, mask):
    logp = jax.nn.log_softmax(logits, axis=-1)
    nll = -jnp.take_along_axis(logp, y[:, None], axis=-1)[:, 0]
    correct = (jnp.argmax(logits, axis=-1) == y) * mask
    return (nll * mask).sum() / mask.sum(), correct.sum()


def _schedule(lr: float, kind: str, total_steps: int, final_ratio: float):
    if kind == "constant":
        return optax.constant_schedule(lr)
    if kind == "cosine":
        return optax.cosine_decay_schedule(lr, max(total_steps, 1), alpha=final_ratio)
    return optax.exponential_decay(lr, max(total_steps, 1), final_ratio)


_COMPILED: dict = {}  # one compiled step/evaluation per configuration (fits reuse them)
_MAX_COMPILED = 8


def _build(kind, template, lr, lr_schedule, total_steps, final_lr_ratio, kernel_quantizer,
           activation_quantizer, pool, momentum, temperature, weight_temperature):
    """Build the optimizer and the jitted step and evaluation functions of one configuration."""
    opt = optax.adam(_schedule(lr, lr_schedule, total_steps, final_lr_ratio))
    kq = make_quantizer(kernel_quantizer) if kernel_quantizer is not None else None
    aq = make_quantizer(activation_quantizer) if activation_quantizer is not None else None

    def forward(params, stats, x, mask, noise, train):
        if kind == "pbnet":
            pool_noise, act_noise = noise if noise is not None else (None, None)
            return clt_forward(template, params, stats, x, pool=pool, noise=pool_noise,
                               mask=mask, train=train, act_noise=act_noise,
                               temperature=temperature, weight_temperature=weight_temperature)
        return binary_forward(template, params, stats, x, kq=kq, aq=aq, mask=mask,
                              train=train, float_net=kind == "float")

    def loss_fn(params, stats, x, y, mask, noise):
        logits, batch = forward(params, stats, x, mask, noise, True)
        loss, correct = _cross_entropy(logits, y, mask)
        return loss, (batch, correct)

    def step(state, x, y, mask, noise):
        params, stats, opt_state = state
        (loss, (batch, correct)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            params, stats, x, y, mask, noise
        )
        updates, opt_state = opt.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        if kind == "bnn":  # latent weights clipped to [-1, 1] (Courbariaux et al.)
            params = {
                k: {**p, "w": jnp.clip(p["w"], -1.0, 1.0)} if "w" in p else p
                for k, p in params.items()
            }
        stats = {
            k: {
                "mean": momentum * s["mean"] + (1 - momentum) * batch[k][0],
                "var": momentum * s["var"] + (1 - momentum) * batch[k][1],
            }
            for k, s in stats.items()
        }
        return (params, stats, opt_state), loss, correct

    def logits(params, stats, x):
        return forward(params, stats, x, None, None, False)[0]

    return opt, jax.jit(step), jax.jit(logits)


class Trainer:
    """Compiled training step and evaluation for one network.

    Parameters
    ----------
    kind : {"bnn", "pbnet", "float"}
    template : dict
        :func:`bayesbin.nets.export.network_template`.
    weight_shapes : dict of str to tuple
        Binary layer name -> weight shape; batch-norm channels are ``shape[0]``.
    lr : float
    lr_schedule : {"constant", "cosine", "exponential"}
    total_steps : int
        Length of the schedule (epochs x batches per epoch).
    final_lr_ratio : float
        The schedule ends at ``lr * final_lr_ratio``.
    kernel_quantizer, activation_quantizer : Quantizer
        BNN only.
    pool : {"moments", "sample"}
        PBNet only.
    activations : {"mean", "sample"}
        PBNet only: propagate the hidden activations' mean and variance, or sample them
        (PBNet-S, binary Concrete relaxation at ``temperature``).
    temperature : float
    weight_temperature : float
        PBNet only: ``theta = tanh(latent / weight_temperature)``.
    seed : int
        Seed of the sampled-index pool noise (numpy, one stream per step).
    momentum : float
        Of the exponential moving averages of batch statistics (used for validation).
    eval_batch : int
        Fixed batch size of the compiled evaluation.
    """

    def __init__(self, kind, template, weight_shapes, *, lr, lr_schedule, total_steps,
                 final_lr_ratio=0.01, kernel_quantizer=None, activation_quantizer=None,
                 pool="moments", activations="mean", temperature=1.0, weight_temperature=1.0,
                 seed=0, momentum=0.9, eval_batch=500):
        self.kind = kind
        self.template = template
        self.weight_shapes = dict(weight_shapes)
        self.eval_batch = int(eval_batch)
        self.seed = int(seed)
        self.pool = pool
        self.activations = activations
        compute = {k: v for k, v in template.items() if k != "classes"}  # labels: no effect
        steps = 0 if lr_schedule == "constant" else int(total_steps)
        key = (kind, json.dumps(compute, sort_keys=True), float(lr), lr_schedule, steps,
               float(final_lr_ratio), kernel_quantizer, activation_quantizer, pool,
               float(momentum), float(temperature), float(weight_temperature))
        if key not in _COMPILED:
            if len(_COMPILED) >= _MAX_COMPILED:
                _COMPILED.pop(next(iter(_COMPILED)))
            _COMPILED[key] = _build(kind, template, lr, lr_schedule, total_steps,
                                    final_lr_ratio, kernel_quantizer, activation_quantizer,
                                    pool, momentum, float(temperature),
                                    float(weight_temperature))
        self.opt, self._step, self._logits = _COMPILED[key]

    def init(self, rng: np.random.Generator, init_scale: float):
        """Create the initial state: latent weights U(-init_scale, init_scale), gamma 1, beta 0.

        Parameters
        ----------
        rng : numpy.random.Generator
        init_scale : float

        Returns
        -------
        tuple
            ``(params, stats, opt_state)`` of JAX arrays.
        """
        params, stats = {}, {}
        for name, shape in self.weight_shapes.items():
            c = shape[0]
            params[name] = {
                "w": rng.uniform(-init_scale, init_scale, size=shape).astype(np.float32),
                "gamma": np.ones(c, np.float32),
                "beta": np.zeros(c, np.float32),
            }
            stats[name] = {"mean": np.zeros(c, np.float32), "var": np.ones(c, np.float32)}
        params = jax.tree.map(jnp.asarray, params)
        stats = jax.tree.map(jnp.asarray, stats)
        return params, stats, self.opt.init(params)

    def start_from(self, params: dict, stats: dict):
        """A state that continues from trained parameters (warm start): fresh optimizer.

        Parameters
        ----------
        params, stats : dict
            As in the state of :meth:`init` (numpy or JAX arrays), e.g. a fitted estimator's
            ``train_state_``.

        Returns
        -------
        tuple
            ``(params, stats, opt_state)`` of JAX arrays (copies).
        """
        params = jax.tree.map(lambda a: jnp.array(a, jnp.float32), params)
        stats = jax.tree.map(lambda a: jnp.array(a, jnp.float32), stats)
        return params, stats, self.opt.init(params)

    def step(self, state, xb, yb, mask, step_idx: int):
        """One optimisation step on a fixed-shape batch.

        Parameters
        ----------
        state : tuple
        xb : ndarray of shape (batch_size, *input_shape), float32
        yb : ndarray of shape (batch_size,), int
        mask : ndarray of shape (batch_size,), float32
        step_idx : int
            Global step (seeds the pooling noise).

        Returns
        -------
        state, loss, n_correct
            ``loss`` and ``n_correct`` are JAX scalars.
        """
        noise = None
        if self.kind == "pbnet":
            rng = np.random.default_rng([self.seed, 4, int(step_idx)])
            n_pool, n_act = self.noise_size(xb.shape[0])
            pool_noise = act_noise = None
            if self.pool == "sample":
                pool_noise = jnp.asarray(rng.standard_normal(n_pool, np.float32))
            if self.activations == "sample":
                u = rng.random(n_act, np.float32)
                act_noise = jnp.asarray(np.clip(u, 1e-7, 1.0 - 1e-7))
            noise = (pool_noise, act_noise)
        # jnp.array copies: jnp.asarray may alias the host buffer on CPU, and with
        # asynchronous dispatch a caller refilling its batch buffer would race the step
        return self._step(state, jnp.array(xb), jnp.array(yb, jnp.int32), jnp.array(mask),
                          noise)

    def noise_size(self, batch: int) -> tuple[int, int]:
        """Random numbers one PBNet training step consumes.

        Returns
        -------
        n_pool, n_act : int
            Standard normals of the sampled-index pools and uniforms of the sampled binary
            activations (every sign of the template, i.e. the hidden ones, and the output's
            with ``output="sign"``).
        """
        n_pool = n_act = 0
        shape = tuple(self.template["input_shape"])
        for spec in self.template["layers"]:
            kind = spec["kind"]
            if kind == "conv2d":
                shape = (shape[0], shape[1], self.weight_shapes[spec["name"]][0])
            elif kind == "dense":
                shape = (self.weight_shapes[spec["name"]][0],)
            elif kind == "maxpool2d":
                n_pool += batch * math.prod(shape)
                k = spec["size"]
                shape = (shape[0] // k, shape[1] // k, shape[2])
            elif kind == "sign":
                n_act += batch * math.prod(shape)
        return n_pool, n_act

    def logits(self, state, x: np.ndarray) -> np.ndarray:
        """Evaluation-mode outputs (moving-average statistics) in fixed-shape padded batches.

        Parameters
        ----------
        state : tuple
        x : ndarray of shape (n, *input_shape), float32

        Returns
        -------
        ndarray of shape (n, n_outputs)
        """
        params, stats, _ = state
        b = self.eval_batch
        out = []
        for lo in range(0, x.shape[0], b):
            xb = x[lo : lo + b]
            m = xb.shape[0]
            if m < b:
                xb = np.concatenate([xb, np.zeros((b - m, *xb.shape[1:]), xb.dtype)])
            out.append(np.asarray(self._logits(params, stats, jnp.array(xb)))[:m])
        return np.concatenate(out, axis=0)

    @staticmethod
    def to_numpy(state):
        """Return the state as a pytree of numpy arrays (picklable)."""
        return jax.device_get(state)

    @staticmethod
    def from_numpy(state):
        """Invert :meth:`to_numpy`: numpy pytree -> JAX arrays."""
        return jax.tree.map(jnp.asarray, state)
