"""The command line end to end on the smoke config: reproduce, run, add-tool, eval, errors."""

import json

import numpy as np
import pytest

from papers.spagent import capabilities, scenes
from papers.spagent.reproduce import read_spec
from shared.results import validate


def test_smoke_reproduce_writes_a_valid_result_set(smoke):
    _, results, out = smoke
    validate(results)
    assert len(results["claims"]) == 5 and results["seeds"] == [0, 1]
    assert {"agent", "agent_keywords", "agent_no_selection", "random_tool", "fixed_route", "agent_expanded"} \
        <= set(results["methods"])
    assert (out / "RESULTS.md").exists() and (out / "plots" / "quality.png").exists()
    plan = json.loads((out / "gallery" / "request1" / "plan.json").read_text())
    assert plan["route"] and plan["candidate_routes"] and plan["paragraph"]
    assert (out / "gallery" / "request1" / "contact.png").exists()


def test_claims_rerender_reproduces_the_verdicts(smoke, tmp_path):
    from papers.spagent.claims import main

    _, results, _ = smoke
    (tmp_path / "results.json").write_text(json.dumps(results))
    assert main(["rerender", str(tmp_path)]) == 0
    again = json.loads((tmp_path / "results.json").read_text())
    assert [c["verdict"] for c in again["claims"]] == [c["verdict"] for c in results["claims"]]


def test_resume_latest_reuses_the_finished_runs_with_the_same_numbers(smoke, cli):
    root, results, _ = smoke
    code, _, err = cli("spagent", "reproduce", "--config", "smoke", f"runs_dir={root}/runs", f"data_dir={root}/data",
                       "wandb=false", "resume=latest", "experiment.gallery=0")
    assert code == 0, err
    new = sorted((root / "runs" / "spagent" / "smoke" / "reproduce").glob("*/results.json"))[-1]
    again = json.loads(new.read_text())
    assert again["methods"]["agent"]["quality"] == results["methods"]["agent"]["quality"]


def test_run_writes_plan_outputs_video_and_contact_sheet(smoke, cli, tmp_path):
    from papers.spagent import media

    root = smoke[0]
    media.save_image(tmp_path / "parrot.png", scenes.render(scenes.Scene("parrot", "red", "beach"), 64, 1)[0])
    out = tmp_path / "out"
    code, stdout, err = cli("spagent", "run", "make the red parrot green and let it fly", "--image",
                            str(tmp_path / "parrot.png"), "--out", str(out), "--config", "smoke",
                            f"runs_dir={root}/runs", f"data_dir={root}/data", "wandb=false")
    assert code == 0, err
    plan = json.loads((out / "plan.json").read_text())
    assert {"intent", "candidate_routes", "route", "tools", "why", "paragraph"} <= set(plan)
    assert plan["intent"]["e_v"] == "image" and plan["route"][-1] == "i2v"
    for name in plan["outputs"] + ["final.gif", "contact.png", "plan.txt"]:
        assert (out / name).exists(), name
    assert media.read_video(out / "final.gif", 32).shape[0] == 6


@pytest.mark.parametrize("args,msg", [
    (["run", ""], "no text"), (["run", "a red cat", "--image", "{tmp}/bad.png"], "not a readable image"),
    (["run", "a red cat", "--video", "{tmp}/one.gif"], "at least 2"),
    (["run", "a red cat", "--video", "{tmp}/nothing.gif"], "no such file"),
    (["add-tool", "{tmp}/missing.yaml"], "no such file"), (["add-tool", "{tmp}/bad.yaml"], "'kind'"),
    (["eval", "seed=7"], "no trained agent"), (["train", "data.text_features=bert"], "not one of"),
    (["train", "experiment.eval_requests=500"], "at most data.heldout_requests"),
    (["run", "a cat", "backend.kind=openai"], "backend.url")])
def test_user_mistakes_are_one_line_and_exit_2(one_line_error, tmp_path, args, msg):
    from papers.spagent import media

    (tmp_path / "bad.png").write_text("not an image")
    media.save_image(tmp_path / "one.gif", np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "bad.yaml").write_text("name: x\nkind: t3v\n")
    line = one_line_error("spagent", args[0], [a.replace("{tmp}", str(tmp_path)) for a in args[1:]])
    assert msg in line


def test_add_tool_inserts_one_row_and_changes_selection_only_where_it_wins(smoke, cli, library, tmp_path):
    from papers.spagent.pipeline import Library

    root = smoke[0]
    before = json.loads((library.path / "capabilities.json").read_text())
    spec = tmp_path / "steady.yaml"
    spec.write_text("name: i2v_test\nkind: i2v\nparams: {motion: 0.5, noise: 1.0}\n")
    args = ["--config", "smoke", f"runs_dir={root}/runs", f"data_dir={root}/data", "wandb=false", f"library={library.path}"]
    code, out, err = cli("spagent", "add-tool", str(spec), *args)
    assert code == 0, err
    after = json.loads((library.path / "capabilities.json").read_text())
    assert set(after) - set(before) == {"i2v_test"} and len(after) == len(before) + 1
    assert {k: v for k, v in after.items() if k in before} == before
    assert Library(library.path).tools[-1].name == "i2v_test"
    for style, w in capabilities.STYLE_WEIGHTS.items():
        for kind in ("t2i", "t2v", "i2v", "edit", "v2v"):
            old, new = capabilities.select(kind, w, before)[0], capabilities.select(kind, w, after)[0]
            wins = capabilities.select(kind, w, after)[1].get("i2v_test", -1) > capabilities.select(kind, w, before)[1].get(old, 2)
            assert new == ("i2v_test" if wins else old), (style, kind)
    code, _, err = cli("spagent", "add-tool", str(spec), *args)
    assert code == 2 and "already in the library" in err


def test_eval_command_reports_the_seed(smoke, cli):
    root = smoke[0]
    code, out, err = cli("spagent", "eval", "--config", "smoke", f"runs_dir={root}/runs", f"data_dir={root}/data",
                         "wandb=false", "resume=latest")
    assert code == 0, err
    assert "route_accuracy" in out and "quality:" in out


def test_the_shipped_new_tool_spec_is_valid(repo_root):
    spec = read_spec(repo_root / "papers" / "spagent" / "tools" / "i2v_steady.yaml")
    assert spec["kind"] == "i2v" and spec["family"] == "procedural"


def test_train_on_two_processes_makes_one_run_dir(launch, tmp_path, list_run_dirs):
    launch("spagent", ["train", "--config", "smoke", f"runs_dir={tmp_path}/runs", f"data_dir={tmp_path}/data",
                       "wandb=false", "encoder.steps=5", "planner.probes=1"])
    assert len(list_run_dirs(tmp_path / "runs", "spagent")) == 1


def test_same_seed_same_numbers(smoke, library):
    from papers.spagent.config import SpagentConfig
    from papers.spagent.evaluate import evaluate_seed
    from papers.spagent.pipeline import datasets
    from shared.config import load_config

    root = smoke[0]
    cfg = load_config(SpagentConfig, library.path.parents[3].parent / "x", str(library.path / "config.yaml"),
                      [f"runs_dir={root}/runs", f"data_dir={root}/data"])
    spec = read_spec(__import__("pathlib").Path(__file__).parents[3] / "papers/spagent/tools/i2v_steady.yaml")
    _, held = datasets(cfg)
    a, b = (evaluate_seed(cfg, library, held[:3], 0, spec) for _ in range(2))
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)  # (NaN-safe)
