import pytest
import torch

from shared.t2i.backbone import PixelBackbone, build_scheduler, build_unet
from shared.t2i.scenes import vocabulary
from shared.t2i.text import build_text_encoder, build_tokenizer


def tiny_backbone(seed: int = 0, words: list[str] | None = None) -> PixelBackbone:
    """8×8 RGB, UNet widths 8/16, a 1-layer text encoder of width 16 (untrained)."""
    torch.manual_seed(seed)
    tokenizer = build_tokenizer(vocabulary() if words is None else words, max_length=16)
    unet = build_unet(8, [8, 16], layers_per_block=1, attention_head_dim=8, cross_attention_dim=16)
    text_encoder = build_text_encoder(tokenizer, hidden=16, layers=1, heads=2)
    return PixelBackbone(unet, text_encoder, tokenizer, build_scheduler())


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Two threads on a busy two-core machine spin-wait each other: 20x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
