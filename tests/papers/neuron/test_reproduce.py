"""End to end: `reproduce --config smoke` (synthesis, MiniLM text, encoders per split, every
head) writes schema-2 claims, protocol notes, tables (with the heads' loss curves) and plots;
`train` is deterministic for a seed and reuses the cached encoder features; `resume=latest`
reuses finished runs; `eval` re-scores a finished head run to its recorded result; bad input
exits 2 with one line."""

import json
from pathlib import Path

import pytest

import papers.neuron
from papers.neuron.__main__ import COMMANDS
from papers.neuron.claims import ENCODER_CURVE_TITLE, HEAD_TITLE, SWEEP_TITLE, VAL_TITLE
from papers.neuron.config import NeuronExperimentConfig
from shared.cli import run_cli
from shared.results import VERDICTS, validate

PAPER_DIR = Path(papers.neuron.__file__).parent


def _cli(*argv):
    return run_cli("neuron", NeuronExperimentConfig, COMMANDS, PAPER_DIR, list(argv))


@pytest.fixture
def smoke(neuron_smoke):
    """The session's smoke reproduce (conftest.py): (runs root, reproduce dir, results)."""
    return neuron_smoke


def test_smoke_reproduce_writes_claims_tables_and_plot(smoke):
    _, out, results = smoke
    assert (out / "RESULTS.md").read_text().startswith("# Neuron:")
    assert set(results["methods"]) == {"neuron", "devise", "smie", "neuron-spatial_only",
                                       "neuron-temporal_only", "neuron-no_compression",
                                       "neuron-no_gating", "neuron-single_text"}
    validate(results)
    texts = [c["claim"] for c in results["claims"]]
    assert all(c["verdict"] in VERDICTS for c in results["claims"])
    notes = [n["note"] for n in results["protocol_notes"]]
    assert any("beats devise" in t for t in texts) and any("OR-fusion" in t for t in notes)
    assert any("test set overstates" in t for t in notes) and sum("hurts" in t for t in texts) == 5
    assert not any("OR-fusion" in t or "test set" in t for t in texts)  # by construction: notes
    zsl, gzsl = results["tables"][0], results["tables"][1]
    assert {row[0] for row in gzsl["rows"]} == {"neuron", "devise", "smie"}
    neuron5 = next(r for r in zsl["rows"] if r[0] == "neuron" and r[1] == 5)
    assert neuron5[3]["mean"] >= neuron5[2]["mean"]  # oracle OR ≥ honest fusion, by construction
    assert all((out / p).read_bytes()[:4] == b"\x89PNG" for p in results["plots"])
    assert results["methods"]["neuron"]["ZSL top-1 (5 unseen)"]["n"] == 2
    assert results["wall_time_s"] > 0


def test_smoke_reproduce_records_head_curves_that_the_claims_read(smoke):
    _, out, results = smoke
    training = next(t for t in results["tables"] if t["title"] == HEAD_TITLE)
    assert training["columns"][3:] == ["step 2", "step 4", "step 6"]  # smoke: 6 steps, 3 log points
    assert {row[0] for row in training["rows"]} == set(results["methods"])
    validation = next(t for t in results["tables"] if t["title"] == VAL_TITLE)
    assert {row[0] for row in validation["rows"]} == set(results["methods"])  # ablations too
    for name in ("head_training_loss.png", "head_validation_zsl.png", "encoder_seen_accuracy.png"):
        assert any(p.endswith(name) for p in results["plots"]), name
    for claim in results["claims"]:
        for kind in ("converged", "validation plateaued", "learned"):
            measured = [p for p in claim["preconditions"] if p["name"].startswith(kind)]
            assert len(measured) == 2 and all(isinstance(p["value"], float) for p in measured)
    # smoke heads at logit scale 0.1 barely move: the learned precondition must say so
    assert not all(p["ok"] for c in results["claims"] for p in c["preconditions"]
                   if p["name"].startswith("learned"))


def test_smoke_reproduce_sweeps_every_head_on_held_out_classes_and_trains_at_the_choice(smoke):
    root, out, results = smoke
    sweep = next(t for t in results["tables"] if t["title"] == SWEEP_TITLE)
    rows = sweep["rows"]
    # smoke: lr [0.1] × scales [0.1, 1] for the scaled heads, lr only for SMIE's critic; 2 splits
    assert sorted((r[0], r[2], r[4]) for r in rows if r[0] == "neuron") == [
        ("neuron", "u12-0", 0.1), ("neuron", "u12-0", 1.0), ("neuron", "u5-0", 0.1), ("neuron", "u5-0", 1.0)]
    assert sorted(r[4] for r in rows if r[0] == "smie") == ["", ""]
    for method in ("neuron", "devise", "smie"):
        for split in ("u5-0", "u12-0"):
            picked = [r for r in rows if r[0] == method and r[2] == split and r[6] == "yes"]
            assert len(picked) == 1
            best = max(r[5] for r in rows if r[0] == method and r[2] == split)
            assert picked[0][5] == best  # the held-out best
            run = sorted((root / "neuron" / "smoke" / f"{method}-{split}").glob("seed0-*"))[0]
            used = (run / "config.yaml").read_text()
            assert f"lr: {picked[0][3]}" in used
            if method != "smie":
                assert f"logit_scale: {picked[0][4]}" in used
    gzsl = results["tables"][1]
    assert gzsl["columns"][-3:] == ["S (released)", "U (released)", "H (released)"]
    curve = next(t for t in results["tables"] if t["title"] == ENCODER_CURVE_TITLE)
    assert {r[0] for r in curve["rows"]} == {"u5-0", "u12-0"}
    assert any(isinstance(r[-1], float) and 0 <= r[-1] <= 1 for r in curve["rows"])


def test_resume_latest_reuses_every_finished_head(smoke):
    root, _, results = smoke
    runs = sorted((root / "neuron" / "smoke").glob("*-u*/seed*"))  # heads and sweep points
    assert any(p.parent.name.startswith("tune-") for p in runs)
    stamps = {p: (p / "result.json").stat().st_mtime_ns for p in runs}
    assert _cli("reproduce", "--config", "smoke", f"runs_dir={root}", f"data_dir={root}/data",
                "wandb=false", "resume=latest") == 0
    assert sorted((root / "neuron" / "smoke").glob("*-u*/seed*")) == runs
    assert all((p / "result.json").stat().st_mtime_ns == t for p, t in stamps.items())
    again = json.loads((sorted((root / "neuron" / "smoke" / "reproduce").iterdir())[-1] / "results.json").read_text())
    assert len(list((root / "neuron" / "smoke" / "reproduce").iterdir())) == 2
    assert again["methods"] == results["methods"]


def _train(root, data, *extra):
    assert _cli("train", "--config", "smoke", f"runs_dir={root}", f"data_dir={data}", "wandb=false", *extra) == 0
    run = sorted((root / "neuron" / "smoke").glob("*/seed*"))[-1]
    return json.loads((run / "result.json").read_text())


def test_train_is_deterministic_for_a_seed(smoke, tmp_path):
    data = smoke[0] / "data"  # the smoke run's caches: sequences, text, encoder features
    a = _train(tmp_path / "a", data)
    b = _train(tmp_path / "b", data)
    c = _train(tmp_path / "c", data, "seed=1")
    assert a["zsl"] == b["zsl"] and a["gzsl_val_gamma"] == b["gzsl_val_gamma"]
    assert (a["zsl"], a["gzsl_test_gamma"]) != (c["zsl"], c["gzsl_test_gamma"])


@pytest.mark.parametrize("override,message", [
    ("ablation=nope", "ablation"),
    ("method=devise ablation=no_gating", "method=neuron only"),
    ("neuron.active=[9,4,2]", "more active"),
    ("data.source=ntu60", "data.path"),
    ("unseen=[3,99]", "outside"),
])
def test_bad_input_is_one_line_exit_2(one_line_error, tmp_path, override, message):
    assert message in one_line_error("neuron", "train", [f"runs_dir={tmp_path}", f"data_dir={tmp_path}/data", "wandb=false", *override.split()])


def _newest(root: Path, prefix: str) -> Path:
    runs = [p for d in (root / "neuron" / "smoke").glob(f"{prefix}-u*") for p in d.glob("seed*-*")]
    return max(runs, key=lambda p: p.name.split("-", 1)[1])


@pytest.mark.parametrize("method,ablation", [("neuron", ""), ("smie", ""), ("neuron", "no_gating")])
def test_eval_rescores_the_newest_finished_head_to_its_recorded_result(smoke, cli, method, ablation):
    root = smoke[0]
    code, out, err = cli("neuron", "eval", "--config", "smoke", f"runs_dir={root}",
                         f"data_dir={root}/data", "wandb=false", f"method={method}",
                         *([f"ablation={ablation}"] if ablation else []))
    assert code == 0, err
    label = f"neuron-{ablation}" if ablation else method
    run = _newest(root, label)
    assert out.startswith(f"{run}: {label} on ")
    recorded = json.loads((run / "result.json").read_text())
    scored = json.loads(sorted(run.glob("eval-*.json"))[-1].read_text())["metrics"]
    assert scored["zsl"] == recorded["zsl"]
    assert scored["encoder_seen_acc"] == recorded["encoder_seen_acc"]
    for group in ("gzsl_val_gamma", "gzsl_test_gamma"):
        assert scored.get(group) == recorded.get(group)
        assert (group in scored) == (not ablation)
    assert f"fused={100 * recorded['zsl']['fused']:.1f}%" in out


def test_eval_of_a_given_run_and_its_mistakes(smoke, cli, one_line_error, tmp_path):
    root = smoke[0]
    run = sorted((root / "neuron" / "smoke" / "devise-u12-0").glob("seed1-*"))[0]
    code, out, err = cli("neuron", "eval", "--config", "smoke", f"runs_dir={root}",
                         f"data_dir={root}/data", "wandb=false", f"eval_run={run}")
    assert code == 0, err
    assert out.startswith(f"{run}: devise on u12-0 (seed 1)")
    assert "no finished neuron head run" in one_line_error("neuron", "eval", [])
    assert "not a head run directory" in one_line_error("neuron", "eval", [f"eval_run={tmp_path}"])
    copy = tmp_path / "neuron" / "smoke" / "devise-u12-0" / run.name
    copy.parent.mkdir(parents=True)
    (copy).mkdir()
    for name in ("config.yaml", "run.json", "result.json", "DONE"):
        (copy / name).write_bytes((run / name).read_bytes())
    assert "keeps no trained head" in one_line_error("neuron", "eval", [f"eval_run={copy}"])
    (copy / "DONE").unlink()
    assert "has not finished" in one_line_error("neuron", "eval", [f"eval_run={copy}"])
