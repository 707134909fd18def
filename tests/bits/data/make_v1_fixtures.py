"""Write the version-1 ``.bbits`` fixtures and their expected outputs (run ONCE, at commit 737394b).

These files were written by the version-1 writer of ``bayesbin.bits`` (the 1,550-line module of
P5 step 1, commit 737394b) before the layer seam existed. They must never be regenerated with a
later writer: ``tests/bits/test_v1_files.py`` proves that files from that code keep loading and
predicting the same. Kept only as a record of how they were made::

    # in a checkout of 737394b (never again on later code):
    python tests/bits/data/make_v1_fixtures.py
"""

from __future__ import annotations

import pathlib

import numpy as np

from bayesbin.bits import FORMAT_VERSION, PackedClassifier, PackedEnsemble
from bayesbin.linear.spec import ModelSpec, weight_layout

HERE = pathlib.Path(__file__).resolve().parent


def spec_dict(form: str, encoding: str, d: int, k: int, *, bias: bool, scale) -> dict:
    shape, dims = weight_layout(form, d, k)
    family = "softmax" if form == "softmax" else "logistic"
    likelihood = "categorical" if family == "softmax" else "bernoulli"
    return ModelSpec(
        family, form, likelihood, encoding, d, k, shape, dims, 0.5, bias=bias, scale=scale
    ).to_dict()


def main() -> None:
    assert FORMAT_VERSION == 1, "the fixtures must be written by the version-1 writer"
    rng = np.random.default_rng(20240601)
    d_soft, k, d_two, s_draws = 70, 3, 37, 5
    models = {}
    # softmax classifier: 01 weights, string classes, exact inputs
    w = rng.integers(0, 2, size=(d_soft, k))
    models["v1_clf_softmax"] = PackedClassifier.from_bits(
        w,
        form="softmax",
        weight_encoding="01",
        scale=0.37,
        bias=rng.normal(size=k),
        classes=["cat", "dog", "eel"],
        metadata={
            "rule": "marginal",
            "spec": spec_dict("softmax", "01", d_soft, k, bias=True, scale=True),
            "draw_index": [0, 1],
        },
    )
    # softmax ensemble: pm1 weights, binarized inputs (threshold 0.25), int classes
    w = rng.integers(0, 2, size=(s_draws, d_soft, k))
    models["v1_ens_softmax"] = PackedEnsemble.from_bits(
        w,
        form="softmax",
        weight_encoding="pm1",
        scale=rng.uniform(0.05, 0.5, size=s_draws),
        bias=rng.normal(size=(s_draws, k)),
        classes=[3, 5, 8],
        inputs="binarize",
        binarize_threshold=0.25,
        metadata={
            "rule": "draws",
            "spec": spec_dict("softmax", "pm1", d_soft, k, bias=True, scale=True),
            "draw_index": list(range(5)),
        },
    )
    # two-output classifier: pm1 weights and pm1 inputs, classes -1 / 1
    w = rng.integers(0, 2, size=(2, d_two))
    models["v1_clf_two_output"] = PackedClassifier.from_bits(
        w,
        form="two_output",
        weight_encoding="pm1",
        scale=0.5,
        bias=-0.25,
        classes=[-1, 1],
        input_encoding="pm1",
        metadata={
            "rule": "map",
            "spec": spec_dict("two_output", "pm1", d_two, 2, bias=True, scale=0.5),
            "draw_index": [7],
        },
    )
    # two-output ensemble: 01 weights, float classes
    w = rng.integers(0, 2, size=(s_draws, 2, d_two))
    models["v1_ens_two_output"] = PackedEnsemble.from_bits(
        w,
        form="two_output",
        weight_encoding="01",
        scale=rng.uniform(0.05, 0.5, size=s_draws),
        bias=rng.normal(size=s_draws),
        classes=[0.5, 1.5],
        metadata={
            "rule": "draws",
            "spec": spec_dict("two_output", "01", d_two, 2, bias=True, scale=True),
            "draw_index": list(range(5)),
        },
    )
    expected = {}
    for name, model in models.items():
        d = model.n_features
        q = rng.integers(0, 256, size=(6, d))
        inputs = {
            "bits01": rng.integers(0, 2, size=(6, d)).astype(np.float64),
            "bitspm1": 2.0 * rng.integers(0, 2, size=(6, d)) - 1.0,
            "planes": q,
            "planes255": q / 255.0,
            "float": rng.normal(size=(6, d)),
        }
        for path, x in inputs.items():
            key = f"{name}.{path}"
            expected[f"{key}.x"] = x
            expected[f"{key}.decision_function"] = model.decision_function(x)
            expected[f"{key}.predict_proba"] = model.predict_proba(x)
            expected[f"{key}.predict"] = np.asarray(model.predict(x))
        model.save(HERE / f"{name}.bbits")
    np.savez(HERE / "v1_expected.npz", **expected)


if __name__ == "__main__":
    main()
