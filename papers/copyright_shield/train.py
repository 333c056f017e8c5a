"""One fine-tune (run name × seed): the ordinary ε-MSE fine-tune of SilentBadDiffusion on
the (poisoned) mix, with CopyrightShield's L_protect for the defence runs, trigger
generations `eval.evals_per_epoch` times per epoch (FAE) and `eval.cir_generations` at the
end (CIR), a checkpoint at every evaluation and exact resume.

A step draws, from the run's generator and in this order, B entries, timesteps and noise
(as `shared.t2i.training.train_epsilon`) and which captions are emptied
(`train.caption_dropout`, as SD is trained, for guided sampling), forms x_t, and minimises mean (ε̂ − ε)² [+ λ ·
L_protect]; AdamW with warm-up + cosine over the whole run, gradients clipped to norm 1.
No random flip. Evaluation uses its own generators (eval.seed), never the training one, so
a resumed run draws exactly what an uninterrupted one draws.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from papers.copyright_shield import distributed
from papers.copyright_shield.attack import transform, trigger
from papers.copyright_shield.config import DEFENCES, CopyrightShieldConfig
from papers.copyright_shield.data import World, build_world, run_detection
from papers.copyright_shield.model import load_backbone
from papers.copyright_shield.protect import protection
from papers.copyright_shield.sampling import guided_sample
from papers.copyright_shield.similarity import first_attack_epoch, infringement_rate
from shared import UserError
from shared.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from shared.cli import Context
from shared.config import to_dict
from shared.runs import (
    check_same_config,
    is_done,
    mark_done,
    read_summary,
    resolve_run_dir,
    write_run_info,
)
from shared.seeding import seed_everything
from shared.t2i.backbone import Backbone
from shared.t2i.grid import save_grid
from shared.t2i.text import tokenize
from shared.t2i.training import GRAD_CLIP, EpsilonBatch, make_optimizer
from shared.tracking import Tracker, progress

SLUG = "copyright_shield"
RELEVANT = ("seed", "data.", "text.", "model.", "base.", "attack.", "similarity.", "detection.",
            "defence.", "train.epochs", "train.batch_size", "train.lr", "train.train_text_encoder",
            "eval.")
GENERATIONS = "generations.safetensors"  # the first final trigger generations of every target
CIR_SEED_OFFSET = 1_000_003  # the final generations' seed, apart from every FAE evaluation's


def steps_per_epoch(cfg: CopyrightShieldConfig, entries: int) -> int:
    return max(1, math.ceil(entries / cfg.train.batch_size))


def eval_steps(cfg: CopyrightShieldConfig, entries: int) -> list[int]:
    """The step after which evaluation j = 1, 2, ... runs (epoch j / evals_per_epoch)."""
    spe, per = steps_per_epoch(cfg, entries), cfg.eval.evals_per_epoch
    total = cfg.train.epochs * per
    return [max(1, round(j * spe / per)) for j in range(1, total + 1)]


def trigger_prompts(world: World, n: int, seed: int) -> list[str]:
    """n triggers per target (phrases in a random order each), targets in turn."""
    rng = np.random.default_rng(seed)
    return [trigger(t.phrases, rng) for t in world.targets for _ in range(n)]


def references(world: World, run: str) -> dict[str, torch.Tensor]:
    """What the generations are compared with: the targets, and for flip / rotate the
    targets moved as the poisons were."""
    refs = {"target": world.references}
    if run in ("flip", "rotate"):
        refs["moved"] = transform(world.references, run)
    return refs


@torch.no_grad()
def trigger_similarities(backbone: Backbone, world: World, run: str, n: int, seed: int,
                         steps: int, guidance: float, batch: int = 64) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """({reference: (n_targets, n) similarities}, images (n_targets · n, 3, H, W))."""
    prompts = trigger_prompts(world, n, seed)
    generator = torch.Generator().manual_seed(seed)
    images = torch.cat([guided_sample(backbone, prompts[i:i + batch], steps, generator, guidance).cpu()
                        for i in range(0, len(prompts), batch)])
    sims = {}
    for name, ref in references(world, run).items():
        sims[name] = world.similarity(images, ref.repeat_interleave(n, 0)).view(len(world.targets), n)
    return sims, images


def run_name_dir(cfg: CopyrightShieldConfig, ctx: Context, run: str, seed: int) -> tuple[Path, bool]:
    return resolve_run_dir(cfg.resume, cfg.runs_dir, SLUG, ctx.config_name, run, seed)


def _open(cfg: CopyrightShieldConfig, ctx: Context, run: str, seed: int) -> tuple[Path, bool, dict | None]:
    """(run dir, resuming, summary of a finished run): the main process decides, for all."""
    if distributed.is_main():
        try:
            run_dir, resuming = run_name_dir(cfg, ctx, run, seed)
            if resuming:
                check_same_config(run_dir, cfg, RELEVANT)
            found = read_summary(run_dir) if resuming and is_done(run_dir) else None
            answer = (str(run_dir), resuming, found, None)
        except UserError as exc:
            answer = (None, False, None, str(exc))
    else:
        answer = None
    path, resuming, found, error = distributed.broadcast(answer)
    if error is not None:
        raise UserError(error)
    return Path(path), resuming, found


def fine_tune(cfg: CopyrightShieldConfig, ctx: Context, run: str, seed: int) -> dict:
    """One run; returns its summary (a finished run of the same config is reused). Under a
    launcher every process trains (distributed.py); the main process writes."""
    distributed.init()
    main = distributed.is_main()
    run_dir, resuming, found = _open(cfg, ctx, run, seed)
    if found is not None:
        return found
    torch.set_num_threads(cfg.train.threads)
    seed_everything(seed, cfg.deterministic)
    device = torch.device("cpu") if cfg.device == "auto" else torch.device(cfg.device)
    world = build_world(cfg, seed, run)
    detection = run_detection(cfg, world) if run != "clean" else None
    if main:
        backbone = load_backbone(cfg, world.avoid, device)
        write_run_info(run_dir, cfg, {"run": run, "seed": seed, "processes": distributed.world_size()})
    distributed.broadcast(None)  # the cached base model exists for every process now
    if not main:
        backbone = load_backbone(cfg, world.avoid, device)
    mix = world.mix
    latents = torch.cat([backbone.encode_images(mix.images[i:i + 64]).cpu() for i in range(0, len(mix.images), 64)])
    ids = tokenize(backbone.tokenizer, mix.captions)
    empty = tokenize(backbone.tokenizer, [""])[0]
    unet, text_encoder = backbone.unet, backbone.text_encoder
    params = list(unet.parameters())
    unet.train().requires_grad_(True)
    trains_text = cfg.train.train_text_encoder and cfg.model.name == "tiny"
    if trains_text:
        params += list(text_encoder.parameters())
        text_encoder.train().requires_grad_(True)
    else:
        text_encoder.eval().requires_grad_(False)
    schedule_at = eval_steps(cfg, len(latents))
    total = schedule_at[-1]
    opt, sched = make_optimizer(params, cfg.train.lr, total)
    generator = torch.Generator().manual_seed(seed)
    extra = None
    if run in DEFENCES:
        extra = protection(detection["flags"]["joint"], run, cfg.defence.lam, cfg.defence.margin)
    step, history, losses = 0, [], []
    ckpt = latest_checkpoint(run_dir / "checkpoints") if resuming else None
    if ckpt is not None:
        tensors, state = load_checkpoint(ckpt)
        unet.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("unet.")})
        text_encoder.load_state_dict({k[13:]: v for k, v in tensors.items() if k.startswith("text_encoder.")})
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["schedule"])
        generator.set_state(state["generator"])
        step, history, losses = state["step"], json.loads(state["history"]), json.loads(state["losses"])
    alphas = backbone.scheduler.alphas_cumprod.to(device)
    if main:
        tracker = Tracker(run_dir, slug=SLUG, group=f"{ctx.config_name}/{run}", name=f"{run}-seed{seed}",
                          config=to_dict(cfg), use_wandb=cfg.wandb, resume_step=step if ckpt else None)
    try:
        bar = progress(total=total, initial=step, desc=f"{SLUG} {run} seed {seed}")
        for j, stop in enumerate(schedule_at):
            if stop <= step:
                continue
            while step < stop:
                losses.append(_step(backbone, latents, ids, empty, mix.captions, params, opt, sched, generator,
                                    alphas, step, cfg.train.batch_size, cfg.train.caption_dropout, extra))
                step += 1
                bar.update(1)
            epoch = (j + 1) / cfg.eval.evals_per_epoch
            if not main:
                continue
            backbone.eval()
            sims, _ = trigger_similarities(backbone, world, run, cfg.eval.fae_generations,
                                           cfg.eval.seed + j, cfg.eval.sample_steps, cfg.eval.guidance)
            unet.train()
            if trains_text:
                text_encoder.train()
            record = {"epoch": epoch, "step": step, "loss": float(np.mean(losses[-(stop - (schedule_at[j - 1] if j else 0)):])),
                      **{f"max_sim_{k}": v.max(dim=1).values.tolist() for k, v in sims.items()}}
            history.append(record)
            tracker.log({"epoch": epoch, "loss": record["loss"],
                         "max_sim": float(sims["target"].max())}, step=step)
            _save(run_dir, cfg, unet, text_encoder, opt, sched, generator, step, history, losses)
        bar.close()
        if not main:
            return distributed.broadcast(None)
        summary = _finish(cfg, backbone, world, run, seed, history, losses, detection, run_dir)
        tracker.summary({"cir": float(np.mean(summary["cir"]))})
    finally:
        if main:
            tracker.finish()
    (run_dir / "summary.json").write_text(json.dumps(summary) + "\n")
    mark_done(run_dir)
    return distributed.broadcast(summary)


def _step(backbone, latents, ids, empty, captions, params, opt, sched, generator, alphas, step,
          batch_size, dropout, extra) -> float:
    pick = torch.randint(len(latents), (batch_size,), generator=generator)
    t = torch.randint(len(alphas), (len(pick),), generator=generator)
    noise = torch.randn((len(pick), *latents.shape[1:]), generator=generator)
    drop = torch.rand(len(pick), generator=generator) < dropout  # empty captions, for guidance
    mine = distributed.shard(torch.arange(len(pick)))  # this process's rows of the global batch
    pick, t, noise, drop = pick[mine], t[mine].to(alphas.device), noise[mine].to(alphas.device), drop[mine]
    x0 = latents[pick].to(alphas.device)
    abar = alphas[t].view(-1, 1, 1, 1)
    x_t = abar.sqrt() * x0 + (1 - abar).sqrt() * noise
    batch_ids = torch.where(drop[:, None], empty[None], ids[pick]).to(alphas.device)
    cond = backbone.text_encoder(input_ids=batch_ids).last_hidden_state
    pred = backbone.unet(x_t, t, cond).sample
    loss = torch.nn.functional.mse_loss(pred, noise)
    if extra is not None:
        loss = loss + extra(EpsilonBatch(step=step, index=pick, x0=x0, ids=batch_ids,
                                         captions=[captions[i] for i in pick.tolist()], cond=cond,
                                         x_t=x_t, t=t, noise=noise, pred=pred, alphas_cumprod=alphas,
                                         backbone=backbone))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    distributed.average_gradients(params)
    torch.nn.utils.clip_grad_norm_(params, GRAD_CLIP)
    opt.step()
    sched.step()
    return distributed.mean_scalar(loss.item())


def _save(run_dir, cfg, unet, text_encoder, opt, sched, generator, step, history, losses) -> None:
    tensors = {f"unet.{k}": v for k, v in unet.state_dict().items()}
    tensors.update({f"text_encoder.{k}": v for k, v in text_encoder.state_dict().items()})
    state = {"optimizer": opt.state_dict(), "schedule": sched.state_dict(),
             "generator": generator.get_state(), "step": step,
             "history": json.dumps(history), "losses": json.dumps(losses)}
    save_checkpoint(run_dir / "checkpoints", step, tensors, state, keep=cfg.train.keep_checkpoints)


def _finish(cfg, backbone, world, run, seed, history, losses, detection, run_dir) -> dict:
    """CIR from the final model, FAE from the history, detection metrics, a grid."""
    backbone.eval()
    sims, images = trigger_similarities(backbone, world, run, cfg.eval.cir_generations,
                                        cfg.eval.seed + CIR_SEED_OFFSET, cfg.eval.sample_steps, cfg.eval.guidance)
    threshold = cfg.similarity.threshold
    epochs = [h["epoch"] for h in history]
    fae = [first_attack_epoch(epochs, [[h["max_sim_target"][t]] for h in history], threshold)
           for t in range(len(world.targets))]
    n, show = cfg.eval.cir_generations, min(8, cfg.eval.cir_generations)
    rows = [torch.stack([t.image for t in world.targets])]
    rows += [images[t * n: t * n + show] for t in range(len(world.targets))]
    width = max(r.shape[0] for r in rows)
    rows = [torch.cat([r, torch.ones(width - len(r), *r.shape[1:])]) for r in rows]
    save_grid(rows, ["targets", *[f"T{t} trig" for t in range(len(world.targets))]], run_dir / "grid.png")
    firsts = torch.cat([images[t * n: t * n + show] for t in range(len(world.targets))])
    save_file({"images": firsts.contiguous()}, str(run_dir / GENERATIONS))
    summary = {
        "run": run, "seed": seed, "run_dir": str(run_dir), "epochs": cfg.train.epochs,
        "fae": fae, "cir": [infringement_rate(s.tolist(), threshold) for s in sims["target"]],
        "mean_sim": [float(s.mean()) for s in sims["target"]],
        "final_sims": {k: v.tolist() for k, v in sims.items()},
        "history": history, "loss_tail": float(np.mean(losses[-max(1, len(losses) // 10):])),
    }
    if "moved" in sims:
        summary["cir_moved"] = [infringement_rate(s.tolist(), threshold) for s in sims["moved"]]
        summary["mean_sim_moved"] = [float(s.mean()) for s in sims["moved"]]
    if detection is not None:
        summary["detection"] = detection["per_target"]
        summary["detected"] = int(detection["flags"]["joint"].sum())
    return summary
