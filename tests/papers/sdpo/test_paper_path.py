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


def test_chunked_vae_decoding_gives_the_whole_batch_rewards(tmp_path, tiny_sd):
    from papers.sdpo.rewards import build_reward
    from papers.sdpo.rollout import decode_and_score
    from papers.sdpo.train import load_backbone

    cfg = paper_config(tmp_path, tiny_sd)
    backbone = load_backbone(cfg, torch.device("cpu"))
    reward = build_reward(cfg, "cpu")
    latents = torch.randn(7, *backbone.latent_shape, generator=torch.Generator().manual_seed(0))
    prompts = [f"a photo of a {w}" for w in ("cat", "dog", "cat", "dog", "cat", "dog", "cat")]
    calls = []

    def decode(x):
        calls.append(len(x))
        return backbone.decode(x)

    whole = decode_and_score(decode, reward, latents, prompts, chunk=7)
    chunked = decode_and_score(decode, reward, latents, prompts, chunk=3)
    assert calls == [7, 3, 3, 1]  # the VAE never sees more than `chunk` latents at once
    torch.testing.assert_close(chunked, whole, rtol=1e-5, atol=1e-5)


def test_a_pipeline_with_set_alpha_to_one_is_corrected(tmp_path, tiny_sd, capsys):
    import json
    import shutil

    from papers.sdpo.train import load_backbone

    copy = tmp_path / "sd"
    shutil.copytree(tiny_sd, copy)
    path = copy / "scheduler" / "scheduler_config.json"
    config = json.loads(path.read_text())
    path.write_text(json.dumps({**config, "set_alpha_to_one": True}))
    backbone = load_backbone(paper_config(tmp_path, copy), torch.device("cpu"))
    assert not backbone.scheduler.config.set_alpha_to_one
    assert float(backbone.scheduler.final_alpha_cumprod) == pytest.approx(
        float(backbone.scheduler.alphas_cumprod[0]))
    assert "set_alpha_to_one" in capsys.readouterr().err


def test_gradient_checkpointing_and_tf32_options(tmp_path, tiny_sd):
    cfg = paper_config(tmp_path, tiny_sd)
    assert cfg.train.gradient_checkpointing and cfg.train.tf32 and cfg.sample.batch == 16
    trainer = Trainer(paper_config(tmp_path, tiny_sd, "sample.batch=1"), "sdpo", seed=0)
    assert trainer.policy.unet.is_gradient_checkpointing
    logs = trainer.run_epoch()
    assert torch.isfinite(torch.tensor(logs["loss"])) and 0 <= logs["clipfrac"] <= 1
