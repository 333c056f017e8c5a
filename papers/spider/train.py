"""One fine-tuning run: a method (SPIDER or a baseline) on one downstream task with one seed,
from the cached pre-trained model, then upstream and downstream evaluation. Its own run
directory; `resume=latest` reuses a finished run and continues a killed one from its last
checkpoint. The final trained tensors are kept (`final/`) for `eval`.

Under a multi-process launch (`torchrun` or `accelerate launch`) one run spans every process:
the main process opens the run directory, builds the pre-trained model if needed and writes
every file; each process takes its share of every global batch (`finetune._shared_step`:
the gradient of the global batch's mean token loss, as one process computes it) and of the
evaluation batches. Only the main process returns the result."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from papers.spider import pipeline
from papers.spider.claims import loss_curve
from papers.spider.finetune import finetune, save_final
from shared import UserError
from shared.cli import Context
from shared.config import to_dict
from shared.runs import finish_run, open_run
from shared.tracking import Tracker, read_metrics

RELEVANT = ("model.", "data.", "pretrain.", "finetune.", "eval.")


def launched() -> bool:
    """Whether this process is one of several started by torchrun / accelerate launch."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


@dataclass
class FinetuneJob:
    """One run. `val`: also score the validation split (a sweep run). `tag`: a suffix of the
    run's name (a sweep value). `source`: a finished full-FT run of the same task and seed,
    for the post-hoc methods (DARE, Grafting): their training is full FT's, step for step
    (the rule does nothing until `finish`), so they start from its final weights instead of
    training again."""

    cfg: object
    ctx: Context
    method: str
    task: str
    seed: int
    val: bool = False
    tag: str = ""
    source: str | None = None

    @property
    def name(self) -> str:
        return f"{self.method}{self.tag}-{self.task}"


POST_HOC = ("dare", "grafting")  # rules that act only after training (see FinetuneJob.source)


def on_main(accelerator, fn):
    """`fn()` on the main process, its value broadcast to every process. A `UserError` there
    is raised on the main process (one line) and ends the others quietly with exit code 2."""
    from accelerate.utils import broadcast_object_list

    state = [None, None]
    if accelerator.is_main_process:
        try:
            state = [fn(), None]
        except UserError as exc:
            state = [None, str(exc)]
    if accelerator.num_processes > 1:
        broadcast_object_list(state)
    value, error = state
    if error is not None:
        if accelerator.is_main_process:
            raise UserError(error)
        from shared.device import close_distributed

        close_distributed(wait=False)
        raise SystemExit(2)  # the main process prints the one line
    return value


def _result(job: FinetuneJob, scores: dict, rule, run_dir: Path, curve_dir: Path | None = None) -> dict:
    return {**scores, "downstream": scores[f"downstream/{job.task}"],
            "H": pipeline.harmonic(scores["upstream"], scores[f"downstream/{job.task}"]),
            "method": job.method, "task": job.task, "seed": job.seed, "run_dir": str(run_dir),
            "selected": getattr(rule, "last_selected", {}), "extra_bytes": rule.extra_bytes(),
            "loss_curve": loss_curve(read_metrics(curve_dir or run_dir))}


def _val_scores(cfg, model, tokenizer, task: str) -> dict:
    """{"upstream", "downstream", "H"} on the validation split (`pipeline.val_sets`)."""
    up, down = pipeline.val_sets(cfg, task)
    s = pipeline.evaluate(cfg, model, tokenizer, up, {task: down})
    d = s[f"downstream/{task}"]
    return {"upstream": s["upstream"], "downstream": d, "H": pipeline.harmonic(s["upstream"], d)}


def _post_hoc(cfg, job: FinetuneJob, model):
    """The post-hoc rule of `job` applied to its source full-FT run's final weights."""
    from papers.spider.finetune import load_final, make_rule
    from papers.spider.mllm import freeze_for_finetuning

    source = Path(job.source)
    if not (source / "DONE").exists():
        raise UserError(f"{job.name} seed {job.seed}: its full-FT source run {source} is not finished")
    projector, layers = freeze_for_finetuning(model, cfg.finetune.last_layers, named=True)
    rule = make_rule(cfg, job.method, job.seed)
    rule.start(projector + layers)  # θ₀ = the pre-trained weights
    load_final(source, model)
    rule.finish()
    model.eval()
    return rule, source


def run_finetune(job: FinetuneJob, show_progress: bool = False) -> dict | None:
    """The run's result (None on a non-main process of a launch)."""
    torch.set_num_threads(1)
    if launched():
        return _run_launched(job, show_progress)
    cfg, ctx = job.cfg, job.ctx
    extra = {"seed": job.seed, "method": job.method, "task": job.task}
    if job.source:
        extra["source"] = job.source
    run_dir, done = open_run(cfg, ctx.slug, ctx.config_name, job.name, job.seed, RELEVANT, extra)
    if done is not None:
        return done
    resuming = (run_dir / "checkpoints").exists()
    model, tokenizer, _ = pipeline.load_base(cfg, show_progress=show_progress)
    upstream, _ = pipeline.eval_sets(cfg, downstream=False)
    with Tracker(run_dir, slug=ctx.slug, group=f"{ctx.config_name}-{job.name}",
                 name=f"{ctx.slug}__{job.name}__{ctx.config_name}__{job.seed}",
                 config=to_dict(cfg), use_wandb=cfg.wandb) as tracker:
        examples = pipeline.downstream_train(cfg, job.task)
        curve_dir = None
        if job.source:
            rule, curve_dir = _post_hoc(cfg, job, model)
        else:
            rule = finetune(cfg, model, tokenizer, examples, job.method, job.seed, run_dir, tracker,
                            resume=resuming)
        save_final(run_dir, rule, _steps(cfg, len(examples)))
        scores = pipeline.evaluate(cfg, model, tokenizer, upstream, {job.task: pipeline.downstream_eval(cfg, job.task)})
        result = _result(job, scores, rule, run_dir, curve_dir)
        if job.val:
            result["val"] = _val_scores(cfg, model, tokenizer, job.task)
        tracker.summary({k: v for k, v in result.items() if isinstance(v, float)})
    return finish_run(run_dir, result)


def _steps(cfg, n_examples: int) -> int:
    f = cfg.finetune
    return -(-n_examples // f.batch_size) * f.epochs


def _run_launched(job: FinetuneJob, show_progress: bool) -> dict | None:
    from shared.device import make_accelerator

    cfg, ctx = job.cfg, job.ctx
    accelerator = make_accelerator(cfg.device, cfg.precision)
    main = accelerator.is_main_process

    def open_():
        run_dir, done = open_run(cfg, ctx.slug, ctx.config_name, job.name, job.seed,
                                 RELEVANT, {"seed": job.seed, "method": job.method, "task": job.task,
                                            "processes": accelerator.num_processes})
        if done is None:
            pipeline.ensure_base(cfg, show_progress)
        return str(run_dir), done

    run_dir, done = on_main(accelerator, open_)
    run_dir = Path(run_dir)
    if done is not None:
        return done if main else None
    resuming = (run_dir / "checkpoints").exists()
    model, tokenizer, _ = pipeline.load_base(cfg, show_progress=False)
    upstream, _ = pipeline.eval_sets(cfg, downstream=False)
    tracker = None
    if main:
        tracker = Tracker(run_dir, slug=ctx.slug, group=f"{ctx.config_name}-{job.method}-{job.task}",
                          name=f"{ctx.slug}__{job.method}-{job.task}__{ctx.config_name}__{job.seed}",
                          config=to_dict(cfg), use_wandb=cfg.wandb)
    try:
        examples = pipeline.downstream_train(cfg, job.task)
        rule = finetune(cfg, model, tokenizer, examples, job.method, job.seed, run_dir, tracker,
                        resume=resuming, accelerator=accelerator)
        model = accelerator.unwrap_model(model)
        scores = pipeline.evaluate(cfg, model, tokenizer, upstream, {job.task: pipeline.downstream_eval(cfg, job.task)},
                                   accelerator=accelerator)
        result = None
        if main:
            save_final(run_dir, rule, _steps(cfg, len(examples)))
            result = _result(job, scores, rule, run_dir)
            tracker.summary({k: v for k, v in result.items() if isinstance(v, float)})
            finish_run(run_dir, result)
    finally:
        if tracker is not None:
            tracker.finish()
    accelerator.wait_for_everyone()
    return result


def train(cfg, ctx: Context) -> dict | None:
    """The `train` command: cfg.finetune.method on cfg.task with cfg.seed."""
    return run_finetune(FinetuneJob(cfg, ctx, cfg.finetune.method, cfg.task, cfg.seed), show_progress=True)
