"""Neuron's head on frozen skeleton features, and the two zero-shot baselines.

Input: feature maps F (B, C, T, V) from the frozen encoder and class text embeddings
E (K, levels, D_text, ...) (unit vectors). Output: per-round class logits.

Spatial branch (3 rounds): joint features J = mean_t F (B, V, C). Round r scores every joint
against the current prototypes P (B, A, C), masks each joint's lowest m_r prototypes so
that `active[r]` stay active per joint (60 → 40 → 20 of 80), weights joints per prototype by
a softmax over joints, and updates P ← MLP_r(Σ_v w_vp J_v). The round's output is the mean
over prototypes.

Temporal branch (3 rounds): time features S = mean_v F (B, C, T). Round r attends over the
first `prefixes[r]` steps (5, 10, then all 16): per prototype a softmax over those steps
gives a summary U (B, A, C); the memory update is
    P ← σ(MLP_keep(U)) ⊙ P + σ(MLP_write(U)) ⊙ MLP_r(U).
The round's output is the mean over prototypes.

Alignment: a shared Linear(C → D_text) + ReLU per branch, L2-normalised; the class logit is
logit_scale × the mean cosine to the class's descriptions of the round's text level
(spatial rounds: coarse, medium, fine; temporal rounds: cumulative phases 1, 1–2, 1–3).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SPATIAL_LEVELS = (0, 1, 2)  # coarse, medium, fine (indices into config.LEVELS)
TEMPORAL_LEVELS = (3, 4, 5)  # temporal1, temporal2, temporal3


def mlp(width: int, hidden: int) -> nn.Sequential:
    """The 2-layer update MLP (ReLU after both layers)."""
    return nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, width), nn.ReLU())


def class_logits(z: torch.Tensor, text: torch.Tensor, scale: float) -> torch.Tensor:
    """scale × mean_k cos(z, text[c, k]): z (B, D) unit, text (K, n, D) unit -> (B, K). The
    mean of the cosines is the dot product with the mean description (linear), computed so."""
    return scale * (z @ text.mean(1).T)


def compression_mask(scores: torch.Tensor, active: int) -> torch.Tensor:
    """Boolean (B, V, A): for every joint, its `active` highest-scoring prototypes."""
    top = scores.topk(active, dim=-1).indices
    return torch.zeros_like(scores, dtype=torch.bool).scatter_(-1, top, True)


class Neuron(nn.Module):
    def __init__(self, width: int, text_dim: int, prototypes: int = 80, active=(60, 40, 20),
                 memory_prototypes: int = 80, prefixes=(5, 10, 16), hidden: int = 256,
                 logit_scale: float = 0.1, ablation: str = "", prototype_init: str = "normal",
                 ablation_loss: str = "normalised"):
        super().__init__()
        self.active, self.prefixes = list(active), list(prefixes)
        self.scale, self.ablation = logit_scale, ablation
        self.ablation_loss = ablation_loss
        self.spatial = ablation != "temporal_only"
        self.temporal = ablation != "spatial_only"
        # the released prototypes are nn.Embedding weights: N(0, 1); "small" = N(0, 1) × 0.1
        init = 1.0 if prototype_init == "normal" else 0.1
        self.spatial_prototypes = nn.Parameter(torch.randn(prototypes, width) * init)
        self.temporal_prototypes = nn.Parameter(torch.randn(memory_prototypes, width) * init)
        self.spatial_update = nn.ModuleList(mlp(width, hidden) for _ in range(3))
        self.temporal_update = nn.ModuleList(mlp(width, hidden) for _ in range(3))
        self.keep = nn.ModuleList(mlp(width, hidden) for _ in range(3))
        self.write = nn.ModuleList(mlp(width, hidden) for _ in range(3))
        self.spatial_project = nn.Sequential(nn.Linear(width, text_dim), nn.ReLU())
        self.temporal_project = nn.Sequential(nn.Linear(width, text_dim), nn.ReLU())

    def levels(self, branch: str) -> tuple[int, int, int]:
        if self.ablation == "single_text":  # every round aligns to the most detailed text
            return (2, 2, 2) if branch == "spatial" else (5, 5, 5)
        return SPATIAL_LEVELS if branch == "spatial" else TEMPORAL_LEVELS

    def spatial_rounds(self, feats: torch.Tensor) -> list[torch.Tensor]:
        """(B, C, T, V) -> three round outputs (B, C); also records the active counts."""
        joints = feats.mean(2).transpose(1, 2)  # (B, V, C)
        protos = self.spatial_prototypes.expand(len(feats), -1, -1)
        outs, self.last_active = [], []
        for r, update in enumerate(self.spatial_update):
            scores = torch.einsum("bvc,bac->bva", joints, protos)
            weights = scores.softmax(dim=1)  # each prototype's weights over joints
            if self.ablation != "no_compression":
                keep = compression_mask(scores, self.active[r])
                weights = weights * keep
                self.last_active.append(keep.sum(-1))
            else:
                self.last_active.append(torch.full(scores.shape[:2], scores.shape[-1]))
            protos = update(torch.einsum("bva,bvc->bac", weights, joints))
            outs.append(protos.mean(1))
        return outs

    def temporal_rounds(self, feats: torch.Tensor) -> list[torch.Tensor]:
        """(B, C, T, V) -> three round outputs (B, C)."""
        steps = feats.mean(3)  # (B, C, T)
        memory = self.temporal_prototypes.expand(len(feats), -1, -1)
        outs, self.last_prefix = [], []
        for r, update in enumerate(self.temporal_update):
            prefix = steps[:, :, : self.prefixes[r]]
            self.last_prefix.append(prefix.shape[-1])
            attn = torch.einsum("bct,bac->bta", prefix, memory).softmax(dim=1)
            summary = torch.einsum("bct,bta->bac", prefix, attn)
            if self.ablation == "no_gating":
                memory = update(summary)
            else:
                memory = torch.sigmoid(self.keep[r](summary)) * memory \
                    + torch.sigmoid(self.write[r](summary)) * update(summary)
            outs.append(memory.mean(1))
        return outs

    def forward(self, feats: torch.Tensor, text: torch.Tensor) -> dict[str, list[torch.Tensor]]:
        """feats (B, C, T, V), text (K, levels, n, D) -> {"spatial": [3 × (B, K)], "temporal": ...}."""
        out: dict[str, list[torch.Tensor]] = {"spatial": [], "temporal": []}
        for branch, enabled, rounds, project in (
            ("spatial", self.spatial, self.spatial_rounds, self.spatial_project),
            ("temporal", self.temporal, self.temporal_rounds, self.temporal_project),
        ):
            if not enabled:
                continue
            for r, h in enumerate(rounds(feats)):
                z = F.normalize(project(h), dim=-1)
                out[branch].append(class_logits(z, text[:, self.levels(branch)[r]], self.scale))
        return out

    @staticmethod
    def branch_weight(ablation: str = "", ablation_loss: str = "normalised") -> float:
        """The weight `loss` gives each present branch's mean CE: ½ with both branches; with
        one branch ½ as well when `ablation_loss` is "normalised" (the branch takes the full
        model's step), 1 when it is "mean" (its own mean: the branches share no parameters,
        so the branch then trains with twice the full model's step)."""
        if ablation_loss == "normalised":
            return 0.5
        return 1.0 / (int(ablation != "temporal_only") + int(ablation != "spatial_only"))

    def loss(self, out: dict, labels: torch.Tensor) -> torch.Tensor:
        """½ (mean CE over spatial rounds + mean CE over temporal rounds); one branch alone
        (an ablation) gets `branch_weight` × its mean."""
        terms = [torch.stack([F.cross_entropy(lg, labels) for lg in out[b]]).mean()
                 for b in ("spatial", "temporal") if out[b]]
        return self.branch_weight(self.ablation, self.ablation_loss) * torch.stack(terms).sum()

    @staticmethod
    def final(out: dict) -> dict[str, torch.Tensor]:
        """Round-3 logits of each branch present."""
        return {b: out[b][-1] for b in ("spatial", "temporal") if out[b]}


class DeViSE(nn.Module):
    """Global-feature ↔ text alignment: mean-pooled feature → Linear + ReLU → L2 norm; the
    class embedding is the mean over all of its descriptions (all levels); logits are the
    scaled cosines, trained with cross-entropy like Neuron (DeViSE-style, not its hinge loss)."""

    def __init__(self, width: int, text_dim: int, logit_scale: float = 0.1):
        super().__init__()
        self.project = nn.Sequential(nn.Linear(width, text_dim), nn.ReLU())
        self.scale = logit_scale

    def forward(self, feats: torch.Tensor, text: torch.Tensor) -> dict[str, list[torch.Tensor]]:
        z = F.normalize(self.project(feats.mean((2, 3))), dim=-1)
        classes = F.normalize(text.flatten(1, 2).mean(1), dim=-1)[:, None]  # (K, 1, D)
        return {"global": [class_logits(z, classes, self.scale)]}

    def loss(self, out: dict, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(out["global"][0], labels)

    @staticmethod
    def final(out: dict) -> dict[str, torch.Tensor]:
        return {"global": out["global"][-1]}


class SMIE(nn.Module):
    """SMIE-like (after Zhou et al., ACM MM 2023; not SMIE as published): a critic T(x, t)
    scores a skeleton feature against a class text embedding; training maximises the
    Jensen–Shannon mutual information estimate between skeleton features and their class's
    text (positive pairs vs the other seen classes), plus a temporal constraint: the
    information of the feature of the first half of the sequence must stay below that of the
    whole sequence by a margin. Prediction = argmax_c T(x, t_c).

    Where it differs from the published SMIE: the critic is separable (a dot product of two
    MLP embeddings; SMIE's is an MLP on the concatenated pair); negatives are the other seen
    classes' text (SMIE: a shuffled batch); the constraint has weight 1 (SMIE: 0.5); it trains
    with the heads' SGD schedule (SMIE: Adam with cosine decay)."""

    def __init__(self, width: int, text_dim: int, hidden: int = 256, margin: float = 0.05):
        super().__init__()
        self.visual = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, hidden))
        self.textual = nn.Sequential(nn.Linear(text_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden))
        self.margin = margin

    def critic(self, feats: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """(B, C) pooled features × (K, D) class text -> scores (B, K)."""
        return self.visual(feats) @ self.textual(classes).T

    def forward(self, feats: torch.Tensor, text: torch.Tensor) -> dict[str, list[torch.Tensor]]:
        classes = F.normalize(text.flatten(1, 2).mean(1), dim=-1)
        half = feats[:, :, : max(1, feats.shape[2] // 2)].mean((2, 3))
        return {"global": [self.critic(feats.mean((2, 3)), classes)],
                "half": [self.critic(half, classes)]}

    @staticmethod
    def _jsd_mi(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        pos = scores.gather(1, labels[:, None])[:, 0]
        neg_mask = torch.ones_like(scores, dtype=torch.bool).scatter_(1, labels[:, None], False)
        neg = scores[neg_mask].view(len(scores), -1)
        return (-F.softplus(-pos)).mean() - F.softplus(neg).mean()

    def loss(self, out: dict, labels: torch.Tensor) -> torch.Tensor:
        full = self._jsd_mi(out["global"][0], labels)
        half = self._jsd_mi(out["half"][0], labels)
        return -full + F.relu(half - full + self.margin)

    @staticmethod
    def final(out: dict) -> dict[str, torch.Tensor]:
        return {"global": out["global"][-1]}


HEADS = {"neuron": Neuron, "devise": DeViSE, "smie": SMIE}


def centre_text(text: torch.Tensor, classes: list[int]) -> torch.Tensor:
    """Class text (K, levels, n, D) centred on the mean over `classes` (the head's training
    classes) and their descriptions, per level, then re-normalised: the embeddings share a
    large common component (every description is of a standing person)."""
    mean = text[classes].mean((0, 2), keepdim=True)  # (1, levels, 1, D)
    return F.normalize(text - mean, dim=-1)


def build_head(method: str, cfg, width: int, text_dim: int, ablation: str = "") -> nn.Module:
    n = cfg.neuron
    if method == "neuron":
        return Neuron(width, text_dim, n.prototypes, n.active, n.memory_prototypes, n.prefixes,
                      n.hidden, n.logit_scale, ablation, n.prototype_init, n.ablation_loss)
    if method == "devise":
        return DeViSE(width, text_dim, n.logit_scale)
    if method == "smie":
        return SMIE(width, text_dim, n.hidden)
    raise ValueError(method)
