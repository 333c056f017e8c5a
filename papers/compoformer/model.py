"""The continual Decision-Transformer policy: one backbone, one head per stage, and the way
each method stores a stage's parameters; CompoFormer's meta-policy (α over earlier tasks).

Backbone: `shared.offline_rl.dt.DecisionTransformer` with no conditioning token; its
`encode()` gives the last-layer state-token features f [B, K, h]. The shared DT's own action
layer is not used: every stage has its own head, Linear(in → h) → GELU → LayerNorm →
Linear(h → act) → tanh, where in = 2h for CompoFormer ([h_old; f_new]) and h otherwise.

How stage j's features f_j are computed (`kind`):
  - "dense" (fine-tuning, L2, EWC, MAS, A-GEM, Perfect Memory, MTL): the one shared backbone;
  - "lora" (CompoFormer-Grow, LoRA): stage 0 is the base itself (trained in full); stage
    j ≥ 1 adds a `peft` LoRA adapter `t<j>` (rank r, α) on every block's attention projection
    `c_attn` and trains only it (and its head) — the base is frozen after stage 0;
  - "mask" (CompoFormer-Prune, PackNet): each entry of a trunk weight matrix has an owner
    (−1 = free); stage j trains the free entries, keeps the largest `prune_quantile` of them
    by magnitude as its own and zeroes the rest (released), then fine-tunes its own entries.
    f_j uses θ ⊙ 1[0 ≤ owner ≤ j] (the union of masks 0..j). Parameters outside the trunk's
    matrices (embeddings, LayerNorms, biases) are trained at stage 0 and frozen afterwards.

CompoFormer's meta-policy for stage n ≥ 1 (`MetaAttention`): q_n = W_q e_n, k_j = W_k e_j
(Linear(E → h), weights 1, bias 0), α = softmax_j(q_n · k_j / √h) over j < n, and
h_old = Σ_j α_j f_j with the earlier stages' features computed without gradients. Each
earlier stage's own action is its own head on its own composition (recursive). A stage that
reuses the composition (online check passed) is an alias of the top-1 earlier stage.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.func import functional_call

from shared.offline_rl.dt import DecisionTransformer

KINDS = ("dense", "lora", "mask")
LORA_TARGET = "c_attn"


class Encoder(DecisionTransformer):
    """A Decision Transformer whose forward is `encode()`: [B, K, h] state-token features."""

    def forward(self, batch, attention="padding"):  # type: ignore[override]
        return self.encode(batch, attention)


class ActionHead(nn.Module):
    """Linear(in → h) → GELU → LayerNorm → Linear(h → act) → tanh."""

    def __init__(self, in_dim: int, hidden: int, act_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.LayerNorm(hidden),
                                 nn.Linear(hidden, act_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(x))


class MetaAttention(nn.Module):
    """q = W_q e_new, k_j = W_k e_j, α = softmax(q·k_j / √h) over the earlier tasks."""

    def __init__(self, embed_dim: int, hidden: int) -> None:
        super().__init__()
        self.q = nn.Linear(embed_dim, hidden)
        self.k = nn.Linear(embed_dim, hidden)
        for layer in (self.q, self.k):
            nn.init.ones_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.hidden = hidden

    def forward(self, e_new: torch.Tensor, e_old: torch.Tensor) -> torch.Tensor:
        """[E] new task's embedding, [n, E] earlier tasks' -> α [n] (sums to 1)."""
        scores = self.k(e_old) @ self.q(e_new) / math.sqrt(self.hidden)
        return torch.softmax(scores, dim=0)


def compose(alpha: torch.Tensor, features: list[torch.Tensor]) -> torch.Tensor:
    """h_old = Σ_j α_j f_j for [n] weights and n feature tensors [B, K, h]."""
    return torch.einsum("n,nbkh->bkh", alpha, torch.stack(features))


def maskable_names(backbone: nn.Module) -> list[str]:
    """The trunk's weight matrices (GPT-2 blocks' attention and MLP projections)."""
    return [n for n, p in backbone.named_parameters()
            if n.startswith("transformer.h.") and p.ndim == 2 and "lora_" not in n]


class ContinualDT(nn.Module):
    """Backbone + per-stage heads (+ per-stage meta-attention when `composed`)."""

    def __init__(self, obs_dim: int, act_dim: int, n_stages: int, embeddings: torch.Tensor, *,
                 kind: str, composed: bool, hidden: int, layers: int, heads: int, context: int,
                 max_ep_len: int, dropout: float, lora_rank: int = 8, lora_alpha: float = 1.0
                 ) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.kind, self.composed, self.n_stages, self.act_dim = kind, composed, n_stages, act_dim
        self.backbone = Encoder(obs_dim, act_dim, hidden=hidden, layers=layers, heads=heads,
                                context=context, max_ep_len=max_ep_len, conditioning="none",
                                dropout=dropout)
        self.backbone.predict_action = nn.Identity()  # every stage has its own head
        in_dim = 2 * hidden if composed else hidden
        self.heads = nn.ModuleList(ActionHead(in_dim, hidden, act_dim) for _ in range(n_stages))
        self.meta = nn.ModuleList(MetaAttention(embeddings.shape[1], hidden)
                                  for _ in range(n_stages if composed else 0))
        self.register_buffer("embeddings", embeddings.float().clone())
        self.alias = list(range(n_stages))  # stage j acts as stage alias[j] (reuse)
        self.hidden = hidden
        if kind == "lora":
            import peft

            config = peft.LoraConfig(r=lora_rank, lora_alpha=lora_alpha, lora_dropout=0.0,
                                     target_modules=[LORA_TARGET], fan_in_fan_out=True,
                                     bias="none")
            for j in range(1, n_stages):
                peft.inject_adapter_in_model(config, self.backbone.transformer, adapter_name=f"t{j}")
            for p in self.backbone.parameters():
                p.requires_grad_(True)
        self.owner: dict[str, torch.Tensor] = {}
        if kind == "mask":
            params = dict(self.backbone.named_parameters())
            self.owner = {n: torch.full(params[n].shape, -1, dtype=torch.int16)
                          for n in maskable_names(self.backbone)}
        self.live_stage: int | None = None  # the stage being trained (uses live weights)

    # -- parameters of a stage -----------------------------------------------------------
    def lora_layers(self) -> list[nn.Module]:
        from peft.tuners.lora import LoraLayer

        return [m for m in self.backbone.modules() if isinstance(m, LoraLayer)]

    def lora_names(self, stage: int) -> list[str]:
        return [n for n, _ in self.backbone.named_parameters() if f".t{stage}." in n
                or n.endswith(f".t{stage}.weight")]

    def base_names(self) -> list[str]:
        return [n for n, _ in self.backbone.named_parameters() if "lora_" not in n]

    def _use_adapter(self, stage: int) -> None:
        for layer in self.lora_layers():
            if stage == 0:
                layer.enable_adapters(False)
            else:
                layer._disable_adapters = False
                layer.set_adapter(f"t{stage}")

    def stage_mask(self, stage: int) -> dict[str, torch.Tensor]:
        """Union of the masks 0..stage (entries owned by any of those stages)."""
        return {n: (o >= 0) & (o <= stage) for n, o in self.owner.items()}

    def stage_overrides(self, stage: int) -> dict[str, torch.Tensor]:
        params = dict(self.backbone.named_parameters())
        return {n: params[n] * m for n, m in self.stage_mask(stage).items()}

    def features(self, batch: dict[str, torch.Tensor], stage: int) -> torch.Tensor:
        """f_stage [B, K, h] (live weights for the stage being trained)."""
        if self.kind == "lora":
            self._use_adapter(stage)
            return self.backbone(batch)
        if self.kind == "mask" and stage != self.live_stage:
            return functional_call(self.backbone, self.stage_overrides(stage), (batch,), strict=False)
        return self.backbone(batch)

    # -- actions -------------------------------------------------------------------------
    def alpha(self, stage: int) -> torch.Tensor:
        """α of stage ≥ 1 over the stages before it."""
        return self.meta[stage](self.embeddings[stage], self.embeddings[:stage])

    def actions_all(self, batch: dict[str, torch.Tensor], upto: int) -> list[torch.Tensor]:
        """Each stage 0..upto's own action on `batch` (earlier stages without gradients)."""
        feats: dict[int, torch.Tensor] = {}

        def feat(j: int) -> torch.Tensor:
            j = self.alias[j]
            if j not in feats:
                if j == self.live_stage:
                    feats[j] = self.features(batch, j)
                else:
                    with torch.no_grad():
                        feats[j] = self.features(batch, j)
            return feats[j]

        out: list[torch.Tensor] = []
        for j in range(upto + 1):
            if self.alias[j] != j:
                out.append(out[self.alias[j]])
                continue
            out.append(self.head_action(j, feat(j), [feat(i) for i in range(j)]))
        return out

    def head_action(self, stage: int, f_new: torch.Tensor, earlier: list[torch.Tensor]) -> torch.Tensor:
        if not self.composed:
            return self.heads[stage](f_new)
        h_old = compose(self.alpha(stage), earlier) if stage > 0 else torch.zeros_like(f_new)
        return self.heads[stage](torch.cat([h_old, f_new], -1))

    def stage_action(self, batch: dict[str, torch.Tensor], stage: int) -> torch.Tensor:
        """Stage `stage`'s action [B, K, act]."""
        if not self.composed:
            return self.heads[self.alias[stage]](self.features(batch, self.alias[stage]))
        return self.actions_all(batch, stage)[stage]

    def composed_action(self, batch: dict[str, torch.Tensor], stage: int, hard: bool = False
                        ) -> torch.Tensor:
        """Σ_j α_j â_j of the frozen earlier stages' actions (hard: the top-1 stage's)."""
        acts = self.actions_all(batch, stage - 1)
        alpha = self.alpha(stage)
        if hard:
            return acts[int(alpha.argmax())].detach()
        return torch.einsum("n,nbka->bka", alpha, torch.stack([a.detach() for a in acts]))

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Actions [B, K, act] of each row's stage `batch["task"]`: every needed stage's
        features once over the whole batch, then each row group's head."""
        task = batch["task"]
        stages = [int(s) for s in torch.unique(task).tolist()]
        if self.training and self.composed:  # earlier stages' features need no gradients
            return self._forward_grouped(batch, stages)
        needed = sorted({self.alias[j] for j in (range(max(stages) + 1) if self.composed else stages)})
        if self.kind == "dense":
            shared = self.backbone(batch)
            feats = {j: shared for j in needed}
        else:
            feats = {j: self.features(batch, j) for j in needed}
        out = torch.zeros(*batch["states"].shape[:2], self.act_dim, device=task.device)
        for stage in stages:
            rows = (task == stage).nonzero().squeeze(1)
            j = self.alias[stage]
            earlier = [feats[self.alias[i]][rows] for i in range(j)] if self.composed else []
            out[rows] = self.head_action(j, feats[j][rows], earlier)
        return out

    def _forward_grouped(self, batch: dict[str, torch.Tensor], stages: list[int]) -> torch.Tensor:
        task = batch["task"]
        out = torch.zeros(*batch["states"].shape[:2], self.act_dim, device=task.device)
        for stage in stages:
            rows = (task == stage).nonzero().squeeze(1)
            sub = {k: v[rows] for k, v in batch.items()}
            out[rows] = self.stage_action(sub, stage)
        return out
