"""Downstream fine-tuning with a rule (SPIDER or a baseline) on one plain loop.

As the paper: only the multimodal projector and the last `last_layers` LM decoder layers
train; AdamW without weight decay; the projector's learning rate is `projector_lr_ratio` ×
the LM layers' (2e-5 : 2e-4); cosine schedule with linear warm-up; gradients clipped before
the rule and the optimizer step. Deterministic for a seed; checkpoints (trainable tensors,
optimizer, scheduler, rule state, data-order generator) every `checkpoint_every` steps so a
killed run resumes to the same final weights.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from papers.spider.baselines import build_rule
from papers.spider.spider import Rule
from shared.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from shared.tracking import progress


def make_rule(cfg, method: str, seed: int, steps_per_epoch: int = 0) -> Rule:
    f = cfg.finetune
    return build_rule(method, seed, f.l2sp_weight, f.mask_ratio, f.dare_drop, f.graft_keep, steps_per_epoch)


def cosine_with_warmup(opt, total: int, warmup: float):
    """The tiny model's warm-up + cosine multiplier (mllm.warmup_cosine) over `total` steps,
    with at least one warm-up step."""
    from papers.spider.mllm import warmup_cosine

    warm = max(1, int(round(warmup * total)))
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: warmup_cosine(step, total, warm))


def finetune(cfg, model, tokenizer, examples: list[dict], method: str, seed: int,
             run_dir: Path, tracker=None, resume: bool = False, on_step=None,
             encode_batch=None, groups=None, accelerator=None) -> Rule:
    """Fine-tune `model` in place on `examples` with `method`'s rule; returns the rule.

    `encode_batch(examples) -> model inputs` and `groups` ((projector, layers) named
    parameters) default to the tiny model's; the paper path (local.py) passes its processor's
    encoding, LLaVA-1.5's groups and an `accelerate.Accelerator` (multi-GPU, bf16)."""
    f = cfg.finetune
    torch.manual_seed(seed)
    if encode_batch is None:
        from papers.spider.mllm import encode, num_image_tokens

        n_image = num_image_tokens(model)

        def encode_batch(batch):
            return encode(batch, tokenizer, n_image)
    if groups is None:
        from papers.spider.mllm import freeze_for_finetuning

        projector, layers = freeze_for_finetuning(model, f.last_layers, named=True)
    else:
        projector, layers = groups
    named = projector + layers
    opt = torch.optim.AdamW([{"params": [p for _, p in projector], "lr": f.lr * f.projector_lr_ratio},
                             {"params": [p for _, p in layers], "lr": f.lr}],
                            weight_decay=f.weight_decay)
    per_epoch = math.ceil(len(examples) / f.batch_size)
    total = per_epoch * f.epochs
    sched = cosine_with_warmup(opt, total, f.warmup)
    train_model = model
    if accelerator is not None:
        from papers.spider.spider import sharding_problem
        from shared import UserError

        problem = sharding_problem(accelerator=accelerator)
        if problem:
            raise UserError(problem)
        train_model, opt = accelerator.prepare(model, opt)
    rule = make_rule(cfg, method, seed, per_epoch)
    rule.start(named)
    gen = torch.Generator().manual_seed(seed)
    step, order = 0, None
    ckpt_root = Path(run_dir) / "checkpoints"
    ckpt = latest_checkpoint(ckpt_root) if resume else None
    if ckpt is not None:
        tensors, state = load_checkpoint(ckpt)
        with torch.no_grad():
            for name, p in named:
                p.copy_(tensors[f"model.{name}"])
        rule.load_state_dict({k[len("rule."):]: v for k, v in tensors.items() if k.startswith("rule.")})
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        gen.set_state(state["generator"])
        step, order = state["step"], state["order"]
    model.train()
    bar = progress(total=total, initial=step, desc=f"finetune {method}", leave=False)
    while step < total:
        epoch, index = divmod(step, per_epoch)
        if index == 0 or order is None:
            order = torch.randperm(len(examples), generator=gen)
        batch = [examples[int(i)] for i in order[index * f.batch_size:(index + 1) * f.batch_size]]
        if accelerator is not None:
            loss = _shared_step(accelerator, train_model, encode_batch, batch, named, f.max_grad_norm)
        else:
            loss = train_model(**encode_batch(batch)).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for _, p in named], f.max_grad_norm)
        rule.before_step()
        opt.step()
        rule.after_step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        bar.update(1)
        if tracker is not None:
            tracker.log({"train/loss": float(loss.detach()), "train/epoch": epoch}, step=step)
        if on_step is not None:
            on_step(step)
        if step % f.checkpoint_every == 0 and step < total and (accelerator is None or accelerator.is_main_process):
            tensors = {f"model.{n}": p.detach() for n, p in named}
            tensors.update({f"rule.{k}": v for k, v in rule.state_dict().items()})
            save_checkpoint(ckpt_root, step, tensors,
                            {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                             "generator": gen.get_state(), "step": step, "order": order}, keep=1)
        if accelerator is not None and step % f.checkpoint_every == 0:
            accelerator.wait_for_everyone()  # every rank resumes from the main process's checkpoint
    bar.close()
    rule.finish()
    model.eval()
    return rule


def _shared_step(accelerator, train_model, encode_batch, batch, named, max_grad_norm) -> torch.Tensor:
    """Forward and backward of one global batch spread over the processes of a launch: each
    process takes examples rank::world and every process's loss is its summed token loss over
    the global count of supervised tokens (× world, as DDP averages the gradients), so the
    gradient is that of the global batch's mean token loss, the one a single process computes
    (up to summation order). A process whose share is empty (a last batch smaller than the
    world) runs one example with weight 0. Returns the global batch's mean token loss."""
    import torch.nn.functional as F

    world = accelerator.num_processes
    share, weight = batch[accelerator.process_index::world], 1.0
    if not share:
        share, weight = batch[:1], 0.0
    inputs = {k: v.to(accelerator.device) for k, v in encode_batch(share).items()}
    labels = inputs.pop("labels")
    logits = train_model(**inputs).logits
    target = labels[:, 1:].reshape(-1)
    token_sum = F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]), target,
                                ignore_index=-100, reduction="sum") * weight
    counts = torch.stack([(target != -100).sum().float() * weight, token_sum.detach()])
    if world > 1:
        counts = accelerator.reduce(counts, reduction="sum")
    total = counts[0].clamp(min=1.0)
    accelerator.backward(token_sum * world / total)
    accelerator.clip_grad_norm_([p for _, p in named], max_grad_norm)
    return counts[1] / total


FINAL = "final"  # <run_dir>/final/: the trained tensors after the rule's finish (for `eval`)


def save_final(run_dir: Path, rule: Rule, step: int) -> Path:
    """The run's final trainable tensors (projector and last LM layers, after the rule's
    post-hoc step), checksummed, for `eval`."""
    return save_checkpoint(Path(run_dir) / FINAL, step, {n: p.detach() for n, p in rule.params},
                           {"step": step}, keep=1)


def load_final(run_dir: Path, model) -> int:
    """Copy a finished run's final tensors into `model` (its base weights); returns the step."""
    from shared import UserError

    ckpt = latest_checkpoint(Path(run_dir) / FINAL)
    if ckpt is None:
        raise UserError(f"run {run_dir} kept no final weights ({FINAL}/ is missing)")
    tensors, state = load_checkpoint(ckpt)
    params = dict(model.named_parameters())
    missing = [n for n in tensors if n not in params]
    if missing:
        raise UserError(f"run {run_dir}: its final weights do not fit this model ({missing[0]} is unknown)")
    with torch.no_grad():
        for name, value in tensors.items():
            if params[name].shape != value.shape:
                raise UserError(f"run {run_dir}: its final weights do not fit this model ({name} has shape "
                                f"{tuple(value.shape)}, the model {tuple(params[name].shape)})")
            params[name].copy_(value.to(params[name].dtype))
    return int(state["step"])
