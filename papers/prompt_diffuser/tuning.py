"""Few-shot tuning on held-out goals, every method on the same frozen Prompt-DT and data.

The target data of goal g are its few-shot expert episodes (K-step segments); the initial
demonstrations of the chosen quality give the 5-step windows (x0, y) and the best-tail prompt.
L_PDT is the frozen policy's action MSE on target segments with a prompt prepended, summed
over goals of each goal's mean (so goals' gradients never mix).

- `PromptDiffuser` (rule projection | dm | guidance | sum, see projection.py): one DDPM
  denoiser per goal; x̂0 one-step or through the reverse chain (diffuser.py); at evaluation a
  prompt per episode is sampled from noise, conditioned on the best-tail window's y.
- `PromptTuning` (Prompt-Tuning DT): the prompt's states and actions are free parameters,
  initialised from the best-tail demonstration window, optimised on L_PDT.
- `FineTune`: a copy of the policy, all weights trained on L_PDT with the demonstration
  prompts (one model for all held-out goals) [recon].
- `NoTuning`: Prompt-DT with the demonstration prompt.
The policy the first three read is frozen (requires_grad False, eval mode): bit-identical
after tuning, which the run checks.
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch
from torch import nn

from papers.prompt_diffuser.config import PromptDiffuserConfig
from papers.prompt_diffuser.diffuser import (
    PromptDenoiser,
    diffusion_batch,
    dm_loss,
    make_scheduler,
    one_step_x0,
    pack_x0,
    pack_y,
    sample_chain,
    x0_to_prompt,
)
from papers.prompt_diffuser.pretrain import demo_prompts
from papers.prompt_diffuser.projection import clip_by_goal, combine, flat_by_goal, unflat_by_goal
from shared.offline_rl import Episode
from shared.offline_rl.segments import (
    Normaliser,
    SegmentSampler,
    empty_segment,
    prompt_keys,
    to_torch,
)

CPU = torch.device("cpu")
PD_RULES = {"pd": "projection", "pd-dm": "dm", "pd-guidance": "guidance", "pd-sum": "sum"}


class TuningData:
    """Target segments and demonstration windows of the held-out goals, as [G, B, ·] batches."""

    def __init__(self, cfg: PromptDiffuserConfig, norm: Normaliser, fewshot: list[list[Episode]],
                 demos: list[list[Episode]]) -> None:
        self.cfg, rs, horizon = cfg, cfg.pretrain.return_scale, cfg.data.max_steps
        self.targets = [SegmentSampler(e, cfg.model.context, norm, rs, horizon) for e in fewshot]
        self.windows = [SegmentSampler(e, cfg.model.prompt_steps, norm, rs, horizon) for e in demos]
        self.demo = demo_prompts(cfg, demos, norm)  # best-tail window per goal [G, P, ·]
        self.goals = len(fewshot)

    def target_batch(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """B target segments per goal, goal-major: [G*B, K, ·]."""
        parts = [s.sample(self.cfg.tune.batch_size, rng) for s in self.targets]
        return to_torch({k: np.concatenate([p[k] for p in parts]) for k in parts[0]}, CPU)

    def window_batch(self, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(x0 [G,B,x], y [G,B,2P]): full P-step windows of each goal's demonstrations."""
        p, b = self.cfg.model.prompt_steps, self.cfg.tune.batch_size
        xs, ys = [], []
        for s in self.windows:
            out = empty_segment(b, p, s.states[0].shape[1], s.actions[0].shape[1])
            for row in range(b):
                e = int(rng.integers(len(s.states)))
                s.fill(out, row, e, int(rng.integers(len(s.states[e]) - p + 1)))
            prompts = prompt_keys(out)
            xs.append(pack_x0(prompts, out["rewards"], self.cfg.diffuser.reward_scale))
            ys.append(pack_y(prompts, self.cfg.data.max_steps))
        return torch.as_tensor(np.stack(xs)), torch.as_tensor(np.stack(ys))

    def demo_y(self) -> torch.Tensor:
        """[G, 1, 2P]: the condition of each goal's best-tail demonstration window."""
        demo = {k: v.numpy() for k, v in self.demo.items()}
        return torch.as_tensor(pack_y(demo, self.cfg.data.max_steps))[:, None]


def pdt_loss(policy: nn.Module, prompts: dict[str, torch.Tensor], batch: dict[str, torch.Tensor],
             goals: int) -> torch.Tensor:
    """L_PDT: per goal the action MSE over valid entries, summed over goals; prompts [G*B, P, ·]."""
    pred = policy({**batch, **prompts})
    err = ((pred - batch["actions"]) ** 2 * batch["mask"][..., None]).reshape(goals, -1)
    count = batch["mask"].reshape(goals, -1).sum(1) * pred.shape[-1]
    return (err.sum(1) / count).sum()


def _rows(prompts: dict[str, torch.Tensor], b: int) -> dict[str, torch.Tensor]:
    """[G, P, ·] prompts repeated for B rows per goal -> [G*B, P, ·]."""
    return {k: v.repeat_interleave(b, 0) for k, v in prompts.items()}


class Method:
    """One tuning method: `step(rng, gen)` -> logged losses; `eval_model()` and
    `eval_prompts(gen)` (one [G, P, ·] prompt set per round); `tensors()`/`load()` for checkpoints."""

    sampled = False  # draws a new prompt per episode (then evaluation runs eval.rounds rounds)
    curves = ()  # the logged losses whose plateau is the precondition

    def __init__(self, cfg: PromptDiffuserConfig, policy: nn.Module, data: TuningData) -> None:
        self.cfg, self.policy, self.data = cfg, policy, data
        self.optimizer: torch.optim.Optimizer | None = None

    def trainable(self) -> int:
        return 0

    def step(self, rng: np.random.Generator, gen: torch.Generator) -> dict[str, float]:
        return {}

    def eval_model(self) -> nn.Module:
        return self.policy

    def eval_prompts(self, gen: torch.Generator) -> dict[str, torch.Tensor]:
        return self.data.demo

    def tensors(self) -> dict[str, torch.Tensor]:
        return {}

    def load(self, tensors: dict[str, torch.Tensor]) -> None:
        pass


class NoTuning(Method):
    """Prompt-DT with the test goal's demonstration as the prompt."""


class PromptTuning(Method):
    """Prompt-Tuning DT: direct optimisation of the prompt's state and action tokens."""

    curves = ("l_pdt",)

    def __init__(self, cfg, policy, data) -> None:
        super().__init__(cfg, policy, data)
        self.tokens = nn.Parameter(torch.cat([data.demo["prompt_states"], data.demo["prompt_actions"]], -1))
        self.optimizer = torch.optim.Adam([self.tokens], lr=cfg.tune.ptdt_lr)

    def trainable(self) -> int:
        return self.tokens[0].numel()

    def prompts(self) -> dict[str, torch.Tensor]:
        obs = self.data.demo["prompt_states"].shape[-1]
        return {**self.data.demo, "prompt_states": self.tokens[..., :obs],
                "prompt_actions": self.tokens[..., obs:]}

    def step(self, rng, gen) -> dict[str, float]:
        batch = self.data.target_batch(rng)
        loss = pdt_loss(self.policy, _rows(self.prompts(), self.cfg.tune.batch_size), batch, self.data.goals)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"l_pdt": float(loss.detach()) / self.data.goals}

    def eval_prompts(self, gen) -> dict[str, torch.Tensor]:
        return {k: v.detach() for k, v in self.prompts().items()}

    def tensors(self):
        return {"tokens": self.tokens.detach()}

    def load(self, tensors):
        with torch.no_grad():
            self.tokens.copy_(tensors["tokens"])


class FineTune(Method):
    """Prompt-DT fully fine-tuned on the few-shot data (a copy; the frozen policy stays)."""

    curves = ("l_pdt",)

    def __init__(self, cfg, policy, data) -> None:
        super().__init__(cfg, policy, data)
        self.model = copy.deepcopy(policy).requires_grad_(True)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.tune.finetune_lr,
                                           weight_decay=cfg.pretrain.weight_decay)

    def trainable(self) -> int:
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)

    def step(self, rng, gen) -> dict[str, float]:
        batch = self.data.target_batch(rng)
        self.model.train()
        loss = pdt_loss(self.model, _rows(self.data.demo, self.cfg.tune.batch_size), batch, self.data.goals)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.pretrain.grad_clip)
        self.optimizer.step()
        return {"l_pdt": float(loss.detach()) / self.data.goals}

    def eval_model(self) -> nn.Module:
        return self.model.eval()

    def tensors(self):
        return {f"model.{k}": v for k, v in self.model.state_dict().items()}

    def load(self, tensors):
        self.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})


class PromptDiffuser(Method):
    """The conditional DDPM prompt generator, tuned with L_DM and the frozen policy's L_PDT."""

    sampled = True

    def __init__(self, cfg, policy, data, rule: str = "projection") -> None:
        super().__init__(cfg, policy, data)
        dc, p = cfg.diffuser, cfg.model.prompt_steps
        obs, act = data.demo["prompt_states"].shape[-1], data.demo["prompt_actions"].shape[-1]
        self.dims, self.rule = (obs, act), rule
        self.scheduler = make_scheduler(dc)
        self.model = PromptDenoiser(data.goals, p * (obs + act + 1), 2 * p, dc,
                                    self.scheduler.alphas_cumprod)
        self.params = list(self.model.parameters())
        self.optimizer = torch.optim.Adam(self.params, lr=cfg.tune.lr)
        self.curves = {"projection": ("l_dm", "l_pdt"), "sum": ("l_dm", "l_pdt"),
                       "dm": ("l_dm",), "guidance": ("l_pdt",)}[rule]

    def trainable(self) -> int:
        return self.model.params_per_goal()

    def losses(self, rng: np.random.Generator, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(L_DM, L_PDT) of one batch, both summed over goals and differentiable in θ."""
        x0, y = self.data.window_batch(rng)
        x_k, eps, k = diffusion_batch(self.scheduler, x0, gen)
        l_dm, pred = dm_loss(self.model, x_k, eps, y, k)
        if self.cfg.diffuser.x0_estimate == "one-step":
            x_hat = one_step_x0(self.scheduler, x_k, pred, k)
        else:
            x_hat = sample_chain(self.model, self.scheduler, y, gen)
        g, b = y.shape[:2]
        prompts = x0_to_prompt(x_hat.reshape(g * b, -1), y.reshape(g * b, -1), *self.dims,
                               self.cfg.data.max_steps)
        return l_dm, pdt_loss(self.policy, prompts, self.data.target_batch(rng), g)

    def step(self, rng, gen) -> dict[str, float]:
        dc = self.cfg.diffuser
        l_dm, l_pdt = self.losses(rng, gen)
        g_dm = flat_by_goal(torch.autograd.grad(l_dm, self.params, retain_graph=True))
        g_pdt = flat_by_goal(torch.autograd.grad(l_pdt, self.params))
        g = clip_by_goal(combine(g_dm, g_pdt, self.rule, dc.guidance_weight, dc.projection), dc.grad_clip)
        for p, grad in zip(self.params, unflat_by_goal(g, self.params)):
            p.grad = grad
        self.optimizer.step()
        cos = (g_dm * g_pdt).sum(1) / (g_dm.norm(dim=1) * g_pdt.norm(dim=1) + 1e-12)
        return {"l_dm": float(l_dm.detach()) / self.data.goals, "l_pdt": float(l_pdt.detach()) / self.data.goals,
                "cos": float(cos.mean()), "conflict": float((cos < 0).float().mean())}

    @torch.no_grad()
    def eval_prompts(self, gen) -> dict[str, torch.Tensor]:
        y = self.data.demo_y()
        x = sample_chain(self.model, self.scheduler, y, gen)
        return x0_to_prompt(x[:, 0], y[:, 0], *self.dims, self.cfg.data.max_steps)

    def tensors(self):
        return {f"denoiser.{k}": v for k, v in self.model.state_dict().items()}

    def load(self, tensors):
        self.model.load_state_dict({k[9:]: v for k, v in tensors.items() if k.startswith("denoiser.")})


def make_method(name: str, cfg: PromptDiffuserConfig, policy: nn.Module, data: TuningData) -> Method:
    if name in PD_RULES:
        return PromptDiffuser(cfg, policy, data, PD_RULES[name])
    return {"ptdt": PromptTuning, "finetune": FineTune, "prompt-dt": NoTuning}[name](cfg, policy, data)


def timed_prompts(method: Method, gen: torch.Generator) -> tuple[dict[str, torch.Tensor], float]:
    """A prompt set and the seconds per episode it took to make."""
    start = time.perf_counter()
    prompts = method.eval_prompts(gen)
    return prompts, (time.perf_counter() - start) / method.data.goals
