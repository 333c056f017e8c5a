"""Pre-training the Prompt-DT that every tuning method then keeps frozen, and the full-data
upper bound (the same recipe on the training goals plus the held-out goals' data).

Prompt-DT (Xu et al., 2022) on `shared.offline_rl`: one goal variation is one task; a step
draws `goals_per_batch` goals and an equal share of `batch_size` segments from each, every
segment with a random 5-step window of an expert demonstration of its goal as the prompt
("window" mode); AdamW with linear warm-up and gradient clipping. States are normalised with
one mean/std over all pre-training data (the goal is hidden in ML1, so nothing but the
prompt identifies it). The run then checks the precondition of every claim: the policy
solves training goals with its own prompts (best-tail windows of their demonstrations).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from papers.prompt_diffuser.config import PromptDiffuserConfig
from papers.prompt_diffuser.data import GoalData
from papers.prompt_diffuser.evaluate import evaluate
from shared.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    prefixed,
    save_checkpoint,
    unprefixed,
)
from shared.cli import Context
from shared.config import to_dict
from shared.offline_rl import Episode
from shared.offline_rl.batches import MultiTaskBatches, TaskData
from shared.offline_rl.dt import DecisionTransformer, action_loss
from shared.offline_rl.prompts import PromptSelector, stack_prompts
from shared.offline_rl.segments import Normaliser, to_torch
from shared.runs import (
    check_same_config,
    is_done,
    mark_done,
    read_summary,
    resolve_run_dir,
    write_run_info,
)
from shared.seeding import rng_state, seed_everything, set_rng_state
from shared.tracking import Tracker, progress

RELEVANT = ("data.", "model.", "pretrain.", "eval.", "deterministic")


def build_policy(cfg: PromptDiffuserConfig, obs_dim: int, act_dim: int) -> DecisionTransformer:
    m = cfg.model
    return DecisionTransformer(obs_dim, act_dim, hidden=m.hidden, layers=m.layers, heads=m.heads,
                               context=m.context, max_ep_len=cfg.data.max_steps,
                               conditioning="prompt", prompt_steps=m.prompt_steps,
                               dropout=m.dropout)


def demo_prompts(cfg: PromptDiffuserConfig, demos: list[list[Episode]], norm: Normaliser
                 ) -> dict[str, torch.Tensor]:
    """One best-tail prompt per goal ([G, P, ·]): Prompt-DT's evaluation prompt."""
    return stack_prompts([PromptSelector(d, cfg.model.prompt_steps, norm, cfg.pretrain.return_scale,
                                         cfg.data.max_steps, mode="best-tail").sample(1) for d in demos])


class Pretrainer:
    """Model, optimiser and data stream of one pre-training run, with save/restore."""

    def __init__(self, cfg: PromptDiffuserConfig, goals: list[TaskData], seed: int) -> None:
        pc = cfg.pretrain
        seed_everything(seed, cfg.deterministic)
        self.cfg, self.goals = cfg, goals
        self.norm = Normaliser.fit([e for g in goals for e in g.episodes])
        first = goals[0].episodes[0]
        self.model = build_policy(cfg, first.observations.shape[1], first.actions.shape[1])
        self.batches = MultiTaskBatches(goals, cfg.model.context, cfg.model.prompt_steps, self.norm,
                                        pc.return_scale, cfg.data.max_steps, prompt_mode="window")
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=pc.lr, weight_decay=pc.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: min(1.0, (step + 1) / pc.warmup))
        self.rng = np.random.default_rng(seed)
        self.iteration, self.loss_sum, self.curve = 0, 0.0, []

    def step(self) -> float:
        pc, n = self.cfg.pretrain, len(self.goals)
        chosen = self.rng.choice(n, size=min(pc.goals_per_batch, n), replace=False)
        rows = -(-pc.batch_size // len(chosen))
        parts = [self.batches.batch(int(g), rows, self.rng) for g in chosen]
        batch = to_torch({k: np.concatenate([p[k] for p in parts]) for k in parts[0]}, torch.device("cpu"))
        self.model.train()
        loss = action_loss(self.model(batch), batch["actions"], batch["mask"])
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), pc.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.iteration += 1
        return float(loss.detach())

    def save(self, run_dir: Path) -> None:
        tensors = prefixed("model", self.model.state_dict())
        tensors.update({"norm.mean": torch.as_tensor(self.norm.mean), "norm.std": torch.as_tensor(self.norm.std)})
        state = {"iteration": self.iteration, "loss_sum": self.loss_sum, "curve": self.curve,
                 "rng": rng_state(), "data_rng": json.dumps(self.rng.bit_generator.state),
                 "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}
        save_checkpoint(run_dir / "checkpoints", self.iteration, tensors, state)

    def restore(self, ckpt: Path) -> None:
        tensors, state = load_checkpoint(ckpt)
        self.model.load_state_dict(unprefixed("model", tensors))
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.rng.bit_generator.state = json.loads(state["data_rng"])
        set_rng_state(state["rng"])
        self.iteration, self.loss_sum = int(state["iteration"]), float(state["loss_sum"])
        self.curve = list(state["curve"])


def load_policy(cfg: PromptDiffuserConfig, checkpoint: str | Path) -> tuple[DecisionTransformer, Normaliser]:
    """The pre-trained policy (eval mode) and its normaliser from a pre-training checkpoint."""
    tensors, _ = load_checkpoint(Path(checkpoint))
    norm = Normaliser(tensors["norm.mean"].numpy(), tensors["norm.std"].numpy())
    weights = unprefixed("model", tensors)
    model = build_policy(cfg, norm.obs_dim, weights["embed_tokens.embed_action.weight"].shape[1])
    model.load_state_dict(weights)
    return model.eval(), norm


def _task_data(data: GoalData, upper: bool) -> list[TaskData]:
    goals = [TaskData(f"train{g}", data.train[g], data.train_prompts[g]) for g in data.train_goals]
    if upper:  # the held-out goals' own data, with the few-shot episodes as their prompts
        goals += [TaskData(f"test{g}", data.upper[g], data.fewshot[g]) for g in data.test_goals]
    return goals


def pretrain_run(cfg: PromptDiffuserConfig, ctx: Context, seed: int, data: GoalData,
                 upper: bool = False) -> dict:
    """Pre-train (or finish, with resume) one policy; returns its summary (with `checkpoint`)."""
    method = "upper" if upper else "pretrain"
    run_dir, resuming = resolve_run_dir(cfg.resume, cfg.runs_dir, ctx.slug, ctx.config_name, method, seed)
    if resuming:
        check_same_config(run_dir, cfg, RELEVANT)
        if is_done(run_dir):
            return read_summary(run_dir)
    torch.set_num_threads(cfg.threads)
    trainer = Pretrainer(cfg, _task_data(data, upper), seed)
    ckpt = latest_checkpoint(run_dir / "checkpoints") if resuming else None
    if ckpt is not None:
        trainer.restore(ckpt)
    write_run_info(run_dir, cfg, {"seed": seed, "method": method, "resumed_from": str(ckpt) if ckpt else None})
    pc = cfg.pretrain
    tracker = Tracker(run_dir, slug=ctx.slug, group=f"{ctx.config_name}-{method}",
                      name=f"{ctx.slug}__{method}__{ctx.config_name}__{seed}", config=to_dict(cfg),
                      use_wandb=cfg.wandb, resume_step=trainer.iteration if ckpt else None)
    with tracker, progress(total=pc.iterations, initial=trainer.iteration, desc=f"{method} seed {seed}",
                           leave=False) as bar:
        while trainer.iteration < pc.iterations:
            trainer.loss_sum += trainer.step()
            bar.update(1)
            it = trainer.iteration
            if it % pc.log_every == 0 or it == pc.iterations:
                span = it - (trainer.curve[-1][0] if trainer.curve else 0)
                trainer.curve.append([it, trainer.loss_sum / span])
                tracker.log({"loss": trainer.curve[-1][1]}, step=it)
                trainer.loss_sum = 0.0
            if it % pc.checkpoint_every == 0 or it == pc.iterations:
                trainer.save(run_dir)
        summary = {"seed": seed, "method": method, "curve": trainer.curve,
                   "params": sum(p.numel() for p in trainer.model.parameters()),
                   "checkpoint": str(latest_checkpoint(run_dir / "checkpoints"))}
        own = data.train_goals[:cfg.eval.train_eval_goals]
        prompts = demo_prompts(cfg, [data.train_prompts[g] for g in own], trainer.norm)
        summary["train_goals"] = evaluate(cfg, trainer.model, trainer.norm, "train", own, [prompts])
        summary["train_goals"]["demo_return"] = float(np.mean(
            [e.total_return for g in own for e in data.train_prompts[g]]))
        if upper:
            prompts = demo_prompts(cfg, [data.fewshot[g] for g in data.test_goals], trainer.norm)
            summary["heldout"] = evaluate(cfg, trainer.model, trainer.norm, "test", data.test_goals,
                                          [prompts])
        tracker.log({"train_goal_success": summary["train_goals"]["success"]}, step=trainer.iteration)
    summary["run_dir"] = str(run_dir)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    mark_done(run_dir)
    return summary
