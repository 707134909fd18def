"""Command line: README/CI consistency, --help, demo in fast mode, fit -> predict on a CSV."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from bayesbin.cli import main


def _readme_commands(repo_root):
    text = (repo_root / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_readme_opens_with_two_setup_commands_and_ci_runs_the_second(repo_root):
    cmds = _readme_commands(repo_root)
    assert len(cmds) == 2
    assert "python -m bayesbin demo" in cmds[0]
    assert "pytest" in cmds[1] and ".[test]" in cmds[1]
    ci = (repo_root / ".ci" / "run").read_text()
    assert cmds[1] in ci.splitlines()


@pytest.mark.parametrize("sub", ["demo", "fit", "predict", "export", "benchmark"])
def test_help(sub, capsys):
    with pytest.raises(SystemExit) as exc:
        main([sub, "--help"])
    assert exc.value.code == 0
    assert "usage: bayesbin" in capsys.readouterr().out


def test_demo_fast(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BAYESBIN_FAST", "1")
    assert main(["demo", "--out", str(tmp_path), "--sampler", "pymc-gibbs"]) == 0
    out = capsys.readouterr().out
    assert "test accuracy (posterior predictive):" in out
    assert "r_hat" in out and "ess_bulk" in out
    info = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert 0.5 < info["test_accuracy"] <= 1.0
    assert (tmp_path / "demo" / "idata.nc").is_file()
    assert str((tmp_path / "demo").resolve()) in out


def test_fit_predict_csv(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BAYESBIN_FAST", "1")
    r = np.random.default_rng(0)
    x = r.random((50, 4))
    y = np.where(x[:, 0] > 0.5, "big", "small")
    frame = pd.DataFrame(x, columns=list("abcd"))
    frame["kind"] = y
    frame.to_csv(tmp_path / "train.csv", index=False)
    frame.drop(columns="kind").to_csv(tmp_path / "new.csv", index=False)
    out = tmp_path / "fit"
    assert (
        main(
            [
                "fit",
                "--data",
                str(tmp_path / "train.csv"),
                "--label-column",
                "kind",
                "--out",
                str(out),
                "--quiet",
                "--sampler",
                "pymc-gibbs",
                "--chains",
                "1",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "predict",
                "--fit",
                str(out),
                "--data",
                str(tmp_path / "new.csv"),
                "--output",
                str(tmp_path / "pred.csv"),
            ]
        )
        == 0
    )
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert set(pred["prediction"]) <= {"big", "small"}
    np.testing.assert_allclose(pred[["p_big", "p_small"]].sum(axis=1), 1.0)
    # export: the packed ensemble of every draw reproduces the fit's predictive probabilities
    assert (
        main(
            [
                "export",
                "--fit",
                str(out),
                "--rule",
                "draws",
                "--output",
                str(tmp_path / "m.bbits"),
                "--c-header",
                str(tmp_path / "m.h"),
            ]
        )
        == 0
    )
    import bayesbin

    packed = bayesbin.load_bits(tmp_path / "m.bbits")
    np.testing.assert_allclose(
        packed.predict_proba(x), pred[["p_big", "p_small"]].to_numpy(), atol=1e-9
    )
    assert "uint64_t" in (tmp_path / "m.h").read_text()


BAD = [
    (["fit", "--data", "nope.csv"], "no such file"),
    (["fit", "--data", "weird"], "expected mnist"),
    (["fit", "--data", "mnist56", "--sampler", "hmc"], "invalid choice"),
    (["fit", "--data", "mnist56", "--n-train", "-5"], "positive integer"),
    (["fit", "--data", "mnist56", "--n-train", "five"], "positive integer"),
    (["fit", "--data", "mnist56", "--draws", "0"], "positive integer"),
    (["fit", "--data", "mnist56", "--tune", "-1"], ">= 0"),
    (["fit", "--data", "mnist56", "--scale", "-2"], "'learn' or a positive number"),
    (["fit", "--data", "mnist56", "--family", "probit"], "invalid choice"),
    (["fit", "--data", "mnist56", "--n-train", "999999"], "exceeds the 11339"),
    (["fit"], "required: --data"),
    (["predict", "--fit", "nothing", "--data", "mnist56"], "no fit found"),
    (["export", "--fit", "nothing"], "no fit found"),
    (["export", "--fit", "x", "--n-draws", "0"], "positive integer"),
    (["export"], "exactly one of --fit"),
    (["export", "--fit", "a", "--bits", "b"], "exactly one of --fit"),
    (["export", "--bits", "none.bbits"], "no such file"),
    (["export", "--bits", "x.bbits", "--divisor", "0"], "positive number"),
    (["benchmark", "nosuch"], "no benchmark 'nosuch'"),
    (["nocommand"], "invalid choice"),
    ([], "required"),
]


@pytest.mark.parametrize(("argv", "match"), BAD, ids=[" ".join(a) or "empty" for a, _ in BAD])
def test_user_errors_are_one_line_with_status_2(argv, match, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert re.search(match, lines[0]), lines[0]


def test_csv_errors_name_the_file(tmp_path, capsys):
    pd.DataFrame({"a": [1.0, 2.0]}).to_csv(tmp_path / "t.csv", index=False)
    assert main(["fit", "--data", str(tmp_path / "t.csv"), "--out", str(tmp_path)]) == 2
    assert "no label column 'label'" in capsys.readouterr().err
    (tmp_path / "bad.csv").write_text("a,label\nx,1\ny,0\n")
    assert main(["fit", "--data", str(tmp_path / "bad.csv"), "--out", str(tmp_path)]) == 2
    assert "must be numbers" in capsys.readouterr().err


def test_help_answers_without_importing_pymc():
    import subprocess
    import sys

    code = (
        "import sys, time; t = time.perf_counter()\n"
        "from bayesbin.cli import main\n"
        "try:\n    main(['fit', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('PYMC', 'pymc' in sys.modules, time.perf_counter() - t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    line = out.stdout.strip().splitlines()[-1]
    assert line.startswith("PYMC False"), line
    assert "(default: 1000)" in out.stdout  # every option shows its default


def test_sampler_choices_match_the_presets():
    import bayesbin.sampling
    from bayesbin.cli import SAMPLER_CHOICES

    assert SAMPLER_CHOICES == bayesbin.sampling.SAMPLERS


def test_headerless_csv_with_held_out_test_and_the_resolved_sampler(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BAYESBIN_FAST", "1")
    r = np.random.default_rng(1)
    x = (r.random((80, 3)) < 0.5).astype(float)
    y = (x[:, 0] > 0).astype(int)
    data = np.column_stack([x, y])
    np.savetxt(tmp_path / "train.csv", data[:60], delimiter=",", fmt="%g")
    np.savetxt(tmp_path / "test.csv", data[60:], delimiter=",", fmt="%g")
    out = tmp_path / "fit"
    argv = ["fit", "--data", str(tmp_path / "train.csv"), "--no-header"]
    argv += ["--test", str(tmp_path / "test.csv"), "--out", str(out), "--chains", "1"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "test accuracy (posterior predictive):" in printed and "mixing:" in printed
    info = json.loads((out / "results.json").read_text())
    assert info["sampler"] == "incremental" and info["sampler_requested"] == "auto"
    assert 0.5 < info["test_accuracy"] <= 1.0 and info["n_train"] == 60
    assert info["draws"] == 60 and info["chains"] == 1  # what was sampled (fast mode)
    assert "problems" in info["convergence"]
    # --quiet prints nothing at all
    assert main([*argv, "--quiet", "--out", str(tmp_path / "q")]) == 0
    assert capsys.readouterr().out == ""


def test_ctrl_c_writes_no_results(tmp_path, capsys, monkeypatch):
    import bayesbin

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(bayesbin, "fit", interrupted)
    out = tmp_path / "fit"
    assert main(["fit", "--data", "mnist56", "--out", str(out), "--quiet"]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert not (out / "results.json").exists()
