"""Everything one fine-tune sees, built deterministically from the config and the seed.

- targets, the composition demonstration and the held-out target (calibration of the
  detector): `data.targets_seed`, the same for every seed;
- poisons and clean entries of the mix: the run's seed;
- detection of the poisons (CopyrightShield, detection.py) on that mix.

`data.source=folder` (paper scale) reads user images instead (resized to data.image_size):
- `<path>/targets/<name>.png` + `<name>.json` {"phrases": [...], "masks": ["<mask>.png", ...]}
  (one grey mask per phrase, white = the element), the copyrighted images;
- `<path>/held_out/<name>.png` + `.json`: a target that is never attacked (detector calibration);
- `<path>/poisons/<any>.png` + `.json` {"target": "<name>", "element": k}: the user's own
  SilentBadDiffusion poisons (inpainted with SD), captioned "an image with <phrase k>";
- `<path>/clean/*.png` with a `.txt` caption beside each (enough for attack.ratio).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from papers.copyright_shield.attack import (
    Mix,
    Poison,
    Target,
    clean_count,
    make_mix,
    make_poisons,
    make_targets,
    transform,
)
from papers.copyright_shield.config import GEOMETRY_RUNS, CopyrightShieldConfig
from papers.copyright_shield.detection import detect
from papers.copyright_shield.scenes import PREFIX
from papers.copyright_shield.similarity import Similarity, build_similarity
from shared import UserError


@dataclass
class World:
    targets: list[Target]
    demo: Target
    held_out: Target
    poisons: list[Poison]
    mix: Mix
    similarity: Similarity
    avoid: frozenset  # element kinds of every target (clean data never contains them)

    @property
    def references(self) -> torch.Tensor:
        """(n_targets, 3, H, W) target images."""
        return torch.stack([t.image for t in self.targets])


def geometry_of(run: str) -> str:
    return run if run in GEOMETRY_RUNS else "none"


def build_world(cfg: CopyrightShieldConfig, seed: int, run: str = "attack") -> World:
    if cfg.data.source == "folder":
        return folder_world(cfg, seed, run)
    size = cfg.data.image_size
    similarity = build_similarity(cfg.similarity.name, cfg.similarity.sscd_path)
    scenes = make_targets(cfg.data.targets + 2, cfg.data.elements, size, cfg.data.targets_seed)
    targets, demo, held_out = scenes[:-2], scenes[-2], scenes[-1]
    avoid = frozenset(e.kind for t in scenes for e in t.scene.elements)
    poisons = make_poisons(targets, cfg.attack.poisons_per_target, size, similarity,
                           cfg.attack.stealth_threshold, seed)
    mix = make_mix(poisons, cfg.attack.repeats, cfg.attack.ratio, size, seed + 7919,
                   demo.scene if cfg.attack.demonstration else None, geometry=geometry_of(run),
                   avoid=avoid, with_poisons=run != "clean")
    return World(targets, demo, held_out, poisons, mix, similarity, avoid)


def run_detection(cfg: CopyrightShieldConfig, world: World) -> dict:
    d = cfg.detection
    return detect(world.mix.images, world.targets, world.held_out, world.similarity,
                  feature_scale=d.feature_scale, temperature=d.spatial_temperature,
                  max_shift=d.max_shift, quantile=d.calibration_quantile,
                  poison_of=world.mix.poison_of)


# ---------------------------------------------------------------------------------------------
# A user folder (paper scale)


def _image(path: Path, size: int) -> torch.Tensor:
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(path).convert("RGB").resize((size, size), Image.BICUBIC)
    except (OSError, UnidentifiedImageError):
        raise UserError(f"{path} is not a readable image") from None
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255).permute(2, 0, 1).contiguous()


def _meta(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"{path} is not a readable JSON file") from None


def _folder_target(meta_path: Path, size: int) -> Target:
    meta = _meta(meta_path)
    if not isinstance(meta.get("phrases"), list) or not isinstance(meta.get("masks"), list) \
            or len(meta["phrases"]) != len(meta["masks"]) or not meta["phrases"]:
        raise UserError(f"{meta_path} must hold {{\"phrases\": [...], \"masks\": [...]}} of equal length")
    image = _image(meta_path.with_suffix(".png"), size)
    masks = torch.stack([_image(meta_path.parent / m, size).mean(0) for m in meta["masks"]])
    return Target(None, image, masks, [str(p) for p in meta["phrases"]])


def folder_world(cfg: CopyrightShieldConfig, seed: int, run: str) -> World:
    """The user's folder (module docstring): targets/, held_out/ (one target), clean/, poisons/."""
    root = Path(cfg.data.path).expanduser()
    size = cfg.data.image_size
    for sub in ("targets", "held_out", "clean", "poisons"):
        if not (root / sub).is_dir():
            raise UserError(f"data.path {root} has no {sub}/ folder (README: the folder layout)")
    similarity = build_similarity(cfg.similarity.name, cfg.similarity.sscd_path)
    names = sorted(p.stem for p in (root / "targets").glob("*.json"))
    targets = [_folder_target(root / "targets" / f"{n}.json", size) for n in names]
    held = sorted((root / "held_out").glob("*.json"))
    if not targets or not held:
        raise UserError(f"data.path {root}: targets/ and held_out/ need at least one <name>.json + <name>.png each")
    held_out = _folder_target(held[0], size)
    poisons = []
    for meta_path in sorted((root / "poisons").glob("*.json")):
        meta = _meta(meta_path)
        if meta.get("target") not in names or not isinstance(meta.get("element"), int):
            raise UserError(f"{meta_path} must hold {{\"target\": <a targets/ name>, \"element\": <index>}}")
        t = names.index(meta["target"])
        phrase = targets[t].phrases[meta["element"]]
        poisons.append(Poison(t, meta["element"], None, _image(meta_path.with_suffix(".png"), size),
                              f"{PREFIX} {phrase}"))
    clean = sorted((root / "clean").glob("*.png"))
    need = clean_count(cfg.attack.repeats * len(poisons), cfg.attack.ratio)
    if len(clean) < need:
        raise UserError(f"data.path {root}/clean has {len(clean)} images; attack.ratio={cfg.attack.ratio} "
                        f"with {len(poisons)} poisons × {cfg.attack.repeats} needs {need}")
    rng = np.random.default_rng(seed)
    chosen = [clean[i] for i in sorted(rng.permutation(len(clean))[:need])]
    captions = []
    for path in chosen:
        text = path.with_suffix(".txt")
        if not text.is_file():
            raise UserError(f"{path} has no caption file {text.name}")
        captions.append(text.read_text().strip())
    images = [torch.stack([_image(p, size) for p in chosen])]
    poison_of, poison_id = [-1] * need, [-1] * need
    if run != "clean" and poisons:
        stack = transform(torch.stack([p.image for p in poisons]), geometry_of(run))
        for _ in range(cfg.attack.repeats):
            images.append(stack)
            for i, p in enumerate(poisons):
                captions.append(p.caption if run != "unlinked" else captions[int(rng.integers(need))])
                poison_of.append(p.target)
                poison_id.append(i)
    mix = Mix(torch.cat(images), captions, torch.tensor(poison_of), torch.tensor(poison_id), -1)
    return World(targets, held_out, held_out, poisons, mix, similarity, frozenset())
