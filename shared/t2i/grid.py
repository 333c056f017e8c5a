"""Image grids: rows of samples (one row per sampler setting, method or prompt set) in one PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

SCALE = 4  # grid pixels per image pixel (16×16 images become 64×64 tiles)
LABEL_WIDTH, PAD = 56, 2  # pixels of the label column and between tiles


def save_grid(rows: list[torch.Tensor], labels: list[str], path: Path, scale: int = SCALE) -> Path:
    """A PNG with one row per tensor (N, 3, H, W) in [0, 1], each row labelled on the left;
    tiles are enlarged `scale` times with nearest-neighbour resampling."""
    n, _, h, w = rows[0].shape
    cell_h, cell_w = h * scale + PAD, w * scale + PAD
    canvas = Image.new("RGB", (LABEL_WIDTH + n * cell_w, len(rows) * cell_h), "white")
    draw = ImageDraw.Draw(canvas)
    for r, (images, label) in enumerate(zip(rows, labels, strict=True)):
        draw.text((2, r * cell_h + cell_h // 2 - 5), label, fill="black")
        pixels = (images.clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8)
        for c, img in enumerate(pixels):
            tile = Image.fromarray(img).resize((w * scale, h * scale), Image.NEAREST)
            canvas.paste(tile, (LABEL_WIDTH + c * cell_w, r * cell_h))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path
