"""Input checks shared by every public entry point: clear errors before anything reaches PyTensor."""

from __future__ import annotations

import numbers
import os

import numpy as np

__all__ = [
    "check_matrix",
    "check_x",
    "check_labels",
    "label_vector",
    "check_prior_p",
    "check_choice",
    "check_positive_int",
    "check_classes",
    "input_scale_problem",
    "InputScaleWarning",
]


def check_matrix(
    x,
    name: str = "x",
    *,
    n_features: int | None = None,
    finite: bool = True,
    native: bool = False,
) -> np.ndarray:
    """Validate a 2-D numeric input matrix: the one matrix check every entry point uses.

    Parameters
    ----------
    x : array-like of shape (n_samples, n_features)
        Numeric values; pandas DataFrames are accepted, scipy sparse matrices are not.
    name : str
        Argument name used in error messages.
    n_features : int, optional
        Expected number of columns.
    finite : bool
        Refuse NaN and infinite values (the packed-bit packers count them themselves).
    native : bool
        Keep a kernel-friendly native dtype (bool viewed as uint8, float16 as float32, other
        integers as int64, uint8 kept) instead of converting to float64.

    Returns
    -------
    ndarray of shape (n_samples, n_features)
        C-contiguous; float64 unless ``native``.
    """
    if hasattr(x, "tocsr") or type(x).__module__.startswith("scipy.sparse"):
        raise TypeError(
            f"{name} is a scipy sparse matrix: sparse input is not supported; pass a dense "
            f"array ({name}.toarray())"
        )
    if hasattr(x, "to_numpy") and not isinstance(x, np.ndarray):
        x = x.to_numpy()
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} must be a 2-D numeric array; got {type(x).__name__}") from exc
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"Complex data not supported: {name} must be real-valued; got {arr.dtype}")
    if arr.dtype == object:
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must be numeric; converting it failed: {exc}") from exc
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must be numeric (int, float or bool dtype); got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D of shape (n_samples, n_features); got {arr.ndim}-D shape "
            f"{arr.shape}. Reshape your data with x.reshape(-1, 1) for a single feature or "
            "x.reshape(1, -1) for a single sample"
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty: it has 0 rows; at least 1 is needed")
    if arr.shape[1] == 0:
        raise ValueError(
            f"{name} has 0 feature(s) (shape=({arr.shape[0]}, 0)) while a minimum of 1 is required."
        )
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(
            f"{name} has {arr.shape[1]} features, but the model is expecting {n_features} "
            "features as input"
        )
    if native:
        if arr.dtype == bool:
            arr = arr.view(np.uint8)
        elif arr.dtype == np.float16:
            arr = arr.astype(np.float32)
        elif np.issubdtype(arr.dtype, np.integer) and arr.dtype not in (np.uint8, np.int64):
            if arr.dtype == np.uint64 and arr.size and arr.max() > np.iinfo(np.int64).max:
                raise ValueError(f"{name} holds uint64 values beyond the int64 range")
            arr = arr.astype(np.int64)
        arr = np.ascontiguousarray(arr)
    else:
        arr = np.ascontiguousarray(arr, dtype=np.float64)
    if finite and np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} NaN or infinite value(s); all must be finite")
    return arr


def check_x(x, name: str = "x", *, n_features: int | None = None) -> np.ndarray:
    """Validate a design matrix and return it as C-contiguous float64 (finite values).

    Parameters
    ----------
    x : array-like of shape (n_samples, n_features)
        Numeric, finite values. pandas DataFrames are accepted.
    name : str
        Argument name used in error messages.
    n_features : int, optional
        Expected number of columns.

    Returns
    -------
    ndarray of shape (n_samples, n_features), float64
    """
    return check_matrix(x, name, n_features=n_features)


def label_vector(y, name: str = "y", *, n_samples: int | None = None,
                 rows: str = "x has") -> np.ndarray:
    """A 1-D array of labels from a list, array, pandas Series or ``(n, 1)`` column.

    Parameters
    ----------
    y : array-like or Series of shape (n_samples,) or (n_samples, 1)
    name : str
        Argument name used in error messages.
    n_samples : int, optional
        Expected length; a mismatch raises ``ValueError: y has 5 labels but x has 6 rows``.
    rows : str
        What has the rows in that message (``"x has"``, ``"there are"``).

    Returns
    -------
    ndarray of shape (n_samples,), the labels' own dtype
    """
    if hasattr(y, "to_numpy") and not isinstance(y, np.ndarray):
        y = y.to_numpy()
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D of shape (n_samples,); got shape {arr.shape}")
    if n_samples is not None and arr.shape[0] != n_samples:
        raise ValueError(
            f"{name} has {arr.shape[0]} labels but {rows} {n_samples} rows; lengths must match"
        )
    return arr


def check_labels(y, n_classes: int, name: str = "y", *, n_samples: int | None = None) -> np.ndarray:
    """Validate integer class codes in ``0..n_classes-1`` and return them as int64.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Integer labels (floats holding whole numbers and bools are accepted).
    n_classes : int
        Number of classes; labels must lie in ``range(n_classes)``.
    name : str
        Argument name used in error messages.
    n_samples : int, optional
        Expected length (the number of rows of ``x``).

    Returns
    -------
    ndarray of shape (n_samples,), int64
    """
    arr = label_vector(y, name)
    if arr.size == 0:
        raise ValueError(f"{name} is empty; at least 1 label is needed")
    if arr.dtype == bool:
        arr = arr.astype(np.int64)
    if not np.issubdtype(arr.dtype, np.number):
        raise TypeError(
            f"{name} must hold integer class codes 0..{n_classes - 1}; got dtype {arr.dtype} "
            "(use bayesbin.fit for arbitrary labels)"
        )
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ValueError(f"{name} must hold whole-number class codes; got non-integers")
    arr = arr.astype(np.int64)
    if n_samples is not None and arr.shape[0] != n_samples:
        raise ValueError(
            f"{name} has {arr.shape[0]} labels but x has {n_samples} rows; lengths must match"
        )
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi >= n_classes:
        raise ValueError(
            f"{name} has labels outside 0..{n_classes - 1} (found min {lo}, max {hi}) for a "
            f"model with {n_classes} classes"
        )
    return arr


def check_prior_p(prior_p, shape: tuple[int, ...], name: str = "prior_p") -> np.ndarray:
    """Validate a Bernoulli prior probability, scalar or broadcastable to ``shape``."""
    try:
        arr = np.asarray(prior_p, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a number or array of numbers in [0, 1]") from exc
    if not np.all(np.isfinite(arr)) or np.any(arr < 0) or np.any(arr > 1):
        raise ValueError(f"{name} must lie in [0, 1]; got values outside that range")
    try:
        arr = np.broadcast_to(arr, shape).copy()
    except ValueError as exc:
        raise ValueError(
            f"{name} of shape {arr.shape} does not broadcast to the weight shape {shape}"
        ) from exc
    return arr


def check_choice(value, name: str, choices) -> str:
    """Check that ``value`` is one of the strings ``choices``; return it."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}; got {value!r}")
    return value


def check_positive_int(value, name: str, *, minimum: int = 1) -> int:
    """Check an integer option such as ``draws`` or ``chains``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer; got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")
    return int(value)


def draw_indices(draws, total: int, name: str = "draws") -> np.ndarray:
    """Flat indices of the draws to use, one rule for every ``draws=`` option.

    Parameters
    ----------
    draws : None, int or array-like of int
        ``None``: every draw. An int ``m``: ``m`` draws evenly spaced over the ``total`` (thinning;
        ``1 <= m <= total``). An array: explicit indices in ``0..total - 1`` (no negatives).
    total : int
        Number of draws available.

    Returns
    -------
    ndarray of shape (S,), int64
    """
    if total == 0:
        raise ValueError("result has no draws")
    if draws is None:
        return np.arange(total, dtype=np.int64)
    if isinstance(draws, numbers.Integral) and not isinstance(draws, bool):
        m = int(draws)
        if not 1 <= m <= total:
            raise ValueError(f"{name} must be between 1 and the number of draws {total}; got {m}")
        return np.round(np.linspace(0, total - 1, m)).astype(np.int64)
    idx = np.asarray(draws)
    if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(
            f"{name} must be None, an int, or a non-empty 1-D array of int indices; got {draws!r}"
        )
    if idx.min() < 0 or idx.max() >= total:
        raise ValueError(f"{name} indices must lie in 0..{total - 1}; got {idx.tolist()!r}")
    return idx.astype(np.int64)


class InputScaleWarning(UserWarning):
    """Inputs far outside [0, 1], or features whose ranges differ by orders of magnitude."""


_FAR_OUTSIDE = 10.0  # |x| beyond this is "far outside [0, 1]"
_RANGE_RATIO = 100.0  # feature ranges differing by more than this factor


def input_scale_problem(x: np.ndarray) -> str | None:
    """Say why inputs do not suit a binary-weight model with one logit scale (None if they do).

    bayesbin's weights are bits and one learned scale multiplies every feature, so a feature's
    influence is its range: features 1,000 times larger than the others decide alone, and the
    HalfNormal(1) prior on the scale and the fast kernels assume pixel-like inputs in [0, 1].

    Parameters
    ----------
    x : ndarray of shape (n_samples, n_features), float64

    Returns
    -------
    str or None
    """
    if x.size == 0:
        return None
    lo, hi = x.min(axis=0), x.max(axis=0)
    big = float(max(-lo.min(), hi.max()))
    ranges = hi - lo
    moving = ranges[ranges > 0]
    parts = []
    if big > _FAR_OUTSIDE:
        parts.append(f"values reach {big:.4g}, far outside [0, 1]")
    if moving.size >= 2 and moving.max() > _RANGE_RATIO * moving.min():
        parts.append(
            f"feature ranges differ by a factor of {moving.max() / moving.min():.3g} "
            f"({moving.min():.3g} to {moving.max():.3g})"
        )
    if not parts:
        return None
    return (
        "; ".join(parts)
        + ". Binary weights share one logit scale, so the largest features dominate: scale the "
        "inputs first, e.g. make_pipeline(MinMaxScaler(), BayesBinClassifier()) or "
        "StandardScaler() from scikit-learn"
    )


def check_classes(k: int, present: int, n_features: int, name: str = "classes") -> int:
    """Bound the number of classes by the labels present and by memory.

    Parameters
    ----------
    k : int
        Number of classes asked for.
    present : int
        Distinct labels in the data.
    n_features : int
        D: the model has D x K bits.
    name : str

    Returns
    -------
    int

    Raises
    ------
    ValueError
        When ``k`` is over 100 and more than 10 times the labels present (classes without a
        single example only slow the sampler), or when D x K weights would take more than
        a quarter of this machine's memory as PyMC's int64 draws of one chain of 1,000 draws.
    """
    if k > 100 and k > 10 * max(present, 1):
        raise ValueError(
            f"{name}={k:,} but y holds only {present} distinct label(s): that many classes "
            "without a single example would only slow the sampler down. Pass the number of "
            "classes the data have, or the list of labels"
        )
    need = 8 * 1000 * int(n_features) * int(k)
    avail = _memory_bytes()
    if avail is not None and need > avail // 4:
        raise ValueError(
            f"{name}={k:,} with {n_features:,} features makes {k * n_features:,} binary "
            f"weights; 1,000 draws of them take {need / 2**30:.1f} GiB while sampling, more than "
            f"a quarter of this machine's {avail / 2**30:.1f} GiB of memory"
        )
    return int(k)


def _memory_bytes() -> int | None:
    """Physical memory of this machine in bytes (None where it cannot be read)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return None
