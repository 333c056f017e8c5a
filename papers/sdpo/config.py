"""SDPO configuration: one documented field per line. Scales live in configs/*.yaml.

Sections: `data` (procedural text-image data), `text` + `base` (the tiny few-step model that
plays SD-Turbo's role), `policy` (which model is fine-tuned and how: the tiny one or a local
SD-Turbo, LoRA or full), `reward`, `sample` (trajectory sampling), `sdpo` (the method),
`baselines`, `train`, `eval`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.config import Common, choice

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

    image_size: int = 16  # pixels per side (16 or 32)
    images: int = 20000  # training images of the base model
    seed: int = 0  # data-generation seed (fixed across training seeds)


@dataclass
class TextConfig:
    """A small CLIP text encoder built from a transformers config, word-level tokenizer built locally."""

    hidden: int = 64  # hidden size = cross-attention dim of the UNet
    layers: int = 2  # transformer layers
    heads: int = 4  # attention heads
    max_length: int = 16  # tokens per caption with [BOS]/[EOS] (padded; the longest caption has 13)


@dataclass
class BaseConfig:
    """The base few-step model (SD-Turbo's role): DDPM pre-training, then distillation."""

    block_out_channels: list[int] = field(default_factory=lambda: [16, 32])  # UNet widths per resolution ([32, 64] costs 2x per step)
    layers_per_block: int = 1  # ResNet layers per UNet block
    attention_head_dim: int = 8  # UNet attention head width
    beta_schedule: str = choice("scaled_linear", "scaled_linear", "linear")  # as Stable Diffusion's config
    beta_start: float = 0.00085  # first beta
    beta_end: float = 0.012  # last beta
    pretrain_steps: int = 1600  # DDPM training steps (epsilon objective; ~0.13 s each on 1 busy core, whole build 6.3 min)
    pretrain_batch: int = 32  # images per pre-training step (32 x 2400 beat 64 x 1200)
    pretrain_lr: float = 1e-3  # AdamW learning rate of pre-training
    distill_teacher_steps: int = 16  # DDIM steps of the teacher trajectories
    distill_samples: int = 2048  # teacher trajectories recorded for distillation
    distill_steps: int = 1200  # student training steps (1-step colour match 0.59; pretrain 2000 + distill 1600: 0.66 in 8.3 min)
    distill_batch: int = 32  # student batch
    distill_lr: float = 1e-3  # AdamW learning rate of distillation (1e-3 beat 3e-4 at 1-step)
    threads: int = 1  # torch threads while building (2 is ~1.7x faster on an idle 2-core machine, 2.5-60x slower on a busy one)
    seed: int = 0  # seed of the base model (shared by every RL run)


@dataclass
class PolicyConfig:
    """Which denoiser is fine-tuned, and which of its weights."""

    model: str = choice("tiny", "tiny", "stable-diffusion")  # tiny = the base model above; stable-diffusion = a local SD-Turbo
    path: str = ""  # local diffusers directory of SD-Turbo when model = stable-diffusion
    lora_rank: int = 4  # LoRA rank through peft (unet.add_adapter); 0 = fine-tune every UNet weight
    lora_alpha: float = 4.0  # LoRA alpha
    lora_targets: list[str] = field(default_factory=lambda: ["to_q", "to_k", "to_v", "to_out.0"])  # modules that get adapters


@dataclass
class RewardConfig:
    """The reward on decoded images; the real reward models need local weights under `path`."""

    name: str = choice("aesthetic", *REWARDS)  # aesthetic = the small frozen scorer (stand-in for LAION aesthetic)
    path: str = ""  # local weights of laion-aesthetic / pickscore / imagereward / hpsv2
    batch: int = 64  # images per reward call
    scorer_steps: int = 1500  # training steps of the small frozen scorers (aesthetic, match), cached once
    scorer_batch: int = 128  # renders per scorer training step
    scorer_pool: int = 16384  # varied procedural renders the scorers train on (drawn once)
    scorer_lr: float = 2e-3  # AdamW learning rate of the scorers (cosine decay to 0)
    scorer_seed: int = 0  # seed of the scorers' weights and training renders (held-out renders: seed + 1)
    scorer_threads: int = 1  # torch threads while a scorer trains (1 is fastest on a busy 2-core machine)


@dataclass
class SampleConfig:
    """Trajectory sampling: DDIM, trailing spacing, eta > 0, no CFG."""

    steps: int = 10  # T, denoising steps per training trajectory (paper: 50)
    eta: float = 1.0  # DDIM eta of the policy
    pairs_per_epoch: int = 8  # prompts per epoch (per process); each gives a pair of trajectories from one x_T
    prompts: str = "shapes"  # prompt set: shapes (procedural), animals (paper scale) or a text file, one prompt per line
    t_prev: str = choice("schedule", "schedule", "released")  # released = t - 1000 // T (wrong for trailing spacing when T does not divide 1000)


@dataclass
class SDPOConfig:
    """SDPO (brief, Algorithm): dense rewards, returns, per-(prompt, step) normalisation, loss."""

    dense: str = choice("interpolate", "interpolate", "oracle", "sparse")  # three-query anchor interpolation; reward at every step; final reward only
    similarity: str = choice("clamped", "clamped", "raw")  # cosine weights clamped at 0 (convex); raw = released code
    gamma: float = 0.99  # discount of the returns G_i = R_i + gamma G_{i+1}
    lam: float = 0.99  # step weight w_i = lam^i / log_scale
    log_scale: float = 1.0  # eta_scale of the step weight
    clip_range: float = 1e-4  # proximal clip of log pi_theta around log pi_old
    adv_clip: float = 5.0  # advantages clipped to +-adv_clip
    buffer_size: int = 32  # returns kept per (prompt, step)
    min_count: int = 16  # batch statistics until a buffer holds this many
    shuffle: bool = True  # permute each pair's T transitions independently


@dataclass
class BaselineConfig:
    """DDPO, D3PO and REBEL/PRDP on the same sampling and log-prob machinery."""

    ddpo_clip: float = 1e-4  # PPO clip range of DDPO's per-step ratio
    d3po_beta: float = 0.1  # beta of D3PO's DPO loss
    d3po_ratio_clip: float = 0.1  # D3PO clamps pi_theta/pi_ref to 1 +- this
    rebel_eta: float = 1.0  # REBEL's 1/eta scale of the summed log-ratio gap


@dataclass
class TrainConfig:
    """One run per (method or ablation, seed)."""

    methods: list[str] = field(default_factory=lambda: list(METHODS))  # methods reproduce runs
    ablations: list[str] = field(default_factory=lambda: list(ABLATIONS))  # SDPO ablations reproduce runs
    ablation_seeds: int = 3  # seeds per ablation (the methods use num_seeds)
    epochs: int = 40  # sampling + training rounds
    batch_size: int = 4  # pairs per micro-batch
    grad_accum: int = 1  # micro-batches per optimizer step
    inner_epochs: int = 1  # passes over an epoch's samples
    lr: float = 3e-4  # AdamW learning rate
    weight_decay: float = 1e-4  # AdamW weight decay
    grad_clip: float = 1.0  # gradient-norm clip
    threads: int = 1  # torch threads per run (reproduce runs several side by side)
    checkpoint_every: int = 10  # epochs between checkpoints
    keep_checkpoints: int = 2  # newest checkpoints kept


@dataclass
class EvalConfig:
    """Mean reward at several step budgets on held-out prompts and noise seeds."""

    steps: list[int] = field(default_factory=lambda: [1, 2, 4, 8])  # sampling budgets
    every: int = 10  # epochs between evaluations (and at 0 and the end)
    images_per_prompt: int = 4  # held-out noise seeds per held-out prompt
    eta: float = 1.0  # DDIM eta at evaluation
    seed: int = 10_000  # noise seed of evaluation (never used in training)
    grid_prompts: int = 8  # prompts in the before/after PNG grids


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
    parallel_runs: int = 2  # training runs reproduce executes side by side (processes)
    method: str = choice("sdpo", *METHODS)  # the method `train` / `eval` run
    ablation: str = ""  # an SDPO ablation `train` / `eval` run ("" = none)

    def __post_init__(self) -> None:
        bad = [m for m in self.train.methods if m not in METHODS]
        if bad:
            raise ValueError(f"config key 'train.methods': {bad} not in {', '.join(METHODS)}")
        bad = [a for a in [*self.train.ablations, *([self.ablation] if self.ablation else [])]
               if a not in ABLATIONS]
        if bad:
            raise ValueError(f"config key 'train.ablations': {bad} not in {', '.join(ABLATIONS)}")
        bad = [s for s in self.eval.steps if s < 1]
        if bad or not self.eval.steps:
            raise ValueError(f"config key 'eval.steps': {self.eval.steps} must be positive step counts")
