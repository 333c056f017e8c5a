"""The corpora, the pre-trained tiny MLLM (built once, cached) and its evaluation.

Upstream score = mean accuracy (%) over the upstream VQA tasks (colour, count, position,
existence), as the paper's upstream side is VQA accuracy; the upstream captioning CIDEr is
reported beside it. Downstream score = the fine-tuned task's metric (CIDEr-D × 100 for
captioning, accuracy % for multiple choice). H = 2·U·D / (U + D).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import torch

from papers.spider import corpora
from shared.cache import cache_key
from shared.config import to_dict
from shared.tracking import progress

VQA_TASKS = tuple(t for t in corpora.UPSTREAM_TASKS if t not in corpora.CAPTION_TASKS)


def upstream_train(cfg) -> list[dict]:
    d = cfg.data
    return corpora.upstream_examples(d.upstream_train, d.data_seed, cfg.pretrain.tasks,
                                     image_size=cfg.model.image_size, mc_answer=d.mc_answer,
                                     styles=cfg.pretrain.styles)


def _downstream(cfg, task: str, n: int, split: str) -> list[dict]:
    d = cfg.data
    return corpora.downstream_examples(task, n, d.data_seed, split, cfg.model.image_size,
                                       mcqa_kinds=d.mcqa_kinds, mc_answer=d.mc_answer)


def eval_sets(cfg) -> tuple[dict, dict]:
    """(upstream {task: examples}, downstream {task: examples}), held-out test splits."""
    d = cfg.data
    up = corpora.upstream_eval_sets(d.upstream_eval, d.data_seed, image_size=cfg.model.image_size)
    down = {t: _downstream(cfg, t, d.downstream_eval, "test") for t in d.downstream_tasks}
    return up, down


def downstream_train(cfg, task: str) -> list[dict]:
    return _downstream(cfg, task, cfg.data.downstream_train, "train")


def _all_text(cfg) -> list[str]:
    d = cfg.data
    texts = []
    examples = upstream_train(cfg)
    for task in corpora.DOWNSTREAM_TASKS:
        examples += _downstream(cfg, task, d.downstream_train, "train")
    for e in examples:
        texts += [e["prompt"], e["answer"], *(e.get("references") or [])]
    return texts


def base_dir(cfg) -> Path:
    key = cache_key(model=to_dict(cfg.model), data=to_dict(cfg.data), pretrain=to_dict(cfg.pretrain))
    return Path(cfg.data_dir) / "spider" / f"base-{key}"


def load_base(cfg, show_progress: bool = True):
    """(model, tokenizer, pre-training record): the pre-trained tiny model, built and cached
    on first use (atomically: a killed build leaves nothing behind)."""
    from transformers import LlavaForConditionalGeneration, PreTrainedTokenizerFast

    from papers.spider import mllm

    root = base_dir(cfg)
    if not (root / "DONE").exists():
        tmp = root.with_name(f".{root.name}.{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        m, p = cfg.model, cfg.pretrain
        tokenizer = mllm.train_tokenizer(_all_text(cfg), m.vocab_size)
        model = mllm.build_model(tokenizer, image_size=m.image_size, patch_size=m.patch_size,
                                 vision_width=m.vision_width, vision_layers=m.vision_layers,
                                 text_width=m.text_width, text_layers=m.text_layers, heads=m.heads,
                                 seed=p.seed)
        bar = progress(total=p.steps, desc="pre-train tiny LLaVA", **({} if show_progress else {"disable": True}))
        losses = mllm.pretrain(model, tokenizer, upstream_train(cfg), p.steps, p.lr, p.batch_size, p.seed,
                               callback=lambda step, loss: (bar.update(1), bar.set_postfix(loss=f"{loss:.3f}")))
        bar.close()
        up, down = eval_sets(cfg)
        record = {"losses": losses[-50:], "upstream": evaluate(cfg, model, tokenizer, up, {})}
        model.save_pretrained(tmp / "model")
        tokenizer.save_pretrained(tmp / "tokenizer")
        (tmp / "pretrain.json").write_text(json.dumps(record) + "\n")
        (tmp / "DONE").write_text("ok\n")
        if root.exists():  # another process finished first
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            os.replace(tmp, root)
    model = LlavaForConditionalGeneration.from_pretrained(root / "model", local_files_only=True)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(root / "tokenizer", local_files_only=True)
    model.eval()
    return model, tokenizer, json.loads((root / "pretrain.json").read_text())


@torch.no_grad()
def evaluate(cfg, model, tokenizer, upstream: dict, downstream: dict) -> dict:
    """{"upstream/<task>": %, "upstream": mean VQA %, "downstream/<task>": %}."""
    from papers.spider import mllm

    model.eval()
    out = {}
    for group, sets in (("upstream", upstream), ("downstream", downstream)):
        for task, examples in sets.items():
            preds = mllm.generate_answers(model, tokenizer, examples, cfg.eval.max_new_tokens or None,
                                          cfg.eval.batch_size)
            out[f"{group}/{task}"] = corpora.score_percent(examples, preds)
    vqa = [out[f"upstream/{t}"] for t in VQA_TASKS if f"upstream/{t}" in out]
    if vqa:
        out["upstream"] = float(np.mean(vqa))
    return out


def harmonic(u: float, d: float) -> float:
    return 2 * u * d / (u + d) if u + d > 0 else 0.0


def config(name: str, overrides: list[str] | None = None):
    """The named config (configs/<name>.yaml) with `overrides`."""
    from papers.spider.config import SpiderConfig
    from shared.config import load_config

    return load_config(SpiderConfig, Path(__file__).parent / "configs", name, list(overrides or []))


def tokenizer_for(cfg):
    """The tokenizer of cfg's pre-trained model: the cached one, or trained afresh exactly as
    `load_base` trains it (without pre-training the model)."""
    from transformers import PreTrainedTokenizerFast

    from papers.spider import mllm

    root = base_dir(cfg)
    if (root / "DONE").exists():
        return PreTrainedTokenizerFast.from_pretrained(root / "tokenizer", local_files_only=True)
    return mllm.train_tokenizer(_all_text(cfg), cfg.model.vocab_size)


def vocabulary_coverage(cfg, tokenizer, tasks=None) -> list[list]:
    """`coverage_rows` for cfg's pre-training mixture and downstream training sets."""
    tasks = list(tasks if tasks is not None else cfg.data.downstream_tasks)
    return coverage_rows(tokenizer, upstream_train(cfg), {t: downstream_train(cfg, t) for t in tasks})


def coverage_rows(tokenizer, upstream: list[dict], downstream: dict[str, list[dict]]) -> list[list]:
    """Per downstream task, how much of its target vocabulary the pre-trained model has seen:
    [task, target token types, types that never occur in the pre-training text (prompts and
    answers, tokenized as `mllm.encode` does), share of target tokens of such a type, share
    of training answers with one, the unseen tokens]. Targets are the training answers."""
    from collections import Counter

    from papers.spider import mllm

    def ids(text):
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    seen: set[int] = set()
    for e in upstream:
        seen.update(ids(mllm.PROMPT_FORMAT.format(prompt=e["prompt"])))
        seen.update(ids(" " + e["answer"]))
    rows = []
    for task, examples in downstream.items():
        counts: Counter = Counter()
        with_unseen = 0
        for e in examples:
            answer = ids(" " + e["answer"])
            counts.update(answer)
            with_unseen += any(t not in seen for t in answer)
        unseen = [t for t in counts if t not in seen]
        words = sorted(tokenizer.decode([t]).strip() for t in unseen)
        rows.append([task, len(counts), len(unseen), sum(counts[t] for t in unseen) / sum(counts.values()),
                     with_unseen / len(examples), ", ".join(words) or "-"])
    return rows
