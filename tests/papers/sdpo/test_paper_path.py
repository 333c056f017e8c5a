"""paper.yaml's code path on CPU: a tiny random-weight Stable-Diffusion-style pipeline built
from configs (nothing downloads) goes through load → LoRA via peft → one epoch of every
method (sample 2-step trajectories, decode with the VAE, score, update)."""

from pathlib import Path

import pytest
import torch

import papers.sdpo
from papers.sdpo.config import SDPOExperimentConfig
from papers.sdpo.prompts import ANIMALS, prompt_set
from papers.sdpo.train import Trainer
from shared import UserError
from shared.config import load_config
from shared.t2i.sd import write_tiny_sd

PAPER_DIR = Path(papers.sdpo.__file__).parent


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory):
    return write_tiny_sd(tmp_path_factory.mktemp("tiny-sd") / "sd")


def paper_config(tmp_path, sd_path, *extra):
    return load_config(SDPOExperimentConfig, PAPER_DIR / "configs", "paper", [
        f"policy.path={sd_path}", f"runs_dir={tmp_path}/runs", f"data_dir={tmp_path}/data",
        "wandb=false", "device=cpu", "precision=no", "train.threads=1",
        # the paper's structure at toy sizes: 2 steps, 2 pairs, batch 1 pair, accumulation 2
        "sample.steps=2", "sample.pairs_per_epoch=2", "train.batch_size=1", "train.grad_accum=2",
        "reward.name=jpeg-compressibility", *extra])


def test_paper_config_loads_with_the_brief_settings():
    cfg = load_config(SDPOExperimentConfig, PAPER_DIR / "configs", "paper", [])
    assert cfg.policy.model == "stable-diffusion" and cfg.policy.lora_rank == 4
    assert cfg.sample.steps == 50 and cfg.sample.eta == 1.0 and cfg.reward.name == "laion-aesthetic"
    assert (cfg.train.lr, cfg.train.batch_size, cfg.train.grad_accum, cfg.train.epochs) == (1e-4, 2, 8, 100)
    assert (cfg.sdpo.gamma, cfg.sdpo.lam, cfg.sdpo.clip_range, cfg.sdpo.adv_clip) == (0.99, 0.99, 1e-4, 5.0)
    assert (cfg.sdpo.buffer_size, cfg.sdpo.min_count) == (32, 16)


@pytest.mark.parametrize("method", ["sdpo", "ddpo", "d3po", "rebel"])
def test_one_paper_path_epoch_on_a_tiny_stable_diffusion(tmp_path, tiny_sd, method):
    trainer = Trainer(paper_config(tmp_path, tiny_sd), method, seed=0)
    unet = trainer.policy.unet
    assert unet.config.in_channels == 4 and trainer.policy.backbone.latent_shape == (4, 8, 8)
    lora = {n: p.detach().clone() for n, p in unet.named_parameters() if p.requires_grad}
    assert lora and all("lora" in n for n in lora)
    assert not any(p.requires_grad for p in trainer.policy.backbone.vae.parameters())
    logs = trainer.run_epoch()
    assert logs["samples"] == 4 and torch.isfinite(torch.tensor(logs["loss"]))
    moved = [n for n, p in unet.named_parameters() if p.requires_grad and not torch.equal(p, lora[n])]
    assert moved  # one optimiser step per 2 micro-batches of the 2 pairs × 2 steps


def test_animal_prompts_split_and_missing_sd_path(tmp_path):
    train, held = prompt_set("animals", "train"), prompt_set("animals", "heldout")
    assert len(train) + len(held) == len(ANIMALS) == 45 and not set(train) & set(held)
    with pytest.raises(UserError):
        Trainer(paper_config(tmp_path, tmp_path / "nowhere"), "sdpo", seed=0)
