"""End to end: `reproduce --config smoke` writes results, tables and plots for every method;
the same seed gives identical numbers; resume=latest reuses finished runs and continues a
killed one to the same final metrics; user errors are one line."""

import json
import shutil

import pytest

from papers.prompt_diffuser.claims import rerender
from shared.results import VERDICTS

METHODS = ("Prompt Diffuser", "PD: DM only", "PD: guidance only", "PD: naive sum", "Prompt-Tuning DT",
           "Prompt-DT fine-tune", "Prompt-DT (no tuning)", "Full-data upper bound")


def _untimed(entry: dict) -> dict:
    """A method's metrics without its wall-clock ones (those differ run to run)."""
    return {k: v for k, v in entry.items() if k not in ("prompt_s_per_episode", "steps_per_s")}


def _reproduce(cli, root, *extra):
    code, out, err = cli("prompt_diffuser", "reproduce", "--config", "smoke", f"runs_dir={root}",
                         f"data_dir={root}/data", "wandb=false", *extra)
    assert code == 0, err[-2000:]
    outs = sorted((root / "prompt_diffuser" / "smoke" / "reproduce").iterdir())
    return outs[-1], json.loads((outs[-1] / "results.json").read_text())


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    from tests.conftest import run_main

    root = tmp_path_factory.mktemp("pd-runs")
    return root, *_reproduce(lambda *a: run_main(a[0], list(a[1:])), root)


def test_smoke_reproduce_reports_every_method(first_run):
    _, out, results = first_run
    assert (out / "RESULTS.md").read_text().startswith("# Prompt Diffuser")
    assert results["seeds"] == [0, 1] and results["schema"] == 2
    for name in METHODS:
        assert results["methods"][name]["heldout_return"]["n"] == 2, name
    for name in ("Prompt Diffuser / random", "Prompt-Tuning DT / random", "Prompt-DT (no tuning) / random"):
        assert name in results["methods"]
    assert results["methods"]["Prompt Diffuser"]["trainable_params"]["mean"] > 0
    assert {"tail_change_l_dm", "tail_change_l_pdt"} <= set(results["methods"]["Prompt Diffuser"])
    assert len(results["claims"]) == 4 and all(c["verdict"] in VERDICTS for c in results["claims"])
    assert len(results["protocol_notes"]) == 1
    assert any("bit-identical after every tuning run" in n and n.endswith("True.") for n in results["notes"])
    for plot in results["plots"]:
        assert (out / plot).read_bytes()[:4] == b"\x89PNG"
    assert set(results["plots"]) == {"plots/heldout_return.png", "plots/prompts_2d.png"}
    again = rerender(results)
    assert again["claims"] == results["claims"]


def test_same_seed_gives_identical_results_and_resume_reuses_finished_runs(first_run, cli, tmp_path):
    root, _, results = first_run
    _, again = _reproduce(cli, tmp_path, "tune.methods=[pd]", "tune.init_qualities=[expert]")
    for key in ("Prompt Diffuser", "Frozen Prompt-DT (train goals)"):
        assert _untimed(again["methods"][key]) == _untimed(results["methods"][key])
    before = sorted(p.name for p in (root / "prompt_diffuser" / "smoke").glob("*/seed*"))
    _, resumed = _reproduce(cli, root, "resume=latest")
    after = sorted(p.name for p in (root / "prompt_diffuser" / "smoke").glob("*/seed*"))
    assert before == after  # no new run directory
    assert resumed["methods"] == results["methods"]  # the finished runs' own summaries


def test_resume_after_a_kill_gives_the_same_final_metrics(first_run, cli, tmp_path):
    root, _, results = first_run
    shutil.copytree(root, tmp_path / "r", ignore=shutil.ignore_patterns("reproduce"))
    (run,) = sorted((tmp_path / "r" / "prompt_diffuser" / "smoke" / "pd-expert").glob("seed0-*"))
    # a kill after the first checkpoint: no DONE, no summary, the last checkpoint gone
    (run / "DONE").unlink()
    (run / "summary.json").unlink()
    ckpts = sorted((run / "checkpoints").glob("step_*"))
    shutil.rmtree(ckpts[-1])
    code, out, err = cli("prompt_diffuser", "train", "--config", "smoke", f"runs_dir={tmp_path}/r",
                         f"data_dir={root}/data", "wandb=false", "resume=latest", "method=pd")
    assert code == 0, err[-2000:]
    summary = json.loads((run / "summary.json").read_text())
    assert json.loads((run / "run.json").read_text())["resumed_from"] is None
    assert any(p.name.startswith("run-resumed-") for p in run.iterdir())
    want = results["methods"]["Prompt Diffuser"]["heldout_return"]["values"][0]
    assert summary["heldout"]["return"] == want


def test_eval_re_evaluates_a_finished_run(first_run, cli):
    root, _, results = first_run
    code, out, err = cli("prompt_diffuser", "eval", "--config", "smoke", f"runs_dir={root}",
                         f"data_dir={root}/data", "wandb=false", "method=ptdt")
    assert code == 0, err[-2000:]
    want = results["methods"]["Prompt-Tuning DT"]["heldout_return"]["values"][0]
    assert f"held-out return {want:.1f}" in out


@pytest.mark.parametrize("args, text", [
    (["resume=/nonexistent/run"], "no such run directory"),
    (["tune.steps=-1"], "tune.steps"),
    (["bogus=1"], "unknown key"),
])
def test_user_errors_are_one_line(one_line_error, args, text):
    assert text in one_line_error("prompt_diffuser", "train", args)


def test_eval_without_a_run_is_one_line(one_line_error):
    assert "no finished" in one_line_error("prompt_diffuser", "eval", ["method=ptdt"])
