"""`python -m papers.prompt_diffuser.benchmark [--config small] [key=value ...]`: Prompt
Diffuser's prompt-generation time per episode (the reverse chain, N steps, one prompt per
held-out goal) and its tuning steps per second (all held-out goals in one step), beside
Prompt-Tuning DT's, on a randomly initialised policy of the config's size and fake episodes
(no simulator, so the numbers are the method's own cost)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

import papers.prompt_diffuser
from papers.prompt_diffuser.config import PromptDiffuserConfig
from papers.prompt_diffuser.pretrain import build_policy
from papers.prompt_diffuser.tuning import TuningData, make_method
from shared.config import load_config
from shared.offline_rl import Episode
from shared.offline_rl.segments import Normaliser


def _episodes(n: int, steps: int, seed: int) -> list[Episode]:
    rng = np.random.default_rng(seed)
    return [Episode(rng.normal(size=(steps, 39)).astype(np.float32),
                    rng.uniform(-1, 1, (steps, 4)).astype(np.float32),
                    rng.uniform(0, 10, steps).astype(np.float32), np.zeros(steps, bool),
                    np.zeros(steps, bool), np.zeros(steps, bool), "reach-v3") for _ in range(n)]


def measure(cfg: PromptDiffuserConfig, steps: int = 20, samples: int = 20) -> dict:
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(0)
    policy = build_policy(cfg, 39, 4).eval().requires_grad_(False)
    g, t = cfg.data.test_goals, cfg.data.max_steps
    demos = [_episodes(cfg.data.fewshot_episodes, t, i) for i in range(g)]
    data = TuningData(cfg, Normaliser.fit([e for d in demos for e in d]), demos, demos)
    out = {"goals": g, "policy_params": sum(p.numel() for p in policy.parameters())}
    for name in ("pd", "ptdt"):
        m = make_method(name, cfg, policy, data)
        rng, gen = np.random.default_rng(0), torch.Generator().manual_seed(0)
        m.step(rng, gen)  # warm-up
        start = time.perf_counter()
        for _ in range(steps):
            m.step(rng, gen)
        out[f"{name}_steps_per_s"] = steps / (time.perf_counter() - start)
        out[f"{name}_params_per_goal"] = m.trainable()
        start = time.perf_counter()
        for _ in range(samples):
            m.eval_prompts(gen)
        out[f"{name}_prompt_ms_per_episode"] = 1000 * (time.perf_counter() - start) / (samples * g)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m papers.prompt_diffuser.benchmark")
    parser.add_argument("--config", default="small")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)
    cfg = load_config(PromptDiffuserConfig, Path(papers.prompt_diffuser.__file__).parent / "configs",
                      args.config, args.overrides)
    r = measure(cfg, args.steps)
    print(f"prompt_diffuser benchmark ({args.config}, {cfg.threads} thread(s), {r['goals']} held-out "
          f"goals, N = {cfg.diffuser.steps}):")
    print(f"  Prompt Diffuser: {r['pd_steps_per_s']:.1f} tuning steps/s, "
          f"{r['pd_prompt_ms_per_episode']:.2f} ms prompt generation per episode, "
          f"{r['pd_params_per_goal']:,} tunable parameters per goal "
          f"({100 * r['pd_params_per_goal'] / r['policy_params']:.0f} % of the policy's {r['policy_params']:,})")
    print(f"  Prompt-Tuning DT: {r['ptdt_steps_per_s']:.1f} tuning steps/s, "
          f"{r['ptdt_prompt_ms_per_episode']:.3f} ms per prompt, {r['ptdt_params_per_goal']:,} parameters per goal")
    return 0


if __name__ == "__main__":
    sys.exit(main())
