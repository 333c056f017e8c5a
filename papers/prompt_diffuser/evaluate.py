"""Online evaluation of the (frozen or fine-tuned) Prompt-DT with given prompts, on ML1.

One episode per goal per round (`shared.offline_rl.Evaluator`, task-major slots = goals in
order); round r hands episode i the prompt `rounds[r]` row i, so a prompt generator samples a
fresh prompt for every episode. Returns are Meta-World's summed rewards over `max_steps`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from papers.prompt_diffuser.config import PromptDiffuserConfig
from shared.offline_rl import Evaluator
from shared.offline_rl.policy import DTPolicy
from shared.offline_rl.segments import Normaliser


def evaluate(cfg: PromptDiffuserConfig, model: nn.Module, norm: Normaliser, split: str,
             goals: list[int], rounds: list[dict[str, torch.Tensor]]) -> dict:
    """Mean return and success over every (round, goal) episode, and per goal."""
    model.eval()
    policy = DTPolicy(model, norm, context=cfg.model.context, max_steps=cfg.data.max_steps,
                      target_return=cfg.eval.target_return,
                      return_scale=cfg.pretrain.return_scale,
                      device=next(model.parameters()).device)
    returns, success = [], []
    with Evaluator([cfg.data.task], goals, cfg.data.max_steps, workers=cfg.eval.workers,
                   benchmark_seed=cfg.data.benchmark_seed, benchmark="ML1", split=split) as ev:
        for prompts in rounds:
            policy.set_prompts({k: v.detach() for k, v in prompts.items()}, np.arange(len(goals)))
            out = ev.run(policy)
            returns.append([e["return"] for e in out["per_episode"]])
            success.append([e["success"] for e in out["per_episode"]])
    returns, success = np.asarray(returns, np.float64), np.asarray(success, np.float64)
    return {"return": float(returns.mean()), "success": float(success.mean()),
            "per_goal_return": returns.mean(0).tolist(), "per_goal_success": success.mean(0).tolist(),
            "episodes": int(returns.size)}
