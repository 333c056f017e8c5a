"""SPIDER configuration: one documented field per line. Scales live in configs/*.yaml."""

from __future__ import annotations

from dataclasses import dataclass, field

from papers.spider.baselines import METHODS
from papers.spider.corpora import DOWNSTREAM_TASKS, MC_ANSWERS, MCQA_KINDS, PRETRAIN_TASKS
from papers.spider.scenes import STYLES
from shared.config import Common, check_subset, choice


@dataclass
class ModelConfig:
    """The MLLM: a tiny LlavaForConditionalGeneration built here, or a local LLaVA directory."""

    source: str = choice("tiny", "tiny", "local")  # tiny = built from the sizes below and pre-trained here
    path: str = ""  # source=local: a LLaVA-1.5 directory (config, weights, processor files)
    image_size: int = 36  # tiny: image side (pixels)
    patch_size: int = 12  # tiny: CLIP patch side (3 × 3 patches: one per scene cell)
    vision_width: int = 64  # tiny: CLIP vision hidden size
    vision_layers: int = 2  # tiny: CLIP vision layers
    text_width: int = 96  # tiny: LLaMA hidden size
    text_layers: int = 4  # tiny: LLaMA decoder layers
    heads: int = 4  # tiny: attention heads (vision and text)
    vocab_size: int = 600  # tiny: BPE vocabulary trained on the corpora
    max_length: int = 2048  # local: longest training sequence (tokens)


@dataclass
class DataConfig:
    """Procedural multimodal corpora (or local dataset directories for the paper path)."""

    data_seed: int = 0  # seed of every generated corpus
    upstream_train: int = 20000  # pre-training examples (caption + VQA mixture)
    upstream_eval: int = 100  # evaluation examples per upstream task
    downstream_tasks: list[str] = field(default_factory=lambda: list(DOWNSTREAM_TASKS))  # fine-tuning tasks (one run each)
    downstream_train: int = 2000  # fine-tuning examples per downstream task
    downstream_eval: int = 100  # evaluation examples per downstream task
    mcqa_kinds: list[str] = field(default_factory=lambda: list(MCQA_KINDS))  # multiple-choice question kinds (corpora._mcqa_item)
    mc_answer: str = choice("letter", *MC_ANSWERS)  # multiple-choice target: the letter (ScienceQA) or the option's text [recon]
    local_dir: str = ""  # paper path: a directory with the downstream/upstream datasets (see local.py)
    local_task: str = choice("scienceqa", "flickr30k", "coco", "scienceqa", "iconqa")  # paper path: the downstream dataset `train` fine-tunes on
    local_upstream: list[str] = field(default_factory=list)  # paper path: upstream VQA sets ([] = every one present)

    def __post_init__(self) -> None:
        check_subset("data.downstream_tasks", self.downstream_tasks, DOWNSTREAM_TASKS)
        check_subset("data.mcqa_kinds", self.mcqa_kinds, MCQA_KINDS)


@dataclass
class PretrainConfig:
    """Upstream pre-training of the tiny model (cached; every fine-tuning run starts from it)."""

    steps: int = 3600  # a helper's probe: ~0.08 s/step on 1 thread (see README)
    lr: float = 3e-4  # 1e-3 and 5e-4 stalled at the answer marginals in short probes
    batch_size: int = 32
    seed: int = 0
    # the mixture, in equal shares; "choice" = colour/count/position as options (target: data.mc_answer) [recon]
    tasks: list[str] = field(default_factory=lambda: list(PRETRAIN_TASKS))
    # image domains of the pre-training images (the upstream evaluation stays plain) [recon]
    styles: list[str] = field(default_factory=lambda: ["plain"])

    def __post_init__(self) -> None:
        check_subset("pretrain.tasks", self.tasks, PRETRAIN_TASKS)
        check_subset("pretrain.styles", self.styles, STYLES)


@dataclass
class FinetuneConfig:
    """Downstream fine-tuning: only the projector and the last LM layers train (as the paper)."""

    method: str = choice("spider", *METHODS)  # the rule `train` uses
    epochs: int = 2
    lr: float = 2e-4  # LM layers; the projector gets lr × projector_lr_ratio
    projector_lr_ratio: float = 0.1  # the paper: 2e-5 (projector) vs 2e-4 (LM)
    last_layers: int = 2  # trainable LM decoder layers (from the top)
    batch_size: int = 16
    warmup: float = 0.03  # warm-up fraction of the cosine schedule
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    l2sp_weight: float = 0.01  # L2-SP λ
    mask_ratio: float = 0.5  # Magnitude/Random mask ratio
    dare_drop: float = 0.9  # DARE drop rate p
    graft_keep: float = 0.1  # Grafting: fraction of entries kept by |θ − θ₀|
    checkpoint_every: int = 50  # optimizer steps between checkpoints (resume after a kill)


@dataclass
class EvalConfig:
    max_new_tokens: int = 0  # 0 = the longest reference answer + a margin
    batch_size: int = 32


@dataclass
class ExperimentConfig:
    methods: list[str] = field(default_factory=lambda: list(METHODS))
    processes: int = 2  # fine-tuning runs side by side (one torch thread each)

    def __post_init__(self) -> None:
        check_subset("experiment.methods", self.methods, METHODS)


@dataclass
class SpiderConfig(Common):
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)
    task: str = choice("mcqa", *DOWNSTREAM_TASKS)  # the downstream task `train` fine-tunes on
