"""Probabilistic binary networks (PBNet; Peters & Welling, arXiv:1809.03368) as a classifier.

Every weight is ``w ~ Binary(theta)`` on {-1, +1} with ``theta = E[w] = tanh(latent)``, so
P(w = +1) = (1 + theta) / 2. Training propagates a Gaussian (Lyapunov CLT) approximation of
every pre-activation (:mod:`bayesbin.nets.layers`): Gaussian dense/conv layers, max pooling of
Gaussians (Clark's moment matching, ``pool="moments"``, or the sampled index of the local
reparametrisation trick, ``pool="sample"``), stochastic batch norm with the batch's expected
mean and variance, and sign activations that are +1 with probability ``q = Phi(mu / sigma)``.
The loss is the cross-entropy of the output's Gaussian mean. By default the hidden binary
activations are *sampled* in training (the paper's PBNet-S: a binary Concrete relaxation of
the ±1 activation with P(+1) = q enters the next layer as a real input); with
``activations="mean"`` their mean and variance are propagated instead. The paper found sampling
important for binary networks; measured here on a 10,000-row MNIST subset after two epochs the
two were close (mean 84.8%, sampled 81.4% at lr 3e-3; sampled 88.7% at lr 1e-2).

After training, three predictors (all numpy, no JAX):

* ``method="clt"``: softmax of the output's Gaussian mean (population statistics of the
  stochastic batch norms, estimated on training rows);
* ``method="map"``: the single most likely binary network (``w = +1`` where ``theta >= 0``);
* ``method="ensemble"``: the average softmax of ``n_networks`` binary networks sampled from
  ``theta``, each with its batch-norm statistics re-estimated on training rows.

Examples
--------
>>> from bayesbin import nets, load_mnist                                  # doctest: +SKIP
>>> x, y = load_mnist("train")                                             # doctest: +SKIP
>>> clf = nets.PBNet("32C3-MP2-64C3-MP2-512FC-SM10", epochs=30).fit(x, y)  # doctest: +SKIP
>>> clf.predict_proba(x[:5], method="ensemble", n_networks=16)             # doctest: +SKIP
>>> idata = clf.sample_networks(16, random_state=0)                        # doctest: +SKIP
"""

from __future__ import annotations

import json

import numpy as np
from sklearn.utils.validation import check_is_fitted

from bayesbin._validation import check_choice, check_positive_int
from bayesbin.nets._base import BinaryNetClassifier, _float_param, softmax
from bayesbin.nets.clt import clt_bn_statistics, clt_forward
from bayesbin.nets.export import (
    build_network,
    estimate_bn_statistics,
    map_weights,
    networks_to_idata,
    run_network,
    sample_weights,
)

__all__ = ["PBNet"]

_METHODS = ("clt", "map", "ensemble")


def _rng(random_state) -> np.random.Generator:
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None or (isinstance(random_state, int | np.integer)
                                and not isinstance(random_state, bool) and random_state >= 0):
        return np.random.default_rng(random_state)
    raise TypeError(f"random_state must be None, a non-negative int or a numpy Generator; "
                    f"got {random_state!r}")


class PBNet(BinaryNetClassifier):
    """Probabilistic binary network classifier (scikit-learn API; JAX + optax training).

    Parameters
    ----------
    architecture : str
        E.g. ``"32C3-MP2-64C3-MP2-512FC-SM10"`` or ``"784-512-512-10"``.
    epochs, batch_size, lr, lr_schedule, final_lr_ratio : see :class:`~bayesbin.nets.BNN`
    output : {"real", "sign"}
        ``"sign"`` (logits = the mean of a ±1 output) raises the 9.87%-trap ValueError unless
        ``allow_binary_output=True``.
    allow_binary_output : bool
    pool : {"sample", "moments"}
        Max pooling of Gaussians in training: the sampled index of the local reparametrisation
        trick (default, as in the paper: ``s = mu + sigma * n`` per cell, the pooled unit keeps
        the picked cell's Gaussian) or Clark's moment matching (deterministic; measured here
        about 2.7x slower per step on the paper's CNN on one core, 1.15 s against 0.43 s per
        batch of 100). Prediction with ``method="clt"`` uses the same rule, with zero noise
        for ``"sample"`` (the cell of largest mean).
    activations : {"sample", "mean"}
        Hidden binary activations in training: ``"sample"`` (PBNet-S, the paper's better
        variant: each activation is sampled from its probability ``q`` through a binary Concrete
        relaxation and enters the next layer as a real input) or ``"mean"`` (PBNet: the
        activation's mean ``2q - 1`` and variance ``4q(1 - q)`` are propagated).
    temperature : float
        Of the Concrete relaxation (default 1.0).
    weight_temperature : float
        ``theta = tanh(latent / weight_temperature)`` (default 1.0). For a fresh fit it only
        rescales the latent weights (the same as dividing ``init_scale`` and ``lr`` by it,
        Adam being scale-free). With ``warm_start=True`` it sharpens a fitted network: 0.5
        continues from ``theta = tanh(2 latent)``, every weight's probability pushed towards 0
        or 1 with its sign kept, so that training goes on close to the binary networks that
        will be sampled from it (see BENCHMARKS.md for what this did on MNIST).
    init_scale : float
        Latent weights start uniform in ``[-init_scale, init_scale]``, so theta = tanh(latent)
        in about ``[-0.76, 0.76]`` for the default 1.0. Unlike the straight-through BNN, PBNet
        needs theta away from 0 at the start: with theta near 0 every weight is a fair coin,
        the Gaussian means are tiny against the variances, and the signal vanishes with depth
        (init 0.05 left a 10k-row MNIST CNN at chance after 3 epochs).
    method : {"ensemble", "map", "clt"}
        Default predictor of ``predict``/``predict_proba``/``score``. The first ensemble
        prediction samples ``n_networks`` networks and re-estimates their batch norms on
        ``bn_data_`` (measured here, one core: about 6.5 s per network for the paper's CNN with
        5,000 rows, then 0.6 s per network and 1,000 predicted rows); they are cached.
    n_networks : int
        Default size of the sampled ensemble (16).
    validation_fraction, early_stopping, patience, bn_rows, input_shape, classes,
    random_state, progressbar, checkpoint, warm_start, augment_shift, input_threshold : see
    :class:`~bayesbin.nets.BNN`
        The validation accuracy monitored in training is the Gaussian mean's.

    Attributes
    ----------
    theta_ : dict of str to ndarray
        ``E[w]`` per binary layer, shapes ``(out, in)`` or ``(out, in, 3, 3)``.
    bn_ : dict of str to dict
        Per layer: ``gamma``, ``beta`` and the population ``mean``/``var`` of the Gaussian
        (CLT) forward pass.
    map_network_ : dict
        The most likely binary network (interchange format), batch norm re-estimated.
    bn_data_ : ndarray of shape (bn_rows, *input_shape_), float32
        Training rows kept for re-estimating batch norms of sampled networks.
    classes_, input_shape_, n_features_in_, plan_, template_, history_, n_epochs_,
    best_epoch_, stopped_early_, interrupted_, random_seed_, fit_time_, train_state_ : see
    :class:`~bayesbin.nets.BNN`
    """

    _kind = "pbnet"

    def __init__(
        self,
        architecture,
        *,
        epochs=20,
        batch_size=100,
        lr=1e-3,
        lr_schedule="cosine",
        final_lr_ratio=0.01,
        output="real",
        allow_binary_output=False,
        pool="sample",
        activations="sample",
        temperature=1.0,
        weight_temperature=1.0,
        init_scale=1.0,
        method="ensemble",
        n_networks=16,
        validation_fraction=0.1,
        early_stopping=True,
        patience=10,
        bn_rows=5000,
        input_shape=None,
        classes=None,
        random_state=None,
        progressbar=True,
        checkpoint=None,
        warm_start=False,
        augment_shift=0,
        input_threshold=None,
    ):
        self.architecture = architecture
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.lr_schedule = lr_schedule
        self.final_lr_ratio = final_lr_ratio
        self.output = output
        self.allow_binary_output = allow_binary_output
        self.pool = pool
        self.activations = activations
        self.temperature = temperature
        self.weight_temperature = weight_temperature
        self.init_scale = init_scale
        self.method = method
        self.n_networks = n_networks
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience
        self.bn_rows = bn_rows
        self.input_shape = input_shape
        self.classes = classes
        self.random_state = random_state
        self.progressbar = progressbar
        self.checkpoint = checkpoint
        self.warm_start = warm_start
        self.augment_shift = augment_shift
        self.input_threshold = input_threshold

    # -- training hooks -------------------------------------------------------------------------
    def _check_own_params(self) -> None:
        check_choice(self.pool, "pool", ("moments", "sample"))
        check_choice(self.activations, "activations", ("sample", "mean"))
        _float_param(self.temperature, "temperature", low=0.0)
        _float_param(self.weight_temperature, "weight_temperature", low=0.0)
        check_choice(self.method, "method", _METHODS)
        check_positive_int(self.n_networks, "n_networks")

    def _make_trainer(self, backend, weight_shapes, total_steps, seed):
        return backend.Trainer(
            "pbnet",
            self.template_,
            weight_shapes,
            lr=float(self.lr),
            lr_schedule=self.lr_schedule,
            total_steps=total_steps,
            final_lr_ratio=float(self.final_lr_ratio),
            pool=self.pool,
            activations=self.activations,
            temperature=float(self.temperature),
            weight_temperature=float(self.weight_temperature),
            seed=seed,
        )

    def _finalise(self, params: dict, x_bn: np.ndarray, seed: int) -> None:
        names = [lay.name for lay in self.plan_.layers]
        tau = np.float32(self.weight_temperature)
        self.theta_ = {n: np.tanh(np.asarray(params[n]["w"], np.float32) / tau) for n in names}
        bn = {
            n: {
                "gamma": np.asarray(params[n]["gamma"], np.float32),
                "beta": np.asarray(params[n]["beta"], np.float32),
                "mean": np.zeros(len(params[n]["gamma"])),
                "var": np.ones(len(params[n]["gamma"])),
            }
            for n in names
        }
        self.bn_data_ = x_bn
        self.bn_ = clt_bn_statistics(self.template_, self.theta_, bn, x_bn, pool=self.pool)
        self.map_network_ = self._network({n: map_weights(t) for n, t in self.theta_.items()})
        self._ensembles = {}

    def _network(self, weights: dict) -> dict:
        """Build a binary network with these weights, batch norms re-estimated on ``bn_data_``."""
        net = build_network(self.template_, weights, self.bn_)
        return estimate_bn_statistics(net, self.bn_data_)

    def _sample(self, n: int, rng: np.random.Generator) -> list[dict]:
        names = list(self.theta_)
        return [self._network({k: sample_weights(self.theta_[k], rng) for k in names})
                for _ in range(n)]

    # -- prediction -----------------------------------------------------------------------------
    def gaussian_output(self, x) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of the output under the CLT approximation (numpy).

        Parameters
        ----------
        x : array-like of shape (n, D), (n, H, W) or (n, H, W, C)

        Returns
        -------
        mu, sigma2 : ndarray of shape (n, n_classes), float32
        """
        check_is_fitted(self, "theta_")
        return clt_forward(self.template_, self.theta_, self.bn_, self._rows(x), pool=self.pool)

    def _ensemble(self, n: int, random_state) -> list[dict]:
        if random_state is not None:
            return self._sample(n, _rng(random_state))
        if n not in self._ensembles:
            self._ensembles[n] = self._sample(n, np.random.default_rng([self.random_seed_, 3]))
        return self._ensembles[n]

    def predict_proba(self, x, method=None, n_networks=None, random_state=None) -> np.ndarray:
        """Class probabilities.

        Parameters
        ----------
        x : array-like of shape (n, D), (n, H, W) or (n, H, W, C)
        method : {"clt", "map", "ensemble"}, optional
            Default: the ``method`` parameter. ``"clt"``: softmax of the Gaussian output mean;
            ``"map"``: the most likely binary network; ``"ensemble"``: mean softmax of
            ``n_networks`` sampled binary networks.
        n_networks : int, optional
            Default: the ``n_networks`` parameter (16).
        random_state : int or Generator, optional
            Draws of the ensemble. None: a fixed stream derived from ``random_seed_`` (the same
            networks on every call; they are cached).

        Returns
        -------
        ndarray of shape (n, n_classes)
            Columns in the order of ``classes_``; rows sum to 1.
        """
        check_is_fitted(self, "theta_")
        method = self.method if method is None else method
        check_choice(method, "method", _METHODS)
        n_networks = check_positive_int(self.n_networks if n_networks is None else n_networks,
                                        "n_networks")
        rows = self._rows(x)
        if method == "clt":
            return softmax(self.gaussian_output(rows)[0])
        if method == "map":
            return softmax(run_network(self.map_network_, rows))
        nets = self._ensemble(n_networks, random_state)
        proba = np.zeros((rows.shape[0], len(self.classes_)))
        for net in nets:
            proba += softmax(run_network(net, rows))
        return proba / len(nets)

    def binary_network(self, rule: str = "map", random_state=None) -> dict:
        """One binary network in the interchange format.

        Parameters
        ----------
        rule : {"map", "sample"}
            The most likely network, or one network sampled from ``theta`` (batch norm
            re-estimated on ``bn_data_``).
        random_state : int or Generator, optional
            For ``rule="sample"``.

        Returns
        -------
        dict
            ``{"input_shape", "layers", "classes"}`` (see :mod:`bayesbin.nets.export`).
        """
        check_is_fitted(self, "theta_")
        check_choice(rule, "rule", ("map", "sample"))
        if rule == "map":
            import copy

            return copy.deepcopy(self.map_network_)
        return self._sample(1, _rng(random_state))[0]

    def sample_networks(self, n: int, random_state=None):
        """Independent binary networks drawn from the learned Binary(theta), as ArviZ data.

        Parameters
        ----------
        n : int
            Number of networks.
        random_state : int or Generator, optional

        Returns
        -------
        InferenceData
            ``posterior`` (one chain of ``n`` draws): per binary layer an int8 ±1 variable
            (e.g. ``conv1`` with dims ``("chain", "draw", "conv1_out", "conv1_in", "kh",
            "kw")``) and the re-estimated batch-norm statistics ``<layer>_bn_mean``/``_bn_var``;
            ``constant_data``: ``<layer>_p`` = P(w = +1) and ``<layer>_bn_gamma``/``_beta``;
            attrs: the network template (JSON) and a note that these are independent draws from
            a variational distribution (no prior, no MCMC; R-hat/ESS are not the point).
            :func:`bayesbin.nets.networks_from_idata` rebuilds the networks without the
            estimator.
        """
        check_is_fitted(self, "theta_")
        n = check_positive_int(n, "n")
        rng = _rng(random_state)
        nets = self._sample(n, rng)
        p_plus = {k: (1.0 + t) / 2.0 for k, t in self.theta_.items()}
        attrs = {
            "architecture": str(self.architecture),
            "bn_rows": int(self.bn_data_.shape[0]),
            "random_state": json.dumps(random_state if isinstance(random_state, int) else None),
            "created_by": "bayesbin.nets.PBNet.sample_networks",
        }
        return networks_to_idata(self.template_, nets, p_plus, attrs=attrs)

    def to_bits(self, rule: str = "map", *, n_networks: int | None = None, random_state=None,
                metadata: dict | None = None):
        """Pack the most likely binary network, or an ensemble of sampled ones, into bits.

        Parameters
        ----------
        rule : {"map", "draws"}
            ``"map"``: the network with every weight at its more likely sign (``predict_proba(x,
            method="map")``); ``"draws"``: ``n_networks`` networks sampled from ``theta``, the
            same ones ``predict_proba(x, method="ensemble")`` averages when ``random_state`` is
            None.
        n_networks : int, optional
            For ``rule="draws"``; default: the ``n_networks`` parameter (16).
        random_state : int or Generator, optional
            For ``rule="draws"``: other draws than the estimator's cached ensemble.
        metadata : dict, optional
            JSON-serialisable provenance kept in saved files.

        Returns
        -------
        bayesbin.bits.PackedNetwork
            One network, or an ensemble whose ``predict_proba`` is the mean of the members'
            softmax outputs. Its logits equal :func:`bayesbin.bits.reference_forward` of the same
            networks exactly for pixels ``k / 255``, integer levels or ±1 inputs (every finite
            input with ``input_threshold``).
        """
        from bayesbin.bits import pack_network

        check_is_fitted(self, "theta_")
        check_choice(rule, "rule", ("map", "draws"))
        meta = {"source": "bayesbin.nets.PBNet", "architecture": str(self.architecture),
                "rule": rule, **(metadata or {})}
        if rule == "map":
            return pack_network(self.map_network_, classes=self.classes_, metadata=meta)
        n = check_positive_int(self.n_networks if n_networks is None else n_networks,
                               "n_networks")
        meta["n_networks"] = n
        return pack_network(self._ensemble(n, random_state), classes=self.classes_,
                            metadata=meta)

