"""G-HarmoDT's task grouping and gating network (journal extension, arXiv 2411.01146).

The extension's abstract says only that tasks are grouped from gradient information and that
a gating network infers the group at test time. This is our reconstruction (brief, "recon"):
cosine-similarity matrix of per-task gradients → agglomerative clustering into G groups →
one harmony mask per group (the trainer treats a group like a task of `masks.py`) → a GRU
over the recent (s, a, r) context, trained with cross-entropy to predict the group.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from sklearn.cluster import AgglomerativeClustering
from torch import nn


def flatten_grads(g: dict[str, torch.Tensor]) -> torch.Tensor:
    """One flat vector, in the dict's key order."""
    return torch.cat([t.detach().flatten() for t in g.values()])


def gradient_cosine_matrix(task_grads: list[dict[str, torch.Tensor]]) -> torch.Tensor:
    """[n, n] cosine similarity of the tasks' flattened gradients (float64; 0 for a zero one)."""
    flat = torch.stack([flatten_grads(g) for g in task_grads]).double()
    unit = F.normalize(flat, dim=1)
    return unit @ unit.T


def cluster_tasks(similarity: torch.Tensor, n_groups: int) -> list[int]:
    """Group id per task: average-linkage agglomerative clustering on distance 1 − cos.

    Groups are renumbered in order of first appearance, so the output is canonical
    (e.g. [0, 0, 1, 1], never [1, 1, 0, 0]).
    """
    n = similarity.shape[0]
    if n_groups < 1:
        raise ValueError(f"n_groups must be ≥ 1, got {n_groups}")
    if n_groups >= n:
        return list(range(n))
    if n_groups == 1:
        return [0] * n
    distance = (1.0 - similarity.double()).clamp(min=0.0)
    distance = ((distance + distance.T) / 2).fill_diagonal_(0.0)  # sklearn wants it symmetric
    labels = AgglomerativeClustering(n_clusters=n_groups, metric="precomputed",
                                     linkage="average").fit_predict(distance.numpy())
    canonical: dict[int, int] = {}
    return [canonical.setdefault(int(label), len(canonical)) for label in labels]


class GatingNetwork(nn.Module):
    """GRU over (s_t, a_{t−1}, r_{t−1}) → logits over the G groups.

    A GRU cell is stepped over the window and its state is carried unchanged through invalid
    steps, so padding (whatever its values) cannot change the logits. A row with no valid
    step keeps the zero state and gets the head's bias as logits.
    """

    def __init__(self, obs_dim: int, act_dim: int, n_groups: int, hidden: int = 128,
                 context: int = 20) -> None:
        super().__init__()
        self.context = context
        self.embed = nn.Sequential(nn.Linear(obs_dim + act_dim + 1, hidden), nn.ReLU())
        self.cell = nn.GRUCell(hidden, hidden)
        self.head = nn.Linear(hidden, n_groups)

    def forward(self, window: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """window [B, T, obs+act+1], valid [B, T] bool (T ≤ context) → logits [B, n_groups]."""
        if window.shape[1] > self.context:
            raise ValueError(f"window of {window.shape[1]} steps exceeds context {self.context}")
        x = self.embed(window)
        h = x.new_zeros(window.shape[0], self.cell.hidden_size)
        for t in range(window.shape[1]):
            h = torch.where(valid[:, t, None], self.cell(x[:, t], h), h)
        return self.head(h)


def gating_loss(logits: torch.Tensor, group_ids: torch.Tensor) -> torch.Tensor:
    """Cross-entropy between the predicted and the true group."""
    return F.cross_entropy(logits, group_ids)
