"""The paper path (local LLaVA directory + local JSONL datasets + accelerate) on a tiny random
LLaVA saved with a real processor: the encoding, one optimizer step through `run_local`, the
frozen parts untouched, and the user errors."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from papers.spider import local
from papers.spider.config import SpiderConfig
from shared import UserError
from shared.cli import Context
from shared.config import load_config

CONFIGS = Path(local.__file__).parent / "configs"


@pytest.fixture(autouse=True)
def _fresh_accelerate_state():
    yield
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(True)
    GradientState._reset_state()


@pytest.fixture
def cfg_of(llava_dir, data_dir, tmp_path, paper_args):
    """`cfg_of(*extra)`: the paper config for the tiny random LLaVA and the test datasets."""
    return lambda *extra: load_config(SpiderConfig, CONFIGS, "paper",
                                      paper_args(llava_dir, data_dir, tmp_path / "runs", *extra))


def test_load_dataset_format(data_dir):
    mc = local.load_dataset(data_dir, "scienceqa", "train")
    assert [e["task"] for e in mc] == ["mcqa", "mcqa"] and [e["answer"] for e in mc] == ["A", "B"]
    assert mc[0]["image"].dtype == np.uint8 and mc[0]["image"].shape == (12, 20, 3)
    vqa = local.load_dataset(data_dir, "okvqa", "test", limit=1, lazy=True)
    assert len(vqa) == 1 and vqa[0]["task"] == "vqa" and isinstance(vqa[0]["image"], str)
    # the official VQA accuracy: 3 of 10 annotators say "umbrella" -> 90 %, "parasol" (7) -> 100 %;
    # one reference ("dog") is exact match after the official normalisation
    both = local.load_dataset(data_dir, "okvqa", "test")
    assert local.score_local(both, ["Umbrella", "a dog."]) == pytest.approx(95.0)
    assert local.score_local(both, ["parasol", "dog"]) == pytest.approx(100.0)
    assert local.score_local(both, ["cat", "dog"]) == pytest.approx(50.0)


def test_encoder_supervises_only_the_answer(llava_dir, data_dir):
    from transformers import LlavaForConditionalGeneration

    model, processor = local.load_llava(llava_dir, "no")
    assert isinstance(model, LlavaForConditionalGeneration)
    examples = local.load_dataset(data_dir, "okvqa", "test", lazy=True)
    batch = local.make_encoder(processor, 64)(examples)
    tok = processor.tokenizer
    # the processor expanded <image> into one token per vision feature (2x2 patches, no CLS)
    assert ((batch["input_ids"] == processor.image_token_id).sum(1) == 4).all()
    for i, e in enumerate(examples):
        kept = batch["input_ids"][i][batch["labels"][i] != -100].tolist()
        assert tok.decode(kept).strip() == f"{e['answer']}{tok.eos_token}"
    assert batch["pixel_values"].shape == (2, 3, 16, 16)
    loss = model(**batch).loss
    assert torch.isfinite(loss)
    assert local.make_encoder(processor, 8)(examples)["input_ids"].shape[1] == 8
    preds = local.generate_local(model, processor, examples, max_new_tokens=2, batch_size=2)
    assert len(preds) == 2 and all(isinstance(p, str) for p in preds)


def test_llava_prompts_text_only_questions_and_pad_to_square(llava_dir, data_dir):
    model, processor = local.load_llava(llava_dir, "no")
    # the answer-format suffix, once; the vicuna_v1 system line
    vqa = local.load_dataset(data_dir, "okvqa", "test", lazy=True, suffix=True)
    assert vqa[0]["prompt"] == "what is held?\n" + local.SUFFIXES["vqa"]
    assert local.with_suffix(vqa[0]["prompt"], "vqa") == vqa[0]["prompt"]
    turn = local.user_turn(vqa[0], "vicuna_v1")
    assert turn.startswith(local.SYSTEMS["vicuna_v1"] + " USER: <image>\n") and turn.endswith(" ASSISTANT:")
    # a text-only question (ScienceQA has them) in a batch with an image question
    text_only = {**vqa[1], "image": None, "image_path": None, "prompt": "is the sky blue?", "answer": "yes"}
    assert local.user_turn(text_only) == "USER: is the sky blue? ASSISTANT:"
    batch = local.make_encoder(processor, 1024, "vicuna_v1", pad=True)([vqa[0], text_only])
    assert (batch["input_ids"] == processor.image_token_id).sum(1).tolist() == [4, 0]
    assert batch["pixel_values"].shape[0] == 1 and torch.isfinite(model(**batch).loss)
    only_text = local.make_encoder(processor, 64)([text_only])
    assert "pixel_values" not in only_text and torch.isfinite(model(**only_text).loss)
    preds = local.generate_local(model, processor, [text_only, vqa[0]], max_new_tokens=2, batch_size=2,
                                 system="vicuna_v1", pad=True)
    assert len(preds) == 2
    # pad to square with the mean pixel, the image centred
    img = np.full((2, 4, 3), 9, dtype=np.uint8)
    sq = local.pad_to_square(img, (1, 2, 3))
    assert sq.shape == (4, 4, 3) and (sq[1:3] == 9).all() and sq[0].tolist() == [[1, 2, 3]] * 4
    assert local.pad_to_square(sq, (0, 0, 0)) is sq
    # a text-only line in the dataset files
    rows = (data_dir / "scienceqa" / "train.jsonl").read_text().splitlines()
    row = json.loads(rows[0])
    row["image"] = None
    (data_dir / "scienceqa" / "train.jsonl").write_text(json.dumps(row) + "\n" + rows[1] + "\n")
    mc = local.load_dataset(data_dir, "scienceqa", "train", suffix=True)
    assert mc[0]["image"] is None and mc[0]["prompt"].endswith(local.SUFFIXES["mcqa"])


def test_one_step_of_the_paper_path(llava_dir, data_dir, tmp_path, monkeypatch, cfg_of):
    from transformers import LlavaForConditionalGeneration

    loaded = []

    def capture(path, precision):
        model, processor = real_load(path, precision)
        loaded.append(model)
        return model, processor

    real_load = local.load_llava
    monkeypatch.setattr(local, "load_llava", capture)
    cfg = cfg_of("finetune.method=spider", "data.downstream_train=2")
    ctx = Context("spider", "paper", [], CONFIGS.parent)
    result = local.run_local(cfg, ctx)

    assert {"upstream", "downstream", "H", "method", "task", "seed"} <= set(result)
    assert (result["method"], result["task"], result["seed"]) == ("spider", "scienceqa", 0)
    assert set(result) >= {"upstream/okvqa", "downstream/scienceqa"}
    run = next((tmp_path / "runs" / "spider" / "paper" / "spider-scienceqa").glob("seed0-*"))
    losses = [json.loads(line)["train/loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 1 and np.isfinite(losses[0])  # one optimizer step, finite loss

    before = LlavaForConditionalGeneration.from_pretrained(llava_dir, local_files_only=True).state_dict()
    after = loaded[0].state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed, "the step changed nothing"
    trainable = ("model.multi_modal_projector.", "model.language_model.layers.1.",
                 "model.language_model.layers.2.")
    assert all(k.startswith(trainable) for k in changed), sorted(changed)
    assert any(k.startswith(trainable[0]) for k in changed)
    assert any(k.startswith(trainable[1:]) for k in changed)

    # resume=latest reuses the finished run without loading the model again
    again = local.run_local(cfg_of("finetune.method=spider", "data.downstream_train=2", "resume=latest"), ctx)
    assert again == json.loads(json.dumps(result)) and len(loaded) == 1


def test_user_errors(llava_dir, data_dir, tmp_path):
    with pytest.raises(UserError, match="model.path"):
        local.load_llava(tmp_path / "nowhere", "bf16")
    with pytest.raises(UserError, match="model.path is not set"):
        local.load_llava("", "bf16")
    with pytest.raises(UserError, match="not found"):
        local.load_dataset(data_dir, "gqa", "test")
    with pytest.raises(UserError, match="unknown dataset"):
        local.load_dataset(data_dir, "vqav2", "test")
    bad = data_dir / "scienceqa" / "train.jsonl"
    good = bad.read_text().splitlines()
    bad.write_text(good[0] + "\n{not json\n")
    with pytest.raises(UserError, match=r"train\.jsonl:2: not valid JSON"):
        local.load_dataset(data_dir, "scienceqa", "train")
    bad.write_text(json.dumps({"image": "images/none.png", "prompt": "p", "answer": "A"}) + "\n")
    with pytest.raises(UserError, match=r"train\.jsonl:1: image .*none\.png not found"):
        local.load_dataset(data_dir, "scienceqa", "train")
    bad.write_text(json.dumps({"image": "images/tr0.png", "prompt": "p", "answer": "C",
                               "choices": ["cat", "dog"]}) + "\n")
    with pytest.raises(UserError, match=r"train\.jsonl:1: 'answer' must be an option letter"):
        local.load_dataset(data_dir, "scienceqa", "train")
    bad.write_text(json.dumps({"image": "images/tr0.png", "prompt": "p"}) + "\n")
    with pytest.raises(UserError, match=r"train\.jsonl:1: 'answer' is missing"):
        local.load_dataset(data_dir, "scienceqa", "train")
