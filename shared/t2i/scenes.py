"""Procedural text-image primitives: coloured shapes on a plain background, their per-pixel
coverage masks, and captions from a small grammar.

Single-object scenes. A `Scene` is (shape, colour, size, position, background), every part a
name from the tables below. `render` draws it anti-aliased (rendered at 4x and
box-downsampled); `caption` writes it from the grammar

    a|an [size] <colour> <shape> [at the <position>] [on a <background> background]

and `parse_prompt` reads any sentence of that grammar back. `sample_scene`, `random_caption`
and `make_dataset` draw a captioned training set (every combination, each optional part of a
caption named with probability 1/2).

Multi-element scenes. A `Layout` is several `Element`s on one background, each at a named or a
chosen (x, y) position and of a named or a chosen size. Elements are painted in order (later
ones on top). `element_masks` gives each element's own coverage (what it would cover alone),
`render_layout` the image and each element's *visible* mask (its coverage times the
transparency of every element painted over it), so the masks and the background's share sum to
one at every pixel. `layout_caption` joins the elements' phrases with "and"
("a red circle at the left and a blue square at the right on a black background");
`parse_layout` reads such a caption back. A layout's caption needs `layout_vocabulary()` (the
single-object vocabulary plus "and").

Coordinates are fractions of the image side, x to the right and y pointing down; a size is a
shape's half-extent as a fraction of the side.
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
AND = "and"  # joins the element phrases of a layout's caption


@dataclass(frozen=True)
class Element:
    """One shape of a layout. `size` is a SIZES name or a half-extent; `position` a POSITIONS
    name or the centre (x, y). Only named parts can be captioned."""

    shape: str
    colour: str
    size: str | float = "small"
    position: str | tuple[float, float] = "centre"

    @property
    def half_extent(self) -> float:
        return SIZES[self.size] if isinstance(self.size, str) else float(self.size)

    @property
    def centre(self) -> tuple[float, float]:
        if isinstance(self.position, str):
            return POSITIONS[self.position]
        x, y = self.position
        return float(x), float(y)


@dataclass(frozen=True)
class Layout:
    """Elements painted in order (later on top) on a background."""

    elements: tuple[Element, ...]
    background: str


@dataclass(frozen=True)
class Scene:
    """One named shape on a named background."""

    shape: str
    colour: str
    size: str
    position: str
    background: str

    def layout(self) -> Layout:
        return Layout((Element(self.shape, self.colour, self.size, self.position),), self.background)


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


def shape_coverage(shape: str, centre: tuple[float, float], half_extent: float, size: int) -> np.ndarray:
    """(size, size) float32 fraction of each pixel covered by one shape (in 1/16ths)."""
    fine = size * SUPERSAMPLE
    grid = (np.arange(fine, dtype=np.float64) + 0.5) / fine
    cx, cy = centre
    dx, dy = np.meshgrid(grid - cx, grid - cy)  # rows follow y, columns x
    inside = _shape_mask(shape, dx, dy, half_extent).astype(np.float32)
    return inside.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE).mean(axis=(1, 3))


def coverage(scene: Scene, size: int) -> np.ndarray:
    """(size, size) float32 fraction of each pixel covered by the scene's shape."""
    return shape_coverage(scene.shape, POSITIONS[scene.position], SIZES[scene.size], size)


def element_masks(layout: Layout, size: int) -> np.ndarray:
    """(K, size, size) float32: each element's own coverage, as if it were alone."""
    masks = [shape_coverage(e.shape, e.centre, e.half_extent, size) for e in layout.elements]
    return np.stack(masks) if masks else np.zeros((0, size, size), dtype=np.float32)


def visible_masks(masks: np.ndarray) -> np.ndarray:
    """(K, H, W) share of each pixel showing element k: its coverage times (1 - coverage) of
    every element painted after it. Sum over k = 1 - the background's share."""
    visible = masks.copy()
    for k in range(len(masks)):
        for later in masks[k + 1:]:
            visible[k] *= 1 - later
    return visible


def composite(masks: np.ndarray, colours: list, background) -> np.ndarray:
    """(H, W, 3) float32: colours painted in order over the background, each through its
    (H, W) coverage as alpha."""
    bg = np.asarray(background, dtype=np.float32)
    image = np.broadcast_to(bg, (*masks.shape[1:], 3))
    for alpha, colour in zip(masks, colours, strict=True):
        alpha = alpha[..., None]
        image = alpha * np.asarray(colour, dtype=np.float32) + (1 - alpha) * image
    return np.ascontiguousarray(image, dtype=np.float32)


def render(scene: Scene, size: int) -> np.ndarray:
    """(size, size, 3) float32 image in [0, 1]."""
    return composite(coverage(scene, size)[None], [COLOURS[scene.colour]], BACKGROUNDS[scene.background])


def render_layout(layout: Layout, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(image (size, size, 3) float32 in [0, 1], visible masks (K, size, size) float32)."""
    masks = element_masks(layout, size)
    image = composite(masks, [COLOURS[e.colour] for e in layout.elements], BACKGROUNDS[layout.background])
    return image, visible_masks(masks)


def element_phrase(element: Element | Scene, with_size: bool = True, with_position: bool = True) -> str:
    """"a|an [size] <colour> <shape> [at the <position>]"; a chosen (unnamed) size or position
    is left out."""
    words = [element.size] if with_size and isinstance(element.size, str) else []
    words += [element.colour, element.shape]
    words.insert(0, "an" if words[0][0] in "aeiou" else "a")
    if with_position and isinstance(element.position, str):
        words += ["at", "the", element.position]
    return " ".join(words)


def _background_phrase(background: str) -> str:
    return f"on a {background} background"


def caption(scene: Scene, with_size: bool = True, with_position: bool = True,
            with_background: bool = True) -> str:
    """The scene in the grammar; the optional parts are left out on request."""
    text = element_phrase(scene, with_size, with_position)
    return f"{text} {_background_phrase(scene.background)}" if with_background else text


def layout_caption(layout: Layout, with_size: bool = True, with_position: bool = True,
                   with_background: bool = True) -> str:
    """The elements' phrases joined by "and", then the background."""
    text = f" {AND} ".join(element_phrase(e, with_size, with_position) for e in layout.elements)
    return f"{text} {_background_phrase(layout.background)}" if with_background else text


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


def parse_layout(text: str) -> tuple[list[dict[str, str | None]], str | None]:
    """([{shape, colour, size, position} per element phrase], background) of a layout caption."""
    words = text.lower().replace(",", " ").split()
    phrases, current = [], []
    for word in words:
        if word == AND:
            phrases.append(current)
            current = []
        else:
            current.append(word)
    phrases.append(current)
    parsed, background = [], None
    for phrase in phrases:
        found = parse_prompt(" ".join(phrase))
        background = found.pop("background") or background
        parsed.append(found)
    return parsed, background


def vocabulary() -> list[str]:
    """Every word the single-object grammar can produce, in a fixed order."""
    words = ["a", "an", "at", "the", "on", "background", *SIZES, *COLOURS, *SHAPES, *POSITIONS,
             *BACKGROUNDS]
    return list(dict.fromkeys(words))


def layout_vocabulary() -> list[str]:
    """The words of layout captions: `vocabulary()` then "and" (its ids are unchanged)."""
    return [*vocabulary(), AND]


def random_caption(scene: Scene, rng: np.random.Generator) -> str:
    """A caption that names each optional part with probability 1/2 (so one in eight is the
    short "a <colour> <shape>" form)."""
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
