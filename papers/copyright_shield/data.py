"""Everything one fine-tune sees, built deterministically from the config and the seed.

- targets, the composition demonstration and the held-out target (calibration of the
  detector): `data.targets_seed`, the same for every seed;
- poisons and clean entries of the mix: the run's seed;
- detection of the poisons (CopyrightShield, detection.py) on that mix.

`data.source=folder` (paper scale) reads user images instead: `<path>/targets/<name>.png`
with `<name>.json` ({"phrases": [...], "masks": ["<mask>.png", ...]}) and
`<path>/clean/*.png` with a `.txt` caption beside each; poisons are then the user's own
(`<path>/poisons/<target>_<k>_<j>.png`, captioned "an image with <phrase k>").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from papers.copyright_shield.attack import Mix, Poison, Target, make_mix, make_poisons, make_targets
from papers.copyright_shield.config import GEOMETRY_RUNS, CopyrightShieldConfig
from papers.copyright_shield.detection import detect
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


def folder_world(cfg: CopyrightShieldConfig, seed: int, run: str) -> World:
    from papers.copyright_shield.attack import poison_caption  # noqa: F401  (caption format)
    from papers.copyright_shield.scenes import PREFIX

    root = Path(cfg.data.path).expanduser()
    size = cfg.data.image_size
    for sub in ("targets", "clean", "poisons"):
        if not (root / sub).is_dir():
            raise UserError(f"data.path {root} has no {sub}/ folder (README: the folder layout)")
    similarity = build_similarity(cfg.similarity.name, cfg.similarity.sscd_path)
    targets = []
    for meta_path in sorted((root / "targets").glob("*.json")):
        try:
            meta = json.loads(meta_path.read_text())
            phrases, mask_names = list(meta["phrases"]), list(meta["masks"])
        except (json.JSONDecodeError, KeyError, TypeError):
            raise UserError(f"{meta_path} must hold {{\"phrases\": [...], \"masks\": [...]}}") from None
        image = _image(meta_path.with_suffix(".png"), size)
        masks = torch.stack([_image(meta_path.parent / m, size).mean(0) for m in mask_names])
        targets.append((meta_path.stem, phrases, image, masks))
    if len(targets) < 2:
        raise UserError(f"{root}/targets needs at least two targets (the last one is the held-out one)")
    raise UserError("data.source=folder: the folder reader is not implemented yet (README: paper path)")
