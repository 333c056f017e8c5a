"""Training and scoring of a zero-shot head (Neuron, an ablation, or a baseline) on frozen
features of the seen classes, and one split's full evaluation (ZSL both ways, GZSL with γ
chosen honestly and on the test set)."""

from __future__ import annotations

import torch

from papers.neuron import evaluate
from papers.neuron.model import build_head
from shared.device import resolve_device


def head_device(cfg) -> torch.device:
    """Where heads train and predict: cfg.device (auto = the GPU when there is one)."""
    return resolve_device(getattr(cfg, "device", "cpu"))


def fit_head(cfg, method: str, ablation: str, feats: torch.Tensor, labels: torch.Tensor,
             classes: list[int], text: torch.Tensor, seed: int) -> torch.nn.Module:
    """Train a head with cross-entropy over `classes` on (feats, labels) (labels are global
    class indices, all in `classes`). SGD with Nesterov momentum and step decay, as released.

    The returned model (on `head_device(cfg)`; feats may stay on the CPU) carries `.history =
    {"loss": [mean training loss per epoch], "steps": optimizer steps}` (the curve the claims'
    convergence precondition reads)."""
    t = cfg.train
    device = head_device(cfg)
    torch.manual_seed(seed)
    model = build_head(method, cfg, feats.shape[1], text.shape[-1], ablation).to(device)
    position = torch.full((max(max(classes), int(labels.max())) + 1,), -1, dtype=torch.long)
    position[torch.tensor(classes)] = torch.arange(len(classes))
    targets = position[labels]
    assert (targets >= 0).all(), "a training label is outside the training classes"
    targets = targets.to(device)
    text_sub = text[classes].to(device)
    opt = torch.optim.SGD(model.parameters(), lr=t.lr, momentum=t.momentum, nesterov=t.nesterov,
                          weight_decay=t.weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, t.milestones, 0.1)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    curve, steps = [], 0
    for _ in range(t.epochs):
        order = torch.randperm(len(feats), generator=gen)
        total = 0.0
        for start in range(0, len(order), t.batch_size):
            idx = order[start:start + t.batch_size]
            out = model(feats[idx].to(device).float(), text_sub)
            loss = model.loss(out, targets[idx.to(device)])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            steps += 1
        curve.append(total / len(order))
        sched.step()
    model.eval()
    model.history = {"loss": curve, "steps": steps}
    return model


@torch.no_grad()
def predict(model: torch.nn.Module, feats: torch.Tensor, text: torch.Tensor, batch: int = 256) -> dict:
    """Round-3 logits of every branch over all classes: {branch: (N, K)}, on the CPU (the
    model runs where its parameters are)."""
    device = next(model.parameters()).device
    text = text.to(device)
    parts: dict[str, list] = {}
    for start in range(0, len(feats), batch):
        out = model.final(model(feats[start:start + batch].to(device).float(), text))
        for k, v in out.items():
            parts.setdefault(k, []).append(v.cpu())
    return {k: torch.cat(v) for k, v in parts.items()}


def validation_gamma(cfg, method: str, ablation: str, feats: torch.Tensor, labels: torch.Tensor,
                     seen: list[int], text: torch.Tensor, seed: int) -> float:
    """γ chosen without the test set: a validation head is trained on the seen classes minus
    a pseudo-unseen fraction, with a fraction of its samples held out; γ maximises H on the
    held-out samples plus the pseudo-unseen classes' samples."""
    gen = torch.Generator().manual_seed(10_000 + seed)
    k = max(1, round(cfg.eval.pseudo_unseen * len(seen)))
    pseudo_unseen = sorted(seen[int(i)] for i in torch.randperm(len(seen), generator=gen)[:k])
    pseudo_seen = [c for c in seen if c not in pseudo_unseen]
    in_pseudo_seen = torch.isin(labels, torch.tensor(pseudo_seen))
    idx = torch.nonzero(in_pseudo_seen)[:, 0]
    idx = idx[torch.randperm(len(idx), generator=gen)]
    n_hold = int(round(cfg.eval.heldout_fraction * len(idx)))
    hold, fit = idx[:n_hold], idx[n_hold:]
    head = fit_head(cfg, method, ablation, feats[fit], labels[fit], pseudo_seen, text, seed)
    val = torch.cat([hold, torch.nonzero(~in_pseudo_seen)[:, 0]])
    final = predict(head, feats[val], text[seen])
    probs = torch.zeros(len(val), text.shape[0])
    probs[:, seen] = evaluate.fused_probs(final)
    return evaluate.best_gamma(probs, labels[val], pseudo_seen, pseudo_unseen, cfg.eval.gamma_points)["gamma"]


def score(cfg, model: torch.nn.Module, split: dict, text: torch.Tensor, gzsl: bool = True,
          gamma: float | None = None) -> dict:
    """A trained head on the split's test set: "zsl" (unseen test samples among the unseen
    classes) and, with `gzsl`, "gzsl_test_gamma" (the γ best on the test set) and, when the
    held-out `gamma` is given, "gzsl_val_gamma" (S, U, H at that γ)."""
    seen, unseen = split["seen"], split["unseen"]
    final = predict(model, split["test_feats"], text)
    labels = split["test_labels"]
    is_unseen = torch.isin(labels, torch.tensor(unseen))
    out = {"zsl": evaluate.zsl({k: v[is_unseen] for k, v in final.items()}, labels[is_unseen], unseen)}
    if gzsl:
        probs = evaluate.fused_probs(final)
        out["gzsl_test_gamma"] = evaluate.best_gamma(probs, labels, seen, unseen, cfg.eval.gamma_points)
        if gamma is not None:
            out["gzsl_val_gamma"] = evaluate.gzsl_accuracies(probs, labels, seen, unseen, gamma)
    return out


def fit_and_score(cfg, method: str, ablation: str, split: dict, text: torch.Tensor, seed: int,
                  gzsl: bool = True) -> tuple[dict, torch.nn.Module]:
    """(`evaluate_split`'s result, the trained head)."""
    seen = split["seen"]
    model = fit_head(cfg, method, ablation, split["train_feats"], split["train_labels"], seen, text, seed)
    gamma = (validation_gamma(cfg, method, ablation, split["train_feats"], split["train_labels"],
                              seen, text, seed) if gzsl else None)
    out = score(cfg, model, split, text, gzsl, gamma)
    out["training"] = dict(model.history)
    return out, model


def evaluate_split(cfg, method: str, ablation: str, split: dict, text: torch.Tensor, seed: int,
                   gzsl: bool = True) -> dict:
    """Train the head on the split's seen classes and measure ZSL (and GZSL) on its test set.

    split: {"train_feats", "train_labels" (seen classes only), "test_feats", "test_labels",
    "seen", "unseen"}. The result has "zsl", "training" (the head's loss curve and step
    count) and, with `gzsl`, "gzsl_test_gamma" and "gzsl_val_gamma"."""
    return fit_and_score(cfg, method, ablation, split, text, seed, gzsl)[0]
