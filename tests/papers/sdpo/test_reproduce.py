"""End to end: `reproduce --config smoke` writes the reward-by-steps table for the base model
and every method, the ablation table, claims, curves and image grids; the same seed gives
identical numbers; `resume=latest` reuses finished runs; user errors end with one line and
exit code 2."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import papers.sdpo
from papers.sdpo import claims as sdpo_claims
from papers.sdpo import report, reproduce
from shared.results import VERDICTS

PAPER_DIR = Path(papers.sdpo.__file__).parent
REPO = PAPER_DIR.parents[1]


@pytest.fixture
def first_run(smoke_reproduce):
    return smoke_reproduce


def test_smoke_reproduce_reports_rewards_by_steps_for_base_and_every_method(first_run):
    _, _, out, results = first_run
    assert (out / "RESULTS.md").read_text().startswith("# SDPO")
    main, ablations = results["tables"][:2]
    assert [row[0] for row in main["rows"]] == ["base", "sdpo", "ddpo", "d3po", "rebel"]
    assert main["columns"][1:5] == ["1 step", "2 steps", "4 steps", "8 steps"]
    assert [row[0] for row in ablations["rows"]] == [
        "base", "sdpo", "sdpo-sparse", "sdpo-oracle", "sdpo-no-shuffle"]
    for method in ("sdpo", "ddpo", "d3po", "rebel"):
        assert results["methods"][method]["reward_1"]["n"] == 2
    assert results["methods"]["sdpo-sparse"]["reward_8"]["n"] == 1
    # the base row is the common starting point of every run
    base = results["methods"]["base"]["reward_4"]["mean"]
    for method in ("sdpo", "ddpo"):
        gains = results["methods"][method]["gain_4"]["values"]
        finals = results["methods"][method]["reward_4"]["values"]
        assert [pytest.approx(f - g) for f, g in zip(finals, gains, strict=True)] == [base, base]
    claims = [c["claim"] for c in results["claims"]]
    assert claims[0].startswith("SDPO improves the reward at every step count")
    assert sum("SDPO beats" in c for c in claims) == 3
    (dense,) = [c for c in results["claims"] if c["claim"].startswith("Dense rewards")]
    assert dense["ours"].endswith("(seeds [0])")  # ablations (1 seed) are paired with SDPO's seed 0
    assert results["schema"] == 2 and all(c["verdict"] in VERDICTS for c in results["claims"])
    # a fresh run records what the preconditions read: curves, settings, and the power table
    titles = [t["title"] for t in results["tables"]]
    assert titles[2:] == [sdpo_claims.SETTINGS_TABLE, sdpo_claims.CURVES_TABLE, report.DIAGNOSTICS_TABLE,
                          reproduce.SWEEP_TABLE, sdpo_claims.POWER_TABLE]
    # the sweep: every method at every point, one chosen each, on the same budget
    sweep = sdpo_claims.table(results["tables"], reproduce.SWEEP_TABLE)
    assert [r[0] for r in sweep["rows"]] == ["sdpo", "ddpo", "d3po", "rebel"]
    assert sorted(r[0] for r in sweep["rows"] if r[-1] == "yes") == ["d3po", "ddpo", "rebel", "sdpo"]
    settings = sdpo_claims.table(results["tables"], sdpo_claims.SETTINGS_TABLE)
    assert all(r[3] == [1e-2] and "chosen lr 0.0003" in r[4] for r in settings["rows"] if r[2] != "none")
    diag = sdpo_claims.table(results["tables"], report.DIAGNOSTICS_TABLE)
    queries = {r[0]: r[4] for r in diag["rows"]}
    assert queries["sdpo"] == 3 * queries["ddpo"] and queries["sdpo-oracle"] == 3 * queries["ddpo"]  # T = 3
    curves = sdpo_claims.table(results["tables"], sdpo_claims.CURVES_TABLE)
    assert {(r[0], r[1]) for r in curves["rows"]} == {(name, n) for name in results["methods"] if name != "base"
                                                        for n in (1, 2, 4, 8)}
    for c in results["claims"]:
        for p in c["preconditions"]:
            assert p["value"] != "not recorded", (c["claim"], p["name"])
    # the curve starts at the base model and ends at the final evaluation
    (sdpo_curve,) = [r for r in curves["rows"] if r[:2] == ["sdpo", 1]]
    assert sdpo_curve[3][0] == pytest.approx(results["methods"]["base"]["reward_1"]["mean"], abs=1e-4)
    assert sdpo_curve[3][-1] == pytest.approx(results["methods"]["sdpo"]["reward_1"]["mean"], abs=1e-4)
    for plot in results["plots"]:
        assert (out / plot).read_bytes()[:4] == b"\x89PNG"
    assert {"grid_base.png", "grid_sdpo.png", "gain_vs_steps.png", "reward_vs_samples_1step.png"} <= set(results["plots"])


def test_same_seed_gives_identical_results_and_resume_reuses_runs(first_run, tmp_path, run_reproduce):
    root, data, _, results = first_run
    _, again = run_reproduce(tmp_path, data, "train.methods=[sdpo,d3po]", "train.ablations=[]")
    for method in ("sdpo", "d3po", "base"):
        assert again["methods"][method] == results["methods"][method]
    before = sorted((root / "sdpo" / "smoke" / "sdpo").iterdir())
    _, reused = run_reproduce(root, data, "resume=latest", "train.methods=[sdpo]", "train.ablations=[]")
    assert sorted((root / "sdpo" / "smoke" / "sdpo").iterdir()) == before
    assert reused["methods"]["sdpo"] == results["methods"]["sdpo"]


def test_eval_command_scores_the_latest_checkpoint(first_run, cli):
    root, data, _, _ = first_run
    code, out, err = cli("sdpo", "eval", "--config", "smoke", f"runs_dir={root}", f"data_dir={data}",
                         "wandb=false", "method=rebel")
    assert code == 0, err
    assert "at epoch 2" in out and "8 steps" in out
    grid = Path(out.strip().splitlines()[-1].split("grid: ")[1])
    assert grid.exists() and grid.parent.parent.parent.name == "rebel"
    record = json.loads((grid.parent / "epoch2.json").read_text())
    assert record["method"] == "rebel" and record["seed"] == 0 and record["epoch"] == 2
    # the final evaluation of a finished run is what training recorded for it
    summary = json.loads((grid.parent.parent / "summary.json").read_text())
    assert [record[str(n)] for n in (1, 2, 4, 8)] == [summary[f"final_{n}"] for n in (1, 2, 4, 8)]


def test_eval_takes_the_newest_finished_run_or_the_given_one(first_run, cli, tmp_path):
    root, data, _, _ = first_run
    common = ["--config", "smoke", f"runs_dir={root}", f"data_dir={data}", "wandb=false"]
    (finished,) = sorted((root / "sdpo" / "smoke" / "d3po").glob("seed1-*"))
    newer = finished.parent / "seed1-99991231-000000-000000"  # newer, unfinished, no checkpoint
    newer.mkdir()
    (newer / "run.json").write_text(json.dumps({"method": "d3po", "ablation": "", "seed": 1}))
    try:
        code, out, err = cli("sdpo", "eval", *common, "method=d3po", "seed=1")
        assert code == 0, err
        assert out.startswith(f"{finished} at epoch 2")
        # a run given as resume=<dir> is scored with its own method and seed
        code, out, err = cli("sdpo", "eval", *common, f"resume={finished}")
        assert code == 0, err
        assert out.startswith(f"{finished} at epoch 2")
        code, _, err = cli("sdpo", "eval", *common, f"resume={newer}")
        assert code == 2 and err.strip() == f"error: run {newer} has no checkpoint yet"
        code, _, err = cli("sdpo", "eval", *common, f"resume={tmp_path}")
        assert code == 2 and "not a run directory of sdpo/smoke" in err and len(err.strip().splitlines()) == 1
    finally:
        newer.joinpath("run.json").unlink()
        newer.rmdir()


@pytest.mark.parametrize("command, args, words", [
    ("train", ["method=sdpoo"], ["method", "not one of"]),
    ("train", ["ablation=dense"], ["ablation", "not in"]),
    ("train", ["sample.pairs_per_epoch=3"], ["multiple of train.batch_size"]),
    ("train", ["policy.model=stable-diffusion", "policy.path=/nowhere"], ["/nowhere"]),
    ("train", ["reward.name=pickscore"], ["reward.path"]),
    ("eval", ["method=ddpo"], ["no ddpo run"]),
])
def test_user_errors_exit_2_with_one_line(one_line_error, tmp_path, command, args, words):
    line = one_line_error("sdpo", command, ["wandb=false", *args])
    for word in words:
        assert word in line
    assert not list((tmp_path / "runs").rglob("seed*"))  # no run directory is left behind


def test_a_user_error_from_the_real_entry_point_is_one_line(tmp_path):
    """One true subprocess: `python -m papers.sdpo` itself exits 2 with a single error line."""
    env = {"HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "papers.sdpo", "train", "--config", "smoke",
                           "train.lr=-0.1", f"runs_dir={tmp_path}/runs", f"data_dir={tmp_path}/data"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip() == "error: config key 'train.lr': -0.1 is out of range (allowed: > 0)"
