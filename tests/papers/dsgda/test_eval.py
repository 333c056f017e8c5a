"""`eval` re-measures a finished `train` run from its saved iterates (trace.pt) with the run's
own config: the newest finished run of the config by default, another with eval_run=<dir>;
the recomputed measures equal summary.json's, a changed summary is reported as differing, and
every wrong run directory is one line, exit 2."""

import json
import shutil
from pathlib import Path

import pytest

import papers.dsgda
from papers.dsgda.__main__ import COMMANDS
from papers.dsgda.config import DSGDAConfig
from shared.cli import run_cli

PAPER_DIR = Path(papers.dsgda.__file__).parent


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two finished smoke trains of ncnc on a ring (seed 0, then seed 1)."""
    root = tmp_path_factory.mktemp("runs")
    for seed in (0, 1):
        assert run_cli("dsgda", DSGDAConfig, COMMANDS, PAPER_DIR,
                       ["train", "--config", "smoke", f"runs_dir={root}", "wandb=false", f"seed={seed}",
                        "problem.setting=ncnc", "sgda.topology=ring"]) == 0
    return root, sorted((root / "dsgda" / "smoke" / "train-ncnc").glob("seed*"))


def _eval(cli, root, *extra):
    code, out, err = cli("dsgda", "eval", "--config", "smoke", f"runs_dir={root}", "problem.setting=ncnc",
                         *extra)
    assert code == 0, err[-2000:]
    return out, json.loads(Path(out.strip().splitlines()[-1].removeprefix("wrote ")).read_text())


def test_eval_recomputes_the_newest_finished_run(cli, runs):
    root, (seed0, seed1) = runs
    out, record = _eval(cli, root)
    assert out.startswith(f"{seed1}: ncnc, T = 60, last output, simulation backend")
    assert "equal to summary.json to rounding" in out
    summary = json.loads((seed1 / "summary.json").read_text())
    assert record["matches_summary"] and record["run_dir"] == str(seed1)
    assert set(record["final"]) == set(summary["final"]) >= {"eps", "client_eps", "gap", "gap_strong", "pop_pd", "consensus"}
    for key, value in summary["final"].items():
        assert record["final"][key] == pytest.approx(value, rel=1e-9, abs=1e-15), key


def test_eval_run_picks_another_run_and_a_changed_summary_differs(cli, runs, tmp_path):
    root, (seed0, _) = runs
    out, record = _eval(cli, root, f"eval_run={seed0}")
    assert out.startswith(f"{seed0}:") and record["matches_summary"]
    copy = tmp_path / "dsgda" / "smoke" / "train-ncnc" / seed0.name
    shutil.copytree(seed0, copy)
    summary = json.loads((copy / "summary.json").read_text())
    summary["final"]["eps"] *= 1.5
    (copy / "summary.json").write_text(json.dumps(summary))
    out, record = _eval(cli, root, f"eval_run={copy}")
    assert not record["matches_summary"] and record["max_rel_diff"] == pytest.approx(1 / 3, rel=1e-6)
    assert "differs from summary.json" in out and "(summary.json" in out


def _broken(tmp_path, seed0, how):
    copy = tmp_path / "dsgda" / "smoke" / "train-ncnc" / seed0.name
    shutil.copytree(seed0, copy)
    if how == "unfinished":
        (copy / "DONE").unlink()
    elif how == "trace":
        (copy / "trace.pt").write_bytes(b"PK\x03\x04 truncated")
    elif how == "no trace":
        (copy / "trace.pt").unlink()
    return copy


@pytest.mark.parametrize("how,message", [
    ("unfinished", "the run has not finished"),
    ("trace", "cannot be read"),
    ("no trace", "has no trace.pt"),
    ("not a run", "not a dsgda train run directory"),
    ("missing", "no such directory"),
    ("none yet", "no finished train run under"),
])
def test_bad_eval_runs_are_one_line(one_line_error, runs, tmp_path, how, message):
    root, (seed0, _) = runs
    setting = "plsc" if how == "none yet" else "ncnc"  # no plsc run was trained
    args = {"not a run": [f"eval_run={tmp_path}"], "missing": [f"eval_run={tmp_path}/nope"],
            "none yet": [f"runs_dir={root}"]}.get(how)
    if args is None:
        args = [f"runs_dir={root}", f"eval_run={_broken(tmp_path, seed0, how)}"]
    assert message in one_line_error("dsgda", "eval", [f"problem.setting={setting}", *args])
