"""Copyright feature inversion [recon] (brief: textual inversion of one pseudo-token).

On the poisoned (undefended) model, optimise the input embedding v* of the placeholder
token so that "an image with v*" regenerates the target: minimise the ε-MSE of the target
image under that prompt, over random timesteps and noise, with every model weight frozen
(only v*'s row of the token-embedding table receives a gradient; Adam on zero gradients
leaves the other rows exactly as they were).

Then attribute: (1) which elements — the feature-level score of each target element in
the generations from "an image with v*", and the cosine between the prompt's encoder states
and those of "an image with <phrase k>"; (2) which training samples — the joint detection
score of every training image against the v*-generations (segmented with the target's
element masks), whose top entries are compared with the detected poisons.
"""

from __future__ import annotations

from pathlib import Path

import torch

from papers.copyright_shield.config import CopyrightShieldConfig
from papers.copyright_shield.data import build_world, run_detection
from papers.copyright_shield.detection import element_scores
from papers.copyright_shield.model import load_backbone
from papers.copyright_shield.sampling import guided_sample
from papers.copyright_shield.scenes import PLACEHOLDER, PREFIX
from shared.checkpoint import latest_checkpoint, load_checkpoint
from shared.results import summarize
from shared.t2i.backbone import PixelBackbone
from shared.t2i.text import tokenize

PROMPT = f"{PREFIX} {PLACEHOLDER}"


def token_table(backbone: PixelBackbone) -> torch.nn.Parameter:
    return backbone.text_encoder.get_input_embeddings().weight


def invert(backbone: PixelBackbone, target: torch.Tensor, *, steps: int, lr: float, batch: int,
           generator: torch.Generator) -> torch.Tensor:
    """v* (D,) for one target image (3, H, W) in [0, 1]; only its embedding row changes."""
    backbone.requires_grad_(False).eval()
    table = token_table(backbone)
    row = backbone.tokenizer.convert_tokens_to_ids(PLACEHOLDER)
    keep = torch.zeros_like(table)
    keep[row] = 1.0
    table.requires_grad_(True)
    hook = table.register_hook(lambda g: g * keep)
    opt = torch.optim.Adam([table], lr=lr, weight_decay=0.0)
    ids = tokenize(backbone.tokenizer, [PROMPT] * batch).to(table.device)
    x0 = backbone.encode_images(target[None].expand(batch, -1, -1, -1))
    alphas = backbone.scheduler.alphas_cumprod.to(table.device)
    try:
        for _ in range(steps):
            t = torch.randint(len(alphas), (batch,), generator=generator)
            noise = torch.randn(x0.shape, generator=generator)
            abar = alphas[t].view(-1, 1, 1, 1)
            x_t = abar.sqrt() * x0 + (1 - abar).sqrt() * noise
            cond = backbone.text_encoder(input_ids=ids).last_hidden_state
            loss = torch.nn.functional.mse_loss(backbone.unet(x_t, t, cond).sample, noise)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    finally:
        hook.remove()
        table.requires_grad_(False)
    return table[row].detach().clone()


def _states(backbone: PixelBackbone, prompts: list[str]) -> torch.Tensor:
    return backbone.encode_prompts(prompts).flatten(1)


def invert_run(cfg: CopyrightShieldConfig, run_dir: Path, seed: int) -> dict:
    """Invert every target on the final model of an undefended run; the attribution table."""
    world = build_world(cfg, seed, "attack")
    detection = run_detection(cfg, world)
    backbone = load_backbone(cfg, world.avoid, torch.device("cpu"))
    tensors, _ = load_checkpoint(latest_checkpoint(run_dir / "checkpoints"))
    backbone.unet.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("unet.")})
    backbone.text_encoder.load_state_dict({k[13:]: v for k, v in tensors.items() if k.startswith("text_encoder.")})
    d, inv = cfg.detection, cfg.inversion
    rows, metrics = [], {"sim_to_target": [], "best_phrase_cos": [], "poison_precision": []}
    flagged = detection["flags"]["joint"]
    for t, target in enumerate(world.targets):
        generator = torch.Generator().manual_seed(cfg.eval.seed + 17 * (t + 1))
        invert(backbone, target.image, steps=inv.steps, lr=inv.lr, batch=inv.batch, generator=generator)
        images = guided_sample(backbone, [PROMPT] * inv.generations, cfg.eval.sample_steps, generator,
                               cfg.eval.guidance).cpu()
        sim = world.similarity(images, target.image[None].expand_as(images))
        feature, _ = element_scores(images, target.image, target.masks, d.feature_scale,
                                    d.spatial_temperature, d.max_shift)
        states = _states(backbone, [PROMPT, *[f"{PREFIX} {p}" for p in target.phrases]])
        cos = torch.nn.functional.cosine_similarity(states[:1], states[1:]).tolist()
        # training samples the inverted feature points to: joint score against the v*-generations
        joint = torch.stack([_joint(world.mix.images, g, target.masks, d) for g in images]).mean(0)
        k = max(1, int((world.mix.poison_of == t).sum()))
        top = torch.topk(joint, k).indices
        precision = float((world.mix.poison_of[top] == t).float().mean())
        overlap = float(flagged[top].float().mean())
        metrics["sim_to_target"].append(float(sim.mean()))
        metrics["best_phrase_cos"].append(float(max(cos)))
        metrics["poison_precision"].append(precision)
        rows.append([f"T{t}", round(float(sim.mean()), 3), round(float((sim > cfg.similarity.threshold).float().mean()), 3),
                     ", ".join(f"{p.split(' ', 1)[1]}: {f:.2f}" for p, f in zip(target.phrases, feature.mean(0).tolist(), strict=True)),
                     ", ".join(f"{c:.2f}" for c in cos), round(precision, 3), round(overlap, 3)])
    table = {"title": f"Copyright feature inversion [recon] (seed {seed}, undefended model)",
             "columns": ["target", "sim of v*-generations", "v* CIR", "feature score per element",
                         "cos(v* prompt, phrase prompts)", "top-|poisons| training samples that are its poisons",
                         "… that the detector flagged"], "rows": rows}
    return {"table": table, "metrics": {k: summarize(v) for k, v in metrics.items()}}


def _joint(images: torch.Tensor, reference: torch.Tensor, masks: torch.Tensor, d) -> torch.Tensor:
    feature, spatial = element_scores(images, reference, masks, d.feature_scale, d.spatial_temperature, d.max_shift)
    return (feature * spatial).max(dim=1).values
