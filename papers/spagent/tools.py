"""The tool library: one interface for five kinds of generation and editing model, and the
procedural tools (the offline default) [recon].

A tool declares its kind, hence its inputs and output:

    kind   inputs           output
    t2i    text             image  (H, W, 3) uint8
    t2v    text             video  (T, H, W, 3) uint8
    i2v    image, text      video
    edit   image, text      image
    v2v    video, text      video

Procedural tools read their prompt through `lexicon.parse` and work on pixels only (the
subject is found by `scenes.segment`). Each has controllable weaknesses, its `params`:
flicker (std of a per-frame brightness offset, 0-255 units), jitter (std of per-frame
position noise, pixels), drift (identity drift: how far the subject's colour slides toward
another colour by the last frame), motion (amplitude of the motion, 1 = the full path),
colour_shift (a constant pull of the subject colour toward a wrong one), ignore (probability
of ignoring the colour or the background of the prompt), bleed (edit: the recolouring spills
onto this fraction of the background ring around the subject), noise (pixel noise std).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from papers.spagent import lexicon, scenes
from shared import UserError

KINDS = {"t2i": (("text",), "image"), "t2v": (("text",), "video"), "i2v": (("image", "text"), "video"),
         "edit": (("image", "text"), "image"), "v2v": (("video", "text"), "video")}
PARAMS = {"flicker": 0.0, "jitter": 0.0, "drift": 0.0, "motion": 1.0, "colour_shift": 0.0,
          "ignore": 0.0, "bleed": 0.0, "noise": 2.0}
PARAM_RANGES = {"flicker": (0, 100), "jitter": (0, 10), "drift": (0, 1), "motion": (0, 2),
                "colour_shift": (0, 1), "ignore": (0, 1), "bleed": (0, 1), "noise": (0, 50)}


@dataclass
class Video:
    """What a tool needs to know about the world: frame size and count."""

    size: int = 32
    frames: int = 8


@dataclass
class Tool:
    """A tool of one kind: `tool(text, image=, video=, seed=)` returns an image or a video."""

    name: str
    kind: str
    family: str = "procedural"
    params: dict = field(default_factory=dict)

    @property
    def inputs(self) -> tuple[str, ...]:
        return KINDS[self.kind][0]

    @property
    def output(self) -> str:
        return KINDS[self.kind][1]

    def spec(self) -> dict:
        return {"name": self.name, "kind": self.kind, "family": self.family, "params": dict(self.params)}

    def check_inputs(self, image, video) -> None:
        if "image" in self.inputs and image is None:
            raise ValueError(f"{self.name} ({self.kind}) needs an image")
        if "video" in self.inputs and (video is None or len(video) == 0):
            raise ValueError(f"{self.name} ({self.kind}) needs a video with frames")

    def __call__(self, text: str, image=None, video=None, seed: int = 0, world: Video | None = None):
        raise NotImplementedError


def _rng(seed: int, *parts: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32("|".join(parts).encode())])


def _other_colour(rng, colour) -> np.ndarray:
    names = [c for c in scenes.COLOURS if c != colour]
    return np.asarray(scenes.COLOURS[str(rng.choice(names))], np.float64)


class ProceduralTool(Tool):
    """A procedural tool; its weaknesses are `params` (see the module docstring)."""

    def p(self, key: str) -> float:
        return float(self.params.get(key, PARAMS[key]))

    def __call__(self, text, image=None, video=None, seed=0, world=None):
        world = world or Video()
        self.check_inputs(image, video)
        rng = _rng(seed, self.name, text)
        want = lexicon.parse(text)
        if self.kind in ("t2i", "t2v"):
            out = self._generate(want, rng, world)
        elif self.kind == "i2v":
            out = self._animate(np.asarray(image), want, rng, world)
        elif self.kind == "edit":
            out = self._edit(np.asarray(image), want, rng)
        else:
            out = np.stack([self._edit(f, want, _rng(seed, self.name, text, "v2v")) for f in video])
            out = self._effects(out, rng, want.get("colour"), drift_mask=True)
        return out.round().clip(0, 255).astype(np.uint8)

    # -- generation from text
    def _generate(self, want, rng, world):
        scene = scenes.random_scene(rng)
        keep = {k: want[k] for k in ("colour", "subject", "background", "motion") if want[k]}
        if keep.get("colour") and rng.random() < self.p("ignore"):
            keep.pop("colour")
        if keep.get("background") and rng.random() < self.p("ignore"):
            keep.pop("background")
        scene = scene.with_(**keep)
        frames = 1 if self.kind == "t2i" else world.frames
        video = self._render(scene, rng, world.size, frames).astype(np.float64)
        video = self._effects(video, rng, scene.colour, drift_mask=self.kind == "t2v")
        return video[0] if self.kind == "t2i" else video

    def _render(self, scene, rng, size, frames):
        colour = np.asarray(scenes.COLOURS[scene.colour], np.float64)
        colour = colour + self.p("colour_shift") * (_other_colour(rng, scene.colour) - colour)
        bg = scenes.background(scene.background, size)
        mask = scenes.subject_mask(scene.subject, round(scene.size * size))
        out = []
        for i in range(frames):
            t = i / (frames - 1) if frames > 1 else 0.5
            cx, cy = scenes.path(scene.motion, t, scene.x, scene.y, self.p("motion"))
            jx, jy = rng.normal(0, self.p("jitter"), 2) / size if i else (0.0, 0.0)
            out.append(scenes.paste(bg, mask, colour, cx + jx, cy + jy))
        return np.stack(out)

    # -- image to video
    def _animate(self, image, want, rng, world):
        pm, pix, (cx, cy) = scenes.subject_patch(image)
        mask, bg = scenes.segment(image)
        plate = np.where(mask[..., None], bg, image.astype(np.float64))
        motion = want["motion"] or "swim"
        # the path starts where the subject is (t = 0 on (cx, cy)), mirrored along an axis
        # where it would leave the frame
        ts = np.linspace(0, 1, world.frames)
        x0, y0 = scenes.path(motion, 0.0, 0.5, 0.5, self.p("motion"))
        d = np.array([np.subtract(scenes.path(motion, t, 0.5, 0.5, self.p("motion")), (x0, y0)) for t in ts])
        for axis, c in ((0, cx), (1, cy)):
            if (c + d[:, axis]).max() > 0.85 or (c + d[:, axis]).min() < 0.15:
                d[:, axis] *= -1
        out = []
        for i in range(world.frames):
            jx, jy = rng.normal(0, self.p("jitter"), 2) / plate.shape[0] if i else (0.0, 0.0)
            out.append(scenes.paste_patch(plate, pm, pix, cx + d[i, 0] + jx, cy + d[i, 1] + jy))
        return self._effects(np.stack(out), rng, None, drift_mask=True)

    # -- image edit: recolour the subject
    def _edit(self, image, want, rng):
        img = image.astype(np.float64)
        target = want["colour"]
        if target is None or rng.random() < self.p("ignore"):
            return img
        mask, _ = scenes.segment(image)
        colour = np.asarray(scenes.COLOURS[target], np.float64)
        colour = colour + self.p("colour_shift") * (_other_colour(rng, target) - colour)
        out = img.copy()
        out[mask] = colour
        if self.p("bleed") > 0:
            ring = _dilate(mask, 2) & ~mask
            spill = ring & (rng.random(mask.shape) < self.p("bleed"))
            out[spill] = 0.5 * out[spill] + 0.5 * colour
        return out

    # -- per-frame artefacts
    def _effects(self, video, rng, colour, drift_mask: bool):
        video = np.asarray(video, np.float64).copy()
        n = video.shape[0]
        if self.p("drift") > 0 and drift_mask and n > 1:
            towards = _other_colour(rng, colour)
            for i in range(1, n):
                mask, _ = scenes.segment(video[i].clip(0, 255).astype(np.uint8))
                a = self.p("drift") * i / (n - 1)
                video[i][mask] = (1 - a) * video[i][mask] + a * towards
        if self.p("flicker") > 0 and n > 1:
            video[1:] += rng.normal(0, self.p("flicker"), (n - 1, 1, 1, 1))
        if self.p("noise") > 0:
            video += rng.normal(0, self.p("noise"), video.shape)
        return video


def _dilate(mask: np.ndarray, k: int) -> np.ndarray:
    out = mask.copy()
    for dy in range(-k, k + 1):
        for dx in range(-k, k + 1):
            out |= np.roll(np.roll(mask, dy, 0), dx, 1)
    return out


def extract_frame(video: np.ndarray) -> np.ndarray:
    """The route's frame-extraction step (not a model): the first frame."""
    return np.asarray(video)[0]


# The incumbent library: two or three tools per kind, each with its own weakness [recon].
LIBRARY = [
    {"name": "t2i_crisp", "kind": "t2i", "params": {"ignore": 0.1}},
    {"name": "t2i_quick", "kind": "t2i", "params": {"colour_shift": 0.4, "noise": 6}},
    {"name": "t2v_flicker", "kind": "t2v", "params": {"flicker": 14}},
    {"name": "t2v_still", "kind": "t2v", "params": {"motion": 0.2}},
    {"name": "t2v_partial", "kind": "t2v", "params": {"ignore": 0.5, "jitter": 0.8}},
    {"name": "i2v_drift", "kind": "i2v", "params": {"drift": 0.6}},
    {"name": "i2v_jitter", "kind": "i2v", "params": {"jitter": 2.5}},
    {"name": "i2v_lazy", "kind": "i2v", "params": {"motion": 0.2, "flicker": 8}},
    {"name": "edit_hue", "kind": "edit", "params": {"colour_shift": 0.15}},
    {"name": "edit_bleed", "kind": "edit", "params": {"bleed": 0.8, "ignore": 0.05}},
    {"name": "v2v_flicker", "kind": "v2v", "params": {"flicker": 12}},
    {"name": "v2v_drift", "kind": "v2v", "params": {"drift": 0.5}},
]


def check_spec(spec: dict, where: str = "tool spec") -> dict:
    """A tool spec {name, kind, family, params | path, pipeline} checked; mistakes are UserErrors."""
    if not isinstance(spec, dict):
        raise UserError(f"{where}: must be a mapping with name, kind and params")
    name, kind = spec.get("name"), spec.get("kind")
    if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
        raise UserError(f"{where}: 'name' must be a word of letters, digits, - or _ (got {name!r})")
    if kind not in KINDS:
        raise UserError(f"{where}: 'kind' must be one of {', '.join(KINDS)} (got {kind!r})")
    family = spec.get("family", "procedural")
    if family not in ("procedural", "diffusers"):
        raise UserError(f"{where}: 'family' must be procedural or diffusers (got {family!r})")
    unknown = set(spec) - {"name", "kind", "family", "params", "path", "pipeline", "steps", "guidance", "resolution"}
    if unknown:
        raise UserError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    params = spec.get("params") or {}
    if family == "procedural":
        if not isinstance(params, dict):
            raise UserError(f"{where}: 'params' must be a mapping")
        for key, value in params.items():
            if key not in PARAMS:
                raise UserError(f"{where}: unknown param '{key}' (choose from {', '.join(PARAMS)})")
            lo, hi = PARAM_RANGES[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
                raise UserError(f"{where}: param '{key}' = {value!r} is out of range ({lo} to {hi})")
    return {"name": name, "kind": kind, "family": family, "params": dict(params),
            **{k: spec[k] for k in ("path", "pipeline", "steps", "guidance", "resolution") if k in spec}}


def build_tool(spec: dict) -> Tool:
    spec = check_spec(spec)
    if spec["family"] == "diffusers":
        from papers.spagent.adapters import DiffusersTool

        return DiffusersTool.from_spec(spec)
    return ProceduralTool(spec["name"], spec["kind"], "procedural", spec["params"])


def incumbents() -> list[Tool]:
    return [build_tool(s) for s in LIBRARY]
