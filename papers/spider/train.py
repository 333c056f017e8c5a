"""One fine-tuning run: a method (SPIDER or a baseline) on one downstream task with one seed,
from the cached pre-trained model, then upstream and downstream evaluation. Its own run
directory; `resume=latest` reuses a finished run and continues a killed one from its last
checkpoint."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from papers.spider import pipeline
from papers.spider.claims import loss_curve
from papers.spider.finetune import finetune
from shared.cli import Context
from shared.config import to_dict
from shared.runs import finish_run, open_run
from shared.tracking import Tracker, read_metrics

RELEVANT = ("model.", "data.", "pretrain.", "finetune.", "eval.")


@dataclass
class FinetuneJob:
    cfg: object
    ctx: Context
    method: str
    task: str
    seed: int


def run_finetune(job: FinetuneJob, show_progress: bool = False) -> dict:
    torch.set_num_threads(1)
    cfg, ctx = job.cfg, job.ctx
    run_dir, done = open_run(cfg, ctx.slug, ctx.config_name, f"{job.method}-{job.task}", job.seed, RELEVANT,
                             {"seed": job.seed, "method": job.method, "task": job.task})
    if done is not None:
        return done
    resuming = (run_dir / "checkpoints").exists()
    model, tokenizer, _ = pipeline.load_base(cfg, show_progress=show_progress)
    upstream, downstream = pipeline.eval_sets(cfg)
    with Tracker(run_dir, slug=ctx.slug, group=f"{ctx.config_name}-{job.method}-{job.task}",
                 name=f"{ctx.slug}__{job.method}-{job.task}__{ctx.config_name}__{job.seed}",
                 config=to_dict(cfg), use_wandb=cfg.wandb) as tracker:
        rule = finetune(cfg, model, tokenizer, pipeline.downstream_train(cfg, job.task), job.method,
                        job.seed, run_dir, tracker, resume=resuming)
        scores = pipeline.evaluate(cfg, model, tokenizer, upstream, {job.task: downstream[job.task]})
        result = {**scores, "downstream": scores[f"downstream/{job.task}"],
                  "H": pipeline.harmonic(scores["upstream"], scores[f"downstream/{job.task}"]),
                  "method": job.method, "task": job.task, "seed": job.seed,
                  "selected": getattr(rule, "last_selected", {}), "extra_bytes": rule.extra_bytes(),
                  "loss_curve": loss_curve(read_metrics(run_dir))}
        tracker.summary({k: v for k, v in result.items() if isinstance(v, float)})
    return finish_run(run_dir, result)


def train(cfg, ctx: Context) -> dict:
    """The `train` command: cfg.finetune.method on cfg.task with cfg.seed."""
    return run_finetune(FinetuneJob(cfg, ctx, cfg.finetune.method, cfg.task, cfg.seed), show_progress=True)
