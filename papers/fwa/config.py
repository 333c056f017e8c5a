"""FWA configuration: one documented field per line. Scales live in configs/*.yaml."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.config import Common, check_subset, choice

SCHEDULE_POWERS = {"const": 0.0, "sqrt": 0.5, "inv": 1.0}  # α_t = c · t^(−power)
BINARY_DATASETS = ("breast_cancer", "synthetic")


def _check_windows(key: str, windows: list[int]) -> None:
    if not windows or min(windows) < 1:
        raise ValueError(f"config key '{key}': windows must be a non-empty list of k ≥ 1")


@dataclass
class ConvexConfig:
    """Experiment 1: suboptimality F(w̄) − F* of L2-regularised logistic regression."""

    datasets: list[str] = field(default_factory=lambda: ["breast_cancer", "synthetic"])  # subset of BINARY_DATASETS
    synthetic_samples: int = 1000  # make_classification samples (dataset "synthetic")
    synthetic_features: int = 20  # make_classification features
    data_seed: int = 0  # seed of the synthetic dataset (fixed across SGD seeds)
    l2: float = 1e-3  # λ of the regulariser (λ/2)‖w‖²
    steps: int = 20000  # T, the longest horizon
    eval_first: int = 10  # first horizon; a window k is evaluated from T = 2k on (k ≤ T/2)
    eval_points: int = 14  # log-spaced horizons T at which every output is evaluated
    windows: list[int] = field(default_factory=lambda: [1, 2, 5, 10, 20, 50])  # FWA window sizes k
    schedules: list[str] = field(default_factory=lambda: ["sqrt", "const", "inv"])  # α_t = c/√t, c, c/t
    lr: dict[str, float] = field(default_factory=lambda: {"sqrt": 1.0, "const": 1.0, "inv": 1.0})  # multiplier of the bound-optimal step (see convex.step_constants)
    ema_decay: float = 0.99  # EMA baseline, per step
    theory_c0: float = 2.0  # C₀ in FWA's (C₀ + log(T/k)) factor [recon: the paper's constant is not public]

    def __post_init__(self) -> None:
        check_subset("convex.datasets", self.datasets, BINARY_DATASETS)
        check_subset("convex.schedules", self.schedules, SCHEDULE_POWERS)
        check_subset("convex.lr", list(self.lr), SCHEDULE_POWERS)
        _check_windows("convex.windows", self.windows)
        missing = [s for s in self.schedules if s not in self.lr]
        if missing:
            raise ValueError(f"config key 'convex.lr': no step size c for schedule {missing}")


@dataclass
class StabilityConfig:
    """Experiment 2: ‖w̄ − w̄'‖ for runs on neighbouring datasets with identical randomness."""

    pool_samples: int = 3000  # make_classification pool the datasets S are drawn from
    features: int = 20  # make_classification features
    test_samples: int = 1000  # held-out samples for the train–test gap
    data_seed: int = 1  # seed of the pool (fixed across seeds)
    sizes: list[int] = field(default_factory=lambda: [100, 200, 400])  # n = |S|, for the 1/n trend
    pairs: int = 16  # neighbouring pairs (S, S^(i)) per seed, each with its own S, i and init
    models: list[str] = field(default_factory=lambda: ["convex", "nonconvex"])  # logistic / tanh MLP
    hidden: int = 16  # MLP width for the non-convex model
    l2: float = 0.0  # λ; 0 keeps the loss Lipschitz as the stability theorems assume
    steps: int = 4000  # T
    eval_first: int = 50  # first horizon; a window k is evaluated from T = 2k on (k ≤ T/2)
    eval_points: int = 12  # log-spaced horizons
    windows: list[int] = field(default_factory=lambda: [1, 10, 100, 1000])  # FWA window sizes k
    schedules: list[str] = field(default_factory=lambda: ["const", "inv"])  # constant α and c/t
    lr: dict[str, float] = field(default_factory=lambda: {"const": 0.05, "inv": 0.5})  # c per schedule

    def __post_init__(self) -> None:
        check_subset("stability.models", self.models, ("convex", "nonconvex"))
        check_subset("stability.schedules", self.schedules, SCHEDULE_POWERS)
        _check_windows("stability.windows", self.windows)
        if max(self.sizes) + 1 > self.pool_samples:
            raise ValueError("config key 'stability.sizes': n must be below stability.pool_samples")
        if 2 * max(self.windows) > self.steps:
            raise ValueError("config key 'stability.windows': FWA needs k ≤ T/2 (stability.steps)")


@dataclass
class TrainConfig:
    """Experiment 3 (and the paper-scale run): a network trained with SGD, LAWA vs baselines."""

    dataset: str = choice("mnist1d", "mnist1d", "cifar10", "cifar100")  # data for `train`
    data_path: str = ""  # directory with CIFAR's .bin files (cifar10/cifar100 only)
    mnist1d_samples: int = 5000  # MNIST-1D samples generated (80% train)
    model: str = choice("mlp", "mlp", "resnet18")  # mlp for MNIST-1D, resnet18 for CIFAR
    hidden: int = 256  # MLP width
    resnet_width: int = 64  # channels of ResNet-18's first stage (64 in the standard net)
    epochs: int = 40  # training epochs
    batch_size: int = 128  # minibatch size
    lr: float = 0.1  # SGD step size (peak, for a schedule)
    lr_schedule: str = choice("constant", "constant", "cosine")  # step-size schedule over epochs
    momentum: float = 0.0  # SGD momentum (0 = the plain SGD the theory analyses)
    weight_decay: float = 0.0  # L2 weight decay
    augment: bool = False  # random crop + horizontal flip (CIFAR)
    lawa_windows: list[int] = field(default_factory=lambda: [5, 10])  # LAWA k over epoch ends
    fwa_windows: list[int] = field(default_factory=list)  # optional FWA k over steps
    ema_decay: float = 0.998  # EMA baseline, per step
    eval_every: int = 1  # evaluate every method every N epochs
    train_eval_samples: int = 10000  # training samples used to measure train metrics
    checkpoint_every: int = 1  # save a checkpoint every N epochs
    keep_checkpoints: int = 2  # newest checkpoints kept per run


@dataclass
class FWAConfig(Common):
    """All of FWA's experiments; `reproduce` runs the ones listed in `experiments`."""

    experiments: list[str] = field(default_factory=lambda: ["convex", "stability", "nonconvex"])  # what reproduce runs
    eval_run: str = ""  # `eval`: the training run directory to evaluate ("" = the newest finished one)
    convex: ConvexConfig = field(default_factory=ConvexConfig)
    stability: StabilityConfig = field(default_factory=StabilityConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        check_subset("experiments", self.experiments, ("convex", "stability", "nonconvex"))
