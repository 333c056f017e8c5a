"""Decision Transformer backbones on `transformers.GPT2Model`, and the MTBC network.

Tokens are (R̂_t, s_t, a_t) interleaved, 3K of them. Each has its own linear embedding and
`embed_timestep(t)` *added* to it, which is the only positional code: GPT-2's learned
position embedding `wpe` is zeroed and frozen. The action is read from the state token
(Linear + tanh). Conditioning:
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
from transformers import GPT2Config, GPT2Model

from papers.harmodt.config import ModelConfig


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


class DecisionTransformer(nn.Module):
    def __init__(self, cfg: ModelConfig, obs_dim: int, act_dim: int, max_ep_len: int,
                 conditioning: str, n_tasks: int = 1) -> None:
        super().__init__()
        assert conditioning in ("prompt", "task", "none"), conditioning
        self.conditioning, self.context, self.act_dim = conditioning, cfg.context, act_dim
        h = cfg.hidden
        self.embed_tokens = TokenEmbeddings(obs_dim, act_dim, h, max_ep_len)
        if conditioning == "prompt":
            self.prompt_embed_tokens = TokenEmbeddings(obs_dim, act_dim, h, max_ep_len)
        if conditioning == "task":
            self.embed_task = nn.Embedding(n_tasks, h)
        self.embed_ln = nn.LayerNorm(h)
        extra = 3 * cfg.prompt_steps if conditioning == "prompt" else int(conditioning == "task")
        gpt = GPT2Config(vocab_size=1, n_positions=3 * cfg.context + extra, n_embd=h,
                         n_layer=cfg.layers, n_head=cfg.heads, n_inner=4 * h,
                         resid_pdrop=cfg.dropout, embd_pdrop=cfg.dropout, attn_pdrop=cfg.dropout,
                         bos_token_id=None, eos_token_id=None, pad_token_id=None)
        self.transformer = GPT2Model(gpt)
        for unused in (self.transformer.wpe, self.transformer.wte):  # timestep embedding instead
            nn.init.zeros_(unused.weight)
            unused.weight.requires_grad_(False)
        self.predict_action = nn.Sequential(nn.Linear(h, act_dim), nn.Tanh())

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Predicted actions [B,K,act_dim] at the state tokens of the main segment."""
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
        hidden = self.transformer(inputs_embeds=self.embed_ln(tokens),
                                  attention_mask=mask.long()).last_hidden_state
        k = batch["states"].shape[1]
        main = hidden[:, -3 * k:].reshape(hidden.shape[0], k, 3, -1)
        return self.predict_action(main[:, :, 1])


class MTBC(nn.Module):
    """Multi-task behaviour cloning: an MLP on (state, task embedding) -> tanh action."""

    def __init__(self, cfg: ModelConfig, obs_dim: int, act_dim: int, n_tasks: int) -> None:
        super().__init__()
        self.conditioning = "task"
        self.embed_task = nn.Embedding(n_tasks, cfg.hidden)
        self.embed_state = nn.Linear(obs_dim, cfg.mlp_hidden)
        self.body = nn.Sequential(nn.ReLU(), nn.Linear(cfg.mlp_hidden + cfg.hidden, cfg.mlp_hidden),
                                  nn.ReLU(), nn.Linear(cfg.mlp_hidden, cfg.mlp_hidden), nn.ReLU())
        self.predict_action = nn.Sequential(nn.Linear(cfg.mlp_hidden, act_dim), nn.Tanh())

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        states = batch["states"]
        task = self.embed_task(batch["task"])[:, None].expand(-1, states.shape[1], -1)
        return self.predict_action(self.body(torch.cat([self.embed_state(states), task], -1)))


CONDITIONING = {"prompt-dt": "prompt", "harmodt-f": "prompt", "harmodt-m": "prompt",
                "harmodt-r": "prompt", "mtdt": "task", "g-harmodt": "none"}


def build_model(method: str, cfg: ModelConfig, obs_dim: int, act_dim: int, max_ep_len: int,
                n_tasks: int) -> nn.Module:
    if method == "mtbc":
        return MTBC(cfg, obs_dim, act_dim, n_tasks)
    return DecisionTransformer(cfg, obs_dim, act_dim, max_ep_len, CONDITIONING[method], n_tasks)


def action_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Action MSE over non-padded positions (mean over valid entries)."""
    valid = mask.bool()
    return ((pred - target) ** 2)[valid].mean()
