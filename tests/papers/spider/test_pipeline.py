"""End to end on the tiny model: smoke `reproduce` writes every method's table and the
claims; fine-tuning is deterministic for a seed and resumes after a kill to the same final
weights; only the projector and the last 2 LM layers move; bad input exits 2."""

import json
from pathlib import Path

import pytest
import torch

import papers.spider
from papers.spider import claims, pipeline
from papers.spider.baselines import METHODS
from papers.spider.config import SpiderConfig
from papers.spider.finetune import finetune
from shared.config import load_config
from shared.results import VERDICTS, validate

PAPER_DIR = Path(papers.spider.__file__).parent


def test_smoke_reproduce_writes_every_method_and_claim(smoke):
    _, out, results = smoke
    assert set(results["methods"]) == set(METHODS)
    # two downstream tasks + the pre-trained model's upstream + the three tables the claims read
    assert len(results["tables"]) == 7
    assert [t["title"] for t in results["tables"][3:]] == [claims.VOCAB_TABLE, claims.TUNING_TABLE,
                                                          claims.SWEEP_TABLE, claims.CURVE_TABLE]
    assert [r[0] for r in results["tables"][0]["rows"]][0] == "pre-trained (no fine-tuning)"
    texts = [c["claim"] for c in results["claims"]]
    assert sum("best harmonic mean" in t for t in texts) == 2
    validate(results)
    assert results["schema"] == 2 and len(results["claims"]) == 8
    assert all(c["verdict"] in VERDICTS for c in results["claims"])
    curves = results["tables"][6]["rows"]
    assert {(r[0], r[1]) for r in curves} == {(t, m) for t in ("caption_textured", "mcqa") for m in METHODS}
    assert all(c["preconditions"] and all(p["value"] != "not recorded" for p in c["preconditions"])
               for c in results["claims"])
    # the claims are a function of what results.json holds (the re-render path)
    assert claims.claims_of(results) == results["claims"]
    assert (out / results["plots"][0]).read_bytes()[:4] == b"\x89PNG"
    assert results["methods"]["spider"]["mcqa H"]["n"] == 2


def test_the_sweeps_choose_on_validation_and_the_post_hoc_rules_reuse_full_ft(smoke):
    _, out, results = smoke
    tables = {t["title"]: t for t in results["tables"]}
    tuning = {r[0]: r for r in tables[claims.TUNING_TABLE]["rows"]}
    assert tuning["l2sp"][2] == [0.01, 0.1] and tuning["dare"][2] == [0.5, 0.9]
    assert tuning["l2sp"][3].startswith("best validation H") and tuning["grafting"][3].startswith("set once")
    sweep = tables[claims.SWEEP_TABLE]["rows"]
    assert {(r[0], r[1]) for r in sweep} == {(t, m) for t in ("caption_textured", "mcqa") for m in ("l2sp", "dare")}
    raw = json.loads((out / "raw.json").read_text())
    for task in ("caption_textured", "mcqa"):
        for m in ("l2sp", "dare"):
            rows = [r for r in sweep if r[0] == task and r[1] == m]
            best = max(rows, key=lambda r: r[5])  # the first of equal validation H
            assert [r[7] for r in rows].count("chosen") == 1 and best[7] == "chosen"
    runs = raw["runs"]
    full = {(r["task"], r["seed"]): r for r in runs if r["method"] == "full_ft"}
    for r in runs:
        if r["method"] in ("dare", "grafting"):  # full FT's training, step for step: its curve
            assert r["loss_curve"] == full[(r["task"], r["seed"])]["loss_curve"]
            assert r["run_dir"] != full[(r["task"], r["seed"])]["run_dir"]
    assert sorted(r["seed"] for r in runs if r["method"] == "l2sp" and r["task"] == "mcqa") == [0, 1]


def test_the_validation_split_shares_no_image(smoke):
    cfg = _cfg(smoke[0])
    key = pipeline._image_key
    for task in ("caption_textured", "mcqa"):
        val = pipeline.downstream_val(cfg, task)
        assert len(val) == cfg.data.downstream_val
        others = {key(e) for e in pipeline.downstream_train(cfg, task) + pipeline.downstream_eval(cfg, task)}
        assert not others & {key(e) for e in val}
    up_val, _ = pipeline.val_sets(cfg, "mcqa")
    up_test, _ = pipeline.eval_sets(cfg, downstream=False)
    for task, examples in up_val.items():
        assert len(examples) == cfg.data.upstream_val
        assert not {key(e) for e in examples} & {key(e) for e in up_test[task]}


def _cfg(root, *extra):
    # 3 LM layers so that "the last 2" leaves one frozen
    return load_config(SpiderConfig, PAPER_DIR / "configs", "smoke",
                       [f"data_dir={root}/data", f"runs_dir={root}", "model.text_layers=3", *extra])


def _finetuned(cfg, seed, run_dir, **kw):
    model, tokenizer, _ = pipeline.load_base(cfg, show_progress=False)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    finetune(cfg, model, tokenizer, pipeline.downstream_train(cfg, "mcqa"), "spider", seed, run_dir, **kw)
    return before, {n: p.detach().clone() for n, p in model.named_parameters()}


def test_finetuning_is_deterministic_and_moves_only_the_trainable_part(smoke, tmp_path):
    cfg = _cfg(smoke[0])
    before, a = _finetuned(cfg, 0, tmp_path / "a")
    _, b = _finetuned(cfg, 0, tmp_path / "b")
    _, c = _finetuned(cfg, 1, tmp_path / "c")
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert any(not torch.equal(a[n], c[n]) for n in a)
    moved = {n for n in a if not torch.equal(a[n], before[n])}
    assert any("multi_modal_projector" in n for n in moved)
    assert any("layers.1." in n for n in moved) and any("layers.2." in n for n in moved)
    assert all("multi_modal_projector" in n or "layers.1." in n or "layers.2." in n for n in moved)


def test_a_killed_run_resumes_to_the_same_weights(smoke, tmp_path):
    cfg = _cfg(smoke[0], "finetune.checkpoint_every=1")
    _, full = _finetuned(cfg, 0, tmp_path / "full")

    def die(step):
        if step == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _finetuned(cfg, 0, tmp_path / "killed", on_step=die)
    _, resumed = _finetuned(cfg, 0, tmp_path / "killed", resume=True)
    assert all(torch.equal(full[n], resumed[n]) for n in full)


@pytest.mark.parametrize("override,message", [
    ("finetune.method=lora", "finetune.method"),
    ("task=vqa", "task"),
    ("experiment.methods=[spider,adapter]", "experiment.methods"),
    ("data.mc_answer=number", "data.mc_answer"),
    ("data.mcqa_kinds=[shape,riddle]", "data.mcqa_kinds"),
    ("pretrain.styles=[plain,neon]", "pretrain.styles"),
    ("pretrain.tasks=[caption,ocr]", "pretrain.tasks"),
])
def test_bad_input_is_one_line_exit_2(one_line_error, tmp_path, override, message):
    assert message in one_line_error("spider", "train", [f"runs_dir={tmp_path}", f"data_dir={tmp_path}/data", "wandb=false", *override.split()])


def test_methods_that_support_no_claim_still_write_the_tables(smoke, cli, tmp_path):
    root = smoke[0]
    code, out, err = cli("spider", "reproduce", "--config", "smoke", f"runs_dir={tmp_path}",
                         f"data_dir={root}/data", "wandb=false", "experiment.methods=[spider]",
                         "num_seeds=1", "data.downstream_tasks=[mcqa]")
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "no claim is checked with experiment.methods=['spider']" in warnings[0]
    (out_dir,) = (tmp_path / "spider" / "smoke" / "reproduce").iterdir()
    results = json.loads((out_dir / "results.json").read_text())
    assert results["claims"] == [] and list(results["methods"]) == ["spider"]
    assert any("'SPIDER keeps more upstream than full FT' needs spider and full_ft" in n for n in results["notes"])
    assert results["tables"][0]["rows"][1][0] == "spider"


def test_the_tiny_reproduce_refuses_a_launcher(one_line_error, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert "start it with plain python, not torchrun / accelerate launch" in one_line_error(
        "spider", "reproduce", ["wandb=false"])
