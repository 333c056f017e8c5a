"""The Decision Transformer backbone (Chen et al., 2021) on `transformers.GPT2Model`.

Tokens are (R̂_t, s_t, a_t) interleaved, 3K of them for K steps. Each kind has its own linear
embedding and `embed_timestep(t)` is *added* to it, which is the only positional code: GPT-2's
learned position embedding `wpe` (and the unused token embedding `wte`) are zeroed and frozen.
The action of step t is read from the last-layer feature of the state token s_t (so it never
sees a_t), through Linear + tanh. Conditioning, prepended to the 3K tokens:

  - "prompt" (Prompt-DT, Xu et al., 2022): a short demonstration (R̂, s, a, t) of the same task
    with its own separate embeddings, 3 tokens per prompt step;
  - "task" (MTDT): one learned task-id token;
  - "none": nothing (a paper's masks or adapters carry the task).

Batches are dicts of tensors, padded on the left (see `shared.offline_rl.segments`):
`states [B,K,obs]`, `actions [B,K,act]`, `rtg [B,K,1]`, `timesteps [B,K]` (long),
`mask [B,K]` (1 = real step), plus `prompt_*` of the same kinds for "prompt", and `task [B]`
for "task" conditioning or per-task action heads.

Parameter names containing `embed` or `predict` are the input and output layers, so a paper can
tell them from the trunk (`transformer.*`) by name.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import GPT2Config, GPT2Model

CONDITIONINGS = ("prompt", "task", "none")
# "gelu_new" is GPT-2's tanh GELU as transformers writes it in Python (several elementwise
# kernels); "relu" is what the authors' Decision Transformer code configures; and
# "gelu_pytorch_tanh" is the same tanh curve as one fused PyTorch kernel (equal to gelu_new
# within ~2e-7, not bitwise).
ACTIVATIONS = ("gelu_new", "relu", "gelu_pytorch_tanh")


class TokenEmbeddings(nn.Module):
    """Return, state, action and timestep embeddings of one token stream."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: int, max_ep_len: int) -> None:
        super().__init__()
        self.embed_timestep = nn.Embedding(max_ep_len, hidden)
        self.embed_return = nn.Linear(1, hidden)
        self.embed_state = nn.Linear(obs_dim, hidden)
        self.embed_action = nn.Linear(act_dim, hidden)

    def forward(self, states, actions, rtg, timesteps, mask) -> tuple[torch.Tensor, torch.Tensor]:
        """[B,T,·] inputs -> ([B,3T,h] tokens ordered R̂, s, a per step; [B,3T] attention mask)."""
        time = self.embed_timestep(timesteps)
        tokens = torch.stack([self.embed_return(rtg) + time, self.embed_state(states) + time,
                              self.embed_action(actions) + time], dim=2)
        b, t, _, h = tokens.shape
        return tokens.reshape(b, 3 * t, h), mask.repeat_interleave(3, dim=1)


class TaskActionHeads(nn.Module):
    """One Linear(h, act) + tanh per task, chosen per row by `task [B]`.

    Stored as a [n_tasks, act, h] weight and [n_tasks, act] bias (each head initialised like
    `nn.Linear`), so all rows are computed in one batched product whatever their tasks."""

    def __init__(self, n_tasks: int, hidden: int, act_dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_tasks, act_dim, hidden))
        self.bias = nn.Parameter(torch.empty(n_tasks, act_dim))
        bound = 1.0 / math.sqrt(hidden)
        for w in self.weight:
            nn.init.kaiming_uniform_(w, a=math.sqrt(5))
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, features: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """[B,K,h] features, [B] task ids -> [B,K,act] actions in (-1, 1)."""
        out = torch.einsum("bkh,bah->bka", features, self.weight[task]) + self.bias[task][:, None]
        return torch.tanh(out)


class DecisionTransformer(nn.Module):
    """Decision Transformer with optional prompt / task-token conditioning.

    `task_heads`: one action head per task (needs `n_tasks` and `batch["task"]`) instead of
    the shared one. `activation`: the trunk's MLP activation, one of `ACTIVATIONS`.
    """

    def __init__(self, obs_dim: int, act_dim: int, *, hidden: int = 128, layers: int = 3,
                 heads: int = 1, context: int = 20, max_ep_len: int = 1000,
                 conditioning: str = "prompt", prompt_steps: int = 5, dropout: float = 0.1,
                 n_tasks: int = 1, activation: str = "gelu_new", task_heads: bool = False) -> None:
        super().__init__()
        if conditioning not in CONDITIONINGS:
            raise ValueError(f"conditioning must be one of {CONDITIONINGS}, got {conditioning!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.conditioning, self.context, self.act_dim = conditioning, context, act_dim
        self.obs_dim, self.hidden, self.prompt_steps = obs_dim, hidden, prompt_steps
        h = hidden
        self.embed_tokens = TokenEmbeddings(obs_dim, act_dim, h, max_ep_len)
        if conditioning == "prompt":
            self.prompt_embed_tokens = TokenEmbeddings(obs_dim, act_dim, h, max_ep_len)
        if conditioning == "task":
            self.embed_task = nn.Embedding(n_tasks, h)
        self.embed_ln = nn.LayerNorm(h)
        extra = 3 * prompt_steps if conditioning == "prompt" else int(conditioning == "task")
        gpt = GPT2Config(vocab_size=1, n_positions=3 * context + extra, n_embd=h,
                         n_layer=layers, n_head=heads, n_inner=4 * h,
                         activation_function=activation,
                         resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout,
                         bos_token_id=None, eos_token_id=None, pad_token_id=None)
        self.transformer = GPT2Model(gpt)
        for unused in (self.transformer.wpe, self.transformer.wte):  # timestep embedding instead
            nn.init.zeros_(unused.weight)
            unused.weight.requires_grad_(False)
        if task_heads:
            self.predict_action = TaskActionHeads(n_tasks, h, act_dim)
        else:
            self.predict_action = nn.Sequential(nn.Linear(h, act_dim), nn.Tanh())
        self.task_heads = task_heads

    def tokens(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """All input tokens [B, L, h] (conditioning first) and their [B, L] valid mask."""
        tokens, mask = self.embed_tokens(batch["states"], batch["actions"], batch["rtg"],
                                         batch["timesteps"], batch["mask"])
        if self.conditioning == "prompt":
            p_tokens, p_mask = self.prompt_embed_tokens(
                batch["prompt_states"], batch["prompt_actions"], batch["prompt_rtg"],
                batch["prompt_timesteps"], batch["prompt_mask"])
            tokens, mask = torch.cat([p_tokens, tokens], 1), torch.cat([p_mask, mask], 1)
        elif self.conditioning == "task":
            task = self.embed_task(batch["task"])[:, None]
            tokens = torch.cat([task, tokens], 1)
            mask = torch.cat([torch.ones_like(mask[:, :1]), mask], 1)
        return tokens, mask

    def token_mask(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The [B, L] valid mask of `tokens(batch)`, without computing any embedding."""
        mask = batch["mask"].repeat_interleave(3, dim=1)
        if self.conditioning == "prompt":
            mask = torch.cat([batch["prompt_mask"].repeat_interleave(3, dim=1), mask], 1)
        elif self.conditioning == "task":
            mask = torch.cat([torch.ones_like(mask[:, :1]), mask], 1)
        return mask

    def encode(self, batch: dict[str, torch.Tensor], attention="padding") -> torch.Tensor:
        """Last-layer features of the K state tokens of the main segment, [B, K, h].

        `attention`: "padding" builds GPT-2's causal mask from the valid mask (the default);
        None means no step is padded (pure causal attention); a tensor is a 4-D mask prepared
        by `transformers.masking_utils.create_causal_mask` (used by the batched policy)."""
        tokens, mask = self.tokens(batch)
        if isinstance(attention, str):
            if attention != "padding":
                raise ValueError(f"attention must be 'padding', None or a tensor, got {attention!r}")
            attention = mask.long()
        hidden = self.transformer(inputs_embeds=self.embed_ln(tokens),
                                  attention_mask=attention).last_hidden_state
        k = batch["states"].shape[1]
        return hidden[:, -3 * k:].reshape(hidden.shape[0], k, 3, -1)[:, :, 1]

    def forward(self, batch: dict[str, torch.Tensor], attention="padding") -> torch.Tensor:
        """Predicted actions [B, K, act_dim] at the state tokens of the main segment."""
        features = self.encode(batch, attention)
        if self.task_heads:
            return self.predict_action(features, batch["task"])
        return self.predict_action(features)


def action_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                count: float | None = None) -> torch.Tensor:
    """Action MSE over non-padded positions (mean over valid entries).

    `count`: when these rows are one process's share of a larger batch, the number of valid
    entries (positions × action dimensions) of the whole batch; the loss is then this share's
    sum over that count, so the shares' losses (and gradients) add up to the whole batch's."""
    valid = mask.bool()
    squared = ((pred - target) ** 2)[valid]
    return squared.mean() if count is None else squared.sum() / count
