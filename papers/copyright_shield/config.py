"""CopyrightShield configuration: one documented field per line. Scales live in configs/*.yaml.

Sections: `data` (targets, clean data, or a user folder at paper scale), `text` + `model`
(the tiny text-to-image model, or a local SD v1.4), `base` (its clean pre-training),
`attack` (SilentBadDiffusion), `similarity`, `detection`, `defence`, `train` (one fine-tune
per run name × seed), `eval` (FAE / CIR), `inversion`.

Run names (`run=` for train / eval; `train.runs` for reproduce):
- attack: the poisoned mix, no defence;
- released / differentiable / hinge: the poisoned mix with CopyrightShield's L_protect as
  released (`.item()`, no gradient), its differentiable version, or a hinge;
- flip / rotate / unlinked: the poisons mirrored, rotated, or with captions of clean images;
- clean: the clean entries only (no poisons), the no-copy control.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.config import Common, check_subset, choice, nonempty, num, nums

DEFENCES = ("released", "differentiable", "hinge")
GEOMETRY_RUNS = ("flip", "rotate", "unlinked")
RUNS = ("attack", *DEFENCES, *GEOMETRY_RUNS, "clean")


@dataclass
class DataConfig:
    """Procedural targets and clean compositions (or a user folder at paper scale)."""

    source: str = choice("procedural", "procedural", "folder")  # folder = user-supplied images (paper path)
    path: str = ""  # folder with targets/ and clean/ (README: layout), for source=folder
    image_size: int = num(16, ge=8)  # pixels per side (16 or 24 on CPU)
    targets: int = num(3, ge=1)  # copyrighted targets attacked at once
    elements: int = num(3, ge=2, le=4)  # elements per target (k)
    targets_seed: int = num(0, ge=0)  # seed of the targets, the demonstration and the held-out target


@dataclass
class TextConfig:
    """The small CLIP text encoder over the scenes' vocabulary (shared.t2i.text)."""

    hidden: int = num(64, ge=1)  # hidden size = the UNet's cross-attention width
    layers: int = num(2, ge=1)  # transformer layers
    heads: int = num(4, ge=1)  # attention heads
    max_length: int = num(28, ge=8)  # tokens per caption with [BOS]/[EOS] (a 4-element trigger has 24)


@dataclass
class ModelConfig:
    """Which text-to-image model is fine-tuned."""

    name: str = choice("tiny", "tiny", "stable-diffusion")  # tiny = the cached base below; stable-diffusion = local SD v1.4
    path: str = ""  # local diffusers directory of SD v1.4 for name=stable-diffusion
    block_out_channels: list[int] = nums([32, 64], ge=1)  # UNet widths per resolution
    layers_per_block: int = num(1, ge=1)  # ResNet layers per UNet block
    attention_head_dim: int = num(8, ge=1)  # UNet attention head width
    cross_attention_levels: int = num(1, ge=1)  # tiny model: resolutions with cross-attention, from the lowest (1 = lowest only; len(block_out_channels) = every one, for composing the trigger's elements in place)
    skip: bool = False  # tiny model: ε̂ = √ᾱ·F + √(1−ᾱ)·x_t [recon] (model.py); false = the plain ε-UNet of the recorded run
    beta_schedule: str = choice("scaled_linear", "scaled_linear", "linear")  # SD's schedule (linear 1e-4..0.02 saturated our few-step samples)
    beta_start: float = num(0.00085, gt=0, lt=1)  # first beta (SD's)
    beta_end: float = num(0.012, gt=0, lt=1)  # last beta (SD's)


@dataclass
class BaseConfig:
    """Clean pre-training of the tiny model (plays SD's pre-trained weights), cached once."""

    images: int = num(4000, ge=1)  # clean compositions of pre-training (no target element kind)
    steps: int = num(1500, ge=1)  # ε-MSE steps
    batch: int = num(32, ge=1)  # images per step
    lr: float = num(1e-3, gt=0)  # AdamW learning rate (warm-up + cosine)
    threads: int = num(1, ge=1)  # torch threads while building
    seed: int = num(0, ge=0)  # seed of the base model and its data


@dataclass
class AttackConfig:
    """SilentBadDiffusion (attack.py)."""

    poisons_per_target: int = num(10, ge=1)  # distinct poisons per target (elements round-robin)
    repeats: int = num(2, ge=1)  # each poison enters the mix this many times
    ratio: float = num(0.1, gt=0, lt=1)  # poison entries / all entries (code default 0.1; paper headline 0.002)
    stealth_threshold: float = num(0.5, gt=-1, le=1)  # a poison with similarity ≥ this to its target is redrawn
    demonstration: bool = True  # one clean entry is another scene captioned with its full phrase list


@dataclass
class SimilarityConfig:
    """Copy detection (SSCD's role)."""

    name: str = choice("pixel-cosine", "pixel-cosine", "sscd")  # pixel-cosine [recon]: fixed blurred centred-pixel cosine
    sscd_path: str = ""  # local SSCD TorchScript file for name=sscd
    threshold: float = num(0.5, gt=-1, lt=1)  # infringement threshold (SSCD's 0.5)


@dataclass
class DetectionConfig:
    """CopyrightShield v1 poison detection [recon] (detection.py)."""

    feature_scale: float = num(0.25, gt=0)  # RMS colour error at which the feature score halves
    spatial_temperature: float = num(0.02, gt=0)  # softmax temperature of the location posterior (per-pixel MSE)
    max_shift: int = num(4, ge=1)  # largest shift (pixels) the element is searched over
    calibration_quantile: float = num(0.99, gt=0, lt=1)  # threshold = this quantile of the held-out target's scores


@dataclass
class DefenceConfig:
    """L_protect on the detected poisons (protect.py)."""

    lam: float = num(0.05, ge=0)  # λ of loss + λ·L_protect (paper 0.05)
    margin: float = num(0.5, gt=0)  # hinge: push the detected poisons' ε-MSE up to this


@dataclass
class TrainConfig:
    """One ordinary ε-MSE fine-tune per (run name, seed); no random flip."""

    runs: list[str] = nonempty(list(RUNS))  # run names reproduce trains (config.py docstring)
    epochs: int = num(20, ge=1)  # passes over the mix
    batch_size: int = num(32, ge=1)  # entries per step
    lr: float = num(1e-3, gt=0)  # AdamW learning rate (warm-up + cosine over the run)
    train_text_encoder: bool = True  # fine-tune the text encoder too (SD: UNet only)
    caption_dropout: float = num(0.1, ge=0, lt=1)  # share of empty captions (base data; fine-tune draws), for guidance
    threads: int = num(1, ge=1)  # torch threads per run
    keep_checkpoints: int = num(2, ge=1)  # newest checkpoints kept


@dataclass
class EvalConfig:
    """FAE: 9 trigger generations twice per epoch; CIR: 100 at the end."""

    fae_generations: int = num(9, ge=1)  # trigger generations per evaluation, per target
    evals_per_epoch: int = num(2, ge=1)  # evaluations per epoch
    cir_generations: int = num(100, ge=1)  # final trigger generations per target
    sample_steps: int = num(10, ge=1, le=1000)  # DDIM steps (η = 0)
    guidance: float = num(3.0, ge=1)  # classifier-free guidance weight (1 = none; SilentBadDiffusion: 7.5 on SD)
    seed: int = num(10_000, ge=0)  # noise and phrase-order seed of evaluation (never used in training)


@dataclass
class InversionConfig:
    """Copyright feature inversion [recon]: textual inversion of one pseudo-token."""

    steps: int = num(300, ge=1)  # optimisation steps of v*
    lr: float = num(5e-2, gt=0)  # Adam learning rate of v*
    batch: int = num(16, ge=1)  # noise draws per step
    generations: int = num(16, ge=1)  # generations from "an image with v*" that are scored


@dataclass
class CopyrightShieldConfig(Common):
    data: DataConfig = field(default_factory=DataConfig)
    text: TextConfig = field(default_factory=TextConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    base: BaseConfig = field(default_factory=BaseConfig)
    attack: AttackConfig = field(default_factory=AttackConfig)
    similarity: SimilarityConfig = field(default_factory=SimilarityConfig)
    detection: DetectionConfig = field(default_factory=DetectionConfig)
    defence: DefenceConfig = field(default_factory=DefenceConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    inversion: InversionConfig = field(default_factory=InversionConfig)
    run: str = choice("attack", *RUNS)  # the run name `train` / `eval` / `invert` use
    parallel_runs: int = num(2, ge=1)  # fine-tunes reproduce runs side by side (processes)

    def __post_init__(self) -> None:
        """Cross-field rules (load_config turns each ValueError into one line)."""
        check_subset("train.runs", self.train.runs, RUNS)
        if isinstance(self.text.hidden, int) and isinstance(self.text.heads, int) \
                and self.text.heads >= 1 and self.text.hidden % self.text.heads:
            raise ValueError(f"text.hidden={self.text.hidden} must be a multiple of text.heads={self.text.heads}")
        if self.data.source == "folder" and not self.data.path:
            raise ValueError("data.source=folder needs data.path (a folder with targets/ and clean/)")
        if self.model.name == "stable-diffusion" and not self.model.path:
            raise ValueError("model.name=stable-diffusion needs model.path (a local SD v1.4 diffusers directory)")
        if self.similarity.name == "sscd" and not self.similarity.sscd_path:
            raise ValueError("similarity.name=sscd needs similarity.sscd_path (a local TorchScript file)")
        widths = self.model.block_out_channels
        if not widths or any(not isinstance(w, int) or w < 1 for w in widths):
            return  # the range check reports it
        levels = self.model.cross_attention_levels
        if isinstance(levels, int) and levels > len(widths):
            raise ValueError(f"model.cross_attention_levels={levels} must be at most the number of "
                             f"resolutions, len(model.block_out_channels)={len(widths)}")
        down = 2 ** (len(widths) - 1)
        if self.model.name == "tiny" and isinstance(self.data.image_size, int) and self.data.image_size % down:
            raise ValueError(f"data.image_size={self.data.image_size} must be a multiple of {down} "
                             f"(the UNet with model.block_out_channels={widths} downsamples it by {down})")
