"""Command line: README/CI consistency, --help, demo in fast mode, fit -> predict on a CSV."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from bayesbin.cli import build_parser, main


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
    assert main(["demo", "--out", str(tmp_path), "--quiet", "--sampler", "pymc-gibbs"]) == 0
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


def test_clear_errors(tmp_path):
    with pytest.raises(SystemExit, match="neither mnist"):
        main(["fit", "--data", str(tmp_path / "missing.csv"), "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="no fit found"):
        main(["predict", "--fit", str(tmp_path / "nothing"), "--data", "mnist56"])
    pd.DataFrame({"a": [1.0, 2.0]}).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(SystemExit, match="no label column"):
        main(["fit", "--data", str(tmp_path / "t.csv"), "--out", str(tmp_path)])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["fit"])  # --data is required
