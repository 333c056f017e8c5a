"""One tuning run: a method on the frozen pre-trained policy of one seed, checkpoints, resume,
then evaluation on the held-out goals. The run also checks that the frozen policy is
bit-identical after tuning and times prompt generation and tuning steps."""

from __future__ import annotations

import hashlib
import json
import time

import numpy as np
import torch

from papers.prompt_diffuser.config import QUALITY_METHODS, PromptDiffuserConfig
from papers.prompt_diffuser.data import GoalData
from papers.prompt_diffuser.evaluate import evaluate
from papers.prompt_diffuser.pretrain import load_policy
from papers.prompt_diffuser.tuning import Method, TuningData, make_method, timed_prompts
from shared.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from shared.cli import Context
from shared.config import to_dict
from shared.runs import (
    check_same_config,
    is_done,
    mark_done,
    read_summary,
    resolve_run_dir,
    write_run_info,
)
from shared.seeding import seed_everything, torch_generator
from shared.tracking import Tracker, progress

RELEVANT = ("data.", "model.", "pretrain.", "diffuser.", "tune.steps", "tune.batch_size", "tune.lr",
            "tune.ptdt_lr", "tune.finetune_lr", "tune.log_every", "eval.", "deterministic")
EVAL_SEED = 7_777  # keeps the evaluation prompts' noise apart from the tuning stream


def run_name(method: str, quality: str) -> str:
    return f"{method}-{quality}" if method in QUALITY_METHODS else method


def weights_digest(model: torch.nn.Module) -> str:
    """sha256 over every parameter and buffer, bit for bit."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def build(cfg: PromptDiffuserConfig, method: str, quality: str, policy_ckpt: str, data: GoalData,
          seed: int) -> tuple[Method, object]:
    seed_everything(seed, cfg.deterministic)
    policy, norm = load_policy(cfg, policy_ckpt)
    policy.requires_grad_(False)
    goals = data.test_goals
    tdata = TuningData(cfg, norm, [data.fewshot[g] for g in goals], [data.demos[quality][g] for g in goals])
    return make_method(method, cfg, policy, tdata), norm


def tune_run(cfg: PromptDiffuserConfig, ctx: Context, method: str, quality: str, seed: int,
             policy_ckpt: str, data: GoalData) -> dict:
    """Tune (or finish, with resume) one method; returns its summary."""
    name = run_name(method, quality)
    run_dir, resuming = resolve_run_dir(cfg.resume, cfg.runs_dir, ctx.slug, ctx.config_name, name, seed)
    if resuming:
        check_same_config(run_dir, cfg, RELEVANT)
        if is_done(run_dir):
            return read_summary(run_dir)
    torch.set_num_threads(cfg.threads)
    m, norm = build(cfg, method, quality, policy_ckpt, data, seed)
    before = weights_digest(m.policy)
    rng, gen = np.random.default_rng(seed), torch_generator(seed)
    steps = cfg.tune.steps if m.curves else 0
    it, curve = 0, []
    ckpt = latest_checkpoint(run_dir / "checkpoints") if resuming else None
    if ckpt is not None:
        tensors, state = load_checkpoint(ckpt)
        m.load(tensors)
        if m.optimizer is not None:
            m.optimizer.load_state_dict(state["optimizer"])
        rng.bit_generator.state = json.loads(state["data_rng"])
        gen.set_state(state["gen"])
        it, curve = int(state["iteration"]), list(state["curve"])
    write_run_info(run_dir, cfg, {"seed": seed, "method": method, "quality": quality,
                                  "policy": policy_ckpt, "resumed_from": str(ckpt) if ckpt else None})
    tc = cfg.tune
    tracker = Tracker(run_dir, slug=ctx.slug, group=f"{ctx.config_name}-{name}",
                      name=f"{ctx.slug}__{name}__{ctx.config_name}__{seed}", config=to_dict(cfg),
                      use_wandb=cfg.wandb, resume_step=it if ckpt else None)
    sums: dict[str, float] = {}
    tuning_s, done_here = 0.0, 0
    with tracker, progress(total=steps, initial=it, desc=f"{name} seed {seed}", leave=False) as bar:
        while it < steps:
            start = time.perf_counter()
            logs = m.step(rng, gen)
            tuning_s += time.perf_counter() - start
            done_here += 1
            it += 1
            bar.update(1)
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + v
            if it % tc.log_every == 0 or it == steps:
                span = it - (curve[-1]["step"] if curve else 0)
                curve.append({"step": it, **{k: v / span for k, v in sums.items()}})
                tracker.log(curve[-1], step=it)
                sums = {}
            if it % tc.checkpoint_every == 0 or it == steps:
                save_checkpoint(run_dir / "checkpoints", it, m.tensors(), {
                    "iteration": it, "curve": curve, "data_rng": json.dumps(rng.bit_generator.state),
                    "gen": gen.get_state(),
                    "optimizer": m.optimizer.state_dict() if m.optimizer is not None else None})
        eval_gen = torch_generator(seed + EVAL_SEED)
        rounds, gen_s = zip(*(timed_prompts(m, eval_gen) for _ in range(cfg.eval.rounds if m.sampled else 1)))
        heldout = evaluate(cfg, m.eval_model(), norm, "test", data.test_goals, list(rounds))
        tracker.log({"heldout_return": heldout["return"], "heldout_success": heldout["success"]}, step=it)
    summary = {
        "seed": seed, "method": method, "quality": quality, "name": name, "curve": curve,
        "curves": list(m.curves), "heldout": heldout, "trainable_params": m.trainable(),
        "policy_params": sum(p.numel() for p in m.policy.parameters()),
        "frozen_unchanged": weights_digest(m.policy) == before,
        "prompt_seconds_per_episode": float(np.mean(gen_s)),
        "steps_per_s": done_here / tuning_s if tuning_s > 0 else None,
        "prompts": {k: v.tolist() for k, v in rounds[0].items() if k in ("prompt_states", "prompt_actions")},
        "demo_prompts": {k: m.data.demo[k].tolist() for k in ("prompt_states", "prompt_actions")},
        "run_dir": str(run_dir)}
    (run_dir / "summary.json").write_text(json.dumps(summary))
    mark_done(run_dir)
    return summary
