"""C99 headers: compiled with the machine's C compiler and checked against Python."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from _bitsutil import FORMS, mnist_test_images, weight_shape, with_new_weights
from test_network import _cnn, _mlp
from test_posterior import make_result

from bayesbin.bits import PackedClassifier, pack_bits, pack_network, reference_forward, to_bits

CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic"]


def _compiler() -> str:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler (cc) on this machine")
    return cc


def _c_check(model, x_bits, tmp_path, name):
    cc = _compiler()
    header = tmp_path / f"{name}.h"
    model.export_c_header(header, prefix=name)
    words = pack_bits(x_bits)
    rows = ",\n".join("{" + ", ".join(f"0x{int(v):016x}ULL" for v in r) + "}" for r in words)
    k = model.n_classes
    n_eta = k if model.family == "softmax" else 1
    main = f"""
#include <stdio.h>
#include "{name}.h"
static const uint64_t xs[{len(words)}][{words.shape[1]}] = {{{rows}}};
int main(void) {{
  int i, r;
  for (i = 0; i < {len(words)}; ++i) {{
    double eta[{n_eta}], proba[{k}];
    {name}_decision_function(xs[i], 0, eta);
    {name}_predict_proba(xs[i], proba);
    printf("%d", {name}_predict(xs[i]));
    for (r = 0; r < {n_eta}; ++r) printf(" %.17g", eta[r]);
    for (r = 0; r < {k}; ++r) printf(" %.17g", proba[r]);
    printf("\\n");
  }}
  return 0;
}}
"""
    src = tmp_path / f"{name}_main.c"
    src.write_text(main)
    exe = tmp_path / f"{name}_main"
    subprocess.run(
        [cc, *CFLAGS, "-o", str(exe), str(src), "-lm"],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    table = np.array([[float(v) for v in line.split()] for line in out.strip().splitlines()])
    return table[:, 0].astype(int), table[:, 1 : 1 + n_eta], table[:, 1 + n_eta :]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("encodings", [("01", "01"), ("pm1", "pm1"), ("01", "pm1"), ("pm1", "01")])
def test_c_header_matches_python(rng, tmp_path, form, encodings):
    w_enc, x_enc = encodings
    d, k = 100, 4
    bits = rng.integers(0, 2, size=weight_shape(form, d, k))
    bias = rng.normal(size=k) if form == "softmax" else -0.4
    clf = PackedClassifier.from_bits(
        bits,
        form=form,
        weight_encoding=w_enc,
        scale=0.3,
        bias=bias,
        input_encoding=x_enc,
        inputs="binarize",
        binarize_threshold=0.0 if x_enc == "pm1" else 0.5,
        classes=list("abcd")[: clf_k(form, k)],
    )
    xb = rng.integers(0, 2, size=(25, d))
    x = 2.0 * xb - 1 if x_enc == "pm1" else xb.astype(float)
    pred, eta, proba = _c_check(clf, xb, tmp_path, f"m_{form}")
    np.testing.assert_array_equal(clf.classes_[pred], clf.predict(x))
    py_eta = clf.decision_function(x).reshape(len(x), -1)
    np.testing.assert_array_equal(eta, py_eta)  # same IEEE operations in C and numpy
    np.testing.assert_allclose(proba, clf.predict_proba(x), rtol=1e-14, atol=1e-15)


def clf_k(form, k):
    return k if form == "softmax" else 2


@pytest.mark.parametrize("form", ["softmax", "two_output"])
def test_c_header_ensemble_matches_python(rng, tmp_path, form):
    res = make_result(rng, form, d=80, k=3, draws=6, encoding="pm1", bias=True, scale=True)
    ens = to_bits(res, rule="draws")
    xb = rng.integers(0, 2, size=(20, 80))
    pred, _, proba = _c_check(ens, xb, tmp_path, "ens")
    np.testing.assert_allclose(proba, ens.predict_proba(xb), rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(ens.classes_[pred], ens.predict(xb))


def test_c_header_rejects_bad_prefix(rng, tmp_path):
    clf = PackedClassifier.from_bits(rng.integers(0, 2, size=(5, 2)), form="softmax")
    with pytest.raises(ValueError, match="identifier"):
        clf.export_c_header(tmp_path / "m.h", prefix="my-model")


# ------------------------------------------------------------------------------ networks


def _c_network(net, q: np.ndarray, tmp_path, name: str, divisor: float):
    """Compile a network header and run it on the integer rows ``q``: (logits (S, n, K),
    proba (n, K), predict (n,))."""
    cc = _compiler()
    net.export_c_header(tmp_path / f"{name}.h", prefix=name, divisor=divisor)
    n, f = q.shape
    s, k = net.n_members, net.n_classes
    rows = ",\n".join("{" + ", ".join(str(int(v)) for v in r) + "}" for r in q)
    main = f"""
#include <stdio.h>
#include "{name}.h"
static const uint16_t xs[{n}][{f}] = {{{rows}}};
int main(void) {{
  int i, m, c;
  double z[{k}], p[{k}];
  for (i = 0; i < {n}; ++i) {{
    for (m = 0; m < {s}; ++m) {{
      {name}_logits(xs[i], m, z);
      for (c = 0; c < {k}; ++c) printf("%.17g ", z[c]);
    }}
    {name}_predict_proba(xs[i], p);
    for (c = 0; c < {k}; ++c) printf("%.17g ", p[c]);
    printf("%d\\n", {name}_predict(xs[i]));
  }}
  return 0;
}}
"""
    src = tmp_path / f"{name}_main.c"
    src.write_text(main)
    exe = tmp_path / f"{name}_main"
    subprocess.run(
        [cc, *CFLAGS, "-o", str(exe), str(src), "-lm"],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    table = np.array([[float(v) for v in line.split()] for line in out.strip().splitlines()])
    logits = table[:, : s * k].reshape(n, s, k).transpose(1, 0, 2)
    return logits, table[:, s * k : s * k + k], table[:, -1].astype(int)


def _real_rows(rng, n: int) -> np.ndarray:
    """MNIST test images (real rows), or random sparse pixels when the files are absent."""
    try:
        return mnist_test_images()[rng.choice(10_000, size=n, replace=False)]
    except pytest.skip.Exception:
        q = rng.integers(0, 256, size=(n, 784))
        q[rng.random(q.shape) < 0.8] = 0
        return q.astype(np.uint8)


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_c_header_network_matches_python_on_real_rows(rng, tmp_path, kind):
    """The whole network in C: identical logits to Python (same integers, same float64
    operations) on MNIST rows, pixels k / 255 in Python and the levels k in C."""
    if kind == "mlp":
        desc = _mlp(rng, d=784, widths=(100, 70), k=10)
    else:
        desc = _cnn(rng, shape=(28, 28, 1), c1=6, c2=70, hidden=40, k=10)
    net = pack_network([desc, with_new_weights(rng, desc)])
    q = _real_rows(rng, 12)
    x32 = q.astype(np.float32) / np.float32(255)  # as load_mnist returns them
    logits, proba, pred = _c_network(net, q, tmp_path, f"net_{kind}", 255.0)
    np.testing.assert_array_equal(logits, net.member_logits(x32))
    np.testing.assert_array_equal(logits[0], reference_forward(desc, x32))
    np.testing.assert_allclose(proba, net.predict_proba(x32), rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(pred, np.argmax(proba, axis=1))


def test_c_header_network_integer_inputs_and_single_layer(rng, tmp_path):
    """divisor=1: the C levels are the inputs themselves; a one-layer network (head first)."""
    desc = {
        "input_shape": (7, 5, 2),
        "layers": [
            {
                "kind": "conv2d",
                "weights": (2 * rng.integers(0, 2, size=(70, 2, 3, 3)) - 1),
                "padding": "same",
            },
            {"kind": "sign"},
            {"kind": "maxpool2d", "size": 3},
            {"kind": "flatten"},
            {"kind": "dense", "weights": 2 * rng.integers(0, 2, size=(3, 2 * 1 * 70)) - 1},
        ],
    }
    net = pack_network(desc)
    q = rng.integers(0, 1000, size=(6, 70))
    logits, _, pred = _c_network(net, q, tmp_path, "ints", 1.0)
    np.testing.assert_array_equal(logits[0], net.decision_function(q))
    np.testing.assert_array_equal(logits[0], reference_forward(desc, q))
    np.testing.assert_array_equal(pred, net.predict(q))
    head_only = {
        "input_shape": (9,),
        "layers": [{"kind": "dense", "weights": 2 * rng.integers(0, 2, size=(4, 9)) - 1}],
    }
    one = pack_network(head_only)
    q = rng.integers(0, 256, size=(5, 9))
    logits, _, _ = _c_network(one, q, tmp_path, "one", 255.0)
    np.testing.assert_array_equal(logits[0], one.decision_function(q / 255.0))
