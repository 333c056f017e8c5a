"""FWA configuration: one documented field per line, each numeric field with its allowed range
(checked by shared.config.load_config). Scales live in configs/*.yaml.

Cross-field rules (checked in `__post_init__`, so a mistake is one line): every FWA window
k ≤ T/2 (the method's definition), the first evaluation horizon within T, a step size for
every schedule, the stability pool larger than every n, ResNet-18 and augmentation only on
CIFAR. A rule that needs the data too (FWA step windows of `train` against its number of
SGD steps) is checked when the run starts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from shared.config import Common, check_subset, choice, nonempty, num, nums

SCHEDULE_POWERS = {"const": 0.0, "sqrt": 0.5, "inv": 1.0}  # α_t = c · t^(−power)
BINARY_DATASETS = ("breast_cancer", "synthetic")
EXPERIMENTS = ("convex", "nonsmooth", "stability", "nonconvex")
CIFAR = ("cifar10", "cifar100")


def _in_range(section) -> bool:
    """Every ranged field of `section` within its range and every non-empty list non-empty:
    a cross-field rule is only checked on values that pass their own checks (load_config
    then reports a bad value in its own words)."""
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        if f.metadata.get("nonempty") and isinstance(value, (list, dict)) and not value:
            return False
        rng = f.metadata.get("range")
        if rng is None:
            continue
        items = (list(value.values()) if isinstance(value, dict)
                 else list(value) if isinstance(value, list) else [value])
        if any(isinstance(v, (int, float)) and not isinstance(v, bool) and not rng.ok(v)
               for v in items):
            return False
    return True


def _check_horizons(prefix: str, steps: int, eval_first: int, windows: list[int]) -> None:
    if eval_first > steps:
        raise ValueError(f"config key '{prefix}.eval_first': {eval_first} is beyond the horizon "
                         f"T = {prefix}.steps = {steps} (allowed: <= {steps})")
    if 2 * max(windows) > steps:
        raise ValueError(f"config key '{prefix}.windows': FWA needs every window k ≤ T/2, but "
                         f"k = {max(windows)} > {prefix}.steps/2 = {steps / 2:g}")


def _check_lr(prefix: str, schedules: list[str], lr: dict) -> None:
    check_subset(f"{prefix}.lr", list(lr), SCHEDULE_POWERS)
    missing = [s for s in schedules if s not in lr]
    if missing:
        raise ValueError(f"config key '{prefix}.lr': no step size c for schedule {missing}")


@dataclass
class ConvexConfig:
    """Experiment 1: suboptimality F(w̄) − F* of L2-regularised logistic regression."""

    datasets: list[str] = nonempty(["breast_cancer", "synthetic"])  # subset of BINARY_DATASETS
    synthetic_samples: int = num(1000, ge=10)  # make_classification samples (dataset "synthetic")
    synthetic_features: int = num(20, ge=2)  # make_classification features
    data_seed: int = num(0, ge=0)  # seed of the synthetic dataset (fixed across SGD seeds)
    l2: float = num(1e-3, gt=0)  # λ of the regulariser (λ/2)‖w‖² (> 0: F* exists and is unique)
    steps: int = num(20000, ge=2)  # T, the longest horizon
    eval_first: int = num(10, ge=1)  # first horizon (≤ T); a window k is evaluated from T = 2k on (k ≤ T/2)
    eval_points: int = num(14, ge=2)  # log-spaced horizons T at which every output is evaluated (the last is T)
    windows: list[int] = nums([1, 2, 5, 10, 20, 50], ge=1)  # FWA window sizes k (each ≤ T/2)
    window_fractions: list[float] = nums([0.25, 0.5], gt=0, le=0.5, nonempty=False)  # FWA windows k = f·T at every horizon T (f ≤ 1/2); the claims need k ≥ 2 τ̂
    schedules: list[str] = nonempty(["sqrt", "const", "inv"])  # α_t = c/√t, c, c/(t + t₀)
    lr: dict[str, float] = num({"sqrt": 1.0, "const": 1.0, "inv": 1.0}, gt=0, le=2)  # multiplier of the smoothness-capped step (convex.step_constants): α₁·β ≤ this (≤ 2, the theorems' α ≤ 2/β)
    inv_shift: float = num(0.05, ge=0, le=1)  # t₀ = inv_shift·T of the decaying step c/(t + t₀)
    ema_decay: float = num(0.99, ge=0, lt=1)  # EMA baseline, per step
    theory_c0: float = num(2.0, ge=0)  # C₀ in FWA's (C₀ + log(T/k)) factor [recon: the paper's constant is not public]

    def __post_init__(self) -> None:
        check_subset("convex.datasets", self.datasets, BINARY_DATASETS)
        check_subset("convex.schedules", self.schedules, SCHEDULE_POWERS)
        _check_lr("convex", self.schedules, self.lr)
        if _in_range(self):
            _check_horizons("convex", self.steps, self.eval_first, self.windows)


@dataclass
class NonsmoothConfig:
    """Experiment 1b: the non-smooth convex construction of Harvey et al. (2019), where the
    last iterate pays the log T factor (papers/fwa/nonsmooth.py)."""

    horizons: list[int] = nums([64, 128, 256, 512, 1024, 2048, 4096, 8192], ge=4)  # T (one instance of dimension T per horizon)
    fractions: list[float] = nums([0.5, 0.125], gt=0, le=0.5)  # FWA windows k = f·T
    windows: list[int] = nums([8], ge=1, nonempty=False)  # fixed FWA windows k (used where k ≤ T/2)
    lr: float = num(1.0, gt=0, le=1)  # c of η_t = c/√t (the construction's lower bound is for c = 1)

    def __post_init__(self) -> None:
        if _in_range(self) and len(set(self.horizons)) < 3:
            raise ValueError("config key 'nonsmooth.horizons': a trend in T needs at least 3 "
                             f"distinct horizons (got {sorted(set(self.horizons))})")


@dataclass
class StabilityConfig:
    """Experiment 2: ‖w̄ − w̄'‖ for runs on neighbouring datasets with identical randomness."""

    pool_samples: int = num(3000, ge=2)  # make_classification pool the datasets S are drawn from (> every n)
    features: int = num(20, ge=2)  # make_classification features
    test_samples: int = num(1000, ge=1)  # held-out samples for the train–test gap
    data_seed: int = num(1, ge=0)  # seed of the pool (fixed across seeds)
    sizes: list[int] = nums([100, 200, 400], ge=1)  # n = |S|, for the 1/n trend (each < pool_samples)
    pairs: int = num(16, ge=1)  # neighbouring pairs (S, S^(i)) per seed, each with its own S, i and init
    models: list[str] = nonempty(["convex", "nonconvex"])  # logistic / tanh MLP
    hidden: int = num(16, ge=1)  # MLP width for the non-convex model
    l2: float = num(0.0, ge=0)  # λ; 0 keeps the loss Lipschitz as the stability theorems assume
    steps: int = num(4000, ge=2)  # T
    eval_first: int = num(50, ge=1)  # first horizon (≤ T); a window k is evaluated from T = 2k on (k ≤ T/2)
    eval_points: int = num(12, ge=2)  # log-spaced horizons (the last is T)
    windows: list[int] = nums([1, 10, 100, 1000], ge=1)  # FWA window sizes k (each ≤ T/2)
    schedules: list[str] = nonempty(["const", "inv"])  # constant α and c/t
    lr: dict[str, float] = num({"const": 0.05, "inv": 0.1}, gt=0)  # c per schedule (α₁ = c; the bounds need α_t ≤ 2/β, ≈ 0.149 on the default pool)

    def __post_init__(self) -> None:
        check_subset("stability.models", self.models, ("convex", "nonconvex"))
        check_subset("stability.schedules", self.schedules, SCHEDULE_POWERS)
        _check_lr("stability", self.schedules, self.lr)
        if not _in_range(self):
            return
        if max(self.sizes) + 1 > self.pool_samples:
            raise ValueError(f"config key 'stability.sizes': n = {max(self.sizes)} needs a pool of "
                             f"at least n + 1 samples (stability.pool_samples = {self.pool_samples})")
        _check_horizons("stability", self.steps, self.eval_first, self.windows)


@dataclass
class TrainConfig:
    """Experiment 3 (and the paper-scale run): a network trained with SGD, LAWA vs baselines."""

    dataset: str = choice("mnist1d", "mnist1d", *CIFAR)  # data for `train`
    data_path: str = ""  # directory with CIFAR's .bin files (cifar10/cifar100 only)
    mnist1d_samples: int = num(5000, ge=10)  # MNIST-1D samples generated (80% train; ≥ 1 per class)
    model: str = choice("mlp", "mlp", "resnet18")  # mlp for MNIST-1D, resnet18 for CIFAR
    hidden: int = num(256, ge=1)  # MLP width
    resnet_width: int = num(64, ge=1)  # channels of ResNet-18's first stage (64 in the standard net)
    epochs: int = num(40, ge=1)  # training epochs
    batch_size: int = num(128, ge=1)  # minibatch size (global: split over the processes of a launcher)
    lr: float = num(0.1, gt=0)  # SGD step size (peak, for a schedule)
    lr_schedule: str = choice("constant", "constant", "cosine")  # step-size schedule over epochs
    momentum: float = num(0.0, ge=0, lt=1)  # SGD momentum (0 = the plain SGD the theory analyses)
    weight_decay: float = num(0.0, ge=0)  # L2 weight decay
    augment: bool = False  # random crop + horizontal flip (CIFAR only)
    lawa_windows: list[int] = nums([5, 10], ge=1)  # LAWA k over epoch ends (fewer epochs so far: all of them)
    fwa_windows: list[int] = nums([], ge=1, nonempty=False)  # optional FWA k over steps (each ≤ T/2, T = epochs × steps per epoch)
    ema_decay: float = num(0.998, ge=0, lt=1)  # EMA baseline, per step
    swa_start: float = num(0.75, ge=0, lt=1)  # SWA averages the epoch ends after this fraction of the epochs (0 = since the start)
    swa_lr: float = num(0.0, ge=0)  # SWA's own step size after swa_start (0 = SGD's own: SWA is read off SGD's trajectory; > 0: a branch of the run continues from swa_start at this step size, (1 − swa_start) of a run more compute)
    swa_anneal_epochs: int = num(0, ge=0)  # epochs over which the SWA branch's step size anneals (cosine, torch SWALR) from SGD's to swa_lr (0 = at once)
    eval_every: int = num(1, ge=1)  # evaluate every method every N epochs
    train_eval_samples: int = num(10000, ge=1)  # training samples used to measure train metrics
    checkpoint_every: int = num(1, ge=1)  # save a checkpoint every N epochs
    keep_checkpoints: int = num(2, ge=1)  # newest checkpoints kept per run

    def __post_init__(self) -> None:
        if self.model == "resnet18" and self.dataset not in CIFAR:
            raise ValueError(f"config key 'train.model': resnet18 takes 32×32 images; use it with "
                             f"train.dataset={' or '.join(CIFAR)} (MNIST-1D: train.model=mlp)")
        if self.augment and self.dataset not in CIFAR:
            raise ValueError("config key 'train.augment': crops and flips are for CIFAR images; "
                             f"set train.augment=false for {self.dataset}")


@dataclass
class FWAConfig(Common):
    """All of FWA's experiments; `reproduce` runs the ones listed in `experiments`."""

    experiments: list[str] = nonempty(list(EXPERIMENTS))  # what reproduce runs (non-empty subset of convex, stability, nonconvex)
    eval_run: str = ""  # `eval`: the training run directory to evaluate ("" = the newest finished one)
    convex: ConvexConfig = dataclasses.field(default_factory=ConvexConfig)
    nonsmooth: NonsmoothConfig = dataclasses.field(default_factory=NonsmoothConfig)
    stability: StabilityConfig = dataclasses.field(default_factory=StabilityConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        check_subset("experiments", self.experiments, EXPERIMENTS)
