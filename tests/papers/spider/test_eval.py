"""`eval` re-evaluates a finished fine-tuning run from its final weights: by default the newest
finished run of the config (narrowed by method / task / seed when given), or resume=<run>; the
scores equal the ones the run recorded at the end of training."""

import json
import shutil
from pathlib import Path

from papers.spider import pipeline
from papers.spider.evaluate import evaluate_run
from shared.cli import Context

SCORES = ("downstream", "upstream", "H")


def _runs(root):
    return sorted((root / "spider" / "smoke").glob("*-*/seed*-*"))


def _ctx(smoke, *overrides):
    root = smoke[0]
    args = [f"runs_dir={root}", f"data_dir={root}/data", *overrides]
    return pipeline.config("smoke", args), Context("spider", "smoke", args, Path(pipeline.__file__).parent)


def test_every_run_kept_its_final_weights(smoke):
    runs = _runs(smoke[0])
    # 7 methods x 2 seeds x 2 tasks, L2-SP and DARE at 2 values on seed 0 and the chosen one on seed 1
    assert len(runs) == 7 * 2 * 2 + 2 * (2 + 1) * 2
    assert all(len(list((run / "final").glob("step_*/manifest.json"))) == 1 for run in runs)


def test_eval_reproduces_the_recorded_scores_of_the_selected_run(smoke):
    cfg, ctx = _ctx(smoke, "finetune.method=dare", "task=caption_textured", "seed=1")
    r = evaluate_run(cfg, ctx)
    (run,) = [p for p in _runs(smoke[0]) if p.parent.name.startswith("dare_") and
              p.parent.name.endswith("-caption_textured") and p.name.startswith("seed1-")]
    assert r["run_dir"] == str(run) and r["reevaluated"]
    recorded = json.loads((run / "result.json").read_text())
    for key in (*SCORES, "upstream/caption", "upstream/color", "downstream/caption_textured"):
        assert r[key] == recorded[key], key


def test_eval_defaults_to_the_newest_finished_run(smoke, cli):
    root = smoke[0]
    newest = max(_runs(root), key=lambda p: p.name.split("-", 1)[1])
    code, out, err = cli("spider", "eval", "--config", "smoke", f"runs_dir={root}", f"data_dir={root}/data")
    assert code == 0, err
    recorded = json.loads((newest / "result.json").read_text())
    first, upstream, again = out.strip().splitlines()
    assert first.startswith(f"{newest}: {recorded['method']} on {recorded['task']} (seed {recorded['seed']}), evaluated")
    assert first.endswith(f"downstream {recorded['downstream']:.1f}, upstream {recorded['upstream']:.1f}, "
                          f"H {recorded['H']:.1f}")
    assert upstream.startswith("  upstream: caption ") and again.startswith("  recorded at the end of training")


def test_eval_of_a_given_run_and_of_runs_it_cannot_use(smoke, cli, one_line_error, tmp_path):
    root = smoke[0]
    run = next(p for p in _runs(root) if p.parent.name == "full_ft-mcqa")
    recorded = json.loads((run / "result.json").read_text())
    code, out, err = cli("spider", "eval", "--config", "smoke", f"runs_dir={root}", f"data_dir={root}/data",
                         f"resume={run}")
    assert code == 0 and out.startswith(f"{run}: full_ft on mcqa"), err
    assert f"downstream {recorded['downstream']:.1f}," in out
    # a run from before runs kept their final weights: its recorded scores, said so
    old = tmp_path / "full_ft-mcqa" / run.name
    shutil.copytree(run, old, ignore=shutil.ignore_patterns("final", ".lock"))
    code, out, err = cli("spider", "eval", "--config", "smoke", f"runs_dir={root}", f"data_dir={root}/data",
                         f"resume={old}")
    assert code == 0 and "recorded (the run kept no final weights to re-evaluate)" in out, err
    # an unfinished run
    (old / "DONE").unlink()
    assert "has not finished" in one_line_error("spider", "eval", [f"resume={old}"])
