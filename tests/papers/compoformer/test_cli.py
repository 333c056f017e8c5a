"""The command line: smoke reproduce end to end, eval, config errors as one line (exit 2), and
the 2-process launch."""

import json

import pytest


@pytest.fixture(scope="module")
def smoke_reproduce(tmp_path_factory, smoke_data_dir):
    from tests.conftest import run_main

    root = tmp_path_factory.mktemp("compoformer-reproduce")
    args = ["reproduce", "--config", "smoke", f"runs_dir={root / 'runs'}", f"data_dir={smoke_data_dir}",
            "wandb=false", "data.workers=1",
            "train.methods=[compoformer-prune,finetune,mtl]"]
    code, out, err = run_main("compoformer", args)
    assert code == 0, err
    return root, out


def test_smoke_reproduce_writes_results(smoke_reproduce):
    from shared.results import validate

    root, out = smoke_reproduce
    (path,) = (root / "runs").rglob("results.json")
    results = json.loads(path.read_text())
    validate(results)
    assert "compoformer smoke:" in out
    assert set(results["methods"]) == {"compoformer-prune", "finetune", "mtl"}
    assert results["methods"]["compoformer-prune"]["F"]["values"] == [0.0, 0.0]
    for plot in ("plots/R_heatmaps.png", "plots/P_over_stages.png", "plots/alpha.png"):
        assert (path.parent / plot).is_file()
    assert (path.parent / "RESULTS.md").is_file()
    # the claims re-render from the record to the same verdicts
    from papers.compoformer.claims import rerender

    again = rerender(results)
    assert [c["verdict"] for c in again["claims"]] == [c["verdict"] for c in results["claims"]]


def test_eval_prints_the_matrix_of_a_finished_run(smoke_reproduce, cli):
    root, _ = smoke_reproduce
    code, out, err = cli("compoformer", "eval", "--config", "smoke", f"runs_dir={root / 'runs'}",
                         "method=finetune", "wandb=false")
    assert code == 0, err
    assert "R[t][i]" in out and "P " in out


@pytest.mark.parametrize("args,needle", [
    (["method=nope"], "method"),
    (["data.sequence=CW99"], "data.sequence"),
    (["compo.warmup=0.6", "compo.finetune=0.5"], "compo.warmup"),
    (["train.methods=[finetune,bogus]"], "train.methods"),
    (["model.hidden=10", "model.heads=3"], "model.hidden"),
    (["eval.goals=0"], "eval.goals"),
])
def test_config_mistakes_are_one_line(one_line_error, args, needle):
    line = one_line_error("compoformer", "train", ["--config", "smoke", *args])
    assert needle in line


def test_eval_without_a_run_is_one_line(one_line_error, tmp_path):
    line = one_line_error("compoformer", "eval", ["--config", "smoke", f"runs_dir={tmp_path}"])
    assert "train it first" in line


def test_train_on_two_processes_writes_one_run(launch, list_run_dirs, smoke_data_dir, tmp_path):
    runs = tmp_path / "runs"
    launch("compoformer", ["train", "--config", "smoke", f"runs_dir={runs}", f"data_dir={smoke_data_dir}",
                           "wandb=false", "data.workers=1", "method=compoformer-grow"], nproc=2)
    dirs = list_run_dirs(runs, "compoformer")
    assert len(dirs) == 1
    assert (dirs[0] / "summary.json").is_file() and (dirs[0] / "DONE").exists()
