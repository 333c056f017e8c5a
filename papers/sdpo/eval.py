"""Held-out evaluation: mean reward at 1/2/4/8 sampling steps on prompts never trained on
and noise seeds never used in training, plus PNG grids of the samples before and after.

The same x_T and the same noise stream are used at every evaluation of every run, so curves
and methods are compared on identical inputs.
"""

from __future__ import annotations

from pathlib import Path

import torch

from papers.sdpo.config import SDPOExperimentConfig
from papers.sdpo.ddim import sample_trajectories
from shared.t2i.grid import save_grid
from shared.tracking import read_metrics


def key(steps: int) -> str:
    return f"eval_reward_{steps}step"


class Evaluator:
    def __init__(self, cfg: SDPOExperimentConfig, trainer) -> None:
        from papers.sdpo.prompts import prompt_set

        self.cfg, self.trainer = cfg, trainer
        heldout = prompt_set(cfg.sample.prompts, "heldout")
        self.grid_prompts = heldout[: cfg.eval.grid_prompts]
        self.prompts = [p for p in heldout for _ in range(cfg.eval.images_per_prompt)]

    key = staticmethod(key)

    @torch.no_grad()
    def sample(self, prompts: list[str], steps: int) -> torch.Tensor:
        """Images in [0, 1] of the current policy at `steps` DDIM steps, fixed noise."""
        policy, cfg = self.trainer.policy, self.cfg
        backbone = policy.backbone
        device = backbone.device
        generator = torch.Generator(device=device).manual_seed(cfg.eval.seed)
        cond = backbone.encode_prompts(prompts)
        x_T = torch.randn((len(prompts), *backbone.latent_shape), generator=generator, device=device)
        traj = sample_trajectories(policy.eps, backbone.scheduler, cond, x_T, steps, cfg.eval.eta,
                                   generator, record=False)
        return backbone.decode(traj.final)

    def evaluate(self, run_dir: Path, grid_name: str | None = None) -> dict[str, float]:
        if not self.trainer.accelerator.is_main_process:
            return {}
        unet = self.trainer.policy.unet
        was_training = unet.training
        unet.eval()
        out, rows = {}, []
        for steps in self.cfg.eval.steps:
            images = self.sample(self.prompts, steps)
            rewards = self.trainer.reward(images, self.prompts)
            out[key(steps)] = rewards.mean().item()
            out[key(steps) + "_std"] = rewards.std().item()
            if grid_name:
                rows.append(self.sample(self.grid_prompts, steps))
        if grid_name:
            save_grid(rows, [f"{s} step{'s' * (s > 1)}" for s in self.cfg.eval.steps],
                      Path(run_dir) / f"grid-{grid_name}.png")
        unet.train(was_training)
        return out

    def summary(self, run_dir: Path) -> dict:
        """Initial and final held-out rewards per budget, and the curve against samples seen,
        read back from metrics.jsonl (so a resumed run reports what an uninterrupted one would)."""
        records = [r for r in read_metrics(run_dir) if key(self.cfg.eval.steps[0]) in r]
        initial, final = records[0], records[-1]
        summary = {"samples": int(final.get("samples", 0)), "epochs": int(final["step"])}
        for steps in self.cfg.eval.steps:
            summary[f"initial_{steps}"] = initial[key(steps)]
            summary[f"final_{steps}"] = final[key(steps)]
            summary[f"gain_{steps}"] = final[key(steps)] - initial[key(steps)]
        summary["curve"] = [{"samples": int(r.get("samples", 0)),
                             **{str(s): r[key(s)] for s in self.cfg.eval.steps}} for r in records]
        return summary


def evaluate_run(cfg: SDPOExperimentConfig, ctx) -> dict:
    """Evaluate the latest checkpoint of a run (`resume=<dir>`, or the newest run of
    cfg.method / cfg.ablation / cfg.seed) and write a grid beside it."""
    from papers.sdpo.train import Trainer, run_name, variant
    from shared import UserError
    from shared.checkpoint import latest_checkpoint
    from shared.runs import method_dir

    name = run_name(cfg.method, cfg.ablation)
    if cfg.resume not in ("", "latest"):
        run_dir = Path(cfg.resume)
    else:
        parent = method_dir(cfg.runs_dir, ctx.slug, ctx.config_name, name)
        found = sorted(parent.glob(f"seed{cfg.seed}-*")) if parent.exists() else []
        if not found:
            raise UserError(f"no {name} run with seed {cfg.seed} under {parent}: train one first")
        run_dir = found[-1]
    ckpt = latest_checkpoint(run_dir / "checkpoints")
    if ckpt is None:
        raise UserError(f"run {run_dir} has no checkpoint yet")
    trainer = Trainer(variant(cfg, cfg.ablation), cfg.method, cfg.seed)
    trainer.restore(ckpt)
    evaluator = Evaluator(cfg, trainer)
    grid = f"epoch{trainer.epoch}"
    result = evaluator.evaluate(run_dir / "eval", grid_name=grid)
    return {"run_dir": str(run_dir), "epoch": trainer.epoch, "grid": str(run_dir / "eval" / f"grid-{grid}.png"),
            **{n: result[key(n)] for n in cfg.eval.steps}}
