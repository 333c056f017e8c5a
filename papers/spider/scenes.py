"""Procedural scenes of coloured shapes on a 3 x 3 grid, rendered with numpy only.

A `Scene` fully determines its image (object colours, texture and pixel noise are stored in
it, the noise by its seed), so `render` is a pure function and a corpus only needs the rng
that sampled the scenes to be reproducible.

Geometry: coordinates are in [0, 1] (x to the right, y downwards). The image is split into a
3 x 3 grid of cells; every object sits in its own cell (centre = cell centre + a jitter of at
most `JITTER`), so "where is the red circle?" has a single well-defined answer (one of the
nine `POSITIONS`). Every object in a scene has a distinct (colour, shape) pair, so "the red
circle" always names one object.

Styles (the visual domain):
- "plain": a uniform light-grey background, exact palette colours (the upstream domain);
- "textured": a two-tone mid/dark background pattern (stripes, checks or dots) with pixel
  noise and colour jitter on the objects (the downstream captioning domain);
- "dark": a uniform near-black background, slight colour jitter and noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SHAPES = ("circle", "square", "triangle", "diamond", "cross")
PALETTE = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (50, 80, 225),
    "yellow": (235, 205, 30),
    "purple": (150, 60, 190),
    "orange": (245, 135, 25),
}
COLORS = tuple(PALETTE)
SIZES = {"small": 0.10, "large": 0.145}  # radius as a fraction of the image side
# (col, row) -> name; rows top/middle/bottom, cols left/centre/right
POSITIONS = {
    (0, 0): "top left",
    (1, 0): "top",
    (2, 0): "top right",
    (0, 1): "left",
    (1, 1): "center",
    (2, 1): "right",
    (0, 2): "bottom left",
    (1, 2): "bottom",
    (2, 2): "bottom right",
}
TEXTURES = ("stripes", "checks", "dots")
STYLES = ("plain", "textured", "dark")
JITTER = 0.02
# 36 px = 3 x 3 cells of 12 px: with 12 px ViT patches each object lies in one patch token
IMAGE_SIZE = 36


@dataclass(frozen=True)
class Obj:
    shape: str
    color: str
    size: str
    col: int
    row: int
    x: float  # centre, in [0, 1]
    y: float
    rgb: tuple[int, int, int]

    @property
    def position(self) -> str:
        return POSITIONS[(self.col, self.row)]

    @property
    def name(self) -> str:
        return f"{self.color} {self.shape}"


@dataclass(frozen=True)
class Scene:
    objects: tuple[Obj, ...]
    background: tuple[int, int, int]
    style: str = "plain"
    texture: str = "none"  # "none" or one of TEXTURES
    texture_rgb: tuple[int, int, int] = (0, 0, 0)
    texture_period: int = 4  # pixels at render size 32, scaled with the size
    noise: float = 0.0  # std of Gaussian pixel noise (in 0-255 units)
    noise_seed: int = 0

    def count(self, shape: str) -> int:
        return sum(o.shape == shape for o in self.objects)

    def find(self, color: str, shape: str) -> Obj | None:
        for o in self.objects:
            if o.color == color and o.shape == shape:
                return o
        return None


def _shape_mask(shape: str, dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    if shape == "circle":
        return dx * dx + dy * dy <= r * r
    if shape == "square":
        h = 0.85 * r
        return (np.abs(dx) <= h) & (np.abs(dy) <= h)
    if shape == "triangle":  # apex up at dy = -r, base at dy = 0.8 r with half-width r
        return (dy <= 0.8 * r) & (np.abs(dx) <= (dy + r) / 1.8)
    if shape == "diamond":
        return np.abs(dx) + np.abs(dy) <= 1.1 * r
    if shape == "cross":
        t = r / 3.0
        ax, ay = np.abs(dx), np.abs(dy)
        return ((ax <= t) & (ay <= r)) | ((ay <= t) & (ax <= r))
    raise ValueError(f"unknown shape {shape!r}")


def render(scene: Scene, size: int = IMAGE_SIZE) -> np.ndarray:
    """The scene as a (size, size, 3) uint8 array."""
    img = np.empty((size, size, 3), dtype=np.float32)
    img[:] = np.asarray(scene.background, dtype=np.float32)
    iy, ix = np.mgrid[0:size, 0:size]
    if scene.texture != "none":
        p = max(2, round(scene.texture_period * size / 32))
        if scene.texture == "stripes":
            mask = ((ix + iy) // p) % 2 == 0
        elif scene.texture == "checks":
            mask = ((ix // p) + (iy // p)) % 2 == 0
        elif scene.texture == "dots":
            mask = ((ix % p) < max(1, p // 2)) & ((iy % p) < max(1, p // 2)) & (((ix // p) + (iy // p)) % 2 == 0)
        else:
            raise ValueError(f"unknown texture {scene.texture!r}")
        img[mask] = np.asarray(scene.texture_rgb, dtype=np.float32)
    yy = (iy + 0.5) / size
    xx = (ix + 0.5) / size
    for o in scene.objects:
        m = _shape_mask(o.shape, xx - o.x, yy - o.y, SIZES[o.size])
        img[m] = np.asarray(o.rgb, dtype=np.float32)
    if scene.noise > 0:
        noise_rng = np.random.default_rng(scene.noise_seed)
        img += noise_rng.normal(0.0, scene.noise, size=img.shape).astype(np.float32)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _jitter_rgb(rng: np.random.Generator, rgb, amount: int) -> tuple[int, int, int]:
    if amount <= 0:
        return tuple(int(c) for c in rgb)
    d = rng.integers(-amount, amount + 1, size=3)
    return tuple(int(np.clip(c + e, 0, 255)) for c, e in zip(rgb, d))


def sample_scene(
    rng: np.random.Generator,
    max_objects: int = 4,
    style: str = "plain",
    min_objects: int = 1,
) -> Scene:
    """A random scene with `min_objects`..`max_objects` objects in distinct cells, each with a
    distinct (colour, shape) pair; deterministic given the rng state."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; expected one of {STYLES}")
    if not 1 <= min_objects <= max_objects <= 9:
        raise ValueError("need 1 <= min_objects <= max_objects <= 9")
    n = int(rng.integers(min_objects, max_objects + 1))
    cells = rng.choice(9, size=n, replace=False)
    cells.sort()  # reading order: top row first, left to right
    combos = rng.choice(len(COLORS) * len(SHAPES), size=n, replace=False)
    color_jitter = {"plain": 0, "textured": 25, "dark": 12}[style]
    objects = []
    for cell, combo in zip(cells, combos):
        col, row = int(cell % 3), int(cell // 3)
        color = COLORS[combo // len(SHAPES)]
        shape = SHAPES[combo % len(SHAPES)]
        size = "large" if rng.random() < 0.5 else "small"
        jx, jy = rng.uniform(-JITTER, JITTER, size=2)
        objects.append(
            Obj(
                shape=shape,
                color=color,
                size=size,
                col=col,
                row=row,
                x=float((col + 0.5) / 3 + jx),
                y=float((row + 0.5) / 3 + jy),
                rgb=_jitter_rgb(rng, PALETTE[color], color_jitter),
            )
        )
    if style == "plain":
        g = int(rng.integers(205, 246))
        return Scene(objects=tuple(objects), background=(g, g, g), style=style)
    if style == "dark":
        g = int(rng.integers(15, 46))
        return Scene(
            objects=tuple(objects),
            background=(g, g, g + int(rng.integers(0, 10))),
            style=style,
            noise=4.0,
            noise_seed=int(rng.integers(2**31)),
        )
    # textured: a muted base colour and a darker/lighter second tone
    base = rng.integers(60, 141, size=3)
    shift = int(rng.choice([-1, 1])) * int(rng.integers(25, 46))
    tone = np.clip(base + shift, 0, 255)
    return Scene(
        objects=tuple(objects),
        background=tuple(int(c) for c in base),
        style=style,
        texture=TEXTURES[int(rng.integers(len(TEXTURES)))],
        texture_rgb=tuple(int(c) for c in tone),
        texture_period=int(rng.integers(3, 6)),
        noise=8.0,
        noise_seed=int(rng.integers(2**31)),
    )
