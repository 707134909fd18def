"""Tests for bayesbin.data: IDX reading, lookup order, verified download, loaders, MNIST56."""

from __future__ import annotations

import gzip
import hashlib
import importlib.resources
import re
import shutil
import socket
import struct
import urllib.error
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayesbin import data
from bayesbin.data import (
    DATA_DIR_ENV_VAR,
    MNIST56_BLOCK_EDGES,
    MNIST56_THRESHOLD,
    DataNotFoundError,
    load_fashion_mnist,
    load_mnist,
    load_mnist56,
    make_mnist56,
    read_idx,
)

_REAL_FETCH = data._fetch_url


def _real_root(subdir: str) -> Path | None:
    """The shared data root (relative to the repo root) holding ``subdir``'s four files."""
    names = [s.name for pair in data._DATASETS[subdir].files.values() for s in pair]
    for root in data._shared_roots():
        if all((root / subdir / n).is_file() for n in names):
            return root
    return None


MNIST_ROOT = _real_root("mnist")
FASHION_ROOT = _real_root("fashion-mnist")
# skip without the files, fail instead under BAYESBIN_REQUIRE_DATA=1 (tests/conftest.py)
needs_mnist = pytest.mark.needs_data("mnist")
needs_fashion = pytest.mark.needs_data("fashion-mnist")

MNIST_COUNTS = {
    "train": [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
    "test": [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
}
FASHION_COUNTS = {"train": [6000] * 10, "test": [1000] * 10}


@pytest.fixture(autouse=True)
def _isolate(monkeypatch, tmp_path):
    """No env var, a private cache, and any download attempt fails the test loudly."""
    monkeypatch.delenv(DATA_DIR_ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))

    def no_network(url, timeout):
        raise AssertionError(f"test tried to download {url}")

    monkeypatch.setattr(data, "_fetch_url", no_network)


# --------------------------------------------------------------------------------------------
# helpers: IDX bytes and a tiny fake dataset
# --------------------------------------------------------------------------------------------

_CODES = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}


def idx_bytes(arr: np.ndarray) -> bytes:
    arr = np.asarray(arr)
    code = _CODES[arr.dtype.kind + str(arr.dtype.itemsize)]
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def gz(raw: bytes) -> bytes:
    return gzip.compress(raw, mtime=0)


class Fake:
    """A 2-split fake 'mnist' with 5 train and 3 test images, registered in data._DATASETS."""

    def __init__(self, tmp: Path):
        rng = np.random.default_rng(20240101)
        self.tmp = tmp
        self.arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.gz_blobs: dict[str, bytes] = {}
        self.raw_blobs: dict[str, bytes] = {}
        files = {}
        for split, prefix, n in (("train", "train", 5), ("test", "t10k", 3)):
            images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
            labels = rng.integers(0, 10, size=n, dtype=np.uint8)
            self.arrays[split] = (images, labels)
            specs = []
            for kind, arr in (("images-idx3", images), ("labels-idx1", labels)):
                name = f"{prefix}-{kind}-ubyte.gz"
                raw = idx_bytes(arr)
                self.raw_blobs[name] = raw
                self.gz_blobs[name] = gz(raw)
                specs.append(
                    data._IdxFile(
                        name,
                        hashlib.md5(self.gz_blobs[name]).hexdigest(),
                        hashlib.md5(raw).hexdigest(),
                        arr.shape,
                    )
                )
            files[split] = tuple(specs)
        self.ds = data._Dataset(
            title="MNIST",
            subdir="mnist",
            mirrors=("https://mirror-a.invalid/mnist/", "https://mirror-b.invalid/mnist/"),
            files=files,
            licence="test",
        )
        self.repo = tmp / "checkout" / "repo"
        self.shared1 = self.repo / "shared" / "data"
        self.shared2 = self.repo.parent / "shared" / "data"
        self.cache = tmp / "cache" / "bayesbin"
        self.explicit = tmp / "explicit"
        self.envdir = tmp / "envdir"

    def put(self, root: Path, split: str | None = None, *, flat=False, raw=False, only=None):
        target = root if flat else root / "mnist"
        target.mkdir(parents=True, exist_ok=True)
        for name in self.gz_blobs:
            if split is not None and not name.startswith("train" if split == "train" else "t10k"):
                continue
            if only is not None and only not in name:
                continue
            if raw:
                (target / name[:-3]).write_bytes(self.raw_blobs[name])
            else:
                (target / name).write_bytes(self.gz_blobs[name])

    def expected(self, split):
        images, labels = self.arrays[split]
        return images.reshape(len(images), -1).astype(np.float32) / np.float32(255), labels


@pytest.fixture
def fake(monkeypatch, tmp_path):
    f = Fake(tmp_path)
    monkeypatch.setitem(data._DATASETS, "mnist", f.ds)
    monkeypatch.setattr(data, "_repo_root", lambda: f.repo)
    monkeypatch.setattr(data, "_cache_root", lambda: f.cache)
    return f


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []


# --------------------------------------------------------------------------------------------
# read_idx
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["u1", "i1", ">i2", ">i4", ">f4", ">f8"])
@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 5), (0, 28, 28)])
@pytest.mark.parametrize("compressed", [True, False])
def test_read_idx_roundtrip(tmp_path, dtype, shape, compressed):
    rng = np.random.default_rng(1)
    arr = (rng.standard_normal(shape) * 100).astype(np.dtype(dtype).newbyteorder("="))
    raw = idx_bytes(arr)
    path = tmp_path / ("a.idx.gz" if compressed else "a.idx")
    path.write_bytes(gz(raw) if compressed else raw)
    out = read_idx(path)
    assert out.shape == shape
    assert out.dtype == arr.dtype and out.dtype.isnative
    assert out.flags.writeable
    np.testing.assert_array_equal(out, arr)
    assert read_idx(str(path)).shape == shape


GOOD = idx_bytes(np.arange(12, dtype=np.uint8).reshape(3, 4))
CORRUPT = {
    "bad_magic_first_bytes": (b"\x01\x00" + GOOD[2:], False, "magic"),
    "unknown_type_code": (b"\x00\x00\x0a" + GOOD[3:], False, "magic"),
    "zero_dims": (b"\x00\x00\x08\x00", False, "magic"),
    "too_short": (b"\x00\x00", False, "too short"),
    "truncated_header": (GOOD[:9], False, "truncated IDX header"),
    "truncated_payload": (GOOD[:-1], False, "truncated"),
    "trailing_garbage": (GOOD + b"\x00", False, "trailing"),
    "wrong_dims": (GOOD[:4] + struct.pack(">2I", 4, 4) + GOOD[12:], False, "needs exactly"),
    "gz_not_gzip": (GOOD, True, "not a valid gzip"),
    "gz_truncated_stream": (gz(GOOD)[:-10], True, "not a valid gzip"),
    "gz_trailing_garbage": (gz(GOOD) + b"garbage!", True, "not a valid gzip"),
    "gz_of_truncated_idx": (gz(GOOD[:-3]), True, "truncated"),
}


@pytest.mark.parametrize("case", sorted(CORRUPT))
def test_read_idx_corrupt_names_file(tmp_path, case):
    blob, compressed, what = CORRUPT[case]
    path = tmp_path / (f"{case}.gz" if compressed else case)
    path.write_bytes(blob)
    with pytest.raises(ValueError, match=re.escape(str(path))) as info:
        read_idx(path)
    assert what in str(info.value)


def test_read_idx_hints_at_gzip_content(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(gz(GOOD))
    with pytest.raises(ValueError, match="looks gzip-compressed"):
        read_idx(path)


def test_read_idx_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "missing.gz")
    with pytest.raises(TypeError, match="path"):
        read_idx(123)


# --------------------------------------------------------------------------------------------
# lookup order
# --------------------------------------------------------------------------------------------


def resolved(fake, data_dir=None, download=False, split="train"):
    return data._resolve_split_files(fake.ds, split, data_dir, download)


def test_lookup_order(fake, monkeypatch):
    for root in (fake.explicit, fake.envdir, fake.shared1, fake.shared2, fake.cache):
        fake.put(root)
    monkeypatch.setenv(DATA_DIR_ENV_VAR, str(fake.envdir))
    names = [s.name for s in fake.ds.files["train"]]

    assert resolved(fake, fake.explicit) == [fake.explicit / "mnist" / n for n in names]
    assert resolved(fake) == [fake.envdir / "mnist" / n for n in names]
    monkeypatch.setenv(DATA_DIR_ENV_VAR, "")  # empty counts as unset
    assert resolved(fake) == [fake.shared1 / "mnist" / n for n in names]
    shutil.rmtree(fake.shared1)
    assert resolved(fake) == [fake.shared2 / "mnist" / n for n in names]
    shutil.rmtree(fake.shared2)
    assert resolved(fake) == [fake.cache / "mnist" / n for n in names]
    x, y = load_mnist("train", download=False)
    ex, ey = fake.expected("train")
    np.testing.assert_array_equal(x, ex)
    np.testing.assert_array_equal(y, ey)
    shutil.rmtree(fake.cache)
    with pytest.raises(DataNotFoundError):
        resolved(fake)


def test_repo_relative_roots_and_cache_root(monkeypatch, tmp_path):
    monkeypatch.setattr(data, "_repo_root", lambda: tmp_path / "a" / "repo")
    assert data._shared_roots() == [
        tmp_path / "a" / "repo" / "shared" / "data",
        tmp_path / "a" / "shared" / "data",
    ]
    assert (Path(data.__file__).parent.parent / "bayesbin").is_dir()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data._cache_root() == tmp_path / "xdg" / "bayesbin"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for value in ("", "relative/dir"):  # unset-equivalent and non-absolute are ignored
        monkeypatch.setenv("XDG_CACHE_HOME", value)
        assert data._cache_root() == tmp_path / "home" / ".cache" / "bayesbin"


def test_uncompressed_and_flat_layout_in_explicit_dir(fake):
    fake.put(fake.explicit, flat=True, raw=True)
    fake.put(fake.shared1)  # must not be used
    x, y = load_mnist("test", data_dir=fake.explicit, download=False)
    ex, ey = fake.expected("test")
    np.testing.assert_array_equal(x, ex)
    np.testing.assert_array_equal(y, ey)
    assert resolved(fake, fake.explicit, split="test")[0] == (
        fake.explicit / "t10k-images-idx3-ubyte"
    )


@pytest.mark.parametrize("how", ["data_dir", "env"])
def test_explicit_dir_is_authoritative(fake, monkeypatch, how):
    fake.put(fake.shared1)
    fake.put(fake.cache)
    fake.put(fake.explicit, only="images")  # labels missing
    kwargs = {}
    if how == "data_dir":
        kwargs["data_dir"] = fake.explicit
    else:
        monkeypatch.setenv(DATA_DIR_ENV_VAR, str(fake.explicit))
    calls = []
    monkeypatch.setattr(data, "_fetch_url", lambda url, timeout: calls.append(url))
    with pytest.raises(DataNotFoundError) as info:
        load_mnist("train", download=True, **kwargs)
    msg = str(info.value)
    assert "train-labels-idx1-ubyte.gz not found" in msg
    assert "train-images-idx3-ubyte.gz not found" not in msg
    assert str(fake.explicit) in msg
    assert ("data_dir" if how == "data_dir" else DATA_DIR_ENV_VAR) in msg
    assert calls == []
    assert isinstance(info.value, FileNotFoundError)


def test_env_var_missing_directory(fake, monkeypatch):
    fake.put(fake.shared1)
    monkeypatch.setenv(DATA_DIR_ENV_VAR, str(fake.tmp / "does-not-exist"))
    with pytest.raises(DataNotFoundError, match="does-not-exist"):
        load_mnist("test")


def test_files_may_come_from_different_implicit_roots(fake):
    fake.put(fake.shared2, "test", only="images")
    fake.put(fake.cache, "test", only="labels")
    paths = resolved(fake, split="test")
    assert paths[0].is_relative_to(fake.shared2) and paths[1].is_relative_to(fake.cache)
    assert load_mnist("test", download=False)[0].shape == (3, 784)


# --------------------------------------------------------------------------------------------
# local files are verified
# --------------------------------------------------------------------------------------------


def test_corrupt_local_file_raises_not_falls_through(fake):
    fake.put(fake.shared1)
    fake.put(fake.cache)  # a good copy further down must not be used silently
    bad = fake.shared1 / "mnist" / "train-images-idx3-ubyte.gz"
    bad.write_bytes(b"this is not gzip")
    with pytest.raises(ValueError, match=re.escape(str(bad))):
        load_mnist("train", download=False)


def test_wrong_content_same_structure_fails_md5(fake):
    fake.put(fake.shared1)
    path = fake.shared1 / "mnist" / "train-images-idx3-ubyte.gz"
    images = fake.arrays["train"][0].copy()
    images[0, 0, 0] ^= 1
    path.write_bytes(gz(idx_bytes(images)))
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*md5"):
        load_mnist("train", download=False)


def test_wrong_shape_is_reported(fake):
    fake.put(fake.shared1)
    path = fake.shared1 / "mnist" / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gz(idx_bytes(np.zeros(4, dtype=np.uint8))))
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*shape"):
        load_mnist("test", download=False)


def test_verification_cache_is_invalidated_by_changes(fake):
    import os

    fake.put(fake.shared1)
    load_mnist("test", download=False)
    path = fake.shared1 / "mnist" / "t10k-images-idx3-ubyte.gz"
    st = path.stat()
    assert any(k[0] == str(path.resolve()) for k in data._VERIFIED)
    images = fake.arrays["test"][0].copy()
    images[-1, -1, -1] ^= 0xFF
    path.write_bytes(gz(idx_bytes(images)))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.raises(ValueError, match="md5"):
        load_mnist("test", download=False)


# --------------------------------------------------------------------------------------------
# download (monkeypatched fetcher; never the network)
# --------------------------------------------------------------------------------------------


def serve(fake, calls, *, bad_mirrors=(), fail_mirrors=()):
    def fetch(url, timeout):
        calls.append(url)
        assert timeout > 0
        base, name = url.rsplit("/", 1)
        if any(url.startswith(m) for m in fail_mirrors):
            raise urllib.error.URLError("Temporary failure in name resolution")
        blob = fake.gz_blobs[name]
        if any(url.startswith(m) for m in bad_mirrors):
            blob = blob[:-1] + bytes([blob[-1] ^ 1])
        return blob

    return fetch


def test_download_good_bytes_cached_and_verified(fake, monkeypatch):
    calls = []
    monkeypatch.setattr(data, "_fetch_url", serve(fake, calls))
    x, y = load_mnist("train")
    ex, ey = fake.expected("train")
    np.testing.assert_array_equal(x, ex)
    np.testing.assert_array_equal(y, ey)
    names = [s.name for s in fake.ds.files["train"]]
    assert calls == [fake.ds.mirrors[0] + n for n in names]
    assert files_under(fake.cache) == sorted(fake.cache / "mnist" / n for n in names)
    for spec in fake.ds.files["train"]:
        assert hashlib.md5((fake.cache / "mnist" / spec.name).read_bytes()).hexdigest() == (
            spec.gz_md5
        )
    load_mnist("train")  # now served from the cache
    assert len(calls) == 2


def test_download_falls_back_to_second_mirror(fake, monkeypatch):
    calls = []
    a, b = fake.ds.mirrors
    monkeypatch.setattr(data, "_fetch_url", serve(fake, calls, bad_mirrors=(a,)))
    load_mnist("test")
    assert calls == [
        a + "t10k-images-idx3-ubyte.gz",
        b + "t10k-images-idx3-ubyte.gz",
        a + "t10k-labels-idx1-ubyte.gz",
        b + "t10k-labels-idx1-ubyte.gz",
    ]
    assert len(files_under(fake.cache)) == 2


def test_download_bad_md5_leaves_nothing(fake, monkeypatch):
    calls = []
    monkeypatch.setattr(data, "_fetch_url", serve(fake, calls, bad_mirrors=fake.ds.mirrors))
    with pytest.raises(DataNotFoundError) as info:
        load_mnist("train")
    msg = str(info.value)
    assert "md5 mismatch" in msg and "train-images-idx3-ubyte.gz" in msg
    assert files_under(fake.cache) == []
    assert len(calls) == 2  # both mirrors tried for the first file, then gave up


def test_offline_error_lists_files_md5_and_places(fake, monkeypatch):
    calls = []
    monkeypatch.setattr(data, "_fetch_url", serve(fake, calls, fail_mirrors=fake.ds.mirrors))
    with pytest.raises(DataNotFoundError) as info:
        load_mnist("test")
    msg = str(info.value)
    for spec in fake.ds.files["test"]:
        assert spec.name in msg and spec.gz_md5 in msg
    assert DATA_DIR_ENV_VAR in msg
    assert str(fake.cache / "mnist") in msg
    assert "name resolution" in msg
    assert files_under(fake.cache) == []


def test_download_disabled_error(fake):
    with pytest.raises(DataNotFoundError) as info:
        load_mnist("train", download=False)  # the autouse fetcher fails the test if called
    msg = str(info.value)
    assert "download=False" in msg
    for spec in fake.ds.files["train"]:
        assert spec.name in msg and spec.gz_md5 in msg
    for root in (fake.shared1, fake.shared2, fake.cache):
        assert str(root / "mnist") in msg


def test_failed_write_leaves_no_temp_file(fake, monkeypatch):
    monkeypatch.setattr(data, "_fetch_url", serve(fake, []))

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(data.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        load_mnist("test")
    assert files_under(fake.cache) == []


# --------------------------------------------------------------------------------------------
# argument checks and as_frame
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("loader", [load_mnist, load_fashion_mnist, load_mnist56])
def test_split_is_validated(loader):
    for bad in ("val", "TRAIN", None, 1):
        with pytest.raises(ValueError, match="split"):
            loader(bad)


def test_other_arguments_are_validated(fake):
    fake.put(fake.shared1)
    with pytest.raises(TypeError, match="data_dir"):
        load_mnist("test", data_dir=3)
    with pytest.raises(TypeError, match="as_frame"):
        load_mnist("test", as_frame="yes")
    with pytest.raises(TypeError, match="download"):
        load_mnist("test", download="no")
    with pytest.raises(TypeError, match="as_frame"):
        load_mnist56("test", as_frame=1)


def test_as_frame(fake):
    fake.put(fake.shared1)
    x, y = load_mnist("test", download=False)
    df, s = load_mnist("test", as_frame=True, download=False)
    assert isinstance(df, pd.DataFrame) and isinstance(s, pd.Series)
    assert list(df.columns) == [f"pixel{j}" for j in range(784)]
    assert (df.dtypes == np.float32).all()
    assert s.name == "label" and s.dtype == np.int64
    np.testing.assert_array_equal(df.to_numpy(), x)
    np.testing.assert_array_equal(s.to_numpy(), y)


# --------------------------------------------------------------------------------------------
# real files (skipped when shared/data is absent)
# --------------------------------------------------------------------------------------------


def _source_md5(root: Path, subdir: str) -> dict[str, str]:
    text = (root / subdir / "SOURCE.md").read_text()
    return dict(re.findall(r"(\S+\.gz) ([0-9a-f]{32})", text))


@pytest.mark.parametrize(
    ("subdir", "root"),
    [
        pytest.param("mnist", MNIST_ROOT, marks=needs_mnist),
        pytest.param("fashion-mnist", FASHION_ROOT, marks=needs_fashion),
    ],
)
def test_real_md5_match_registry_and_source(subdir, root):
    specs = [s for pair in data._DATASETS[subdir].files.values() for s in pair]
    source = _source_md5(root, subdir)
    assert source == {s.name: s.gz_md5 for s in specs}
    for spec in specs:
        blob = (root / subdir / spec.name).read_bytes()
        assert hashlib.md5(blob).hexdigest() == spec.gz_md5
        assert hashlib.md5(gzip.decompress(blob)).hexdigest() == spec.idx_md5


@pytest.mark.parametrize("split", ["train", "test"])
@pytest.mark.parametrize(
    ("loader", "root", "counts"),
    [
        pytest.param(load_mnist, MNIST_ROOT, MNIST_COUNTS, marks=needs_mnist, id="mnist"),
        pytest.param(
            load_fashion_mnist, FASHION_ROOT, FASHION_COUNTS, marks=needs_fashion, id="fashion"
        ),
    ],
)
def test_real_shapes_dtypes_counts(loader, root, counts, split):
    x, y = loader(split, data_dir=root, download=False)
    n = 60000 if split == "train" else 10000
    assert x.shape == (n, 784) and x.dtype == np.float32 and x.flags.c_contiguous
    assert y.shape == (n,) and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0
    assert np.bincount(y, minlength=10).tolist() == counts[split]


@needs_mnist
def test_real_scaling_is_pixel_over_255():
    x, _ = load_mnist("test", download=False)  # found through the repo-relative lookup
    raw = read_idx(MNIST_ROOT / "mnist" / "t10k-images-idx3-ubyte.gz")
    assert raw.shape == (10000, 28, 28) and raw.dtype == np.uint8
    np.testing.assert_array_equal(x, raw.reshape(10000, 784).astype(np.float32) / 255)


@needs_mnist
def test_real_as_frame():
    df, s = load_mnist("test", as_frame=True, download=False)
    assert df.shape == (10000, 784) and list(df.columns[[0, -1]]) == ["pixel0", "pixel783"]
    assert s.name == "label" and len(s) == 10000


@needs_mnist
@needs_fashion
def test_loaders_never_touch_the_network(monkeypatch):
    class NetworkUsed(Exception):
        pass

    def blocked(*args, **kwargs):
        raise NetworkUsed("socket use attempted")

    monkeypatch.setattr(data, "_fetch_url", _REAL_FETCH)
    monkeypatch.setattr(socket, "socket", blocked)
    monkeypatch.setattr(socket, "create_connection", blocked)
    monkeypatch.setattr(socket, "getaddrinfo", blocked)
    with pytest.raises(NetworkUsed):  # the block works: the real fetcher is stopped
        data._fetch_url("http://bayesbin.invalid/x.gz", 1.0)
    assert load_mnist("train")[0].shape == (60000, 784)
    assert load_mnist("test", as_frame=True)[0].shape == (10000, 784)
    assert load_fashion_mnist("test")[0].shape == (10000, 784)
    assert load_mnist56("train")[0].shape == (11339, 25)


# --------------------------------------------------------------------------------------------
# MNIST56
# --------------------------------------------------------------------------------------------


def test_mnist56_shapes_counts_values():
    for split, n, sixes in (("train", 11339, 5918), ("test", 1850, 958)):
        x, y = load_mnist56(split)
        assert x.shape == (n, 25) and x.dtype == np.float64
        assert y.shape == (n,) and y.dtype == np.int64
        assert set(np.unique(x)) == {0.0, 1.0}
        assert set(np.unique(y)) == {0, 1}
        assert int(y.sum()) == sixes  # 1 <-> digit 6
    x, _ = load_mnist56("train")
    assert abs(x.mean() - 0.367) < 5e-4  # FIELD.md: density 0.367 at threshold 0.1


def test_mnist56_as_frame():
    x, y = load_mnist56("test")
    df, s = load_mnist56("test", as_frame=True)
    assert list(df.columns) == [f"pixel{j}" for j in range(25)]
    assert (df.dtypes == np.float64).all() and s.name == "label" and s.dtype == np.int64
    np.testing.assert_array_equal(df.to_numpy(), x)
    np.testing.assert_array_equal(s.to_numpy(), y)


def test_mnist56_shipped_metadata():
    with data._mnist56_resource().open("rb") as fh, np.load(fh) as npz:
        assert float(npz["threshold"]) == MNIST56_THRESHOLD
        assert tuple(npz["block_edges"]) == MNIST56_BLOCK_EDGES
        assert int(npz["n_features"]) == 25
        for split in ("train", "test"):
            index = npz[f"{split}_index"].astype(np.int64)
            assert np.all(np.diff(index) > 0)  # original MNIST order
            assert len(index) == len(npz[f"y_{split}"])
        assert "original MNIST order" in str(npz["description"])
    with importlib.resources.as_file(data._mnist56_resource()) as path:
        assert path.stat().st_size < 100_000  # small enough to ship in the package


def test_mnist56_logistic_regression_accuracy():
    from sklearn.linear_model import LogisticRegression

    x, y = load_mnist56("train")
    xt, yt = load_mnist56("test")
    acc = LogisticRegression(max_iter=2000).fit(x, y).score(xt, yt)
    assert 0.93 <= acc <= 0.95, acc  # FIELD.md: 0.941 with threshold 0.1


def _reference_blocks(images, threshold):
    edges = MNIST56_BLOCK_EDGES
    out = np.zeros((len(images), 25), dtype=np.uint8)
    for i, img in enumerate(images):
        for r in range(5):
            for c in range(5):
                block = img[edges[r] : edges[r + 1], edges[c] : edges[c + 1]].astype(int)
                out[i, 5 * r + c] = block.sum() / (255.0 * block.size) > threshold
    return out


def test_block_binarize_matches_loops_and_threshold_is_strict():
    rng = np.random.default_rng(5)
    images = (rng.random((20, 28, 28)) < 0.15).astype(np.uint8) * rng.integers(
        0, 256, size=(20, 28, 28), dtype=np.uint8
    )
    for t in (0.0, 0.05, 0.1, 0.5):
        np.testing.assert_array_equal(data._block_binarize(images, t), _reference_blocks(images, t))
    img = np.zeros((1, 28, 28), dtype=np.uint8)
    img[0, 0, 6:9] = 255  # block (0, 1): 6 x 5 = 30 pixels, 3 * 255 / (255 * 30) == 0.1
    assert data._block_binarize(img, 0.1)[0, 1] == 0
    img[0, 1, 6] = 1
    assert data._block_binarize(img, 0.1)[0, 1] == 1
    assert data._block_binarize(img, 0.1).sum() == 1


def test_make_mnist56_validates_threshold():
    with pytest.raises(ValueError, match="threshold"):
        make_mnist56(threshold=1.5)
    with pytest.raises(TypeError, match="threshold"):
        make_mnist56(threshold="0.1")


@needs_mnist
def test_make_mnist56_reproduces_shipped_file(tmp_path):
    out = tmp_path / "mnist56.npz"
    made = make_mnist56(MNIST_ROOT, path=out, download=False)
    with np.load(out) as new, data._mnist56_resource().open("rb") as fh, np.load(fh) as old:
        assert sorted(new.files) == sorted(old.files)
        for key in old.files:
            assert new[key].dtype == old[key].dtype, key
            np.testing.assert_array_equal(new[key], old[key], err_msg=key)
    for split in ("train", "test"):
        x, y = load_mnist56(split)
        np.testing.assert_array_equal(made[f"x_{split}"], x)
        np.testing.assert_array_equal(made[f"y_{split}"], y)
        _, labels = load_mnist(split, data_dir=MNIST_ROOT, download=False)
        index = made[f"{split}_index"]
        np.testing.assert_array_equal(labels[index], np.where(y == 1, 6, 5))
        assert np.isin(labels, (5, 6)).sum() == len(index)
    assert [p.name for p in tmp_path.iterdir()] == ["mnist56.npz"]  # no temp file left


# --------------------------------------------------------------------------------------------
# bounded reads: hostile files are refused before the memory is spent
# --------------------------------------------------------------------------------------------


def _bomb(tmp_path, claim: tuple, payload_bytes: int, extra: int = 0) -> Path:
    """A gzip whose IDX header claims ``claim`` (uint8) and which expands to payload + extra."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    header = b"\x00\x00\x08" + bytes([len(claim)]) + struct.pack(f">{len(claim)}I", *claim)
    parts = [comp.compress(header)]
    zeros = b"\x00" * (1 << 20)
    left = payload_bytes + extra
    while left > 0:
        parts.append(comp.compress(zeros[: min(left, len(zeros))]))
        left -= len(zeros)
    parts.append(comp.flush())
    path = tmp_path / "bomb-idx3-ubyte.gz"
    path.write_bytes(b"".join(parts))
    return path


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def test_a_gzip_bomb_is_stopped_at_the_size_its_header_announces(tmp_path):
    # a 1 MiB-ish gzip that expands to 1 GiB of zeros behind a header claiming 1,000 bytes
    path = _bomb(tmp_path, (10, 100), 1000, extra=(1 << 30))
    assert path.stat().st_size < (2 << 20)
    before = _peak_rss_mb()
    with pytest.raises(ValueError, match="more than the 1,012 bytes its IDX header announces"):
        read_idx(path)
    assert _peak_rss_mb() - before < 200  # never near the 1 GiB it would expand to


def test_a_header_claiming_a_huge_array_is_refused_before_reading(tmp_path):
    path = _bomb(tmp_path, (60000, 28, 28000), 16)  # claims 47 GB, holds nothing
    with pytest.raises(ValueError, match="announces shape \\(60000, 28, 28000\\), 47,040,000,016 bytes"):
        read_idx(path)
    with pytest.raises(ValueError, match="max_bytes"):
        read_idx(_bomb(tmp_path, (100,), 100), max_bytes=50)
    with pytest.raises(ValueError, match="max_bytes must be"):
        read_idx(path, max_bytes=-1)
    raw = tmp_path / "huge-idx1-ubyte"
    raw.write_bytes(b"\x00\x00\x08\x01" + struct.pack(">I", 2**31))
    with pytest.raises(ValueError, match="announces"):
        read_idx(raw)


def test_a_raw_idx_with_trailing_gigabytes_is_refused_from_its_size(tmp_path):
    path = tmp_path / "sparse-idx1-ubyte"
    with open(path, "wb") as fh:
        fh.write(b"\x00\x00\x08\x01" + struct.pack(">I", 4) + b"abcd")
        fh.truncate(1 << 30)  # a sparse 1 GiB file: its size, not its bytes, tells
    with pytest.raises(ValueError, match="trailing bytes"):
        read_idx(path)


def test_dataset_files_are_bounded_by_the_dataset_shape(fake, tmp_path):
    """A file in the MNIST slot that claims more than the split's shape is refused early."""
    target = fake.shared1 / "mnist"
    target.mkdir(parents=True)
    spec = fake.ds.files["test"][0]
    bomb = _bomb(tmp_path, (spec.shape[0] * 1000, *spec.shape[1:]), 0)
    (target / spec.name).write_bytes(bomb.read_bytes())
    fake.put(fake.shared1, "test", only="labels")
    with pytest.raises(ValueError, match="announces"):
        load_mnist("test", download=False)
