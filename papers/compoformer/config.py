"""CompoFormer configuration: one documented field per line. Scales live in configs/*.yaml."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared import UserError
from shared.config import Common, check_subset, choice, nonempty, num, nums

COMPOFORMER = ("compoformer-prune", "compoformer-grow")
BASELINES = ("finetune", "l2", "ewc", "mas", "packnet", "lora", "perfect-memory", "agem", "mtl")
METHODS = COMPOFORMER + BASELINES
SEQUENCES = ("CW10", "CW10-order1", "CW10-order2", "CW10-order3", "CW20", "OCW5")
QUALITIES = ("expert", "near-optimal", "sub-optimal")


@dataclass
class DataConfig:
    """Offline Continual World data: shared.offline_rl scripted-policy Meta-World v3 datasets."""

    sequence: str = choice("OCW5", *SEQUENCES)  # task sequence (CW10 in the paper's order, three shuffles, CW20 = CW10 twice, OCW5 = CW10's first five)
    stages: int = num(0, ge=0)  # use only the first N tasks of the sequence (0 = all; the smoke test uses 2)
    quality: str = choice("expert", *QUALITIES)  # dataset quality of every task (shared.offline_rl.QUALITIES)
    episodes: int = num(20, ge=1)  # episodes per task
    max_steps: int = num(150, ge=1, le=500)  # episode length of the data and of evaluation (Meta-World's is 500)
    seed: int = num(0, ge=0)  # data-generation seed (fixed across training seeds)
    workers: int = num(0, ge=0)  # generation processes (0 = all cores)


@dataclass
class ModelConfig:
    """Decision Transformer backbone (shared.offline_rl.dt, no conditioning token) + per-task heads."""

    hidden: int = num(64, ge=1)  # h
    layers: int = num(2, ge=1)  # GPT-2 blocks
    heads: int = num(1, ge=1)  # attention heads
    context: int = num(10, ge=1)  # K, steps per segment
    dropout: float = num(0.1, ge=0, lt=1)  # GPT-2 residual/attention/embedding dropout

    def __post_init__(self) -> None:
        if self.heads >= 1 and self.hidden % self.heads:
            raise UserError(f"config key 'model.hidden': {self.hidden} is not a multiple of "
                            f"model.heads={self.heads}")


@dataclass
class CompoConfig:
    """CompoFormer's meta-policy and the parameter-adding branches (Grow / Prune)."""

    center_embeddings: bool = True  # [recon] centre each sentence embedding (zero mean) so that all-ones q/k weights give uniform α at the start
    warmup: float = num(0.1, ge=0, lt=1)  # fraction of a task's iterations for the warm-up (q/k + head on the composed action; paper: 1000 of 50k)
    check_episodes: int = num(10, ge=1, le=50)  # online episodes of the composed policy (hard top-1 α)
    reuse_threshold: float = num(0.8, ge=0, le=1)  # reuse the composition when the online success reaches this
    lora_rank: int = num(8, ge=1)  # Grow: LoRA rank r on every block's attention projection (c_attn)
    lora_alpha: float = num(1.0, gt=0)  # Grow: LoRA α
    prune_quantile: float = num(0.5, gt=0, lt=1)  # Prune/PackNet: free weights below this magnitude quantile are released
    finetune: float = num(0.2, ge=0, lt=1)  # Prune/PackNet: fraction of a task's iterations fine-tuning on its mask


@dataclass
class BaselineConfig:
    """Baseline coefficients (the paper's values; see the README for their scale here)."""

    l2_lambda: float = num(5000.0, ge=0)  # L2: λ Σ (θ − θ*)² towards the previous stage's weights
    ewc_lambda: float = num(5000.0, ge=0)  # EWC: λ Σ F (θ − θ*)², F the accumulated diagonal Fisher
    mas_lambda: float = num(10.0, ge=0)  # MAS: λ Σ Ω (θ − θ*)², Ω the accumulated output-sensitivity
    importance_batches: int = num(10, ge=1)  # batches behind one task's Fisher / MAS importance
    agem_episodes: int = num(5, ge=1)  # A-GEM: episodes kept per earlier task in its episodic memory
    agem_batch: int = num(16, ge=1)  # A-GEM: memory segments behind the reference gradient
    replay_fraction: float = num(0.5, gt=0, lt=1)  # Perfect Memory: share of each batch drawn from earlier tasks


@dataclass
class SweepConfig:
    """The regularisers' λ sweep of `reproduce`: every value of a method's list is run on a
    validation seed and evaluated on held-out goal variations; the λ of the best validation P
    (ties: the earlier value in the list) is used in the recorded runs. An empty list: no
    sweep, `baselines.<method>_lambda` is used."""

    l2: list[float] = nums([], ge=0, nonempty=False)  # L2 λ values
    ewc: list[float] = nums([], ge=0, nonempty=False)  # EWC λ values
    mas: list[float] = nums([], ge=0, nonempty=False)  # MAS λ values
    seed: int = num(1000, ge=0)  # training seed of the validation runs (apart from the recorded seeds)
    first_goal: int = num(25, ge=0, le=49)  # first goal variation of the validation evaluations (held out from the recorded runs' goals)


@dataclass
class TrainConfig:
    """One continual run per (method, seed): the tasks one stage each, the same budget per task."""

    methods: list[str] = nonempty(list(METHODS))  # which methods reproduce runs
    iterations: int = num(600, ge=1)  # optimisation steps per task (MTL: this × tasks in one stage)
    batch_size: int = num(16, ge=1)  # segments per step
    lr: float = num(1e-3, gt=0)  # AdamW learning rate
    weight_decay: float = num(1e-4, ge=0)  # AdamW weight decay
    grad_clip: float = num(0.25, gt=0)  # gradient-norm clip
    return_scale: float = num(100.0, gt=0)  # returns-to-go are divided by this
    threads: int = num(1, ge=1)  # torch threads per run (reproduce runs several side by side)
    checkpoint_every: int = num(200, ge=1)  # iterations between checkpoints (also at every phase end)
    keep_checkpoints: int = num(2, ge=1)  # newest checkpoints kept

    def __post_init__(self) -> None:
        check_subset("train.methods", self.methods, METHODS)


@dataclass
class EvalConfig:
    """Online evaluation in Meta-World (shared.offline_rl.Evaluator)."""

    every: int = num(200, ge=1)  # iterations between current-task evaluations within a stage (the stage's learning curve)
    goals: int = num(3, ge=1, le=50)  # goal variations per task (episodes per task; the paper uses 10)
    first_goal: int = num(0, ge=0, le=49)  # goal variations first_goal, first_goal+1, … (mod 50) are evaluated (the λ sweep's validation runs use held-out ones)
    target_return: float = num(1500.0, gt=0)  # initial return-to-go
    stop_on_success: bool = True  # end an episode at its first success (success is unchanged)
    workers: int = num(1, ge=0)  # evaluator processes per run
    learned_level: float = num(0.5, ge=0, le=1)  # precondition: a task counts as learned when R[i][i] reaches this


@dataclass
class CompoFormerConfig(Common):
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    compo: CompoConfig = field(default_factory=CompoConfig)
    baselines: BaselineConfig = field(default_factory=BaselineConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    parallel_runs: int = num(2, ge=1)  # training runs reproduce executes side by side (processes)
    method: str = choice("compoformer-prune", *METHODS)  # the method `train` / `eval` run

    def __post_init__(self) -> None:
        c, it = self.compo, self.train.iterations
        if not (0 <= c.warmup < 1 and 0 <= c.finetune < 1 and it >= 1):
            return  # the ranges report it
        warm = int(round(c.warmup * it))
        fine = int(round(c.finetune * it))
        if it - warm - fine < 1:
            raise UserError(f"config keys 'compo.warmup' + 'compo.finetune' leave no training "
                            f"iterations of train.iterations={it} ({warm} warm-up, {fine} fine-tune)")
