"""Procedural text-image data: one coloured shape on a plain background, with a caption.

A scene is (shape, colour, size, position, background). `render` draws it anti-aliased
(rendered at 4x and box-downsampled); `caption` writes it from a small grammar

    a|an [size] <colour> <shape> [at the <position>] [on a <background> background]

and `parse_prompt` reads any sentence of that grammar back. The RL prompts are the short
form "a <colour> <shape>"; a fixed quarter of the colour x shape combinations is held out
of RL training (`HELDOUT`), while the base model's captions cover every combination.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.90, 0.10, 0.10),
    "green": (0.10, 0.75, 0.15),
    "blue": (0.15, 0.30, 1.00),
    "yellow": (0.95, 0.90, 0.10),
    "purple": (0.60, 0.15, 0.80),
    "orange": (1.00, 0.55, 0.00),
    "white": (1.00, 1.00, 1.00),
    "black": (0.00, 0.00, 0.00),
}
SHAPES = ("circle", "square", "triangle", "cross")
SIZES = {"small": 0.17, "large": 0.29}  # half-extent of the shape, as a fraction of the side
POSITIONS = {  # shape centre (x, y) as fractions of the side, y pointing down
    "centre": (0.5, 0.5),
    "left": (0.3, 0.5),
    "right": (0.7, 0.5),
    "top": (0.5, 0.3),
    "bottom": (0.5, 0.7),
}
BACKGROUNDS: dict[str, tuple[float, float, float]] = {
    "black": (0.00, 0.00, 0.00),
    "gray": (0.50, 0.50, 0.50),
    "white": (1.00, 1.00, 1.00),
    "navy": (0.05, 0.05, 0.30),
}
SUPERSAMPLE = 4  # render at 4x the output resolution, then average 4x4 blocks

# Held out of RL training: colour i with shape i mod 4, so 8 of the 32 combinations (one per
# colour, two per shape); every colour keeps 3 shapes and every shape 6 colours in training.
HELDOUT = frozenset((c, SHAPES[i % len(SHAPES)]) for i, c in enumerate(COLOURS))


@dataclass(frozen=True)
class Scene:
    shape: str
    colour: str
    size: str
    position: str
    background: str


def sample_scene(rng: np.random.Generator) -> Scene:
    """A uniformly random scene whose object colour differs from its background's name."""
    background = str(rng.choice(list(BACKGROUNDS)))
    colours = [c for c in COLOURS if c != background]
    return Scene(
        shape=str(rng.choice(SHAPES)),
        colour=str(rng.choice(colours)),
        size=str(rng.choice(list(SIZES))),
        position=str(rng.choice(list(POSITIONS))),
        background=background,
    )


def _shape_mask(shape: str, dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    """Which points (offsets from the shape centre) lie inside a shape of half-extent r."""
    if shape == "circle":
        return dx**2 + dy**2 <= r**2
    if shape == "square":
        return np.maximum(np.abs(dx), np.abs(dy)) <= 0.85 * r
    if shape == "triangle":  # apex up, base at 0.8 r below the centre
        height = 1.8 * r
        return (dy >= -r) & (dy <= 0.8 * r) & (np.abs(dx) <= (dy + r) / height * r)
    if shape == "cross":
        arm = r / 3
        return ((np.abs(dx) <= arm) & (np.abs(dy) <= r)) | ((np.abs(dy) <= arm) & (np.abs(dx) <= r))
    raise ValueError(f"unknown shape {shape!r}")


def coverage(scene: Scene, size: int) -> np.ndarray:
    """(size, size) float32 fraction of each pixel covered by the shape."""
    fine = size * SUPERSAMPLE
    grid = (np.arange(fine, dtype=np.float64) + 0.5) / fine
    cx, cy = POSITIONS[scene.position]
    dx, dy = np.meshgrid(grid - cx, grid - cy)  # rows follow y, columns x
    inside = _shape_mask(scene.shape, dx, dy, SIZES[scene.size]).astype(np.float32)
    return inside.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE).mean(axis=(1, 3))


def render(scene: Scene, size: int) -> np.ndarray:
    """(size, size, 3) float32 image in [0, 1]."""
    alpha = coverage(scene, size)[..., None]
    fg = np.asarray(COLOURS[scene.colour], dtype=np.float32)
    bg = np.asarray(BACKGROUNDS[scene.background], dtype=np.float32)
    return (alpha * fg + (1 - alpha) * bg).astype(np.float32)


def caption(scene: Scene, with_size: bool = True, with_position: bool = True,
            with_background: bool = True) -> str:
    """The scene in the grammar; the optional parts are left out on request."""
    words = [scene.size] if with_size else []
    words += [scene.colour, scene.shape]
    words.insert(0, "an" if words[0][0] in "aeiou" else "a")
    if with_position:
        words += ["at", "the", scene.position]
    if with_background:
        words += ["on", "a", scene.background, "background"]
    return " ".join(words)


def parse_prompt(text: str) -> dict[str, str | None]:
    """{shape, colour, size, position, background} of a sentence of the grammar (None when
    absent). The object colour is the colour word right before the shape word, so a colour
    that is also a background name ("white") is never mistaken for the background."""
    words = text.lower().replace(",", " ").split()
    found: dict[str, str | None] = dict.fromkeys(("shape", "colour", "size", "position", "background"))
    for i, word in enumerate(words):
        before = words[i - 1] if i > 0 else ""
        if word in SHAPES and found["shape"] is None:
            found["shape"] = word
            if before in COLOURS:
                found["colour"] = before
        elif word in SIZES:
            found["size"] = word
        elif word in POSITIONS and before == "the":
            found["position"] = word
        elif word == "background" and before in BACKGROUNDS:
            found["background"] = before
    return found


def vocabulary() -> list[str]:
    """Every word the grammar can produce, in a fixed order."""
    words = ["a", "an", "at", "the", "on", "background", *SIZES, *COLOURS, *SHAPES, *POSITIONS,
             *BACKGROUNDS]
    return list(dict.fromkeys(words))


def rl_prompts(split: str) -> list[str]:
    """Short prompts "a|an <colour> <shape>": split "train" (24) or "heldout" (the 8 of HELDOUT)."""
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
    want_heldout = split == "heldout"
    return [caption(Scene(s, c, "", "", ""), False, False, False)
            for c in COLOURS for s in SHAPES if ((c, s) in HELDOUT) == want_heldout]


def random_caption(scene: Scene, rng: np.random.Generator) -> str:
    """A caption that names each optional part with probability 1/2, so one in eight is the
    short RL form and the base model learns to follow it."""
    size, position, background = rng.random(3) < 0.5
    return caption(scene, bool(size), bool(position), bool(background))


def make_dataset(n: int, size: int, seed: int) -> tuple[torch.Tensor, list[str]]:
    """n images (N, 3, size, size) in [-1, 1] and their captions, deterministic in seed."""
    rng = np.random.default_rng(seed)
    scenes = [sample_scene(rng) for _ in range(n)]
    captions = [random_caption(s, rng) for s in scenes]
    images = np.stack([render(s, size) for s in scenes]) if n else np.zeros((0, size, size, 3))
    tensor = torch.from_numpy(images.astype(np.float32)).permute(0, 3, 1, 2).contiguous()
    return tensor * 2 - 1, captions


def nearest_colour(rgb: np.ndarray) -> str:
    """The name in COLOURS closest (Euclidean RGB) to one colour."""
    names = list(COLOURS)
    table = np.asarray([COLOURS[c] for c in names])
    return names[int(np.argmin(((table - np.asarray(rgb)) ** 2).sum(-1)))]


def dominant_colour(image: np.ndarray, threshold: float = 0.25) -> str | None:
    """The named colour of the object in an (H, W, 3) [0, 1] image, or None when no pixel
    stands `threshold` (RGB distance) away from the background (the median border pixel).
    The object is the pixels at least 0.7 x the largest distance away (so anti-aliased edges,
    mixtures with the background, do not count), named by the colour nearest their median."""
    border = np.concatenate([image[0], image[-1], image[1:-1, 0], image[1:-1, -1]])
    distance = np.linalg.norm(image - np.median(border, axis=0), axis=-1)
    if distance.max() < threshold:
        return None
    return nearest_colour(np.median(image[distance >= 0.7 * distance.max()], axis=0))
