"""A small contrastive image-text encoder trained here on procedural image-caption pairs (no
weights to download) [recon: a CLIP-style InfoNCE on our scenes]. It is the fixed feature
extractor of the consistency metrics, the text-video alignment metric, the zero-shot
(colour, subject) reader of completion, and the image-text signal of the agreement A."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from papers.spagent import lexicon, scenes

VOCAB = ["<pad>", "a", *scenes.COLOURS, *scenes.SUBJECTS, *scenes.BACKGROUNDS,
         *sorted({w for p in lexicon.BACKGROUND_PHRASES.values() for w in p.split()})]
WORD = {w: i for i, w in enumerate(dict.fromkeys(VOCAB))}
GRID = [(c, s) for c in scenes.COLOURS for s in scenes.SUBJECTS]  # the zero-shot captions


@dataclass
class EncoderSpec:
    width: int = 32  # conv channels of the image tower
    dim: int = 64  # joint embedding size


class ImageTower(nn.Module):
    def __init__(self, width: int, dim: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(4 * width, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.net(x)
        h = torch.cat([h.mean((2, 3)), h.amax((2, 3))], 1)
        return F.normalize(self.head(h), dim=-1)


class TextTower(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.emb = nn.EmbeddingBag(len(WORD), dim, mode="mean", padding_idx=0)
        self.head = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(self.emb(ids)), dim=-1)


class Encoder(nn.Module):
    """image(frames uint8) and text(captions) in one normalised space; cosine similarity."""

    def __init__(self, width: int = 32, dim: int = 64):
        super().__init__()
        self.image_tower, self.text_tower = ImageTower(width, dim), TextTower(dim)
        self.log_scale = nn.Parameter(torch.tensor(np.log(10.0), dtype=torch.float32))

    @staticmethod
    def pixels(frames: np.ndarray) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(frames), dtype=torch.float32)
        if x.ndim == 3:
            x = x[None]
        return x.permute(0, 3, 1, 2) / 127.5 - 1.0

    @staticmethod
    def tokens(captions: list[str]) -> torch.Tensor:
        rows = [[WORD[w] for w in lexicon.words(c) if w in WORD] or [0] for c in captions]
        n = max(map(len, rows))
        return torch.tensor([r + [0] * (n - len(r)) for r in rows])

    @torch.no_grad()
    def image(self, frames: np.ndarray) -> np.ndarray:
        self.eval()
        return self.image_tower(self.pixels(frames)).numpy().astype(np.float64)

    @torch.no_grad()
    def text(self, captions: list[str]) -> np.ndarray:
        self.eval()
        return self.text_tower(self.tokens(captions)).numpy().astype(np.float64)

    def grid_text(self) -> np.ndarray:
        if not hasattr(self, "_grid"):
            self._grid = self.text([lexicon.caption(c, s) for c, s in GRID])
        return self._grid

    def scale(self) -> float:
        return float(self.log_scale.detach().exp().clamp(max=100.0))

    def read(self, frames: np.ndarray) -> tuple[str, str]:
        """Zero-shot (colour, subject) of an image or a video (mean frame feature)."""
        feats = self.image(frames)
        k = int(np.argmax(feats.mean(0) @ self.grid_text().T))
        return GRID[k]


def _captions(rng, scene) -> str:
    c, s, b = scene.colour, scene.subject, scene.background
    form = rng.integers(5)
    return [lexicon.caption(c, s, b), lexicon.caption(c, s), lexicon.caption(None, s, b),
            f"a {c} {s}", lexicon.BACKGROUND_PHRASES[b]][form]


def training_batch(rng: np.random.Generator, n: int, size: int) -> tuple[np.ndarray, list[str]]:
    """n procedural images (random frame of a random scene, light artefacts) and captions."""
    imgs, caps = [], []
    for _ in range(n):
        scene = scenes.random_scene(rng, x=float(rng.uniform(0.25, 0.75)), y=float(rng.uniform(0.25, 0.75)))
        frame = scenes.render(scene, size, 1).astype(np.float64)[0]
        frame += rng.normal(0, rng.uniform(0, 8)) + rng.normal(0, 3, frame.shape)
        imgs.append(frame.clip(0, 255).astype(np.uint8))
        caps.append(_captions(rng, scene))
    return np.stack(imgs), caps


def train_encoder(steps: int, batch: int, lr: float, size: int, seed: int, width: int, dim: int,
                  log=None) -> tuple[Encoder, list[float]]:
    """InfoNCE both ways over a batch; captions that coincide in a batch count as positives."""
    torch.manual_seed(seed)
    rng = np.random.default_rng([seed, 17])
    model = Encoder(width, dim)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    losses = []
    for step in range(steps):
        model.train()
        imgs, caps = training_batch(rng, batch, size)
        zi, zt = model.image_tower(Encoder.pixels(imgs)), model.text_tower(Encoder.tokens(caps))
        logits = model.log_scale.exp().clamp(max=100.0) * zi @ zt.T
        same = torch.tensor([[a == b for b in caps] for a in caps], dtype=torch.float32)
        target = same / same.sum(1, keepdim=True)
        loss = 0.5 * (torch.sum(-target * logits.log_softmax(1), 1).mean()
                      + torch.sum(-target * logits.log_softmax(0).T, 1).mean())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if log is not None:
            log(step, losses[-1])
    return model, losses


def zero_shot_accuracy(model: Encoder, n: int, size: int, seed: int) -> float:
    rng = np.random.default_rng([seed, 99])
    hits = 0
    for _ in range(n):
        scene = scenes.random_scene(rng)
        hits += model.read(scenes.render(scene, size, 1)[0]) == (scene.colour, scene.subject)
    return hits / n
