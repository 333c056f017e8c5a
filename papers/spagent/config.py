"""SPAgent configuration: one documented field per line. Scales live in configs/*.yaml."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.config import Common, choice, num


@dataclass
class VideoConfig:
    """The procedural world's frames."""

    size: int = num(32, ge=16, le=256)  # frame side (pixels)
    frames: int = num(8, ge=3, le=64)  # frames per video
    flow_scale: float = num(2.0, gt=0)  # flow magnitude (pixels per frame) that counts as fully dynamic [recon]
    dynamic_threshold: float = num(0.5, ge=0)  # VBench's binary dynamic degree: top-5 % flow above this (pixels)


@dataclass
class DataConfig:
    """The annotated request dataset (intents.py)."""

    data_seed: int = num(0, ge=0)  # seed of the generated requests (one dataset for every seed)
    train_requests: int = num(2000, ge=12)  # requests from the training paraphrase families
    heldout_requests: int = num(400, ge=12)  # requests from the held-out families (the test set)
    text_features: str = choice("minilm", "minilm", "hashed")  # frozen word features of the intent model


@dataclass
class EncoderConfig:
    """The contrastive image-text encoder trained here."""

    steps: int = num(1000, ge=1)  # AdamW steps
    batch: int = num(96, ge=2)  # image-caption pairs per step
    lr: float = num(3e-3, gt=0)  # learning rate
    width: int = num(16, ge=4)  # conv channels of the image tower
    dim: int = num(64, ge=8)  # joint embedding size
    zero_shot_eval: int = num(200, ge=1)  # held-out images for its zero-shot (colour, subject) accuracy


@dataclass
class IntentConfig:
    """The intent model's heads (intent_model.py)."""

    steps: int = num(300, ge=1)  # full-batch Adam steps
    lr: float = num(3e-3, gt=0)  # learning rate
    hidden: int = num(64, ge=4)  # hidden units of each head


@dataclass
class PlannerConfig:
    """Route planning and the capability probes."""

    extra_steps: int = num(1, ge=0, le=2)  # P2: candidates at most this many steps longer than the shortest
    margin: float = num(0.02, ge=0, le=1)  # P3: a longer route must be stronger by more than this
    probes: int = num(6, ge=1)  # probe inputs per tool (the fixed probe suite)
    probe_seed: int = num(0, ge=0)  # seed of the probe suite (fixed: the same for every tool)


@dataclass
class ExperimentConfig:
    """What `eval` and `reproduce` measure."""

    eval_requests: int = num(120, ge=6)  # held-out requests every method is run on (per seed)
    new_tool: str = "tools/i2v_steady.yaml"  # the library-expansion tool spec (relative to papers/spagent/)
    min_effect: float = num(0.01, ge=0, le=1)  # smallest quality gain of interest (quality is in [0, 1])
    completion_bar: float = num(0.8, ge=0, le=1)  # "completes a task kind": completion rate above this
    selection_bar: float = num(0.8, ge=0, le=1)  # "picks the new tool where / only where it is best": rates above this
    plateau_tol: float = num(0.1, gt=0)  # converged: a loss moved ≤ this fraction of its decrease over the last 20 %
    gallery: int = num(3, ge=0, le=10)  # requests of the README gallery (plans + contact sheets)
    processes: int = num(2, ge=1)  # seeds trained and evaluated side by side (one torch thread each)


@dataclass
class BackendConfig:
    """Who recognises the intent: the model trained here, or an LLM."""

    kind: str = choice("default", "default", "openai", "transformers")  # default = the intent model trained here
    url: str = ""  # openai: base URL of an OpenAI-compatible server (http://127.0.0.1:8000/v1)
    model: str = "local"  # openai: the model name sent with each request
    path: str = ""  # transformers: a local causal-LM directory
    timeout: float = num(30.0, gt=0)  # openai: seconds to wait for an answer
    max_new_tokens: int = num(96, ge=1)  # transformers: tokens generated per request
    fallback: bool = True  # on malformed LLM output use the default model (false: one-line error)


@dataclass
class SpagentConfig(Common):
    video: VideoConfig = field(default_factory=VideoConfig)
    data: DataConfig = field(default_factory=DataConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    intent: IntentConfig = field(default_factory=IntentConfig)
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)
    backend: BackendConfig = field(default_factory=BackendConfig)
    library: str = ""  # run / add-tool: a library directory (""= the newest trained agent of this config and seed)
    library_file: str = ""  # tool specs (YAML list) replacing the procedural library ("" = procedural; relative to papers/spagent/)
    weights_dir: str = ""  # root of the local weights the library_file's diffusers paths are relative to

    def __post_init__(self) -> None:
        if isinstance(self.experiment.eval_requests, int) and isinstance(self.data.heldout_requests, int) \
                and self.experiment.eval_requests > self.data.heldout_requests >= 12:
            raise ValueError(f"experiment.eval_requests ({self.experiment.eval_requests}) must be at most "
                             f"data.heldout_requests ({self.data.heldout_requests})")
        if self.library_file and not self.weights_dir:
            raise ValueError("library_file needs weights_dir (the directory holding the pipelines' local weights)")
        if self.backend.kind == "openai" and not self.backend.url:
            raise ValueError("backend.kind=openai needs backend.url (an OpenAI-compatible base URL)")
        if self.backend.kind == "transformers" and not self.backend.path:
            raise ValueError("backend.kind=transformers needs backend.path (a local causal-LM directory)")
