"""SPIDER (Specialization via Importance Discrepancy Evaluation for Refinement) as a reusable
rule for any torch model, from a plain training loop or as a `transformers` callback.

Per trainable tensor θ (brief, "The rule"):
1. θ₀ = a frozen fp32 copy taken before the first step; pre-trained importance
   I_pre = rank(θ₀), rank(v) = sigmoid((|v| − mean|v|) / std|v|) over the tensor's entries
   (a constant tensor has std 0: its rank is 0.5 everywhere instead of NaN).
2. After every optimizer step (gradients already clipped): G ← G + g, the plain running sum
   of raw gradients; fine-tuning importance I_ft = rank(G).
3. Mask (soft): M = I_ft / (I_pre + I_ft) where I_ft > I_pre, else 0; M ← M / mean(M[M ≠ 0]);
   M ← min(M, 1). Hard (the paper's statement; an ablation): M = 1[I_ft > I_pre].
4. θ ← θ₀ ⊙ (1 − M) + θ_after ⊙ M. Optimizer state is untouched; M is recomputed every step.

Memory: two fp32 copies of every trainable tensor (θ₀ and G); I_pre is recomputed from θ₀ at
each step instead of being stored (`cache_pre=True` stores it: a third copy, less compute).

Every rule here (SPIDER and the baselines in baselines.py) has the same life cycle:
    rule.start(named_params)      before training (snapshots θ₀)
    rule.before_step()            after backward and clipping, before optimizer.step()
    rule.after_step()             after optimizer.step(), before zero_grad()
    rule.finish()                 after training (post-hoc rules act here)
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

MASK_MODES = ("soft", "hard")


def rank_importance(v: torch.Tensor) -> torch.Tensor:
    """sigmoid((|v| − mean|v|) / std|v|) in fp32 (std with Bessel's correction, as torch.std);
    0.5 everywhere when the entries are all equal (or there is one entry)."""
    a = v.detach().abs().float()
    if a.numel() < 2:
        return torch.full_like(a, 0.5)
    std = a.std()
    if not torch.isfinite(std) or std == 0:
        return torch.full_like(a, 0.5)
    return torch.sigmoid((a - a.mean()) / std)


def _rank_inplace(a: torch.Tensor) -> torch.Tensor:
    """rank_importance of a tensor that already holds |v| (fp32), computed in place."""
    if a.numel() < 2:
        return a.fill_(0.5)
    std, mean = torch.std_mean(a)
    if not torch.isfinite(std) or std == 0:
        return a.fill_(0.5)
    return a.sub_(mean).div_(std).sigmoid_()


def spider_mask(i_pre: torch.Tensor, i_ft: torch.Tensor, mode: str = "soft",
                cap: bool = True) -> torch.Tensor:
    """The importance-selection mask M from the two importances (step 3)."""
    selected = i_ft > i_pre
    if mode == "hard":
        return selected.float()
    m = torch.where(selected, i_ft / (i_pre + i_ft), torch.zeros_like(i_ft))
    if selected.any():
        m = m / m[selected].mean()
    return m.clamp(max=1.0) if cap else m


class Rule:
    """A rule acting on named trainable tensors around each optimizer step (no-op here:
    plain fine-tuning)."""

    name = "full_ft"

    def start(self, params: Iterable[tuple[str, nn.Parameter]] | Iterable[nn.Parameter]) -> None:
        self.params: list[tuple[str, nn.Parameter]] = [
            p if isinstance(p, tuple) else (f"param{i}", p) for i, p in enumerate(params)]
        self.params = [(n, p) for n, p in self.params if p.requires_grad]
        self.theta0 = {n: p.detach().float().clone() for n, p in self.params}

    def before_step(self) -> None:
        pass

    def after_step(self) -> None:
        pass

    def finish(self) -> None:
        pass

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors needed to resume exactly (θ₀ and any running state)."""
        return {f"theta0.{n}": t for n, t in self.theta0.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for n in self.theta0:
            self.theta0[n].copy_(state[f"theta0.{n}"])

    def extra_bytes(self) -> int:
        """Memory this rule keeps beyond the model and optimizer."""
        return sum(t.numel() * t.element_size() for t in self.state_dict().values())


class SPIDER(Rule):
    name = "spider"

    def __init__(self, mode: str = "soft", cache_pre: bool = False):
        if mode not in MASK_MODES:
            raise ValueError(f"SPIDER mask mode must be one of {MASK_MODES}, got {mode!r}")
        self.mode, self.cache_pre = mode, cache_pre
        self.last_selected: dict[str, float] = {}

    def start(self, params) -> None:
        super().start(params)
        self.grad_sum = {n: torch.zeros_like(t) for n, t in self.theta0.items()}  # fp32
        self.pre = {n: rank_importance(t) for n, t in self.theta0.items()} if self.cache_pre else None

    def importance_pre(self, name: str) -> torch.Tensor:
        return self.pre[name] if self.pre is not None else rank_importance(self.theta0[name])

    @torch.no_grad()
    def after_step(self) -> None:
        """Steps 2–4 for every tensor, fused in place (equal to `spider_mask` on the two
        `rank_importance`s; the tests check it)."""
        for name, p in self.params:
            g = self.grad_sum[name]
            if p.grad is not None:
                g.add_(p.grad.detach())
            i_ft = _rank_inplace(g.abs())
            i_pre = self.importance_pre(name)
            selected = i_ft > i_pre
            if self.mode == "hard":
                mask = selected.to(i_ft.dtype)
            else:
                mask = i_ft.div_(i_pre + i_ft).mul_(selected)
                count = selected.sum()
                if count > 0:
                    mask.div_(mask.sum() / count).clamp_(max=1.0)
            self.last_selected[name] = float(selected.float().mean())
            theta0 = self.theta0[name]
            if p.dtype == torch.float32:
                p.sub_(theta0).mul_(mask).add_(theta0)  # θ₀ + M ⊙ (θ_after − θ₀)
            else:
                p.copy_(((p.detach().float() - theta0).mul_(mask).add_(theta0)).to(p.dtype))

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = super().state_dict()
        state.update({f"grad_sum.{n}": t for n, t in self.grad_sum.items()})
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        super().load_state_dict(state)
        for n in self.grad_sum:
            self.grad_sum[n].copy_(state[f"grad_sum.{n}"])
        if self.pre is not None:
            self.pre = {n: rank_importance(t) for n, t in self.theta0.items()}

    def extra_bytes(self) -> int:
        cached = sum(t.numel() * t.element_size() for t in self.pre.values()) if self.pre else 0
        return super().extra_bytes() + cached


RULE_STATE_FILE = "spider_rule_state.safetensors"  # in each Trainer checkpoint-<step>/ directory


def sharding_problem(args=None, accelerator=None) -> str | None:
    """Why a rule cannot run here, or None. Every rule reads or writes each parameter's full
    `p.grad` and full tensor after the optimizer step; DeepSpeed ZeRO and FSDP hand each
    process only a shard (or keep the gradient in their own buffers), so SPIDER would rank a
    partial gradient and reset a partial tensor. Plain DDP and one process are fine."""
    import os

    names = []
    if accelerator is not None:
        state = getattr(accelerator, "state", None)
        if getattr(state, "deepspeed_plugin", None) is not None:
            names.append("DeepSpeed")
        if getattr(state, "fsdp_plugin", None) is not None:
            names.append("FSDP")
    if args is not None:
        if getattr(args, "deepspeed", None):
            names.append("DeepSpeed")
        if getattr(args, "fsdp", None):
            names.append("FSDP")
    for env, name in (("ACCELERATE_USE_DEEPSPEED", "DeepSpeed"), ("ACCELERATE_USE_FSDP", "FSDP")):
        if os.environ.get(env, "").lower() in ("1", "true", "yes"):
            names.append(name)
    if not names:
        return None
    return (f"{' and '.join(dict.fromkeys(names))} is enabled, but the SPIDER rules need each parameter's full "
            "gradient and tensor on every process (ZeRO and FSDP shard them): use plain data parallelism "
            "(DDP) or one process")


def rule_callback(rule: Rule, checkpoint: str | None = None):
    """A `transformers.TrainerCallback` that runs `rule` inside `Trainer`: θ₀ is taken at the
    start of training from the model's trainable parameters, `before_step` runs after
    clipping, `after_step` after the optimizer step and before gradients are zeroed
    (`on_optimizer_step`), `finish` at the end of training.

    Resume: every Trainer checkpoint gets the rule's state (θ₀, G and any running state) in
    `checkpoint-<step>/` + RULE_STATE_FILE. A Trainer resumed at step k > 0 restores it from
    `checkpoint` (default: `<output_dir>/checkpoint-<k>`, where `resume_from_checkpoint`
    puts it), instead of taking θ₀ from the resumed weights; a missing file is an error.
    DeepSpeed ZeRO and FSDP are refused at the start of training (`sharding_problem`)."""
    import os

    from transformers import TrainerCallback

    from shared import UserError

    class RuleCallback(TrainerCallback):
        def __init__(self):
            self.rule, self.started, self.checkpoint = rule, False, checkpoint

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            problem = sharding_problem(args)
            if problem:
                raise UserError(problem)
            if self.started:
                return
            self.rule.start(list(model.named_parameters()))
            self.started = True
            if state.global_step > 0:
                path = os.path.join(self.checkpoint or os.path.join(args.output_dir, f"checkpoint-{state.global_step}"),
                                    RULE_STATE_FILE)
                if not os.path.isfile(path):
                    raise UserError(f"the Trainer resumed at step {state.global_step}, but {path} is missing: the "
                                    f"{self.rule.name} rule's θ₀ and running state cannot be restored (pass "
                                    "rule_callback(rule, checkpoint=<the checkpoint directory>))")
                from safetensors.torch import load_file

                self.rule.load_state_dict(load_file(path))

        def on_pre_optimizer_step(self, args, state, control, **kwargs):
            self.rule.before_step()

        def on_optimizer_step(self, args, state, control, **kwargs):
            self.rule.after_step()

        def on_save(self, args, state, control, **kwargs):
            if not state.is_world_process_zero:
                return  # every process holds the same θ₀ and G under DDP
            from safetensors.torch import save_file

            folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
            os.makedirs(folder, exist_ok=True)
            save_file({k: v.detach().contiguous().cpu() for k, v in self.rule.state_dict().items()},
                      os.path.join(folder, RULE_STATE_FILE))

        def on_train_end(self, args, state, control, **kwargs):
            self.rule.finish()

    return RuleCallback()
