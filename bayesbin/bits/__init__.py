"""Packed-bit inference: linear classifiers and ensembles, binary networks, files and C export.

Re-exports only; the modules, from the bottom up:

* :mod:`~bayesbin.bits.kernels`, :mod:`~bayesbin.bits.levelkernels`,
  :mod:`~bayesbin.bits.netkernels`: compiled popcount and level-accumulation kernels;
* :mod:`~bayesbin.bits.packing`: bit order, ``pack_bits``/``unpack_bits``, inputs;
* :mod:`~bayesbin.bits.layers`: the layer seam (packed weights + output step);
* :mod:`~bayesbin.bits.description`, :mod:`~bayesbin.bits.reference`: the interchange
  description of a trained network and its float64 reference forward pass;
* :mod:`~bayesbin.bits.netlayers`: packed dense and conv layers of networks;
* :mod:`~bayesbin.bits.fileformat`, :mod:`~bayesbin.bits.cexport`: ``.bbits`` files and C;
* :mod:`~bayesbin.bits.linear`: ``PackedClassifier``, ``PackedEnsemble``, ``to_bits``;
* :mod:`~bayesbin.bits.netdata`: sampled networks as ArviZ data (reader and writer);
* :mod:`~bayesbin.bits.network`: ``PackedNetwork``, ``pack_network``, ``to_bits`` (every
  kind of result);
* :mod:`~bayesbin.bits.loading`: ``load_bits``.

Examples
--------
>>> import numpy as np
>>> from bayesbin.bits import pack_bits, unpack_bits
>>> bits = np.array([[1, 0, 1], [0, 0, 1]], dtype=np.uint8)
>>> pack_bits(bits)
array([[5],
       [4]], dtype=uint64)
>>> unpack_bits(pack_bits(bits), 3)
array([[1, 0, 1],
       [0, 0, 1]], dtype=uint8)
"""

from __future__ import annotations

from bayesbin.bits.fileformat import FORMAT_VERSION
from bayesbin.bits.layers import fold_batchnorm_sign
from bayesbin.bits.linear import PackedClassifier, PackedEnsemble
from bayesbin.bits.loading import load_bits
from bayesbin.bits.network import PackedNetwork, pack_network, to_bits
from bayesbin.bits.packing import BIT_ORDER, PackedInput, n_words, pack_bits, unpack_bits
from bayesbin.bits.reference import reference_forward

__all__ = [
    "BIT_ORDER",
    "FORMAT_VERSION",
    "PackedClassifier",
    "PackedEnsemble",
    "PackedInput",
    "PackedNetwork",
    "fold_batchnorm_sign",
    "load_bits",
    "n_words",
    "pack_bits",
    "pack_network",
    "reference_forward",
    "to_bits",
    "unpack_bits",
]
