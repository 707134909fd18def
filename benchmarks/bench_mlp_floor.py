"""Benchmark: the floor under the packed MLP's first layer (784 levels -> 512 units, one thread).

Run from the repository root (needs a C compiler; MNIST files optional)::

    python benchmarks/bench_mlp_floor.py
    python benchmarks/bench_mlp_floor.py --trained /path/to/bench_nets_output   # trained weights

The P8 target asks the packed BNN MLP 784-512-512-10 for 8x numpy float32 at batch 1,000. Its
first layer takes real pixels, so it cannot be one popcount plane: the packed path sums the
exact integer levels ``q = 255 x`` against ±1 weights. This script times, on 1,000 MNIST test
images (random sparse pixels without the files), best of ``--repeat``:

* numpy float32 ``x @ W1`` (OpenBLAS, one thread): the float baseline of that layer;
* ``dense_levels_serial``, the shipped numba kernel (sparse level accumulation: int16 lanes
  over the 512 units for each non-zero pixel, int8 masks);
* the same loop written in C (``cc -O3 -march=native``);
* a C/AVX2 kernel that keeps 64 units' accumulators in registers and adds two pixels per
  instruction (``_mm256_maddubs_epi16`` on interleaved ±1 weights), the cheapest instruction
  count we found (AVX2 machines only).

Every kernel's scores are checked equal to the numba kernel's. If hand-written C is no faster
than the numba kernel, the layer's time is the floor of this algorithm on this CPU, and with
it the ratio the whole network can reach.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import ctypes  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

import numpy as np  # noqa: E402

if __name__ == "__main__":  # benchmark the checkout this script lives in
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

__all__ = ["main"]

_C_SOURCE = r"""
#include <stdint.h>
#include <string.h>
#ifdef __AVX2__
#include <immintrin.h>
#endif

/* out[i, c] = sum_j q[i, j] * (m[j, c] ? +1 : -1), the numba kernel's loop */
void plain(const uint8_t *q, const int8_t *m, int32_t *out, int n, int d, int u,
           int16_t *a16, int32_t *a32) {
  for (int i = 0; i < n; i++) {
    memset(a16, 0, u * sizeof(int16_t)); memset(a32, 0, u * sizeof(int32_t));
    int tot = 0, cnt = 0;
    for (int j = 0; j < d; j++) {
      int v = q[(long)i * d + j];
      if (!v) continue;
      tot += v;
      const int8_t *mr = m + (long)j * u;
      for (int c = 0; c < u; c++) a16[c] += (int16_t)(uint8_t)(v & (uint8_t)mr[c]);
      if (++cnt == 128) { for (int c = 0; c < u; c++) { a32[c] += a16[c]; a16[c] = 0; } cnt = 0; }
    }
    for (int c = 0; c < u; c++) out[(long)i * u + c] = 2 * (a32[c] + a16[c]) - tot;
  }
}

int has_pairs(void) {
#ifdef __AVX2__
  return 1;
#else
  return 0;
#endif
}

#ifdef __AVX2__
#define FLUSH(s_lo, s_hi, a) \
  s_lo = _mm256_add_epi32(s_lo, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(a))); \
  s_hi = _mm256_add_epi32(s_hi, _mm256_cvtepi16_epi32(_mm256_extracti128_si256(a, 1)));
#endif

/* wt: (u / 64, d, 64) int8 weights in {-1, +1}; idx/val: scratch of d + 1 entries */
void pairs(const uint8_t *q, const int8_t *wt, int32_t *out, int n, int d, int u,
           int16_t *idx, uint8_t *val) {
#ifdef __AVX2__
  /* unpacklo/hi work per 128-bit lane: accumulator lane k holds unit perm[k] of its 64 */
  static const int perm[64] = {
    0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23,
    8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31,
    32, 33, 34, 35, 36, 37, 38, 39, 48, 49, 50, 51, 52, 53, 54, 55,
    40, 41, 42, 43, 44, 45, 46, 47, 56, 57, 58, 59, 60, 61, 62, 63};
  for (int i = 0; i < n; i++) {
    int nz = 0;
    for (int j = 0; j < d; j++) {
      int v = q[(long)i * d + j]; idx[nz] = (int16_t)j; val[nz] = (uint8_t)v; nz += (v != 0);
    }
    if (nz & 1) { idx[nz] = 0; val[nz] = 0; nz++; }
    for (int t = 0; t < u / 64; t++) {
      const int8_t *w = wt + (long)t * d * 64;
      __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
      __m256i s0 = a0, s1 = a0, s2 = a0, s3 = a0, s4 = a0, s5 = a0, s6 = a0, s7 = a0;
      int steps = 0;
      for (int p = 0; p < nz; p += 2) {
        const int8_t *w1 = w + idx[p] * 64, *w2 = w + idx[p + 1] * 64;
        __m256i kp = _mm256_set1_epi16((int16_t)(val[p] | (val[p + 1] << 8)));
        __m256i x1 = _mm256_loadu_si256((const __m256i *)w1);
        __m256i y1 = _mm256_loadu_si256((const __m256i *)w2);
        __m256i x2 = _mm256_loadu_si256((const __m256i *)(w1 + 32));
        __m256i y2 = _mm256_loadu_si256((const __m256i *)(w2 + 32));
        a0 = _mm256_add_epi16(a0, _mm256_maddubs_epi16(kp, _mm256_unpacklo_epi8(x1, y1)));
        a1 = _mm256_add_epi16(a1, _mm256_maddubs_epi16(kp, _mm256_unpackhi_epi8(x1, y1)));
        a2 = _mm256_add_epi16(a2, _mm256_maddubs_epi16(kp, _mm256_unpacklo_epi8(x2, y2)));
        a3 = _mm256_add_epi16(a3, _mm256_maddubs_epi16(kp, _mm256_unpackhi_epi8(x2, y2)));
        if (++steps == 64) { /* 64 pairs of |k| <= 255: |a| <= 32640, no saturation */
          FLUSH(s0, s1, a0) FLUSH(s2, s3, a1) FLUSH(s4, s5, a2) FLUSH(s6, s7, a3)
          a0 = a1 = a2 = a3 = _mm256_setzero_si256(); steps = 0;
        }
      }
      FLUSH(s0, s1, a0) FLUSH(s2, s3, a1) FLUSH(s4, s5, a2) FLUSH(s6, s7, a3)
      int32_t tmp[64];
      _mm256_storeu_si256((__m256i *)tmp, s0); _mm256_storeu_si256((__m256i *)(tmp + 8), s1);
      _mm256_storeu_si256((__m256i *)(tmp + 16), s2); _mm256_storeu_si256((__m256i *)(tmp + 24), s3);
      _mm256_storeu_si256((__m256i *)(tmp + 32), s4); _mm256_storeu_si256((__m256i *)(tmp + 40), s5);
      _mm256_storeu_si256((__m256i *)(tmp + 48), s6); _mm256_storeu_si256((__m256i *)(tmp + 56), s7);
      for (int c = 0; c < 64; c++) out[(long)i * u + t * 64 + perm[c]] = tmp[c];
    }
  }
#endif
}
"""


def _compile(folder: str):
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if cc is None:
        raise SystemExit("no C compiler found (set CC)")
    src, lib = os.path.join(folder, "floor.c"), os.path.join(folder, "floor.so")
    with open(src, "w") as fh:
        fh.write(_C_SOURCE)
    subprocess.run([cc, "-O3", "-march=native", "-shared", "-fPIC", "-o", lib, src], check=True)
    return ctypes.CDLL(lib)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trained", default=None, help="folder of bench_nets.py (bnn.pkl)")
    p.add_argument("--rows", type=int, default=1000)
    p.add_argument("--repeat", type=int, default=30)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)

    import bench_bits

    from bayesbin.bits import levelkernels as lk
    from bayesbin.bits.packing import levels_input

    rng = np.random.default_rng(0)
    x, _, source = bench_bits.test_pixels(args.rows, rng)
    trained = bench_bits._load_trained(args.trained, 1) if args.trained else {}
    if "mlp" in trained:
        w1 = next(lay["weights"] for lay in trained["mlp"]["layers"] if lay["kind"] == "dense")
        w1 = np.asarray(w1) > 0  # (512, 784): True where the weight is +1
        wsource = "the trained BNN's first layer"
    else:
        w1 = rng.random((512, 784)) < 0.5
        wsource = "random ±1 weights (the work does not depend on them)"
    q = levels_input(x).q  # uint8 levels k
    n, d = q.shape
    u = w1.shape[0]
    masks = np.ascontiguousarray(np.where(w1.T, -1, 0).astype(np.int8))  # (D, U), as shipped
    wt = np.ascontiguousarray(
        np.where(w1.T, 1, -1).astype(np.int8).reshape(d, u // 64, 64).transpose(1, 0, 2)
    )
    wf = np.ascontiguousarray(np.where(w1.T, 1.0, -1.0).astype(np.float32))
    ref = lk.dense_levels_serial(q, masks, True)

    with tempfile.TemporaryDirectory() as tmp:
        lib = _compile(tmp)
        out = np.zeros((n, u), np.int32)
        a16, a32 = np.zeros(u, np.int16), np.zeros(u, np.int32)
        idx, val = np.zeros(d + 1, np.int16), np.zeros(d + 1, np.uint8)

        def ptr(a):
            return a.ctypes.data_as(ctypes.c_void_p)

        def c_plain():
            lib.plain(ptr(q), ptr(masks), ptr(out), n, d, u, ptr(a16), ptr(a32))

        def c_pairs():
            lib.pairs(ptr(q), ptr(wt), ptr(out), n, d, u, ptr(idx), ptr(val))

        cases = {
            "numpy float32 x @ W1 (OpenBLAS)": lambda: x @ wf,
            "numba dense_levels_serial (shipped)": lambda: lk.dense_levels_serial(q, masks, True),
            "C, the same loop (-O3 -march=native)": c_plain,
        }
        c_plain()
        assert np.array_equal(out, ref), "C plain kernel disagrees with the numba kernel"
        if lib.has_pairs():
            out[:] = 0
            c_pairs()
            assert np.array_equal(out, ref), "C AVX2 kernel disagrees with the numba kernel"
            cases["C/AVX2 registers + maddubs pairs"] = c_pairs
        nz = np.count_nonzero(q) / n
        print(f"{n} rows of {source} ({nz:.0f} non-zero levels per row), {wsource}")
        print(f"one thread, best of {args.repeat}, {args.rounds} rounds; load average "
              + ", ".join(f"{v:.1f}" for v in os.getloadavg()))
        base = "numpy float32 x @ W1 (OpenBLAS)"
        for r in range(args.rounds):
            t = {k: 1e3 * bench_bits.best_of(f, args.repeat) for k, f in cases.items()}
            print(f"round {r + 1}")
            for k, v in t.items():
                print(f"  {k:40s} {v:7.2f} ms  {t[base] / v:5.2f}x")
        print("every kernel's scores equal the numba kernel's: True")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
