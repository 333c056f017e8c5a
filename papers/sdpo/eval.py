"""Held-out evaluation: mean reward at 1/2/4/8 sampling steps on prompts never trained on
and noise seeds never used in training, plus PNG grids of the samples before and after.

The same x_T and the same noise stream are used at every evaluation of every run, so curves
and methods are compared on identical inputs.
"""

from __future__ import annotations

from pathlib import Path

import torch

from papers.sdpo.config import SDPOExperimentConfig
from papers.sdpo.ddim import sample_in_chunks
from shared.t2i.grid import save_grid
from shared.tracking import read_metrics


def eval_prompts(prompts: str, split: str) -> list[str]:
    """The held-out prompts of `split`: `val` and `test` are the even and odd entries of the
    held-out set (never trained on), so a setting is chosen on val and reported on test."""
    from papers.sdpo.prompts import prompt_set

    heldout = prompt_set(prompts, "heldout")
    return {"heldout": heldout, "val": heldout[0::2], "test": heldout[1::2]}[split]


def key(steps: int) -> str:
    return f"eval_reward_{steps}step"


class Evaluator:
    def __init__(self, cfg: SDPOExperimentConfig, trainer) -> None:

        self.cfg, self.trainer = cfg, trainer
        heldout = eval_prompts(cfg.sample.prompts, cfg.eval.split)
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
        traj = sample_in_chunks(policy.eps, backbone.scheduler, cond, x_T, steps, cfg.eval.eta,
                                generator, record=False, chunk=cfg.sample.batch)
        return torch.cat([backbone.decode(traj.final[i:i + cfg.reward.batch])
                          for i in range(0, len(traj.final), cfg.reward.batch)])

    def evaluate(self, run_dir: Path, grid_name: str | None = None) -> dict[str, float]:
        """Mean and std of the held-out reward at every budget (and the grid, when named).

        The main process evaluates (every process holds the same weights) and hands the
        numbers to the others, so each process gets the same, complete dict: the numbers
        of a one-process run, whatever the number of processes."""
        from papers.sdpo.train import on_main

        return on_main(self.trainer.accelerator, lambda: self._evaluate(run_dir, grid_name))

    def _evaluate(self, run_dir: Path, grid_name: str | None) -> dict[str, float]:
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
        every = read_metrics(run_dir)
        records = [r for r in every if key(self.cfg.eval.steps[0]) in r]
        initial, final = records[0], records[-1]
        summary = {"samples": int(final.get("samples", 0)), "epochs": int(final["step"]),
                   "reward_queries": int(final.get("reward_queries_total", 0))}
        for name in ("clipfrac", "abs_dlogp"):  # means over the training epochs
            values = [r[name] for r in every if name in r]
            summary[name] = float(sum(values) / len(values)) if values else float("nan")
        for steps in self.cfg.eval.steps:
            summary[f"initial_{steps}"] = initial[key(steps)]
            summary[f"final_{steps}"] = final[key(steps)]
            summary[f"gain_{steps}"] = final[key(steps)] - initial[key(steps)]
        summary["curve"] = [{"samples": int(r.get("samples", 0)),
                             "reward_queries": int(r.get("reward_queries_total", 0)),
                             **{str(s): r[key(s)] for s in self.cfg.eval.steps}} for r in records]
        return summary


def find_run(cfg: SDPOExperimentConfig, ctx) -> tuple[Path, dict]:
    """(run directory, its run.json) that `eval` scores: `resume=<run dir>` (a run of this
    paper and config, finished or not), else the newest finished run of cfg.method /
    cfg.ablation / cfg.seed."""
    import json

    from papers.sdpo.train import run_name
    from shared import UserError
    from shared.runs import is_done, method_dir

    name = run_name(cfg.method, cfg.ablation)
    if cfg.resume not in ("", "latest"):
        run_dir = Path(cfg.resume).expanduser().resolve()
        parts = run_dir.parts[-4:]
        if not (run_dir.is_dir() and len(parts) == 4 and list(parts[:2]) == [ctx.slug, ctx.config_name]
                and parts[3].startswith("seed") and (run_dir / "run.json").is_file()):
            raise UserError(f"resume={cfg.resume}: not a run directory of {ctx.slug}/{ctx.config_name}/"
                            "<method>/seed<k>-<stamp> (a run directory holds run.json)")
    else:
        parent = method_dir(cfg.runs_dir, ctx.slug, ctx.config_name, name)
        found = [p for p in sorted(parent.glob(f"seed{cfg.seed}-*")) if is_done(p)] if parent.exists() else []
        if not found:
            raise UserError(f"no {name} run with seed {cfg.seed} has finished under {parent}: train "
                            "one first, or pass resume=<run dir> for an unfinished one")
        run_dir = found[-1]
    try:
        info = json.loads((run_dir / "run.json").read_text())
    except json.JSONDecodeError:
        raise UserError(f"run {run_dir}: run.json is unreadable") from None
    return run_dir, info


def evaluate_run(cfg: SDPOExperimentConfig, ctx) -> dict:
    """Score the latest checkpoint of a run (see `find_run`) at every budget of `eval.steps`
    and write `eval/epoch<k>.json` and the grid `eval/grid-epoch<k>.png` beside it. The
    method, ablation and seed are the run's own (from its run.json)."""
    import json

    from papers.sdpo.train import Trainer, variant
    from shared import UserError
    from shared.checkpoint import latest_checkpoint

    run_dir, info = find_run(cfg, ctx)
    method, ablation = info.get("method", cfg.method), info.get("ablation", cfg.ablation)
    seed = int(info.get("seed", cfg.seed))
    ckpt = latest_checkpoint(run_dir / "checkpoints")
    if ckpt is None:
        raise UserError(f"run {run_dir} has no checkpoint yet")
    run_cfg = variant(cfg, ablation)
    trainer = Trainer(run_cfg, method, seed)
    trainer.restore(ckpt, streams=False)  # the weights; a run of any number of processes
    evaluator = Evaluator(run_cfg, trainer)
    grid = f"epoch{trainer.epoch}"
    result = evaluator.evaluate(run_dir / "eval", grid_name=grid)
    out = {"run_dir": str(run_dir), "method": method, "ablation": ablation, "seed": seed,
           "epoch": trainer.epoch, "checkpoint": str(ckpt),
           "grid": str(run_dir / "eval" / f"grid-{grid}.png"),
           **{n: result[key(n)] for n in cfg.eval.steps}}
    if trainer.accelerator.is_main_process:
        (run_dir / "eval" / f"{grid}.json").write_text(json.dumps({**out, **result}, indent=2) + "\n")
    return out
