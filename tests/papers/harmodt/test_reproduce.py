"""End to end: `reproduce --config smoke` writes results, tables and plots for every method;
the same seed gives identical numbers; `resume=latest` reuses finished runs; user errors
end with one line and exit code 2."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import papers.harmodt
from papers.harmodt.__main__ import COMMANDS
from papers.harmodt.config import HarmoDTConfig
from shared.cli import run_cli
from shared.results import VERDICTS

PAPER_DIR = Path(papers.harmodt.__file__).parent
# the smoke config's methods (HarmoDT-R differs from -F only in its prune score: test_masks)
METHODS = ("HarmoDT-F", "HarmoDT-M", "HarmoDT k=0 (random masks)", "G-HarmoDT", "Prompt-DT", "MTDT", "MTBC")


def _reproduce(root, data, *extra):
    argv = ["reproduce", "--config", "smoke", f"runs_dir={root}", f"data_dir={data}",
            "wandb=false", *extra]
    assert run_cli("harmodt", HarmoDTConfig, COMMANDS, PAPER_DIR, argv) == 0
    outs = sorted((root / "harmodt" / "smoke" / "reproduce").iterdir())
    return outs[-1], json.loads((outs[-1] / "results.json").read_text())


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, smoke_data_dir):
    """The folder's first use of the session's smoke data directory: it generates the data."""
    root = tmp_path_factory.mktemp("runs")
    return root, *_reproduce(root, smoke_data_dir)


def test_smoke_reproduce_reports_every_method_on_both_qualities(first_run):
    _, out, results = first_run
    assert (out / "RESULTS.md").read_text().startswith("# HarmoDT")
    assert results["seeds"] == [0, 1]
    for method in METHODS:
        for quality in ("near-optimal", "sub-optimal"):
            entry = results["methods"][f"{method} / {quality}"]
            assert entry["final_success"]["n"] == 2 and entry["best_success"]["n"] == 2
            assert entry["best_success"]["mean"] >= entry["final_success"]["mean"]
    assert "unseen_success" in results["methods"]["HarmoDT-F / near-optimal"]
    assert "unseen_success" not in results["methods"]["MTBC / near-optimal"]
    assert len(results["claims"]) == 14  # 7 per quality, the k = 0 ablation's included
    assert all(c["verdict"] in VERDICTS for c in results["claims"])
    assert results["schema"] == 2 and len(results["protocol_notes"]) == 2
    for method in ("HarmoDT-F", "G-HarmoDT", "Prompt-DT", "MTBC"):
        assert results["methods"][f"{method} / near-optimal"]["tail_change"]["n"] == 2
    assert results["methods"]["HarmoDT-F / near-optimal"]["mask_iou_excess"]["n"] == 2
    assert "mask_iou_excess" not in results["methods"]["Prompt-DT / near-optimal"]
    table = results["tables"][0]
    assert [row[0] for row in table["rows"]] == list(METHODS)
    titles = " | ".join(t["title"] for t in results["tables"])
    for part in ("per training task", "per unseen task", "IoU", "gate accuracy", "training loss"):
        assert part in titles
    runs = results["runs"]
    assert len(runs) == 2 * 2 * len(METHODS)
    assert all("loss" in c and "per_task" in c for r in runs for c in r["curve"])
    assert all(r["gate_accuracy"] is not None for r in runs if r["method"] == "g-harmodt")
    assert {"plots/loss_near-optimal.png"} <= set(results["plots"])
    assert (out / "dataset_report.md").exists()
    for plot in results["plots"]:
        assert (out / plot).read_bytes()[:4] == b"\x89PNG"
    assert {"plots/success_near-optimal.png", "plots/overlap_harmodt-f_near-optimal.png"} <= set(results["plots"])


def test_a_fresh_record_re_renders_to_the_same_claims(first_run):
    from papers.harmodt.claims import episodes_from_record, rerender

    _, _, results = first_run
    assert episodes_from_record(results) == {"seen": 2, "unseen": 1}  # 2 tasks, 1 unseen, 1 goal
    again = rerender(results)
    assert again["claims"] == results["claims"]
    assert again["protocol_notes"] == results["protocol_notes"]


def test_same_seed_gives_identical_results(first_run, smoke_data_dir, tmp_path):
    """G-HarmoDT exercises every stream (masks, clustering, gate, evaluation)."""
    _, _, results = first_run
    _, again = _reproduce(tmp_path, smoke_data_dir, "train.methods=[g-harmodt]")
    for key in ("G-HarmoDT / near-optimal", "G-HarmoDT / sub-optimal"):
        assert again["methods"][key] == results["methods"][key]


def test_resume_latest_reuses_every_finished_run(first_run, smoke_data_dir):
    root, _, results = first_run
    before = sorted((root / "harmodt" / "smoke").glob("*/seed*"))
    _, resumed = _reproduce(root, smoke_data_dir, "resume=latest")
    assert sorted((root / "harmodt" / "smoke").glob("*/seed*")) == before
    assert resumed["methods"] == results["methods"]


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "papers.harmodt", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args, message", [
    (["train.method=[nope]"], "train.methods"),
    (["model.hiden=3"], "model.hidden"),
])
def test_user_errors_print_one_line_and_exit_2(one_line_error, args, message):
    assert message in one_line_error("harmodt", "data", args)


def test_a_user_error_from_the_real_entry_point_is_one_line(tmp_path):
    """One true subprocess: `python -m papers.harmodt` itself (the rest run in-process)."""
    repo = PAPER_DIR.parent.parent
    proc = _cli("data", "--config", "smoke", f"runs_dir={tmp_path}", f"data_dir={tmp_path}/data",
                "data.source=d4rl", "data.path=/nonexistent/dir", cwd=repo)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "/nonexistent/dir" in lines[0], proc.stderr


def test_eval_without_a_trained_run_is_a_clear_error(one_line_error):
    assert "train it first" in one_line_error("harmodt", "eval", ["method=mtdt"])


def test_benchmark_runs_on_the_smoke_config(capsys, smoke_data_dir):
    from papers.harmodt.benchmark import main

    main(["--config", "smoke", "--workers", "1", "--episodes", "1", "--iterations", "5",
          "--bare-steps", "100", "--data-dir", str(smoke_data_dir)])
    out = capsys.readouterr().out
    assert "env steps/s" in out and "iterations/s" in out and "episodes/s" in out


def test_the_prompt_dt_slow_path_check_trains_reach_alone_for_the_per_task_budget(capsys, smoke_data_dir,
                                                                                  monkeypatch):
    from papers.harmodt import benchmark
    from shared.config import load_config
    from shared.offline_rl import task_set

    out = benchmark.prompt_dt_check("smoke", str(smoke_data_dir), str(smoke_data_dir / "check-runs"))
    cfg = load_config(HarmoDTConfig, PAPER_DIR / "configs", "smoke", [])

    assert out["iterations"] == max(1, cfg.train.iterations // len(task_set(cfg.data.tasks)))
    assert out["episodes"] == cfg.eval.goals and 0.0 <= out["success"] <= 1.0
    assert out["passes"] == (out["success"] >= benchmark.PROMPT_DT_LEVEL)
    # the command line prints the verdict (a stub result: the training is tested above)
    monkeypatch.setattr(benchmark, "prompt_dt_check", lambda *a: {**out, "success": 0.5, "passes": False})
    benchmark.main(["--prompt-dt-check", "--config", "smoke"])
    assert "final success 0.500 — FAILS (≥ 0.8)" in capsys.readouterr().out


def test_paper_config_is_the_papers_mt50_setting():
    from shared.config import load_config

    cfg = load_config(HarmoDTConfig, PAPER_DIR / "configs", "paper", [])
    assert cfg.data.tasks == "MT50" and cfg.data.max_steps == 500
    m = cfg.model
    assert (m.hidden, m.layers, m.heads, m.context, m.prompt_steps) == (256, 6, 8, 20, 5)
    t = cfg.train
    assert (t.iterations, t.batch_size, t.lr, t.weight_decay, t.warmup, t.grad_clip) == \
        (1_000_000, 8, 1e-4, 1e-4, 10_000, 0.25)
    assert (cfg.harmo.density, cfg.harmo.mask_interval, cfg.harmo.k_max) == (0.8, 500, 50)
    assert (cfg.eval.every, cfg.eval.goals, cfg.eval.target_return) == (5000, 10, 4500.0)
    assert not cfg.eval.stop_on_success and cfg.train.return_scale == 1000.0


def test_small_trades_breadth_for_convergence_and_medium_has_every_method():
    from papers.harmodt.claims import SE_MAX, run_success_se
    from papers.harmodt.config import METHODS as ALL
    from papers.harmodt.data import train_tasks, unseen_tasks
    from shared.config import load_config

    small = load_config(HarmoDTConfig, PAPER_DIR / "configs", "small", [])
    assert len(train_tasks(small)) <= 5 and small.data.qualities == ["near-optimal"]
    assert set(small.train.methods) == {"prompt-dt", "mtbc", "harmodt-f", "harmodt-m", "harmodt-k0", "g-harmodt"}
    seen = len(train_tasks(small)) * small.eval.goals
    unseen = len(unseen_tasks(small)) * small.eval.unseen_goals
    assert max(run_success_se(50.0, seen), run_success_se(50.0, unseen)) <= SE_MAX  # worst case p = ½
    assert small.train.iterations // len(train_tasks(small)) >= 1000
    medium = load_config(HarmoDTConfig, PAPER_DIR / "configs", "medium", [])
    assert medium.data.tasks == "MT10" and set(medium.train.methods) == set(ALL)
    assert medium.data.qualities == ["near-optimal", "sub-optimal"]
