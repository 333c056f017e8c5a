"""SDPO configuration: one documented field per line. Scales live in configs/*.yaml.

Sections: `data` (procedural text-image data), `text` + `base` (the tiny few-step model that
plays SD-Turbo's role), `policy` (which model is fine-tuned and how: the tiny one or a local
SD-Turbo, LoRA or full), `reward`, `sample` (trajectory sampling), `sdpo` (the method),
`baselines`, `train`, `eval`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from shared.config import Common, check_subset, choice, nonempty, num, nums

METHODS = ("sdpo", "ddpo", "d3po", "rebel")
# Ablations of SDPO (brief: sparse vs dense, oracle vs interpolated, gamma 0, lambda 1, no shuffle).
ABLATIONS = ("sparse", "oracle", "gamma0", "lambda1", "no-shuffle")
REWARDS = (
    "aesthetic", "jpeg-compressibility", "jpeg-incompressibility", "match",
    "laion-aesthetic", "pickscore", "imagereward", "hpsv2",
)


@dataclass
class DataConfig:
    """Procedural shape/colour images with captions from a small grammar."""

    image_size: int = num(16, ge=4)  # pixels per side (16 or 32)
    images: int = num(20000, ge=1)  # training images of the base model
    seed: int = num(0, ge=0)  # data-generation seed (fixed across training seeds)


@dataclass
class TextConfig:
    """A small CLIP text encoder built from a transformers config, word-level tokenizer built locally."""

    hidden: int = num(64, ge=1)  # hidden size = cross-attention dim of the UNet
    layers: int = num(2, ge=1)  # transformer layers
    heads: int = num(4, ge=1)  # attention heads
    max_length: int = num(16, ge=3)  # tokens per caption with [BOS]/[EOS] (padded; the longest caption has 13)


@dataclass
class BaseConfig:
    """The base few-step model (SD-Turbo's role): DDPM pre-training, then distillation."""

    block_out_channels: list[int] = nums([16, 32], ge=1)  # UNet widths per resolution ([32, 64] costs 2x per step)
    layers_per_block: int = num(1, ge=1)  # ResNet layers per UNet block
    attention_head_dim: int = num(8, ge=1)  # UNet attention head width
    prediction: str = choice("v_prediction", "v_prediction", "epsilon")  # what the UNet's raw output is (v is wrapped to ε, param.py); epsilon = the earlier base, noise at 1 step
    beta_schedule: str = choice("scaled_linear", "scaled_linear", "linear")  # as Stable Diffusion's config
    beta_start: float = num(0.00085, gt=0, lt=1)  # first beta
    beta_end: float = num(0.012, gt=0, lt=1)  # last beta
    pretrain_steps: int = num(1600, ge=1)  # DDPM training steps (epsilon objective; ~0.13 s each on 1 busy core, whole build 6.3 min)
    pretrain_batch: int = num(32, ge=1)  # images per pre-training step (32 x 2400 beat 64 x 1200)
    pretrain_lr: float = num(1e-3, gt=0)  # AdamW learning rate of pre-training
    distill_teacher_steps: int = num(16, ge=8, le=1000)  # DDIM steps of the teacher trajectories
    distill_samples: int = num(2048, ge=1)  # teacher trajectories recorded for distillation
    distill_steps: int = num(1200, ge=1)  # student training steps (1-step colour match 0.59; pretrain 2000 + distill 1600: 0.66 in 8.3 min)
    distill_batch: int = num(32, ge=1)  # student batch
    distill_lr: float = num(1e-3, gt=0)  # AdamW learning rate of distillation (1e-3 beat 3e-4 at 1-step)
    threads: int = num(1, ge=1)  # torch threads while building (2 is ~1.7x faster on an idle 2-core machine, 2.5-60x slower on a busy one)
    seed: int = num(0, ge=0)  # seed of the base model (shared by every RL run)


@dataclass
class PolicyConfig:
    """Which denoiser is fine-tuned, and which of its weights."""

    model: str = choice("tiny", "tiny", "stable-diffusion")  # tiny = the base model above; stable-diffusion = a local SD-Turbo
    path: str = ""  # local diffusers directory of SD-Turbo when model = stable-diffusion
    lora_rank: int = num(4, ge=0)  # LoRA rank through peft (unet.add_adapter); 0 = fine-tune every UNet weight
    lora_alpha: float = num(4.0, gt=0)  # LoRA alpha
    lora_targets: list[str] = nonempty(["to_q", "to_k", "to_v", "to_out.0"])  # modules that get adapters


@dataclass
class RewardConfig:
    """The reward on decoded images; the real reward models need local weights under `path`."""

    name: str = choice("aesthetic", *REWARDS)  # aesthetic = the small frozen scorer (stand-in for LAION aesthetic)
    path: str = ""  # local weights of laion-aesthetic / pickscore / imagereward / hpsv2
    batch: int = num(64, ge=1)  # images per reward call
    scorer_steps: int = num(1500, ge=1)  # training steps of the small frozen scorers (aesthetic, match), cached once
    scorer_batch: int = num(128, ge=1)  # renders per scorer training step
    scorer_pool: int = num(16384, ge=1)  # varied procedural renders the scorers train on (drawn once)
    scorer_lr: float = num(2e-3, gt=0)  # AdamW learning rate of the scorers (cosine decay to 0)
    scorer_seed: int = num(0, ge=0)  # seed of the scorers' weights and training renders (held-out renders: seed + 1)
    scorer_threads: int = num(1, ge=1)  # torch threads while a scorer trains (1 is fastest on a busy 2-core machine)


@dataclass
class SampleConfig:
    """Trajectory sampling: DDIM, trailing spacing, eta > 0, no CFG."""

    steps: int = num(10, ge=2, le=1000)  # T, denoising steps per training trajectory (paper: 50)
    eta: float = num(1.0, gt=0, le=1)  # DDIM eta of the policy
    batch: int = num(0, ge=0)  # trajectories per sampling call (0 = all at once; the paper config samples in chunks)
    pairs_per_epoch: int = num(8, ge=1)  # prompts per epoch (per process); each gives a pair of trajectories from one x_T
    prompts: str = "shapes"  # prompt set: shapes (procedural), animals (paper scale) or a text file, one prompt per line
    t_prev: str = choice("schedule", "schedule", "released")  # released = t - 1000 // T (wrong for trailing spacing when T does not divide 1000)


@dataclass
class SDPOConfig:
    """SDPO (brief, Algorithm): dense rewards, returns, per-(prompt, step) normalisation, loss."""

    dense: str = choice("interpolate", "interpolate", "oracle", "sparse")  # three-query anchor interpolation; reward at every step; final reward only
    features: str = choice("centred", "centred", "raw")  # what the cosines compare: x̂0 minus its per-channel mean (not dominated by the background); raw = released code
    similarity: str = choice("clamped", "clamped", "raw")  # cosine weights clamped at 0 (convex); raw = released code
    gamma: float = num(0.99, ge=0, le=1)  # discount of the returns G_i = R_i + gamma G_{i+1}
    lam: float = num(0.99, ge=0, le=1)  # step weight w_i = lam^i / log_scale
    log_scale: float = num(1.0, gt=0)  # eta_scale of the step weight
    clip_range: float = num(1e-4, gt=0)  # proximal clip of log pi_theta around log pi_old
    adv_clip: float = num(5.0, gt=0)  # advantages clipped to +-adv_clip
    buffer_size: int = num(32, ge=1)  # returns kept per (prompt, step)
    min_count: int = num(16, ge=1)  # batch statistics until a buffer holds this many
    shuffle: bool = True  # permute each pair's T transitions independently


@dataclass
class BaselineConfig:
    """DDPO, D3PO and REBEL/PRDP on the same sampling and log-prob machinery."""

    ddpo_clip: float = num(1e-4, gt=0)  # PPO clip range of DDPO's per-step ratio
    d3po_beta: float = num(0.1, gt=0)  # beta of D3PO's DPO loss
    d3po_ratio_clip: float = num(0.1, gt=0, lt=1)  # D3PO clamps pi_theta/pi_ref to 1 +- this
    rebel_eta: float = num(1.0, gt=0)  # REBEL's 1/eta scale of the summed log-ratio gap


@dataclass
class TrainConfig:
    """One run per (method or ablation, seed)."""

    methods: list[str] = nonempty(list(METHODS))  # methods reproduce runs (non-empty)
    ablations: list[str] = field(default_factory=lambda: list(ABLATIONS))  # SDPO ablations reproduce runs ([] = none)
    ablation_seeds: int = num(3, ge=1)  # seeds per ablation (the methods use num_seeds)
    epochs: int = num(40, ge=1)  # sampling + training rounds
    batch_size: int = num(4, ge=1)  # pairs per micro-batch
    grad_accum: int = num(1, ge=1)  # micro-batches per optimizer step
    inner_epochs: int = num(1, ge=1)  # passes over an epoch's samples
    lr: float = num(3e-4, gt=0)  # AdamW learning rate
    weight_decay: float = num(1e-4, ge=0)  # AdamW weight decay
    grad_clip: float = num(1.0, gt=0)  # gradient-norm clip
    threads: int = num(1, ge=1)  # torch threads per run (reproduce runs several side by side)
    gradient_checkpointing: bool = False  # recompute UNet activations in backward (paper scale: less memory, same numbers)
    tf32: bool = False  # allow TF32 matmuls/convolutions on CUDA (paper scale; no effect on CPU)
    checkpoint_every: int = num(10, ge=1)  # epochs between checkpoints
    sweep_lrs: list[float] = nums([], gt=0, nonempty=False)  # reproduce: learning rates every method tries ([] = no sweep: train.lr)
    sweep_clips: list[float] = nums([], gt=0, lt=1, nonempty=False)  # reproduce: trust-region values of SDPO, DDPO (clip) and D3PO (ratio clamp) ([] = their configured values)
    sweep_seed: int = num(100, ge=0)  # seed of the sweep runs (scored on the validation prompts; the final runs use the seeds)
    keep_checkpoints: int = num(2, ge=1)  # newest checkpoints kept


@dataclass
class EvalConfig:
    """Mean reward at several step budgets on held-out prompts and noise seeds."""

    steps: list[int] = nums([1, 2, 4, 8], ge=1, le=1000)  # sampling budgets
    split: str = choice("test", "test", "val", "heldout")  # held-out prompts scored: test / val = alternate halves of the held-out set (the sweep chooses on val); heldout = all of it
    every: int = num(10, ge=1)  # epochs between evaluations (and at 0 and the end)
    images_per_prompt: int = num(4, ge=1)  # held-out noise seeds per held-out prompt
    eta: float = num(1.0, ge=0, le=1)  # DDIM eta at evaluation
    seed: int = num(10_000, ge=0)  # noise seed of evaluation (never used in training)
    grid_prompts: int = num(8, ge=1)  # prompts in the before/after PNG grids


@dataclass
class SDPOExperimentConfig(Common):
    data: DataConfig = field(default_factory=DataConfig)
    text: TextConfig = field(default_factory=TextConfig)
    base: BaseConfig = field(default_factory=BaseConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    sdpo: SDPOConfig = field(default_factory=SDPOConfig)
    baselines: BaselineConfig = field(default_factory=BaselineConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    parallel_runs: int = num(2, ge=1)  # training runs reproduce executes side by side (processes)
    method: str = choice("sdpo", *METHODS)  # the method `train` / `eval` run
    ablation: str = ""  # an SDPO ablation `train` / `eval` run ("" = none)

    def __post_init__(self) -> None:
        """Cross-field rules (load_config turns each ValueError into one line). A rule is
        checked only when its fields are in range, so an out-of-range value is reported as
        such by the range check that follows."""
        check_subset("train.methods", self.train.methods, METHODS)
        check_subset("train.ablations", self.train.ablations, ABLATIONS)
        if self.ablation:
            check_subset("ablation", [self.ablation], ABLATIONS)
        tc, text, base, sdpo = self.train, self.text, self.base, self.sdpo
        if (_ready((tc, "ablation_seeds"), (self, "num_seeds")) and tc.ablations
                and tc.ablation_seeds > self.num_seeds):
            raise ValueError(f"train.ablation_seeds={tc.ablation_seeds} must be at most "
                             f"num_seeds={self.num_seeds} (the ablations pair with SDPO's seeds)")
        if _ready((text, "hidden"), (text, "heads")) and text.hidden % text.heads:
            raise ValueError(f"text.hidden={text.hidden} must be a multiple of text.heads={text.heads}")
        if (_ready((self.data, "image_size"), (base, "block_out_channels")) and self.policy.model == "tiny"
                and self.data.image_size % 2 ** (len(base.block_out_channels) - 1)):
            down = 2 ** (len(base.block_out_channels) - 1)
            raise ValueError(f"data.image_size={self.data.image_size} must be a multiple of {down} "
                             f"(the UNet with base.block_out_channels={base.block_out_channels} "
                             f"downsamples it by {down})")
        if _ready((base, "beta_start"), (base, "beta_end")) and base.beta_start > base.beta_end:
            raise ValueError(f"base.beta_start={base.beta_start} must not exceed "
                             f"base.beta_end={base.beta_end}")
        if _ready((base, "distill_teacher_steps")) and base.distill_teacher_steps % 8:
            raise ValueError(f"base.distill_teacher_steps={base.distill_teacher_steps} must be a "
                             "multiple of 8 (its grid must hold the 1/2/4/8-step grids)")
        if _ready((sdpo, "min_count"), (sdpo, "buffer_size")) and sdpo.min_count > sdpo.buffer_size:
            raise ValueError(f"sdpo.min_count={sdpo.min_count} must be at most "
                             f"sdpo.buffer_size={sdpo.buffer_size} (a buffer never holds more)")
        pairs = self.sample.pairs_per_epoch
        if not _ready((self.sample, "pairs_per_epoch"), (self.sample, "steps"),
                      (tc, "batch_size"), (tc, "grad_accum")):
            return
        if pairs % tc.batch_size:
            raise ValueError(f"sample.pairs_per_epoch={pairs} must be a multiple of "
                             f"train.batch_size={tc.batch_size}")
        micro = (pairs // tc.batch_size) * self.sample.steps
        if micro % tc.grad_accum:
            raise ValueError(f"train.grad_accum={tc.grad_accum} must divide the {micro} micro-batches "
                             "of an epoch (pairs_per_epoch / batch_size × sample.steps)")


def _ready(*fields: tuple[object, str]) -> bool:
    """Whether every (section, field name) holds a value inside its declared range (numbers
    of the right type: a rule on out-of-range values is left to the range check)."""
    for node, name in fields:
        declared = {f.name: f for f in dataclasses.fields(node)}[name]
        value, rng = getattr(node, name), declared.metadata.get("range")
        values = value if isinstance(value, list) else [value]
        if not values or any(isinstance(v, bool) or not isinstance(v, (int, float))
                             or (rng is not None and not rng.ok(v)) for v in values):
            return False
    return True
