"""One training run of one method on one dataset quality: HarmoDT-F/M/R, G-HarmoDT,
Prompt-DT, MTDT or MTBC, with periodic Meta-World evaluation, checkpoints and resume.

Every method sees the same data stream: iteration n trains on task n mod #tasks (round
robin, as the released HarmoDT code) with `train.batch_size` segments, AdamW with linear
warm-up and gradient clipping. The run records the success after every evaluation, so the
final and the best evaluation are both reported (the paper reports the best).

Under `torchrun` or `accelerate launch` the run is replicated data-parallel
(`shared.replicas`): every process holds the model and draws the same batches, trains on its
share of each batch's rows, and the gradients are summed over processes as each backward
ends (the mask updates' per-task gradients and G-HarmoDT's clustering included), so every
process takes the same step. The main process alone evaluates, logs and writes the run
directory. `train.batch_size` is the global batch. Dropout masks are drawn per process (a
process > 0 reseeds its own stream), so with dropout the result equals the one-process run
in distribution; with `model.dropout=0` it equals it to float rounding (tested).
"""


from __future__ import annotations

import json
import math
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn

from papers.harmodt.config import FROZEN_MASKS, IMPORTANCE, HarmoDTConfig
from papers.harmodt.data import fit_normaliser, gate_windows, load_task_data
from papers.harmodt.grouping import (
    GatingNetwork,
    cluster_tasks,
    gating_loss,
    gradient_cosine_matrix,
)
from papers.harmodt.harmony import HarmonyMasks
from papers.harmodt.masks import maskable_names, random_erk_masks
from papers.harmodt.model import build_model
from shared import UserError
from shared.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    prefixed,
    save_checkpoint,
    unprefixed,
)
from shared.cli import Context
from shared.config import to_dict
from shared.device import resolve_device
from shared.offline_rl.batches import MultiTaskBatches, TaskData
from shared.offline_rl.dt import action_loss
from shared.offline_rl.masks import mask_overlap
from shared.offline_rl.segments import to_torch
from shared.replicas import Replicas
from shared.runs import (
    check_same_config,
    is_done,
    mark_done,
    read_summary,
    resolve_run_dir,
    write_run_info,
)
from shared.seeding import rng_state, seed_everything, set_rng_state, torch_generator
from shared.tracking import Tracker, progress

GATE_BATCH = 32  # gate windows per iteration, each from a random task
RANDOM_MASK_SEED = 104_729  # the random-mask IoU reference draws apart from the run's streams
RANDOM_MASKS = 10  # independent random ERK masks behind that reference (45 pairs)


def lr_factor(step: int, *, warmup: int, total: int, decay: str = "none") -> float:
    """The learning-rate multiplier at optimizer step `step` (0-based): linear warm-up over
    `warmup` steps, then constant (`none`, as released) or a cosine from 1 at the end of the
    warm-up to 0 at step `total` (`cosine`; the small config's way to let curves settle)."""
    if step < warmup:
        return (step + 1) / warmup
    if decay == "none" or total <= warmup:
        return 1.0
    frac = min(1.0, (step - warmup) / (total - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * frac))


def run_method(method: str, quality: str) -> str:
    return f"{method}-{quality}"


class Trainer:
    """Model, optimiser, masks, gate and data stream of one run, with save/restore."""

    def __init__(self, cfg: HarmoDTConfig, method: str, tasks: list[TaskData], seed: int,
                 replicas: Replicas | None = None) -> None:
        tc, mc = cfg.train, cfg.model
        torch.set_num_threads(tc.threads)
        seed_everything(seed, cfg.deterministic)
        self.cfg, self.method, self.seed, self.tasks = cfg, method, seed, tasks
        self.device = Replicas.local_device(resolve_device(cfg.device))
        self.replicas = replicas or Replicas(self.device)
        self.norm = fit_normaliser(cfg, method, [t.episodes for t in tasks])
        obs_dim, act_dim = tasks[0].episodes[0].observations.shape[1], tasks[0].episodes[0].actions.shape[1]
        self.max_ep_len = cfg.data.max_steps
        self.batches = MultiTaskBatches(tasks, mc.context, mc.prompt_steps, self.norm,
                                        tc.return_scale, self.max_ep_len, prompt_mode=cfg.data.prompt)
        self.model = build_model(method, mc, obs_dim, act_dim, self.max_ep_len, len(tasks)).to(self.device)
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(trainable, lr=tc.lr, weight_decay=tc.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, partial(lr_factor, warmup=tc.warmup, total=tc.iterations, decay=tc.decay))
        self.rng = np.random.default_rng(seed)
        self.harmony: HarmonyMasks | None = None
        self.groups: list[int] | None = None
        self.gate = self.gate_opt = None
        if method in IMPORTANCE:
            self.harmony = HarmonyMasks(self.model, cfg.harmo, len(tasks), list(range(len(tasks))),
                                        IMPORTANCE[method], torch_generator(seed), tc.grad_clip,
                                        frozen=method in FROZEN_MASKS)
        if method == "g-harmodt":
            g = cfg.group
            self.gate = GatingNetwork(obs_dim, act_dim, min(g.groups, len(tasks)), g.gate_hidden,
                                      g.gate_context).to(self.device)
            self.gate_opt = torch.optim.Adam(self.gate.parameters(), lr=g.gate_lr)
        self.iteration, self.loss_sum, self.history = 0, 0.0, []
        self.replicas.sum_gradients(self.model.parameters())
        if self.gate is not None:
            self.replicas.sum_gradients(self.gate.parameters())
        self.reseed_dropout()

    def reseed_dropout(self) -> None:
        """Processes > 0 of a launch draw their own dropout stream (process 0 keeps the run's)."""
        if self.replicas.rank > 0:
            torch.manual_seed(self.seed * 7919 + self.replicas.rank * 104_723 + self.iteration)

    # -- one iteration -------------------------------------------------------------------
    def loss_on(self, task: int) -> torch.Tensor:
        """Action MSE of one batch of `task` (this process's share of it under a launch)."""
        batch = self.batches.batch(task, self.cfg.train.batch_size, self.rng)
        count = None
        if self.replicas.world > 1:
            count = float(batch["mask"].sum()) * batch["actions"].shape[-1]
            rows = self.replicas.shard(self.cfg.train.batch_size)
            batch = {k: v[rows] for k, v in batch.items()}
        batch = to_torch(batch, self.device)
        return action_loss(self.model(batch), batch["actions"], batch["mask"], count)

    def dense_step(self, task: int) -> float:
        loss = self.loss_on(task)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.train.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        return float(loss.detach())

    def step(self) -> dict:
        """Train one iteration (plus a mask update / clustering when due); returns logs."""
        tc, it, n = self.cfg.train, self.iteration, len(self.tasks)
        logs = {}
        if self.method == "g-harmodt" and self.harmony is None and it >= self.cluster_iteration:
            logs["groups"] = self.cluster()
        if self.harmony is not None and it > 0 and it % self.cfg.harmo.mask_interval == 0:
            logs["k"] = self.harmony.update_masks(self.loss_on, n, it / tc.iterations)
        task = it % n
        if self.harmony is None:
            loss = self.dense_step(task)
        else:
            loss = self.harmony.inner_step(task, self.loss_on, self.optimizer, self.scheduler, tc.grad_clip)
        if self.gate is not None and self.groups is not None:
            logs["gate_loss"] = self.gate_step()
        self.loss_sum += self.replicas.sum(loss)
        self.iteration += 1
        return logs

    # -- G-HarmoDT [recon] ---------------------------------------------------------------
    @property
    def cluster_iteration(self) -> int:
        return int(self.cfg.group.cluster_at * self.cfg.train.iterations)

    def cluster(self) -> list[int]:
        """Group tasks by the cosine similarity of their dense gradients; one mask per group."""
        names = set(maskable_names(self.model))
        grads = []
        for task in range(len(self.tasks)):
            self.model.zero_grad(set_to_none=True)
            self.loss_on(task).backward()
            grads.append({n: p.grad.detach().clone() for n, p in self.model.named_parameters() if n in names})
        self.model.zero_grad(set_to_none=True)
        n_groups = self.gate.head.out_features
        self.set_groups(cluster_tasks(gradient_cosine_matrix(grads), n_groups))
        return self.groups

    def set_groups(self, groups: list[int]) -> None:
        self.groups = [int(g) for g in groups]
        self.harmony = HarmonyMasks(self.model, self.cfg.harmo, self.gate.head.out_features, self.groups,
                                    "fisher", torch_generator(self.seed + 1), self.cfg.train.grad_clip)

    def gate_step(self) -> float:
        steps = self.cfg.group.gate_context
        tasks = self.rng.integers(len(self.tasks), size=GATE_BATCH)
        rows, valid = zip(*(gate_windows(self.batches.segments[t], 1, steps, self.rng) for t in tasks))
        share = self.replicas.shard(GATE_BATCH)  # all rows with one process
        x = torch.as_tensor(np.concatenate(rows)[share], device=self.device)
        m = torch.as_tensor(np.concatenate(valid)[share], device=self.device)
        y = torch.as_tensor([self.groups[t] for t in tasks[share]], device=self.device)
        loss = gating_loss(self.gate(x, m), y)
        if self.replicas.world > 1:  # this share's part of the whole batch's mean
            loss = loss * (len(y) / GATE_BATCH)
        self.gate_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.gate_opt.step()
        return self.replicas.sum(float(loss.detach()))

    # -- checkpoints ---------------------------------------------------------------------
    def save(self, run_dir: Path) -> None:
        tensors = prefixed("model", self.model.state_dict())
        if self.harmony is not None:
            tensors.update(prefixed("mask", self.harmony.state()))
        if self.gate is not None:
            tensors.update(prefixed("gate", self.gate.state_dict()))
        state = {"iteration": self.iteration, "loss_sum": self.loss_sum, "history": self.history,
                 "groups": self.groups, "rng": rng_state(),
                 "data_rng": json.dumps(self.rng.bit_generator.state),
                 "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                 "gate_opt": self.gate_opt.state_dict() if self.gate_opt else None}
        save_checkpoint(run_dir / "checkpoints", self.iteration, tensors, state,
                        keep=self.cfg.train.keep_checkpoints)

    def restore(self, ckpt: Path) -> None:
        tensors, state = load_checkpoint(ckpt, device=self.device)
        self.model.load_state_dict(unprefixed("model", tensors))
        if state["groups"] is not None:
            self.set_groups(state["groups"])
        if self.harmony is not None:
            self.harmony.load_state(unprefixed("mask", tensors))
        if self.gate is not None:
            self.gate.load_state_dict(unprefixed("gate", tensors))
            self.gate_opt.load_state_dict(state["gate_opt"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.rng.bit_generator.state = json.loads(state["data_rng"])
        set_rng_state(state["rng"])
        self.iteration, self.loss_sum = int(state["iteration"]), float(state["loss_sum"])
        self.history = list(state["history"])
        self.reseed_dropout()

    def overlap(self) -> list[list[float]] | None:
        return mask_overlap(self.harmony.masks).tolist() if self.harmony is not None else None

    def random_overlap(self) -> float | None:
        """Mean IoU over pairs of `RANDOM_MASKS` independent random ERK masks (the run's layer
        counts and density): the reference the learned masks' IoU is read against."""
        if self.harmony is None:
            return None
        masks = random_erk_masks(self.model, RANDOM_MASKS, self.cfg.harmo.density,
                                 torch_generator(self.seed + RANDOM_MASK_SEED))
        matrix = mask_overlap(masks).cpu().numpy()
        return float(matrix[~np.eye(RANDOM_MASKS, dtype=bool)].mean())


def _open_run(cfg: HarmoDTConfig, ctx: Context, method: str, quality: str, seed: int) -> dict:
    """The run directory (new or resumed), its checkpoint, or its summary if it is done."""
    run_dir, resuming = resolve_run_dir(cfg.resume, cfg.runs_dir, ctx.slug, ctx.config_name,
                                        run_method(method, quality), seed)
    if resuming:
        check_same_config(run_dir, cfg, ("data.", "model.", "harmo.", "group.", "train.", "eval.",
                                          "deterministic"))
        if is_done(run_dir):
            return {"run_dir": run_dir, "done": read_summary(run_dir)}
    ckpt = latest_checkpoint(run_dir / "checkpoints") if resuming else None
    return {"run_dir": run_dir, "ckpt": ckpt, "done": None}


def train(cfg: HarmoDTConfig, ctx: Context, method: str | None = None, quality: str | None = None,
          seed: int | None = None, tasks: list[TaskData] | None = None) -> dict:
    """Train (or finish, with resume) one run; returns its summary (on every process of a
    launch: the main process's)."""
    from papers.harmodt.eval import RunEvaluation

    method, quality = method or cfg.method, quality or cfg.quality
    seed = cfg.seed if seed is None else seed
    tc = cfg.train
    replicas = Replicas(Replicas.local_device(resolve_device(cfg.device)))
    if tc.batch_size < replicas.world:
        raise UserError(f"train.batch_size={tc.batch_size}: fewer rows than the {replicas.world} "
                        "processes (each process needs a share of every batch)")
    run = replicas.from_main(lambda: _open_run(cfg, ctx, method, quality, seed))
    if run["done"] is not None:
        return run["done"]
    run_dir, ckpt, main = run["run_dir"], run["ckpt"], replicas.is_main
    tasks = tasks if tasks is not None else replicas.main_first(lambda: load_task_data(cfg, quality))
    trainer = Trainer(cfg, method, tasks, seed, replicas)
    if ckpt is not None:
        trainer.restore(ckpt)
    summary = None
    if main:
        write_run_info(run_dir, cfg, {"seed": seed, "method": method, "quality": quality,
                                      "resumed_from": str(ckpt) if ckpt else None,
                                      "processes": replicas.world})
        summary = _train_loop(cfg, ctx, trainer, run_dir, RunEvaluation(cfg, trainer),
                              run_method(method, quality), resumed=ckpt is not None)
        summary.update({"method": method, "quality": quality, "seed": seed, "run_dir": str(run_dir)})
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        mark_done(run_dir)
    else:
        while trainer.iteration < tc.iterations:  # the same steps; the main process records
            trainer.step()
    return replicas.broadcast(summary)


def _train_loop(cfg: HarmoDTConfig, ctx: Context, trainer: Trainer, run_dir: Path, evaluation,
                name: str, resumed: bool) -> dict:
    """The main process's loop: train, evaluate every `eval.every`, log, checkpoint."""
    tc = cfg.train
    tracker = Tracker(run_dir, slug=ctx.slug, group=f"{ctx.config_name}-{name}",
                      name=f"{ctx.slug}__{name}__{ctx.config_name}__{trainer.seed}", config=to_dict(cfg),
                      use_wandb=cfg.wandb, resume_step=trainer.iteration if resumed else None)
    bar = progress(total=tc.iterations, initial=trainer.iteration, desc=f"{name} seed {trainer.seed}",
                   leave=False)
    try:
        with tracker:
            while trainer.iteration < tc.iterations:
                logs = trainer.step()
                bar.update(1)
                it = trainer.iteration
                if it % cfg.eval.every == 0 or it == tc.iterations:
                    record = {"iteration": it, "loss": trainer.loss_sum / cfg.eval.every,
                              "lr": trainer.scheduler.get_last_lr()[0], **evaluation.seen()}
                    trainer.loss_sum = 0.0
                    trainer.history.append({"iteration": it, "success": record["success"],
                                            "loss": record["loss"],
                                            "per_task": {k.split("/", 1)[1]: v for k, v in record.items()
                                                         if k.startswith("success/")}})
                    tracker.log({**record, **logs}, step=it)
                    bar.set_postfix(success=f"{record['success']:.2f}", refresh=False)
                elif logs:
                    tracker.log(logs, step=it)
                if it % tc.checkpoint_every == 0 or it == tc.iterations:
                    trainer.save(run_dir)
            summary = evaluation.summary()
            tracker.summary({k: v for k, v in summary.items() if isinstance(v, float)})
    finally:
        bar.close()
        evaluation.close()
    return summary
