"""The paper path: LLaVA-1.5 from a local directory, fine-tuned on local copies of the paper's
datasets with `accelerate` (multi-GPU, bf16). Nothing is downloaded.

Launch (one process per GPU):

    accelerate launch --num_processes 4 -m papers.spider train --config paper \\
        model.path=/models/llava-1.5-7b-hf data.local_dir=/data/spider

Model directory (`model.path`): a `transformers` LLaVA checkpoint with its processor files, as
`llava-hf/llava-1.5-7b-hf` ships them (config.json, *.safetensors, tokenizer files,
processor_config.json / preprocessor_config.json).

Dataset format (`data.local_dir`), one directory per dataset:

    <local_dir>/<name>/train.jsonl
    <local_dir>/<name>/test.jsonl
    <local_dir>/<name>/<images, anywhere below the dataset directory>

Each line is one JSON object:

    {"image": "images/123.jpg",          # path relative to <local_dir>/<name>/
     "prompt": "What is the man holding?",
     "answer": "umbrella",
     "references": ["umbrella", ...],      # optional; see below
     "choices": ["cat", "dog", "bird"]}    # multiple choice only

The prompt is the full user turn (for multiple choice it already lists the lettered options
and the instruction, e.g. "Answer with the option's letter from the given choices
directly."). Empty lines are skipped. Names and what they mean:

- downstream, captioning (CIDEr-D x 100): `flickr30k`, `coco`. `references` holds every
  reference caption of the image (test split); `answer` is the training target (one line per
  training caption). A missing `references` means `[answer]`; an empty `answer` with
  references means `references[0]`.
- downstream, multiple choice (accuracy of the letter): `scienceqa`, `iconqa`. `answer` is
  the option letter (A, B, ...); the text of one of `choices` is accepted and turned into its
  letter.
- upstream, VQA (accuracy): `okvqa`, `gqa`, `textvqa`, `ocrvqa` (the ones present are used).
  With `references` of two or more annotator answers (OKVQA, TextVQA: ten) the score is the
  official VQA accuracy, the mean over the leave-one-annotator-out subsets of
  min(1, #matches / 3), after the official answer normalisation (`vqa_eval`); otherwise exact
  match with `answer` after the same normalisation (GQA, OCR-VQA).

Conversation format (LLaVA-1.5's vicuna_v1 template): the system line (`model.system_prompt`,
SYSTEMS), then "USER: <image>\\n{prompt} ASSISTANT: {answer}</s>" ("USER: {prompt} ASSISTANT:
..." for a text-only question: `"image": null`). With `data.local_suffix=llava` each prompt
gets LLaVA-1.5's answer-format instruction of its kind on a new line (SUFFIXES: "Answer the
question using a single word or phrase." for VQA, the option-letter instruction for multiple
choice), unless it already ends with it. With `model.image_aspect=pad` every image is first
padded to a square with the processor's mean pixel, as LLaVA-1.5's image_aspect_ratio=pad.
Converters from the datasets' published formats to this JSONL: `python -m
papers.spider.convert` (convert.py). The processor expands `<image>` into one
token per vision feature (576 for LLaVA-1.5 at 336 px). Labels are -100 on everything up to
and including "ASSISTANT:" and on padding; the answer and </s> are supervised.

Precision: with precision=bf16 (fp16) the model is loaded in that dtype, the trained tensors
(projector, last LM layers) are kept in fp32 (the master weights DeepSpeed keeps in the
authors' setup, which SPIDER's θ₀ and G also assume), and forward passes run under
`accelerate`'s autocast.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from papers.spider.corpora import LETTERS
from shared import UserError

os.environ.setdefault("HF_HUB_OFFLINE", "1")

DOWNSTREAM = {"flickr30k": "caption", "coco": "caption", "scienceqa": "mcqa", "iconqa": "mcqa"}
UPSTREAM = {"okvqa": "vqa", "gqa": "vqa", "textvqa": "vqa", "ocrvqa": "vqa"}
DATASETS = {**DOWNSTREAM, **UPSTREAM}
SPLITS = ("train", "test")
USER_FORMAT = "USER: <image>\n{prompt} ASSISTANT:"
TEXT_FORMAT = "USER: {prompt} ASSISTANT:"  # a text-only question (ScienceQA has them)
# LLaVA-1.5's conversation template vicuna_v1 opens with this system line
SYSTEMS = {"vicuna_v1": "A chat between a curious human and an artificial intelligence assistant. "
                        "The assistant gives helpful, detailed, and polite answers to the human's questions.",
           "none": ""}
# the answer-format instruction LLaVA-1.5's evaluation appends to each kind of question; the
# caption one is the short-caption instruction of LLaVA-1.5's training mixture [recon]
SUFFIXES = {"vqa": "Answer the question using a single word or phrase.",
            "mcqa": "Answer with the option's letter from the given choices directly.",
            "caption": "Provide a one-sentence caption for the provided image."}


def user_turn(example: dict, system: str = "none") -> str:
    """The conversation up to "ASSISTANT:" for one example (its image token when it has an
    image), after the system line `system` (a key of SYSTEMS)."""
    fmt = USER_FORMAT if example.get("image") is not None else TEXT_FORMAT
    head = SYSTEMS[system]
    return (head + " " if head else "") + fmt.format(prompt=example["prompt"])


def with_suffix(prompt: str, task: str) -> str:
    """`prompt` with the LLaVA-1.5 answer-format instruction of `task` on its own line
    (unchanged when it already ends with it)."""
    suffix = SUFFIXES[task]
    return prompt if prompt.rstrip().endswith(suffix) else f"{prompt.rstrip()}\n{suffix}"
RELEVANT = ("model.", "data.", "finetune.", "eval.", "precision")


# ---------------------------------------------------------------------------- datasets


def _line_error(path: Path, lineno: int, problem: str) -> UserError:
    return UserError(f"{path}:{lineno}: {problem}")


def _strings(value, what: str, path: Path, lineno: int) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _line_error(path, lineno, f"'{what}' must be a list of strings")
    return list(value)


def _parse(obj, name: str, root: Path, path: Path, lineno: int, lazy: bool, suffix: bool = False) -> dict:
    if not isinstance(obj, dict):
        raise _line_error(path, lineno, "expected a JSON object")
    for key in ("prompt", "answer"):
        if not isinstance(obj.get(key), str):
            raise _line_error(path, lineno, f"'{key}' is missing or not a string")
    if obj.get("image") is not None and not isinstance(obj["image"], str):
        raise _line_error(path, lineno, "'image' must be a path (a string) or null (a text-only question)")
    task = DATASETS[name]
    answer = obj["answer"].strip()
    choices = _strings(obj["choices"], "choices", path, lineno) if obj.get("choices") is not None else None
    refs = _strings(obj["references"], "references", path, lineno) if obj.get("references") is not None else None
    if task == "caption" and not answer and refs:
        answer = refs[0]
    if not answer:
        raise _line_error(path, lineno, "'answer' is empty")
    if task == "mcqa":
        if choices is not None and answer in choices and not (len(answer) == 1 and answer in LETTERS):
            answer = LETTERS[choices.index(answer)]
        allowed = LETTERS[: len(choices)] if choices else LETTERS
        if len(answer) != 1 or answer not in allowed:
            raise _line_error(path, lineno, f"'answer' must be an option letter in {allowed}, got {answer!r}")
    image = None
    if obj.get("image") is not None:
        image = (root / obj["image"]).resolve()
        if not image.is_file():
            raise _line_error(path, lineno, f"image {image} not found")
    return {
        "image": None if image is None else str(image) if lazy else load_image(image),
        "image_path": None if image is None else str(image),
        "prompt": with_suffix(obj["prompt"], task) if suffix else obj["prompt"],
        "answer": answer,
        "task": task,
        "dataset": name,
        "references": refs if refs else [answer],
        "choices": choices,
    }


def load_dataset(local_dir: str | Path, name: str, split: str, limit: int | None = None,
                 lazy: bool = False, suffix: bool = False) -> list[dict]:
    """Examples of `<local_dir>/<name>/<split>.jsonl` in the corpora format ({"image",
    "prompt", "answer", "task", "references", "choices"} plus "dataset" and "image_path"),
    the first `limit` of them if given. "image" is an (H, W, 3) uint8 RGB array, or with
    `lazy` its absolute path (loaded when a batch is encoded: COCO does not fit in memory).
    Every image file is checked to exist; an example without an image ("image" null or
    absent) is a text-only question. `suffix`: append LLaVA-1.5's answer-format instruction
    of the dataset's kind (`with_suffix`)."""
    if name not in DATASETS:
        raise UserError(f"unknown dataset '{name}' (known: {', '.join(DATASETS)})")
    if split not in SPLITS:
        raise UserError(f"unknown split '{split}' (known: {', '.join(SPLITS)})")
    if not str(local_dir):
        raise UserError("data.local_dir is not set: give the directory holding the datasets "
                        "(data.local_dir=/data/spider)")
    root = Path(local_dir) / name
    if not root.is_dir():
        raise UserError(f"dataset directory {root} not found (expected {root}/train.jsonl and "
                        f"{root}/test.jsonl; see papers/spider/local.py)")
    path = root / f"{split}.jsonl"
    if not path.is_file():
        raise UserError(f"{path} not found (see papers/spider/local.py for the format)")
    out: list[dict] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if limit is not None and len(out) >= limit:
                break
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise _line_error(path, lineno, f"not valid JSON ({exc.msg})") from None
            out.append(_parse(obj, name, root, path, lineno, lazy, suffix))
    if not out:
        raise UserError(f"{path} holds no examples")
    return out


def load_image(image) -> np.ndarray:
    """An (H, W, 3) uint8 RGB array from a path (or the array itself)."""
    if isinstance(image, np.ndarray):
        return image
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(image) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (OSError, UnidentifiedImageError) as exc:
        raise UserError(f"cannot read image {image}: {exc}") from None


def upstream_names(local_dir: str | Path, names: list[str] | None = None) -> list[str]:
    """`names` (each must exist), or every upstream dataset present under `local_dir`."""
    if names:
        bad = [n for n in names if n not in UPSTREAM]
        if bad:
            raise UserError(f"upstream datasets {bad} unknown (known: {', '.join(UPSTREAM)})")
        return list(names)
    found = [n for n in UPSTREAM if (Path(local_dir) / n).is_dir()]
    if not found:
        raise UserError(f"no upstream dataset under {local_dir} (expected one or more of "
                        f"{', '.join(UPSTREAM)}; see papers/spider/local.py)")
    return found


def score_local(examples: list[dict], predictions: list[str]) -> float:
    """Score in percent: CIDEr-D x 100 (captioning), letter accuracy (multiple choice), the
    official VQA accuracy (`vqa_eval`: ten annotator answers, or exact match after the
    official normalisation with one)."""
    from papers.spider import corpora
    from papers.spider.vqa_eval import vqa_score

    if examples and examples[0]["task"] == "vqa":
        return vqa_score(predictions, [e["references"] or [e["answer"]] for e in examples])
    return corpora.score_percent(examples, predictions)


# ------------------------------------------------------------------------------- model


def load_llava(path: str | Path, precision: str = "no"):
    """(LlavaForConditionalGeneration, processor) from a local directory, in bf16/fp16 when
    `precision` says so (fp32 otherwise); never downloads."""
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    if not str(path):
        raise UserError("model.path is not set: give a local LLaVA-1.5 directory "
                        "(model.path=/models/llava-1.5-7b-hf)")
    path = Path(path)
    if not (path / "config.json").is_file():
        raise UserError(f"model.path {path}: not a model directory (no config.json)")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)
    try:
        model = LlavaForConditionalGeneration.from_pretrained(path, dtype=dtype, local_files_only=True)
        processor = AutoProcessor.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"model.path {path}: cannot load a LLaVA model and processor ({first})") from None
    tok = processor.tokenizer
    if tok.pad_token is None:
        tok.pad_token = tok.unk_token or tok.eos_token
    model.eval()
    return model, processor


def llava_groups(model, last_layers: int = 2, master_dtype: torch.dtype | None = torch.float32):
    """([(name, param)] of the multimodal projector, [(name, param)] of the last
    `last_layers` LM decoder layers) of a transformers-5 LlavaForConditionalGeneration; every
    other parameter is frozen. The trained tensors are cast to `master_dtype` (fp32 master
    weights under a bf16 model; None keeps them as loaded)."""
    from papers.spider.mllm import trainable_parameters

    if not hasattr(model, "model") or not hasattr(model.model, "multi_modal_projector"):
        raise UserError("the model is not a transformers-5 LlavaForConditionalGeneration")
    projector, layers = trainable_parameters(model, last_layers, named=True)
    keep = {id(p) for _, p in projector + layers}
    for p in model.parameters():
        p.requires_grad_(id(p) in keep)
    if master_dtype is not None:
        for _, p in projector + layers:
            if p.dtype != master_dtype:
                p.data = p.data.to(master_dtype)
    return projector, layers


# ---------------------------------------------------------------------------- encoding


def pad_to_square(image: np.ndarray, fill) -> np.ndarray:
    """The image centred on a square canvas of its longer side, filled with `fill` (RGB
    0-255): LLaVA-1.5's image_aspect_ratio=pad, before the processor's resize."""
    h, w = image.shape[:2]
    if h == w:
        return image
    side = max(h, w)
    out = np.empty((side, side, 3), dtype=np.uint8)
    out[:] = np.asarray(fill, dtype=np.uint8)
    top, left = (side - h) // 2, (side - w) // 2
    out[top:top + h, left:left + w] = image
    return out


def _fill(processor) -> tuple[int, ...]:
    """The processor's mean pixel in 0-255 (LLaVA pads with it)."""
    mean = getattr(processor.image_processor, "image_mean", None) or (0.5, 0.5, 0.5)
    return tuple(int(round(255 * m)) for m in mean)


def _pil(image, pad=None):
    from PIL import Image

    array = load_image(image)
    return Image.fromarray(pad_to_square(array, pad) if pad is not None else array)


def _images(processor, examples, pad: bool):
    fill = _fill(processor) if pad else None
    images = [_pil(e["image"], fill) for e in examples if e.get("image") is not None]
    return images or None


def _prefix_len(tokenizer, prefix: str, full_ids: list[int], n_image: int, image_token: str) -> int:
    """Tokens of the prompt part inside the full sequence (the processor's tokenization of
    the expanded prompt; falls back to the common prefix if the boundary merged)."""
    ids = tokenizer(prefix.replace(image_token, image_token * n_image))["input_ids"]
    n = 0
    while n < min(len(ids), len(full_ids)) and ids[n] == full_ids[n]:
        n += 1
    return n


def make_encoder(processor, max_length: int = 2048, system: str = "none", pad: bool = False):
    """`encode_batch(examples) -> {input_ids, attention_mask, pixel_values, labels}` (right
    padded, cut to `max_length` tokens) in LLaVA-1.5's format (`user_turn` with `system`;
    images padded to a square with `pad`), labels only on the answer and </s>. A batch of
    text-only questions has no pixel_values."""
    tok = processor.tokenizer
    image_token = processor.image_token
    image_id = processor.image_token_id

    def encode_batch(examples: list[dict]) -> dict[str, torch.Tensor]:
        if not examples:
            raise ValueError("encode_batch needs at least one example")
        prefixes = [user_turn(e, system) for e in examples]
        texts = [f"{p} {e['answer']}{tok.eos_token}" for p, e in zip(prefixes, examples)]
        batch = processor(text=texts, images=_images(processor, examples, pad), padding=True,
                          padding_side="right", return_tensors="pt")
        ids, mask = batch["input_ids"], batch["attention_mask"]
        labels = ids.clone()
        labels[mask == 0] = -100
        for i, prefix in enumerate(prefixes):
            row = ids[i][mask[i] == 1].tolist()
            n = _prefix_len(tok, prefix, row, row.count(image_id), image_token)
            labels[i, :n] = -100
        if ids.shape[1] > max_length:
            ids, mask, labels = ids[:, :max_length], mask[:, :max_length], labels[:, :max_length]
        out = {"input_ids": ids.contiguous(), "attention_mask": mask.contiguous(), "labels": labels.contiguous()}
        if "pixel_values" in batch:
            out["pixel_values"] = batch["pixel_values"]
        return out

    return encode_batch


def default_max_new_tokens(processor, examples: list[dict], margin: int = 4) -> int:
    """`mllm.default_max_new_tokens` with the processor's tokenizer."""
    from papers.spider.mllm import default_max_new_tokens as tokens

    return tokens(examples, processor.tokenizer, margin)


@torch.no_grad()
def generate_local(model, processor, examples: list[dict], max_new_tokens: int | None = None,
                   batch_size: int = 8, autocast=None, system: str = "none", pad: bool = False) -> list[str]:
    """Greedy answers (left-padded batches), decoded without special tokens and cut at </s>.
    `autocast`: a context manager factory for mixed precision (accelerator.autocast);
    `system`, `pad`: as `make_encoder`."""
    from contextlib import nullcontext

    if not examples:
        return []
    tok = processor.tokenizer
    max_new_tokens = max_new_tokens or default_max_new_tokens(processor, examples)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    vision_dtype = next(model.model.vision_tower.parameters()).dtype
    out: list[str] = []
    for s in range(0, len(examples), batch_size):
        chunk = examples[s:s + batch_size]
        batch = processor(text=[user_turn(e, system) for e in chunk],
                          images=_images(processor, chunk, pad), padding=True,
                          padding_side="left", return_tensors="pt")
        batch = {k: v.to(device) for k, v in batch.items()}
        if "pixel_values" in batch:
            batch["pixel_values"] = batch["pixel_values"].to(vision_dtype)
        with autocast() if autocast is not None else nullcontext():
            gen = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                                 pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        for row in gen[:, batch["input_ids"].shape[1]:].tolist():
            if tok.eos_token_id in row:
                row = row[:row.index(tok.eos_token_id)]
            out.append(tok.decode(row, skip_special_tokens=True).strip())
    model.train(was_training)
    return out


def evaluate_local(cfg, model, processor, sets: dict[str, list[dict]], accelerator=None) -> dict[str, float]:
    """{name: score %} per evaluation set. With several processes each generates whole
    batches of eval.batch_size (batch i on process i mod world, so every batch is the one a
    single process generates and the scores do not depend on the number of processes), and
    every process gets the gathered predictions."""
    rank, world = (accelerator.process_index, accelerator.num_processes) if accelerator else (0, 1)
    autocast = accelerator.autocast if accelerator is not None else None
    bs = cfg.eval.batch_size
    out = {}
    for name, examples in sets.items():
        max_new = cfg.eval.max_new_tokens or default_max_new_tokens(processor, examples)
        starts = list(range(0, len(examples), bs))
        pairs = []
        for s in starts[rank::world]:
            preds = generate_local(model, processor, examples[s:s + bs], max_new, bs, autocast,
                                   cfg.model.system_prompt, cfg.model.image_aspect == "pad")
            pairs += list(zip(range(s, s + len(preds)), preds))
        if world > 1:
            from accelerate.utils import gather_object

            pairs = gather_object(pairs)
        ordered = [p for _, p in sorted(pairs)]
        out[name] = score_local(examples, ordered)
    return out


# ----------------------------------------------------------------------------- the run


def _limit(n: int) -> int | None:
    return n if n > 0 else None


def run_local(cfg, ctx, method: str | None = None, seed: int | None = None) -> dict | None:
    """The paper path of `train` (every process of `accelerate launch` calls it): fine-tune
    LLaVA from `model.path` with `method` (default finetune.method) and `seed` (default
    cfg.seed) on the downstream dataset data.local_task, then score the upstream VQA sets
    and the downstream test set (each process generates its share). Same result keys as
    train.py's runs. Its own run directory, written by the main process only; `resume=latest`
    reuses a finished run or continues from a checkpoint. Returns the result on the main
    process and None on the others."""
    from accelerate import Accelerator

    from papers.spider.claims import loss_curve
    from papers.spider.finetune import finetune, save_final
    from papers.spider.pipeline import harmonic
    from papers.spider.train import _steps, on_main
    from shared.config import to_dict
    from shared.runs import finish_run, open_run
    from shared.tracking import Tracker, read_metrics

    method = method or cfg.finetune.method
    seed = cfg.seed if seed is None else seed
    d = cfg.data
    task = getattr(d, "local_task", "scienceqa")
    if task not in DOWNSTREAM:
        raise UserError(f"data.local_task '{task}' is not one of {', '.join(DOWNSTREAM)}")
    up_names = upstream_names(d.local_dir, getattr(d, "local_upstream", None))
    max_length = getattr(cfg.model, "max_length", 2048)

    accelerator = Accelerator(mixed_precision=cfg.precision, cpu=cfg.device == "cpu")
    main = accelerator.is_main_process
    # every process validates the data (cheap: images are checked, not read)
    suffix = d.local_suffix == "llava"
    train_set = load_dataset(d.local_dir, task, "train", _limit(d.downstream_train), lazy=True, suffix=suffix)
    down_test = load_dataset(d.local_dir, task, "test", _limit(d.downstream_eval), lazy=True, suffix=suffix)
    upstream = {n: load_dataset(d.local_dir, n, "test", _limit(d.upstream_eval), lazy=True, suffix=suffix)
                for n in up_names}

    name = f"{method}-{task}"

    def open_():
        run_dir, done = open_run(cfg, ctx.slug, ctx.config_name, name, seed, RELEVANT,
                                 {"seed": seed, "method": method, "task": task, "path": "local",
                                  "processes": accelerator.num_processes})
        return str(run_dir), done

    run_dir, done = on_main(accelerator, open_)
    run_dir = Path(run_dir)
    if done is not None:
        return done if main else None
    resuming = (run_dir / "checkpoints").exists()

    model, processor = load_llava(cfg.model.path, cfg.precision)
    groups = llava_groups(model, cfg.finetune.last_layers)
    encode_batch = make_encoder(processor, max_length, cfg.model.system_prompt, cfg.model.image_aspect == "pad")
    tracker = None
    if main:
        tracker = Tracker(run_dir, slug=ctx.slug, group=f"{ctx.config_name}-{name}",
                          name=f"{ctx.slug}__{name}__{ctx.config_name}__{seed}",
                          config=to_dict(cfg), use_wandb=cfg.wandb)
    try:
        rule = finetune(cfg, model, processor.tokenizer, train_set, method, seed, run_dir, tracker,
                        resume=resuming, encode_batch=encode_batch, groups=groups, accelerator=accelerator)
        accelerator.wait_for_everyone()
        model = accelerator.unwrap_model(model)
        scores = evaluate_local(cfg, model, processor, {**upstream, task: down_test}, accelerator)
        result = {**{f"upstream/{n}": scores[n] for n in up_names},
                  f"downstream/{task}": scores[task],
                  "upstream": float(np.mean([scores[n] for n in up_names])),
                  "downstream": scores[task], "method": method, "task": task, "seed": seed,
                  "selected": getattr(rule, "last_selected", {}), "extra_bytes": rule.extra_bytes()}
        result["H"] = harmonic(result["upstream"], result["downstream"])
        if main:
            save_final(run_dir, rule, _steps(cfg, len(train_set)))
            result["loss_curve"] = loss_curve(read_metrics(run_dir))
            tracker.summary({k: v for k, v in result.items() if isinstance(v, float)})
            finish_run(run_dir, result)
    finally:
        if tracker is not None:
            tracker.finish()
    accelerator.wait_for_everyone()
    return result if main else None
