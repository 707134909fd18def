"""Shared estimator machinery of BNN and PBNet: input checks, labels, the training loop, checkpoints."""

from __future__ import annotations

import hashlib
import inspect
import math
import numbers
import os
import pickle
import sys
import time
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from bayesbin._io import atomic_write
from bayesbin._validation import check_choice, check_positive_int, label_vector
from bayesbin.nets.architecture import infer_image_shape, parse_architecture
from bayesbin.nets.export import network_template

__all__ = ["BinaryNetClassifier", "TrainingInterruptedWarning", "check_input", "load_backend"]

_INSTALL = 'pip install "bayesbin[nets]"'
_CKPT_VERSION = 1
TRAP_MESSAGE = (
    "output='sign' binarizes the output layer (the 9.87% trap): a Keras user's binarized MNIST "
    "network sat at 9.87% test accuracy, chance, until the sign on its output layer was removed. "
    "With ±1 logits the softmax can give no class more than e / (e + (K - 1) / e) (0.45 for 10 "
    "classes), ties decide the prediction and the cross-entropy cannot fall below "
    "log(1 + (K - 1) / e^2); with a straight-through sign the accuracy may survive (measured "
    "here: 97.6% for BNN 784-512-512-10 on MNIST) but the probabilities do not (test NLL 0.84, "
    "ECE 0.53, against 0.07 and 0.01 with output='real'). Keep output='real' (binary weights, "
    "real-valued output); pass allow_binary_output=True as well to build it anyway."
)


class TrainingInterruptedWarning(UserWarning):
    """Training was interrupted (Ctrl-C); the estimator keeps the last completed epoch."""


def load_backend():
    """Import the JAX backend, or raise an ImportError that says how to install it."""
    try:
        from bayesbin.nets import _jax
    except ImportError as exc:
        raise ImportError(
            f"training bayesbin.nets networks needs JAX and optax ({exc}); install them with: "
            f"{_INSTALL}. Prediction of an already fitted network needs only numpy."
        ) from exc
    return _jax


def check_input(x, name: str = "x") -> np.ndarray:
    """Validate network input and return it as float32 of shape (n, ...) with 2 to 4 dims.

    Parameters
    ----------
    x : array-like or DataFrame of shape (n, D), (n, H, W) or (n, H, W, C)
        Finite real values.
    name : str
        Argument name used in error messages.

    Returns
    -------
    ndarray, float32
    """
    if hasattr(x, "tocsr") or type(x).__module__.startswith("scipy.sparse"):
        raise TypeError(f"{name} is a scipy sparse matrix; pass a dense array ({name}.toarray())")
    if hasattr(x, "to_numpy") and not isinstance(x, np.ndarray):
        x = x.to_numpy()
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists
        raise TypeError(f"{name} must be a numeric array; got {type(x).__name__}") from exc
    if arr.dtype == object:
        try:
            arr = arr.astype(np.float32)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must be numeric; converting it failed: {exc}") from exc
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name} must be real-valued; got dtype {arr.dtype}")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must be numeric (int, float or bool); got dtype {arr.dtype}")
    if arr.ndim not in (2, 3, 4):
        raise ValueError(
            f"{name} must have shape (n, D), (n, H, W) or (n, H, W, C); got {arr.ndim}-D shape "
            f"{arr.shape}"
        )
    if arr.shape[0] == 0 or arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.all(np.isfinite(arr)):
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} NaN or infinite value(s); all must be finite")
    if arr.ndim == 3:
        arr = arr[..., None]
    return arr


def _as_labels(y, n_rows: int) -> np.ndarray:
    if y is None:
        raise ValueError("y is required to fit a classifier; got None")
    arr = label_vector(y, "y", n_samples=n_rows)
    if arr.dtype.kind == "f" and (not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr))):
        raise ValueError("y holds NaN, infinite or non-integer float labels; a classifier needs "
                         "class labels")
    if arr.dtype == object and any(v is None for v in arr):
        raise ValueError("y contains missing labels (None)")
    return arr


def _float_param(value, name: str, *, low: float, high: float | None = None,
                 low_open: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {type(value).__name__}")
    v = float(value)
    ok = math.isfinite(v) and (v > low if low_open else v >= low) and (high is None or v < high)
    if not ok:
        rng = f"{'(' if low_open else '['}{low}, {high if high is not None else 'inf'})"
        raise ValueError(f"{name} must lie in {rng}; got {value!r}")
    return v


def _bool_param(value, name: str) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True or False; got {value!r}")
    return bool(value)


class _Progress:
    """A one-line stderr progress bar: epoch, batches, loss, validation accuracy."""

    def __init__(self, epochs: int, n_batches: int, enabled: bool, stream=None):
        self.epochs, self.n_batches, self.enabled = epochs, n_batches, enabled
        self.stream = stream if stream is not None else sys.stderr
        self._last = 0.0

    def update(self, epoch: int, batch: int, loss: float, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self._last < 0.25):
            return
        self._last = now
        done = int(20 * batch / self.n_batches)
        self.stream.write(
            f"\repoch {epoch + 1}/{self.epochs} [{'#' * done}{'.' * (20 - done)}] "
            f"{batch}/{self.n_batches} loss {loss:.4f}"
        )
        self.stream.flush()

    def end_epoch(self, epoch: int, loss: float, acc: float, val_acc, seconds: float) -> None:
        if not self.enabled:
            return
        val = f" val_acc {val_acc:.4f}" if val_acc is not None else ""
        self.stream.write(
            f"\repoch {epoch + 1}/{self.epochs} [{'#' * 20}] {self.n_batches}/{self.n_batches} "
            f"loss {loss:.4f} acc {acc:.4f}{val} ({seconds:.1f} s)\n"
        )
        self.stream.flush()


class BinaryNetClassifier(ClassifierMixin, BaseEstimator):
    """Base of :class:`~bayesbin.nets.BNN` and :class:`~bayesbin.nets.PBNet` (not public API)."""

    _kind = "bnn"
    _schedules = ("constant", "cosine", "exponential")

    def __setstate__(self, state):
        # an estimator pickled before a parameter existed gets that parameter's default
        for name, param in inspect.signature(type(self).__init__).parameters.items():
            if name != "self" and param.default is not inspect.Parameter.empty:
                state.setdefault(name, param.default)
        super().__setstate__(state)

    # -- hooks of the subclasses ---------------------------------------------------------------
    def _check_own_params(self) -> None:  # pragma: no cover - overridden
        pass

    def _make_trainer(self, backend, weight_shapes, total_steps, seed):  # pragma: no cover
        raise NotImplementedError

    def _finalise(self, params: dict, x_bn: np.ndarray, seed: int) -> None:  # pragma: no cover
        raise NotImplementedError

    # -- checks -------------------------------------------------------------------------------
    def _check_params(self) -> dict:
        p = {
            "epochs": check_positive_int(self.epochs, "epochs"),
            "batch_size": check_positive_int(self.batch_size, "batch_size"),
            "lr": _float_param(self.lr, "lr", low=0.0),
            "lr_schedule": check_choice(self.lr_schedule, "lr_schedule", self._schedules),
            "final_lr_ratio": _float_param(self.final_lr_ratio, "final_lr_ratio", low=0.0,
                                           high=1.0 + 1e-12),
            "validation_fraction": _float_param(self.validation_fraction, "validation_fraction",
                                                low=0.0, high=1.0, low_open=False),
            "patience": check_positive_int(self.patience, "patience"),
            "bn_rows": check_positive_int(self.bn_rows, "bn_rows"),
            "init_scale": _float_param(self.init_scale, "init_scale", low=0.0),
            "augment_shift": check_positive_int(self.augment_shift, "augment_shift", minimum=0),
        }
        if self.input_threshold is not None:
            p["input_threshold"] = _float_param(self.input_threshold, "input_threshold",
                                                low=-math.inf)
        check_choice(self.output, "output", ("real", "sign"))
        allow = _bool_param(self.allow_binary_output, "allow_binary_output")
        early = _bool_param(self.early_stopping, "early_stopping")
        _bool_param(self.progressbar, "progressbar")
        _bool_param(self.warm_start, "warm_start")
        if self.output == "sign" and not allow:
            raise ValueError(TRAP_MESSAGE)
        if early and p["validation_fraction"] == 0:
            raise ValueError("early_stopping=True needs validation_fraction > 0 (a validation "
                             "split to monitor); set early_stopping=False or a fraction")
        if self.checkpoint is not None and not isinstance(self.checkpoint, str | os.PathLike):
            raise TypeError(f"checkpoint must be a path or None; got {type(self.checkpoint)}")
        self._check_own_params()
        return p

    def _prepare_x(self, x, arch, *, reset: bool) -> np.ndarray:
        names = None
        if hasattr(x, "columns"):
            cols = np.asarray(x.columns, dtype=object)
            names = cols if all(isinstance(c, str) for c in cols) else None
        arr = check_input(x, "x")
        if reset:
            if arr.ndim == 2:
                shape = infer_image_shape(arr.shape[1], arch, self.input_shape)
            else:
                shape = arr.shape[1:]
                if not arch.is_image:
                    shape = (math.prod(shape),)
            self.input_shape_ = tuple(int(s) for s in shape)
            self.n_features_in_ = math.prod(self.input_shape_)
            if names is not None:
                self.feature_names_in_ = names
            elif hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
        shape = self.input_shape_
        if arr.shape[1:] == shape:
            return arr
        if math.prod(arr.shape[1:]) == math.prod(shape):
            return arr.reshape((arr.shape[0], *shape))
        raise ValueError(
            f"x has per-row shape {arr.shape[1:]} but the network expects "
            f"{'images of shape ' if len(shape) == 3 else 'rows of shape '}{shape} "
            f"({math.prod(shape)} values per row when flat)"
        )

    def _encode_y(self, y, n_rows: int) -> np.ndarray:
        raw = _as_labels(y, n_rows)
        if self.classes is None:
            labels = np.unique(raw)
        else:
            labels = np.asarray(list(self.classes))
            if labels.ndim != 1 or len(np.unique(labels)) != len(labels):
                raise ValueError("classes must be a flat list of distinct labels")
            unknown = np.setdiff1d(np.unique(raw), labels)
            if unknown.size:
                raise ValueError(f"y has labels outside classes: {unknown[:5].tolist()} not in "
                                 f"{labels.tolist()}")
        if len(labels) < 2:
            raise ValueError(f"y must hold at least 2 classes; got {labels.tolist()}")
        self.classes_ = labels
        return np.searchsorted(labels, raw) if self.classes is None else np.asarray(
            [np.flatnonzero(labels == v)[0] for v in raw])

    def _codes(self, y, n_rows: int, name: str = "y") -> np.ndarray:
        raw = _as_labels(y, n_rows)
        lookup = {v: i for i, v in enumerate(self.classes_.tolist())}
        out = np.empty(len(raw), np.int64)
        for i, v in enumerate(raw.tolist()):
            if v not in lookup:
                raise ValueError(
                    f"{name} has label {v!r}, which is not among the classes seen in fit "
                    f"({self.classes_.tolist()[:10]})"
                )
            out[i] = lookup[v]
        return out

    # -- fitting -----------------------------------------------------------------------------
    def fit(self, x, y):
        """Train the network.

        Parameters
        ----------
        x : array-like or DataFrame of shape (n, D), (n, H, W) or (n, H, W, C)
            Finite real inputs (e.g. MNIST pixels in [0, 1]). A flat ``(n, H*W*C)`` input of an
            image network is reshaped to the input shape (``input_shape`` or inferred: 784 ->
            (28, 28, 1)).
        y : array-like or Series of shape (n,)
            Class labels of any type; their number must equal the output size.

        Returns
        -------
        self
        """
        hp = self._check_params()
        arch = parse_architecture(self.architecture)
        backend = load_backend()
        start = time.monotonic()
        warm = self._warm_state()
        try:
            return self._fit(x, y, hp, arch, backend, start, warm)
        except BaseException:
            if warm is not None:  # a failed warm fit leaves the fitted network as it was
                for key, value in warm["attrs"].items():
                    setattr(self, key, value)
            raise

    def _fit(self, x, y, hp, arch, backend, start, warm):
        xs = self._prepare_x(x, arch, reset=True)
        codes = self._encode_y(y, xs.shape[0])
        plan = arch.resolve(self.input_shape_, output_sign=self.output == "sign")
        if plan.n_outputs != len(self.classes_):
            raise ValueError(
                f"architecture {arch.text!r} has {plan.n_outputs} outputs but y has "
                f"{len(self.classes_)} classes {self.classes_.tolist()[:10]}: make the output "
                f"layer SM{len(self.classes_)} or pass classes=[...] with {plan.n_outputs} labels"
            )
        self.plan_ = plan
        self.template_ = network_template(plan, self.classes_,
                                          input_threshold=hp.get("input_threshold"))
        seed = self._resolve_seed()
        rng = np.random.default_rng([seed, 0])
        n_val = int(round(hp["validation_fraction"] * xs.shape[0]))
        if hp["validation_fraction"] > 0 and (n_val < 1 or n_val >= xs.shape[0]):
            raise ValueError(f"validation_fraction={hp['validation_fraction']} leaves no "
                             f"training or validation rows out of {xs.shape[0]}")
        perm = rng.permutation(xs.shape[0])
        val_idx, tr_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        x_tr, y_tr = xs[tr_idx], codes[tr_idx]
        x_val, y_val = (xs[val_idx], codes[val_idx]) if n_val else (None, None)
        bn_idx = np.sort(rng.permutation(len(tr_idx))[: hp["bn_rows"]])
        if hp["augment_shift"] and len(self.input_shape_) != 3:
            raise ValueError(
                f"augment_shift={hp['augment_shift']} shifts images, but this network takes "
                f"flat rows of shape {self.input_shape_}; use augment_shift=0 or an image "
                "architecture (e.g. '32C3-MP2-64C3-MP2-512FC-SM10')"
            )
        if hp["augment_shift"] and any(hp["augment_shift"] >= s for s in self.input_shape_[:2]):
            raise ValueError(f"augment_shift={hp['augment_shift']} must be smaller than the "
                             f"image's height and width {self.input_shape_[:2]}")
        shapes = {lay.name: lay.weight_shape for lay in plan.layers}
        if warm is not None:
            self._check_warm(warm, shapes)
        steps = hp["epochs"] * math.ceil(len(tr_idx) / hp["batch_size"])
        trainer = self._make_trainer(backend, shapes, steps, seed)
        state = self._train(trainer, hp, x_tr, y_tr, x_val, y_val, seed, warm)
        params, stats = trainer.to_numpy(state)[:2]
        self.train_state_ = {"params": params, "stats": stats}
        self.random_seed_ = seed
        self._finalise(params, np.ascontiguousarray(x_tr[bn_idx]), seed)
        self.fit_time_ = time.monotonic() - start
        return self

    def _warm_state(self) -> dict | None:
        """The fitted state a ``warm_start`` fit continues from (None for a fresh start)."""
        if not self.warm_start or not hasattr(self, "train_state_"):
            return None
        keep = ("input_shape_", "n_features_in_", "feature_names_in_", "classes_", "plan_",
                "template_")
        return {"state": self.train_state_,
                "attrs": {k: getattr(self, k) for k in keep if hasattr(self, k)}}

    def _check_warm(self, warm: dict, shapes: dict) -> None:
        old = {k: tuple(v["w"].shape) for k, v in warm["state"]["params"].items()}
        if old != {k: tuple(v) for k, v in shapes.items()}:
            raise ValueError(
                f"warm_start=True continues from the fitted network, but this fit's architecture "
                f"and input shape {self.input_shape_} give weight shapes {shapes}, not the fitted "
                f"{old}; set warm_start=False to train a new network"
            )
        fitted = warm["attrs"]["classes_"]
        if not np.array_equal(fitted, self.classes_):
            raise ValueError(
                f"warm_start=True continues from a network fitted on classes "
                f"{np.asarray(fitted).tolist()[:10]}, but y has classes "
                f"{self.classes_.tolist()[:10]}; pass classes=[...] or set warm_start=False"
            )

    def _resolve_seed(self) -> int:
        rs = self.random_state
        if rs is None and self.checkpoint is not None and os.path.exists(self.checkpoint):
            with open(self.checkpoint, "rb") as fh:
                return int(pickle.load(fh)["seed"])
        if isinstance(rs, numbers.Integral) and not isinstance(rs, bool):
            if rs < 0:
                raise ValueError(f"random_state must be >= 0; got {rs}")
            return int(rs)
        if rs is None:
            return int(np.random.default_rng().integers(2**31 - 1))
        if isinstance(rs, np.random.Generator):
            return int(rs.integers(2**31 - 1))
        if isinstance(rs, np.random.RandomState):
            return int(rs.randint(2**31 - 1))
        raise TypeError(f"random_state must be None, an int or a numpy Generator; got {type(rs)}")

    def _fingerprint(self, x_tr, y_tr, seed, warm=None) -> str:
        h = hashlib.blake2b(digest_size=16)
        if warm is not None:  # a warm start's checkpoint belongs to its starting weights
            for name in sorted(warm["state"]["params"]):
                for key in sorted(warm["state"]["params"][name]):
                    h.update(np.ascontiguousarray(warm["state"]["params"][name][key]).data)
        params = {k: v for k, v in self.get_params().items()
                  if k not in ("progressbar", "checkpoint")}
        if not (params["random_state"] is None or isinstance(params["random_state"], int)):
            params["random_state"] = "generator"  # its repr changes between runs; seed covers it
        h.update(repr((self._kind, sorted(params.items(), key=lambda kv: kv[0]), seed)).encode())
        h.update(repr(x_tr.shape).encode())
        h.update(np.ascontiguousarray(x_tr).data)
        h.update(np.ascontiguousarray(y_tr).data)
        return h.hexdigest()

    def _train(self, trainer, hp, x_tr, y_tr, x_val, y_val, seed, warm=None):
        bs, epochs = hp["batch_size"], hp["epochs"]
        n = x_tr.shape[0]
        n_batches = math.ceil(n / bs)
        early = self.early_stopping
        fp = self._fingerprint(x_tr, y_tr, seed, warm) if self.checkpoint is not None else None
        if warm is None:
            state = trainer.init(np.random.default_rng([seed, 1]), hp["init_scale"])
        else:  # the fitted weights and statistics, a fresh optimizer and schedule
            state = trainer.start_from(warm["state"]["params"], warm["state"]["stats"])
        hist = {k: [] for k in ("loss", "accuracy", "val_loss", "val_accuracy", "wall_time",
                                "cpu_time")}
        book = {"epoch": 0, "best": None, "best_epoch": 0, "best_score": -np.inf, "wait": 0,
                "done": False, "stopped_early": False}
        if fp is not None and os.path.exists(self.checkpoint):
            with open(self.checkpoint, "rb") as fh:
                ck = pickle.load(fh)
            if ck.get("version") != _CKPT_VERSION or ck.get("fingerprint") != fp:
                raise ValueError(
                    f"checkpoint {os.fspath(self.checkpoint)!r} was written for other data or "
                    "options; delete it or choose another checkpoint path"
                )
            state = trainer.from_numpy(ck["state"])
            hist, book = ck["history"], ck["book"]
        self.interrupted_ = False
        bar = _Progress(epochs, n_batches, self.progressbar)
        committed = state if book["epoch"] > 0 else None
        try:
            for epoch in range(book["epoch"], epochs):
                if book["done"]:
                    break
                t0, c0 = time.monotonic(), time.process_time()
                perm = np.random.default_rng([seed, 2, epoch]).permutation(n)
                loss_sum, correct_sum = 0.0, 0
                pending = []
                for b in range(n_batches):
                    idx = perm[b * bs : (b + 1) * bs]
                    m = len(idx)
                    xb = np.zeros((bs, *x_tr.shape[1:]), np.float32)  # fresh buffers per step
                    yb = np.zeros(bs, np.int64)
                    xb[:m], yb[:m] = x_tr[idx], y_tr[idx]
                    if hp["augment_shift"]:
                        shift_images(xb[:m], hp["augment_shift"],
                                     np.random.default_rng([seed, 5, epoch, b]))
                    mask = (np.arange(bs) < m).astype(np.float32)
                    state, loss, correct = trainer.step(state, xb, yb, mask,
                                                        epoch * n_batches + b)
                    pending.append((loss, correct, m))
                    if len(pending) >= 20 or b == n_batches - 1:
                        for lo, co, mm in pending:
                            loss_sum += float(lo) * mm
                            correct_sum += int(co)
                        pending = []
                        bar.update(epoch, b + 1, loss_sum / min(n, (b + 1) * bs))
                val_acc = val_loss = None
                if x_val is not None:
                    logits = trainer.logits(state, x_val)
                    val_acc = float(np.mean(np.argmax(logits, 1) == y_val))
                    z = logits - logits.max(axis=1, keepdims=True)
                    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
                    val_loss = float(-np.mean(logp[np.arange(len(y_val)), y_val]))
                for key, v in (("loss", loss_sum / n), ("accuracy", correct_sum / n),
                               ("val_loss", val_loss), ("val_accuracy", val_acc),
                               ("wall_time", time.monotonic() - t0),
                               ("cpu_time", time.process_time() - c0)):
                    hist[key].append(v)
                committed = state
                book["epoch"] = epoch + 1
                bar.end_epoch(epoch, loss_sum / n, correct_sum / n, val_acc, hist["wall_time"][-1])
                if val_acc is not None and val_acc > book["best_score"]:
                    book.update(best_score=val_acc, best_epoch=epoch + 1, wait=0,
                                best=trainer.to_numpy(state)[0] if early else None)
                elif val_acc is not None:
                    book["wait"] += 1
                if early and book["wait"] >= hp["patience"]:
                    book.update(done=True, stopped_early=True)
                if epoch + 1 == epochs:
                    book["done"] = True
                if fp is not None:
                    self._write_checkpoint(fp, seed, trainer.to_numpy(state), hist, book)
        except KeyboardInterrupt:
            if committed is None:
                raise
            self.interrupted_ = True
            warnings.warn(
                f"training interrupted: keeping the last completed epoch ({book['epoch']} of "
                f"{epochs}); interrupted_ is True",
                TrainingInterruptedWarning,
                stacklevel=3,
            )
        if committed is None:  # resumed from a finished checkpoint with nothing to run
            committed = state
        self.history_ = hist
        self.n_epochs_ = book["epoch"]
        self.stopped_early_ = book["stopped_early"]
        self.best_epoch_ = book["best_epoch"] if x_val is not None else book["epoch"]
        if early and book["best"] is not None and book["best_epoch"] != book["epoch"]:
            params, stats, opt = committed
            committed = (trainer.from_numpy(book["best"]), stats, opt)
        return committed

    def _write_checkpoint(self, fp, seed, state_np, hist, book) -> None:
        blob = {"version": _CKPT_VERSION, "fingerprint": fp, "seed": seed, "state": state_np,
                "history": hist, "book": book}
        atomic_write(self.checkpoint, lambda fh: pickle.dump(blob, fh, protocol=4))

    # -- prediction ---------------------------------------------------------------------------
    def _rows(self, x) -> np.ndarray:
        check_is_fitted(self, "template_")
        return self._prepare_x(x, None, reset=False)

    def predict(self, x, **kwargs) -> np.ndarray:
        """Most probable class.

        Parameters
        ----------
        x : array-like of shape (n, D), (n, H, W) or (n, H, W, C)
        **kwargs
            Passed to ``predict_proba`` (e.g. ``method`` for PBNet).

        Returns
        -------
        ndarray of shape (n,)
            Labels from ``classes_``.
        """
        proba = self.predict_proba(x, **kwargs)
        return self.classes_[np.argmax(proba, axis=1)]

    def score(self, x, y, sample_weight=None) -> float:
        """Accuracy of :meth:`predict` on ``(x, y)``.

        Parameters
        ----------
        x : array-like of shape (n, ...)
        y : array-like of shape (n,)
            Labels, all among ``classes_`` (others raise a ValueError).
        sample_weight : array-like of shape (n,), optional

        Returns
        -------
        float
        """
        rows = self._rows(x)
        codes = self._codes(y, rows.shape[0])
        hit = (np.argmax(self.predict_proba(rows), axis=1) == codes).astype(float)
        return float(np.average(hit, weights=sample_weight))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of logits (n, K) -> probabilities (n, K), float64, rows sum to 1."""
    z = np.asarray(z, np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def shift_images(x: np.ndarray, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """Shift each image by random whole pixels, in place, filling with zeros (augmentation).

    Parameters
    ----------
    x : ndarray of shape (n, H, W, C)
        Changed in place.
    max_shift : int
        Each image moves by ``dy, dx`` drawn uniformly from ``-max_shift .. max_shift``
        (``max_shift < min(H, W)``).
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of shape (n, H, W, C)
        ``x`` itself; ``out[i, r, c] = x_old[i, r - dy_i, c - dx_i]`` where that lies inside
        the image, else 0.
    """
    n, h, w = x.shape[:3]
    d = rng.integers(-max_shift, max_shift + 1, size=(n, 2))
    src = x.copy()
    x[...] = 0
    for i in range(n):
        dy, dx = int(d[i, 0]), int(d[i, 1])
        x[i, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = \
            src[i, max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)]
    return x
