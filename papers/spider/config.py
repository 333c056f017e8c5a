"""SPIDER configuration: one documented field per line. Scales live in configs/*.yaml."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from papers.spider.baselines import METHODS
from papers.spider.corpora import DOWNSTREAM_TASKS, MC_ANSWERS, MCQA_KINDS, PRETRAIN_TASKS
from papers.spider.scenes import STYLES
from shared.config import Common, check_subset, choice, nonempty, num, nums

MAX_POSITIONS = 256  # the tiny LLaMA's position embeddings (mllm.build_model)
MAX_IMAGE_TOKENS = MAX_POSITIONS // 2  # the rest holds the prompt and the answer


def _in_range(section) -> bool:
    """Every numeric field of `section` within its declared range (a cross-field rule is
    only checked on values that pass their own range)."""
    return all(f.metadata["range"].ok(getattr(section, f.name)) for f in dataclasses.fields(section)
               if "range" in f.metadata and isinstance(getattr(section, f.name), (int, float)))


@dataclass
class ModelConfig:
    """The MLLM: a tiny LlavaForConditionalGeneration built here, or a local LLaVA directory."""

    source: str = choice("tiny", "tiny", "local")  # tiny = built from the sizes below and pre-trained here
    path: str = ""  # source=local: a LLaVA-1.5 directory (config, weights, processor files)
    image_size: int = num(36, ge=3, le=1024)  # tiny: image side (pixels)
    patch_size: int = num(12, ge=1)  # tiny: CLIP patch side (3 × 3 patches: one per scene cell)
    vision_width: int = num(64, ge=1)  # tiny: CLIP vision hidden size
    vision_layers: int = num(2, ge=1)  # tiny: CLIP vision layers
    text_width: int = num(96, ge=1)  # tiny: LLaMA hidden size
    text_layers: int = num(4, ge=1)  # tiny: LLaMA decoder layers
    heads: int = num(4, ge=1)  # tiny: attention heads (vision and text)
    vocab_size: int = num(600, ge=262)  # tiny: BPE vocabulary trained on the corpora (≥ 256 bytes + 5 special tokens + 1 merge)
    max_length: int = num(2048, ge=1)  # local: longest training sequence (tokens)
    system_prompt: str = choice("vicuna_v1", "vicuna_v1", "none")  # local: LLaVA-1.5's conversation template's system line, or none
    image_aspect: str = choice("pad", "pad", "crop")  # local: pad = LLaVA-1.5's pad-to-square with the mean pixel before the processor; crop = the processor's resize + centre crop


@dataclass
class DataConfig:
    """Procedural multimodal corpora (or local dataset directories for the paper path)."""

    data_seed: int = num(0, ge=0)  # seed of every generated corpus
    upstream_train: int = num(20000, ge=1)  # pre-training examples (caption + VQA mixture)
    upstream_eval: int = num(100, ge=0)  # evaluation examples per upstream task (paper path: 0 = the whole test split)
    downstream_tasks: list[str] = nonempty(list(DOWNSTREAM_TASKS))  # fine-tuning tasks (one run each)
    downstream_train: int = num(2000, ge=0)  # fine-tuning examples per downstream task (paper path: 0 = the whole split)
    downstream_eval: int = num(100, ge=0)  # evaluation examples per downstream task (paper path: 0 = the whole split)
    downstream_val: int = num(100, ge=1)  # tiny model: validation examples per downstream task (the baselines' sweeps choose on them; no image shared with training or test)
    upstream_val: int = num(100, ge=1)  # tiny model: validation examples per upstream VQA task (the sweeps; no image shared with the test sets)
    mcqa_kinds: list[str] = nonempty(list(MCQA_KINDS))  # multiple-choice question kinds (corpora._mcqa_item)
    mc_answer: str = choice("letter", *MC_ANSWERS)  # multiple-choice target: the letter (ScienceQA) or the option's text [recon]
    local_dir: str = ""  # paper path: a directory with the downstream/upstream datasets (see local.py)
    local_task: str = choice("scienceqa", "flickr30k", "coco", "scienceqa", "iconqa")  # paper path: the downstream dataset `train` fine-tunes on
    local_upstream: list[str] = field(default_factory=list)  # paper path: upstream VQA sets ([] = every one present)
    local_suffix: str = choice("llava", "llava", "none")  # paper path: append LLaVA-1.5's answer-format instruction to each prompt (local.SUFFIXES), or leave prompts as written

    def __post_init__(self) -> None:
        check_subset("data.downstream_tasks", self.downstream_tasks, DOWNSTREAM_TASKS)
        check_subset("data.mcqa_kinds", self.mcqa_kinds, MCQA_KINDS)


@dataclass
class PretrainConfig:
    """Upstream pre-training of the tiny model (cached; every fine-tuning run starts from it)."""

    steps: int = num(3600, ge=0)  # optimizer steps (0 = no pre-training); a helper's probe: ~0.08 s/step on 1 thread (see README)
    lr: float = num(3e-4, gt=0)  # AdamW learning rate; 1e-3 and 5e-4 stalled at the answer marginals in short probes
    batch_size: int = num(32, ge=1)  # pre-training batch (examples)
    seed: int = num(0, ge=0)  # initialisation and data-order seed of the tiny model
    threads: int = num(1, ge=1)  # torch threads of the pre-training (2 threads on a busy 2-core box ran ~50x slower than 1; the last bits of the weights depend on it)
    # the mixture, in equal shares; "choice" = colour/count/position as options (target: data.mc_answer) [recon]
    tasks: list[str] = nonempty(list(PRETRAIN_TASKS))
    # image domains of the pre-training images (the upstream evaluation stays plain) [recon]
    styles: list[str] = nonempty(["plain"])

    def __post_init__(self) -> None:
        check_subset("pretrain.tasks", self.tasks, PRETRAIN_TASKS)
        check_subset("pretrain.styles", self.styles, STYLES)


@dataclass
class FinetuneConfig:
    """Downstream fine-tuning: only the projector and the last LM layers train (as the paper)."""

    method: str = choice("spider", *METHODS)  # the rule `train` uses
    epochs: int = num(2, ge=1)  # passes over the downstream training set
    lr: float = num(2e-4, gt=0)  # LM layers; the projector gets lr × projector_lr_ratio
    projector_lr_ratio: float = num(0.1, ge=0)  # the paper: 2e-5 (projector) vs 2e-4 (LM)
    last_layers: int = num(2, ge=1)  # trainable LM decoder layers (from the top)
    batch_size: int = num(16, ge=1)  # global batch (split over the processes of a launch)
    warmup: float = num(0.03, ge=0, lt=1)  # warm-up fraction of the cosine schedule
    weight_decay: float = num(0.0, ge=0)  # AdamW weight decay (the paper: none)
    max_grad_norm: float = num(1.0, gt=0)  # gradient clipping norm
    l2sp_weight: float = num(0.01, ge=0)  # L2-SP λ
    mask_ratio: float = num(0.5, ge=0, le=1)  # Magnitude/Random mask ratio
    dare_drop: float = num(0.9, ge=0, lt=1)  # DARE drop rate p
    graft_keep: float = num(0.1, ge=0, le=1)  # Grafting: fraction of entries kept by |θ − θ₀|
    checkpoint_every: int = num(50, ge=1)  # optimizer steps between checkpoints (resume after a kill)


@dataclass
class EvalConfig:
    """Greedy generation for the upstream and downstream scores (train, eval, reproduce)."""

    max_new_tokens: int = num(0, ge=0)  # 0 = the longest reference answer + a margin
    batch_size: int = num(32, ge=1)  # generation batch (per process)


@dataclass
class ExperimentConfig:
    """What `reproduce` runs."""

    methods: list[str] = nonempty(list(METHODS))  # the methods `reproduce` fine-tunes
    processes: int = num(2, ge=1)  # fine-tuning runs side by side (one torch thread each)
    # tiny reproduce: the values each baseline's hyper-parameter is swept over, on the first seed,
    # chosen by H on the validation split ([] = the finetune.* value alone, no sweep)
    l2sp_weights: list[float] = nums([], ge=0, nonempty=False)  # L2-SP λ values
    dare_drops: list[float] = nums([], ge=0, lt=1, nonempty=False)  # DARE drop rates p
    graft_keeps: list[float] = nums([], ge=0, le=1, nonempty=False)  # Grafting kept fractions s

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

    def __post_init__(self) -> None:
        """Cross-field rules of the tiny model (the paper path reads its sizes from model.path)."""
        if self.model.source != "tiny":
            return
        m, d = self.model, self.data
        if not all(_in_range(section) for section in (m, d, self.finetune)):
            return  # a field out of its own range: load_config's range check names it
        if m.patch_size > m.image_size or m.image_size % m.patch_size:
            raise ValueError(f"model.image_size ({m.image_size}) must be a multiple of model.patch_size "
                             f"({m.patch_size})")
        tokens = (m.image_size // m.patch_size) ** 2
        if tokens > MAX_IMAGE_TOKENS:
            raise ValueError(f"model.image_size / model.patch_size gives {tokens} image tokens; the tiny "
                             f"model's {MAX_POSITIONS} positions allow at most {MAX_IMAGE_TOKENS}")
        for key, width in (("model.vision_width", m.vision_width), ("model.text_width", m.text_width)):
            if width % m.heads:
                raise ValueError(f"{key} ({width}) must be a multiple of model.heads ({m.heads})")
        if (m.text_width // m.heads) % 2:
            raise ValueError(f"model.text_width / model.heads ({m.text_width // m.heads}) must be even "
                             "(rotary position embeddings rotate pairs of channels)")
        if self.finetune.last_layers > m.text_layers:
            raise ValueError(f"finetune.last_layers ({self.finetune.last_layers}) must be at most "
                             f"model.text_layers ({m.text_layers})")
        for key in ("downstream_train", "downstream_eval", "upstream_eval"):
            if getattr(d, key) < 1:
                raise ValueError(f"data.{key} must be at least 1 for the tiny model (0 = the whole "
                                 "split applies to the paper path's datasets only)")
