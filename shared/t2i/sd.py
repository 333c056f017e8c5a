"""A Stable-Diffusion-style pipeline (SD-Turbo, SD 1.x/2.x) from a local diffusers directory
behind the `Backbone` contract (VAE latents: `encode_images` encodes, `decode` decodes), and a
tiny random-weight pipeline of the same layout for tests (`write_tiny_sd`). Nothing downloads.

Facts about stabilityai/sd-turbo (its diffusers configs on the Hub):
- scheduler/scheduler_config.json: EulerDiscreteScheduler with the values of `SD_TURBO_SCHEDULER`
  below (epsilon prediction, trailing spacing, steps_offset 1, set_alpha_to_one false).
- unet/config.json: in_channels 4, sample_size 64 (512 px images through the x8 VAE),
  cross_attention_dim 1024 (OpenCLIP-H text encoder), use_linear_projection true.
`load_stable_diffusion` swaps the Euler scheduler for DDIM built from that same config (eta is
chosen by the sampler); with trailing spacing steps_offset is unused, and set_alpha_to_one false
makes the last step land on alpha_bar[0] rather than 1.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDIMScheduler, EulerDiscreteScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from shared import UserError
from shared.t2i.backbone import Backbone

COMPONENTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
SD_TURBO_SCHEDULER = {
    "_class_name": "EulerDiscreteScheduler", "num_train_timesteps": 1000,
    "beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012,
    "prediction_type": "epsilon", "timestep_spacing": "trailing", "steps_offset": 1,
    "set_alpha_to_one": False, "clip_sample": False, "skip_prk_steps": True,
}


class StableDiffusionBackbone(Backbone):
    """UNet (the part a paper trains), frozen VAE and frozen CLIP text encoder."""

    def __init__(self, unet: UNet2DConditionModel, vae: AutoencoderKL,
                 text_encoder: CLIPTextModel, tokenizer: CLIPTokenizer,
                 scheduler: DDIMScheduler) -> None:
        super().__init__()
        self.unet = unet
        self.vae = vae.requires_grad_(False).eval()
        self.text_encoder = text_encoder.requires_grad_(False).eval()
        self.tokenizer = tokenizer
        self.scheduler = scheduler
        size = unet.config.sample_size
        size = (size, size) if isinstance(size, int) else tuple(size)
        self.latent_shape = (unet.config.in_channels, *size)

    def train(self, mode: bool = True) -> StableDiffusionBackbone:
        """Only the UNet ever changes mode; the frozen parts stay in eval."""
        super().train(mode)
        self.vae.eval()
        self.text_encoder.eval()
        return self

    @torch.no_grad()
    def encode_prompts(self, prompts: list[str]) -> torch.Tensor:
        # As StableDiffusionPipeline: pad to the full context, no attention mask.
        ids = self.tokenizer(
            prompts, padding="max_length", max_length=self.tokenizer.model_max_length,
            truncation=True, return_tensors="pt",
        ).input_ids.to(self.text_encoder.device)
        hidden = self.text_encoder(ids).last_hidden_state
        return hidden.to(self.unet.dtype)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        latents = latents.to(self.vae.dtype) / self.vae.config.scaling_factor
        images = self.vae.decode(latents).sample.float()
        return ((images + 1) / 2).clamp(0, 1)

    @torch.no_grad()
    def encode_images(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Float32 latents z = scaling_factor × (a sample of) q(z | 2·image − 1): the
        posterior's mean without `generator`, a draw from it with one (as diffusers' training
        scripts do)."""
        pixels = (images.to(self.vae.device, self.vae.dtype) * 2 - 1)
        posterior = self.vae.encode(pixels).latent_dist
        latents = posterior.mode() if generator is None else posterior.sample(generator)
        return latents.float() * self.vae.config.scaling_factor


def _check_layout(root: Path) -> None:
    if not root.is_dir():
        raise UserError(f"Stable Diffusion directory {root} does not exist")
    missing = [name + "/" for name in COMPONENTS if not (root / name).is_dir()]
    if not (root / "model_index.json").is_file():
        missing.insert(0, "model_index.json")
    # transformers 5 builds a 2-token default CLIPTokenizer from an empty folder without a word.
    tokenizer = root / "tokenizer"
    if tokenizer.is_dir() and not ((tokenizer / "tokenizer.json").is_file() or (
            (tokenizer / "vocab.json").is_file() and (tokenizer / "merges.txt").is_file())):
        missing.append("tokenizer/tokenizer.json (or vocab.json + merges.txt)")
    if missing:
        raise UserError(f"Stable Diffusion directory {root} lacks {', '.join(missing)} "
                        "(expected a diffusers pipeline such as stabilityai/sd-turbo)")


def _weights_variant(folder: Path) -> str | None:
    """The weights variant to load: fp16 when a component ships only *.fp16.* files."""
    names = [p.name for p in folder.iterdir()]
    plain = any(n.endswith((".safetensors", ".bin")) and ".fp16." not in n for n in names)
    return "fp16" if not plain and any(".fp16." in n for n in names) else None


def _load(cls, root: Path, name: str, **kwargs):
    folder = root / name
    if name not in ("tokenizer", "scheduler"):
        kwargs["variant"] = _weights_variant(folder)
    try:
        return cls.from_pretrained(folder, local_files_only=True, **kwargs)
    except (OSError, ValueError, KeyError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"cannot load {name}/ of {root}: {first_line}") from error


def load_stable_diffusion(path: str, device: torch.device | str,
                          dtype: torch.dtype = torch.float32) -> StableDiffusionBackbone:
    """The backbone from a local diffusers pipeline directory (nothing is downloaded).

    `dtype` applies to the frozen VAE and text encoder; the UNet stays float32 so that its
    trained weights (LoRA factors or all of it) and their optimizer state are full precision.
    """
    root = Path(path).expanduser()
    _check_layout(root)
    scheduler_config = _load(DDIMScheduler, root, "scheduler").config
    if scheduler_config.prediction_type != "epsilon":
        raise UserError(f"{root}/scheduler: prediction_type {scheduler_config.prediction_type!r}; "
                        "the ε-prediction samplers and losses here assume 'epsilon'")
    # DDIM with the model's betas, trailing spacing; x0 is never clipped (latents).
    scheduler = DDIMScheduler.from_config(scheduler_config, timestep_spacing="trailing",
                                          clip_sample=False)
    text_encoder = _load(CLIPTextModel, root, "text_encoder", dtype=dtype)
    tokenizer = _load(CLIPTokenizer, root, "tokenizer")
    if tokenizer.model_max_length > text_encoder.config.max_position_embeddings:
        raise UserError(f"{root}/tokenizer: model_max_length {tokenizer.model_max_length} exceeds the "
                        f"text encoder's {text_encoder.config.max_position_embeddings} positions "
                        "(is tokenizer_config.json missing?)")
    backbone = StableDiffusionBackbone(
        unet=_load(UNet2DConditionModel, root, "unet", torch_dtype=torch.float32),
        vae=_load(AutoencoderKL, root, "vae", torch_dtype=dtype),
        text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler,
    )
    return backbone.to(device)


# --- a tiny random-weight pipeline of the same layout (tests; never downloads) ---

TINY_WORDS = ("a", "photo", "of", "the", "red", "green", "blue", "cat", "dog", "square", "circle")


def _tiny_bpe(words: tuple[str, ...]) -> tuple[dict[str, int], list[str]]:
    """A CLIP-style BPE vocabulary: every printable ASCII character (alone and word-final, so any
    text tokenizes without <unk>) plus left-to-right merges that spell each word in `words`."""
    chars = [chr(c) for c in range(33, 127)]
    tokens = ["<|startoftext|>", "<|endoftext|>", *chars, *(c + "</w>" for c in chars)]
    merges: list[str] = []
    for word in words:
        pieces = [*word[:-1], word[-1] + "</w>"]
        while len(pieces) > 1:
            merge = f"{pieces[0]} {pieces[1]}"
            pieces = [pieces[0] + pieces[1], *pieces[2:]]
            if merge not in merges:
                merges.append(merge)
                tokens.append(pieces[0])
    vocab = {token: i for i, token in enumerate(dict.fromkeys(tokens))}
    return vocab, merges


def _tiny_tokenizer(folder: Path, max_length: int) -> CLIPTokenizer:
    vocab, merges = _tiny_bpe(TINY_WORDS)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return CLIPTokenizer.from_pretrained(folder, model_max_length=max_length)


def write_tiny_sd(directory: str | Path, seed: int = 0) -> Path:
    """Save a random-weight SD-style pipeline (8x8x4 latents, 16x16 RGB images) to `directory`."""
    # Imported here: the pipeline module pulls in image processors the backbone never needs.
    from diffusers import StableDiffusionPipeline

    directory = Path(directory)
    tokenizer = _tiny_tokenizer(directory / "tokenizer", max_length=16)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(
            sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
            block_out_channels=(32, 64), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
            attention_head_dim=8, use_linear_projection=True,
        )
        vae = AutoencoderKL(
            in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 32),
            down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
            layers_per_block=1, norm_num_groups=8, sample_size=16, scaling_factor=0.18215,
        )
        text_encoder = CLIPTextModel(CLIPTextConfig(
            vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, max_position_embeddings=tokenizer.model_max_length,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        ))
    # from_config keeps the DDIM-only keys (set_alpha_to_one, ...) as SD-Turbo's file does.
    scheduler = EulerDiscreteScheduler.from_config(SD_TURBO_SCHEDULER)
    StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    ).save_pretrained(directory)
    return directory
