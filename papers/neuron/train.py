"""One head run: a method (or a Neuron ablation) on one unseen-class split with one seed, in
its own run directory (reused by `resume=latest` when finished). The trained head is kept
in the run directory (`head/`, a checksummed checkpoint), so `eval` can re-score it.

Under `accelerate launch` / torchrun the split's encoder is pre-trained by every process
(pipeline.distributed_encoders); the head, its run directory and its result are the main
process's alone (a head trains in seconds to minutes on one CPU core)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import torch

from papers.neuron import pipeline
from papers.neuron.config import NeuronExperimentConfig
from papers.neuron.heads import fit_and_score, head_device, score, validate_head
from papers.neuron.model import build_head
from shared import UserError
from shared.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from shared.cli import Context
from shared.config import load_config, to_dict
from shared.runs import RESULT_FILE, finish_run, is_done, open_run
from shared.tracking import Tracker

RELEVANT = ("data.", "text.", "encoder.", "neuron.", "train.", "eval.")
TUNE_RELEVANT = ("data.", "text.", "encoder.", "neuron.", "train.", "eval.pseudo_unseen",
                 "eval.heldout_fraction", "eval.gamma_points")
HEAD_DIR = "head"  # the trained head's checkpoint, inside the run directory


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


def label(method: str, ablation: str) -> str:
    return f"neuron-{ablation}" if ablation else method


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
    result, model = fit_and_score(cfg, job.method, job.ablation, split, text, job.seed, gzsl=job.gzsl)
    result.update(split=job.split, unseen=job.unseen, method=job.label, seed=job.seed,
                  encoder_seen_acc=split["encoder_seen_acc"])
    save_checkpoint(run_dir / HEAD_DIR, cfg.train.steps,
                    {k: v.detach().cpu() for k, v in model.state_dict().items()},
                    {"method": job.method, "ablation": job.ablation, "seed": job.seed}, keep=1)
    with Tracker(run_dir, slug=ctx.slug, group=f"{ctx.config_name}-{job.label}",
                 name=f"{ctx.slug}__{job.label}__{job.split}__{ctx.config_name}__{job.seed}",
                 config=to_dict(cfg), use_wandb=cfg.wandb) as tracker:
        tracker.log(flatten(result), step=cfg.train.steps)
        tracker.summary(flatten(result))
    return finish_run(run_dir, result)


@dataclass
class TuneJob:
    """One point of the held-out sweep (cfg carries its lr and logit scale): a validation
    head on the split's seen classes only (pseudo-unseen classes, held-out samples)."""

    cfg: NeuronExperimentConfig
    ctx: Context
    split: str
    unseen: list[int]
    method: str
    ablation: str
    seed: int
    lr: float
    scale: float | None

    @property
    def label(self) -> str:
        return label(self.method, self.ablation)

    @property
    def name(self) -> str:
        scale = "none" if self.scale is None else f"{self.scale:g}"
        return f"tune-{self.label}-{self.split}-lr{self.lr:g}-s{scale}"


def run_tune(job: TuneJob) -> dict:
    """A sweep point in its own run directory (reused when finished): {"method", "split",
    "unseen", "seed", "lr", "scale", "val_zsl", "gamma", "curve", "at", "loss"}."""
    torch.set_num_threads(1)
    cfg, ctx = job.cfg, job.ctx
    run_dir, done = open_run(cfg, ctx.slug, ctx.config_name, job.name, job.seed, TUNE_RELEVANT,
                             {"seed": job.seed, "split": job.split, "unseen": job.unseen,
                              "method": job.method, "ablation": job.ablation, "lr": job.lr,
                              "scale": job.scale})
    if done is not None:
        return done
    text = pipeline.text_embeddings(cfg, pipeline.class_count(cfg))
    split = pipeline.split_features(cfg, job.unseen, job.split, show_progress=False)
    val = validate_head(cfg, job.method, job.ablation, split["train_feats"], split["train_labels"],
                        split["seen"], text, job.seed)
    result = {"method": job.label, "split": job.split, "unseen": job.unseen, "seed": job.seed,
              "lr": job.lr, "scale": job.scale, "val_zsl": val["zsl"], "gamma": val["gamma"],
              "curve": val["curve"], "at": val["at"], "loss": val["loss"]}
    return finish_run(run_dir, result)


def train_split(cfg: NeuronExperimentConfig) -> tuple[str, list[int]]:
    """(split name, unseen classes) that `train` runs: cfg.unseen, or split 0 of the first size."""
    num_classes = pipeline.class_count(cfg)
    if cfg.unseen:
        unseen = sorted(cfg.unseen)
        bad = [c for c in unseen if not 0 <= c < num_classes]
        if bad:
            raise UserError(f"unseen: classes {bad} are outside 0..{num_classes - 1}")
        if len(unseen) > num_classes - 2:
            raise UserError(f"unseen: {len(unseen)} unseen of {num_classes} classes leaves fewer "
                            "than 2 seen classes to train on")
        return f"custom{len(unseen)}-" + "-".join(map(str, unseen)), unseen
    return pipeline.splits(cfg, num_classes)[0]


def train(cfg: NeuronExperimentConfig, ctx: Context) -> dict | None:
    """The `train` command: cfg.method (+ cfg.ablation) on cfg.unseen (default: split 0 of the
    first unseen size) with cfg.seed. Under a launch of several processes the others help
    pre-train the encoder and return None; the main process returns the result."""
    name, unseen = train_split(cfg)
    pipeline.check_text(cfg, pipeline.class_count(cfg))
    if not pipeline.distributed_encoders(cfg, [(name, unseen)]):
        return None
    return run_head(HeadJob(cfg, ctx, name, unseen, cfg.method, cfg.ablation, cfg.seed, gzsl=not cfg.ablation),
                    show_progress=True)


# ---------------------------------------------------------------------------------------------
# eval: re-score a finished head run

def newest_finished_run(cfg: NeuronExperimentConfig, ctx: Context) -> Path:
    """The newest finished head run of cfg.method (+ cfg.ablation) on any split of this config."""
    root = Path(cfg.runs_dir) / ctx.slug / ctx.config_name
    prefix = label(cfg.method, cfg.ablation) + "-"
    runs = [p for d in (sorted(root.glob(f"{prefix}*")) if root.exists() else [])
            # "neuron-u5-0" but not "neuron-no_gating-u5-0" when looking for plain neuron
            if d.name[len(prefix):].startswith(("u", "custom"))
            for p in d.glob("seed*-*") if is_done(p)]
    if not runs:
        raise UserError(f"no finished {label(cfg.method, cfg.ablation)} head run under "
                        f"{root}: run `train` first (or give eval_run=<run dir>)")
    return max(runs, key=lambda p: p.name.split("-", 1)[1])


def evaluate_run(cfg: NeuronExperimentConfig, ctx: Context) -> dict:
    """Load a finished head run (cfg.eval_run, or the newest finished one), rebuild its split's
    frozen features (cached, else the encoder is re-trained deterministically) and its head,
    and score the head on the split's test set: ZSL and, for a method run, GZSL at the run's
    held-out γ and at the test-set γ. Writes eval-<stamp>.json into the run directory."""
    run_dir = Path(cfg.eval_run) if cfg.eval_run else newest_finished_run(cfg, ctx)
    if not (run_dir / "config.yaml").is_file() or not (run_dir / "run.json").is_file():
        raise UserError(f"eval_run={run_dir}: not a head run directory (no config.yaml / run.json)")
    if not is_done(run_dir):
        raise UserError(f"eval_run={run_dir}: the run has not finished")
    ckpt = latest_checkpoint(run_dir / HEAD_DIR)
    if ckpt is None:
        raise UserError(f"{run_dir} keeps no trained head (runs recorded before heads were saved): "
                        "train it again")
    info = json.loads((run_dir / "run.json").read_text())
    recorded = json.loads((run_dir / RESULT_FILE).read_text())
    recorded_cfg = load_config(NeuronExperimentConfig, run_dir, "config", [])
    # the run's caches where they still are (features: no re-training), else the current data_dir
    data_dir = recorded_cfg.data_dir if Path(recorded_cfg.data_dir).is_dir() else cfg.data_dir
    run_cfg = load_config(NeuronExperimentConfig, run_dir, "config",
                          [f"device={cfg.device}", f"data_dir={data_dir}"])
    unseen, split_name = [int(c) for c in info["unseen"]], info["split"]
    text = pipeline.text_embeddings(run_cfg, pipeline.class_count(run_cfg))
    split = pipeline.split_features(run_cfg, unseen, split_name)
    tensors, state = load_checkpoint(ckpt)
    model = build_head(state["method"], run_cfg, split["train_feats"].shape[1], text.shape[-1],
                       state["ablation"])
    model.load_state_dict(tensors)
    model.to(head_device(run_cfg)).eval()
    gzsl = "gzsl_val_gamma" in recorded
    gamma = recorded["gzsl_val_gamma"]["gamma"] if gzsl else None
    metrics = score(run_cfg, model, split, text, gzsl, gamma)
    metrics["encoder_seen_acc"] = split["encoder_seen_acc"]
    out = run_dir / f"eval-{datetime.now().strftime('%Y%m%d-%H%M%S-%f')}.json"
    out.write_text(json.dumps({"checkpoint": str(ckpt), "split": split_name, "unseen": unseen,
                               "metrics": metrics}, indent=2) + "\n")
    print(f"{run_dir}: {recorded['method']} on {split_name} (seed {recorded['seed']}), "
          f"encoder seen-class top-1 {100 * split['encoder_seen_acc']:.1f}%")
    print_metrics(metrics)
    print(f"wrote {out}")
    return metrics


def print_metrics(result: dict) -> None:
    print("  ZSL " + ", ".join(f"{k}={100 * v:.1f}%" for k, v in result["zsl"].items()))
    for group in ("gzsl_val_gamma", "gzsl_test_gamma"):
        if group in result:
            g = result[group]
            print(f"  {group}: S={100 * g['S']:.1f}% U={100 * g['U']:.1f}% H={100 * g['H']:.1f}% (γ={g['gamma']:.3g})")
