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
            "train.methods=[compoformer-prune,l2,mtl]", "sweep.l2=[0.0,1e9]"]
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
    assert set(results["methods"]) == {"compoformer-prune", "l2", "mtl"}
    assert results["methods"]["compoformer-prune"]["F"]["values"] == [0.0, 0.0]
    # the λ sweep: one validation run per value (its own seed and run directory, held-out
    # goals), the recorded l2 runs use the chosen λ
    sweep = results["sweep"]["l2"]
    assert sweep["values"] == [0.0, 1e9] and len(sweep["P"]) == 2
    assert sweep["chosen"] == (1e9 if sweep["P"][1] > sweep["P"][0] else 0.0)
    assert results["lambdas"]["l2"] == sweep["chosen"]
    val = sorted(p.name for p in (root / "runs" / "compoformer" / "smoke").glob("l2-val-lambda*"))
    assert val == ["l2-val-lambda0", "l2-val-lambda1e+09"]
    import yaml

    smoke = root / "runs" / "compoformer" / "smoke"
    for lam, d in ((0.0, "l2-val-lambda0"), (1e9, "l2-val-lambda1e+09")):
        (run,) = (smoke / d).glob("seed*")
        assert run.name.startswith("seed1000-")
        conf = yaml.safe_load((run / "config.yaml").read_text())
        assert float(conf["baselines"]["l2_lambda"]) == lam and conf["eval"]["first_goal"] == 25
    for run in (smoke / "l2").glob("seed*"):
        conf = yaml.safe_load((run / "config.yaml").read_text())
        assert float(conf["baselines"]["l2_lambda"]) == sweep["chosen"] and conf["eval"]["first_goal"] == 0
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
                         "method=l2", "wandb=false")
    assert code == 0, err
    assert "R[t][i]" in out and "P " in out


@pytest.mark.parametrize("args,needle", [
    (["method=nope"], "method"),
    (["data.sequence=CW99"], "data.sequence"),
    (["compo.warmup=0.6", "compo.finetune=0.5"], "compo.warmup"),
    (["train.methods=[finetune,bogus]"], "train.methods"),
    (["model.hidden=10", "model.heads=3"], "model.hidden"),
    (["eval.goals=0"], "eval.goals"),
    (["sweep.l2=[-1.0]"], "sweep.l2"),
    (["eval.first_goal=50"], "eval.first_goal"),
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
