"""Sampler presets: exactness of the "pymc-gibbs" preset against enumeration, provenance, lp."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pymc as pm
import pytest
from helpers import assert_bits_match_exact, bit_draws, enumerate_posterior

import bayesbin
from bayesbin.linear import get_spec, log_posterior
from bayesbin.sampling import resolve_sampler

ALPHA = 1e-3


def _data(seed, n=30, d=3, k=2):
    r = np.random.default_rng(seed)
    x = r.integers(0, 2, size=(n, d)).astype(float) * r.choice([0.5, 1.0], size=(n, d))
    y = r.integers(0, k, size=n)
    return x, y


CASES = {
    "softmax-categorical-01": lambda x, y3, y2: bayesbin.binary_softmax(x[:, :2], y3, 3, scale=0.8),
    "softmax-multinomial-pm1": lambda x, y3, y2: bayesbin.binary_softmax(
        x[:, :2], y3, 3, likelihood="multinomial", encoding="pm1", scale=0.6
    ),
    "logistic-single-pm1": lambda x, y3, y2: bayesbin.binary_logistic(
        x, y2, encoding="pm1", prior_p=0.4
    ),
    "logistic-two_output-01": lambda x, y3, y2: bayesbin.binary_logistic(
        x, y2, form="two_output", scale=1.5
    ),
    "logistic-two_output-pm1": lambda x, y3, y2: bayesbin.binary_logistic(
        x, y2, form="two_output", encoding="pm1", scale=0.7
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_pymc_gibbs_matches_enumeration(case):
    x, y2 = _data(1)
    _, y3 = _data(2, k=3)
    model = CASES[case](x, y3, y2)
    states, probs = enumerate_posterior(model)
    res = bayesbin.sample(
        model,
        sampler="pymc-gibbs",
        draws=3000,
        tune=300,
        chains=2,
        cores=1,
        random_seed=20181,
        progressbar=False,
    )
    assert_bits_match_exact(bit_draws(res), states, probs, alpha=ALPHA)


def test_exact_kit_has_power():
    """The exactness test must reject a wrong sampler: iid draws from the prior fail it."""
    x, y2 = _data(1)
    model = bayesbin.binary_logistic(x, y2, encoding="pm1", scale=2.0)
    states, probs = enumerate_posterior(model)
    r = np.random.default_rng(5)
    wrong = r.integers(0, 2, size=(2, 2000, states.shape[1]))
    with pytest.raises(AssertionError):
        assert_bits_match_exact(wrong, states, probs, alpha=ALPHA)
    right = states[r.choice(len(probs), p=probs, size=(2, 2000))]
    assert_bits_match_exact(right, states, probs, alpha=ALPHA)


def test_result_records_steps_lp_and_compact_bits(tiny_multiclass):
    x, y = tiny_multiclass
    model = bayesbin.binary_softmax(x, y, 3, bias=True, scale=True)
    res = bayesbin.sample(
        model,
        sampler="pymc-gibbs",
        draws=20,
        tune=10,
        chains=2,
        cores=1,
        random_seed=3,
        progressbar=False,
    )
    post = res.posterior
    assert post["w"].dtype == np.int8
    assert res.groups().count("posterior") == 1 and res.groups().count("sample_stats") == 1
    assert post["w"].dims == ("chain", "draw", "feature", "class")
    assert post.attrs["bayesbin_sampler"] == "pymc-gibbs"
    steps = json.loads(post.attrs["bayesbin_steps"])
    assert [s["step"] for s in steps] == ["NUTS", "BinaryGibbsMetropolis"]
    assert steps[1]["vars"] == ["w"]
    assert json.loads(post.attrs["bayesbin_spec"])["n_classes"] == 3
    # lp is the exact model log-posterior of each draw (PyMC's compound step reports 0)
    f = model.compile_logp()
    for c, d in [(0, 0), (1, 7)]:
        point = {
            "w": post["w"].values[c, d].astype(np.int64),
            "b": post["b"].values[c, d],
            "scale_log__": np.log(post["scale"].values[c, d]),
        }
        assert res.sample_stats["lp"].values[c, d] == pytest.approx(f(point), abs=1e-8)
    spec = get_spec(model)
    lp = log_posterior(
        spec, x, y, post["w"].values[0], post["b"].values[0], post["scale"].values[0]
    )
    np.testing.assert_allclose(res.sample_stats["lp"].values[0], lp)
    # ArviZ works on the result directly
    table = bayesbin.summary(res)
    assert {"r_hat", "ess_bulk", "ess_tail", "p_one"} <= set(table.columns)
    assert table.loc["w[0, 0]", "p_one"] == pytest.approx(post["w"].values[:, :, 0, 0].mean())
    assert np.isnan(table.loc["b[0]", "p_one"])


def test_nuts_on_relaxed(tiny_multiclass):
    x, y = tiny_multiclass
    model = bayesbin.binary_softmax(x, y, 3, relaxed=True, bias=True)
    assert resolve_sampler(model) == "nuts"
    res = bayesbin.sample(
        model, draws=30, tune=30, chains=1, cores=1, random_seed=1, progressbar=False
    )
    w = res.posterior["w"].values
    assert w.dtype.kind == "f" and np.all((w > 0) & (w < 1))
    assert json.loads(res.posterior.attrs["bayesbin_steps"])[0]["step"] == "NUTS"


def test_auto_and_bad_presets(tiny_multiclass):
    x, y = tiny_multiclass
    bits = bayesbin.binary_softmax(x, y, 3)
    relaxed = bayesbin.binary_softmax(x, y, 3, relaxed=True)
    assert resolve_sampler(bits) in ("incremental", "pymc-gibbs")
    with pytest.raises(ValueError, match="relaxed=True"):
        resolve_sampler(bits, "nuts")
    with pytest.raises(ValueError, match="has none"):
        resolve_sampler(relaxed, "pymc-gibbs")
    with pytest.raises(ValueError, match="sampler must be one of"):
        resolve_sampler(bits, "hmc")
    with pm.Model() as plain:
        pm.Bernoulli("z", 0.3, shape=2)
    with pytest.raises(ValueError, match="exactly one observed variable; found 0"):
        resolve_sampler(plain, "incremental")
    with pytest.warns(UserWarning, match="falls back to PyMC's BinaryGibbsMetropolis"):
        assert resolve_sampler(plain) == "pymc-gibbs"
    with pytest.raises(ValueError, match="draws must be >= 1"):
        bayesbin.sample(bits, draws=0)
    with pytest.raises(TypeError, match="chains must be an integer"):
        bayesbin.sample(bits, chains=1.5)


def test_mixing_overview_counts_chains_stuck_apart():
    """A bit constant within each chain but different across chains must not look mixed."""
    from bayesbin._compat import to_idata

    w = np.zeros((2, 50, 3), dtype=np.int8)
    w[1, :, 0] = 1  # stuck apart
    w[:, ::2, 1] = 1  # mixes
    res = to_idata({"w": w}, dims={"w": ["feature"]})
    ov = bayesbin.mixing_overview(res)
    assert ov["n_constant"] == 1 and ov["n_stuck_apart"] == 1
    assert ov["max_rhat"] == np.inf and np.isfinite(ov["max_finite_rhat"])
    assert ov["frac_mixing"] == pytest.approx(0.5)


def test_tempering_preset_runs_replica_exchange(tiny_binary):
    x, y = tiny_binary
    model = bayesbin.binary_logistic(x, y, form="two_output", bias=True)
    res = bayesbin.sample(
        model, sampler="tempering", draws=30, tune=30, chains=2, random_seed=4, progressbar=False
    )
    steps = json.loads(res.posterior.attrs["bayesbin_steps"])
    assert steps == [{"step": "ReplicaExchange", "vars": ["w", "b"]}]
    spec = get_spec(model)
    lp = log_posterior(spec, x, y, res.posterior["w"].values[0], res.posterior["b"].values[0])
    np.testing.assert_allclose(res.sample_stats["lp"].values[0], lp, rtol=1e-9)


def _first_draw_point(res, name):
    return np.asarray(res.posterior[name].values[:, 0])


def test_start_auto_is_the_mode_for_own_samplers_and_pymc_point_for_gibbs(tiny_binary):
    """``start="auto"``: bayesbin's samplers start every chain at find_mode's result (recorded
    with the candidates it compared); pymc-gibbs keeps PyMC's initial point."""
    x, y = tiny_binary
    model = bayesbin.binary_logistic(x, y, form="two_output", bias=True, scale=True)
    kw = dict(draws=5, tune=0, chains=2, cores=1, progressbar=False)
    res = bayesbin.sample(model, sampler="incremental", random_seed=11, **kw)
    rec = json.loads(res.posterior.attrs["bayesbin_start"])
    assert rec["kind"] == "mode" and len(rec["candidates"]) >= 1
    assert rec["logp"] == max(lp for _, lp in rec["candidates"])
    mode = bayesbin.find_mode(model, random_seed=bayesbin.sampling._derived_seed(11))
    assert mode.logp == pytest.approx(rec["logp"], abs=1e-9)
    # nothing sampled beats the mode, and the seed fixes the whole run
    assert np.all(res.sample_stats["lp"].values <= rec["logp"] + 1e-9)
    again = bayesbin.sample(model, sampler="incremental", random_seed=11, **kw)
    np.testing.assert_array_equal(again.posterior["w"].values, res.posterior["w"].values)

    gibbs = bayesbin.sample(model, sampler="pymc-gibbs", random_seed=11, **kw)
    assert json.loads(gibbs.posterior.attrs["bayesbin_start"]) == {"kind": "model"}
    model_start = bayesbin.sample(model, sampler="incremental", start="model", random_seed=1, **kw)
    assert json.loads(model_start.posterior.attrs["bayesbin_start"]) == {"kind": "model"}


def test_start_dict_initvals_and_bad_values(tiny_binary):
    x, y = tiny_binary
    model = bayesbin.binary_logistic(x, y, form="two_output", bias=True)
    w0 = np.zeros((2, x.shape[1]), dtype=np.int64)
    kw = dict(draws=3, tune=0, chains=1, cores=1, progressbar=False, random_seed=2)
    # a dict start (or initvals=) is used as given, and recorded as such
    for res in (
        bayesbin.sample(model, sampler="incremental", start={"w": w0, "b": 0.0}, **kw),
        bayesbin.sample(model, sampler="incremental", initvals={"w": w0, "b": 0.0}, **kw),
    ):
        assert json.loads(res.posterior.attrs["bayesbin_start"]) == {"kind": "given"}
    with pytest.raises(ValueError, match="not both"):
        bayesbin.sample(model, start={"w": w0}, initvals={"w": w0}, **kw)
    with pytest.raises(ValueError, match="start must be"):
        bayesbin.sample(model, start="prior", **kw)
    with pytest.raises(ValueError, match="initvals"):
        bayesbin.sample(model, start="mode", initvals={"w": w0}, **kw)
    relaxed = bayesbin.binary_logistic(x, y, form="two_output", relaxed=True)
    with pytest.raises(ValueError, match="start='mode'"):
        bayesbin.sample(relaxed, start="mode", **kw)
    # start="mode" also works for the PyMC Gibbs preset
    res = bayesbin.sample(model, sampler="pymc-gibbs", start="mode", **kw)
    assert json.loads(res.posterior.attrs["bayesbin_start"])["kind"] == "mode"


# ---------------------------------------------------------------------------------------------
# faults: Ctrl-C, bad starts; honest convergence
# ---------------------------------------------------------------------------------------------


def test_ctrl_c_raises_instead_of_returning_a_short_posterior(tiny_multiclass, monkeypatch):
    """PyMC swallows KeyboardInterrupt and returns the draws so far; bayesbin.sample does not."""
    x, y = tiny_multiclass
    model = bayesbin.binary_softmax(x, y, 3, bias=True)
    calls = {"n": 0}
    real = bayesbin.IncrementalGibbs.astep

    def interrupted(self, q0):
        calls["n"] += 1
        if calls["n"] == 30:
            raise KeyboardInterrupt
        return real(self, q0)

    monkeypatch.setattr(bayesbin.IncrementalGibbs, "astep", interrupted)
    with pytest.raises(KeyboardInterrupt, match="interrupted: .* of 50 draws"):
        bayesbin.sample(
            model, draws=50, tune=10, chains=1, cores=1, progressbar=False, start="model"
        )
    assert calls["n"] == 30


@pytest.mark.parametrize(
    ("start", "match"),
    [
        ({"w": "twice"}, "numeric"),
        ({"w": 2 * np.ones((3, 3))}, "bits 0 or 1"),
        ({"scale": -1.0}, "'scale'.* positive"),
        ({"scale": np.nan}, "NaN or infinite"),
        ({"b": [0.0, np.nan, 1.0]}, "'b'.* NaN"),
        ({"b": [0.0, 1.0]}, r"'b'.* shape \(2,\)"),
        ({"gamma": 1.0}, "not a free variable"),
    ],
)
def test_start_values_are_checked_and_named(tiny_multiclass, start, match):
    x, y = tiny_multiclass
    model = bayesbin.binary_softmax(x, y, 3, bias=True, scale=True)
    with pytest.raises(ValueError, match=match):
        bayesbin.sample(model, draws=5, tune=5, chains=1, cores=1, progressbar=False, start=start)
    with pytest.raises(ValueError, match=match):
        bayesbin.sample(
            model, draws=5, tune=5, chains=1, cores=1, progressbar=False, initvals=start
        )
    with pytest.raises(TypeError, match="dict"):
        bayesbin.sampling.check_start(model, [1, 2])


def test_bad_mixing_is_said_out_loud_and_good_mixing_is_not():
    """Chains from PyMC's start on MNIST56 settle in different modes: a ConvergenceWarning."""
    x, y = bayesbin.load_mnist56("train")
    model = bayesbin.binary_logistic(x[:3000], y[:3000], form="two_output", bias=True, scale=True)
    with pytest.warns(bayesbin.ConvergenceWarning, match="Do not trust this posterior yet"):
        res = bayesbin.sample(
            model,
            draws=100,
            tune=50,
            chains=2,
            cores=1,
            random_seed=3,
            progressbar=False,
            start="model",
        )
    record = json.loads(res.posterior.attrs["bayesbin_convergence"])
    assert record["problems"] and "bits" in record and "lp" in record["continuous"]
    # a tiny well-identified posterior, long chains: no warning
    r = np.random.default_rng(5)
    xs = (r.random((200, 2)) < 0.5).astype(float)
    ys = (r.random(200) < 0.2 + 0.6 * xs[:, 0]).astype(int)
    small = bayesbin.binary_logistic(xs, ys, form="two_output", bias=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", bayesbin.ConvergenceWarning)
        res = bayesbin.sample(
            small, draws=1500, tune=500, chains=2, cores=1, random_seed=1, progressbar=False
        )
    assert json.loads(res.posterior.attrs["bayesbin_convergence"])["problems"] == []


def test_results_keep_the_data_compact_and_exact():
    """Pixels k/255 are stored as uint8 (8x smaller than float64) and decode exactly."""
    r = np.random.default_rng(9)
    k = r.integers(0, 256, size=(300, 20))
    x = (k.astype(np.float32) / np.float32(255)).astype(np.float64)
    y = r.integers(0, 3, 300)
    model = bayesbin.binary_softmax(x, y, 3, bias=True, scale=True)
    res = bayesbin.sample(model, draws=10, tune=5, chains=1, cores=1, progressbar=False)
    stored = res.constant_data["x"]
    assert stored.dtype == np.uint8 and stored.nbytes == x.size
    xs, ys = bayesbin.posterior.training_data(res)
    np.testing.assert_array_equal(xs, x)
    np.testing.assert_array_equal(ys, y)


def test_parallel_chains_equal_sequential_chains():
    """Workers forked after warm_up (kernels loaded in the parent) draw what one process draws."""
    x, y = _data(41, n=40, d=4, k=3)
    model = bayesbin.binary_softmax(x, y, 3, bias=True, scale=True)
    kw = dict(draws=60, tune=30, chains=2, random_seed=5, progressbar=False,
              convergence_checks=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seq = bayesbin.sample(model, cores=1, **kw)
        par = bayesbin.sample(model, cores=2, **kw)
    for name in ("w", "b", "scale"):
        np.testing.assert_array_equal(seq.posterior[name].values, par.posterior[name].values)
    np.testing.assert_array_equal(seq.sample_stats["lp"].values, par.sample_stats["lp"].values)


def test_initial_point_is_compiled_once_and_follows_the_model():
    from bayesbin.linear.graph import initial_point

    x, y = _data(42)
    model = bayesbin.binary_softmax(x, y, 2, bias=True)
    first = initial_point(model)
    first["b"][:] = 99.0  # a copy: the cache is not changed through it
    again = initial_point(model)
    assert set(again) == set(model.initial_point())
    for name, value in model.initial_point().items():
        np.testing.assert_array_equal(again[name], value)
    model.set_initval(model["b"], np.full(2, 0.25))  # initvals changed: computed again
    np.testing.assert_array_equal(initial_point(model)["b"], np.full(2, 0.25))
    model.set_initval(model["b"], "prior")  # a random draw per call, as PyMC gives it
    assert not np.array_equal(initial_point(model)["b"], initial_point(model)["b"])


def test_progress_bar_drops_richs_ipywidgets_request_only():
    """rich asks for ipywidgets in every Jupyter cell with a bar; that request, and only it, is
    silenced while bayesbin's bar runs (the user's own warnings still show)."""
    import warnings

    from bayesbin._progress import progress

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with progress("working", 2, True) as task:
            warnings.warn('install "ipywidgets" for Jupyter support', UserWarning, stacklevel=1)
            warnings.warn("the user's own warning", UserWarning, stacklevel=1)
            task.advance(2)
        warnings.warn('install "ipywidgets" for Jupyter support', UserWarning, stacklevel=1)
    assert [str(w.message) for w in seen] == [
        "the user's own warning",
        'install "ipywidgets" for Jupyter support',  # outside the bar: not ours to drop
    ]
