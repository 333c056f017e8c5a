"""End to end: `reproduce --config smoke` writes schema-2 claims, sweep and curve tables and
plots; the same seed gives identical numbers; `resume=latest` reuses finished runs and redoes a run
that died before finishing; `train` is deterministic; bad input is a one-line exit 2."""

import json
from pathlib import Path

import pytest

import papers.dsgda
from papers.dsgda.__main__ import COMMANDS
from papers.dsgda.config import DSGDAConfig
from shared.cli import run_cli
from shared.results import VERDICTS, validate

PAPER_DIR = Path(papers.dsgda.__file__).parent
SETTINGS = ["cc", "plsc", "bilinear", "nonpl"]  # configs/smoke.yaml


def _cli(*argv):
    return run_cli("dsgda", DSGDAConfig, COMMANDS, PAPER_DIR, list(argv))


def _reproduce(root, *extra):
    assert _cli("reproduce", "--config", "smoke", f"runs_dir={root}", "wandb=false",
                "sweep.processes=1", *extra) == 0
    outs = sorted((root / "dsgda" / "smoke" / "reproduce").iterdir())
    return outs[-1], json.loads((outs[-1] / "results.json").read_text())


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return root, *_reproduce(root)


def test_smoke_reproduce_writes_claims_tables_and_plots(first_run):
    _, out, results = first_run
    assert (out / "RESULTS.md").read_text().startswith("# Stability and Generalization for Distributed SGDA")
    assert results["paper"] == "dsgda" and results["seeds"] == [0, 1]
    texts = [c["claim"] for c in results["claims"]]
    for setting in SETTINGS:  # every setting: T trend, N trends, optimal T, K and topology (iid, skew)
        assert sum(t.startswith(setting.upper() + ":") for t in texts) >= 8, setting
    assert any("bounded" in t for t in texts) and any("grows with η" in t for t in texts)
    validate(results)
    assert all(c["verdict"] in VERDICTS for c in results["claims"])
    assert all(c["reason"] for c in results["claims"] if c["verdict"] == "inconclusive")
    assert len(results["tables"]) == 8  # per setting: every grid point, and the per-seed curves
    assert [t["columns"][3] for t in results["tables"]] == ["spectral gap", "metric"] * 4
    sweeps = {row[1] for row in results["tables"][0]["rows"]}
    assert sweeps == {"T", "eta", "K", "topology", "m", "N", "split", "K_skew", "topology_skew"}
    notes = " ".join(n["note"] for n in results["protocol_notes"])
    assert "per-client distance − ε" in notes and "weak − strong PD risk" in notes
    assert len(results["plots"]) == 16
    for plot in results["plots"]:
        assert (out / plot).read_bytes()[:4] == b"\x89PNG"
    base = next(v for k, v in results["methods"].items() if k.startswith("cc:"))
    assert base["ε (stability)"]["n"] == 2 and base["ε (stability)"]["mean"] > 0
    assert 0.0 <= base["test AUC"]["mean"] <= 1.0  # smoke trains 60 steps: AUC is near chance


def _same(a, b) -> bool:
    """Equal as JSON (a NaN estimate compares equal to itself)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


@pytest.fixture
def no_plots(monkeypatch):
    """Skip drawing the 16 plots (half a smoke reproduce's time) where a test compares only
    numbers; test_smoke_reproduce_writes_claims_tables_and_plots checks the plots."""
    from papers.dsgda import plots

    monkeypatch.setattr(plots, "all_plots", lambda res, out: [])


def test_same_seed_gives_identical_results(first_run, tmp_path, no_plots):
    _, _, results = first_run
    _, again = _reproduce(tmp_path)
    for key in ("methods", "claims", "protocol_notes", "tables", "seeds"):
        assert _same(again[key], results[key]), key


def test_resume_reuses_finished_runs_and_redoes_a_dead_one(first_run, no_plots):
    root, _, results = first_run
    runs = sorted((root / "dsgda" / "smoke").glob("sweep-*/seed*"))
    assert len(runs) == 8
    dead = runs[3]  # as if killed mid-run: no result, no DONE marker
    (dead / "result.json").unlink()
    (dead / "DONE").unlink()
    stamps = {p: (p / "result.json").stat().st_mtime_ns for p in runs if p != dead}
    _, resumed = _reproduce(root, "resume=latest")
    assert sorted((root / "dsgda" / "smoke").glob("sweep-*/seed*")) == runs
    assert all((p / "result.json").stat().st_mtime_ns == t for p, t in stamps.items())
    assert (dead / "DONE").exists()
    for key in ("methods", "claims", "tables"):
        assert _same(resumed[key], results[key]), key


def _train(root, *extra):
    assert _cli("train", "--config", "smoke", f"runs_dir={root}", "wandb=false", *extra) == 0
    run = sorted((root / "dsgda" / "smoke").glob("train-*/seed*"))[-1]
    return json.loads((run / "summary.json").read_text())


def test_train_is_deterministic_and_seed_dependent(tmp_path):
    a = _train(tmp_path / "a", "problem.setting=ncnc", "sgda.topology=ring")
    b = _train(tmp_path / "b", "problem.setting=ncnc", "sgda.topology=ring")
    c = _train(tmp_path / "c", "problem.setting=ncnc", "sgda.topology=ring", "seed=1")
    assert a["final"] == b["final"] and a["curves"] == b["curves"]
    assert a["final"] != c["final"]
    assert a["W"]["spectral_gap"] == pytest.approx(1 - 1 / 3, abs=1e-12)  # ring of 4: λ = 1/3
    assert set(a["final"]) >= {"eps", "client_eps", "gap", "gap_strong", "train_pd", "pop_pd", "pop_primal", "consensus"}


def test_local_sgda_learns_the_auc_problem(tmp_path):
    run = _train(tmp_path, "problem.setting=cc", "sgda.steps=800", "sgda.lr_x=0.05", "sgda.lr_y=0.05",
                 "sgda.topology=ring", "sgda.local_steps=4")
    first = run["curves"]["avg/test_auc"][0]
    assert run["final"]["test_auc"] > max(0.65, first + 0.1)  # N = 72 samples: it overfits early
    assert run["curves"]["avg/pop_primal"][-1] < run["curves"]["avg/pop_primal"][0]


@pytest.mark.parametrize("override,message", [
    ("problem.setting=nope", "problem.setting"),
    ("sgda.topology=matrix", "matrix_path"),
    ("sgda.clients=5 sgda.topology=torus", "torus"),
    ("sweep.total_samples=[37]", "not divisible"),
    ("sgda.backend=distributed", "torchrun"),
    ("data.dataset=breast_cancer problem.setting=plsc", "breast_cancer"),
])
def test_bad_input_is_one_line_exit_2(one_line_error, tmp_path, override, message):
    command = "reproduce" if "sweep." in override else "train"
    assert message in one_line_error("dsgda", command, [f"runs_dir={tmp_path}", "wandb=false", *override.split()])

