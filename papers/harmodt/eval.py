"""Meta-World evaluation of a training run: seen tasks during training, unseen at the end.

Success is `info['success']` at any step of an episode, averaged over `eval.goals` goal
variations per task and then over tasks (shared.offline_rl.Evaluator). Unseen tasks
(held out from training) are run with their own expert prompts (and, with per-task
normalisation, state statistics fitted on those prompt demonstrations, the only data of an
unseen task there is); HarmoDT uses the unseen-task mask there (`harmo.unseen_mask`: the
released protocol keeps the most-voted half of the entries, sparsity 0.5; `vote` = a vote
threshold over the task masks), G-HarmoDT its gate; MTDT and MTBC have no way to address
an unseen task and are not evaluated on them.

G-HarmoDT's gate accuracy: the fraction of (episode, step) gate choices during the seen-task
evaluation that pick the group of the episode's task.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from papers.harmodt.config import IMPORTANCE, HarmoDTConfig
from papers.harmodt.data import fit_normaliser, load_prompts, recent_gate_rows, unseen_tasks
from papers.harmodt.masks import majority_vote_mask, top_voted_mask
from shared.offline_rl import Evaluator
from shared.offline_rl.policy import DTPolicy, by_task
from shared.offline_rl.prompts import PromptSelector

PROMPT_SEED = 7_919  # eval prompts are fixed per run, drawn apart from the training stream


def fixed_prompts(selectors: list[PromptSelector], seed: int) -> dict[str, torch.Tensor]:
    """One prompt per task, [n_tasks, P, ·] tensors."""
    rng = np.random.default_rng(seed + PROMPT_SEED)
    parts = [s.sample(1, rng) for s in selectors]
    return {k: torch.as_tensor(np.concatenate([p[k] for p in parts])) for k in parts[0]}


class RunEvaluation:
    """The evaluators of one run and the policies built from the trainer's current state."""

    def __init__(self, cfg: HarmoDTConfig, trainer) -> None:
        self.cfg, self.trainer = cfg, trainer
        ec, d = cfg.eval, cfg.data
        self.task_names = [t.task for t in trainer.tasks]
        self.seen_eval = Evaluator(self.task_names, list(range(ec.goals)), d.max_steps,
                                   workers=ec.workers, stop_on_success=ec.stop_on_success)
        self.unseen = unseen_tasks(cfg) if trainer.method not in ("mtdt", "mtbc") else []
        self.prompts = fixed_prompts(trainer.batches.prompts, trainer.seed)
        self.last: dict | None = None
        self.gate_hits = self.gate_total = 0

    def policy(self, prompts, weights=None, choose=None, task_ids=None, norm=None) -> DTPolicy:
        t, tc = self.trainer, self.cfg.train
        uses_prompt = getattr(t.model, "conditioning", "") == "prompt"
        return DTPolicy(t.model, norm if norm is not None else t.norm, context=self.cfg.model.context, max_steps=self.cfg.data.max_steps,
                        target_return=self.cfg.eval.target_return, return_scale=tc.return_scale,
                        device=t.device, prompts=prompts if uses_prompt else None,
                        weights=weights, choose=choose, task_ids=task_ids)

    def gate_chooser(self, count: bool = False):
        gate, steps, groups = self.trainer.gate, self.cfg.group.gate_context, self.trainer.groups

        def choose(policy: DTPolicy) -> list:
            rows, valid = recent_gate_rows(policy, steps)
            with torch.no_grad():
                logits = gate(torch.as_tensor(rows, device=policy.device),
                              torch.as_tensor(valid, device=policy.device))
            picked = logits.argmax(-1).tolist()
            if count:  # seen tasks: the true group of each episode's task is known
                self.gate_hits += sum(int(p == groups[i]) for p, i in zip(picked, policy.task_index))
                self.gate_total += len(picked)
            return picked
        return choose

    def _run(self, evaluator: Evaluator, policy: DTPolicy) -> dict:
        t = self.trainer
        t.model.eval()
        try:
            return evaluator.run(policy)
        finally:
            t.model.train()

    def seen_policy(self) -> DTPolicy:
        t = self.trainer
        if t.harmony is None:
            ids = list(range(len(self.task_names))) if t.method in ("mtdt", "mtbc") else None
            return self.policy(self.prompts, task_ids=ids)
        weights = {m: t.harmony.masked_params(mask) for m, mask in enumerate(t.harmony.masks)}
        if t.method == "g-harmodt":
            return self.policy(self.prompts, weights, self.gate_chooser(count=True))
        return self.policy(self.prompts, weights, by_task)

    def seen(self) -> dict:
        self.gate_hits = self.gate_total = 0
        result = self._run(self.seen_eval, self.seen_policy())
        self.last = result
        out = {"success": float(result["success"]), "return": float(result["return"])}
        if self.gate_total:
            out["gate_accuracy"] = self.gate_hits / self.gate_total
        out.update({f"success/{k}": float(v["success"]) for k, v in result["per_task"].items()})
        return out

    def unseen_result(self) -> dict | None:
        t = self.trainer
        if not self.unseen:
            return None
        demos = list(load_prompts(self.cfg, self.unseen).values())
        norm = fit_normaliser(self.cfg, t.method, demos) if t.norm.per_task else t.norm
        selectors = [PromptSelector(eps, self.cfg.model.prompt_steps, norm.for_task(i),
                                    self.cfg.train.return_scale, t.max_ep_len, mode=self.cfg.data.prompt)
                     for i, eps in enumerate(demos)]
        prompts = fixed_prompts(selectors, t.seed)
        if t.method in IMPORTANCE:
            mask = self.unseen_mask()
            policy = self.policy(prompts, {0: t.harmony.masked_params(mask)},
                                 lambda p: [0] * len(p.task_index), norm=norm)
        elif t.method == "g-harmodt" and t.harmony is not None:
            weights = {m: t.harmony.masked_params(mask) for m, mask in enumerate(t.harmony.masks)}
            policy = self.policy(prompts, weights, self.gate_chooser(), norm=norm)
        else:
            policy = self.policy(prompts, norm=norm)
        goals = self.cfg.eval.unseen_goals or self.cfg.eval.goals
        with Evaluator(self.unseen, list(range(goals)), self.cfg.data.max_steps,
                       workers=self.cfg.eval.workers, stop_on_success=self.cfg.eval.stop_on_success) as ev:
            return self._run(ev, policy)

    def unseen_mask(self) -> dict:
        """The one mask HarmoDT acts with on an unseen task (`harmo.unseen_mask`)."""
        h, hc = self.trainer.harmony, self.cfg.harmo
        if hc.unseen_mask == "sparsity":
            return top_voted_mask(h.masks, hc.unseen_sparsity, h.params())
        return majority_vote_mask(h.masks, hc.unseen_threshold)

    def summary(self) -> dict:
        t = self.trainer
        if self.last is None:  # resumed after the final checkpoint: evaluate it again
            self.seen()
        curve, final = t.history, self.last
        unseen = self.unseen_result()
        out = {"final_success": float(curve[-1]["success"]),
                "best_success": float(max(c["success"] for c in curve)),
                "final_return": float(final["return"]),
                "per_task_success": {k: float(v["success"]) for k, v in final["per_task"].items()},
                "curve": curve,
                "unseen_success": float(unseen["success"]) if unseen else None,
                "unseen_per_task": {k: float(v["success"]) for k, v in unseen["per_task"].items()} if unseen else None,
                "overlap": t.overlap(), "overlap_random": t.random_overlap(), "groups": t.groups}
        if t.method == "g-harmodt" and self.gate_total:
            out["gate_accuracy"] = self.gate_hits / self.gate_total
        return out

    def close(self) -> None:
        self.seen_eval.close()



def evaluate_run(cfg: HarmoDTConfig, ctx) -> dict:
    """Re-evaluate the latest checkpoint of a run (`resume=` a run dir, or the newest run of
    `method`/`quality`/`seed`) on the training tasks and the unseen ones (with the current
    config's evaluation settings, e.g. another `harmo.unseen_threshold`)."""
    from papers.harmodt.data import load_task_data
    from papers.harmodt.train import Trainer, run_method
    from shared import UserError
    from shared.checkpoint import latest_checkpoint
    from shared.replicas import launched_processes
    from shared.runs import method_dir

    if launched_processes() > 1:
        raise UserError("eval runs in one process: start it without torchrun/accelerate launch")
    if cfg.resume not in ("", "latest"):
        run_dir = Path(cfg.resume)
    else:
        parent = method_dir(cfg.runs_dir, ctx.slug, ctx.config_name, run_method(cfg.method, cfg.quality))
        runs = sorted(parent.glob(f"seed{cfg.seed}-*")) if parent.exists() else []
        run_dir = runs[-1] if runs else parent
    ckpt = latest_checkpoint(run_dir / "checkpoints") if (run_dir / "checkpoints").exists() else None
    if ckpt is None:
        raise UserError(f"no checkpoint of {cfg.method} on {cfg.quality} (seed {cfg.seed}) under "
                        f"{cfg.runs_dir}: train it first")
    trainer = Trainer(cfg, cfg.method, load_task_data(cfg, cfg.quality), cfg.seed)
    trainer.restore(ckpt)
    evaluation = RunEvaluation(cfg, trainer)
    try:
        result = evaluation.seen()
        unseen = evaluation.unseen_result()
    finally:
        evaluation.close()
    per_task = {k.split("/", 1)[1]: v for k, v in result.items() if k.startswith("success/")}
    return {"run_dir": str(run_dir), "iteration": trainer.iteration, "success": result["success"],
            "per_task": per_task, "unseen_success": unseen["success"] if unseen else None,
            "unseen_per_task": {k: v["success"] for k, v in unseen["per_task"].items()} if unseen else None}
