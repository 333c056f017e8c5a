"""Procedural scenes [recon]: a coloured subject (a shape or an animal glyph) on a banded
background, moving along a named path. Rendering is the ground truth every procedural tool
starts from; `segment` is the pixel-level inverse the image and video tools use (a tool never
sees a scene's parameters, only pixels and its prompt)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import numpy as np

COLOURS = {
    "red": (215, 35, 35), "green": (40, 175, 60), "blue": (45, 75, 220),
    "yellow": (235, 210, 35), "purple": (150, 55, 190), "orange": (245, 135, 25),
}
# 7×7 glyphs of the animals; '#' is body, '.' empty
_GLYPHS = {
    "parrot": ["..##...", ".####..", ".#####.", "..####.", "..###..", "..##.#.", ".##...#"],
    "cat": ["#.....#", "##...##", "#######", "#.###.#", "#######", ".#####.", ".#...#."],
    "fish": ["...#...", "..###.#", ".######", "#######", ".######", "..###.#", "...#..."],
    "dog": ["##.....", "###....", ".######", ".######", ".######", ".#...#.", ".#...#."],
}
SHAPES = ("circle", "square", "triangle", "star")
SUBJECTS = (*SHAPES, *_GLYPHS)
# top colour, bottom colour, row where the lower band starts (fraction of the height)
BACKGROUNDS = {
    "beach": ((135, 195, 235), (225, 205, 150), 0.65),
    "forest": ((25, 80, 35), (85, 55, 30), 0.75),
    "night": ((10, 15, 45), (40, 40, 70), 0.8),
    "snow": ((190, 200, 215), (245, 245, 250), 0.6),
}
MOTIONS = ("fly", "swim", "jump", "circle")


@dataclass(frozen=True)
class Scene:
    """What a video shows: subject, its colour, the background, the motion, where it starts."""

    subject: str
    colour: str
    background: str
    motion: str = "swim"
    x: float = 0.5  # start centre, fractions of the width / height
    y: float = 0.5
    size: float = 0.28  # subject side, fraction of the frame side

    def with_(self, **kw) -> Scene:
        return replace(self, **kw)


def background(name: str, size: int) -> np.ndarray:
    """A banded background with a vertical gradient (rows are constant: see `segment`)."""
    return _background(name, size).copy()


@functools.lru_cache(maxsize=64)
def _background(name: str, size: int) -> np.ndarray:
    top, bottom, split = BACKGROUNDS[name]
    rows = np.zeros((size, 3), np.float64)
    cut = int(round(split * size))
    for r in range(size):
        if r < cut:
            rows[r] = np.asarray(top) * (0.85 + 0.15 * r / max(1, cut - 1))
        else:
            rows[r] = bottom
    return np.repeat(rows[:, None, :], size, axis=1).clip(0, 255)


def subject_mask(subject: str, side: int) -> np.ndarray:
    """A boolean side × side mask of the subject."""
    return _subject_mask(subject, max(3, int(side))).copy()


@functools.lru_cache(maxsize=512)
def _subject_mask(subject: str, side: int) -> np.ndarray:
    side = max(3, int(side))
    if subject in _GLYPHS:
        glyph = np.array([[c == "#" for c in row] for row in _GLYPHS[subject]])
        idx = (np.arange(side) * 7 // side)
        return glyph[np.ix_(idx, idx)]
    yy, xx = (np.mgrid[0:side, 0:side] + 0.5) / side * 2 - 1
    if subject == "circle":
        return xx ** 2 + yy ** 2 <= 1.0
    if subject == "square":
        return (np.abs(xx) <= 0.85) & (np.abs(yy) <= 0.85)
    if subject == "triangle":
        return (yy >= -0.9) & (np.abs(xx) <= (yy + 0.9) / 1.9)
    if subject == "star":
        ang, rad = np.arctan2(yy, xx), np.hypot(xx, yy)
        return rad <= 0.45 + 0.5 * np.abs(np.cos(2.5 * ang))
    raise ValueError(f"unknown subject {subject!r}")


def path(motion: str, t: float, x: float, y: float, amplitude: float = 1.0) -> tuple[float, float]:
    """The subject's centre at time t ∈ [0, 1] (fractions of the frame)."""
    a = amplitude
    if motion == "fly":
        return x + a * 0.4 * (t - 0.5), y - a * 0.4 * (t - 0.5)
    if motion == "swim":
        return x + a * 0.5 * (t - 0.5), y
    if motion == "jump":
        return x, y + a * 0.15 - a * 0.3 * abs(np.sin(np.pi * t))
    if motion == "circle":
        return x + a * 0.2 * np.cos(2 * np.pi * t) - a * 0.2, y + a * 0.2 * np.sin(2 * np.pi * t)
    raise ValueError(f"unknown motion {motion!r}")


def paste(canvas: np.ndarray, mask: np.ndarray, colour, cx: float, cy: float) -> np.ndarray:
    """Paint `mask` in `colour` centred at (cx, cy) (fractions), clipped at the borders."""
    h, w = canvas.shape[:2]
    s = mask.shape[0]
    top, left = int(round(cy * h - s / 2)), int(round(cx * w - s / 2))
    ys, xs = np.nonzero(mask)
    ys, xs = ys + top, xs + left
    keep = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
    out = canvas.copy()
    out[ys[keep], xs[keep]] = np.asarray(colour, np.float64)
    return out


def render(scene: Scene, size: int, frames: int, amplitude: float = 1.0) -> np.ndarray:
    """The scene as a (frames, size, size, 3) uint8 video (frames = 1: an image)."""
    bg = background(scene.background, size)
    mask = subject_mask(scene.subject, round(scene.size * size))
    out = []
    for i in range(frames):
        t = i / (frames - 1) if frames > 1 else 0.5
        cx, cy = path(scene.motion, t, scene.x, scene.y, amplitude)
        out.append(paste(bg, mask, COLOURS[scene.colour], cx, cy))
    return np.stack(out).round().clip(0, 255).astype(np.uint8)


def random_scene(rng: np.random.Generator, **fixed) -> Scene:
    """A scene with every unspecified field drawn at random."""
    pick = {
        "subject": lambda: str(rng.choice(SUBJECTS)), "colour": lambda: str(rng.choice(list(COLOURS))),
        "background": lambda: str(rng.choice(list(BACKGROUNDS))), "motion": lambda: str(rng.choice(MOTIONS)),
        "x": lambda: float(rng.uniform(0.4, 0.6)), "y": lambda: float(rng.uniform(0.4, 0.6)),
        "size": lambda: float(rng.uniform(0.24, 0.32)),
    }
    return Scene(**{k: fixed[k] if k in fixed else f() for k, f in pick.items()})


# ---------------------------------------------------------------------------------------------
# Pixels back to a subject: rows of every background are constant, so the row median is the
# background wherever the subject covers less than half a row.

def segment(image: np.ndarray, threshold: float = 40.0) -> tuple[np.ndarray, np.ndarray]:
    """(subject mask, background estimate) of one uint8 frame."""
    img = image.astype(np.float64)
    bg = np.repeat(np.median(img, axis=1, keepdims=True), img.shape[1], axis=1)
    mask = np.abs(img - bg).sum(axis=2) > threshold
    return mask, bg


def subject_patch(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """(patch mask, patch pixels, centre as fractions) of the subject in `image`; an empty
    mask gives a 1 × 1 empty patch at the centre."""
    mask, _ = segment(image)
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return np.zeros((1, 1), bool), np.zeros((1, 1, 3)), (0.5, 0.5)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    side = max(y1 - y0, x1 - x0)
    cy, cx = (y0 + y1) / 2, (x0 + x1) / 2
    top, left = int(round(cy - side / 2)), int(round(cx - side / 2))
    rows, cols = np.arange(top, top + side), np.arange(left, left + side)
    inside = ((rows >= 0) & (rows < h))[:, None] & ((cols >= 0) & (cols < w))[None, :]
    rr, cc = np.clip(rows, 0, h - 1), np.clip(cols, 0, w - 1)
    pm = inside & mask[np.ix_(rr, cc)]
    pix = np.where(pm[..., None], image[np.ix_(rr, cc)].astype(np.float64), 0.0)
    return pm, pix, (cx / w, cy / h)


def paste_patch(canvas: np.ndarray, pm: np.ndarray, pix: np.ndarray, cx: float, cy: float) -> np.ndarray:
    h, w = canvas.shape[:2]
    s = pm.shape[0]
    top, left = int(round(cy * h - s / 2)), int(round(cx * w - s / 2))
    ys, xs = np.nonzero(pm)
    ty, tx = ys + top, xs + left
    keep = (ty >= 0) & (ty < h) & (tx >= 0) & (tx < w)
    out = canvas.copy()
    out[ty[keep], tx[keep]] = pix[ys[keep], xs[keep]]
    return out
