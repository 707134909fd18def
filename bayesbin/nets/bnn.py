"""The straight-through binary neural network (Hubara, Courbariaux et al. 2016) as a classifier.

Weights and hidden activations are ±1 in the forward pass (sign(0) = +1); the backward pass
uses the straight-through estimator of the chosen quantizer (default ``"ste_sign"``: the
hard-tanh gradient, cancelled where ``|x| > 1``). Real latent weights start small (uniform in
``[-init_scale, init_scale]``; U(-1, 1) trains much worse) and are clipped to [-1, 1] after each
Adam step; a batch norm follows every binary layer. The first layer takes real inputs and the
output layer is real-valued (binary weights, batch norm, no sign). After training the batch
norms get population statistics from a pass over (a subset of) the training rows ("precise
BN"), and the binary network is kept as plain numpy layer dicts (:attr:`BNN.network_`), which
``predict`` runs without JAX.

Examples
--------
>>> from bayesbin import nets, load_mnist                      # doctest: +SKIP
>>> x, y = load_mnist("train")                                 # doctest: +SKIP
>>> clf = nets.BNN("784-512-512-10", epochs=30).fit(x, y)      # doctest: +SKIP
>>> clf.score(*load_mnist("test"))                             # doctest: +SKIP
"""

from __future__ import annotations

import copy

import numpy as np
from sklearn.utils.validation import check_is_fitted

from bayesbin.nets._base import BinaryNetClassifier, softmax
from bayesbin.nets.export import (
    build_network,
    estimate_bn_statistics,
    map_weights,
    run_network,
)
from bayesbin.nets.quantizers import get_quantizer

__all__ = ["BNN"]


class BNN(BinaryNetClassifier):
    """Straight-through binary network classifier (scikit-learn API; JAX + optax training).

    Parameters
    ----------
    architecture : str
        E.g. ``"784-512-512-10"`` or ``"32C3-MP2-64C3-MP2-512FC-SM10"`` (see
        :func:`bayesbin.nets.parse_architecture`). The output size must equal the number of
        classes.
    epochs : int
        Maximum number of passes over the training rows (default 20).
    batch_size : int
        Rows per step (default 100); the last batch is padded to this size with a zero mask.
    lr : float
        Adam learning rate at the start (default 1e-3).
    lr_schedule : {"cosine", "exponential", "constant"}
        Decay over all steps of ``epochs`` down to ``lr * final_lr_ratio``.
    final_lr_ratio : float
        Default 0.01.
    output : {"real", "sign"}
        ``"real"``: the output layer's batch-normed scores are the logits. ``"sign"``
        binarizes them (the 9.87% trap) and raises a ValueError unless
        ``allow_binary_output=True``.
    allow_binary_output : bool
    kernel_quantizer, activation_quantizer : str or Quantizer
        Aliases from :data:`bayesbin.nets.quantizers.QUANTIZERS` (default ``"ste_sign"``).
    init_scale : float
        Latent weights start uniform in ``[-init_scale, init_scale]`` (default 0.05).
    validation_fraction : float
        Share of rows held out to monitor validation accuracy (default 0.1; 0 for none).
    early_stopping : bool
        Stop after ``patience`` epochs without a better validation accuracy and keep the best
        epoch's weights (default True).
    patience : int
        Default 10.
    bn_rows : int
        Training rows used for the final batch-norm statistics (default 5000).
    input_shape : tuple of int, optional
        ``(H, W, C)`` of flat image rows when it cannot be inferred (784 -> (28, 28, 1)).
    classes : list of labels, optional
        The label set (default: the sorted labels of ``y``).
    random_state : int, numpy Generator or None
        Same value, same weights bit for bit in one environment: the same machine, JAX
        version, XLA flags *and number of cores the process may use*. XLA's CPU runtime sizes
        its thread pool by the cores the process may use when JAX starts, and splits some sums
        by thread (measured with JAX 0.10.2: batch sums and variances in its YNN reductions,
        and with those off, ``--xla_cpu_experimental_ynn_fusion_type=-reduce``, still other
        parts of a training step; ``--xla_cpu_multi_thread_eigen=false`` does not stop it), so
        a 784-512-512-10 fit pinned to one core and the same fit free to use two differ in the
        last bits. Pin the process (``taskset -c 0``) to reproduce a fit on another machine.
    progressbar : bool
        A one-line stderr progress bar (epoch, batches, loss, validation accuracy).
    checkpoint : str or path, optional
        Written atomically after every epoch; a later ``fit`` with the same data and options
        resumes from it (or returns at once when it is finished).
    warm_start : bool
        When True and the estimator is already fitted, ``fit`` continues from the fitted
        weights, batch-norm parameters and statistics (``train_state_``) instead of a fresh
        initialisation, for ``epochs`` more epochs with a fresh optimizer and learning-rate
        schedule (scikit-learn's ``warm_start``). The architecture, input shape and classes
        must be the same (a ValueError says otherwise); keep ``random_state`` to keep the same
        validation split. ``history_`` then holds this call's epochs.
    augment_shift : int
        Data augmentation for image networks (default 0: none): in every epoch each training
        image is shifted by whole pixels ``dy, dx`` drawn uniformly from
        ``-augment_shift .. augment_shift``, the uncovered border filled with zeros
        (deterministic for a given ``random_state``). The validation rows, the batch-norm
        rows and prediction see the images as they are. A flat-input network refuses it.
        On full MNIST it did not help the PBNet CNN (BENCHMARKS.md, P7).
    input_threshold : float, optional
        None (default): the first layer takes the real inputs. A number ``t``: the network
        binarizes its inputs first, ``+1`` where ``x > t`` and ``-1`` elsewhere (e.g. 0.5 for
        pixels in [0, 1]), in training and in every prediction; the step is part of the network
        (``network_`` starts with ``{"kind": "binarize", "threshold": t}``), so the packed
        network of :meth:`to_bits` takes float inputs and binarizes them itself, and its first
        layer is an XNOR-popcount layer like the hidden ones (faster than the exact-level first
        layer real inputs need; BENCHMARKS.md, P8). Shifted training images (``augment_shift``)
        are shifted before binarization, their border filled with 0.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    input_shape_ : tuple of int
        Per-row input shape, ``(H, W, C)`` or ``(D,)``.
    n_features_in_ : int
        Values per row (``prod(input_shape_)``).
    network_ : dict
        The binary network in the interchange format (int8 ±1 weights, batch norms).
    latent_weights_ : dict of str to ndarray
        Real latent weights per binary layer (``network_`` weights are their signs).
    plan_, template_ : Plan, dict
        The resolved architecture and its array-free description.
    history_ : dict of lists
        Per epoch: ``loss``, ``accuracy`` (training batches), ``val_loss``, ``val_accuracy``,
        ``wall_time``, ``cpu_time`` (seconds).
    n_epochs_, best_epoch_ : int
    stopped_early_, interrupted_ : bool
        ``interrupted_``: Ctrl-C stopped training; the last completed epoch was kept.
    random_seed_ : int
    fit_time_ : float
        Seconds of the ``fit`` call.
    train_state_ : dict
        ``{"params": ..., "stats": ...}``: the trained latent weights, batch-norm ``gamma`` and
        ``beta`` and moving statistics per layer, as numpy arrays (what ``warm_start``
        continues from).
    """

    _kind = "bnn"

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
        kernel_quantizer="ste_sign",
        activation_quantizer="ste_sign",
        init_scale=0.05,
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
        self.kernel_quantizer = kernel_quantizer
        self.activation_quantizer = activation_quantizer
        self.init_scale = init_scale
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

    def _check_own_params(self) -> None:
        get_quantizer(self.kernel_quantizer, "kernel_quantizer")
        get_quantizer(self.activation_quantizer, "activation_quantizer")

    def _make_trainer(self, backend, weight_shapes, total_steps, seed):
        return backend.Trainer(
            "bnn",
            self.template_,
            weight_shapes,
            lr=float(self.lr),
            lr_schedule=self.lr_schedule,
            total_steps=total_steps,
            final_lr_ratio=float(self.final_lr_ratio),
            kernel_quantizer=get_quantizer(self.kernel_quantizer, "kernel_quantizer"),
            activation_quantizer=get_quantizer(self.activation_quantizer, "activation_quantizer"),
            seed=seed,
        )

    def _finalise(self, params: dict, x_bn: np.ndarray, seed: int) -> None:
        names = [lay.name for lay in self.plan_.layers]
        self.latent_weights_ = {n: np.asarray(params[n]["w"], np.float32) for n in names}
        weights = {n: map_weights(self.latent_weights_[n]) for n in names}
        bn = {
            n: {
                "gamma": np.asarray(params[n]["gamma"]),
                "beta": np.asarray(params[n]["beta"]),
                "mean": np.zeros(len(params[n]["gamma"])),
                "var": np.ones(len(params[n]["gamma"])),
            }
            for n in names
        }
        self.network_ = estimate_bn_statistics(build_network(self.template_, weights, bn), x_bn)

    def decision_function(self, x) -> np.ndarray:
        """Logits of the binary network (numpy forward pass).

        Parameters
        ----------
        x : array-like of shape (n, D), (n, H, W) or (n, H, W, C)

        Returns
        -------
        ndarray of shape (n, n_classes), float32
        """
        check_is_fitted(self, "network_")
        return run_network(self.network_, self._rows(x))

    def predict_proba(self, x) -> np.ndarray:
        """Softmax of the binary network's logits.

        Parameters
        ----------
        x : array-like of shape (n, D), (n, H, W) or (n, H, W, C)

        Returns
        -------
        ndarray of shape (n, n_classes)
            Columns in the order of ``classes_``; rows sum to 1.
        """
        return softmax(self.decision_function(x))

    def binary_network(self) -> dict:
        """Return the trained binary network in the interchange format (a deep copy).

        Returns
        -------
        dict
            ``{"input_shape", "layers", "classes"}`` with int8 ±1 weights (see
            :mod:`bayesbin.nets.export`).
        """
        check_is_fitted(self, "network_")
        return copy.deepcopy(self.network_)

    def to_bits(self, *, metadata: dict | None = None):
        """Pack the trained binary network into bits (XNOR-popcount inference, numpy/numba).

        Batch norm and sign of every hidden layer become one integer threshold per unit; the
        output layer gives float logits. The packed logits equal those of
        :func:`bayesbin.bits.reference_forward` on :meth:`binary_network` exactly (for pixels
        ``k / 255`` as ``bayesbin.load_mnist`` returns them, integer levels or ±1 inputs; for
        every finite input when the network binarizes its inputs, ``input_threshold``: the
        packed network then binarizes them itself and its first layer is XNOR-popcount too).

        Parameters
        ----------
        metadata : dict, optional
            JSON-serialisable provenance kept in saved files (the architecture is added).

        Returns
        -------
        bayesbin.bits.PackedNetwork
            With ``predict``, ``predict_proba``, ``decision_function``, ``save`` and
            ``export_c_header``; inputs of shape (n, D) or (n, *input_shape).
        """
        from bayesbin.bits import pack_network

        check_is_fitted(self, "network_")
        meta = {"source": "bayesbin.nets.BNN", "architecture": str(self.architecture),
                **(metadata or {})}
        return pack_network(self.network_, classes=self.classes_, metadata=meta)

