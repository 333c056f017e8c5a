"""The paper's reward models, from local weights only (`reward.path`; nothing is downloaded).

Expected contents of `reward.path`:
- laion-aesthetic: a CLIP ViT-L/14 saved by transformers (`CLIPModel` + its processor or
  image-processor files: config.json, model.safetensors, preprocessor_config.json, ...) and,
  in the same directory, `sac+logos+ava1-l14-linearMSE.pth`, the LAION improved-aesthetic
  predictor head (768 -> 1024 -> 128 -> 64 -> 16 -> 1, keys `layers.{0,2,4,6,7}.*`) applied to
  the L2-normalised image embedding.
- pickscore: the PickScore_v1 `CLIPModel` and its processor (tokenizer + image processor,
  e.g. from CLIP-ViT-H-14) in one directory; score = logit_scale * cos(image, text).
- imagereward: `ImageReward.pt` and `med_config.json` (THUDM/ImageReward); needs
  `pip install image-reward` and bert-base-uncased in the Hugging Face cache.
- hpsv2: `HPS_v2.1_compressed.pt` (or `HPS_v2_compressed.pt`); needs `pip install hpsv2`;
  score = cos(image, text) of the fine-tuned OpenCLIP ViT-H-14.

Images are resized (shortest side, bicubic with antialiasing) and centre-cropped to the
model's input size and normalised with its mean/std, all in torch on the model's device.
"""

from __future__ import annotations

import pickle  # only for its exception type: weights_only loading unpickles nothing else
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from papers.sdpo.config import RewardConfig
from papers.sdpo.rewards import Reward
from shared import UserError

AESTHETIC_HEAD = "sac+logos+ava1-l14-linearMSE.pth"
IMAGEREWARD_FILES = ("ImageReward.pt", "med_config.json")
HPS_FILES = ("HPS_v2.1_compressed.pt", "HPS_v2_compressed.pt")
# OpenAI CLIP's normalisation (ImageReward's BLIP and OpenCLIP ViT-H-14 use it too).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
LAYOUTS = {
    "laion-aesthetic": f"a directory with a transformers CLIPModel + image processor and {AESTHETIC_HEAD}",
    "pickscore": "a directory with the PickScore_v1 CLIPModel and its processor (save_pretrained)",
    "imagereward": f"a directory with {' and '.join(IMAGEREWARD_FILES)} (THUDM/ImageReward)",
    "hpsv2": f"a directory with {HPS_FILES[0]} or {HPS_FILES[1]}",
}


def local_dir(name: str, rc: RewardConfig) -> Path:
    """`reward.path` as an existing directory, or a one-line UserError saying what belongs there."""
    if not rc.path:
        raise UserError(f"reward '{name}' needs local weights: set reward.path to {LAYOUTS[name]}")
    path = Path(rc.path).expanduser()
    if not path.is_dir():
        raise UserError(f"reward.path {path} is not a directory: reward '{name}' needs {LAYOUTS[name]}")
    return path


def clip_pixels(images: torch.Tensor, size: int, mean, std) -> torch.Tensor:
    """(B, 3, size, size) model input from (B, 3, H, W) images in [0, 1]."""
    h, w = images.shape[-2:]
    scale = size / min(h, w)
    new = (max(size, round(h * scale)), max(size, round(w * scale)))
    x = F.interpolate(images, size=new, mode="bicubic", antialias=True, align_corners=False)
    top, left = (new[0] - size) // 2, (new[1] - size) // 2
    x = x[..., top:top + size, left:left + size].clamp(0, 1)
    mean = torch.tensor(mean, dtype=x.dtype, device=x.device)[:, None, None]
    std = torch.tensor(std, dtype=x.dtype, device=x.device)[:, None, None]
    return (x - mean) / std


def _embedding(output) -> torch.Tensor:
    """get_*_features returns a tensor (transformers 4) or an output whose pooler_output is
    the projected embedding (transformers 5)."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def _normalised(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True)


def load_weights(name: str, file: Path) -> dict:
    """A weights file read without unpickling code (`weights_only`); a bad file is a UserError."""
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, ValueError, pickle.UnpicklingError) as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        raise UserError(f"reward '{name}' cannot read {file}: {first}") from None


def _load_clip(name: str, path: Path, device, with_tokenizer: bool):
    from transformers import AutoTokenizer, CLIPImageProcessor, CLIPModel

    try:
        model = CLIPModel.from_pretrained(path, local_files_only=True)
        processor = CLIPImageProcessor.from_pretrained(path, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True) if with_tokenizer else None
    except (OSError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        raise UserError(f"reward '{name}' cannot load {path} ({LAYOUTS[name]}): {first}") from None
    return model.to(device).eval().requires_grad_(False), processor, tokenizer


class AestheticHead(nn.Module):
    """The LAION improved-aesthetic-predictor MLP (linear layers only, as released)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(dim, 1024), nn.Dropout(0.2), nn.Linear(1024, 128), nn.Dropout(0.2),
            nn.Linear(128, 64), nn.Dropout(0.1), nn.Linear(64, 16), nn.Linear(16, 1),
        )

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.layers(embedding)


class LaionAesthetic(Reward):
    name = "laion-aesthetic"

    def __init__(self, rc: RewardConfig, device) -> None:
        super().__init__(rc.batch)
        path = local_dir(self.name, rc)
        head_file = path / AESTHETIC_HEAD
        if not head_file.is_file():
            raise UserError(f"reward 'laion-aesthetic' needs {head_file} (the LAION aesthetic MLP weights)")
        self.clip, processor, _ = _load_clip(self.name, path, device, with_tokenizer=False)
        self.mean, self.std = processor.image_mean, processor.image_std
        self.head = AestheticHead(self.clip.config.projection_dim)
        try:
            self.head.load_state_dict(load_weights(self.name, head_file))
        except (RuntimeError, TypeError) as exc:  # missing keys or shapes of another CLIP
            first = (str(exc).strip().splitlines() or [""])[0]
            raise UserError(f"reward 'laion-aesthetic' cannot use {head_file}: {first}") from None
        self.head.to(device).eval().requires_grad_(False)

    def score(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        device = self.clip.device
        size = self.clip.config.vision_config.image_size
        pixels = clip_pixels(images.to(device), size, self.mean, self.std)
        embedding = _normalised(_embedding(self.clip.get_image_features(pixel_values=pixels)))
        return self.head(embedding)[:, 0]


class PickScore(Reward):
    name = "pickscore"

    def __init__(self, rc: RewardConfig, device) -> None:
        super().__init__(rc.batch)
        path = local_dir(self.name, rc)
        self.clip, processor, self.tokenizer = _load_clip(self.name, path, device, with_tokenizer=True)
        self.mean, self.std = processor.image_mean, processor.image_std

    def score(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        device = self.clip.device
        config = self.clip.config
        pixels = clip_pixels(images.to(device), config.vision_config.image_size, self.mean, self.std)
        tokens = self.tokenizer(
            prompts, padding=True, truncation=True, return_tensors="pt",
            max_length=config.text_config.max_position_embeddings,
        ).to(device)
        image = _normalised(_embedding(self.clip.get_image_features(pixel_values=pixels)))
        text = _normalised(_embedding(self.clip.get_text_features(
            input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])))
        return self.clip.logit_scale.exp() * (image * text).sum(-1)


def _missing_package(name: str, package: str) -> UserError:
    return UserError(f"reward '{name}' needs the {package} package: pip install {package}")


class ImageRewardModel(Reward):
    """ImageReward (BLIP + MLP), scored in batches as its `inference_rank` does per image."""

    name = "imagereward"

    def __init__(self, rc: RewardConfig, device) -> None:
        super().__init__(rc.batch)
        try:
            from ImageReward.ImageReward import ImageReward
        except ImportError:
            raise _missing_package(self.name, "image-reward") from None
        path = local_dir(self.name, rc)
        missing = [f for f in IMAGEREWARD_FILES if not (path / f).is_file()]
        if missing:
            raise UserError(f"reward 'imagereward' needs {', '.join(missing)} in {path}")
        self.model = ImageReward(med_config=str(path / IMAGEREWARD_FILES[1]), device=device)
        self.model.load_state_dict(load_weights(self.name, path / IMAGEREWARD_FILES[0]), strict=False)
        self.model.to(device).eval().requires_grad_(False)
        self.device = torch.device(device)

    def score(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        blip = self.model.blip
        pixels = clip_pixels(images.to(self.device), 224, CLIP_MEAN, CLIP_STD)
        text = blip.tokenizer(prompts, padding="max_length", truncation=True, max_length=35,
                              return_tensors="pt").to(self.device)
        image_embeds = blip.visual_encoder(pixels)
        out = blip.text_encoder(
            text.input_ids, attention_mask=text.attention_mask, encoder_hidden_states=image_embeds,
            encoder_attention_mask=torch.ones(image_embeds.shape[:-1], dtype=torch.long, device=self.device),
            return_dict=True,
        )
        reward = self.model.mlp(out.last_hidden_state[:, 0, :].float())[:, 0]
        return (reward - self.model.mean) / self.model.std


class HPSv2(Reward):
    name = "hpsv2"

    def __init__(self, rc: RewardConfig, device) -> None:
        super().__init__(rc.batch)
        try:
            from hpsv2.src.open_clip import create_model_and_transforms, get_tokenizer
        except ImportError:
            raise _missing_package(self.name, "hpsv2") from None
        path = local_dir(self.name, rc)
        found = [path / f for f in HPS_FILES if (path / f).is_file()]
        if not found:
            raise UserError(f"reward 'hpsv2' needs {HPS_FILES[0]} or {HPS_FILES[1]} in {path}")
        self.model = create_model_and_transforms("ViT-H-14", pretrained=None, precision="fp32",
                                                 device=str(device))[0]
        self.model.load_state_dict(load_weights(self.name, found[0])["state_dict"])
        self.model.to(device).eval().requires_grad_(False)
        self.tokenizer = get_tokenizer("ViT-H-14")
        self.device = torch.device(device)

    def score(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        pixels = clip_pixels(images.to(self.device), 224, CLIP_MEAN, CLIP_STD)
        image = self.model.encode_image(pixels, normalize=True)
        text = self.model.encode_text(self.tokenizer(prompts).to(self.device), normalize=True)
        return (image * text).sum(-1)


PRETRAINED = {
    "laion-aesthetic": LaionAesthetic, "pickscore": PickScore,
    "imagereward": ImageRewardModel, "hpsv2": HPSv2,
}


def build_pretrained(name: str, rc: RewardConfig, device) -> Reward:
    if name not in PRETRAINED:
        raise UserError(f"unknown reward '{name}' (one of: {', '.join(PRETRAINED)})")
    return PRETRAINED[name](rc, device)
