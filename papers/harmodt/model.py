"""HarmoDT's networks: the Decision Transformer variants it compares, and MTBC.

The Decision Transformer backbone is `shared.offline_rl.dt.DecisionTransformer` (tokens
(R̂_t, s_t, a_t) on `transformers.GPT2Model`, GPT-2's position embedding zeroed and frozen,
the timestep embedding added to every token, tanh action read from the state token).
Conditioning by method:
  - "prompt" (Prompt-DT, HarmoDT): a 5-step demonstration of the same task with its own
    separate embeddings, prepended as 3·prompt_steps tokens;
  - "task" (MTDT): one learned task-id token prepended;
  - "none" (G-HarmoDT, task-agnostic): nothing; its masks carry the task information.
Parameter names containing `embed` or `predict` are the input/output layers HarmoDT never
masks (papers/harmodt/masks.py).
"""

from __future__ import annotations

import torch
from torch import nn

from papers.harmodt.config import ModelConfig
from shared.offline_rl.dt import DecisionTransformer


class MTBC(nn.Module):
    """Multi-task behaviour cloning: an MLP on (state, task embedding) -> tanh action."""

    def __init__(self, cfg: ModelConfig, obs_dim: int, act_dim: int, n_tasks: int) -> None:
        super().__init__()
        self.conditioning, self.act_dim = "task", act_dim
        self.embed_task = nn.Embedding(n_tasks, cfg.hidden)
        self.embed_state = nn.Linear(obs_dim, cfg.mlp_hidden)
        self.body = nn.Sequential(nn.ReLU(), nn.Linear(cfg.mlp_hidden + cfg.hidden, cfg.mlp_hidden),
                                  nn.ReLU(), nn.Linear(cfg.mlp_hidden, cfg.mlp_hidden), nn.ReLU())
        self.predict_action = nn.Sequential(nn.Linear(cfg.mlp_hidden, act_dim), nn.Tanh())

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        states = batch["states"]
        task = self.embed_task(batch["task"])[:, None].expand(-1, states.shape[1], -1)
        return self.predict_action(self.body(torch.cat([self.embed_state(states), task], -1)))


class HarmoDecisionTransformer(DecisionTransformer):
    """The shared DT with the embed LayerNorm placed as in Prompt-DT's / HarmoDT's code.

    `embed_ln="main"` (default): LayerNorm on the main segment's 3K tokens only; the prompt
    tokens (or the task token) enter GPT-2 without it. `"all"`: LayerNorm on every token
    (this reproduction before issue 21, the shared backbone's behaviour)."""

    def __init__(self, *args, embed_ln: str = "main", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.embed_ln_scope = embed_ln

    def encode(self, batch: dict[str, torch.Tensor], attention="padding") -> torch.Tensor:
        if self.embed_ln_scope == "all":
            return super().encode(batch, attention)
        tokens, mask = self.tokens(batch)
        main = 3 * batch["states"].shape[1]
        tokens = torch.cat([tokens[:, :-main], self.embed_ln(tokens[:, -main:])], 1)
        if isinstance(attention, str):
            if attention != "padding":
                raise ValueError(f"attention must be 'padding', None or a tensor, got {attention!r}")
            attention = mask.long()
        hidden = self.transformer(inputs_embeds=tokens, attention_mask=attention).last_hidden_state
        k = batch["states"].shape[1]
        return hidden[:, -3 * k:].reshape(hidden.shape[0], k, 3, -1)[:, :, 1]


CONDITIONING = {"prompt-dt": "prompt", "harmodt-f": "prompt", "harmodt-m": "prompt",
                "harmodt-r": "prompt", "harmodt-k0": "prompt", "mtdt": "task", "g-harmodt": "none"}


def decision_transformer(cfg: ModelConfig, obs_dim: int, act_dim: int, max_ep_len: int,
                         conditioning: str, n_tasks: int = 1) -> DecisionTransformer:
    return HarmoDecisionTransformer(obs_dim, act_dim, hidden=cfg.hidden, layers=cfg.layers,
                               heads=cfg.heads, context=cfg.context, max_ep_len=max_ep_len,
                               conditioning=conditioning, prompt_steps=cfg.prompt_steps,
                               dropout=cfg.dropout, n_tasks=n_tasks, activation=cfg.activation,
                               embed_ln=cfg.embed_ln)


def build_model(method: str, cfg: ModelConfig, obs_dim: int, act_dim: int, max_ep_len: int,
                n_tasks: int) -> nn.Module:
    if method == "mtbc":
        return MTBC(cfg, obs_dim, act_dim, n_tasks)
    return decision_transformer(cfg, obs_dim, act_dim, max_ep_len, CONDITIONING[method], n_tasks)
