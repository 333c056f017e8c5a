"""One fine-tuning run of one method (SDPO, an SDPO ablation, DDPO, D3PO or REBEL) on the
shared base model: sample → score → update, with held-out evaluation at several step
budgets, checkpoints every few epochs, and exact resume.

Updates follow the released training loop: the epoch's pairs are shuffled, each pair's T
transitions are permuted (SDPO's step shuffling; `sdpo.shuffle=false` keeps step order),
then column j of every micro-batch of pairs is one gradient step's data. The optimiser steps
every `train.grad_accum` micro-batches (accelerate's gradient accumulation). REBEL needs the
whole trajectory's log-ratio, so it takes each micro-batch's T steps together (exact gradient,
one step's activations at a time: see baselines.rebel_step_surrogate).
"""

from __future__ import annotations

import contextlib
import copy
import json
import sys
from pathlib import Path

import torch
from accelerate.utils import broadcast_object_list, gather_object

from papers.sdpo.baselines import (
    d3po_loss,
    ddpo_loss,
    preference_signs,
    rebel_residual,
    rebel_step_surrogate,
)
from papers.sdpo.config import SDPOExperimentConfig
from papers.sdpo.ddim import checked_scheduler, ddim_step
from papers.sdpo.model import Policy
from papers.sdpo.rollout import EpochSamples, collect
from papers.sdpo.sdpo import StepPromptStatTracker, sdpo_loss, step_weights
from shared import UserError
from shared.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from shared.cli import Context
from shared.config import to_dict
from shared.device import make_accelerator
from shared.runs import (
    check_same_config,
    is_done,
    mark_done,
    read_summary,
    resolve_run_dir,
    write_run_info,
)
from shared.seeding import rng_state, seed_everything, set_rng_state
from shared.t2i.backbone import Backbone
from shared.tracking import Tracker, progress

ABLATION_CHANGES = {
    "sparse": ("dense", "sparse"),
    "oracle": ("dense", "oracle"),
    "gamma0": ("gamma", 0.0),
    "lambda1": ("lam", 1.0),
    "no-shuffle": ("shuffle", False),
}


# train.* keys a run's numbers depend on (not which methods/ablations reproduce launches)
TRAINING_KEYS = tuple(f"train.{k}" for k in ("epochs", "batch_size", "grad_accum", "inner_epochs", "lr",
                                              "weight_decay", "grad_clip", "threads", "checkpoint_every", "tf32"))


def run_name(method: str, ablation: str = "") -> str:
    return f"sdpo-{ablation}" if ablation else method


def variant(cfg: SDPOExperimentConfig, ablation: str) -> SDPOExperimentConfig:
    """The config of an SDPO ablation (brief: sparse, oracle, γ = 0, λ = 1, no shuffle)."""
    if not ablation:
        return cfg
    out = copy.deepcopy(cfg)
    key, value = ABLATION_CHANGES[ablation]
    setattr(out.sdpo, key, value)
    return out


def load_backbone(cfg: SDPOExperimentConfig, device: torch.device) -> Backbone:
    """The base model; its DDIM scheduler always has `set_alpha_to_one=False` (a local
    pipeline whose scheduler config sets it True is corrected, with one line on stderr:
    see `ddim.checked_scheduler`)."""
    if cfg.policy.model == "stable-diffusion":
        from shared.device import resolve_dtype
        from shared.t2i.sd import load_stable_diffusion

        frozen = resolve_dtype(cfg.precision, device) if cfg.precision != "no" else torch.float32
        backbone = load_stable_diffusion(cfg.policy.path, device, frozen)
    else:
        from papers.sdpo.base import load_base

        backbone = load_base(cfg, device)
    backbone.scheduler, corrected = checked_scheduler(backbone.scheduler)
    if corrected:
        print(f"note: {cfg.policy.path or 'the base model'}: scheduler set_alpha_to_one=True would give the "
              "last DDIM step sigma = 0 (log-prob -inf); using set_alpha_to_one=False", file=sys.stderr)
    return backbone


def check_batching(cfg: SDPOExperimentConfig) -> None:
    tc, pairs = cfg.train, cfg.sample.pairs_per_epoch
    if pairs % tc.batch_size:
        raise UserError(f"sample.pairs_per_epoch={pairs} must be a multiple of train.batch_size={tc.batch_size}")
    micro = (pairs // tc.batch_size) * cfg.sample.steps
    if micro % tc.grad_accum:
        raise UserError(f"train.grad_accum={tc.grad_accum} must divide the {micro} micro-batches of an epoch "
                        f"(pairs_per_epoch / batch_size × sample.steps)")
    if cfg.sample.steps < 2:
        raise UserError("sample.steps must be at least 2 (SDPO queries the first, an anchor and the last step)")


def check_inputs(cfg: SDPOExperimentConfig) -> None:
    """What can be checked before a run directory is made or a model is built: the batching,
    and that the local SD-Turbo and reward weights the config names exist (nothing downloads)."""
    from papers.sdpo.reward_models import LAYOUTS, local_dir

    check_batching(cfg)
    if cfg.policy.model == "stable-diffusion":
        if not cfg.policy.path:
            raise UserError("policy.model=stable-diffusion needs policy.path: a local diffusers "
                            "directory of SD-Turbo (nothing is downloaded)")
        path = Path(cfg.policy.path).expanduser()
        if not path.is_dir():
            raise UserError(f"policy.path {path} is not a directory (policy.model=stable-diffusion "
                            "needs a local diffusers pipeline such as stabilityai/sd-turbo)")
    if cfg.reward.name in LAYOUTS:
        local_dir(cfg.reward.name, cfg.reward)


class Trainer:
    """Policy, optimiser, statistics tracker and random streams of one run."""

    def __init__(self, cfg: SDPOExperimentConfig, method: str, seed: int,
                 backbone: Backbone | None = None, accelerator=None) -> None:
        from papers.sdpo.prompts import prompt_set
        from papers.sdpo.rewards import build_reward

        check_batching(cfg)
        torch.set_num_threads(cfg.train.threads)
        seed_everything(seed, cfg.deterministic)
        self.cfg, self.method, self.seed = cfg, method, seed
        self.accelerator = accelerator or new_accelerator(cfg)
        self.device = self.accelerator.device
        backbone = backbone if backbone is not None else load_backbone(cfg, self.device)
        self.policy = Policy(backbone.to(self.device), cfg.policy)
        if cfg.train.gradient_checkpointing:
            self.policy.unet.enable_gradient_checkpointing()
        if cfg.train.tf32 and torch.cuda.is_available():
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.optimizer = torch.optim.AdamW(self.policy.parameters(), lr=cfg.train.lr,
                                           weight_decay=cfg.train.weight_decay)
        self.model, self.optimizer = self.accelerator.prepare(self.policy.unet, self.optimizer)
        self.reward = build_reward(cfg, self.device)
        self.prompts = prompt_set(cfg.sample.prompts, "train")
        self.tracker = StepPromptStatTracker(cfg.sdpo.buffer_size, cfg.sdpo.min_count)
        rank = self.accelerator.process_index
        self.generator = torch.Generator(device=self.device).manual_seed(seed * 1000 + rank)
        self.weights = step_weights(cfg.sample.steps, cfg.sdpo.lam, cfg.sdpo.log_scale).to(self.device)
        self.epoch = 0
        self.samples_seen = 0  # trajectories sampled so far, over all processes
        self.queries_seen = 0  # images the reward model scored so far, over all processes

    # ---------------------------------------------------------------- one epoch
    def sample_epoch(self) -> EpochSamples:
        """This process's pairs of the epoch: prompts drawn, trajectories sampled and scored."""
        cfg = self.cfg
        pick = torch.randint(len(self.prompts), (cfg.sample.pairs_per_epoch,), generator=self.generator,
                             device=self.device)
        prompts = [self.prompts[i] for i in pick.tolist()]
        self.policy.unet.eval()
        with torch.no_grad(), self.accelerator.autocast():
            samples = collect(cfg, self.method, self.policy, prompts, self.reward, self.tracker,
                              self.generator, self.accelerator.gather, self.accelerator.process_index)
        self.policy.unet.train()
        return samples

    def run_epoch(self) -> dict[str, float]:
        cfg = self.cfg
        samples = self.sample_epoch()
        logs = {"loss": 0.0}
        for _ in range(cfg.train.inner_epochs):
            logs = self.update(samples) if self.method != "rebel" else self.update_rebel(samples)
        self.epoch += 1
        self.samples_seen += 2 * cfg.sample.pairs_per_epoch * self.accelerator.num_processes
        self.queries_seen += samples.reward_queries * self.accelerator.num_processes
        logs.update({"epoch": self.epoch, "samples": self.samples_seen,
                     "reward_queries_total": self.queries_seen,
                     "train_reward": samples.final_rewards.mean().item(),
                     "reward_queries": samples.reward_queries})
        return logs

    def _orders(self, pairs: int, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A shuffled pair order and, per pair, the order of its T transitions."""
        order = torch.randperm(pairs, generator=self.generator, device=self.device)
        if self.method == "sdpo" and not self.cfg.sdpo.shuffle:
            return order, torch.arange(steps, device=self.device).expand(pairs, steps)
        perms = torch.stack([torch.randperm(steps, generator=self.generator, device=self.device)
                             for _ in range(pairs)])
        return order, perms

    def _log_probs(self, samples: EpochSamples, rows: torch.Tensor, steps: torch.Tensor,
                   unet=None) -> torch.Tensor:
        """log π(x_prev | x_t) of the recorded transitions (rows, steps) under `unet`."""
        traj = samples.traj
        x_t = traj.latents[rows, steps]
        t = traj.timesteps.to(self.device)[steps]
        t_prev = traj.prev_timesteps.to(self.device)[steps]
        with self.accelerator.autocast():
            eps = (unet or self.model)(x_t, t, encoder_hidden_states=samples.cond[rows]).sample.float()
        scheduler = self.policy.backbone.scheduler
        _, _, logp = ddim_step(scheduler, eps, t, t_prev, x_t, self.cfg.sample.eta,
                               prev_sample=traj.latents[rows, steps + 1])
        return logp

    def update(self, samples: EpochSamples) -> dict[str, float]:
        """SDPO, DDPO or D3PO: one pass over the epoch in shuffled (pair, step) micro-batches.
        Logs the mean loss, `clipfrac` (share of transitions beyond the method's trust region:
        SDPO's and DDPO's clip around π_old, D3PO's ratio clamp around π_ref) and `abs_dlogp`
        (mean |log π_θ − log π_old| of the transitions when they are trained on)."""
        cfg = self.cfg
        pairs, steps = samples.pairs, cfg.sample.steps
        order, perms = self._orders(pairs, steps)
        total, count, clipfrac, moved = 0.0, 0, 0.0, 0.0
        for j in range(steps):
            for start in range(0, pairs, cfg.train.batch_size):
                idx = order[start:start + cfg.train.batch_size]
                loss, info = self.micro_step(samples, idx, perms[idx, j])
                total, count = total + loss.item(), count + 1
                clipfrac += float(info["clipfrac"])
                moved += float(info["abs_dlogp"])
        return {"loss": total / count, "clipfrac": clipfrac / count, "abs_dlogp": moved / count}

    def micro_step(self, samples: EpochSamples, idx: torch.Tensor, step: torch.Tensor):
        """One gradient step's data (SDPO, DDPO, D3PO): pairs `idx` at their transitions
        `step`; backward, and an optimiser step every train.grad_accum calls."""
        a_rows, b_rows = idx, idx + samples.pairs
        rows, both_steps = torch.cat([a_rows, b_rows]), torch.cat([step, step])
        with self.accelerator.accumulate(self.model):
            logp = self._log_probs(samples, rows, both_steps)
            logp_a, logp_b = logp.chunk(2)
            old = samples.traj.log_probs
            loss, info = self._loss(samples, a_rows, b_rows, step, logp_a, logp_b, old)
            self._backward_and_step(loss)
        # |log π_θ − log π_old| of the transitions at this update (before its step)
        info["abs_dlogp"] = (logp.detach() - old[rows, both_steps]).abs().mean()
        return loss, info

    def _loss(self, samples, a_rows, b_rows, step, logp_a, logp_b, old):
        cfg = self.cfg
        if self.method == "sdpo":
            adv = samples.advantages
            return sdpo_loss(logp_a, logp_b, old[a_rows, step], old[b_rows, step],
                             adv[a_rows, step], adv[b_rows, step], self.weights[step],
                             cfg.sdpo.clip_range, cfg.sdpo.adv_clip)
        if self.method == "ddpo":
            return ddpo_loss(torch.cat([logp_a, logp_b]),
                             torch.cat([old[a_rows, step], old[b_rows, step]]),
                             torch.cat([samples.advantages[a_rows], samples.advantages[b_rows]]),
                             cfg.baselines.ddpo_clip, cfg.sdpo.adv_clip)
        with torch.no_grad(), self.policy.reference() as reference:
            ref = self._log_probs(samples, torch.cat([a_rows, b_rows]), torch.cat([step, step]),
                                  unet=reference)
        ref_a, ref_b = ref.chunk(2)
        sign = preference_signs(samples.final_rewards[a_rows], samples.final_rewards[b_rows])
        return d3po_loss(logp_a, logp_b, ref_a, ref_b, sign, cfg.baselines.d3po_beta,
                         cfg.baselines.d3po_ratio_clip)

    def _backward_and_step(self, loss: torch.Tensor) -> None:
        self.accelerator.backward(loss)
        if self.accelerator.sync_gradients:
            self.accelerator.clip_grad_norm_(self.policy.parameters(), self.cfg.train.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad()

    def update_rebel(self, samples: EpochSamples) -> dict[str, float]:
        """REBEL/PRDP: per micro-batch of pairs, the residual of the trajectory-summed
        log-ratio regression (no-grad pass), then the exact gradient of mean(e²): the T
        per-step surrogate gradients are accumulated (one step's activations in memory at a
        time) and the optimizer takes ONE step per residual. (Before, with grad_accum = 1, it
        stepped after every one of the T steps on a residual computed before the first, which
        is not the gradient of the REBEL loss after the first step.) `train.grad_accum` does
        not apply to REBEL: its unit of accumulation is the trajectory."""
        cfg = self.cfg
        pairs, steps = samples.pairs, cfg.sample.steps
        order = torch.randperm(pairs, generator=self.generator, device=self.device)
        old, adv = samples.traj.log_probs, samples.advantages
        total, count, moved = 0.0, 0, 0.0
        every_step = torch.arange(steps, device=self.device)
        for start in range(0, pairs, cfg.train.batch_size):
            idx = order[start:start + cfg.train.batch_size]
            rows = torch.cat([idx, idx + pairs])
            with torch.no_grad():
                rho = torch.stack([self._log_probs(samples, rows, every_step[j].expand(len(rows)))
                                   for j in range(steps)], dim=1) - old[rows]
                rho_a, rho_b = rho.chunk(2)
                residual = rebel_residual(rho_a.sum(1), rho_b.sum(1), adv[idx], adv[idx + pairs],
                                          cfg.baselines.rebel_eta, cfg.sdpo.adv_clip)
            for j in range(steps):
                last = j == steps - 1
                sync = contextlib.nullcontext() if last else self.accelerator.no_sync(self.model)
                with sync:
                    step = every_step[j].expand(len(rows))
                    logp_a, logp_b = self._log_probs(samples, rows, step).chunk(2)
                    surrogate = rebel_step_surrogate(residual, logp_a - old[idx, j],
                                                     logp_b - old[idx + pairs, j], cfg.baselines.rebel_eta)
                    self.accelerator.backward(surrogate)
            self.accelerator.gradient_state._set_sync_gradients(True)
            self.accelerator.clip_grad_norm_(self.policy.parameters(), cfg.train.grad_clip)
            self.optimizer.step()
            self.optimizer.zero_grad()
            total, count = total + (residual**2).mean().item(), count + 1
            moved += rho.abs().mean().item()
        return {"loss": total / count, "clipfrac": 0.0, "abs_dlogp": moved / count}

    # ---------------------------------------------------------------- checkpoints
    def save(self, run_dir: Path) -> None:
        """Checkpoint (main process): weights, optimiser, tracker, and every process's own
        random streams (each samples its own prompts and noise), so a resume is exact."""
        streams = [{"generator": self.generator.get_state(), "rng": rng_state()}]
        if self.accelerator.num_processes > 1:  # a collective: every process takes part
            streams = gather_object(streams)
        if not self.accelerator.is_main_process:
            return
        state = {"epoch": self.epoch, "samples_seen": self.samples_seen, "queries_seen": self.queries_seen,
                 "optimizer": self.optimizer.state_dict(), "tracker": self.tracker.state_dict(),
                 "processes": streams}
        save_checkpoint(run_dir / "checkpoints", self.epoch, self.policy.trainable_state(), state,
                        keep=self.cfg.train.keep_checkpoints)

    def restore(self, ckpt: Path, streams: bool = True) -> None:
        """Continue from `ckpt`; `streams=False` takes the weights, optimiser and counters but
        not the random streams (evaluation), so a run of any number of processes loads."""
        tensors, state = load_checkpoint(ckpt, self.device)
        try:
            self.policy.load_trainable_state(tensors)
        except KeyError as exc:
            raise UserError(f"checkpoint {ckpt} does not match this policy: {exc}") from None
        saved = state.get("processes") or [{"generator": state["generator"], "rng": state["rng"]}]
        world = self.accelerator.num_processes
        if streams and len(saved) != world:
            raise UserError(f"checkpoint {ckpt} was written by {len(saved)} process(es); resume it "
                            f"with {len(saved)}, not {world} (each process has its own random streams)")
        self.optimizer.load_state_dict(state["optimizer"])
        self.tracker.load_state_dict(state["tracker"])
        if streams:
            mine = saved[self.accelerator.process_index]
            self.generator.set_state(mine["generator"].cpu())
            set_rng_state(mine["rng"])
        self.epoch, self.samples_seen = state["epoch"], state["samples_seen"]
        self.queries_seen = state.get("queries_seen", 0)


def new_accelerator(cfg: SDPOExperimentConfig):
    """The run's Accelerator (one process, or every process of `accelerate launch`/torchrun)."""
    return make_accelerator(cfg.device, cfg.precision, gradient_accumulation_steps=cfg.train.grad_accum)


def on_main(accelerator, fn):
    """`fn()` run by the main process only, its result handed to every process; a UserError
    it raises is raised on every process (so no process waits for a result that never comes)."""
    if accelerator.num_processes == 1:
        return fn()
    box = [None]
    if accelerator.is_main_process:
        try:
            box = [("ok", fn())]
        except UserError as exc:
            box = [("error", str(exc))]
    kind, value = broadcast_object_list(box)[0]
    if kind == "error":
        raise UserError(value)
    return value


def train(cfg: SDPOExperimentConfig, ctx: Context, method: str | None = None, ablation: str | None = None,
          seed: int | None = None, backbone: Backbone | None = None, name: str | None = None) -> dict:
    """Train (or finish, with resume) one run; returns its summary.

    Under `accelerate launch` (or torchrun) with several processes, only the main process
    resolves (and creates and locks) the run directory, writes the run's files and evaluates;
    the others receive the directory, the evaluations and the summary from it, so every
    process returns the same summary and there is one run directory."""
    from papers.sdpo.eval import Evaluator

    method = method or cfg.method
    ablation = cfg.ablation if ablation is None else ablation
    if ablation and method != "sdpo":
        raise UserError(f"ablation={ablation} is an SDPO ablation; method={method} has none")
    seed = cfg.seed if seed is None else seed
    cfg = variant(cfg, ablation)
    check_inputs(cfg)
    name = name or run_name(method, ablation)
    accelerator = new_accelerator(cfg)
    main = accelerator.is_main_process

    def open_dir():
        run_dir, resuming = resolve_run_dir(cfg.resume, cfg.runs_dir, ctx.slug, ctx.config_name, name, seed)
        if resuming:
            check_same_config(run_dir, cfg, ("data.", "text.", "base.", "policy.", "reward.", "sample.",
                                              "sdpo.", "baselines.", *TRAINING_KEYS, "eval.", "deterministic"))
            if is_done(run_dir):
                return run_dir, resuming, read_summary(run_dir)
        return run_dir, resuming, None

    run_dir, resuming, finished = on_main(accelerator, open_dir)
    if finished is not None:
        return finished
    trainer = Trainer(cfg, method, seed, backbone, accelerator=accelerator)
    ckpt = on_main(accelerator, lambda: latest_checkpoint(run_dir / "checkpoints")) if resuming else None
    if ckpt is not None:
        trainer.restore(ckpt)
    if main:
        write_run_info(run_dir, cfg, {"seed": seed, "method": method, "ablation": ablation,
                                      "processes": accelerator.num_processes,
                                      "resumed_from": str(ckpt) if ckpt else None})
    evaluator = Evaluator(cfg, trainer)
    tracker = Tracker(run_dir, slug=ctx.slug, group=f"{ctx.config_name}-{name}",
                      name=f"{ctx.slug}__{name}__{ctx.config_name}__{seed}", config=to_dict(cfg),
                      use_wandb=cfg.wandb and main,
                      resume_step=trainer.epoch if ckpt and main else None)
    epochs = cfg.train.epochs
    bar = progress(total=epochs, initial=trainer.epoch, desc=f"{name} seed {seed}", leave=False,
                   **({} if main else {"disable": True}))
    try:
        with tracker:
            if trainer.epoch == 0:
                first = evaluator.evaluate(run_dir, grid_name="before")
                if main:
                    tracker.log(first, step=0)
            while trainer.epoch < epochs:
                logs = trainer.run_epoch()
                bar.update(1)
                if trainer.epoch % cfg.eval.every == 0 or trainer.epoch == epochs:
                    last = trainer.epoch == epochs
                    logs.update(evaluator.evaluate(run_dir, grid_name="after" if last else None))
                    bar.set_postfix(reward=f"{logs[evaluator.key(cfg.eval.steps[0])]:.3f}", refresh=False)
                if main:
                    tracker.log(logs, step=trainer.epoch)
                if trainer.epoch % cfg.train.checkpoint_every == 0 or trainer.epoch == epochs:
                    trainer.save(run_dir)
            summary = on_main(accelerator, lambda: evaluator.summary(run_dir))
            tracker.summary({k: v for k, v in summary.items() if isinstance(v, float)})
    finally:
        bar.close()
    summary.update({"method": method, "ablation": ablation, "name": name, "seed": seed,
                    "run_dir": str(run_dir)})
    if main:
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        mark_done(run_dir)
    return summary
