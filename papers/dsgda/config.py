"""Distributed SGDA configuration: one documented field per line. Scales live in configs/*.yaml.

The paper publishes no experiments; every experiment here is ours (see README.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.config import Common, check_subset, choice

SETTINGS = ("cc", "scsc", "plsc", "ncnc")
TOPOLOGIES = ("full", "ring", "torus", "star", "graph", "matrix")
SWEEPS = ("T", "eta", "K", "topology", "m", "N", "split")


@dataclass
class ProblemConfig:
    """The min-max objective f(x, y; z) and its domain Y."""

    setting: str = choice("cc", *SETTINGS)  # cc/scsc: AUC maximisation (SOLAM form); plsc: group-DRO least squares; ncnc: coupled sin² toy
    l2: float = 0.01  # scsc: λ of the (λ/2)‖w‖² term that makes AUC strongly convex in x
    y_radius: float = 2.0  # Y: α ∈ [−r, r] (AUC), y ∈ [0, r]^G (PL-SC), y ∈ [−r, r]^d (NC-NC)
    plsc_rank: int = 5  # PL-SC: rank of the feature matrix (< features, so F(·, y) is PL but not strongly convex)
    plsc_mu: float = 1.0  # PL-SC: strong concavity μ of the −(μ/2)‖y‖² term
    ncnc_dim: int = 4  # NC-NC: dimension d of x and of y
    ncnc_scale: float = 0.5  # NC-NC: scale of the data offsets (u, v)
    init_scale: float = 0.1  # initial x, y ~ init_scale · N(0, I) (the same on every client)


@dataclass
class DataConfig:
    """Where samples come from and how they are split over clients (scikit-learn generators)."""

    dataset: str = choice("auto", "auto", "synthetic", "breast_cancer")  # cc/scsc: make_classification or breast_cancer; plsc/ncnc: their own generator ("auto")
    features: int = 20  # make_classification / make_regression features
    pool_samples: int = 20000  # samples generated; clients, replacements and the test set are drawn from them
    test_samples: int = 5000  # held-out samples: the population-risk proxy
    data_seed: int = 0  # seed of the generated pool (fixed across seeds)
    split: str = choice("iid", "iid", "label_skew")  # how samples reach clients
    skew_alpha: float = 0.3  # label_skew: Dirichlet concentration of each client's label mix (small = skewed)


@dataclass
class SGDAConfig:
    """One run of Local-SGDA / Local-DSGDA (the `train` command)."""

    clients: int = 8  # m
    samples_per_client: int = 100  # n (N = m·n)
    steps: int = 2000  # T, local steps per client
    local_steps: int = 5  # K: mix every K steps
    lr_x: float = 0.01  # η_x
    lr_y: float = 0.01  # η_y
    batch_size: int = 1  # samples per local step
    topology: str = choice("full", *TOPOLOGIES)  # full = Local-SGDA (server averaging); others = Local-DSGDA
    graph: str = ""  # topology=graph: a networkx generator and its arguments, e.g. "random_regular_graph:d=3,seed=0" (n = clients); Metropolis weights
    matrix_path: str = ""  # topology=matrix: a .npy or whitespace-separated text file with W (m×m)
    backend: str = choice("simulation", "simulation", "distributed")  # distributed: one process per client under torchrun
    dist_backend: str = choice("auto", "auto", "gloo", "nccl")  # auto = nccl on CUDA, gloo on CPU
    dtype: str = choice("float64", "float64", "float32")  # iterate precision
    eval_points: int = 8  # log-spaced horizons T at which outputs are evaluated


@dataclass
class SweepConfig:
    """`reproduce`: which trends are measured, on which settings, with how many pairs."""

    settings: list[str] = field(default_factory=lambda: list(SETTINGS))  # problems swept
    sweeps: list[str] = field(default_factory=lambda: list(SWEEPS))  # trends measured (T is read off every run)
    pairs: int = 8  # neighbouring-dataset pairs per seed and grid point
    etas: list[float] = field(default_factory=lambda: [0.005, 0.01, 0.05])  # η grid (η_x = η_y)
    local_steps: list[int] = field(default_factory=lambda: [1, 2, 5, 10, 20])  # K grid
    topologies: list[str] = field(default_factory=lambda: ["full", "torus", "ring"])  # topology grid (m a square for torus)
    clients: list[int] = field(default_factory=lambda: [4, 8, 16])  # m grid (N fixed)
    total_samples: list[int] = field(default_factory=lambda: [200, 400, 800, 1600])  # N grid (m fixed)
    processes: int = 1  # parallel worker processes (one torch thread each)

    def __post_init__(self) -> None:
        check_subset("sweep.settings", self.settings, SETTINGS)
        check_subset("sweep.sweeps", self.sweeps, SWEEPS)
        check_subset("sweep.topologies", self.topologies, TOPOLOGIES[:4])


@dataclass
class DSGDAConfig(Common):
    """Local-SGDA / Local-DSGDA: `train` runs one configuration, `reproduce` the sweeps."""

    problem: ProblemConfig = field(default_factory=ProblemConfig)
    data: DataConfig = field(default_factory=DataConfig)
    sgda: SGDAConfig = field(default_factory=SGDAConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
