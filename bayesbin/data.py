"""Data layer: IDX reading, MNIST / Fashion-MNIST lookup and verified download, and MNIST56.

Where the files are looked for, in order (first hit wins):

1. the ``data_dir`` argument, if given;
2. the directory in the environment variable ``BAYESBIN_DATA_DIR``, if set and not empty;
3. ``<repo>/shared/data`` and then ``<repo>/../shared/data``, where ``<repo>`` is the parent
   of the ``bayesbin`` package directory;
4. the user cache, ``$XDG_CACHE_HOME/bayesbin`` or ``~/.cache/bayesbin``;
5. a download from the canonical mirrors into the user cache (only when ``download=True``).

Each location holds one subfolder per dataset, ``mnist/`` and ``fashion-mnist/``, with the
original file names (``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``); the uncompressed files (same
names without ``.gz``) are accepted too. A directory given explicitly (1 or 2) is
authoritative: files missing there raise :class:`DataNotFoundError` instead of falling through,
and there the files may also sit directly in the directory rather than in the subfolder.

Every file is checked when it is read: the IDX structure (magic number, dimensions, exact payload
length), the expected shape, and the md5 of the decompressed IDX content (cached per path,
mtime and size within the process). A download is checked against the md5 of the ``.gz`` as
distributed before anything is written, and is written atomically (temporary file in the cache
directory, then ``os.replace``), so a failed or mismatching download leaves nothing behind.

MNIST56 (:func:`load_mnist56`) is the PyMC forum's toy problem, digits 5 and 6 of MNIST as
5x5 binary images; it ships inside the package (``bayesbin/_data/mnist56.npz``) and needs no
download. :func:`make_mnist56` regenerates it from the IDX files.

Examples
--------
>>> from bayesbin.data import load_mnist56
>>> x, y = load_mnist56("train")
>>> x.shape, x.dtype.name, y.dtype.name
((11339, 25), 'float64', 'int64')
"""

from __future__ import annotations

import hashlib
import http.client
import importlib.resources
import io
import math
import numbers
import os
import struct
import urllib.request
import zipfile
import zlib
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from bayesbin._io import atomic_write as _atomic_write
from bayesbin._validation import check_choice

__all__ = [
    "DATA_DIR_ENV_VAR",
    "MNIST56_BLOCK_EDGES",
    "MNIST56_THRESHOLD",
    "DataNotFoundError",
    "load_fashion_mnist",
    "load_mnist",
    "load_mnist56",
    "make_mnist56",
    "read_idx",
]

DATA_DIR_ENV_VAR = "BAYESBIN_DATA_DIR"
"""Name of the environment variable that points at a data directory."""

MNIST56_THRESHOLD = 0.1
"""Block-average threshold of MNIST56: a 5x5 pixel is 1 when its block average (in [0, 1])
exceeds it. 0.1 gives pixel density 0.367 and float logistic-regression test accuracy 0.941."""

MNIST56_BLOCK_EDGES = (0, 6, 11, 17, 22, 28)
"""Row and column edges of the 5x5 blocks over a 28x28 image (block sizes 6, 5, 6, 5, 6)."""

_MAX_IDX_BYTES = 2**31  # read_idx refuses IDX content announced larger than this (2 GiB)
_DOWNLOAD_TIMEOUT = 30.0  # seconds, per blocking socket operation
_SPLITS = ("train", "test")
_MNIST56_FILE = "mnist56.npz"
_MNIST56_DIGITS = (5, 6)  # label 0 <-> digit 5, label 1 <-> digit 6

# IDX type codes -> big-endian numpy dtypes (http://yann.lecun.com/exdb/mnist/ "IDX format").
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


class DataNotFoundError(FileNotFoundError):
    """The dataset files are not available locally and could not be downloaded.

    The message lists the files needed, their md5 sums, where they were looked for and where to
    put them.
    """


class _IdxFile(NamedTuple):
    name: str  # original (gzip) file name
    gz_md5: str  # md5 of the .gz as distributed
    idx_md5: str  # md5 of the decompressed IDX bytes (header + payload)
    shape: tuple[int, ...]


class _Dataset(NamedTuple):
    title: str
    subdir: str
    mirrors: tuple[str, ...]
    files: dict[str, tuple[_IdxFile, _IdxFile]]  # split -> (images, labels)
    licence: str


_DATASETS: dict[str, _Dataset] = {
    "mnist": _Dataset(
        title="MNIST",
        subdir="mnist",
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        files={
            "train": (
                _IdxFile(
                    "train-images-idx3-ubyte.gz",
                    "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                    "6bbc9ace898e44ae57da46a324031adb",
                    (60000, 28, 28),
                ),
                _IdxFile(
                    "train-labels-idx1-ubyte.gz",
                    "d53e105ee54ea40749a09fcbcd1e9432",
                    "a25bea736e30d166cdddb491f175f624",
                    (60000,),
                ),
            ),
            "test": (
                _IdxFile(
                    "t10k-images-idx3-ubyte.gz",
                    "9fb629c4189551a2d022fa330f9573f3",
                    "2646ac647ad5339dbf082846283269ea",
                    (10000, 28, 28),
                ),
                _IdxFile(
                    "t10k-labels-idx1-ubyte.gz",
                    "ec29112dd5afa0611ce80d1b7f02629c",
                    "27ae3e4e09519cfbb04c329615203637",
                    (10000,),
                ),
            ),
        },
        licence="CC BY-SA 3.0 (Yann LeCun, Corinna Cortes, Christopher J. C. Burges)",
    ),
    "fashion-mnist": _Dataset(
        title="Fashion-MNIST",
        subdir="fashion-mnist",
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        files={
            "train": (
                _IdxFile(
                    "train-images-idx3-ubyte.gz",
                    "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                    "f4a8712d7a061bf5bd6d2ca38dc4d50a",
                    (60000, 28, 28),
                ),
                _IdxFile(
                    "train-labels-idx1-ubyte.gz",
                    "25c81989df183df01b3e8a0aad5dffbe",
                    "9018921c3c673c538a1fc5bad174d6f9",
                    (60000,),
                ),
            ),
            "test": (
                _IdxFile(
                    "t10k-images-idx3-ubyte.gz",
                    "bef4ecab320f06d8554ea6380940ec79",
                    "8181f5470baa50b63fa0f6fddb340f0a",
                    (10000, 28, 28),
                ),
                _IdxFile(
                    "t10k-labels-idx1-ubyte.gz",
                    "bb300cfdad3c16e7a12a480ee83cd310",
                    "15d484375f8d13e6eb1aabb0c3f46965",
                    (10000,),
                ),
            ),
        },
        licence="MIT (Zalando Research)",
    ),
}

# (resolved path, mtime_ns, size, inode) -> idx md5 that file was verified against.
_VERIFIED: dict[tuple[str, int, int, int], str] = {}


# --------------------------------------------------------------------------------------------
# IDX reading
# --------------------------------------------------------------------------------------------


def _check_path(path: Any, name: str = "path") -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or os.PathLike; got {type(path).__name__}")
    return Path(path)


def _idx_size(head: bytes) -> tuple[int, int, tuple] | None:
    """(header length, total length, dims) announced by an IDX file's first bytes, if readable."""
    if len(head) < 4 or head[:2] != b"\x00\x00" or head[2] not in _IDX_DTYPES or head[3] == 0:
        return None
    header = 4 + 4 * head[3]
    if len(head) < header:
        return header, -1, ()
    dims = struct.unpack(f">{head[3]}I", head[4:header])
    return header, header + math.prod(dims) * _IDX_DTYPES[head[2]].itemsize, dims


def _too_big(path: Path, total: int, dims: tuple, max_bytes: int) -> ValueError:
    return ValueError(
        f"{path}: the IDX header announces shape {tuple(dims)}, {total:,} bytes, more than the "
        f"{max_bytes:,} allowed (max_bytes); refused before reading it"
    )


def _read_raw_bounded(path: Path, max_bytes: int) -> bytes:
    size = os.stat(path).st_size
    with open(path, "rb") as fh:
        head = fh.read(4)
        if len(head) == 4 and head[3] and head[:2] == b"\x00\x00":
            head += fh.read(4 * head[3])
        known = _idx_size(head)
        if known is not None and known[1] >= 0:
            header, total, dims = known
            if total > max_bytes:
                raise _too_big(path, total, dims, max_bytes)
            if size > total:
                raise ValueError(
                    f"{path}: IDX payload has {size - header} bytes but the header needs exactly "
                    f"{total - header}: trailing bytes after the data"
                )
        return head + fh.read(max(0, min(size, max_bytes + 1) - len(head)))


def _gunzip_bounded(path: Path, max_bytes: int) -> bytes:
    """Stream-decompress, never past the size the IDX header announces (plus one byte)."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = bytearray()
    limit = 4 + 4 * 255  # before the header is known: the longest possible header
    total = None
    pending = b""
    try:
        with open(path, "rb") as fh:
            while not d.eof:
                if not pending:
                    pending = fh.read(1 << 20)
                    if not pending:
                        break
                out += d.decompress(pending, max(1, limit + 1 - len(out)))
                pending = d.unconsumed_tail
                if total is None:
                    known = _idx_size(bytes(out[: 4 + 4 * 255]))
                    if known is None and len(out) >= 4:
                        limit = len(out)  # bad magic: _parse_idx says so
                    elif known is not None and known[1] >= 0:
                        total = known[1]
                        if total > max_bytes:
                            raise _too_big(path, total, known[2], max_bytes)
                        limit = total
                if len(out) > limit:
                    if total is None:
                        break
                    raise ValueError(
                        f"{path}: decompresses to more than the {total:,} bytes its IDX header "
                        "announces: trailing bytes after the data (reading stopped there)"
                    )
            trailing = d.unused_data + pending + fh.read(1)
    except zlib.error as exc:
        raise ValueError(f"{path}: not a valid gzip file ({exc})") from None
    if not d.eof and total is not None and len(out) <= limit:
        raise ValueError(f"{path}: not a valid gzip file (the compressed stream is truncated)")
    if d.eof and trailing:
        raise ValueError(f"{path}: not a valid gzip file (data after the compressed stream)")
    return bytes(out)


def _read_idx_bytes(path: Path, max_bytes: int | None = None) -> bytes:
    """Return the IDX bytes of ``path``, gunzipped when the name ends in ``.gz``.

    Bounded: the header's announced size is checked against ``max_bytes`` and the file (or the
    decompressed stream) is never read past it, so a small gzip that expands to gigabytes or a
    header claiming a huge array is refused without the memory.
    """
    max_bytes = _MAX_IDX_BYTES if max_bytes is None else int(max_bytes)
    if path.name.lower().endswith(".gz"):
        return _gunzip_bounded(path, max_bytes)
    return _read_raw_bounded(path, max_bytes)


def _parse_idx(raw: bytes, path: Path) -> np.ndarray:
    """Parse IDX bytes into a read-only (big-endian) view; every structural error -> ValueError."""
    if len(raw) < 4:
        raise ValueError(f"{path}: {len(raw)} bytes is too short for an IDX magic number")
    zero, code, ndim = raw[:2], raw[2], raw[3]
    if zero != b"\x00\x00" or code not in _IDX_DTYPES or ndim == 0:
        codes = ", ".join(f"0x{c:02X}" for c in _IDX_DTYPES)
        hint = ""
        if raw[:2] == b"\x1f\x8b":
            hint = " (the file looks gzip-compressed: its name must end in .gz)"
        raise ValueError(
            f"{path}: bad IDX magic number 0x{raw[:4].hex().upper()}; expected 0x0000, then a "
            f"type code ({codes}), then the number of dimensions (>= 1){hint}"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(
            f"{path}: truncated IDX header: {ndim} dimensions need {header} header bytes but "
            f"the file has {len(raw)}"
        )
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = _IDX_DTYPES[code]
    count = math.prod(dims)
    expected = count * dtype.itemsize
    actual = len(raw) - header
    if actual != expected:
        what = "truncated" if actual < expected else "trailing bytes after the data"
        raise ValueError(
            f"{path}: IDX payload has {actual} bytes but the header (dims {tuple(dims)}, "
            f"{dtype.itemsize}-byte {dtype.name}) needs exactly {expected}: {what}"
        )
    return np.frombuffer(raw, dtype=dtype, count=count, offset=header).reshape(dims)


def read_idx(path: str | os.PathLike[str], *, max_bytes: int | None = None) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzip-compressed or raw.

    The file is gunzipped when its name ends in ``.gz``. The magic number (two zero bytes, a
    type code, the number of dimensions), the big-endian 32-bit dimensions and the payload
    length are checked; the payload must have exactly ``prod(dims) * itemsize`` bytes.

    Parameters
    ----------
    path : str or os.PathLike
        The file to read.
    max_bytes : int, optional
        Largest IDX content (header and payload, uncompressed) to accept; default 2 GiB. A
        header announcing more is refused before the payload is read, and a gzip stream is
        never decompressed past what its header announces.

    Returns
    -------
    ndarray of shape ``dims``
        A new, writable array in native byte order. Its dtype follows the type code:
        0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64.

    Raises
    ------
    ValueError
        Naming the file, when it is not valid gzip (for ``.gz``), has a bad magic number, a
        truncated header, a short payload or trailing bytes.
    FileNotFoundError
        When the file does not exist.

    Examples
    --------
    >>> from bayesbin.data import read_idx
    >>> images = read_idx("train-images-idx3-ubyte.gz")  # doctest: +SKIP
    >>> images.shape, images.dtype.name  # doctest: +SKIP
    ((60000, 28, 28), 'uint8')
    """
    path = _check_path(path)
    if max_bytes is not None and (
        isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 4
    ):
        raise ValueError(f"max_bytes must be an integer >= 4; got {max_bytes!r}")
    view = _parse_idx(_read_idx_bytes(path, max_bytes), path)
    return view.astype(view.dtype.newbyteorder("="), copy=True)


def _read_verified(path: Path, spec: _IdxFile) -> np.ndarray:
    """Read ``path`` and check it is the file ``spec`` (shape, then md5 of the IDX content)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size, st.st_ino)
    # the dataset's own size bounds the read: a wrong or hostile file is refused early
    raw = _read_idx_bytes(path, 4 + 4 * len(spec.shape) + math.prod(spec.shape))
    arr = _parse_idx(raw, path)
    if arr.shape != spec.shape or arr.dtype != np.dtype(">u1"):
        raise ValueError(
            f"{path}: expected {spec.name} with shape {spec.shape} of uint8, got shape "
            f"{arr.shape} of {arr.dtype.name}; the file is not the right one"
        )
    if _VERIFIED.get(key) != spec.idx_md5:
        got = hashlib.md5(raw).hexdigest()
        if got != spec.idx_md5:
            raise ValueError(
                f"{path}: md5 of the IDX content is {got}, expected {spec.idx_md5} for "
                f"{spec.name} (whose .gz as distributed has md5 {spec.gz_md5}); the file is "
                "corrupt or from another dataset: delete or replace it"
            )
        _VERIFIED[key] = spec.idx_md5
    return arr


# --------------------------------------------------------------------------------------------
# Lookup and download
# --------------------------------------------------------------------------------------------


def _repo_root() -> Path:
    """Return the parent of the ``bayesbin`` package directory."""
    return Path(__file__).resolve().parent.parent


def _cache_root() -> Path:
    """``$XDG_CACHE_HOME/bayesbin`` (if set to an absolute path) or ``~/.cache/bayesbin``."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "bayesbin"


def _shared_roots() -> list[Path]:
    root = _repo_root()
    return [root / "shared" / "data", root.parent / "shared" / "data"]


def _fetch_url(url: str, timeout: float) -> bytes:
    """Download ``url`` and return its body (the only function here that touches the network)."""
    request = urllib.request.Request(url, headers={"User-Agent": "bayesbin-data/1"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read()


def _candidates(directory: Path, spec: _IdxFile) -> list[Path]:
    raw_name = spec.name[: -len(".gz")] if spec.name.endswith(".gz") else spec.name
    return [directory / spec.name, directory / raw_name]


def _find_in(directory: Path, spec: _IdxFile) -> Path | None:
    for cand in _candidates(directory, spec):
        if cand.is_file():
            return cand
    return None


def _help_text(ds: _Dataset, split: str) -> str:
    files = "\n".join(f"    {f.name}  md5 {f.gz_md5}" for f in ds.files[split])
    mirrors = " or ".join(ds.mirrors)
    cache = _cache_root() / ds.subdir
    return (
        f"Files needed for the {ds.title} {split!r} split (md5 of the .gz as distributed; the "
        f"uncompressed files without .gz are accepted too):\n{files}\n"
        f"Get them from {mirrors} and put them in one of:\n"
        f"    {cache}/  (the user cache, searched automatically)\n"
        f"    $DIR/{ds.subdir}/ after `export {DATA_DIR_ENV_VAR}=$DIR`\n"
        f"    or pass data_dir=DIR (files in DIR/{ds.subdir}/ or DIR itself)."
    )


def _from_explicit(ds: _Dataset, split: str, directory: Path, origin: str) -> list[Path]:
    specs = ds.files[split]
    found: list[Path | None] = []
    for spec in specs:
        hit = _find_in(directory / ds.subdir, spec)
        if hit is None:
            hit = _find_in(directory, spec)
        found.append(hit)
    missing = [spec.name for spec, hit in zip(specs, found) if hit is None]
    if missing:
        raise DataNotFoundError(
            f"{ds.title} {split!r} split: {', '.join(missing)} not found in {origin} "
            f"{directory} (looked in {directory / ds.subdir} and {directory}). A directory "
            "given explicitly is not searched past and nothing is downloaded into it.\n"
            + _help_text(ds, split)
        )
    return [p for p in found if p is not None]


def _download(ds: _Dataset, split: str, spec: _IdxFile, dest_dir: Path) -> Path:
    errors = []
    for base in ds.mirrors:
        url = base + spec.name
        try:
            body = _fetch_url(url, _DOWNLOAD_TIMEOUT)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            errors.append(f"    {url}: {type(exc).__name__}: {exc}")
            continue
        got = hashlib.md5(body).hexdigest()
        if got != spec.gz_md5:
            errors.append(f"    {url}: md5 mismatch, got {got}, expected {spec.gz_md5}")
            continue
        path = dest_dir / spec.name
        _atomic_write(path, lambda fh, body=body: fh.write(body))
        return path
    raise DataNotFoundError(
        f"{ds.title} {split!r} split: {spec.name} not found locally and the download failed:\n"
        + "\n".join(errors)
        + "\n"
        + _help_text(ds, split)
    )


def _resolve_split_files(
    ds: _Dataset, split: str, data_dir: str | os.PathLike[str] | None, download: bool
) -> list[Path]:
    """Paths of the (images, labels) files of one split, following the documented order."""
    if data_dir is not None:
        return _from_explicit(ds, split, _check_path(data_dir, "data_dir"), "data_dir")
    env = os.environ.get(DATA_DIR_ENV_VAR, "")
    if env:
        return _from_explicit(ds, split, Path(env), f"${DATA_DIR_ENV_VAR}")
    searched = [root / ds.subdir for root in [*_shared_roots(), _cache_root()]]
    found: list[Path | None] = []
    for spec in ds.files[split]:
        hit = None
        for directory in searched:
            hit = _find_in(directory, spec)
            if hit is not None:
                break
        found.append(hit)
    missing = [spec for spec, hit in zip(ds.files[split], found) if hit is None]
    if missing and not download:
        looked = "\n".join(f"    {d}" for d in searched)
        raise DataNotFoundError(
            f"{ds.title} {split!r} split: {', '.join(s.name for s in missing)} not found and "
            f"download=False. Looked in:\n{looked}\n" + _help_text(ds, split)
        )
    out = []
    for spec, hit in zip(ds.files[split], found):
        if hit is None:
            hit = _download(ds, split, spec, _cache_root() / ds.subdir)
        out.append(hit)
    return out


def _check_flag(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {type(value).__name__}")
    return bool(value)


def _load_raw(
    key: str, split: str, data_dir: str | os.PathLike[str] | None, download: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Read one split, verified: images uint8 (n, 28, 28) and labels uint8 (n,), read-only."""
    check_choice(split, "split", _SPLITS)
    download = _check_flag(download, "download")
    ds = _DATASETS[key]
    img_path, lab_path = _resolve_split_files(ds, split, data_dir, download)
    img_spec, lab_spec = ds.files[split]
    images = _read_verified(img_path, img_spec)
    labels = _read_verified(lab_path, lab_spec)
    if images.shape[0] != labels.shape[0] or images.ndim != 3 or labels.ndim != 1:
        raise ValueError(
            f"{img_path} and {lab_path}: {images.shape[0]} images but {labels.shape[0]} labels"
        )
    if labels.size and int(labels.max()) > 9:
        raise ValueError(f"{lab_path}: labels must lie in 0..9; found {int(labels.max())}")
    return images, labels


def _load_xy(
    key: str,
    split: str,
    data_dir: str | os.PathLike[str] | None,
    as_frame: bool,
    download: bool,
) -> tuple[Any, Any]:
    as_frame = _check_flag(as_frame, "as_frame")
    images, labels = _load_raw(key, split, data_dir, download)
    x = images.reshape(images.shape[0], -1).astype(np.float32)
    x /= np.float32(255.0)
    y = labels.astype(np.int64)
    if as_frame:
        return _to_frame(x, y)
    return x, y


def _to_frame(x: np.ndarray, y: np.ndarray) -> tuple[Any, Any]:
    import pandas as pd

    columns = [f"pixel{j}" for j in range(x.shape[1])]
    return pd.DataFrame(x, columns=columns, copy=False), pd.Series(y, name="label", copy=False)


def load_mnist(
    split: str = "train",
    *,
    data_dir: str | os.PathLike[str] | None = None,
    as_frame: bool = False,
    download: bool = True,
) -> tuple[Any, Any]:
    """Load the MNIST handwritten digits as flat float images and integer labels.

    Files are looked up in ``data_dir``, then ``$BAYESBIN_DATA_DIR``, then ``shared/data`` and
    ``../shared/data`` beside the repository, then the user cache, then (``download=True``)
    downloaded into the cache with md5 verification; see :mod:`bayesbin.data`.

    Parameters
    ----------
    split : {"train", "test"}
        ``"train"`` (60,000 images) or ``"test"`` (10,000 images).
    data_dir : str or os.PathLike, optional
        Directory holding ``mnist/`` (or the files themselves). When given it is the only
        place searched, and missing files raise :class:`DataNotFoundError`.
    as_frame : bool, default False
        Return a ``pandas.DataFrame`` (columns ``"pixel0"`` .. ``"pixel783"``, float32) and a
        ``pandas.Series`` named ``"label"`` (int64) instead of arrays.
    download : bool, default True
        Download missing files into the user cache. Never used when the files are found.

    Returns
    -------
    x : ndarray of shape (n_samples, 784), float32
        Pixels in row-major 28x28 order, ``pixel / 255`` computed in float32, so in [0, 1].
    y : ndarray of shape (n_samples,), int64
        Labels 0..9.

    Raises
    ------
    ValueError
        For a bad ``split``, or naming the file when a file found is corrupt (bad gzip, IDX
        structure, shape or md5 of its content).
    DataNotFoundError
        A ``FileNotFoundError`` listing the files needed, their md5 and where to put them, when
        they are missing and cannot be downloaded (offline, ``download=False``, checksum
        mismatch) or are missing from an explicit ``data_dir`` / ``$BAYESBIN_DATA_DIR``.

    Examples
    --------
    >>> from bayesbin.data import load_mnist
    >>> x, y = load_mnist("test")  # doctest: +SKIP
    >>> x.shape, x.dtype.name, y.dtype.name  # doctest: +SKIP
    ((10000, 784), 'float32', 'int64')
    """
    return _load_xy("mnist", split, data_dir, as_frame, download)


def load_fashion_mnist(
    split: str = "train",
    *,
    data_dir: str | os.PathLike[str] | None = None,
    as_frame: bool = False,
    download: bool = True,
) -> tuple[Any, Any]:
    """Load the Fashion-MNIST clothing images as flat float images and integer labels.

    Files are looked up in ``data_dir``, then ``$BAYESBIN_DATA_DIR``, then ``shared/data`` and
    ``../shared/data`` beside the repository, then the user cache, then (``download=True``)
    downloaded into the cache with md5 verification; see :mod:`bayesbin.data`.

    Parameters
    ----------
    split : {"train", "test"}
        ``"train"`` (60,000 images) or ``"test"`` (10,000 images).
    data_dir : str or os.PathLike, optional
        Directory holding ``fashion-mnist/`` (or the files themselves). When given it is the only
        place searched, and missing files raise :class:`DataNotFoundError`.
    as_frame : bool, default False
        Return a ``pandas.DataFrame`` (columns ``"pixel0"`` .. ``"pixel783"``, float32) and a
        ``pandas.Series`` named ``"label"`` (int64) instead of arrays.
    download : bool, default True
        Download missing files into the user cache. Never used when the files are found.

    Returns
    -------
    x : ndarray of shape (n_samples, 784), float32
        Pixels in row-major 28x28 order, ``pixel / 255`` computed in float32, so in [0, 1].
    y : ndarray of shape (n_samples,), int64
        Labels 0..9: T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag,
        Ankle boot.

    Raises
    ------
    ValueError
        For a bad ``split``, or naming the file when a file found is corrupt (bad gzip, IDX
        structure, shape or md5 of its content).
    DataNotFoundError
        A ``FileNotFoundError`` listing the files needed, their md5 and where to put them, when
        they are missing and cannot be downloaded (offline, ``download=False``, checksum
        mismatch) or are missing from an explicit ``data_dir`` / ``$BAYESBIN_DATA_DIR``.

    Examples
    --------
    >>> from bayesbin.data import load_fashion_mnist
    >>> x, y = load_fashion_mnist("test")  # doctest: +SKIP
    >>> x.shape, x.dtype.name, y.dtype.name  # doctest: +SKIP
    ((10000, 784), 'float32', 'int64')
    """
    return _load_xy("fashion-mnist", split, data_dir, as_frame, download)


# --------------------------------------------------------------------------------------------
# MNIST56
# --------------------------------------------------------------------------------------------


def _check_threshold(threshold: Any) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
        raise TypeError(f"threshold must be a real number; got {type(threshold).__name__}")
    t = float(threshold)
    if not (0.0 <= t < 1.0):
        raise ValueError(f"threshold must lie in [0, 1); got {threshold!r}")
    return t


def _block_binarize(images: np.ndarray, threshold: float) -> np.ndarray:
    """5x5 block averages of uint8 (n, 28, 28) images in [0, 1], then ``> threshold``.

    The average of a block is ``block_sum / (255 * block_size)`` in float64 (exactly rounded from
    integers, so platform independent). Returns uint8 (n, 25) of 0/1, row-major over blocks.
    """
    edges = np.asarray(MNIST56_BLOCK_EDGES)
    starts = edges[:-1]
    sums = np.add.reduceat(images.astype(np.int64), starts, axis=1)
    sums = np.add.reduceat(sums, starts, axis=2)
    sizes = np.diff(edges)
    averages = sums.astype(np.float64) / (255.0 * np.outer(sizes, sizes))
    return (averages > threshold).astype(np.uint8).reshape(images.shape[0], -1)


def make_mnist56(
    data_dir: str | os.PathLike[str] | None = None,
    threshold: float = MNIST56_THRESHOLD,
    *,
    path: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> dict[str, np.ndarray]:
    """Build MNIST56 (digits 5 vs 6 as 5x5 binary images) from the MNIST IDX files.

    Each 28x28 image (pixels scaled to [0, 1]) is cut into 5x5 blocks with edges
    ``MNIST56_BLOCK_EDGES = (0, 6, 11, 17, 22, 28)`` on rows and columns; a 5x5 pixel is 1
    when its block average is ``> threshold`` (average computed in float64 as
    ``block_sum / (255 * block_size)``). Rows keep the original MNIST order, filtered to the
    digits 5 and 6; label 0 stands for a 5 and 1 for a 6.

    Parameters
    ----------
    data_dir : str or os.PathLike, optional
        Passed to :func:`load_mnist`'s lookup.
    threshold : float, default ``MNIST56_THRESHOLD`` (0.1)
        Block-average threshold in [0, 1).
    path : str or os.PathLike, optional
        When given, also write the compressed ``.npz`` that :func:`load_mnist56` reads
        (atomically; deterministic zip entries), as shipped in ``bayesbin/_data/mnist56.npz``.
    download : bool, default True
        Passed to the MNIST lookup.

    Returns
    -------
    dict of str to ndarray
        ``"x_train"`` (11339, 25) and ``"x_test"`` (1850, 25) float64 of 0./1.;
        ``"y_train"``, ``"y_test"`` int64 of 0/1; ``"train_index"``, ``"test_index"`` int64,
        the rows' positions in the original MNIST split. (For other thresholds the shapes are
        the same.)
    """
    t = _check_threshold(threshold)
    out: dict[str, np.ndarray] = {}
    for split in _SPLITS:
        images, labels = _load_raw("mnist", split, data_dir, download)
        index = np.flatnonzero(np.isin(labels, _MNIST56_DIGITS))
        out[f"x_{split}"] = _block_binarize(images[index], t).astype(np.float64)
        out[f"y_{split}"] = (labels[index] == _MNIST56_DIGITS[1]).astype(np.int64)
        out[f"{split}_index"] = index.astype(np.int64)
    if path is not None:
        _write_npz(_check_path(path), _mnist56_payload(out, t))
    return out


def _mnist56_payload(data: dict[str, np.ndarray], threshold: float) -> dict[str, np.ndarray]:
    payload: dict[str, np.ndarray] = {}
    for split in _SPLITS:
        bits = data[f"x_{split}"].astype(np.uint8)
        payload[f"x_{split}"] = np.packbits(bits, axis=1, bitorder="little")
        payload[f"y_{split}"] = data[f"y_{split}"].astype(np.uint8)
        payload[f"{split}_index"] = data[f"{split}_index"].astype(np.uint16)
    payload["n_features"] = np.array(25, dtype=np.int64)
    payload["threshold"] = np.array(threshold, dtype=np.float64)
    payload["block_edges"] = np.array(MNIST56_BLOCK_EDGES, dtype=np.int64)
    payload["description"] = np.array(
        "MNIST56: MNIST digits 5 (label 0) and 6 (label 1), rows in the original MNIST order "
        "filtered to those digits (train_index/test_index give their positions in the original "
        "split); 28x28 pixels / 255 averaged over 5x5 blocks with edges block_edges on rows and "
        "cols, pixel = 1 if the average > threshold; x_* are np.packbits(bits, axis=1, "
        "bitorder='little') of the (n, 25) row-major bits. Source: MNIST (CC BY-SA 3.0), "
        "train-images-idx3-ubyte.gz md5 f68b3c2dcbeaaa9fbdd348bbdeb94873, "
        "t10k-images-idx3-ubyte.gz md5 9fb629c4189551a2d022fa330f9573f3. "
        "Regenerate with scripts/make_mnist56.py."
    )
    return payload


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write a compressed ``.npz`` atomically with fixed zip timestamps (reproducible bytes)."""

    def write(fh: io.BufferedWriter) -> None:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
            for key in sorted(arrays):
                buf = io.BytesIO()
                np.lib.format.write_array(buf, np.asarray(arrays[key]), allow_pickle=False)
                info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, buf.getvalue(), compresslevel=9)

    _atomic_write(path, write)


def _mnist56_resource() -> Traversable:
    return importlib.resources.files("bayesbin").joinpath("_data", _MNIST56_FILE)


def load_mnist56(split: str = "train", *, as_frame: bool = False) -> tuple[Any, Any]:
    """Load MNIST56, the PyMC forum's toy: MNIST 5 vs 6 as 5x5 binary images (no download).

    Digits 5 and 6 of MNIST, rows in the original MNIST order filtered to those digits. Each
    28x28 image scaled to [0, 1] is averaged over 5x5 blocks with edges (0, 6, 11, 17, 22, 28)
    on rows and columns and binarized with ``average > MNIST56_THRESHOLD`` (0.1): pixel
    density 0.367 on the training rows, and float logistic regression on the 25 bits reaches
    0.94 test accuracy. Read from ``bayesbin/_data/mnist56.npz``, shipped in the package;
    :func:`make_mnist56` regenerates it.

    Parameters
    ----------
    split : {"train", "test"}
        ``"train"`` has 11,339 rows (5,421 fives, 5,918 sixes), ``"test"`` 1,850 (892, 958).
    as_frame : bool, default False
        Return a ``pandas.DataFrame`` (columns ``"pixel0"`` .. ``"pixel24"``, float64) and a
        ``pandas.Series`` named ``"label"`` (int64).

    Returns
    -------
    x : ndarray of shape (n_samples, 25), float64
        0. or 1., the 5x5 blocks in row-major order.
    y : ndarray of shape (n_samples,), int64
        0 for the digit 5, 1 for the digit 6.

    Examples
    --------
    >>> from bayesbin.data import load_mnist56
    >>> x, y = load_mnist56("test")
    >>> x.shape, int(y.sum())
    ((1850, 25), 958)
    """
    check_choice(split, "split", _SPLITS)
    as_frame = _check_flag(as_frame, "as_frame")
    with importlib.resources.as_file(_mnist56_resource()) as file, np.load(file) as npz:
        n_features = int(npz["n_features"])
        x = np.unpackbits(npz[f"x_{split}"], axis=1, count=n_features, bitorder="little")
        y = npz[f"y_{split}"]
    x = x.astype(np.float64)
    y = y.astype(np.int64)
    if as_frame:
        return _to_frame(x, y)
    return x, y
