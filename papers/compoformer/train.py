"""One continual run of one method: the tasks of the sequence one stage at a time, each with
the same budget of `train.iterations` updates, with checkpoints and resume (also mid-stage).

A stage is a list of phases (`Trainer.phases`):
  - CompoFormer, stage n ≥ 1: "warmup" (q/k and the new head on the composed action of the
    frozen earlier policies), "check" (the composed policy online, hard top-1 α, on the new
    task: reuse when its success ≥ `compo.reuse_threshold`), and unless reused "train" (Grow:
    the new LoRA adapter; Prune: the free weights) and, for Prune, "finetune" on the kept mask
    after magnitude pruning. Stage 0 has no composition: "train" (+ "finetune" for Prune).
  - PackNet: "train" then "finetune"; every other method: "train".
  - MTL: a single stage over every task (round robin), `iterations × tasks` updates.
At the end of stage t the run evaluates stages 0..t+1 (R[t][·]; t+1 for forward transfer),
and within a stage the current task every `eval.every` updates (its learning curve).
"""

from __future__ import annotations

import atexit
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from papers.compoformer.config import COMPOFORMER, CompoFormerConfig
from papers.compoformer.embed import task_embeddings
from papers.compoformer.model import ContinualDT
from papers.compoformer.stream import StageStream
from papers.compoformer.tasks import sequence
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
from shared.offline_rl import Evaluator, load_datasets
from shared.offline_rl.dt import action_loss
from shared.offline_rl.masks import restore_masked_out
from shared.offline_rl.policy import DTPolicy
from shared.offline_rl.segments import Normaliser, SegmentSampler, to_torch
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

REPLAY = ("perfect-memory", "agem")
REGULARISED = ("l2", "ewc", "mas")
KIND = {"compoformer-prune": "mask", "packnet": "mask", "compoformer-grow": "lora", "lora": "lora"}
IMPORTANCE_SEED = 65_537  # the importance batches' stream, apart from the training stream


_EVALUATORS: dict[tuple, Evaluator] = {}


def _close_evaluators() -> None:
    for ev in _EVALUATORS.values():
        ev.close()
    _EVALUATORS.clear()


def eval_goals(first: int, n: int) -> list[int]:
    """The goal variations of an evaluation: n of Meta-World's 50, from `first` on (wrapping)."""
    return [(first + i) % 50 for i in range(n)]


def kind_of(method: str) -> str:
    return KIND.get(method, "dense")


def load_sequence_data(cfg: CompoFormerConfig, stages: list[int] | None = None) -> dict[str, list]:
    """task -> episodes for the given stages' tasks (generated and cached when missing)."""
    d = cfg.data
    tasks = sequence(d.sequence, d.stages)
    names = list(dict.fromkeys(tasks[s] for s in (stages if stages is not None else range(len(tasks)))))
    return load_datasets(names, d.quality, d.episodes, seed=d.seed, max_steps=d.max_steps,
                         data_dir=cfg.data_dir, workers=d.workers)


def default_loader(cfg: CompoFormerConfig):
    tasks = sequence(cfg.data.sequence, cfg.data.stages)
    return lambda stage: load_sequence_data(cfg, [stage])[tasks[stage]]


class Trainer:
    """Model, phase machine, memories and regularisers of one continual run."""

    def __init__(self, cfg: CompoFormerConfig, method: str, seed: int, loader=None) -> None:
        tc, mc = cfg.train, cfg.model
        torch.set_num_threads(tc.threads)
        seed_everything(seed, cfg.deterministic)
        self.cfg, self.method, self.seed = cfg, method, seed
        self.device = resolve_device(cfg.device)
        self.tasks = sequence(cfg.data.sequence, cfg.data.stages)
        self.T = len(self.tasks)
        self.stream = StageStream(loader or default_loader(cfg), self.T)
        self.kind, self.composed = kind_of(method), method in COMPOFORMER
        emb = task_embeddings(self.tasks, cfg.compo.center_embeddings)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # peft: "multiple adapters" is what we want
            self.model = ContinualDT(39, 4, self.T, emb, kind=self.kind, composed=self.composed,
                                     hidden=mc.hidden, layers=mc.layers, heads=mc.heads,
                                     context=mc.context, max_ep_len=cfg.data.max_steps,
                                     dropout=mc.dropout, lora_rank=cfg.compo.lora_rank,
                                     lora_alpha=cfg.compo.lora_alpha).to(self.device)
        self.rng = np.random.default_rng(seed)
        obs = 39
        self.norm_mean = np.zeros((self.T, obs), np.float32)
        self.norm_std = np.ones((self.T, obs), np.float32)
        self.fitted = [False] * self.T
        # progress
        self.stage, self.phase_idx, self.step_in_phase = 0, 0, 0
        self.reused: list[bool | None] = [None] * self.T
        self.checks: dict[int, dict] = {}
        self.alphas: dict[int, list[float]] = {}
        self.r = np.full((self.T, self.T), np.nan)
        self.r_init = np.full(self.T, np.nan)
        self.curves: dict[int, list[list[float]]] = {}
        self.losses: list[float] = []
        self.loss_sum, self.loss_n = 0.0, 0
        self.started = False
        # method state
        self.anchor: dict[str, torch.Tensor] = {}
        self.importance: dict[str, torch.Tensor] = {}
        self.optimizer: torch.optim.Optimizer | None = None
        self.trainable_masks: dict[str, torch.Tensor] = {}
        self.sampler: SegmentSampler | None = None
        self.samplers_all: list[SegmentSampler] = []
        self.memory: dict[int, SegmentSampler] = {}

    # -- sizes ---------------------------------------------------------------------------
    @property
    def n_stages(self) -> int:
        return 1 if self.method == "mtl" else self.T

    def budget(self) -> tuple[int, int, int]:
        it = self.cfg.train.iterations
        return it, int(round(self.cfg.compo.warmup * it)), int(round(self.cfg.compo.finetune * it))

    def phases(self, stage: int) -> list[tuple[str, int]]:
        it, warm, fine = self.budget()
        if self.method == "mtl":
            return [("train", it * self.T)]
        prune = self.kind == "mask"
        out: list[tuple[str, int]] = []
        if self.composed and stage > 0:
            out += [("warmup", warm), ("check", 0)]
            if self.reused[stage]:
                return out
            it -= warm
        if prune:
            out += [("train", it - fine), ("finetune", fine)]
        else:
            out.append(("train", it))
        return out

    def global_step(self) -> int:
        if self.stage >= self.n_stages:
            return self.T * self.cfg.train.iterations
        done = sum(n for _, n in self.phases(self.stage)[:self.phase_idx])
        return self.stage * self.cfg.train.iterations + done + self.step_in_phase

    # -- data ----------------------------------------------------------------------------
    def norm(self, stage: int) -> Normaliser:
        return Normaliser(self.norm_mean[stage], self.norm_std[stage])

    def _sampler(self, stage: int, episodes) -> SegmentSampler:
        return SegmentSampler(episodes, self.cfg.model.context, self.norm(stage),
                              self.cfg.train.return_scale, self.cfg.data.max_steps)

    def open_stage(self, stage: int) -> None:
        """The current stage's data (and, for MTL, every task's); replay memories on resume."""
        if self.method == "mtl":
            self.samplers_all = []
            for j in range(self.T):
                eps = self.stream.open(j, 0)
                self._fit(j, eps)
                self.samplers_all.append(self._sampler(j, eps))
            return
        eps = self.stream.open(stage, stage)
        self.current_episodes = eps
        self._fit(stage, eps)
        self.sampler = self._sampler(stage, eps)
        if self.method in REPLAY:
            for j in range(stage):
                if j not in self.memory:
                    self.keep_memory(j, self.stream.open(j, stage, memory=True))

    def _fit(self, stage: int, episodes) -> None:
        if not self.fitted[stage]:
            fit = Normaliser.fit(episodes)
            self.norm_mean[stage], self.norm_std[stage] = fit.mean, fit.std
            self.fitted[stage] = True

    def keep_memory(self, stage: int, episodes) -> None:
        """What a replay method keeps of a finished stage: every episode (Perfect Memory) or
        the first `baselines.agem_episodes` (A-GEM's episodic memory)."""
        if self.method == "agem":
            episodes = episodes[:self.cfg.baselines.agem_episodes]
        self.memory[stage] = self._sampler(stage, episodes)

    def batch(self, sampler: SegmentSampler, n: int, stage: int) -> dict[str, torch.Tensor]:
        out = sampler.sample(n, self.rng)
        out["task"] = np.full(n, stage, np.int64)
        return to_torch(out, self.device)

    def memory_batch(self, n: int) -> dict[str, torch.Tensor]:
        stages = sorted(self.memory)
        picks = self.rng.integers(len(stages), size=n)
        parts = [self.batch(self.memory[stages[i]], int((picks == i).sum()), stages[i])
                 for i in range(len(stages)) if (picks == i).any()]
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}

    # -- trainable parameters ------------------------------------------------------------
    def trainable(self, phase: str) -> list[tuple[str, nn.Parameter]]:
        m, n = self.model, self.stage
        named = dict(m.named_parameters())
        names: list[str] = []
        if phase == "warmup":
            names = [f"meta.{n}.{p}" for p in ("q.weight", "q.bias", "k.weight", "k.bias")]
            names += [k for k in named if k.startswith(f"heads.{n}.")]
            return [(k, named[k]) for k in names]
        heads = range(self.T) if self.method in ("mtl", *REPLAY) else [n]
        names += [k for k in named if any(k.startswith(f"heads.{j}.") for j in heads)]
        if self.composed and n > 0:
            names += [k for k in named if k.startswith(f"meta.{n}.")]
        backbone = [f"backbone.{k}" for k, p in m.backbone.named_parameters()
                    if k not in ("transformer.wpe.weight", "transformer.wte.weight")]
        if self.kind == "lora":
            if n == 0:
                names += [k for k in backbone if "lora_" not in k]
            else:
                names += [f"backbone.{k}" for k in m.lora_names(n)]
        elif self.kind == "mask":
            if n == 0:
                names += backbone
            else:
                names += [f"backbone.{k}" for k in m.owner]
        else:
            names += backbone
        return [(k, named[k]) for k in names]

    def setup_phase(self, phase: str) -> None:
        """Trainable set, optimiser and gradient masks of a phase (no state changes)."""
        m = self.model
        for p in m.parameters():
            p.requires_grad_(False)
        params = self.trainable(phase)
        for _, p in params:
            p.requires_grad_(True)
        self.params = params
        tc = self.cfg.train
        self.optimizer = torch.optim.AdamW([p for _, p in params], lr=tc.lr, weight_decay=tc.weight_decay)
        self.trainable_masks = {}
        if self.kind == "mask" and phase in ("train", "finetune"):
            own = -1 if phase == "train" else self.stage
            self.trainable_masks = {n: o == own for n, o in m.owner.items()}
        m.live_stage = self.stage if self.method != "mtl" else None

    def enter_phase(self, phase: str) -> None:
        """The one-off work at a phase's start (pruning; the online reuse check)."""
        if phase == "finetune":
            self.prune()
        elif phase == "check":
            self.online_check()

    @torch.no_grad()
    def prune(self) -> None:
        """Keep the largest `prune_quantile` of the free entries (by magnitude, over all
        trunk matrices) for this stage; release (zero) the rest."""
        m, n = self.model, self.stage
        params = dict(m.backbone.named_parameters())
        free = torch.cat([params[k][o == -1].abs().flatten() for k, o in m.owner.items()])
        if free.numel() == 0:
            return
        cut = torch.quantile(free.double(), self.cfg.compo.prune_quantile).item()
        for k, o in m.owner.items():
            is_free = o == -1
            keep = is_free & (params[k].abs() > cut)
            o[keep] = n
            params[k][is_free & ~keep] = 0.0

    # -- one update ----------------------------------------------------------------------
    def loss_on(self, phase: str) -> torch.Tensor:
        m, n, bs = self.model, self.stage, self.cfg.train.batch_size
        if self.method == "mtl":
            j = self.step_in_phase % self.T
            b = self.batch(self.samplers_all[j], bs, j)
            return action_loss(m.stage_action(b, j), b["actions"], b["mask"])
        if phase == "warmup":
            b = self.batch(self.sampler, bs, n)
            acts = m.actions_all(b, n)
            composed = torch.einsum("n,nbka->bka", m.alpha(n), torch.stack(acts[:n]))
            return (action_loss(composed, b["actions"], b["mask"])
                    + action_loss(acts[n], b["actions"], b["mask"]))
        if self.method == "perfect-memory" and self.memory:
            k = int(round(self.cfg.baselines.replay_fraction * bs))
            cur, mem = self.batch(self.sampler, bs - k, n), self.memory_batch(k)
            b = {key: torch.cat([cur[key], mem[key]]) for key in cur}
            return action_loss(m(b), b["actions"], b["mask"])
        b = self.batch(self.sampler, bs, n)
        loss = action_loss(m.stage_action(b, n), b["actions"], b["mask"])
        if self.method in REGULARISED and self.anchor:
            loss = loss + self.penalty()
        return loss

    def penalty(self) -> torch.Tensor:
        bc = self.cfg.baselines
        lam = {"l2": bc.l2_lambda, "ewc": bc.ewc_lambda, "mas": bc.mas_lambda}[self.method]
        params = dict(self.model.backbone.named_parameters())
        total = sum((self.importance[k] * (params[k] - a) ** 2).sum() for k, a in self.anchor.items())
        return lam * total

    def _flat_grad(self) -> torch.Tensor:
        return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten()
                          for _, p in self.params])

    def agem_project(self) -> None:
        """A-GEM: if g·g_ref < 0, g ← g − (g·g_ref / g_ref·g_ref) g_ref (memory gradient)."""
        g = self._flat_grad()
        self.optimizer.zero_grad(set_to_none=True)
        b = self.memory_batch(self.cfg.baselines.agem_batch)
        action_loss(self.model(b), b["actions"], b["mask"]).backward()
        ref = self._flat_grad()
        dot = torch.dot(g, ref)
        if dot < 0:
            g = g - dot / torch.dot(ref, ref).clamp_min(1e-12) * ref
        offset = 0
        for _, p in self.params:
            p.grad = g[offset:offset + p.numel()].view_as(p).clone()
            offset += p.numel()

    def update(self, phase: str) -> float:
        loss = self.loss_on(phase)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.method == "agem" and self.memory and phase == "train":
            self.agem_project()
        nn.utils.clip_grad_norm_([p for _, p in self.params], self.cfg.train.grad_clip)
        saved = {}
        if self.trainable_masks:
            params = dict(self.model.backbone.named_parameters())
            saved = {k: params[k].detach().clone() for k in self.trainable_masks}
            for k, mask in self.trainable_masks.items():
                if params[k].grad is not None:
                    params[k].grad.mul_(mask)
        self.optimizer.step()
        if saved:
            restore_masked_out(self.model.backbone, self.trainable_masks, saved)
        return float(loss.detach())

    # -- end of a stage ------------------------------------------------------------------
    def importance_of_stage(self) -> dict[str, torch.Tensor]:
        """Per-parameter importance of the finished stage: 1 (L2), the diagonal empirical
        Fisher of the action loss (EWC), or |∂ mean ‖a‖² / ∂θ| (MAS), averaged over batches."""
        params = {k: p for k, p in self.model.backbone.named_parameters()
                  if k not in ("transformer.wpe.weight", "transformer.wte.weight")}
        if self.method == "l2":
            return {k: torch.ones_like(p) for k, p in params.items()}
        for p in params.values():
            p.requires_grad_(True)
        out = {k: torch.zeros_like(p) for k, p in params.items()}
        rng = np.random.default_rng(self.seed + IMPORTANCE_SEED + self.stage)
        nb = self.cfg.baselines.importance_batches
        self.model.eval()
        for _ in range(nb):
            raw = self.sampler.sample(self.cfg.train.batch_size, rng)
            raw["task"] = np.full(self.cfg.train.batch_size, self.stage, np.int64)
            b = to_torch(raw, self.device)
            self.model.zero_grad(set_to_none=True)
            pred = self.model.stage_action(b, self.stage)
            if self.method == "ewc":
                action_loss(pred, b["actions"], b["mask"]).backward()
                for k, p in params.items():
                    out[k] += p.grad ** 2 / nb
            else:
                (pred[b["mask"].bool()] ** 2).sum(-1).mean().backward()
                for k, p in params.items():
                    out[k] += p.grad.abs() / nb
        self.model.zero_grad(set_to_none=True)
        self.model.train()
        return out

    def end_stage(self) -> None:
        n = self.stage
        self.model.live_stage = None
        if self.method in REGULARISED:
            imp = self.importance_of_stage()
            self.importance = {k: self.importance.get(k, 0) + v for k, v in imp.items()}
            self.anchor = {k: p.detach().clone() for k, p in self.model.backbone.named_parameters()
                           if k in imp}
        if self.method == "mtl":
            row = self.evaluate_stages(list(range(self.T)))
            self.r[self.T - 1] = [row[j] for j in range(self.T)]
            self.curves.setdefault(0, []).append([self.stage_total(), float(np.mean(list(row.values())))])
        else:
            targets = list(range(min(n + 2, self.T)))
            row = self.evaluate_stages(targets)
            for j, v in row.items():
                self.r[n, j] = v
            self.curves.setdefault(n, []).append([self.stage_total(), float(row[n])])
            if self.method in REPLAY:
                self.keep_memory(n, self.current_episodes)

    # -- evaluation ----------------------------------------------------------------------
    def evaluator(self, envs: tuple[str, ...], goals: int) -> Evaluator:
        """An evaluator of these environments, shared by every run of this process (building
        Meta-World environments is the slow part; an evaluator holds no state between runs)."""
        ec = self.cfg.eval
        first = ec.first_goal
        key = (envs, goals, first, self.cfg.data.max_steps, ec.workers, ec.stop_on_success)
        if key not in _EVALUATORS:
            if not _EVALUATORS:
                atexit.register(_close_evaluators)
            _EVALUATORS[key] = Evaluator(list(envs), eval_goals(first, goals), self.cfg.data.max_steps,
                                         workers=ec.workers, stop_on_success=ec.stop_on_success)
        return _EVALUATORS[key]

    def run_policy(self, jobs: list[tuple[int, int, int]], goals: int) -> list[float]:
        """Success of each (policy stage, env stage, normaliser stage) job; jobs in one call
        must use distinct environments."""
        envs = tuple(self.tasks[e] for _, e, _ in jobs)
        ev = self.evaluator(envs, goals)
        norm = Normaliser(self.norm_mean[[s for _, _, s in jobs]], self.norm_std[[s for _, _, s in jobs]])
        policy = DTPolicy(self.model, norm, context=self.cfg.model.context,
                          max_steps=self.cfg.data.max_steps, target_return=self.cfg.eval.target_return,
                          return_scale=self.cfg.train.return_scale, device=self.device,
                          task_ids=[p for p, _, _ in jobs])
        self.model.eval()
        try:
            result = ev.run(policy)
        finally:
            self.model.train()
        return [result["per_task"][self.tasks[e]]["success"] for _, e, _ in jobs]

    def evaluate_stages(self, stages: list[int], goals: int | None = None) -> dict[int, float]:
        """Success of each stage's policy on its own task (rounds of distinct environments).
        A stage not trained yet is run with the newest fitted normaliser (or none)."""
        goals = goals or self.cfg.eval.goals
        fitted = [j for j in range(self.T) if self.fitted[j]]
        out: dict[int, float] = {}
        pending = list(stages)
        while pending:
            seen, now = set(), []
            for j in pending:
                if self.tasks[j] not in seen:
                    seen.add(self.tasks[j])
                    now.append(j)
            pending = [j for j in pending if j not in now]
            jobs = [(j, j, j if self.fitted[j] else (max(fitted) if fitted else j)) for j in now]
            for (j, _, _), s in zip(jobs, self.run_policy(jobs, goals)):
                out[j] = float(s)
        return out

    def online_check(self) -> None:
        """The composed policy with hard top-1 α on the new task, `compo.check_episodes`
        episodes **online**; reuse (no new parameters) when it succeeds often enough."""
        n, c = self.stage, self.cfg.compo
        with torch.no_grad():
            alpha = self.model.alpha(n).cpu().numpy()
        top = int(alpha.argmax())
        success = self.run_policy([(top, n, n)], c.check_episodes)[0]
        reuse = bool(success >= c.reuse_threshold)
        self.reused[n] = reuse
        self.checks[n] = {"success": float(success), "top": top, "reused": reuse,
                          "episodes": c.check_episodes}
        self.alphas[n] = [float(a) for a in alpha]
        if reuse:
            self.model.alias[n] = self.model.alias[top]

    def stage_curve_point(self) -> None:
        if self.method == "mtl":
            if self.step_in_phase % (self.cfg.eval.every * self.T):
                return
            s = float(np.mean(list(self.evaluate_stages(list(range(self.T))).values())))
        else:
            s = self.evaluate_stages([self.stage])[self.stage]
        self.curves.setdefault(self.stage, []).append([self.stage_position(), s])

    def log_point(self, tracker: Tracker | None, evaluate: bool = True) -> None:
        """Training loss (mean since the last point) and the current task's success (at a
        stage's last update the end-of-stage evaluation gives it)."""
        if evaluate:
            self.stage_curve_point()
        loss = self.loss_sum / max(1, self.loss_n)
        self.losses.append(loss)
        if tracker is not None:
            curve = self.curves.get(self.stage)
            tracker.log({"loss": loss, "stage": self.stage,
                         "success_current": curve[-1][1] if curve else float("nan")},
                        step=self.global_step())
        self.loss_sum, self.loss_n = 0.0, 0

    def stage_total(self) -> int:
        return sum(k for _, k in self.phases(self.stage))

    def stage_position(self) -> int:
        done = sum(k for _, k in self.phases(self.stage)[:self.phase_idx])
        return done + self.step_in_phase

    def close(self) -> None:
        """Nothing to release per run (evaluators are shared, closed at exit)."""

    # -- checkpoints ---------------------------------------------------------------------
    def save(self, run_dir: Path) -> None:
        tensors = prefixed("model", self.model.state_dict())
        tensors.update(prefixed("owner", self.model.owner))
        tensors.update(prefixed("anchor", self.anchor))
        tensors.update(prefixed("importance", self.importance))
        state = {"stage": self.stage, "phase_idx": self.phase_idx, "step_in_phase": self.step_in_phase,
                 "reused": self.reused, "checks": json.dumps(self.checks), "alphas": json.dumps(self.alphas),
                 "alias": list(self.model.alias), "r": self.r.tolist(), "r_init": self.r_init.tolist(),
                 "curves": json.dumps(self.curves), "losses": self.losses, "loss_sum": self.loss_sum,
                 "loss_n": self.loss_n, "started": self.started,
                 "norm_mean": torch.from_numpy(self.norm_mean), "norm_std": torch.from_numpy(self.norm_std),
                 "fitted": self.fitted, "rng": rng_state(), "data_rng": json.dumps(self.rng.bit_generator.state),
                 "optimizer": self.optimizer.state_dict() if self.optimizer is not None and self.step_in_phase else None}
        save_checkpoint(run_dir / "checkpoints", self.global_step() * 10 + self.phase_idx, tensors, state,
                        keep=self.cfg.train.keep_checkpoints)

    def restore(self, ckpt: Path) -> None:
        tensors, state = load_checkpoint(ckpt, device=self.device)
        self.model.load_state_dict(unprefixed("model", tensors))
        for k, v in unprefixed("owner", tensors).items():
            self.model.owner[k] = v.cpu()
        self.anchor = unprefixed("anchor", tensors)
        self.importance = unprefixed("importance", tensors)
        self.stage, self.phase_idx = int(state["stage"]), int(state["phase_idx"])
        self.step_in_phase = int(state["step_in_phase"])
        self.reused = list(state["reused"])
        self.checks = {int(k): v for k, v in json.loads(state["checks"]).items()}
        self.alphas = {int(k): v for k, v in json.loads(state["alphas"]).items()}
        self.model.alias = list(state["alias"])
        self.r, self.r_init = np.array(state["r"], dtype=float), np.array(state["r_init"], dtype=float)
        self.curves = {int(k): v for k, v in json.loads(state["curves"]).items()}
        self.losses, self.loss_sum, self.loss_n = list(state["losses"]), float(state["loss_sum"]), int(state["loss_n"])
        self.started = bool(state["started"])
        self.norm_mean, self.norm_std = state["norm_mean"].numpy().copy(), state["norm_std"].numpy().copy()
        self.fitted = list(state["fitted"])
        self.rng.bit_generator.state = json.loads(state["data_rng"])
        self._pending_optimizer = state["optimizer"]
        self._pending_rng = state["rng"]

    # -- the whole run -------------------------------------------------------------------
    def run(self, run_dir: Path, tracker: Tracker | None = None, stop_after: int | None = None,
            until_stage: int | None = None) -> None:
        """Train every remaining stage. `stop_after`: return after this many updates, as a
        kill would; `until_stage`: return once that many stages are finished (tests)."""
        it_total = self.T * self.cfg.train.iterations
        bar = progress(total=it_total, initial=self.global_step(), desc=f"{self.method} seed {self.seed}",
                       leave=False)
        if hasattr(self, "_pending_rng"):
            set_rng_state(self._pending_rng)
            del self._pending_rng
        pending_opt = getattr(self, "_pending_optimizer", None)
        self._pending_optimizer = None
        updates = 0
        try:
            if not self.started:
                if self.method != "mtl":
                    for j, v in self.evaluate_stages(list(range(1, self.T))).items():
                        self.r_init[j] = v
                self.started = True
            while self.stage < (self.n_stages if until_stage is None else min(until_stage, self.n_stages)):
                self.open_stage(self.stage)
                phases = self.phases(self.stage)
                while self.phase_idx < len(phases):
                    name, n_iters = phases[self.phase_idx]
                    if self.step_in_phase == 0:
                        self.enter_phase(name)
                        phases = self.phases(self.stage)
                    if name != "check":
                        self.setup_phase(name)
                        if pending_opt is not None:
                            self.optimizer.load_state_dict(pending_opt)
                    pending_opt = None
                    while self.step_in_phase < n_iters:
                        loss = self.update(name)
                        self.step_in_phase += 1
                        updates += 1
                        bar.update(1)
                        self.loss_sum, self.loss_n = self.loss_sum + loss, self.loss_n + 1
                        last = self.step_in_phase == n_iters and self.phase_idx == len(phases) - 1
                        if self.stage_position() % self.cfg.eval.every == 0:
                            self.log_point(tracker, evaluate=not last)
                        if self.step_in_phase < n_iters and self.step_in_phase % self.cfg.train.checkpoint_every == 0:
                            self.save(run_dir)
                        if stop_after is not None and updates >= stop_after:
                            return
                    self.phase_idx += 1
                    self.step_in_phase = 0
                    phases = self.phases(self.stage)
                    if self.phase_idx < len(phases):
                        self.save(run_dir)
                self.end_stage()
                if tracker is not None:
                    row = self.r[self.T - 1 if self.method == "mtl" else self.stage]
                    tracker.log({"stage_done": self.stage, "p_seen": float(np.nanmean(row[:self.stage + 1]))},
                                step=self.global_step())
                self.stage += 1
                self.phase_idx = self.step_in_phase = 0
                self.sampler, self.samplers_all = None, []
                self.save(run_dir)
        finally:
            bar.close()

    def summary(self) -> dict:
        from papers.compoformer.metrics import (
            forgetting,
            forward_transfer,
            p_over_stages,
            performance,
        )

        mtl = self.method == "mtl"
        r = self.r
        return {
            "P": performance(r), "F": None if mtl else forgetting(r),
            "FWT": None if mtl else forward_transfer(r, self.r_init),
            "R": [[None if np.isnan(v) else float(v) for v in row] for row in r],
            "R_init": [None if np.isnan(v) else float(v) for v in self.r_init],
            "p_over_stages": None if mtl else p_over_stages(r),
            "learned": None if mtl else [float(r[i, i]) for i in range(self.T)],
            "curves": {str(k): v for k, v in self.curves.items()}, "losses": self.losses,
            "checks": {str(k): v for k, v in self.checks.items()},
            "alphas": {str(k): v for k, v in self.alphas.items()},
            "reused": [bool(x) for x in self.reused[1:]] if self.composed else None,
            "tasks": self.tasks, "trainable_parameters": self.parameter_count(),
        }

    def parameter_count(self) -> int:
        """Parameters the method trained over the whole sequence (heads and meta included)."""
        m = self.model
        if self.kind == "lora":
            extra = sum(p.numel() for k, p in m.backbone.named_parameters() if "lora_" in k
                        and not any(f".t{j}." in k for j in range(1, self.T) if self.reused[j]))
            base = sum(p.numel() for k, p in m.backbone.named_parameters() if "lora_" not in k)
            return base + extra
        return sum(p.numel() for p in m.backbone.parameters())


def run_name(method: str, label: str = "") -> str:
    return f"{method}-{label}" if label else method


def train(cfg: CompoFormerConfig, ctx: Context, method: str | None = None, seed: int | None = None,
          loader=None, stop_after: int | None = None, label: str = "") -> dict:
    """Train (or finish, with resume) one continual run; returns its summary. `label` names
    a variant's run directory (the λ sweep's validation runs)."""
    method = method or cfg.method
    seed = cfg.seed if seed is None else seed
    run_dir, resuming = resolve_run_dir(cfg.resume, cfg.runs_dir, ctx.slug, ctx.config_name,
                                        run_name(method, label), seed)
    if resuming:
        check_same_config(run_dir, cfg, ("data.", "model.", "compo.", "baselines.", "train.iterations",
                                          "train.batch_size", "train.lr", "train.weight_decay",
                                          "train.grad_clip", "train.return_scale", "eval.", "deterministic"))
        if is_done(run_dir):
            return read_summary(run_dir)
    trainer = Trainer(cfg, method, seed, loader)
    ckpt = latest_checkpoint(run_dir / "checkpoints") if resuming else None
    if ckpt is not None:
        trainer.restore(ckpt)
    write_run_info(run_dir, cfg, {"seed": seed, "method": method,
                                  "resumed_from": str(ckpt) if ckpt else None})
    tracker = Tracker(run_dir, slug=ctx.slug, group=f"{ctx.config_name}-{method}",
                      name=f"{ctx.slug}__{method}__{ctx.config_name}__{seed}", config=to_dict(cfg),
                      use_wandb=cfg.wandb, resume_step=trainer.global_step() if ckpt else None)
    try:
        with tracker:
            trainer.run(run_dir, tracker, stop_after=stop_after)
            if stop_after is not None and trainer.stage < trainer.n_stages:
                return {"stopped": True, "run_dir": str(run_dir)}
            summary = trainer.summary()
            tracker.summary({"P": summary["P"]})
    finally:
        trainer.close()
    summary.update({"method": method, "seed": seed, "run_dir": str(run_dir)})
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    mark_done(run_dir)
    return summary
