"""Client datasets S = (S_1, ..., S_m), n samples each, drawn from a problem's pool, and their
neighbouring datasets S' (one sample of one client replaced by a fresh one).

Splits: i.i.d. (a random permutation) or label-skewed (each client's label mix drawn from a
Dirichlet(α) distribution, samples without replacement; when a label runs out the client is
filled from the others).
"""

from __future__ import annotations

import numpy as np
import torch

from shared import UserError


def _numpy_rng(gen: torch.Generator) -> np.random.Generator:
    return np.random.default_rng(int(torch.randint(2**62, (1,), generator=gen)))


def label_counts(rng: np.random.Generator, n: int, num_labels: int, alpha: float) -> np.ndarray:
    """How many of a client's n samples have each label: Dirichlet(α) shares, rounded by
    largest remainder so they sum to n."""
    share = rng.dirichlet(np.full(num_labels, alpha)) * n
    counts = np.floor(share).astype(int)
    counts[np.argsort(counts - share)[: n - counts.sum()]] += 1
    return counts


def client_split(label: torch.Tensor, num_labels: int, m: int, n: int, split: str,
                 alpha: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(idx (m, n) into the pool, unused pool indices in random order)."""
    P = len(label)
    if m * n >= P:
        raise UserError(f"{m} clients × {n} samples need more than the pool's {P} samples "
                        "(raise data.pool_samples)")
    order = torch.randperm(P, generator=gen)
    if split == "iid":
        return order[: m * n].reshape(m, n), order[m * n:]
    rng = _numpy_rng(gen)
    by_label = [order[label[order] == c].tolist() for c in range(num_labels)]
    rows = []
    for _ in range(m):
        want = label_counts(rng, n, num_labels, alpha)
        row: list[int] = []
        for c in range(num_labels):
            take = min(int(want[c]), len(by_label[c]))
            row += by_label[c][:take]
            del by_label[c][:take]
        for c in np.argsort([-len(b) for b in by_label]):  # a label ran out: fill from the rest
            take = min(n - len(row), len(by_label[c]))
            row += by_label[c][:take]
            del by_label[c][:take]
        rows.append(row)
    used = torch.tensor(rows, dtype=torch.long)
    mask = torch.ones(P, dtype=torch.bool)
    mask[used.flatten()] = False
    return used, order[mask[order]]


def neighbour(idx: torch.Tensor, unused: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, tuple[int, int]]:
    """S' from S: sample j of client i replaced by the first unused pool sample."""
    m, n = idx.shape
    i = int(torch.randint(m, (1,), generator=gen))
    j = int(torch.randint(n, (1,), generator=gen))
    other = idx.clone()
    other[i, j] = unused[0]
    return other, (i, j)


def label_shares(label: torch.Tensor, idx: torch.Tensor, num_labels: int) -> torch.Tensor:
    """(m, num_labels): each client's fraction of every label (to report how skewed a split is)."""
    onehot = torch.nn.functional.one_hot(label[idx], num_labels).double()
    return onehot.mean(1)
