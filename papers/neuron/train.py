"""One head run: a method (or a Neuron ablation) on one unseen-class split with one seed, in
its own run directory (reused by `resume=latest` when finished)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from papers.neuron import pipeline
from papers.neuron.config import NeuronExperimentConfig
from papers.neuron.heads import evaluate_split
from shared.cli import Context
from shared.config import to_dict
from shared.runs import finish_run, open_run
from shared.tracking import Tracker

RELEVANT = ("data.", "text.", "encoder.", "neuron.", "train.", "eval.")


@dataclass
class HeadJob:
    cfg: NeuronExperimentConfig
    ctx: Context
    split: str
    unseen: list[int]
    method: str
    ablation: str
    seed: int
    gzsl: bool

    @property
    def label(self) -> str:
        return f"neuron-{self.ablation}" if self.ablation else self.method


def flatten(result: dict) -> dict:
    """{"zsl": {"fused": ...}, ...} -> {"zsl/fused": ...} (numbers only)."""
    return {f"{group}/{k}": v for group, values in result.items() if isinstance(values, dict)
            for k, v in values.items() if isinstance(v, (int, float))}


def run_head(job: HeadJob, show_progress: bool = False) -> dict:
    torch.set_num_threads(1)
    cfg, ctx = job.cfg, job.ctx
    run_dir, done = open_run(cfg, ctx.slug, ctx.config_name, f"{job.label}-{job.split}", job.seed, RELEVANT,
                             {"seed": job.seed, "split": job.split, "unseen": job.unseen,
                              "method": job.method, "ablation": job.ablation})
    if done is not None:
        return done
    text = pipeline.text_embeddings(cfg, pipeline.class_count(cfg))
    split = pipeline.split_features(cfg, job.unseen, job.split, show_progress=show_progress)
    result = evaluate_split(cfg, job.method, job.ablation, split, text, job.seed, gzsl=job.gzsl)
    result.update(split=job.split, unseen=job.unseen, method=job.label, seed=job.seed,
                  encoder_seen_acc=split["encoder_seen_acc"])
    with Tracker(run_dir, slug=ctx.slug, group=f"{ctx.config_name}-{job.label}",
                 name=f"{ctx.slug}__{job.label}__{job.split}__{ctx.config_name}__{job.seed}",
                 config=to_dict(cfg), use_wandb=cfg.wandb) as tracker:
        tracker.log(flatten(result), step=cfg.train.epochs)
        tracker.summary(flatten(result))
    return finish_run(run_dir, result)


def train(cfg: NeuronExperimentConfig, ctx: Context) -> dict:
    """The `train` command: cfg.method (+ cfg.ablation) on cfg.unseen (default: split 0 of the
    first unseen size) with cfg.seed."""
    num_classes = pipeline.class_count(cfg)
    if cfg.unseen:
        unseen, name = sorted(cfg.unseen), f"custom{len(cfg.unseen)}-" + "-".join(map(str, sorted(cfg.unseen)))
        bad = [c for c in unseen if not 0 <= c < num_classes]
        if bad:
            from shared import UserError

            raise UserError(f"unseen: classes {bad} are outside 0..{num_classes - 1}")
    else:
        name, unseen = pipeline.splits(cfg, num_classes)[0]
    return run_head(HeadJob(cfg, ctx, name, unseen, cfg.method, cfg.ablation, cfg.seed, gzsl=not cfg.ablation),
                    show_progress=True)
