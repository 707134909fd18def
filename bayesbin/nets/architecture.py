"""Architectures from a short string (``"784-512-512-10"``, ``"32C3-MP2-64C3-MP2-512FC-SM10"``).

Grammar (tokens joined by ``-``; letters are case-insensitive):

============== =====================================================================
token          meaning
============== =====================================================================
``784``        first token only: the input size of a flat input (D,)
``28x28x1``    first token only: the input image shape (H, W, C); ``28x28`` means C = 1
``32C3``       binary 3x3 convolution with 32 output channels (stride 1, padding "same")
``MP2``        2x2 max pooling, stride 2, no padding (floor); only after a convolution/pool
``512FC``      binary dense layer with 512 units (a bare ``512`` after the first token too)
``SM10``       the output layer: binary dense layer with 10 real-valued outputs (logits)
============== =====================================================================

The last token is the output layer (``SM<n>``, ``<n>FC`` or a bare ``<n>``). Every binary layer
is followed by batch norm; every layer but the output one then by a sign activation (sign(0) =
+1). Pooling sits between a convolution and its batch norm (on the integer/real scores). The
first layer takes real inputs; the output layer is real-valued. A dense layer after a
convolution flattens NHWC in C order (feature index ``(h * W + w) * C + c``).

Examples
--------
>>> arch = parse_architecture("32C3-MP2-64C3-MP2-512FC-SM10")
>>> [op.kind for op in arch.resolve((28, 28, 1)).ops][:4]
['conv2d', 'maxpool2d', 'batchnorm', 'sign']
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

__all__ = [
    "Architecture",
    "BinaryLayer",
    "LayerSpec",
    "Op",
    "Plan",
    "infer_image_shape",
    "parse_architecture",
]

_GRAMMAR = (
    "tokens joined by '-': an optional input size first ('784' or '28x28x1'), then "
    "'<n>C3' (3x3 binary convolution), 'MP<k>' (max pool), '<n>FC' or '<n>' (binary dense), "
    "and last the output layer 'SM<n>', '<n>FC' or '<n>'"
)


@dataclass(frozen=True)
class LayerSpec:
    """One token of an architecture string.

    Attributes
    ----------
    kind : {"conv", "pool", "dense"}
    size : int
        Output channels (conv), pool size (pool) or units (dense).
    token : str
        The token as written.
    """

    kind: str
    size: int
    token: str


@dataclass(frozen=True)
class Op:
    """One step of a resolved network, in forward order.

    Attributes
    ----------
    kind : {"conv2d", "dense", "maxpool2d", "batchnorm", "sign", "flatten"}
    name : str
        The binary layer it belongs to (``"conv1"``, ``"dense2"``, ...); ``""`` for flatten.
    size : int
        Pool size for ``"maxpool2d"``, else 0.
    """

    kind: str
    name: str = ""
    size: int = 0


@dataclass(frozen=True)
class BinaryLayer:
    """A binary (±1-weight) layer of a resolved network.

    Attributes
    ----------
    name : str
        ``"conv<i>"`` or ``"dense<i>"`` (1-based per kind).
    kind : {"conv2d", "dense"}
    weight_shape : tuple of int
        ``(out, in, 3, 3)`` (OIHW) for a convolution, ``(out, in)`` for a dense layer.
    in_shape, out_shape : tuple of int
        Per-row shapes of the layer input and of its output after pooling: ``(H, W, C)`` or
        ``(D,)``.
    first, output : bool
        First layer (real inputs) / output layer (no sign).
    """

    name: str
    kind: str
    weight_shape: tuple[int, ...]
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    first: bool
    output: bool

    @property
    def n_out(self) -> int:
        """Output channels or units (= batch-norm channels)."""
        return self.weight_shape[0]

    @property
    def fan_in(self) -> int:
        """Number of weights feeding one output (``in * 9`` for a 3x3 convolution)."""
        return math.prod(self.weight_shape[1:])


@dataclass(frozen=True)
class Plan:
    """An architecture resolved against an input shape.

    Attributes
    ----------
    input_shape : tuple of int
        ``(H, W, C)`` or ``(D,)``.
    layers : tuple of BinaryLayer
    ops : tuple of Op
        The forward pass: binary layer, pooling, batch norm, sign, flatten.
    output_sign : bool
        Whether a sign follows the output layer's batch norm (the 9.87% trap; only with an
        explicit override).
    """

    input_shape: tuple[int, ...]
    layers: tuple[BinaryLayer, ...]
    ops: tuple[Op, ...]
    output_sign: bool = False

    @property
    def n_outputs(self) -> int:
        """Number of outputs (logits)."""
        return self.layers[-1].n_out

    def layer(self, name: str) -> BinaryLayer:
        """Return the binary layer called ``name``."""
        for lay in self.layers:
            if lay.name == name:
                return lay
        raise KeyError(name)


@dataclass(frozen=True)
class Architecture:
    """A parsed architecture string (see the module docstring for the grammar).

    Attributes
    ----------
    text : str
        The string as given.
    input_shape : tuple of int or None
        From a leading input token, else None (inferred from the data).
    layers : tuple of LayerSpec
        Convolutions, pools and dense layers; the last is the output layer.
    """

    text: str
    input_shape: tuple[int, ...] | None
    layers: tuple[LayerSpec, ...]

    @property
    def is_image(self) -> bool:
        """Whether the network starts with a convolution (takes (H, W, C) images)."""
        return self.layers[0].kind == "conv"

    @property
    def n_outputs(self) -> int:
        """Size of the output layer."""
        return self.layers[-1].size

    def resolve(self, input_shape, *, output_sign: bool = False) -> Plan:
        """Compute every layer's shapes for a given per-row input shape.

        Parameters
        ----------
        input_shape : tuple of int
            ``(H, W, C)`` for a network starting with a convolution, ``(D,)`` otherwise.
        output_sign : bool
            Append a sign after the output layer's batch norm (the 9.87% trap).

        Returns
        -------
        Plan
        """
        shape = tuple(int(s) for s in input_shape)
        if self.is_image and len(shape) != 3:
            raise ValueError(
                f"architecture {self.text!r} starts with a convolution and needs image input of "
                f"shape (H, W, C); got per-row shape {shape}"
            )
        if not self.is_image and len(shape) != 1:
            shape = (math.prod(shape),)
        if self.input_shape is not None:
            want = self.input_shape
            if math.prod(want) != math.prod(shape) or (len(want) == 3 and want != shape):
                raise ValueError(
                    f"architecture {self.text!r} declares input shape {want}; the data has "
                    f"per-row shape {shape}"
                )
        layers: list[BinaryLayer] = []
        ops: list[Op] = []
        counts = {"conv2d": 0, "dense": 0}
        cur = shape
        specs = self.layers
        i = 0
        while i < len(specs):
            spec = specs[i]
            is_out = i == len(specs) - 1
            if spec.kind == "conv":
                kind = "conv2d"
                wshape = (spec.size, cur[2], 3, 3)
                out = (cur[0], cur[1], spec.size)
            else:  # dense (pools are consumed below, after their convolution)
                kind = "dense"
                if len(cur) == 3:
                    ops.append(Op("flatten"))
                    cur = (math.prod(cur),)
                wshape = (spec.size, cur[0])
                out = (spec.size,)
            counts[kind] += 1
            name = f"{'conv' if kind == 'conv2d' else 'dense'}{counts[kind]}"
            ops.append(Op(kind, name))
            in_shape = cur
            i += 1
            while i < len(specs) and specs[i].kind == "pool":
                k = specs[i].size
                if out[0] // k < 1 or out[1] // k < 1:
                    raise ValueError(
                        f"architecture {self.text!r}: {specs[i].token} pools a "
                        f"{out[0]}x{out[1]} map to nothing; input shape {shape} is too small"
                    )
                out = (out[0] // k, out[1] // k, out[2])
                ops.append(Op("maxpool2d", name, k))
                i += 1
            ops.append(Op("batchnorm", name))
            if not is_out and i < len(specs):
                ops.append(Op("sign", name))
            layers.append(
                BinaryLayer(
                    name=name,
                    kind=kind,
                    weight_shape=wshape,
                    in_shape=in_shape,
                    out_shape=out,
                    first=not layers,
                    output=i >= len(specs),
                )
            )
            cur = out
        if output_sign:
            ops.append(Op("sign", layers[-1].name))
        return Plan(input_shape=shape, layers=tuple(layers), ops=tuple(ops), output_sign=output_sign)


def _bad(text: str, token: str, pos: int, why: str) -> ValueError:
    return ValueError(
        f"architecture {text!r}: token {token!r} at position {pos} {why}; grammar: {_GRAMMAR}"
    )


def parse_architecture(text) -> Architecture:
    """Parse an architecture string.

    Parameters
    ----------
    text : str or Architecture
        E.g. ``"784-512-512-10"`` (MLP: input 784, two hidden layers of 512, 10 outputs) or
        ``"32C3-MP2-64C3-MP2-512FC-SM10"`` (the PBNet paper's CNN).

    Returns
    -------
    Architecture

    Raises
    ------
    TypeError
        ``text`` is not a string.
    ValueError
        A malformed string, naming the offending token and the grammar.
    """
    if isinstance(text, Architecture):
        return text
    if not isinstance(text, str):
        raise TypeError(
            f"architecture must be a string such as '784-512-512-10'; got {type(text).__name__}"
        )
    src = text
    tokens = [t.strip() for t in text.strip().split("-")]
    if not text.strip() or any(t == "" for t in tokens):
        raise ValueError(f"architecture {src!r} is empty or has an empty token; grammar: {_GRAMMAR}")
    input_shape: tuple[int, ...] | None = None
    first = tokens[0]
    start = 0
    m_img = re.fullmatch(r"(\d+)[xX](\d+)(?:[xX](\d+))?", first)
    if m_img:
        dims = tuple(int(g) for g in m_img.groups() if g is not None)
        input_shape = dims if len(dims) == 3 else (*dims, 1)
        start = 1
    elif re.fullmatch(r"\d+", first) and len(tokens) > 1:
        input_shape = (int(first),)
        start = 1
    if input_shape is not None and min(input_shape) < 1:
        raise _bad(src, first, 0, "is an input size with a zero dimension")
    specs: list[LayerSpec] = []
    for pos in range(start, len(tokens)):
        tok = tokens[pos]
        up = tok.upper()
        if m := re.fullmatch(r"(\d+)C(\d+)", up):
            n, k = int(m.group(1)), int(m.group(2))
            if k != 3:
                raise _bad(src, tok, pos, "is not a 3x3 convolution (only 3x3 is supported)")
            spec = LayerSpec("conv", n, tok)
        elif m := re.fullmatch(r"MP(\d+)", up):
            spec = LayerSpec("pool", int(m.group(1)), tok)
            if spec.size < 2:
                raise _bad(src, tok, pos, "has a pool size below 2")
        elif m := re.fullmatch(r"(\d+)(?:FC)?", up):
            spec = LayerSpec("dense", int(m.group(1)), tok)
        elif m := re.fullmatch(r"SM(\d+)", up):
            if pos != len(tokens) - 1:
                raise _bad(src, tok, pos, "is an output layer but is not the last token")
            spec = LayerSpec("dense", int(m.group(1)), tok)
        elif re.fullmatch(r"(\d+)[xX](\d+)(?:[xX](\d+))?", tok):
            raise _bad(src, tok, pos, "is an input shape but is not the first token")
        else:
            raise _bad(src, tok, pos, "is not understood")
        if spec.kind != "pool" and spec.size < 1:
            raise _bad(src, tok, pos, "has zero units/channels")
        if spec.kind == "conv" and specs and specs[-1].kind == "dense":
            raise _bad(src, tok, pos, "is a convolution after a dense layer")
        if spec.kind == "pool" and (not specs or specs[-1].kind == "dense"):
            raise _bad(src, tok, pos, "is a pool that does not follow a convolution or pool")
        specs.append(spec)
    if not specs:
        raise ValueError(
            f"architecture {src!r} has no layers (a single number is only an input size); "
            f"grammar: {_GRAMMAR}"
        )
    if specs[-1].kind != "dense":
        raise _bad(
            src, specs[-1].token, len(tokens) - 1, "ends the network; the last token must be "
            "the output layer ('SM<n>', '<n>FC' or '<n>')"
        )
    if specs[0].kind != "conv" and input_shape is not None and len(input_shape) == 3:
        input_shape = (math.prod(input_shape),)
    return Architecture(text=src, input_shape=input_shape, layers=tuple(specs))


def infer_image_shape(n_features: int, arch: Architecture, input_shape=None) -> tuple[int, ...]:
    """Infer the per-row shape a flat row of ``n_features`` values stands for.

    Parameters
    ----------
    n_features : int
        Length of a flat row.
    arch : Architecture
    input_shape : tuple of int, optional
        Given by the user (``(H, W, C)`` or ``(H, W)``).

    Returns
    -------
    tuple of int
        ``(H, W, C)`` for an image network, ``(n_features,)`` otherwise.
    """
    if not arch.is_image:
        return (n_features,)
    shape = input_shape if input_shape is not None else arch.input_shape
    if shape is not None:
        shape = tuple(int(s) for s in shape)
        if len(shape) == 2:
            shape = (*shape, 1)
        if len(shape) == 1:
            shape = ()
    if shape:
        if math.prod(shape) != n_features:
            raise ValueError(
                f"x has {n_features} values per row but the network expects images of shape "
                f"{shape} ({math.prod(shape)} values per row when flat)"
            )
        return shape
    side = math.isqrt(n_features)
    if side * side == n_features:
        return (side, side, 1)
    side3 = math.isqrt(n_features // 3) if n_features % 3 == 0 else 0
    if side3 and side3 * side3 * 3 == n_features:
        return (side3, side3, 3)
    raise ValueError(
        f"x has {n_features} values per row, which is not a square image (H*H*1 or H*H*3): "
        f"pass x of shape (n, H, W, C) or the input_shape option for architecture {arch.text!r}"
    )
