import numpy as np
import torch
from PIL import Image

from shared.t2i.grid import LABEL_WIDTH, PAD, save_grid


def test_grid_layout_and_tiles(tmp_path):
    rows = [torch.rand(3, 3, 4, 5), torch.zeros(3, 3, 4, 5)]
    path = save_grid(rows, ["1 step", "2 steps"], tmp_path / "sub" / "grid.png", scale=2)
    image = np.asarray(Image.open(path).convert("RGB"))
    assert image.shape == (2 * (4 * 2 + PAD), LABEL_WIDTH + 3 * (5 * 2 + PAD), 3)
    tile = image[0:8, LABEL_WIDTH + 12:LABEL_WIDTH + 22]  # row 0, column 1, enlarged 2x
    expected = (rows[0][1].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    np.testing.assert_array_equal(tile[::2, ::2], expected)
    np.testing.assert_array_equal(tile[1::2, 1::2], expected)
    assert (image[10:18, LABEL_WIDTH:LABEL_WIDTH + 10] == 0).all()  # the black second row
    assert (image[:, LABEL_WIDTH - 1] == 255).all()  # white gutter beside the labels
