"""Training and scoring of a zero-shot head (Neuron, an ablation, or a baseline) on frozen
features of the seen classes, the held-out sweep that picks each head's learning rate and
logit scale, and one split's full evaluation (ZSL both ways, GZSL with γ chosen honestly, on
the test set, and by the released per-branch protocol).

Held-out data never touch the test set: `pseudo_split` sets a fraction of the seen classes
aside as pseudo-unseen classes and holds out a fraction of the other seen classes' samples. A
validation head trained on the rest is scored on them: its pseudo-unseen ZSL top-1 picks the
(lr, logit scale) of the sweep and is the validation curve of the convergence precondition;
its held-out H picks the honest GZSL γ."""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch

from papers.neuron import evaluate
from papers.neuron.model import build_head, centre_text
from papers.neuron.pretrain import step_factor
from shared.device import resolve_device


def head_device(cfg) -> torch.device:
    """Where heads train and predict: cfg.device (auto = the GPU when there is one)."""
    return resolve_device(getattr(cfg, "device", "cpu"))


def head_text(cfg, text: torch.Tensor, train_classes: list[int]) -> torch.Tensor:
    """The class text a head trained on `train_classes` sees (every head alike): centred on
    those classes' mean when `text.centre`, else as embedded."""
    return centre_text(text, train_classes) if cfg.text.centre else text


def log_boundaries(steps: int, points: int) -> list[int]:
    """The step counts after which a curve point is recorded: `points` even windows (fewer
    when there are fewer steps), the last one at `steps`."""
    points = min(points, steps)
    return sorted({round(steps * (k + 1) / points) for k in range(points)})


def fit_head(cfg, method: str, ablation: str, feats: torch.Tensor, labels: torch.Tensor,
             classes: list[int], text: torch.Tensor, seed: int,
             monitor: Callable[[torch.nn.Module], float] | None = None) -> torch.nn.Module:
    """Train a head with its loss over `classes` on (feats, labels) (labels are global class
    indices, all in `classes`) for `train.steps` optimizer steps: SGD with Nesterov momentum,
    linear warm-up and × 0.1 at the milestones, all in steps; fresh shuffles of the data as
    each pass ends. `text` is the full class text; the head sees `head_text` of it.

    The returned model (on `head_device(cfg)`; feats may stay on the CPU) carries `.history =
    {"loss": [mean training loss per window], "at": [step at each window's end], "steps",
    "val": [monitor(model) at each window's end] (with `monitor`)}`: the curves the
    convergence precondition reads."""
    t = cfg.train
    device = head_device(cfg)
    torch.manual_seed(seed)
    model = build_head(method, cfg, feats.shape[1], text.shape[-1], ablation).to(device)
    position = torch.full((max(max(classes), int(labels.max())) + 1,), -1, dtype=torch.long)
    position[torch.tensor(classes)] = torch.arange(len(classes))
    targets = position[labels]
    assert (targets >= 0).all(), "a training label is outside the training classes"
    targets = targets.to(device)
    text_sub = head_text(cfg, text, classes)[classes].to(device)
    opt = torch.optim.SGD(model.parameters(), lr=t.lr, momentum=t.momentum, nesterov=t.nesterov,
                          weight_decay=t.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: step_factor(step, t.warmup_steps, list(t.milestones)))
    gen = torch.Generator().manual_seed(seed)
    bounds = log_boundaries(t.steps, t.log_points)
    model.train()
    history: dict = {"loss": [], "at": [], "steps": 0}
    if monitor is not None:
        history["val"] = []
    total, count, step, order, pos = 0.0, 0, 0, torch.empty(0, dtype=torch.long), 0
    while step < t.steps:
        if pos >= len(order):
            order, pos = torch.randperm(len(feats), generator=gen), 0
        idx = order[pos:pos + t.batch_size]
        pos += t.batch_size
        out = model(feats[idx].to(device).float(), text_sub)
        loss = model.loss(out, targets[idx.to(device)])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        step += 1
        total, count = total + loss.item() * len(idx), count + len(idx)
        if step == bounds[len(history["at"])]:
            history["loss"].append(total / count)
            history["at"].append(step)
            total, count = 0.0, 0
            if monitor is not None:
                model.eval()
                history["val"].append(float(monitor(model)))
                model.train()
    model.eval()
    history["steps"] = step
    model.history = history
    return model


@torch.no_grad()
def predict(model: torch.nn.Module, feats: torch.Tensor, text: torch.Tensor, batch: int = 256) -> dict:
    """Round-3 logits of every branch over the classes of `text`: {branch: (N, K)}, on the
    CPU (the model runs where its parameters are)."""
    device = next(model.parameters()).device
    text = text.to(device)
    parts: dict[str, list] = {}
    for start in range(0, len(feats), batch):
        out = model.final(model(feats[start:start + batch].to(device).float(), text))
        for k, v in out.items():
            parts.setdefault(k, []).append(v.cpu())
    return {k: torch.cat(v) for k, v in parts.items()}


def pseudo_split(cfg, labels: torch.Tensor, seen: list[int], seed: int) -> dict:
    """Held-out data from the seen classes alone: `eval.pseudo_unseen` of them (at least one)
    play unseen; `eval.heldout_fraction` of the other classes' samples are held out.
    {"pseudo_seen", "pseudo_unseen", "fit", "hold", "unseen_rows"} (row indices into labels)."""
    gen = torch.Generator().manual_seed(10_000 + seed)
    k = max(1, round(cfg.eval.pseudo_unseen * len(seen)))
    pseudo_unseen = sorted(seen[int(i)] for i in torch.randperm(len(seen), generator=gen)[:k])
    pseudo_seen = [c for c in seen if c not in pseudo_unseen]
    in_pseudo_seen = torch.isin(labels, torch.tensor(pseudo_seen))
    idx = torch.nonzero(in_pseudo_seen)[:, 0]
    idx = idx[torch.randperm(len(idx), generator=gen)]
    n_hold = int(round(cfg.eval.heldout_fraction * len(idx)))
    return {"pseudo_seen": pseudo_seen, "pseudo_unseen": pseudo_unseen, "fit": idx[n_hold:],
            "hold": idx[:n_hold], "unseen_rows": torch.nonzero(~in_pseudo_seen)[:, 0]}


def validate_head(cfg, method: str, ablation: str, feats: torch.Tensor, labels: torch.Tensor,
                  seen: list[int], text: torch.Tensor, seed: int) -> dict:
    """A validation head on `pseudo_split`'s fit rows: {"zsl" (its final pseudo-unseen ZSL
    top-1, the sweep's score), "gamma" (the γ with the best H on the held-out rows plus the
    pseudo-unseen classes' rows), "curve" (pseudo-unseen ZSL at each log point), "at",
    "loss"}."""
    ps = pseudo_split(cfg, labels, seen, seed)
    pseudo_seen, pseudo_unseen = ps["pseudo_seen"], ps["pseudo_unseen"]
    shown = head_text(cfg, text, pseudo_seen)
    rows = ps["unseen_rows"]
    target = labels[rows]

    def pseudo_unseen_zsl(model) -> float:
        final = predict(model, feats[rows], shown[pseudo_unseen])
        full = {k: torch.zeros(len(rows), text.shape[0]).index_copy_(1, torch.tensor(pseudo_unseen), v)
                for k, v in final.items()}
        return evaluate.zsl(full, target, pseudo_unseen)["fused"]

    head = fit_head(cfg, method, ablation, feats[ps["fit"]], labels[ps["fit"]], pseudo_seen, text,
                    seed, monitor=pseudo_unseen_zsl)
    val = torch.cat([ps["hold"], rows])
    probs = torch.zeros(len(val), text.shape[0])
    probs[:, seen] = evaluate.fused_probs(predict(head, feats[val], shown[seen]))
    gamma = evaluate.best_gamma(probs, labels[val], pseudo_seen, pseudo_unseen, cfg.eval.gamma_points)["gamma"]
    h = head.history
    return {"zsl": h["val"][-1], "gamma": gamma, "curve": h["val"], "at": h["at"], "loss": h["loss"]}


def validation_gamma(cfg, method: str, ablation: str, feats: torch.Tensor, labels: torch.Tensor,
                     seen: list[int], text: torch.Tensor, seed: int) -> float:
    """γ chosen without the test set (`validate_head`'s)."""
    return validate_head(cfg, method, ablation, feats, labels, seen, text, seed)["gamma"]


def sweep_grid(cfg, method: str) -> list[tuple[float, float | None]]:
    """(lr, logit scale) pairs of the held-out sweep, the same for every head: tune.lrs ×
    tune.logit_scales (an empty list = the config's single value). SMIE's critic has no
    logit scale (None)."""
    lrs = list(cfg.tune.lrs) or [cfg.train.lr]
    scales = [None] if method == "smie" else (list(cfg.tune.logit_scales) or [cfg.neuron.logit_scale])
    return [(float(lr), None if s is None else float(s)) for s in scales for lr in lrs]


def _beyond(values: list[float], low: bool) -> float:
    """The next value of a geometric axis beyond its lowest (`low`) or highest end."""
    v = sorted(values)
    x = v[0] * v[0] / v[1] if low else v[-1] * v[-1] / v[-2]
    return float(f"{x:.6g}")


def _neighbours(values: list[float], x: float) -> list[float]:
    """The values next to x (below and above) on the sorted axis `values`, continued
    geometrically beyond its ends."""
    v = sorted(values)
    i = v.index(x)
    return [v[i - 1] if i > 0 else _beyond(v, True), v[i + 1] if i < len(v) - 1 else _beyond(v, False)]


def extend_points(points: list[tuple[float, float | None]],
                  pick: tuple[float, float | None]) -> list[tuple[float, float | None]]:
    """One extension round of the sweep around the chosen (lr, scale): the points next to it
    along each axis that has ≥ 2 values, i.e. the lrs just below and above the chosen one (at
    the chosen scale) and the scales just below and above it (at the chosen lr), a value
    beyond an axis' end continuing it geometrically (the ratio of its two outermost values on
    that side). Returns the points not swept yet ([] = the choice already has a swept
    neighbour on both sides of each axis: it is inside the sweep)."""
    lr, scale = pick
    new = []
    lrs = sorted({a for a, _ in points})
    if len(lrs) >= 2:
        new += [(x, scale) for x in _neighbours(lrs, lr)]
    scales = sorted({s for _, s in points if s is not None})
    if scale is not None and len(scales) >= 2:
        new += [(lr, x) for x in _neighbours(scales, scale)]
    return [p for p in new if p not in points]


def with_hparams(cfg, lr: float, scale: float | None):
    """A copy of cfg training at `lr` with logit scale `scale` (None = unchanged)."""
    out = copy.deepcopy(cfg)
    out.train.lr = float(lr)
    if scale is not None:
        out.neuron.logit_scale = float(scale)
    return out


def score(cfg, model: torch.nn.Module, split: dict, text: torch.Tensor, gzsl: bool = True,
          gamma: float | None = None) -> dict:
    """A trained head (trained on split["seen"]) on the split's test set: "zsl" (unseen test
    samples among the unseen classes) and, with `gzsl`, "gzsl_test_gamma" (the γ best on the
    test set), "gzsl_released" (the released protocol: each branch's own test-set γ, a sample
    right if either branch is right) and, when the held-out `gamma` is given, "gzsl_val_gamma"
    (S, U, H at that γ)."""
    seen, unseen = split["seen"], split["unseen"]
    final = predict(model, split["test_feats"], head_text(cfg, text, seen))
    labels = split["test_labels"]
    is_unseen = torch.isin(labels, torch.tensor(unseen))
    out = {"zsl": evaluate.zsl({k: v[is_unseen] for k, v in final.items()}, labels[is_unseen], unseen)}
    if gzsl:
        probs = evaluate.fused_probs(final)
        out["gzsl_test_gamma"] = evaluate.best_gamma(probs, labels, seen, unseen, cfg.eval.gamma_points)
        out["gzsl_released"] = evaluate.released_gzsl(final, labels, seen, unseen, cfg.eval.gamma_points)
        if gamma is not None:
            out["gzsl_val_gamma"] = evaluate.gzsl_accuracies(probs, labels, seen, unseen, gamma)
    return out


def fit_and_score(cfg, method: str, ablation: str, split: dict, text: torch.Tensor, seed: int,
                  gzsl: bool = True) -> tuple[dict, torch.nn.Module]:
    """(`evaluate_split`'s result, the trained head)."""
    seen = split["seen"]
    model = fit_head(cfg, method, ablation, split["train_feats"], split["train_labels"], seen, text, seed)
    val = (validate_head(cfg, method, ablation, split["train_feats"], split["train_labels"],
                         seen, text, seed) if gzsl else None)
    out = score(cfg, model, split, text, gzsl, None if val is None else val["gamma"])
    out["training"] = dict(model.history)
    if val is not None:
        out["validation"] = {"zsl": val["curve"], "at": val["at"]}
    return out, model


def evaluate_split(cfg, method: str, ablation: str, split: dict, text: torch.Tensor, seed: int,
                   gzsl: bool = True) -> dict:
    """Train the head on the split's seen classes and measure ZSL (and GZSL) on its test set.

    split: {"train_feats", "train_labels" (seen classes only), "test_feats", "test_labels",
    "seen", "unseen"}. The result has "zsl", "training" (the head's loss curve and step
    count) and, with `gzsl`, "gzsl_test_gamma", "gzsl_released", "gzsl_val_gamma" and
    "validation" (the validation head's pseudo-unseen ZSL curve)."""
    return fit_and_score(cfg, method, ablation, split, text, seed, gzsl)[0]
