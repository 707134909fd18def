"""``load_bits``: read any ``.bbits`` file (format version 1 or 2) back into its model."""

from __future__ import annotations

from bayesbin.bits import fileformat as _fileformat
from bayesbin.bits.linear import PackedClassifier, PackedEnsemble
from bayesbin.bits.network import PackedNetwork

__all__ = ["load_bits"]


def load_bits(path) -> PackedClassifier | PackedEnsemble | PackedNetwork:
    """Load a model written by ``save`` (any format version this package has written).

    Every structural fact is checked before the payload is read: magic, format version, the
    header length against the file size, the JSON nesting depth, the header's fields and types,
    that the table of layers chains (each layer's input shape is the previous one's output
    shape), and that the array table accounts for the file's exact size. Then the SHA-256
    checksum, zero padding bits of every packed weight, finite floats, the class list and every
    value range are checked, and the model is rebuilt through its constructor.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    PackedClassifier, PackedEnsemble or PackedNetwork
        Version-1 files (linear models) load as they were written.

    Raises
    ------
    ValueError
        For a truncated, corrupted, foreign or inconsistent file (never a wrong model).
    """
    version, header, arrays = _fileformat.read_file(path)
    try:
        if version == 1 or header["model"] == "linear":
            fields = _fileformat.linear_fields(version, header, arrays)
            ensemble = fields.pop("ensemble")
            weights = fields.pop("weights")
            if ensemble:
                return PackedEnsemble(weights, **fields)
            return PackedClassifier(
                weights[0], scale=fields.pop("scale")[0], bias=fields.pop("bias")[0], **fields
            )
        return PackedNetwork._from_fields(_fileformat.network_fields(header, arrays))
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
    except (TypeError, KeyError, OverflowError, IndexError) as exc:
        raise ValueError(f"{path}: inconsistent bayesbin bits file: {exc!r}") from exc
