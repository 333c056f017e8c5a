"""Textual inversion updates only v*."""

import torch

from papers.copyright_shield.inversion import PROMPT, invert, token_table
from papers.copyright_shield.scenes import PLACEHOLDER


def test_inversion_updates_only_the_placeholder_embedding(tiny_backbone):
    import copy

    backbone = copy.deepcopy(tiny_backbone)
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    row = backbone.tokenizer.convert_tokens_to_ids(PLACEHOLDER)
    target = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0))
    v = invert(backbone, target, steps=3, lr=0.1, batch=2, generator=torch.Generator().manual_seed(1))
    after = backbone.state_dict()
    table_key = next(k for k in after if k.endswith("token_embedding.weight"))
    changed = [k for k in after if not torch.equal(after[k], before[k])]
    assert changed == [table_key]
    diff = (after[table_key] - before[table_key]).abs().sum(dim=1)
    assert diff[row] > 0 and diff.sum() == diff[row]
    assert torch.equal(v, after[table_key][row])
    assert PLACEHOLDER in PROMPT.split()
    assert not token_table(backbone).requires_grad
