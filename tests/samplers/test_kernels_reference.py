"""The compiled flip kernels against the one numpy reference (bayesbin.linear.maths)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import bayesbin
from bayesbin.linear import get_spec, log_posterior, model_data
from bayesbin.samplers import kernels as fk
from bayesbin.samplers.adapter import model_problem

SEED = sum(ord(c) for c in "test_kernels_reference")

CASES = list(
    itertools.product(
        ["single", "two_output", "softmax"], ["01", "pm1"], [False, True], [False, True, 0.7]
    )
)


def _model(form, encoding, bias, scale, rng):
    n, d, k = 70, 6, 3
    x = rng.integers(0, 4, size=(n, d)) * 0.3
    x[rng.random((n, d)) < 0.4] = 0.0
    prior_p = rng.uniform(0.2, 0.8, size=(d, k) if form == "softmax" else ())
    if form == "softmax":
        return bayesbin.binary_softmax(
            x, rng.integers(0, k, n), k, encoding=encoding, bias=bias, scale=scale, prior_p=prior_p
        )
    with np.errstate(all="ignore"):
        return bayesbin.binary_logistic(
            x,
            rng.integers(0, 2, n),
            form=form,
            encoding=encoding,
            bias=bias,
            scale=scale,
            prior_p=prior_p,
        )


@pytest.mark.filterwarnings("ignore::bayesbin.OneVectorTrapWarning")
@pytest.mark.parametrize(("form", "encoding", "bias", "scale"), CASES)
def test_kernel_log_posterior_equals_reference(form, encoding, bias, scale):
    rng = np.random.default_rng([SEED, CASES.index((form, encoding, bias, scale))])
    model = _model(form, encoding, bias, scale, rng)
    spec = get_spec(model)
    x, y = model_data(model)
    problem, prior = model_problem(model, own_bias=spec.bias, own_scale=spec.learned_scale)
    for _ in range(5):
        w = rng.integers(0, 2, size=spec.weight_shape)
        b = rng.normal(size=problem.n_cols) if spec.bias else np.zeros(problem.n_cols)
        s = float(rng.uniform(0.2, 2.0)) if spec.learned_scale else spec.fixed_scale
        ref = log_posterior(
            spec,
            x,
            y,
            w[None],
            b[None] if spec.bias else None,
            np.array([s]) if spec.learned_scale else None,
        )[0]
        lp = fk.exact_loglik(problem, w, s, b) + fk.exact_logprior(problem, w)
        lp += fk.theta_logprior(prior, fk.join_theta(prior, s, b))
        assert lp == pytest.approx(ref, rel=1e-12, abs=1e-10)
        # the cached state and every single-bit Δ agree with differences of the reference
        state = fk.init(problem, w, s, b)
        assert state.loglik + fk.exact_logprior(problem, w) == pytest.approx(
            lp - fk.theta_logprior(prior, fk.join_theta(prior, s, b)), rel=1e-12
        )
        flat = w.reshape(-1)
        for bit in rng.choice(flat.size, size=4, replace=False):
            w2 = flat.copy()
            w2[bit] = 1 - w2[bit]
            ref2 = log_posterior(
                spec,
                x,
                y,
                w2.reshape(spec.weight_shape)[None],
                b[None] if spec.bias else None,
                np.array([s]) if spec.learned_scale else None,
            )[0]
            got = fk.flip_delta(problem, state, int(bit))
            assert got == pytest.approx(ref2 - ref, rel=1e-9, abs=1e-9)
