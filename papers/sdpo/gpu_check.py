"""The GPU check of SDPO's `paper` config path: SD-Turbo-sized models at their real sizes
(random weights built from configs: nothing is downloaded), LoRA rank 4 through peft, fp16
autocast, T = 50, 32 pairs per epoch, micro-batches of 2 pairs, accumulation 8.

    python -m papers.sdpo.gpu_check --size paper --steps 200   # one GPU, about a minute (not yet run)
    python -m papers.sdpo.gpu_check --size tiny --steps 3      # CPU, seconds (tested)

Two measured paths, both the trainer's own code (`Trainer.sample_epoch`, `Trainer.micro_step`):
- `sdpo train micro-step`: log π of one micro-batch's transitions (2 pairs = 4 latents) under
  the LoRA UNet, the SDPO loss, backward, and an AdamW step every 8 calls;
- `sdpo sample epoch`: one epoch's sampling (64 trajectories × 50 DDIM steps from one x_T per
  pair), decoding the 3 queried x̂0 per trajectory through the VAE and scoring them.
The reward is JPEG compressibility (the paper's LAION aesthetic needs local weights); FLOPs per
step are counted with torch.utils.flop_counter.FlopCounterMode, MFU against the dense fp16 peak.

Sizes (`paper`): the UNet of SD 2.1 / SD-Turbo (widths 320/640/1280/1280, cross-attention 1024,
head dims 5/10/20/20, 64×64×4 latents), the OpenCLIP-H text transformer (23 layers, width 1024,
77 tokens) and the SD VAE (widths 128/256/512/512); `tiny`: the test pipeline's sizes.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch

PAPER_DIR = Path(__file__).parent


def _char_tokenizer(folder: Path, max_length: int):
    """A CLIP tokenizer over single characters (every text tokenizes, no merges)."""
    from transformers import CLIPTokenizer

    chars = [chr(c) for c in range(33, 127)]
    tokens = ["<|startoftext|>", "<|endoftext|>", *chars, *(c + "</w>" for c in chars)]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer.from_pretrained(folder, model_max_length=max_length)


def build_backbone(size: str, device: torch.device, frozen_dtype: torch.dtype, folder: Path):
    """A StableDiffusionBackbone with random weights at the `paper` or `tiny` sizes."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from shared.t2i.sd import SD_TURBO_SCHEDULER, StableDiffusionBackbone

    paper = size == "paper"
    tokenizer = _char_tokenizer(folder / "tokenizer", 77 if paper else 16)
    torch.manual_seed(0)
    with torch.device(device):
        if paper:
            unet = UNet2DConditionModel(
                sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
                block_out_channels=(320, 640, 1280, 1280),
                down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
                cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20), use_linear_projection=True)
            vae = AutoencoderKL(
                in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(128, 256, 512, 512),
                down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                layers_per_block=2, norm_num_groups=32, sample_size=512, scaling_factor=0.18215)
            text = dict(vocab_size=49408, hidden_size=1024, intermediate_size=4096, num_hidden_layers=23,
                        num_attention_heads=16, hidden_act="gelu", max_position_embeddings=77,
                        projection_dim=1024)
        else:
            unet = UNet2DConditionModel(
                sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
                block_out_channels=(32, 64), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
                attention_head_dim=8, use_linear_projection=True)
            vae = AutoencoderKL(
                in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 32),
                down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                layers_per_block=1, norm_num_groups=8, sample_size=16, scaling_factor=0.18215)
            text = dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                        num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=16)
        text_encoder = CLIPTextModel(CLIPTextConfig(
            **text, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id))
    scheduler = DDIMScheduler.from_config(SD_TURBO_SCHEDULER, timestep_spacing="trailing", clip_sample=False)
    if frozen_dtype != torch.float32:  # the frozen parts in the run's precision, as load_stable_diffusion
        vae, text_encoder = vae.to(frozen_dtype), text_encoder.to(frozen_dtype)
    return StableDiffusionBackbone(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                                   scheduler=scheduler)


def config(size: str, device: torch.device):
    """configs/paper.yaml with a local-free reward, and toy shapes for `tiny`."""
    from papers.sdpo.config import SDPOExperimentConfig
    from shared.config import load_config

    overrides = ["wandb=false", f"device={device}", "reward.name=jpeg-compressibility"]
    if size == "tiny" or device.type == "cpu":
        overrides += ["precision=no", "train.threads=1"]
    if size == "tiny":  # paper.yaml's structure at toy sizes (as tests/papers/sdpo/test_paper_path.py)
        overrides += ["sample.steps=2", "sample.pairs_per_epoch=2", "train.batch_size=1",
                      "train.grad_accum=2"]
    return load_config(SDPOExperimentConfig, PAPER_DIR / "configs", "paper", overrides)


def run(size: str, steps: int, device: torch.device) -> list[dict]:
    from torch.utils.flop_counter import FlopCounterMode

    from papers.sdpo.train import Trainer
    from shared.device import resolve_dtype
    from shared.gpu_check import measure

    cfg = config(size, device)
    frozen = resolve_dtype(cfg.precision, device) if cfg.precision != "no" else torch.float32
    with tempfile.TemporaryDirectory() as tmp:
        backbone = build_backbone(size, device, frozen, Path(tmp))
    trainer = Trainer(cfg, "sdpo", seed=0, backbone=backbone)
    params = sum(p.numel() for p in trainer.policy.unet.parameters())
    trainable = sum(p.numel() for p in trainer.policy.parameters())
    shape = {"unet_params": params, "trainable_params": trainable, "T": cfg.sample.steps,
             "pairs_per_epoch": cfg.sample.pairs_per_epoch, "batch_pairs": cfg.train.batch_size,
             "grad_accum": cfg.train.grad_accum, "precision": cfg.precision}
    dtype = "fp32" if cfg.precision == "no" else "bf16"  # the fp16 dense peak equals bf16's

    with FlopCounterMode(display=False) as flops:  # also the warm-up of the sampling path
        samples = trainer.sample_epoch()
    sample_flops = flops.get_total_flops()
    order, perms = trainer._orders(samples.pairs, cfg.sample.steps)
    batches = samples.pairs // cfg.train.batch_size
    counter = {"k": 0}

    def train_step() -> None:
        k = counter["k"]
        counter["k"] += 1
        j, b = (k // batches) % cfg.sample.steps, k % batches
        idx = order[b * cfg.train.batch_size:(b + 1) * cfg.train.batch_size]
        trainer.micro_step(samples, idx, perms[idx, j])

    with FlopCounterMode(display=False) as flops:
        train_step()
    rows = [measure(train_step, steps=steps, device=device, flops_per_step=flops.get_total_flops(),
                    dtype=dtype, name="sdpo train micro-step", **shape)]
    rows.append(measure(trainer.sample_epoch, steps=max(1, steps // 200), warmup=0, device=device,
                        flops_per_step=sample_flops, dtype=dtype, name="sdpo sample epoch", **shape))
    return rows


def main(argv: list[str] | None = None) -> int:
    from shared.gpu_check import paper_main

    return paper_main("sdpo", run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
