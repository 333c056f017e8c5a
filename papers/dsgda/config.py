"""Distributed SGDA configuration: one documented field per line, with its allowed range.
Scales live in configs/*.yaml.

The paper publishes no experiments; every experiment here is ours (see README.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.config import Common, check_subset, choice, nonempty, num, nums

SETTINGS = ("cc", "scsc", "plsc", "ncnc", "bilinear", "nonpl")
TOPOLOGIES = ("full", "ring", "torus", "star", "graph", "matrix")
SWEEPS = ("T", "eta", "K", "topology", "m", "N", "split", "K_skew", "topology_skew")


@dataclass
class ProblemConfig:
    """The min-max objective f(x, y; z) and its domain Y."""

    setting: str = choice("cc", *SETTINGS)  # cc/scsc: AUC maximisation (SOLAM form); plsc: group-DRO least squares; ncnc: two-sided-PL sin² toy; bilinear: bilinear game on boxes; nonpl: sin² toy that is PL on neither side
    l2: float = num(0.01, gt=0)  # scsc: λ of the (λ/2)‖w‖² term that makes AUC strongly convex in x (λ = 0 is cc)
    y_radius: float = num(2.0, gt=0)  # Y: α ∈ [−r, r] (AUC), y ∈ [0, r]^G (PL-SC), y ∈ [−r, r]^d (NC-NC)
    plsc_rank: int = num(5, ge=1)  # PL-SC: rank of the feature matrix (< features, so F(·, y) is PL but not strongly convex)
    plsc_mu: float = num(1.0, gt=0)  # PL-SC: strong concavity μ of the −(μ/2)‖y‖² term
    ncnc_dim: int = num(4, ge=1)  # NC-NC: dimension d of x and of y
    ncnc_scale: float = num(0.5, ge=0)  # NC-NC: scale of the data offsets (u, v)
    nonpl_radius: float = num(4.0, gt=0)  # nonpl: Y = [−r, r]^d (r ≥ π keeps the spurious local maxima near ±π inside Y)
    bilinear_dim: int = num(3, ge=1)  # bilinear: dimension d of x and of y (X = Y = [−y_radius, y_radius]^d)
    bilinear_noise: float = num(0.5, ge=0)  # bilinear: per-sample noise σ of (A_z, b_z, c_z)
    init_scale: float = num(0.1, ge=0)  # initial x, y ~ init_scale · N(0, I) (the same on every client)


@dataclass
class DataConfig:
    """Where samples come from and how they are split over clients (scikit-learn generators)."""

    dataset: str = choice("auto", "auto", "synthetic", "breast_cancer")  # cc/scsc: make_classification or breast_cancer; plsc/ncnc: their own generator ("auto")
    features: int = num(20, ge=1)  # make_classification / make_regression features
    pool_samples: int = num(20000, ge=2)  # samples generated; clients and replacements are drawn from them, and D = uniform on the pool (exact population moments)
    test_samples: int = num(5000, ge=1)  # held-out samples: task scores (AUC) only; the population is the pool itself
    data_seed: int = num(0, ge=0)  # seed of the generated pool (fixed across seeds)
    split: str = choice("iid", "iid", "label_skew")  # how samples reach clients
    skew_alpha: float = num(0.3, gt=0)  # label_skew: Dirichlet concentration of each client's label mix (small = skewed)


@dataclass
class SGDAConfig:
    """One run of Local-SGDA / Local-DSGDA (the `train` command)."""

    clients: int = num(8, ge=1)  # m
    samples_per_client: int = num(100, ge=1)  # n (N = m·n)
    steps: int = num(2000, ge=1)  # T, local steps per client
    local_steps: int = num(5, ge=1)  # K: mix every K steps (K ≤ T)
    lr_x: float = num(0.01, gt=0)  # η_x
    lr_y: float = num(0.01, gt=0)  # η_y
    batch_size: int = num(1, ge=1)  # samples per local step
    topology: str = choice("full", *TOPOLOGIES)  # full = Local-SGDA (server averaging); others = Local-DSGDA
    graph: str = ""  # topology=graph: a networkx generator and its arguments, e.g. "random_regular_graph:d=3,seed=0" (n = clients); Metropolis weights
    matrix_path: str = ""  # topology=matrix: a .npy or whitespace-separated text file with W (m×m)
    backend: str = choice("simulation", "simulation", "distributed")  # distributed: under torchrun, each process runs a contiguous block of the m clients (any world size ≤ m)
    dist_backend: str = choice("auto", "auto", "gloo", "nccl")  # auto = nccl on CUDA, gloo on CPU
    dtype: str = choice("float64", "float64", "float32")  # iterate precision
    eval_points: int = num(8, ge=1)  # log-spaced horizons T at which outputs are evaluated

    def __post_init__(self) -> None:
        if self.steps >= 1 and self.local_steps > self.steps:  # (out-of-range values: load_config says so)
            raise ValueError(f"sgda.local_steps = {self.local_steps} exceeds sgda.steps = {self.steps}: "
                             "the clients would never mix (K ≤ T)")


@dataclass
class SweepConfig:
    """`reproduce`: which trends are measured, on which settings, with how many pairs."""

    settings: list[str] = nonempty(list(SETTINGS))  # problems swept
    sweeps: list[str] = nonempty(list(SWEEPS))  # trends measured (T is read off every run); K_skew/topology_skew: the ring K sweep and the topology sweep on label-skewed splits
    pairs: int = num(8, ge=1)  # neighbouring-dataset pairs per seed and grid point
    etas: list[float] = nums([0.005, 0.01, 0.05], gt=0)  # η grid (η_x = η_y)
    local_steps: list[int] = nums([1, 2, 5, 10, 20], ge=1)  # K grid (every K ≤ sgda.steps)
    topologies: list[str] = nonempty(["full", "torus", "ring"])  # topology grid (m a square for torus)
    clients: list[int] = nums([4, 8, 16], ge=1)  # m grid (N fixed)
    total_samples: list[int] = nums([200, 400, 800, 1600], ge=1)  # N grid (m fixed)
    processes: int = num(1, ge=1)  # parallel worker processes (one torch thread each)

    def __post_init__(self) -> None:
        check_subset("sweep.settings", self.settings, SETTINGS)
        check_subset("sweep.sweeps", self.sweeps, SWEEPS)
        check_subset("sweep.topologies", self.topologies, TOPOLOGIES[:4])


@dataclass
class DSGDAConfig(Common):
    """Local-SGDA / Local-DSGDA: `train` runs one configuration, `eval` re-measures it,
    `reproduce` the sweeps."""

    problem: ProblemConfig = field(default_factory=ProblemConfig)
    data: DataConfig = field(default_factory=DataConfig)
    sgda: SGDAConfig = field(default_factory=SGDAConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    eval_run: str = ""  # `eval`: a finished train run directory; "" = the newest finished train run of this config and problem.setting

    def __post_init__(self) -> None:
        s, sw = self.sgda, self.sweep
        # Only on in-range values: load_config reports a value out of its range first.
        if min(s.clients, s.samples_per_client) >= 1 and self.data.pool_samples >= 2 \
                and s.clients * s.samples_per_client >= self.data.pool_samples:
            raise ValueError(f"sgda.clients × sgda.samples_per_client = {s.clients} × {s.samples_per_client} "
                             f"needs more than data.pool_samples = {self.data.pool_samples}")
        if "K" in sw.sweeps and sw.local_steps and s.steps >= 1 and max(sw.local_steps) > s.steps:
            raise ValueError(f"sweep.local_steps has K = {max(sw.local_steps)} > sgda.steps = {s.steps}: "
                             "the clients would never mix (K ≤ T)")
