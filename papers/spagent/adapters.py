"""Real tools: `diffusers` pipelines loaded from a local directory (the weights come only from
a user path; nothing downloads). One adapter class, a table of what each pipeline needs:

    pipeline class                           kind   inputs
    CogVideoXPipeline                        t2v    prompt
    CogVideoXImageToVideoPipeline            i2v    prompt, image
    CogVideoXVideoToVideoPipeline            v2v    prompt, video
    StableVideoDiffusionPipeline             i2v    image (no text)
    I2VGenXLPipeline                         i2v    prompt, image
    AnimateDiffPipeline                      t2v    prompt
    TextToVideoSDPipeline (ModelScope T2V)   t2v    prompt
    StableDiffusionInstructPix2PixPipeline   edit   prompt (the instruction), image
    StableDiffusionPipeline                  t2i    prompt

Outputs are returned as uint8 frames resized to the agent's frame size, so the metrics and
the capability probes treat a real tool like a procedural one (`add-tool` assesses it).
"""

from __future__ import annotations

import numpy as np

from papers.spagent.media import as_rgb
from papers.spagent.tools import Tool, Video
from shared import UserError

PIPELINES = {
    "CogVideoXPipeline": ("t2v", ("prompt",)),
    "CogVideoXImageToVideoPipeline": ("i2v", ("prompt", "image")),
    "CogVideoXVideoToVideoPipeline": ("v2v", ("prompt", "video")),
    "StableVideoDiffusionPipeline": ("i2v", ("image",)),
    "I2VGenXLPipeline": ("i2v", ("prompt", "image")),
    "AnimateDiffPipeline": ("t2v", ("prompt",)),
    "TextToVideoSDPipeline": ("t2v", ("prompt",)),
    "StableDiffusionInstructPix2PixPipeline": ("edit", ("prompt", "image")),
    "StableDiffusionPipeline": ("t2i", ("prompt",)),
}


def _pil(frame: np.ndarray, side: int):
    from PIL import Image

    return Image.fromarray(as_rgb(frame)).resize((side, side), Image.BICUBIC)


def _resize(frames: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(f).resize((size, size), Image.BICUBIC)) for f in frames])


class DiffusersTool(Tool):
    """A tool over a diffusers pipeline object (`pipe`), or one loaded from `path`."""

    def __init__(self, name: str, kind: str, pipeline: str, pipe=None, path: str = "", steps: int = 25,
                 guidance: float = 6.0, resolution: int | None = None):
        super().__init__(name, kind, "diffusers", {})
        if pipeline not in PIPELINES:
            raise UserError(f"tool {name}: pipeline {pipeline!r} is not one of {', '.join(PIPELINES)}")
        if PIPELINES[pipeline][0] != kind:
            raise UserError(f"tool {name}: {pipeline} is a {PIPELINES[pipeline][0]} pipeline, not {kind}")
        self.pipeline, self.path, self.steps, self.guidance = pipeline, path, steps, guidance
        self.resolution = resolution
        self._pipe = pipe

    @classmethod
    def from_spec(cls, spec: dict) -> DiffusersTool:
        if not spec.get("path") or not spec.get("pipeline"):
            raise UserError(f"tool {spec['name']}: a diffusers tool needs 'pipeline' and 'path' (a local directory)")
        return cls(spec["name"], spec["kind"], spec["pipeline"], path=spec["path"], steps=int(spec.get("steps", 25)),
                   guidance=float(spec.get("guidance", 6.0)), resolution=spec.get("resolution"))

    def spec(self) -> dict:
        return {"name": self.name, "kind": self.kind, "family": "diffusers", "pipeline": self.pipeline,
                "path": self.path, "steps": self.steps, "guidance": self.guidance,
                **({"resolution": self.resolution} if self.resolution else {})}

    @property
    def pipe(self):
        if self._pipe is None:
            from pathlib import Path

            import diffusers

            if not Path(self.path).is_dir():
                raise UserError(f"tool {self.name}: weights directory {self.path} does not exist")
            try:
                self._pipe = getattr(diffusers, self.pipeline).from_pretrained(self.path, local_files_only=True)
            except (OSError, ValueError) as exc:
                raise UserError(f"tool {self.name}: cannot load {self.pipeline} from {self.path} "
                                f"({str(exc).splitlines()[0][:160]})") from None
            from shared.device import resolve_device

            self._pipe.to(resolve_device("auto"))
        return self._pipe

    def call_kwargs(self, text: str, image, video, seed: int, world: Video) -> dict:
        import torch

        side = self.resolution or world.size
        needs = PIPELINES[self.pipeline][1]
        kw = {"num_inference_steps": self.steps, "output_type": "np",
              "generator": torch.Generator("cpu").manual_seed(seed), "height": side, "width": side}
        if "prompt" in needs:
            kw["prompt"] = text
        if self.pipeline != "StableVideoDiffusionPipeline":
            kw["guidance_scale"] = self.guidance
        else:
            kw.update(decode_chunk_size=world.frames, min_guidance_scale=1.0, max_guidance_scale=self.guidance)
        if self.pipeline.startswith("CogVideoX"):
            kw["max_sequence_length"] = int(self.pipe.transformer.config.max_text_seq_length)
        if self.pipeline == "I2VGenXLPipeline" and not hasattr(self.pipe.text_encoder, "text_model"):
            # the deprecated pipeline's default clip_skip=1 reads text_encoder.text_model, which
            # transformers 5's CLIPTextModel no longer has: use the last layer instead
            kw["clip_skip"] = None
        if "image" in needs:
            kw["image"] = _pil(image, side)
        if "video" in needs:
            kw["video"] = [_pil(f, side) for f in video]
        if self.kind in ("t2v", "i2v"):
            kw["num_frames"] = world.frames
        if self.pipeline == "StableDiffusionInstructPix2PixPipeline":
            kw.pop("height"), kw.pop("width")
        return kw

    def __call__(self, text, image=None, video=None, seed=0, world=None):
        world = world or Video()
        self.check_inputs(image, video)
        kw = self.call_kwargs(text, image, video, seed, world)
        out = self.pipe(**kw)
        frames = out.frames[0] if hasattr(out, "frames") else out.images
        frames = as_rgb(np.asarray(frames))
        if self.kind in ("t2i", "edit"):
            return _resize(frames[:1], world.size)[0]
        return _resize(frames, world.size)
