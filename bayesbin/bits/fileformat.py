r"""The ``.bbits`` file format: a checksummed container with a JSON header and a table of layers.

Container (both versions). An 8-byte magic ``b"\x89BAYBIT\n"``, uint32 format version,
uint32 flags (0, or ``FLAG_INPUT_STEP`` = 1 for a network with a binarize input step, so that
older readers refuse it), uint64 header length (all little-endian), the UTF-8 JSON header, the raw
little-endian arrays listed in the header's ``arrays`` table (``name``, ``dtype``, ``shape``,
``offset`` into the payload, ``nbytes``), then the SHA-256 of every preceding byte.

Version 1 (written by bayesbin before the layer seam; still read): a linear classifier or
ensemble with fixed arrays ``weights`` (uint64 (S, R, n_words)), ``scale`` (float64 (S,)) and
``bias`` (float64 (S, K) or (S,)) and the header fields ``kind``, ``form``,
``weight_encoding``, ``n_features``, ``n_words``, ``n_rows``, ``n_draws``, ``n_classes``,
``classes``, ``classes_dtype``, ``inputs``, ``binarize_threshold``, ``input_encoding``,
``metadata``.

Version 2 (written now). Header fields: ``format`` ("bayesbin.bits"), ``bit_order``,
``byte_order``, ``model`` ("linear" or "network"), ``kind`` ("classifier" or "ensemble"),
``n_members`` (S), ``classes``, ``classes_dtype``, ``input`` (linear: ``n_features``,
``inputs``, ``binarize_threshold``, ``input_encoding``; network: ``shape`` and
``binarize_threshold``, the threshold ``t`` of the network's input step, +1 where ``x > t``,
else -1, or null for none; files written before that field existed lack it and load as
null), ``layers`` (the table of layers, below), ``metadata`` and ``arrays``. Arrays start at
multiples of 8 bytes (zero padding between them) and are named ``layers.<i>.<field>``; every
one has the members axis S first.

Each ``layers`` entry has ``kind`` ("dense" or "conv2d"), ``in_shape`` ((D,) or (H, W, C)),
``n_out``, ``out_shape``, ``weights`` (packed uint64: dense (S, n_out, n_in_words) with an
image input packed pixel by pixel, ``ceil(C / 64)`` words each, in NHWC order; conv2d
(S, O, 3, 3, ceil(C / 64))), ``pool`` (null or ``{"size": s, "on": "scores" | "bits"}``) and
``output``, one of

* ``{"kind": "affine", "form", "scale", "bias"}``: the linear models' head (arrays (S,) and
  (S, K) or (S,)); linear layers also record ``weight_encoding``;
* ``{"kind": "threshold", "thresholds", "flips"}``: a hidden layer on ±1 inputs (int64 and
  uint8 arrays (S, n_out));
* ``{"kind": "batchnorm_sign", "gamma", "beta", "mean", "var", "eps"}``: a first layer on real
  inputs (float64 (S, n_out), eps (S,)); its thresholds depend on the input's divisor and are
  derived when the file is read (for ±1 inputs, those of a binarized network included, with
  divisor 1);
* ``{"kind": "batchnorm", ...}`` (same fields): a network's head, the logits.

Reading is bounded: the file size is checked before anything is read; the header length is
checked against the file size (and at most 16 MiB) and its JSON nesting depth against a small
limit before it is parsed; every shape in the header is checked to chain from layer to layer
and the array table must account for the file's exact size before the payload is read and
checksummed. Truncated, corrupted or inconsistent files raise ``ValueError``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
from pathlib import Path

import numpy as np

from bayesbin._io import atomic_write
from bayesbin._validation import check_choice
from bayesbin.bits.packing import BIT_ORDER

__all__ = [
    "FLAG_INPUT_STEP",
    "FORMAT_VERSION",
    "linear_fields",
    "network_fields",
    "read_file",
    "save_linear",
    "save_network",
    "write_text",
]

FORMAT_VERSION = 2
FLAG_INPUT_STEP = 1
"""Container flag of a network with an input step (``binarize_threshold`` set): readers from
before the step existed refuse such a file ("unknown flags") instead of running the network on
real inputs."""
_MAGIC = b"\x89BAYBIT\n"
_PREFIX = struct.Struct("<8sIIQ")  # magic, version, flags, header length
_DIGEST = 32
_MAX_HEADER = 16 * 2**20
_MAX_DEPTH = 32
_MAX_DIM = 2**40
_FORMS = ("softmax", "single", "two_output")
_INPUTS = ("exact", "binarize")
_ENCODINGS = ("01", "pm1")
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------


def write_text(path, text: str) -> None:
    """Write a text file atomically (temporary file + ``os.replace``)."""
    data = text.encode("utf-8")
    atomic_write(path, lambda fh: fh.write(data))


def _jsonable_classes(classes: np.ndarray) -> tuple[list, str]:
    if classes.dtype.kind in "iub":
        return [
            int(c) if classes.dtype.kind != "b" else bool(c) for c in classes
        ], classes.dtype.str
    if classes.dtype.kind == "f":
        if not np.all(np.isfinite(classes)):
            raise ValueError("classes must be finite to be saved")
        return [float(c) for c in classes], classes.dtype.str
    if classes.dtype.kind == "U" or (
        classes.dtype == object and all(isinstance(c, str) for c in classes)
    ):
        return [str(c) for c in classes], "str"
    raise TypeError(
        f"classes of dtype {classes.dtype} cannot be saved; use ints, floats, bools or strings"
    )


def _write(path, header: dict, arrays: list[tuple[str, np.ndarray]], flags: int = 0) -> None:
    """Encode ``header`` plus ``arrays`` as a version-2 container and write it atomically."""
    table, chunks, offset = [], [], 0
    for name, arr in arrays:
        arr = np.ascontiguousarray(arr)
        arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
        table.append(
            {
                "name": name,
                "dtype": arr.dtype.str,
                "shape": list(arr.shape),
                "offset": offset,
                "nbytes": int(arr.nbytes),
            }
        )
        pad = -arr.nbytes % 8
        chunks += [arr.tobytes(), b"\x00" * pad]
        offset += arr.nbytes + pad
    header = {**header, "arrays": table}
    try:
        blob = json.dumps(header, sort_keys=True, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise TypeError(f"metadata must be JSON-serialisable: {exc}") from exc
    body = b"".join([_PREFIX.pack(_MAGIC, FORMAT_VERSION, flags, len(blob)), blob, *chunks])
    data = body + hashlib.sha256(body).digest()
    atomic_write(path, lambda fh: fh.write(data))


def _common_header(model, kind: str, n_members: int) -> dict:
    classes, classes_dtype = _jsonable_classes(model.classes_)
    return {
        "format": "bayesbin.bits",
        "bit_order": BIT_ORDER,
        "byte_order": "little",
        "model": kind,
        "n_members": int(n_members),
        "classes": classes,
        "classes_dtype": classes_dtype,
        "metadata": model.metadata,
    }


def save_linear(model, path) -> None:
    """Write a :class:`~bayesbin.bits.PackedClassifier` or ``PackedEnsemble`` (version 2).

    Parameters
    ----------
    model : PackedClassifier or PackedEnsemble
    path : str or os.PathLike
    """
    header = _common_header(model, "linear", model.n_draws)
    header["kind"] = "ensemble" if model._ensemble else "classifier"
    header["input"] = {
        "n_features": model.n_features,
        "inputs": model.inputs,
        "binarize_threshold": float(model.binarize_threshold),
        "input_encoding": model.input_encoding,
    }
    header["layers"] = [
        {
            "kind": "dense",
            "in_shape": [model.n_features],
            "n_out": model.n_rows,
            "out_shape": [model.n_rows],
            "pool": None,
            "weight_encoding": model.weight_encoding,
            "weights": "layers.0.weights",
            "output": {
                "kind": "affine",
                "form": model.form,
                "scale": "layers.0.scale",
                "bias": "layers.0.bias",
            },
        }
    ]
    _write(
        path,
        header,
        [
            ("layers.0.weights", model._w.astype("<u8")),
            ("layers.0.scale", model._scale.astype("<f8")),
            ("layers.0.bias", model._bias.astype("<f8")),
        ],
    )


def save_network(net, path) -> None:
    """Write a :class:`~bayesbin.bits.PackedNetwork` (version 2).

    Parameters
    ----------
    net : PackedNetwork
    path : str or os.PathLike
    """
    header = _common_header(net, "network", net.n_members)
    header["kind"] = "ensemble" if net.n_members > 1 else "classifier"
    header["input"] = {
        "shape": list(net.input_shape),
        "binarize_threshold": net.input_threshold,  # None: no input step
    }
    entries, arrays = [], []
    for i, layer in enumerate(net.layers):
        entry, named = layer.table_entry(f"layers.{i}")
        entries.append(entry)
        arrays += named
    header["layers"] = entries
    _write(path, header, arrays, flags=0 if net.input_threshold is None else FLAG_INPUT_STEP)


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------


def _need(header: dict, key: str, kind):
    if not isinstance(header, dict) or key not in header:
        raise ValueError(f"bayesbin bits file header lacks {key!r}")
    value = header[key]
    if kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        ok = ok and bool(np.isfinite(value))
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise ValueError(f"bayesbin bits file header field {key!r} has the wrong type")
    return value


def _dims(value, name: str, ndim=None) -> tuple[int, ...]:
    """A shape from the header: a list of ints in [1, 2**40)."""
    if not isinstance(value, list) or (ndim is not None and len(value) not in ndim):
        raise ValueError(f"bayesbin bits file header field {name!r} is not a valid shape")
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v < _MAX_DIM:
            raise ValueError(f"bayesbin bits file header field {name!r} is not a valid shape")
    return tuple(value)


def _classes_from_json(values, dtype: str) -> np.ndarray:
    if not isinstance(values, list):
        raise ValueError("classes must be a JSON list")
    if dtype == "str":
        if not all(isinstance(v, str) for v in values):
            raise ValueError("classes marked 'str' must be strings")
        return np.asarray(values, dtype=str)
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise ValueError(f"unknown classes dtype {dtype!r}") from exc
    if dt.kind not in "iubf":
        raise ValueError(f"unsupported classes dtype {dtype!r}")
    if not all(isinstance(v, int | float | bool) for v in values):
        raise ValueError("classes must be numbers for a numeric classes dtype")
    return np.asarray(values, dtype=dt)


def _json_depth(blob: bytes) -> int:
    """Deepest nesting of ``[`` / ``{`` in a JSON text (strings skipped)."""
    bare = np.frombuffer(_STRING.sub(b'""', blob), dtype=np.uint8)
    step = np.zeros(bare.shape, dtype=np.int64)
    step[(bare == ord("[")) | (bare == ord("{"))] = 1
    step[(bare == ord("]")) | (bare == ord("}"))] = -1
    return int(np.cumsum(step).max(initial=0))


def _read_exact(fh, n: int) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise ValueError("truncated (the file changed while it was read)")
    return data


class _Payload:
    """Arrays of the payload, checked against the sizes the header implies."""

    def __init__(self, table, expected: dict, align: int):
        self.entries = {}
        if not isinstance(table, list) or len(table) != len(expected):
            raise ValueError(f"the arrays table must list exactly {list(expected)}")
        offset = 0
        for entry, (name, (dtype, shape)) in zip(table, expected.items(), strict=True):
            if not isinstance(entry, dict) or entry.get("name") != name:
                raise ValueError(f"the arrays table must list exactly {list(expected)}")
            if entry.get("dtype") != dtype or entry.get("shape") != list(shape):
                raise ValueError(
                    f"array {name!r} has dtype/shape {entry.get('dtype')}/"
                    f"{entry.get('shape')}; expected {dtype}/{list(shape)}"
                )
            nbytes = int(np.prod(shape, dtype=object)) * np.dtype(dtype).itemsize
            if entry.get("offset") != offset or entry.get("nbytes") != nbytes:
                raise ValueError(f"array {name!r} has a bad offset or size")
            self.entries[name] = (dtype, shape, offset, nbytes)
            offset += nbytes + (-nbytes % align)
        self.size = offset
        self.data = b""

    def get(self, name: str) -> np.ndarray:
        dtype, shape, offset, nbytes = self.entries[name]
        raw = np.frombuffer(
            self.data, dtype=dtype, count=nbytes // np.dtype(dtype).itemsize, offset=offset
        )
        return raw.reshape(shape).astype(np.dtype(dtype).newbyteorder("="))

    def check_padding(self, align: int) -> None:
        for _, _, offset, nbytes in self.entries.values():
            pad = self.data[offset + nbytes : offset + nbytes + (-nbytes % align)]
            if pad.strip(b"\x00"):
                raise ValueError("non-zero padding between arrays")


def _v1_arrays(header: dict) -> dict:
    """Expected arrays of a version-1 file (a linear model); checks its header fields."""
    if header.get("format") != "bayesbin.bits":
        raise ValueError("header format is not 'bayesbin.bits'")
    if header.get("bit_order") != BIT_ORDER or header.get("byte_order") != "little":
        raise ValueError("unknown bit or byte order")
    kind = _need(header, "kind", str)
    if kind not in ("classifier", "ensemble"):
        raise ValueError(f"unknown kind {kind!r}")
    form = check_choice(_need(header, "form", str), "form", _FORMS)
    check_choice(_need(header, "weight_encoding", str), "weight_encoding", _ENCODINGS)
    d = _need(header, "n_features", int)
    words = _need(header, "n_words", int)
    rows = _need(header, "n_rows", int)
    s_draws = _need(header, "n_draws", int)
    k = _need(header, "n_classes", int)
    if not 1 <= d < _MAX_DIM or words != (d + 63) // 64:
        raise ValueError(f"n_words={words} does not match n_features={d}")
    if not 1 <= rows < _MAX_DIM or not 1 <= s_draws < _MAX_DIM:
        raise ValueError(f"bad n_rows={rows} / n_draws={s_draws} for a {kind}")
    if kind == "classifier" and s_draws != 1:
        raise ValueError(f"bad n_rows={rows} / n_draws={s_draws} for a {kind}")
    if k != (rows if form == "softmax" else 2):
        raise ValueError(f"n_classes={k} does not match form {form!r} with {rows} rows")
    bias_shape = (s_draws, k) if form == "softmax" else (s_draws,)
    return {
        "weights": ("<u8", (s_draws, rows, words)),
        "scale": ("<f8", (s_draws,)),
        "bias": ("<f8", bias_shape),
    }


def _in_words(shape: tuple) -> int:
    """Packed words of a ±1 input of this shape (images: ceil(C / 64) words per pixel)."""
    if len(shape) == 1:
        return (shape[0] + 63) // 64
    return shape[0] * shape[1] * ((shape[2] + 63) // 64)


def _network_threshold(inp: dict) -> float | None:
    """A network's ``input.binarize_threshold``: absent (older files) or null, or finite."""
    if inp.get("binarize_threshold") is None:
        return None
    return float(_need(inp, "binarize_threshold", float))


def _v2_arrays(header: dict) -> dict:
    """Expected arrays of a version-2 file; checks that its table of layers chains."""
    if header.get("format") != "bayesbin.bits":
        raise ValueError("header format is not 'bayesbin.bits'")
    if header.get("bit_order") != BIT_ORDER or header.get("byte_order") != "little":
        raise ValueError("unknown bit or byte order")
    model = _need(header, "model", str)
    kind = _need(header, "kind", str)
    s = _need(header, "n_members", int)
    if model not in ("linear", "network") or kind not in ("classifier", "ensemble"):
        raise ValueError(f"unknown model/kind {model!r}/{kind!r}")
    if not 1 <= s < _MAX_DIM or (kind == "classifier" and s != 1):
        raise ValueError(f"bad n_members={s} for a {kind}")
    if model == "network" and kind == "ensemble" and s < 2:
        raise ValueError("a network ensemble needs n_members >= 2")
    n_classes = len(_need(header, "classes", list))
    _need(header, "classes_dtype", str)
    _need(header, "metadata", dict)
    layers = _need(header, "layers", list)
    inp = _need(header, "input", dict)
    if not layers or (model == "linear" and len(layers) != 1):
        raise ValueError("the table of layers must hold one layer (linear) or more (network)")
    if model == "linear":
        shape = (_need(inp, "n_features", int),)
        _dims(list(shape), "n_features")
    else:
        shape = _dims(_need(inp, "shape", list), "input shape", (1, 3))
        _network_threshold(inp)
    expected = {}
    for i, entry in enumerate(layers):
        if not isinstance(entry, dict):
            raise ValueError(f"layer {i} is not a JSON object")
        name = f"layers.{i}"
        last = i == len(layers) - 1
        op = _need(entry, "kind", str)
        in_shape = _dims(_need(entry, "in_shape", list), f"{name}.in_shape", (1, 3))
        if in_shape != shape:
            raise ValueError(
                f"layer {i} takes shape {in_shape} but gets {shape}: shapes do not chain"
            )
        u = _need(entry, "n_out", int)
        _dims([u], f"{name}.n_out")
        pool = entry.get("pool")
        out_shape = _dims(_need(entry, "out_shape", list), f"{name}.out_shape", (1, 3))
        if op == "dense":
            if pool is not None or out_shape != (u,):
                raise ValueError(f"dense layer {i} must have pool null and out_shape [n_out]")
            wshape = (s, u, _in_words(in_shape))
        elif op == "conv2d" and model == "network" and len(in_shape) == 3 and not last:
            size = 1
            if pool is not None:
                size = _need(pool, "size", int)
                if _need(pool, "on", str) not in ("scores", "bits") or not 1 <= size:
                    raise ValueError(f"layer {i} has a bad pool")
            want = (in_shape[0] // size, in_shape[1] // size, u)
            if out_shape != want or min(want) < 1:
                raise ValueError(f"conv layer {i} must have out_shape {list(want)}")
            wshape = (s, u, 3, 3, (in_shape[2] + 63) // 64)
        else:
            raise ValueError(f"layer {i}: unsupported kind {op!r} here")
        if entry.get("weights") != f"{name}.weights":
            raise ValueError(f"layer {i} must name its weights {name}.weights")
        expected[f"{name}.weights"] = ("<u8", wshape)
        out = _need(entry, "output", dict)
        step = _need(out, "kind", str)
        if model == "linear":
            form = check_choice(_need(out, "form", str), "form", _FORMS)
            check_choice(_need(entry, "weight_encoding", str), "weight_encoding", _ENCODINGS)
            if step != "affine" or (form != "softmax" and u != {"single": 1}.get(form, 2)):
                raise ValueError(f"a linear layer needs an affine output matching form {form!r}")
            if form == "softmax" and u < 2:
                raise ValueError("a softmax model needs K >= 2 score rows")
            k = u if form == "softmax" else 2
            fields = {"scale": (s,), "bias": (s, k) if form == "softmax" else (s,)}
            dtypes = {"scale": "<f8", "bias": "<f8"}
        else:
            want_step = "batchnorm" if last else ("batchnorm_sign" if i == 0 else "threshold")
            if step != want_step:
                raise ValueError(f"layer {i} must have output kind {want_step!r}; got {step!r}")
            if step == "threshold":
                fields = {"thresholds": (s, u), "flips": (s, u)}
                dtypes = {"thresholds": "<i8", "flips": "|u1"}
            else:
                fields = {f: (s, u) for f in ("gamma", "beta", "mean", "var")}
                fields["eps"] = (s,)
                dtypes = dict.fromkeys(fields, "<f8")
            k = u
        for field, fshape in fields.items():
            if out.get(field) != f"{name}.{field}":
                raise ValueError(f"layer {i} must name its {field} {name}.{field}")
            expected[f"{name}.{field}"] = (dtypes[field], fshape)
        shape = out_shape
    if n_classes != k:
        raise ValueError(f"{n_classes} class labels for {k} outputs")
    return expected


def read_file(path) -> tuple[int, dict, dict]:
    """Read and verify a ``.bbits`` file (version 1 or 2) without building a model.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    version : int
    header : dict
        The decoded header, its layout checked (see the module docstring).
    arrays : dict of str to ndarray
        Every array of the payload, in native byte order.

    Raises
    ------
    ValueError
        For a truncated, corrupted, foreign or inconsistent file.
    """
    with open(Path(os.fspath(path)), "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size < _PREFIX.size + _DIGEST:
            raise ValueError(f"{path}: not a bayesbin bits file (truncated: {size} bytes)")
        prefix = _read_exact(fh, _PREFIX.size)
        magic, version, flags, header_len = _PREFIX.unpack(prefix)
        if magic != _MAGIC:
            raise ValueError(f"{path}: not a bayesbin bits file (bad magic)")
        if version not in (1, FORMAT_VERSION):
            raise ValueError(
                f"{path}: unsupported bayesbin bits format version {version} (this reader knows "
                f"1 and {FORMAT_VERSION})"
            )
        if flags & ~FLAG_INPUT_STEP or (flags and version == 1):
            raise ValueError(f"{path}: unknown flags {flags}")
        if header_len > size - _PREFIX.size - _DIGEST or header_len > _MAX_HEADER:
            raise ValueError(f"{path}: header length {header_len} exceeds the file")
        blob = _read_exact(fh, header_len)
        align = 1 if version == 1 else 8
        try:
            if _json_depth(blob) > _MAX_DEPTH:
                raise ValueError(f"JSON nested deeper than {_MAX_DEPTH} levels")
            header = json.loads(blob.decode("utf-8"))
            if not isinstance(header, dict):
                raise ValueError("header is not a JSON object")
            expected = _v1_arrays(header) if version == 1 else _v2_arrays(header)
            step = (
                version == 2
                and header.get("model") == "network"
                and _network_threshold(header["input"]) is not None
            )
            if bool(flags & FLAG_INPUT_STEP) != step:
                raise ValueError(
                    f"flags {flags} disagree with the header: the input step "
                    f"(binarize_threshold) is {'set' if step else 'not set'}"
                )
            payload = _Payload(_need(header, "arrays", list), expected, align)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"{path}: the header is not valid JSON (a corrupt file, or not a .bbits file): "
                f"{exc}"
            ) from exc
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc
        except (UnicodeDecodeError, RecursionError, TypeError, KeyError, OverflowError) as exc:
            raise ValueError(f"{path}: unreadable or inconsistent header: {exc!r}") from exc
        rest = size - _PREFIX.size - header_len - _DIGEST
        if payload.size != rest:
            raise ValueError(
                f"{path}: the file size does not match its header: {rest} payload bytes for "
                f"{payload.size} declared (truncated, or trailing bytes)"
            )
        payload.data = _read_exact(fh, rest)
        digest = _read_exact(fh, _DIGEST)
        if fh.read(1):
            raise ValueError(f"{path}: trailing bytes (the file changed while it was read)")
    if hashlib.sha256(prefix + blob + payload.data).digest() != digest:
        raise ValueError(f"{path}: checksum mismatch: the file is corrupted or truncated")
    try:
        payload.check_padding(align)
        arrays = {name: payload.get(name) for name in expected}
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
    return version, header, arrays


def linear_fields(version: int, header: dict, arrays: dict) -> dict:
    """Constructor arguments of a linear model read by :func:`read_file`.

    Returns
    -------
    dict
        ``ensemble`` (bool), ``weights`` (S, R, n_words) and the keyword arguments of
        :class:`~bayesbin.bits.PackedEnsemble` (``n_features``, ``form``, ...).
    """
    if version == 1:
        d = header["n_features"]
        form, encoding = header["form"], header["weight_encoding"]
        names = ("weights", "scale", "bias")
        settings = header
    else:
        layer = header["layers"][0]
        d = layer["in_shape"][0]
        form, encoding = layer["output"]["form"], layer["weight_encoding"]
        names = ("layers.0.weights", "layers.0.scale", "layers.0.bias")
        settings = header["input"]
    classes = _classes_from_json(
        _need(header, "classes", list), _need(header, "classes_dtype", str)
    )
    inputs = check_choice(_need(settings, "inputs", str), "inputs", _INPUTS)
    input_encoding = check_choice(
        _need(settings, "input_encoding", str), "input_encoding", _ENCODINGS
    )
    weights, scale, bias = (arrays[n] for n in names)
    for name, arr in (("scale", scale), ("bias", bias)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite")
    return {
        "ensemble": header["kind"] == "ensemble",
        "weights": weights,
        "n_features": d,
        "form": form,
        "weight_encoding": encoding,
        "scale": scale,
        "bias": bias,
        "classes": classes,
        "inputs": inputs,
        "binarize_threshold": float(_need(settings, "binarize_threshold", float)),
        "input_encoding": input_encoding,
        "metadata": _need(header, "metadata", dict),
    }


def network_fields(header: dict, arrays: dict) -> dict:
    """The table of layers of a network read by :func:`read_file`, with its arrays.

    Returns
    -------
    dict
        ``input_shape``, ``input_threshold`` (float or None), ``layers`` (each entry of the
        header's table with its arrays in place of their names), ``classes`` and ``metadata``.
    """
    layers = []
    for i, entry in enumerate(header["layers"]):
        name = f"layers.{i}"
        out = {
            k: arrays[v] if isinstance(v, str) and v.startswith(name + ".") else v
            for k, v in entry["output"].items()
        }
        layers.append({**entry, "weights": arrays[f"{name}.weights"], "output": out})
    return {
        "input_shape": tuple(header["input"]["shape"]),
        "input_threshold": _network_threshold(header["input"]),
        "layers": layers,
        "classes": _classes_from_json(header["classes"], _need(header, "classes_dtype", str)),
        "metadata": header["metadata"],
    }
