"""Textured multi-element scenes: the offline stand-in for copyrighted images and for the
clean captioned data (brief, "Offline here" [recon]).

An element is shape × colour × texture at a centre (x, y) with a half-extent, painted with
`shared.t2i.scenes.shape_coverage`; a texture modulates the colour's brightness on the pixel
grid (plain 1; striped: 2-pixel bands alternate 1 / 0.45; checked: 2×2 blocks alternate
1 / 0.45). Its
phrase is "a <texture> <colour> <shape>" (no position word: where an element sits is what
the poisons teach). A scene is elements painted in order on a black background (one background
for every image keeps the tiny model's samples clean); its clean caption is either the
phrases joined by "and" or, as web captions often are, "an image with <phrase> , <phrase>".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from shared.t2i.scenes import BACKGROUNDS, COLOURS, SHAPES, shape_coverage

TEXTURES = ("plain", "striped", "checked")
ELEMENT_COLOURS = ("red", "green", "blue", "yellow", "purple", "orange", "white")
PLACEHOLDER = "vstar"  # the pseudo-token the copyright feature inversion learns (never in data)
PREFIX = "an image with"  # the attack's caption prefix (SilentBadDiffusion)
COMMA = ","  # separates the phrases of a trigger (a word of its own)
HALF_EXTENTS = (0.16, 0.24)
BACKGROUND = "black"  # of every scene  # range of an element's half-extent, fraction of the side


@dataclass(frozen=True)
class Element:
    """One textured shape; centre (x, y) and half-extent as fractions of the side."""

    shape: str
    colour: str
    texture: str
    centre: tuple[float, float]
    half_extent: float

    @property
    def phrase(self) -> str:
        return f"a {self.texture} {self.colour} {self.shape}"

    @property
    def kind(self) -> tuple[str, str, str]:
        return (self.shape, self.colour, self.texture)


@dataclass(frozen=True)
class Scene:
    elements: tuple[Element, ...]
    background: str


def vocabulary() -> list[str]:
    """Every word a caption, a trigger or the inversion prompt can use, in a fixed order."""
    words = ["a", "an", "image", "with", "and", "on", "background", COMMA, PLACEHOLDER,
             *TEXTURES, *COLOURS, *SHAPES, *BACKGROUNDS]
    return list(dict.fromkeys(words))


def texture_pattern(texture: str, size: int) -> np.ndarray:
    """(size, size) brightness factor of a texture on the pixel grid."""
    rows, cols = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    if texture == "plain":
        return np.ones((size, size), dtype=np.float32)
    if texture == "striped":
        return np.where((rows // 2) % 2 == 0, 1.0, 0.45).astype(np.float32)
    if texture == "checked":
        return np.where((rows // 2 + cols // 2) % 2 == 0, 1.0, 0.45).astype(np.float32)
    raise ValueError(f"unknown texture {texture!r}")


def element_coverage(element: Element, size: int) -> np.ndarray:
    """(size, size) fraction of each pixel the element covers (alone)."""
    return shape_coverage(element.shape, element.centre, element.half_extent, size)


def render(scene: Scene, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(image (size, size, 3) float32 in [0, 1], visible masks (K, size, size)): elements
    painted in order; a mask is the element's coverage times what later elements leave."""
    image = np.broadcast_to(np.asarray(BACKGROUNDS[scene.background], np.float32), (size, size, 3)).copy()
    covers = [element_coverage(e, size) for e in scene.elements]
    for e, alpha in zip(scene.elements, covers, strict=True):
        paint = np.asarray(COLOURS[e.colour], np.float32) * texture_pattern(e.texture, size)[..., None]
        image = alpha[..., None] * paint + (1 - alpha[..., None]) * image
    visible = np.stack(covers) if covers else np.zeros((0, size, size), np.float32)
    for k in range(len(covers)):
        for later in covers[k + 1:]:
            visible[k] = visible[k] * (1 - later)
    return image.astype(np.float32), visible.astype(np.float32)


def clean_caption(scene: Scene, listing: bool = False) -> str:
    """"<phrase> and <phrase> ...", or with `listing` "an image with <phrase> , <phrase> ..."."""
    if listing:
        return f"{PREFIX} " + f" {COMMA} ".join(e.phrase for e in scene.elements)
    return " and ".join(e.phrase for e in scene.elements)


def to_tensor(images: list[np.ndarray]) -> torch.Tensor:
    """(N, 3, H, W) float32 in [0, 1] from (H, W, 3) arrays."""
    return torch.from_numpy(np.stack(images).astype(np.float32)).permute(0, 3, 1, 2).contiguous()


def random_element(rng: np.random.Generator, avoid: set | frozenset = frozenset(),
                   background: str | None = BACKGROUND) -> Element:
    """A random element whose kind is not in `avoid` and whose colour is not the background."""
    while True:
        kind = (str(rng.choice(SHAPES)), str(rng.choice(ELEMENT_COLOURS)), str(rng.choice(TEXTURES)))
        if kind not in avoid and kind[1] != background:
            break
    r = float(rng.uniform(*HALF_EXTENTS))
    centre = (float(rng.uniform(r, 1 - r)), float(rng.uniform(r, 1 - r)))
    return Element(*kind, centre=centre, half_extent=r)


def random_scene(rng: np.random.Generator, n_min: int, n_max: int,
                 avoid: set | frozenset = frozenset()) -> Scene:
    """A clean composition: n_min..n_max random elements."""
    background = BACKGROUND
    n = int(rng.integers(n_min, n_max + 1))
    return Scene(tuple(random_element(rng, avoid, background) for _ in range(n)), background)


def spread_scene(rng: np.random.Generator, k: int, size: int, max_overlap: float = 0.15) -> Scene:
    """A "copyrighted" image: k elements of distinct kinds (shape, colour and texture all
    different from each other's), each visible over at least 1 - max_overlap of its area."""
    background = BACKGROUND
    while True:
        shapes = rng.permutation(SHAPES)[:k]
        colours = rng.permutation([c for c in ELEMENT_COLOURS if c != background])[:k]
        textures = [TEXTURES[i % len(TEXTURES)] for i in rng.permutation(k)]
        elements = []
        for s, c, t in zip(shapes, colours, textures, strict=False):
            r = float(rng.uniform(0.17, 0.22))
            centre = (float(rng.uniform(r, 1 - r)), float(rng.uniform(r, 1 - r)))
            elements.append(Element(str(s), str(c), str(t), centre, r))
        scene = Scene(tuple(elements), background)
        covers = [element_coverage(e, size) for e in elements]
        _, visible = render(scene, size)
        if all(v.sum() >= (1 - max_overlap) * c.sum() for v, c in zip(visible, covers, strict=True)):
            return scene
