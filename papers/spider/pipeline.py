"""The corpora, the pre-trained tiny MLLM (built once, cached) and its evaluation.

Upstream score = mean accuracy (%) over the upstream VQA tasks (colour, count, position,
existence), as the paper's upstream side is VQA accuracy; the upstream captioning CIDEr is
reported beside it. Downstream score = the fine-tuned task's metric (CIDEr-D × 100 for
captioning, accuracy % for multiple choice). H = 2·U·D / (U + D).
"""

from __future__ import annotations

import copy
import functools
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

from papers.spider import corpora
from shared import UserError
from shared.cache import cache_key, file_sha256
from shared.config import to_dict
from shared.tracking import progress

VQA_TASKS = tuple(t for t in corpora.UPSTREAM_TASKS if t not in corpora.CAPTION_TASKS)


@functools.lru_cache(maxsize=1)
def _upstream_train_cached(n: int, seed: int, tasks: tuple, image_size: int, mc_answer: str, styles: tuple) -> tuple:
    return tuple(corpora.upstream_examples(n, seed, list(tasks), image_size=image_size, mc_answer=mc_answer,
                                           styles=list(styles)))


def upstream_train(cfg) -> list[dict]:
    """The pre-training mixture (generated once per process: the tokenizer, the pre-training
    and the vocabulary coverage read the same examples; callers only read them)."""
    d = cfg.data
    return list(_upstream_train_cached(d.upstream_train, d.data_seed, tuple(cfg.pretrain.tasks),
                                       cfg.model.image_size, d.mc_answer, tuple(cfg.pretrain.styles)))


@functools.lru_cache(maxsize=8)
def _downstream_cached(task: str, n: int, seed: int, split: str, image_size: int,
                       mcqa_kinds: tuple, mc_answer: str) -> tuple:
    return tuple(corpora.downstream_examples(task, n, seed, split, image_size,
                                             mcqa_kinds=list(mcqa_kinds), mc_answer=mc_answer))


def _downstream(cfg, task: str, n: int, split: str) -> list[dict]:
    """The generated examples (kept for the life of the process: `reproduce` asks for the
    same sets in every run; callers only read them)."""
    d = cfg.data
    return list(_downstream_cached(task, n, d.data_seed, split, cfg.model.image_size,
                                   tuple(d.mcqa_kinds), d.mc_answer))


@functools.lru_cache(maxsize=4)
def _upstream_eval_cached(n: int, seed: int, image_size: int) -> dict:
    return corpora.upstream_eval_sets(n, seed, image_size=image_size)


def eval_sets(cfg, downstream: bool = True) -> tuple[dict, dict]:
    """(upstream {task: examples}, downstream {task: examples}), held-out test splits."""
    d = cfg.data
    up = dict(_upstream_eval_cached(d.upstream_eval, d.data_seed, cfg.model.image_size))
    down = {t: _downstream(cfg, t, d.downstream_eval, "test") for t in d.downstream_tasks} if downstream else {}
    return up, down


def downstream_eval(cfg, task: str) -> list[dict]:
    """The held-out test split of one downstream task (in data.downstream_tasks or not)."""
    return _downstream(cfg, task, cfg.data.downstream_eval, "test")


def downstream_train(cfg, task: str) -> list[dict]:
    return _downstream(cfg, task, cfg.data.downstream_train, "train")


def _image_key(e: dict) -> bytes:
    return np.ascontiguousarray(e["image"]).tobytes()


VAL_SEED_OFFSET = 1_000_003  # the upstream validation sets' stream: data_seed + this


def downstream_val(cfg, task: str) -> list[dict]:
    """The validation split of a downstream task (the baselines' sweeps choose on it): the
    next data.downstream_val examples of the training stream after the training set, with
    every image that also occurs in the training set left out, so it shares no image with
    the training set (the train/test hash keeps it apart from the test set too)."""
    d = cfg.data
    n_train, want = d.downstream_train, d.downstream_val
    train_images = {_image_key(e) for e in downstream_train(cfg, task)}
    extra = max(want, 1)
    while True:
        stream = _downstream(cfg, task, n_train + extra, "train")[n_train:]
        out = [e for e in stream if _image_key(e) not in train_images][:want]
        if len(out) == want:
            return out
        extra *= 2


@functools.lru_cache(maxsize=4)
def _upstream_val_cached(n: int, seed: int, image_size: int) -> dict:
    test = _upstream_eval_cached(n, seed, image_size)
    out = {}
    for task in VQA_TASKS:
        taken = {_image_key(e) for e in test[task]}
        extra = n
        while True:
            more = corpora.upstream_task_examples(task, n + extra, seed + VAL_SEED_OFFSET, "test", image_size)
            picked = [e for e in more if _image_key(e) not in taken][:n]
            if len(picked) == n:
                out[task] = picked
                break
            extra *= 2
    return out


def val_sets(cfg, task: str) -> tuple[dict, list[dict]]:
    """(upstream {VQA task: examples}, downstream examples): the validation sets of the
    baselines' sweeps. Upstream: data.upstream_val plain test-split images per VQA task from
    another stream than the test sets, none shared with them (nor with pre-training, by the
    train/test hash)."""
    up = dict(_upstream_val_cached(cfg.data.upstream_val, cfg.data.data_seed, cfg.model.image_size))
    return up, downstream_val(cfg, task)


def _all_text(cfg) -> list[str]:
    d = cfg.data
    texts = []
    examples = upstream_train(cfg)
    for task in corpora.DOWNSTREAM_TASKS:
        examples += _downstream(cfg, task, d.downstream_train, "train")
    for e in examples:
        texts += [e["prompt"], e["answer"], *(e.get("references") or [])]
    return texts


# Fields the pre-trained tiny model does not depend on: the paper path's (model.source=local
# reads them) and the fine-tuning runs' evaluation (the tokenizer is trained on every
# downstream task's training text whatever data.downstream_tasks says).
NOT_IN_BASE = {"model": ("source", "path", "max_length", "system_prompt", "image_aspect"),
               "data": ("local_dir", "local_task", "local_upstream", "local_suffix", "downstream_tasks", "downstream_eval",
                        "downstream_val", "upstream_val")}


def base_key(cfg) -> str:
    """The cache key of the pre-trained tiny model: every model/data/pretrain field it depends
    on (not those in NOT_IN_BASE)."""
    parts = {name: {k: v for k, v in to_dict(getattr(cfg, name)).items() if k not in NOT_IN_BASE.get(name, ())}
             for name in ("model", "data", "pretrain")}
    return cache_key(**parts)


def base_dir(cfg) -> Path:
    return Path(cfg.data_dir) / "spider" / f"base-{base_key(cfg)}"


MANIFEST = "manifest.json"


def _write_manifest(root: Path) -> None:
    """sha256 and size of every file of a built cache, written before its DONE marker."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name not in (MANIFEST, "DONE"))
    manifest = {str(p.relative_to(root)): {"bytes": p.stat().st_size, "sha256": file_sha256(p)} for p in files}
    (root / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")


def base_problem(root: Path) -> str | None:
    """Why the cached model at `root` cannot be used (None: it is complete and intact)."""
    if not (root / "DONE").exists():
        return "incomplete (no DONE marker)"
    try:
        manifest = json.loads((root / MANIFEST).read_text())
    except FileNotFoundError:
        return "has no checksum manifest"
    except (OSError, json.JSONDecodeError):
        return f"has an unreadable {MANIFEST}"
    for name, want in manifest.items():
        path = root / name
        if not path.is_file():
            return f"lacks {name}"
        if path.stat().st_size != want["bytes"]:
            return f"is truncated or corrupt: {name} has {path.stat().st_size} bytes, expected {want['bytes']}"
        if file_sha256(path) != want["sha256"]:
            return f"is corrupt: {name} fails its sha256 check"
    return None


_LOADED: dict[str, tuple] = {}  # root -> (model, tokenizer, record, manifest text): one load per process


def ensure_base(cfg, show_progress: bool = True) -> Path:
    """Build the pre-trained tiny model unless an intact copy is cached; a corrupt or
    incomplete cache is rebuilt, with one line saying so. Atomic: a killed build leaves
    nothing behind, and of two processes building at once one copy wins."""
    root = base_dir(cfg)
    problem = base_problem(root) if root.exists() else None
    if root.exists() and problem is None:
        return root
    if problem is not None:
        print(f"warning: the cached pre-trained model {root} {problem}; rebuilding it", file=sys.stderr, flush=True)
        _LOADED.pop(str(root), None)
        aside = root.with_name(f".{root.name}.corrupt.{os.getpid()}")
        try:
            os.replace(root, aside)
        except FileNotFoundError:  # another process moved it first
            pass
        shutil.rmtree(aside, ignore_errors=True)
    _build_base(cfg, root, show_progress)
    return root


def _build_base(cfg, root: Path, show_progress: bool) -> None:
    from papers.spider import mllm

    tmp = root.with_name(f".{root.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    m, p = cfg.model, cfg.pretrain
    tokenizer = mllm.train_tokenizer(_all_text(cfg), m.vocab_size)
    model = mllm.build_model(tokenizer, image_size=m.image_size, patch_size=m.patch_size,
                             vision_width=m.vision_width, vision_layers=m.vision_layers,
                             text_width=m.text_width, text_layers=m.text_layers, heads=m.heads,
                             seed=p.seed)
    examples = upstream_train(cfg)
    threads = torch.get_num_threads()
    torch.set_num_threads(p.threads)
    try:
        bar = progress(total=p.steps, desc="pre-train tiny LLaVA", **({} if show_progress else {"disable": True}))
        losses = mllm.pretrain(model, tokenizer, examples, p.steps, p.lr, p.batch_size, p.seed,
                               callback=lambda step, loss: (bar.update(1), bar.set_postfix(loss=f"{loss:.3f}")))
        bar.close()
    finally:
        torch.set_num_threads(threads)
    up, _ = eval_sets(cfg, downstream=False)
    record = {"losses": losses[-50:], "upstream": evaluate(cfg, model, tokenizer, up, {})}
    model.save_pretrained(tmp / "model")
    tokenizer.save_pretrained(tmp / "tokenizer")
    (tmp / "pretrain.json").write_text(json.dumps(record) + "\n")
    _write_manifest(tmp)
    (tmp / "DONE").write_text("ok\n")
    try:
        os.replace(tmp, root)
    except OSError:  # another process installed its copy first (a non-empty directory)
        shutil.rmtree(tmp, ignore_errors=True)


def load_base(cfg, show_progress: bool = True):
    """(model, tokenizer, pre-training record): the pre-trained tiny model, built and cached
    on first use (`ensure_base`), its files checked against their sha256 manifest. Loaded
    from disk once per process; each call returns a fresh copy of the model."""
    from transformers import LlavaForConditionalGeneration, PreTrainedTokenizerFast

    root = ensure_base(cfg, show_progress)
    manifest = (root / MANIFEST).read_text()
    hit = _LOADED.get(str(root))
    if hit is None or hit[3] != manifest:
        try:
            model = LlavaForConditionalGeneration.from_pretrained(root / "model", local_files_only=True)
            tokenizer = PreTrainedTokenizerFast.from_pretrained(root / "tokenizer", local_files_only=True)
            record = json.loads((root / "pretrain.json").read_text())
        except (OSError, ValueError) as exc:  # verified a moment ago: the cache changed under us
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise UserError(f"the cached pre-trained model {root} cannot be read ({first}); "
                            "delete it to rebuild") from None
        model.eval()
        hit = _LOADED[str(root)] = (model, tokenizer, record, manifest)
    model = copy.deepcopy(hit[0])
    model.eval()
    return model, hit[1], copy.deepcopy(hit[2])


def _max_new_tokens(cfg, tokenizer, examples) -> int:
    from papers.spider import mllm

    return cfg.eval.max_new_tokens or mllm.default_max_new_tokens(examples, tokenizer)


@torch.no_grad()
def evaluate(cfg, model, tokenizer, upstream: dict, downstream: dict, accelerator=None) -> dict:
    """{"upstream/<task>": %, "upstream": mean VQA %, "downstream/<task>": %}.

    Every set with the same generation length is generated in one run of batches of
    eval.batch_size; under a multi-process launch (`accelerator`) each process generates
    whole batches (batch i on process i mod world, so every batch is the one a single
    process would generate) and every process gets all the predictions."""
    from papers.spider import mllm

    model.eval()
    sets = [(f"{group}/{task}", examples) for group, by_task in (("upstream", upstream), ("downstream", downstream))
            for task, examples in by_task.items()]
    lengths = {name: _max_new_tokens(cfg, tokenizer, examples) for name, examples in sets}
    bs = cfg.eval.batch_size
    rank, world = (accelerator.process_index, accelerator.num_processes) if accelerator is not None else (0, 1)
    preds: dict[str, dict[int, str]] = {}
    for length in dict.fromkeys(lengths.values()):
        items = [(name, i, e) for name, examples in sets if lengths[name] == length for i, e in enumerate(examples)]
        batches = [items[s:s + bs] for s in range(0, len(items), bs)]
        mine = []
        for b in range(rank, len(batches), world):
            answers = mllm.generate_answers(model, tokenizer, [e for _, _, e in batches[b]], length, bs)
            mine += [(name, i, a) for (name, i, _), a in zip(batches[b], answers, strict=True)]
        if world > 1:
            from accelerate.utils import gather_object

            mine = gather_object(mine)
        for name, i, a in mine:
            preds.setdefault(name, {})[i] = a
    out = {}
    for name, examples in sets:
        out[name] = corpora.score_percent(examples, [preds[name][i] for i in range(len(examples))])
    vqa = [out[f"upstream/{t}"] for t in VQA_TASKS if f"upstream/{t}" in out]
    if vqa:
        out["upstream"] = float(np.mean(vqa))
    return out


def harmonic(u: float, d: float) -> float:
    """The paper's H = 2·U·D / (U + D) of the two scores as they are."""
    return 2 * u * d / (u + d) if u + d > 0 else 0.0


def relative_h(u: float, d: float, u_ref: float, d_ref: float) -> float:
    """H on the two scores each as a share (%) of its reference: the upstream score of the
    pre-trained model's (what there is to keep) and the downstream score of full FT's (what
    there is to learn). `reproduce` reports this H on the tiny model, where CIDEr-D × 100 of
    the easy procedural captions (about 160) is not on the accuracies' 0-100 scale, as
    LLaVA's Flickr30k / COCO CIDEr is in the paper: the paper's H of 160 and 40 is close to
    2 × 40 and hardly sees the downstream score (README, Deviations)."""
    if not (u_ref > 0 and d_ref > 0):
        raise ValueError(f"relative H needs positive reference scores, got upstream {u_ref}, downstream {d_ref}")
    return harmonic(100 * u / u_ref, 100 * d / d_ref)


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
    if root.exists() and base_problem(root) is None:
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
