"""Prompt Diffuser configuration: one documented field per line. Scales live in configs/*.yaml."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.config import Common, check_subset, choice, nonempty, num

# Tuning methods on the frozen Prompt-DT (see tuning.py), plus the full-data upper bound.
TUNED = ("pd", "pd-dm", "pd-guidance", "pd-sum", "ptdt", "finetune", "prompt-dt")
METHODS = (*TUNED, "upper")
QUALITY_METHODS = ("pd", "ptdt", "prompt-dt")  # run once per initial-prompt quality
# Initial-prompt qualities (Table 2 of the paper) -> the shared.offline_rl recipe behind each.
INIT_QUALITIES = {"expert": "expert", "medium": "sub-optimal", "random": "random"}
ENVS = ("metaworld", "cheetah-dir", "cheetah-vel", "ant-dir")


@dataclass
class DataConfig:
    """Meta-World ML1 goal variations (generated) or a locomotion suite (user files, paper only)."""

    env: str = choice("metaworld", *ENVS)  # metaworld = ML1 goals of `task`; the others read `path`
    path: str = ""  # locomotion only: directory of D4RL-layout .hdf5 or Prompt-DT-layout .pkl files
    task: str = "reach-v3"  # Meta-World v3 task whose ML1 goal variations are the tasks
    benchmark_seed: int = num(0, ge=0)  # seed of metaworld.ML1 (fixes its train and test goals)
    train_goals: int = num(20, ge=1, le=50)  # ML1 train-split goals 0..n-1 the policy is pre-trained on
    test_goals: int = num(5, ge=1, le=50)  # ML1 test-split goals 0..n-1 held out for few-shot tuning
    episodes_per_goal: int = num(5, ge=1)  # pre-training episodes per training goal (expert quality)
    prompt_episodes: int = num(2, ge=1)  # expert demonstrations per training goal prompts are cut from
    fewshot_episodes: int = num(2, ge=1)  # few-shot episodes per held-out goal (the tuning data)
    max_steps: int = num(100, ge=6, le=500)  # episode length of data and evaluation
    seed: int = num(0, ge=0)  # data-generation seed (fixed across training seeds)
    workers: int = num(1, ge=0)  # data-generation processes (0 = all cores)


@dataclass
class ModelConfig:
    """The Prompt-DT policy (shared.offline_rl.DecisionTransformer, prompt conditioning)."""

    hidden: int = num(64, ge=1)  # h
    layers: int = num(2, ge=1)  # GPT-2 blocks
    heads: int = num(1, ge=1)  # attention heads
    context: int = num(10, ge=1)  # K, steps per segment
    prompt_steps: int = num(5, ge=1)  # K*, prompt length in steps (the paper: 5)
    dropout: float = num(0.1, ge=0, lt=1)  # GPT-2 dropout during pre-training and fine-tuning


@dataclass
class PretrainConfig:
    """Prompt-DT pre-training on the training goals (and the full-data upper bound)."""

    iterations: int = num(2000, ge=1)  # optimisation steps
    batch_size: int = num(32, ge=1)  # segments per step
    goals_per_batch: int = num(8, ge=1)  # goals a step draws its segments from (rows split evenly)
    lr: float = num(1e-3, gt=0)  # AdamW learning rate
    weight_decay: float = num(1e-4, ge=0)  # AdamW weight decay
    warmup: int = num(200, ge=1)  # linear learning-rate warm-up steps
    grad_clip: float = num(0.25, gt=0)  # gradient-norm clip
    return_scale: float = num(100.0, gt=0)  # returns-to-go are divided by this
    log_every: int = num(100, ge=1)  # steps between loss records (the plateau curve)
    checkpoint_every: int = num(500, ge=1)  # steps between checkpoints


@dataclass
class DiffuserConfig:
    """The conditional DDPM over prompts x0 = K* (s, a, r) tuples, condition y = (R̂, t)."""

    steps: int = num(10, ge=1, le=1000)  # N, diffusion steps (the paper: "relatively small")
    beta_schedule: str = choice("squaredcos_cap_v2", "squaredcos_cap_v2", "linear")  # diffusers DDPMScheduler schedule
    beta_end: float = num(0.2, gt=0, lt=1)  # last β of the linear schedule (ignored by the cosine one)
    hidden: int = num(256, ge=1)  # width of the MLP noise predictor ε_θ
    layers: int = num(2, ge=1)  # hidden layers of ε_θ
    time_dim: int = num(16, ge=2)  # sinusoidal embedding width of the diffusion step k
    clip_x0: float = num(5.0, gt=0)  # x̂0 is clipped to ±this (diffusers' clip_sample_range)
    grad_clip: float = num(1.0, gt=0)  # norm clip of each goal's combined gradient g
    reward_scale: float = num(10.0, gt=0)  # r in x0 is divided by this (Meta-World rewards are ≤ 10)
    skip: bool = True  # [recon] ε_θ = MLP + √(1−ᾱ_k) x_k (the unit-variance ε estimate as a skip path)
    x0_estimate: str = choice("one-step", "one-step", "chain")  # [recon] how x̂0 stays differentiable in θ
    projection: str = choice("conflict", "conflict", "always")  # [recon] project g_PDT only when g_PDT·g_DM < 0, or always
    guidance_weight: float = num(1.0, ge=0)  # λ


@dataclass
class TuneConfig:
    """Few-shot tuning on the held-out goals, every method on the same frozen policy and data."""

    methods: list[str] = nonempty(list(METHODS))  # methods reproduce runs
    init_qualities: list[str] = nonempty(list(INIT_QUALITIES))  # initial-prompt qualities of pd / ptdt / prompt-dt
    steps: int = num(300, ge=1)  # tuning steps (every method)
    batch_size: int = num(16, ge=1)  # target-goal segments per goal per step
    lr: float = num(1e-3, gt=0)  # Adam learning rate of the Prompt Diffuser
    ptdt_lr: float = num(1e-2, gt=0)  # Adam learning rate of Prompt-Tuning DT's prompt tokens
    finetune_lr: float = num(1e-4, gt=0)  # AdamW learning rate of full fine-tuning
    log_every: int = num(25, ge=1)  # steps between loss records (the plateau curve)
    checkpoint_every: int = num(100, ge=1)  # steps between checkpoints
    plateau_tol: float = num(0.1, gt=0)  # converged: loss / first loss moved ≤ this over the last 20 %


@dataclass
class EvalConfig:
    """Online evaluation (shared.offline_rl.Evaluator on ML1)."""

    target_return: float = num(800.0, gt=0)  # initial return-to-go
    rounds: int = num(2, ge=1)  # episodes per held-out goal (a new sampled prompt each)
    train_eval_goals: int = num(10, ge=1, le=50)  # training goals the frozen policy is checked on
    min_train_return_ratio: float = num(0.9, ge=0, le=1)  # precondition: its return there with its own prompts / the demonstrations' return
    workers: int = num(1, ge=0)  # evaluator processes


@dataclass
class PromptDiffuserConfig(Common):
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    diffuser: DiffuserConfig = field(default_factory=DiffuserConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    parallel_runs: int = num(2, ge=1)  # runs reproduce executes side by side (processes)
    threads: int = num(1, ge=1)  # torch threads per run
    method: str = choice("pd", *METHODS)  # the method `train` runs (after pre-training)
    init_quality: str = choice("expert", *INIT_QUALITIES)  # initial-prompt quality `train` uses

    def __post_init__(self) -> None:
        check_subset("tune.methods", self.tune.methods, METHODS)
        check_subset("tune.init_qualities", self.tune.init_qualities, INIT_QUALITIES)
        if "expert" not in self.tune.init_qualities:
            raise ValueError("config key 'tune.init_qualities' must include expert (every "
                            "comparison but the robustness one uses expert demonstrations)")
        if self.model.prompt_steps + 1 > self.data.max_steps:
            raise ValueError(f"config key 'model.prompt_steps' ({self.model.prompt_steps}) must be "
                            f"< data.max_steps ({self.data.max_steps})")
        if self.eval.train_eval_goals > self.data.train_goals:
            raise ValueError(f"config key 'eval.train_eval_goals' ({self.eval.train_eval_goals}) "
                            f"must be ≤ data.train_goals ({self.data.train_goals})")
        if self.data.env != "metaworld" and not self.data.path:
            raise ValueError(f"config key 'data.path': data.env={self.data.env} reads the user's "
                            "files; give the directory holding them")
