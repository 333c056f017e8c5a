"""Throughput of SDPO's pieces on this machine (numbers quoted in the README):

    python -m papers.sdpo.benchmark [--config small] [--threads 1]

1. sampling: our DDIM-with-log-prob loop (records x_t, x̂0 and log π at every step) against
   diffusers' own DDIM loop (`DDIMScheduler.step` with η) on the same UNet, batch and steps
   (goal: ≥ 0.9×);
2. training transitions per second of each method's update at the config's sizes.

The UNet is the config's base architecture with random weights and the reward is JPEG
compressibility (no scorer to train): throughput does not depend on either.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

import papers.sdpo
from papers.sdpo.base import new_backbone
from papers.sdpo.config import METHODS, SDPOExperimentConfig
from papers.sdpo.ddim import sample_trajectories
from papers.sdpo.rollout import collect
from papers.sdpo.train import Trainer
from shared.config import load_config


def _time(fn, repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def sampling_rates(cfg: SDPOExperimentConfig, repeats: int) -> tuple[float, float]:
    """(ours, diffusers) denoising steps × images per second."""
    torch.manual_seed(0)
    backbone = new_backbone(cfg).eval()
    unet, scheduler = backbone.unet, backbone.scheduler
    batch, steps, eta = 2 * cfg.sample.pairs_per_epoch, cfg.sample.steps, cfg.sample.eta
    cond = backbone.encode_prompts(["a red circle"] * batch)
    x_T = torch.randn(batch, *backbone.latent_shape)

    def eps(x, t, c):
        return unet(x, t, encoder_hidden_states=c).sample

    def ours():
        sample_trajectories(eps, scheduler, cond, x_T, steps, eta, torch.Generator().manual_seed(0))

    @torch.no_grad()
    def reference():
        generator = torch.Generator().manual_seed(0)
        scheduler.set_timesteps(steps)
        x = x_T
        for t in scheduler.timesteps:
            x = scheduler.step(eps(x, t, cond), t, x, eta=eta, generator=generator).prev_sample

    work = batch * steps
    return work / _time(ours, repeats), work / _time(reference, repeats)


def training_rate(cfg: SDPOExperimentConfig, method: str, repeats: int) -> float:
    """Recorded transitions (pairs × 2 × T) consumed per second by one update pass."""
    torch.manual_seed(0)
    trainer = Trainer(cfg, method, seed=0, backbone=new_backbone(cfg))
    prompts = trainer.prompts[: cfg.sample.pairs_per_epoch]
    with torch.no_grad():
        samples = collect(cfg, method, trainer.policy, prompts, trainer.reward, trainer.tracker,
                          trainer.generator, trainer.accelerator.gather, 0)
    update = trainer.update_rebel if method == "rebel" else trainer.update
    seconds = _time(lambda: update(samples), repeats)
    return 2 * cfg.sample.pairs_per_epoch * cfg.sample.steps / seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="small")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (reproduce runs use train.threads)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(SDPOExperimentConfig, Path(papers.sdpo.__file__).parent / "configs", args.config,
                          [f"data_dir={tmp}", f"runs_dir={tmp}/runs", "wandb=false",
                           "reward.name=jpeg-compressibility", f"train.threads={args.threads}"])
        torch.set_num_threads(args.threads)
        ours, ref = sampling_rates(cfg, args.repeats)
        print(f"sampling ({2 * cfg.sample.pairs_per_epoch} images × {cfg.sample.steps} steps, "
              f"{args.threads} thread(s)): ours {ours:.0f} image-steps/s, diffusers DDIM {ref:.0f} "
              f"image-steps/s, ratio {ours / ref:.2f} (goal ≥ 0.9)")
        for method in METHODS:
            rate = training_rate(cfg, method, args.repeats)
            print(f"training {method}: {rate:.0f} transitions/s")


if __name__ == "__main__":
    main()
