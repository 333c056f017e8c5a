"""The paper path's user folder: targets, held-out target, poisons, clean images + captions."""

import json

import numpy as np
import pytest
from PIL import Image

from papers.copyright_shield.data import build_world
from shared import UserError

from .conftest import smoke_config


def _png(path, value):
    Image.fromarray(np.full((20, 20, 3), value, dtype=np.uint8)).save(path)


def _folder(root):
    for sub in ("targets", "held_out", "poisons", "clean"):
        (root / sub).mkdir(parents=True)
    for sub, name in (("targets", "mouse"), ("held_out", "duck")):
        _png(root / sub / f"{name}.png", 200)
        _png(root / sub / f"{name}_m0.png", 255)
        (root / sub / f"{name}.json").write_text(json.dumps({"phrases": ["a red hat"], "masks": [f"{name}_m0.png"]}))
    for j in range(2):
        _png(root / "poisons" / f"p{j}.png", 100 + j)
        (root / "poisons" / f"p{j}.json").write_text(json.dumps({"target": "mouse", "element": 0}))
    for j in range(12):
        _png(root / "clean" / f"c{j}.png", 10 * j)
        (root / "clean" / f"c{j}.txt").write_text(f"picture {j}\n")


def test_folder_world_builds_the_mix_from_user_images(tmp_path):
    _folder(tmp_path / "user")
    cfg = smoke_config(tmp_path, "data.source=folder", f"data.path={tmp_path}/user", "attack.ratio=0.25")
    world = build_world(cfg, 0)
    assert world.targets[0].phrases == ["a red hat"]
    assert int((world.mix.poison_of == 0).sum()) == 2 * 2  # two poisons, repeated twice
    assert len(world.mix.captions) == 16 and world.mix.captions[-1] == "an image with a red hat"
    assert world.mix.images.shape[1:] == (3, 16, 16)


def test_folder_world_refuses_too_few_clean_images(tmp_path):
    _folder(tmp_path / "user")
    cfg = smoke_config(tmp_path, "data.source=folder", f"data.path={tmp_path}/user", "attack.ratio=0.05")
    with pytest.raises(UserError, match="clean has 12 images"):
        build_world(cfg, 0)
