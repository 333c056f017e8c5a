"""Shared, session-scoped SPIDER fixtures: the smoke reproduce (built once: its pre-trained
model cache and its 36 finished fine-tuning runs serve the pipeline, eval, cache and
2-process tests), and the tiny random LLaVA directory + dataset writer of the paper path."""

import contextlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import papers.spider

PAPER_DIR = Path(papers.spider.__file__).parent


@contextlib.contextmanager
def one_torch_thread():
    """The tiny models' ops are far too small for intra-op threads: on a busy 2-core box two
    threads made a 4-step pre-training 3-15x slower than one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="session")
def smoke(tmp_path_factory):
    """(runs root, reproduce dir, results.json) of `reproduce --config smoke` in-process;
    data_dir is <root>/data (the pre-trained smoke model lives there)."""
    from papers.spider.__main__ import main

    root = tmp_path_factory.mktemp("spider-runs")
    argv = ["reproduce", "--config", "smoke", f"runs_dir={root}", f"data_dir={root}/data", "wandb=false"]
    with one_torch_thread():
        assert main(argv) == 0
    out = sorted((root / "spider" / "smoke" / "reproduce").iterdir())[-1]
    return root, out, json.loads((out / "results.json").read_text())


@pytest.fixture(scope="session")
def llava_dir(tmp_path_factory) -> Path:
    """A tiny random LlavaForConditionalGeneration (3 LM layers) with a LlavaProcessor."""
    from transformers import CLIPImageProcessor, LlavaProcessor

    from papers.spider import mllm

    path = tmp_path_factory.mktemp("llava")
    texts = ["USER: what is shown? ASSISTANT: a red circle", "A B C yes no cat dog umbrella"]
    tok = mllm.train_tokenizer(texts, 300)
    image_processor = CLIPImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tok, patch_size=8,
                               vision_feature_select_strategy="default", num_additional_image_tokens=1)
    model = mllm.build_model(tok, image_size=16, patch_size=8, vision_width=16, vision_layers=1,
                             text_width=32, text_layers=3, heads=2, seed=0)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def _image(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (12 + seed, 20, 3), dtype=np.uint8)).save(path)


def _write(root: Path, name: str, split: str, rows: list[dict]) -> None:
    d = root / name
    (d / "images").mkdir(parents=True, exist_ok=True)
    for i, row in enumerate(rows):
        _image(d / row["image"], i)
    (d / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def write_paper_data(root: Path) -> Path:
    """ScienceQA-style train/test (2 + 2 examples) and an OKVQA test set (2) under `root`."""
    mc = [{"image": f"images/{s}{i}.png", "prompt": "which? A. cat B. dog\nAnswer with the letter.",
           "answer": "AB"[i % 2], "choices": ["cat", "dog"]} for s in ("tr", "te") for i in range(2)]
    _write(root, "scienceqa", "train", mc[:2])
    _write(root, "scienceqa", "test", mc[2:])
    _write(root, "okvqa", "test", [
        {"image": "images/q0.png", "prompt": "what is held?", "answer": "umbrella",
         "references": ["umbrella"] * 3 + ["parasol"] * 7},
        {"image": "images/q1.png", "prompt": "what animal?", "answer": "dog"},
    ])
    return root


@pytest.fixture
def data_dir(tmp_path) -> Path:
    return write_paper_data(tmp_path / "data")


def _paper_args(llava_dir: Path, data_dir: Path, runs: Path, *extra: str) -> list[str]:
    return [f"model.path={llava_dir}", f"data.local_dir={data_dir}", f"runs_dir={runs}",
            f"data_dir={runs}/data", "precision=no", "device=cpu", "wandb=false", "finetune.batch_size=2",
            "finetune.epochs=1", "eval.max_new_tokens=2", "eval.batch_size=4", *extra]


@pytest.fixture(scope="session")
def paper_args():
    """`paper_args(llava_dir, data_dir, runs, *extra)`: overrides of the paper config for the
    tiny random LLaVA on CPU."""
    return _paper_args
