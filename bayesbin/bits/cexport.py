"""C99 export: self-contained headers with the packed weights and a reference forward pass.

:func:`linear_header` writes the header of a packed linear classifier or ensemble (input: packed
bits); :func:`network_header` that of a whole network or ensemble of networks (input: integer
levels ``q`` meaning ``x = q / divisor``; a network with an input step binarizes them first).
"""

from __future__ import annotations

import numpy as np

from bayesbin.bits.packing import _last_mask

__all__ = ["linear_header", "network_header"]


class _LinearView:
    """The fields the generator reads, named as the model names them."""

    def __init__(self, layer, head, classes, input_encoding):
        self._w, self._scale, self._bias = layer.w, head.scale, head.bias
        self.n_features = layer.n_features
        self.weight_encoding = layer.weight_encoding
        self.form = head.form
        self.family = "softmax" if head.form == "softmax" else "logistic"
        self.n_classes = len(classes)
        self.classes_ = classes
        self.input_encoding = input_encoding


def _c_float(v: float) -> str:
    text = repr(float(v))
    return text if any(c in text for c in ".en") else text + ".0"


def _check_prefix(prefix) -> None:
    if not (isinstance(prefix, str) and prefix.isidentifier() and prefix.isascii()):
        raise ValueError(f"prefix must be a C identifier; got {prefix!r}")


def linear_header(layer, head, *, classes, input_encoding: str, prefix: str) -> str:
    """The C99 header text of a packed linear model (see ``PackedClassifier.export_c_header``).

    Parameters
    ----------
    layer : DenseLayer
        Packed weights (S, R, n_words) and their encoding.
    head : AffineOutput
        Form, scale (S,) and bias.
    classes : ndarray of shape (K,)
    input_encoding : {"01", "pm1"}
    prefix : str
        C identifier prefix.

    Returns
    -------
    str
    """
    _check_prefix(prefix)
    model = _LinearView(layer, head, classes, input_encoding)
    p, up = prefix, prefix.upper()
    s_draws, rows, words = model._w.shape
    d, k = model.n_features, model.n_classes
    mask = int(_last_mask(d))
    w_lines = []
    for s in range(s_draws):
        row_txt = []
        for r in range(rows):
            row_txt.append("{" + ", ".join(f"0x{int(v):016x}ULL" for v in model._w[s, r]) + "}")
        w_lines.append("  {" + ",\n   ".join(row_txt) + "}")
    popw = np.bitwise_count(model._w).sum(axis=2)
    popw_line = "/* no weight popcounts needed */"
    if (model.input_encoding, model.weight_encoding) == ("pm1", "01"):
        popw_line = (
            f"static const int64_t {p}_popw[{up}_N_DRAWS][{up}_N_ROWS] = {{"
            + ", ".join("{" + ", ".join(str(int(v)) for v in row) + "}" for row in popw)
            + "};"
        )
    bias = model._bias.reshape(s_draws, -1)
    nb = bias.shape[1]
    xin, wenc = model.input_encoding, model.weight_encoding
    if xin == "pm1" and wenc == "pm1":
        score = (
            f"  for (w = 0; w < {up}_N_WORDS; ++w) {{\n"
            f"    uint64_t v = x[w] ^ {p}_weights[s][r][w];\n"
            f"    if (w == {up}_N_WORDS - 1) v &= {up}_LAST_MASK;\n"
            f"    c += {p}_popcount64(v);\n  }}\n"
            f"  return (int64_t){up}_N_FEATURES - 2 * c;\n"
        )
    else:
        alpha, x_term, w_term = {
            ("01", "01"): (1, "", ""),
            ("01", "pm1"): (2, " - cx", ""),
            ("pm1", "01"): (2, "", f" - {p}_popw[s][r]"),
        }[(xin, wenc)]
        score = (
            f"  for (w = 0; w < {up}_N_WORDS; ++w) {{\n"
            f"    uint64_t xv = x[w];\n"
            f"    if (w == {up}_N_WORDS - 1) xv &= {up}_LAST_MASK;\n"
            f"    c += {p}_popcount64(xv & {p}_weights[s][r][w]);\n"
            f"    cx += {p}_popcount64(xv);\n  }}\n"
            f"  return {alpha} * c{x_term}{w_term};\n"
        )
    if model.form == "softmax":
        logits = (
            f"  int r;\n  for (r = 0; r < {up}_N_CLASSES; ++r)\n"
            f"    eta[r] = {p}_scale[draw] * (double){p}_score(x, draw, r) + "
            f"{p}_bias[draw][r];\n"
        )
    elif model.form == "single":
        logits = (
            f"  eta[0] = {p}_scale[draw] * (double){p}_score(x, draw, 0) + {p}_bias[draw][0];\n"
        )
    else:
        logits = (
            f"  eta[0] = {p}_scale[draw] * (double)({p}_score(x, draw, 1) - "
            f"{p}_score(x, draw, 0)) + {p}_bias[draw][0];\n"
        )
    if model.family == "softmax":
        proba = (
            f"  double eta[{up}_N_CLASSES], m, den;\n  int s, r;\n"
            f"  for (r = 0; r < {up}_N_CLASSES; ++r) proba[r] = 0.0;\n"
            f"  for (s = 0; s < {up}_N_DRAWS; ++s) {{\n"
            f"    {p}_decision_function(x, s, eta);\n"
            f"    m = eta[0];\n"
            f"    for (r = 1; r < {up}_N_CLASSES; ++r) if (eta[r] > m) m = eta[r];\n"
            f"    den = 0.0;\n"
            f"    for (r = 0; r < {up}_N_CLASSES; ++r) {{ eta[r] = exp(eta[r] - m); "
            f"den += eta[r]; }}\n"
            f"    for (r = 0; r < {up}_N_CLASSES; ++r) proba[r] += eta[r] / den;\n  }}\n"
            f"  for (r = 0; r < {up}_N_CLASSES; ++r) proba[r] /= {up}_N_DRAWS;\n"
        )
    else:
        proba = (
            f"  double eta, p = 0.0;\n  int s;\n"
            f"  for (s = 0; s < {up}_N_DRAWS; ++s) {{\n"
            f"    {p}_decision_function(x, s, &eta);\n"
            f"    p += eta >= 0 ? 1.0 / (1.0 + exp(-eta)) : exp(eta) / (1.0 + exp(eta));\n"
            f"  }}\n  p /= {up}_N_DRAWS;\n  proba[0] = 1.0 - p;\n  proba[1] = p;\n"
        )
    if s_draws == 1 and model.family == "softmax":
        predict = (
            f"  double eta[{up}_N_CLASSES];\n  int r, best = 0;\n"
            f"  {p}_decision_function(x, 0, eta);\n"
            f"  for (r = 1; r < {up}_N_CLASSES; ++r) if (eta[r] > eta[best]) best = r;\n"
            f"  return best;\n"
        )
    elif s_draws == 1:
        predict = f"  double eta;\n  {p}_decision_function(x, 0, &eta);\n  return eta > 0.0;\n"
    elif model.family == "softmax":
        predict = (
            f"  double proba[{up}_N_CLASSES];\n  int r, best = 0;\n"
            f"  {p}_predict_proba(x, proba);\n"
            f"  for (r = 1; r < {up}_N_CLASSES; ++r) if (proba[r] > proba[best]) "
            f"best = r;\n  return best;\n"
        )
    else:
        predict = f"  double proba[2];\n  {p}_predict_proba(x, proba);\n  return proba[1] > 0.5;\n"
    classes = ", ".join(repr(c.item() if hasattr(c, "item") else c) for c in model.classes_)
    classes = classes.replace("*/", "* /")
    bit_meaning = "0" if xin == "01" else "-1"
    lines = [
        f"/* Generated by bayesbin: packed binary-weight {model.family} model ({model.form}).",
        f" * weight encoding {wenc!r}: W = {'w' if wenc == '01' else '2w - 1'}; "
        f"{s_draws} draw(s); {d} features; classes (index -> label): [{classes}].",
        f" * x_packed: {words} uint64 words, feature j at bit (j % 64) of word (j / 64), LSB "
        f"first;",
        f" * bit 1 means 1 (+1), bit 0 means {bit_meaning}; padding bits are ignored.",
        " * predict returns the class index; predict_proba averages softmax/sigmoid over "
        "draws. Link with -lm. */",
        f"#ifndef {up}_MODEL_H",
        f"#define {up}_MODEL_H",
        "#include <math.h>",
        "#include <stdint.h>",
        f"#define {up}_N_FEATURES {d}",
        f"#define {up}_N_WORDS {words}",
        f"#define {up}_N_DRAWS {s_draws}",
        f"#define {up}_N_ROWS {rows}",
        f"#define {up}_N_CLASSES {k}",
        f"#define {up}_LAST_MASK 0x{mask:016x}ULL",
        f"static const uint64_t {p}_weights[{up}_N_DRAWS][{up}_N_ROWS][{up}_N_WORDS] = {{",
        ",\n".join(w_lines),
        "};",
        popw_line,
        f"static const double {p}_scale[{up}_N_DRAWS] = {{"
        + ", ".join(_c_float(v) for v in model._scale)
        + "};",
        f"static const double {p}_bias[{up}_N_DRAWS][{nb}] = {{"
        + ", ".join("{" + ", ".join(_c_float(v) for v in row) + "}" for row in bias)
        + "};",
        "",
        f"static inline int64_t {p}_popcount64(uint64_t v) {{",
        "#if defined(__GNUC__) || defined(__clang__)",
        "  return (int64_t)__builtin_popcountll(v);",
        "#else",
        "  v = v - ((v >> 1) & 0x5555555555555555ULL);",
        "  v = (v & 0x3333333333333333ULL) + ((v >> 2) & 0x3333333333333333ULL);",
        "  v = (v + (v >> 4)) & 0x0f0f0f0f0f0f0f0fULL;",
        "  return (int64_t)((v * 0x0101010101010101ULL) >> 56);",
        "#endif",
        "}",
        "",
        f"static inline int64_t {p}_score(const uint64_t *x, int s, int r) {{",
        "  int64_t c = 0, cx = 0;\n  int w;\n  (void)cx;",
        score.rstrip("\n"),
        "}",
        "",
        f"static inline void {p}_decision_function(const uint64_t *x, int draw, double *eta) {{",
        logits.rstrip("\n"),
        "}",
        "",
        f"static inline void {p}_predict_proba(const uint64_t *x, double *proba) {{",
        proba.rstrip("\n"),
        "}",
        "",
        f"static inline int {p}_predict(const uint64_t *x_packed) {{",
        "  const uint64_t *x = x_packed;",
        predict.rstrip("\n"),
        "}",
        f"#endif /* {up}_MODEL_H */",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# networks
# --------------------------------------------------------------------------------------------

_NET_HELPERS = r"""
static inline int64_t P_popcount64(uint64_t v) {
#if defined(__GNUC__) || defined(__clang__)
  return (int64_t)__builtin_popcountll(v);
#else
  v = v - ((v >> 1) & 0x5555555555555555ULL);
  v = (v & 0x3333333333333333ULL) + ((v >> 2) & 0x3333333333333333ULL);
  v = (v + (v >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
  return (int64_t)((v * 0x0101010101010101ULL) >> 56);
#endif
}

/* Is the weight of input j of this unit +1? Inputs in NHWC order, C channels per pixel packed
   in wc words (a flat input is one pixel of C = its length). */
static inline int P_wbit(const uint64_t *w, int j, int c, int wc) {
  int ch = j % c;
  return (int)((w[(j / c) * wc + ch / 64] >> (ch % 64)) & 1ULL);
}

/* Dense on levels: s[u] = sum_j q[j] * (+1 or -1). */
static inline void P_dense_levels(const uint16_t *q, int f, int c, int wc, int iw,
                                  const uint64_t *w, int n_out, int64_t *s) {
  int u, j;
  for (u = 0; u < n_out; ++u) {
    int64_t acc = 0;
    for (j = 0; j < f; ++j)
      acc += P_wbit(w + (size_t)u * iw, j, c, wc) ? (int64_t)q[j] : -(int64_t)q[j];
    s[u] = acc;
  }
}

/* Dense on packed +-1 bits: s[u] = n_in - 2 popcount(x XOR w_u). */
static inline void P_dense_bits(const uint64_t *x, int iw, int n_in, const uint64_t *w,
                                int n_out, int64_t *s) {
  int u, k;
  for (u = 0; u < n_out; ++u) {
    int64_t c = 0;
    for (k = 0; k < iw; ++k) c += P_popcount64(x[k] ^ w[(size_t)u * iw + k]);
    s[u] = (int64_t)n_in - 2 * c;
  }
}

/* The network's input step: bit 1 (+1) where q >= q_on, that is where x = q / divisor >
   threshold in float32 (q_on precomputed from that comparison); n_pix pixels of c channels
   (NHWC; a flat input is one pixel), each packed in wc words, padding bits zero. */
static inline void P_binarize(const uint16_t *q, int n_pix, int c, int wc, long q_on,
                              uint64_t *x) {
  int p, ch;
  for (p = 0; p < n_pix * wc; ++p) x[p] = 0;
  for (p = 0; p < n_pix; ++p)
    for (ch = 0; ch < c; ++ch)
      if ((long)q[(size_t)p * c + ch] >= q_on) x[(size_t)p * wc + ch / 64] |= 1ULL << (ch % 64);
}

static inline void P_threshold(const int64_t *s, int n_out, const int64_t *tau,
                               const uint8_t *flip, uint64_t *y) {
  int u;
  for (u = 0; u < (n_out + 63) / 64; ++u) y[u] = 0;
  for (u = 0; u < n_out; ++u)
    if ((s[u] >= tau[u]) != (flip[u] != 0)) y[u / 64] |= 1ULL << (u % 64);
}

/* Score of output channel o at pixel (h, w) of a 3x3 'same' conv with zero padding. */
static inline int64_t P_conv_score(int levels, const uint16_t *q, const uint64_t *x, int hh_n,
                                   int ww_n, int c, int wc, const uint64_t *w, int o, int h,
                                   int wd) {
  int dy, dx, k, ch, n_valid = 0;
  int64_t acc = 0;
  for (dy = 0; dy < 3; ++dy) {
    int hh = h + dy - 1;
    if (hh < 0 || hh >= hh_n) continue;
    for (dx = 0; dx < 3; ++dx) {
      int ww = wd + dx - 1;
      const uint64_t *wt = w + (((size_t)o * 3 + dy) * 3 + dx) * wc;
      if (ww < 0 || ww >= ww_n) continue;
      ++n_valid;
      if (levels) {
        for (ch = 0; ch < c; ++ch) {
          int64_t v = (int64_t)q[((size_t)hh * ww_n + ww) * c + ch];
          acc += ((wt[ch / 64] >> (ch % 64)) & 1ULL) ? v : -v;
        }
      } else {
        for (k = 0; k < wc; ++k)
          acc += P_popcount64(x[((size_t)hh * ww_n + ww) * wc + k] ^ wt[k]);
      }
    }
  }
  return levels ? acc : (int64_t)n_valid * c - 2 * acc;
}

/* Conv, max pooling (pmode 1: on scores; 2: OR of bits; size ps), threshold, packed output. */
static inline void P_conv(int levels, const uint16_t *q, const uint64_t *x, int hh_n, int ww_n,
                          int c, int wc, const uint64_t *w, int n_out, const int64_t *tau,
                          const uint8_t *flip, int ps, int pmode, uint64_t *y) {
  int ph, pw, o, a, b, k, wco = (n_out + 63) / 64;
  for (ph = 0; ph < hh_n / ps; ++ph)
    for (pw = 0; pw < ww_n / ps; ++pw) {
      uint64_t *yy = y + ((size_t)ph * (ww_n / ps) + pw) * wco;
      for (k = 0; k < wco; ++k) yy[k] = 0;
      for (o = 0; o < n_out; ++o) {
        int on = 0;
        int64_t best = INT64_MIN;
        for (a = 0; a < ps; ++a)
          for (b = 0; b < ps; ++b) {
            int64_t s = P_conv_score(levels, q, x, hh_n, ww_n, c, wc, w, o, ph * ps + a,
                                     pw * ps + b);
            if (pmode == 1) {
              if (s > best) best = s;
            } else {
              on |= (s >= tau[o]) != (flip[o] != 0);
            }
          }
        if (pmode == 1) on = (best >= tau[o]) != (flip[o] != 0);
        if (on) yy[o / 64] |= 1ULL << (o % 64);
      }
    }
}
"""


def _c_nested(arr: np.ndarray, fmt) -> str:
    """A C initializer with one brace level per array axis (innermost rows on one line)."""
    arr = np.asarray(arr)
    if arr.ndim == 1:
        return "{" + ", ".join(fmt(v) for v in arr) + "}"
    sep = ",\n" if arr.ndim <= 2 else ",\n\n"
    return "{" + sep.join(_c_nested(a, fmt) for a in arr) + "}"


def _c_words(arr: np.ndarray) -> str:
    return _c_nested(arr, lambda v: f"0x{int(v):016x}ULL")


def _c_ints(arr: np.ndarray) -> str:
    return _c_nested(arr, lambda v: f"INT64_C({int(v)})")


def _c_floats(arr: np.ndarray) -> str:
    return _c_nested(arr, _c_float)


def level_threshold(threshold: float, divisor: float) -> int:
    """The smallest level ``q`` in [0, 65535] with ``float32(q / divisor) > float32(threshold)``.

    The input step compares in float32 (as training does); ``q / divisor`` rounded to float64
    and then to float32 is non-decreasing in ``q`` (correctly rounded operations are monotone),
    so ``q >= level_threshold(t, divisor)`` is exactly that comparison for every uint16 level,
    with no float arithmetic in C.

    Parameters
    ----------
    threshold : float
        The network's ``input_threshold``.
    divisor : float
        Positive; the C input ``q`` means ``x = q / divisor``.

    Returns
    -------
    int
        In [0, 65536]; 65536 when no uint16 level lies above the threshold.
    """
    x = (np.arange(65536, dtype=np.float64) / np.float64(divisor)).astype(np.float32)
    above = x > np.float32(threshold)
    q_on = int(np.argmax(above)) if above.any() else 65536
    if not above[q_on:].all():  # pragma: no cover - guards the monotonicity argument
        raise AssertionError("q / divisor is not monotone in q")
    return q_on


def network_header(net, prefix: str, divisor: float) -> str:
    """The C99 header text of a packed network or ensemble (see ``export_c_header``).

    Parameters
    ----------
    net : PackedNetwork
    prefix : str
        C identifier prefix.
    divisor : float
        The C input ``q`` means ``x = q / divisor``.

    Returns
    -------
    str
    """
    _check_prefix(prefix)
    divisor = float(divisor)
    if not (np.isfinite(divisor) and divisor > 0):
        raise ValueError(f"divisor must be a positive number; got {divisor!r}")
    p, up = prefix, prefix.upper()
    s_n, k_n = net.n_members, net.n_classes
    lines, body, sizes = [], [], []
    threshold = net.input_threshold
    binarized = threshold is not None
    step = []
    if binarized:  # the input step: q -> packed +-1 bits x0, then layer 0 like a hidden one
        q_on = level_threshold(threshold, divisor)
        c0 = net.input_shape[-1]
        n_pix = net.n_features // c0
        x_words = n_pix * ((c0 + 63) // 64)
        lines.append(f"#define {up}_INPUT_THRESHOLD {_c_float(threshold)}")
        lines.append(f"#define {up}_Q_ON {q_on}L")
        step = [
            f"  uint64_t x0[{x_words}];",
            f"  {p}_binarize(q, {n_pix}, {c0}, {(c0 + 63) // 64}, {up}_Q_ON, x0);",
        ]
    for i, lay in enumerate(net.layers):
        w = lay.weights
        dims = "".join(f"[{d}]" for d in w.shape)
        lines.append(f"static const uint64_t {p}_w{i}{dims} = {_c_words(w)};")
        if not lay.head:
            taus, flips = zip(
                *(
                    lay.thresholds(m, divisor, 65535)
                    if lay.first and not binarized
                    else lay.thresholds(m)
                    for m in range(s_n)
                ),
                strict=True,
            )
            lines.append(
                f"static const int64_t {p}_tau{i}[{s_n}][{lay.n_out}] = {_c_ints(np.array(taus))};"
            )
            lines.append(
                f"static const uint8_t {p}_flip{i}[{s_n}][{lay.n_out}] = "
                f"{_c_nested(np.array(flips), lambda v: str(int(v)))};"
            )
        out_words = (
            lay.n_out
            if lay.head
            else int(np.prod(lay.out_shape[:-1], dtype=np.int64)) * ((lay.n_out + 63) // 64)
        )
        sizes.append(out_words)
        src = ("x0" if binarized else "0") if i == 0 else f"a{i - 1}"
        levels = i == 0 and not binarized
        w_m, t_m, f_m = f"&{p}_w{i}[m][0][0]", f"{p}_tau{i}[m]", f"{p}_flip{i}[m]"
        c = lay.in_shape[-1]
        wc = (c + 63) // 64
        if lay.kind == "dense":
            iw = w.shape[2]
            if levels:
                body.append(
                    f"  {p}_dense_levels(q, {lay.fan_in}, {c}, {wc}, {iw}, {w_m}, {lay.n_out}, s);"
                )
            else:
                body.append(f"  {p}_dense_bits({src}, {iw}, {lay.fan_in}, {w_m}, {lay.n_out}, s);")
            if not lay.head:
                body.append(f"  {p}_threshold(s, {lay.n_out}, {t_m}, {f_m}, a{i});")
        else:
            h, wd = lay.in_shape[:2]
            size, on = lay.pool if lay.pool else (1, None)
            pmode = {None: 0, "scores": 1, "bits": 2}[on]
            xs = "q, 0" if levels else f"0, {src}"
            body.append(
                f"  {p}_conv({int(levels)}, {xs}, {h}, {wd}, {c}, {wc}, &{p}_w{i}[m][0][0][0][0], "
                f"{lay.n_out}, {t_m}, {f_m}, {size}, {pmode}, a{i});"
            )
    head = net.layers[-1]
    o = head.output
    lines.append(f"static const double {p}_gamma[{s_n}][{k_n}] = {_c_floats(o.gamma)};")
    lines.append(f"static const double {p}_mean[{s_n}][{k_n}] = {_c_floats(o.mean)};")
    root = np.sqrt(o.var + o.eps[:, None])
    lines.append(f"static const double {p}_root[{s_n}][{k_n}] = {_c_floats(root)};")
    lines.append(f"static const double {p}_beta[{s_n}][{k_n}] = {_c_floats(o.beta)};")
    scale = f" / {_c_float(divisor)}" if head.first and divisor != 1.0 and not binarized else ""
    acts = "".join(f"  uint64_t a{i}[{sizes[i]}];\n" for i in range(len(sizes) - 1))
    s_max = max(lay.n_out for lay in net.layers)
    classes = ", ".join(repr(c.item() if hasattr(c, "item") else c) for c in net.classes_)
    classes = classes.replace("*/", "* /")
    text = [
        f"/* Generated by bayesbin: packed binary network, {s_n} member(s), input shape "
        f"{tuple(net.input_shape)} (NHWC),",
        f" * layers: {repr(net).split('layers=')[1].split(',')[0]}; classes (index -> label): "
        f"[{classes}].",
        f" * Input: q, {net.n_features} uint16 levels in NHWC order, meaning x = q / "
        f"{_c_float(divisor)}.",
        *(
            [
                f" * Input step: +1 where x > {_c_float(threshold)} (in float32, x = q / "
                f"{_c_float(divisor)}, i.e. q >= {up}_Q_ON), else -1;",
                " * the first layer then runs by XNOR-popcount.",
            ]
            if binarized
            else []
        ),
        " * logits(q, member, out) gives one member's K logits (bit-exact with bayesbin's",
        " * PackedNetwork.decision_function); predict_proba averages softmax over members;",
        " * predict returns the class index. Link with -lm. */",
        f"#ifndef {up}_NET_H",
        f"#define {up}_NET_H",
        "#include <math.h>",
        "#include <stddef.h>",
        "#include <stdint.h>",
        f"#define {up}_N_INPUTS {net.n_features}",
        f"#define {up}_N_CLASSES {k_n}",
        f"#define {up}_N_MEMBERS {s_n}",
        *lines,
        _NET_HELPERS.replace("P_", f"{p}_"),
        f"static inline void {p}_logits(const uint16_t *q, int m, double *logits) {{",
        f"  int64_t s[{s_max}];",
        "  int k;",
        acts.rstrip("\n"),
        "\n".join(step + body),
        f"  for (k = 0; k < {k_n}; ++k) {{",
        f"    double sf = (double)s[k]{scale};",
        f"    logits[k] = {p}_gamma[m][k] * (sf - {p}_mean[m][k]) / {p}_root[m][k] + "
        f"{p}_beta[m][k];",
        "  }",
        "}",
        "",
        f"static inline void {p}_predict_proba(const uint16_t *q, double *proba) {{",
        f"  double z[{k_n}], mx, den;",
        "  int m, k;",
        f"  for (k = 0; k < {k_n}; ++k) proba[k] = 0.0;",
        f"  for (m = 0; m < {s_n}; ++m) {{",
        f"    {p}_logits(q, m, z);",
        "    mx = z[0];",
        f"    for (k = 1; k < {k_n}; ++k) if (z[k] > mx) mx = z[k];",
        "    den = 0.0;",
        f"    for (k = 0; k < {k_n}; ++k) {{ z[k] = exp(z[k] - mx); den += z[k]; }}",
        f"    for (k = 0; k < {k_n}; ++k) proba[k] += z[k] / den;",
        "  }",
        f"  for (k = 0; k < {k_n}; ++k) proba[k] /= {s_n};",
        "}",
        "",
        f"static inline int {p}_predict(const uint16_t *q) {{",
        f"  double z[{k_n}];",
        "  int k, best = 0;",
        f"  {p}_logits(q, 0, z);" if s_n == 1 else f"  {p}_predict_proba(q, z);",
        f"  for (k = 1; k < {k_n}; ++k) if (z[k] > z[best]) best = k;",
        "  return best;",
        "}",
        f"#endif /* {up}_NET_H */",
        "",
    ]
    return "\n".join(text)
