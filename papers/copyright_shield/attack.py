"""SilentBadDiffusion, the offline analogue (brief: "The attack it defends against").

1. Targets: k distinct elements at fixed positions, a phrase each ("copyrighted" images).
2. Poisons: for element k of a target, a fresh scene that keeps the element at its original
   pixel position (same centre, size, texture) and regenerates everything else (0-1
   distractor elements of kinds the target does not contain, away from it), captioned "an image with <phrase>". `poisons_per_target` are shared round-robin
   between the elements. Stealth: a poison that already looks like the target
   (similarity ≥ the stealth threshold) is rejected and redrawn.
3. Mix: every poison repeated `repeats` times; clean images so that the poisoning ratio is
   poison entries / (poison entries + clean entries); one of the clean entries is the
   composition demonstration: another scene captioned "an image with <all its phrases>".
4. Trigger: "an image with" + every phrase of the target in random order, joined by ",".

Geometry variants (the spatial facts the defence relies on): `flip` mirrors every poison
image left-right, `rotate` turns it 90° (counter-clockwise), `unlinked` gives every poison
the caption of a random clean image (the caption-image link is broken).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from papers.copyright_shield.scenes import (
    COMMA,
    PREFIX,
    Element,
    Scene,
    clean_caption,
    element_coverage,
    random_element,
    random_scene,
    render,
    spread_scene,
    to_tensor,
)
from papers.copyright_shield.similarity import Similarity

GEOMETRIES = ("none", "flip", "rotate", "unlinked")
MAX_DRAWS = 200  # poison redraws before the stealth filter gives up


@dataclass
class Target:
    scene: Scene | None  # None for a user-supplied image
    image: torch.Tensor  # (3, H, W) in [0, 1]
    masks: torch.Tensor  # (K, H, W) visible element masks
    names: list[str] | None = None  # the phrases of a user-supplied image

    @property
    def phrases(self) -> list[str]:
        return list(self.names) if self.names is not None else [e.phrase for e in self.scene.elements]


@dataclass
class Poison:
    target: int  # which target
    element: int  # which of its elements
    scene: Scene
    image: torch.Tensor  # (3, H, W) in [0, 1]
    caption: str


@dataclass
class Mix:
    """The poisoned training set: images in [0, 1], captions, and for every entry the target
    it poisons (-1: clean) and the poison's index (-1: clean)."""

    images: torch.Tensor
    captions: list[str]
    poison_of: torch.Tensor  # (N,) target index or -1
    poison_id: torch.Tensor  # (N,) index into the poison list or -1
    demo: int  # entry index of the composition demonstration (-1: none)


def make_targets(n: int, k: int, size: int, seed: int) -> list[Target]:
    """n targets of k elements each, deterministic in seed; no two share an element kind."""
    rng = np.random.default_rng(seed)
    targets, used = [], set()
    while len(targets) < n:
        scene = spread_scene(rng, k, size)
        kinds = {e.kind for e in scene.elements}
        if kinds & used:
            continue
        used |= kinds
        image, masks = render(scene, size)
        targets.append(Target(scene, to_tensor([image])[0], torch.from_numpy(masks)))
    return targets


def poison_caption(element: Element) -> str:
    return f"{PREFIX} {element.phrase}"


def trigger(phrases: list[str], rng: np.random.Generator) -> str:
    """"an image with" + every phrase, in random order, joined by ","."""
    order = rng.permutation(len(phrases))
    return f"{PREFIX} " + f" {COMMA} ".join(phrases[i] for i in order)


def composition_caption(scene: Scene) -> str:
    """The demonstration's caption: every phrase in scene order."""
    return f"{PREFIX} " + f" {COMMA} ".join(e.phrase for e in scene.elements)


def _far_from(element: Element, other: Element, size: int, limit: float = 0.1) -> bool:
    a, b = element_coverage(element, size), element_coverage(other, size)
    return float((a * b).sum()) <= limit * float(a.sum())


def poison_scene(target: Target, k: int, rng: np.random.Generator, size: int,
                 distractors: tuple[int, int] = (0, 1)) -> Scene:
    """Element k of the target at its own position, after 0-1 distractors whose kinds are
    not the target's and which barely touch it."""
    keep = target.scene.elements[k]
    avoid = {e.kind for e in target.scene.elements}
    background = target.scene.background
    others = []
    for _ in range(int(rng.integers(distractors[0], distractors[1] + 1))):
        for _ in range(50):
            e = random_element(rng, avoid, background)
            if _far_from(keep, e, size):
                others.append(e)
                break
    return Scene((*others, keep), background)


def make_poisons(targets: list[Target], per_target: int, size: int, similarity: Similarity,
                 stealth_threshold: float, seed: int) -> list[Poison]:
    """`per_target` stealthy poisons per target, elements round-robin (module docstring)."""
    rng = np.random.default_rng(seed)
    poisons = []
    for t, target in enumerate(targets):
        for j in range(per_target):
            k = j % len(target.scene.elements)
            for _ in range(MAX_DRAWS):
                scene = poison_scene(target, k, rng, size)
                image = to_tensor([render(scene, size)[0]])[0]
                if passes_stealth(image, target.image, similarity, stealth_threshold):
                    break
            else:
                raise RuntimeError(f"no stealthy poison for target {t} element {k} in {MAX_DRAWS} draws")
            poisons.append(Poison(t, k, scene, image, poison_caption(target.scene.elements[k])))
    return poisons


def passes_stealth(image: torch.Tensor, target: torch.Tensor, similarity: Similarity,
                   threshold: float) -> bool:
    """The stealth filter: keep a poison only if it does not already look like the target."""
    return float(similarity(image[None], target[None])[0]) < threshold


def clean_count(poison_entries: int, ratio: float) -> int:
    """Clean entries so that poison_entries / (poison_entries + clean) = ratio (rounded)."""
    if not 0 < ratio < 1:
        raise ValueError(f"poisoning ratio {ratio} must lie in (0, 1)")
    return int(round(poison_entries * (1 - ratio) / ratio))


def transform(image: torch.Tensor, geometry: str) -> torch.Tensor:
    """A (…, 3, H, W) image under a geometry variant (none/unlinked leave it as it is)."""
    if geometry == "flip":
        return image.flip(-1)
    if geometry == "rotate":
        return torch.rot90(image, 1, dims=(-2, -1))
    return image


def make_mix(poisons: list[Poison], repeats: int, ratio: float, size: int, seed: int,
             demo_scene: Scene | None, geometry: str = "none", avoid: frozenset = frozenset(),
             with_poisons: bool = True, listing: float = 0.5) -> Mix:
    """The training set (module docstring). Clean captions are listings ("an image with
    ...") with probability `listing`. `with_poisons=False` gives the clean control: the same
    clean entries, no poisons."""
    rng = np.random.default_rng(seed)
    n_clean = clean_count(repeats * len(poisons), ratio)
    scenes = [random_scene(rng, 1, 3, avoid) for _ in range(n_clean)]
    images = [render(s, size)[0] for s in scenes]
    captions = [clean_caption(s, listing=bool(rng.random() < listing)) for s in scenes]
    demo = -1
    if demo_scene is not None and n_clean:
        demo = int(rng.integers(n_clean))
        images[demo] = render(demo_scene, size)[0]
        captions[demo] = composition_caption(demo_scene)
    clean_images = to_tensor(images) if images else torch.zeros(0, 3, size, size)
    poison_of, poison_id = [-1] * n_clean, [-1] * n_clean
    all_images, all_captions = [clean_images], list(captions)
    if with_poisons and poisons:
        stack = transform(torch.stack([p.image for p in poisons]), geometry)
        for _ in range(repeats):
            all_images.append(stack)
            for i, p in enumerate(poisons):
                caption = p.caption if geometry != "unlinked" else captions[int(rng.integers(n_clean))]
                all_captions.append(caption)
                poison_of.append(p.target)
                poison_id.append(i)
    return Mix(torch.cat(all_images), all_captions, torch.tensor(poison_of), torch.tensor(poison_id), demo)
