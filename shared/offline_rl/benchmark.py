"""Throughput of the Meta-World data generator and evaluator, and of the Decision Transformer.

    python -m shared.offline_rl.benchmark [--part all|data|dt] [--tasks MT10] [--workers 0]
                                          [--episodes 20] [--threads 1]

Part "dt" (see `dt_step_times`, `masked_eval_times`; figures below):
1. one DT training step (forward, action MSE, backward, clip, AdamW) of the shared
   `DecisionTransformer` against `MinimalDT`, a plain-PyTorch Decision Transformer of the same
   size and architecture whose causal self-attention is written directly in torch (as the
   small single-file DT references do), on the same batch: h 128, 3 layers, 1 head, K 20,
   batch 64, CPU; interleaved steps, the ratio is the median of per-pair ratios;
2. acting with one weight set (mask) per task: the per-key loop (one forward per mask and
   env step) against `DTPolicy(batched=True)` (one vmapped forward for all masks).

Measured 2026-12-02 on 2 cores shared with other jobs (load 4-9), 1 torch thread, medians of
interleaved pairs (40 pairs; three runs): shared / minimal step 703 / 701 ms with relu
(ratio 1.00-1.04 x over the runs), 955 / 935 ms with gelu_pytorch_tanh (1.00-1.05 x),
1,136 / 916 ms with gelu_new (1.17-1.22 x; the minimal DT uses the fused tanh GELU there);
batch sampling 2-4 ms. The transformers trunk is not the cost: at equal activation the step
is matmul-bound (profiles of both spend ~60 % in addmm/mm, ~20 % in dropout's bernoulli),
and GPT-2's forward without dropout is faster than the hand-written one (102 vs 116 ms); in
training PyTorch's math attention with dropout adds a few percent (a float mask and a safe
softmax per layer). gelu_new is the cost: transformers writes it as ~7 Python-level
elementwise kernels (plus their backward). HarmoDT keeps gelu_new because any other
activation changes its results; the authors' DT code uses relu.
Acting with task masks, loop / batched per env step: 10 masks x 3 goals, h 64, 2 layers,
K 10 (HarmoDT small): 96 / 43 ms (2.2 x); 50 masks x 3 goals, h 128, 3 layers, K 20:
1,826 / 1,378 ms (1.3 x; matmul-bound either way on CPU, so the gain is the per-call
overhead, which is what dominates on a GPU, not measured here). Actions were bitwise equal
in both (not guaranteed: see `shared.offline_rl.policy`).

Part "data": the parallel generator should reach about 0.8 x cores x the bare single-core
step rate on workloads large enough to amortise its fixed costs (process start-up ~0.5 s, and
~0.6 s per task per worker to build Meta-World's goal list and env). Measured on 2 cores
(MT10, 200-step episodes): bare loop ~2,800 steps/s; generation with 2 workers ~3,800 steps/s
for 20 episodes per task (0.67 x, fixed costs) and ~5,100 steps/s for 100 per task (0.90 x,
39 s for MT10 x 100 episodes incl. Minari writing); evaluator ~12 episodes/s with 1 worker and
~18 with 2 (100 episodes of 200 steps).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from shared.offline_rl.datasets import Request, generate_episodes, load_datasets
from shared.offline_rl.evaluator import Evaluator
from shared.offline_rl.policies import ScriptedBatchPolicy
from shared.offline_rl.tasks import (
    ACT_DIM,
    MAX_PATH_LENGTH,
    OBS_DIM,
    make_env,
    resolve_workers,
    scripted_policy,
    task_set,
)


def bare_step_rate(task: str, steps: int) -> float:
    """Env steps/s of a plain single-core loop: scripted action + N(0, 0.1^2) noise, step,
    reset at the end of each 500-step episode (env construction not timed)."""
    env, policy = make_env(task, 0, MAX_PATH_LENGTH), scripted_policy(task)
    rng = np.random.default_rng(0)
    obs, _ = env.reset()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Constant\\(s\\) may be too high")
        start = time.perf_counter()
        for _ in range(steps):
            action = np.clip(policy.get_action(obs) + 0.1 * rng.standard_normal(4), -1, 1)
            obs, _, terminated, truncated, _ = env.step(action.astype(np.float32))
            if terminated or truncated:
                obs, _ = env.reset()
        return steps / (time.perf_counter() - start)


def generation_rate(tasks: list[str], episodes: int, max_steps: int, workers: int,
                    write: bool = False) -> float:
    """Env steps/s of generating `episodes` near-optimal episodes per task, including
    process start-up; with `write`, through `load_datasets` into a fresh temporary
    directory (Minari writing and checksums included)."""
    start = time.perf_counter()
    if write:
        with tempfile.TemporaryDirectory() as data_dir:
            load_datasets(tasks, "near-optimal", episodes, seed=0, max_steps=max_steps,
                          data_dir=data_dir, workers=workers)
    else:
        generate_episodes([Request(t, "near-optimal", episodes, 0, max_steps) for t in tasks],
                          workers)
    return len(tasks) * episodes * max_steps / (time.perf_counter() - start)


def evaluator_rate(tasks: list[str], goals: list[int], max_steps: int, workers: int) -> float:
    """Episodes/s of `Evaluator.run` with the batched scripted experts, full-length episodes
    (worker start-up excluded: workers persist across runs)."""
    with Evaluator(tasks, goals, max_steps, workers=workers) as evaluator:
        result = evaluator.run(ScriptedBatchPolicy(tasks))
    return result["episodes"] / result["seconds"]


# -- Decision Transformer ---------------------------------------------------------------

class _Block(nn.Module):
    """A GPT-2 block written directly in torch: pre-LN causal self-attention + MLP."""

    def __init__(self, hidden: int, heads: int, dropout: float, activation: str) -> None:
        super().__init__()
        self.heads = heads
        self.ln_1, self.ln_2 = nn.LayerNorm(hidden), nn.LayerNorm(hidden)
        self.qkv, self.proj = nn.Linear(hidden, 3 * hidden), nn.Linear(hidden, hidden)
        self.fc, self.out = nn.Linear(hidden, 4 * hidden), nn.Linear(4 * hidden, hidden)
        self.act = nn.ReLU() if activation == "relu" else nn.GELU(approximate="tanh")
        self.attn_drop, self.resid_drop = nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln_1(x)).view(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(c // self.heads)
        scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
        attn = self.attn_drop(torch.softmax(scores, dim=-1)) @ v
        x = x + self.resid_drop(self.proj(attn.transpose(1, 2).reshape(b, t, c)))
        return x + self.resid_drop(self.out(self.act(self.fc(self.ln_2(x)))))


class MinimalDT(nn.Module):
    """The reference: the shared DT's embeddings and head around a hand-written trunk of the
    same size (same parameter count as the shared DT without GPT-2's frozen `wpe`/`wte`)."""

    def __init__(self, obs_dim: int, act_dim: int, *, hidden: int, layers: int, heads: int,
                 context: int, max_ep_len: int, dropout: float, activation: str) -> None:
        super().__init__()
        from shared.offline_rl.dt import TokenEmbeddings

        self.embed_tokens = TokenEmbeddings(obs_dim, act_dim, hidden, max_ep_len)
        self.embed_ln = nn.LayerNorm(hidden)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList([_Block(hidden, heads, dropout, activation)
                                     for _ in range(layers)])
        self.ln_f = nn.LayerNorm(hidden)
        self.predict_action = nn.Sequential(nn.Linear(hidden, act_dim), nn.Tanh())
        self.register_buffer("causal", torch.tril(torch.ones(3 * context, 3 * context, dtype=torch.bool)))

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        tokens, mask = self.embed_tokens(batch["states"], batch["actions"], batch["rtg"],
                                         batch["timesteps"], batch["mask"])
        t = tokens.shape[1]
        allowed = self.causal[:t, :t] & mask.bool()[:, None, None, :]
        x = self.drop(self.embed_ln(tokens))
        for block in self.blocks:
            x = block(x, allowed)
        k = batch["states"].shape[1]
        return self.predict_action(self.ln_f(x).reshape(x.shape[0], k, 3, -1)[:, :, 1])


def dt_batch(n: int, context: int, obs_dim: int = OBS_DIM, act_dim: int = ACT_DIM,
             max_ep_len: int = 500, seed: int = 0) -> dict[str, torch.Tensor]:
    """A segment batch with the DT padding: row i has its first `i % context` steps padded
    for a quarter of the rows (segments that start near an episode's end), the rest full."""
    from shared.offline_rl.segments import PAD_ACTION

    g = torch.Generator().manual_seed(seed)
    batch = {"states": torch.randn(n, context, obs_dim, generator=g),
             "actions": torch.rand(n, context, act_dim, generator=g) * 2 - 1,
             "rtg": torch.rand(n, context, 1, generator=g),
             "timesteps": torch.randint(0, max_ep_len, (n, context), generator=g),
             "mask": torch.ones(n, context)}
    for row in range(0, n, 4):
        pad = row % context
        batch["mask"][row, :pad] = 0
        batch["states"][row, :pad] = 0
        batch["actions"][row, :pad] = PAD_ACTION
    return batch


def _train_step(model: nn.Module, batch: dict[str, torch.Tensor]) -> Callable[[], None]:
    from shared.offline_rl.dt import action_loss

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4,
                                  weight_decay=1e-4)

    def step() -> None:
        loss = action_loss(model(batch), batch["actions"], batch["mask"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        optimizer.step()
    return step


def _interleaved(steps: dict[str, Callable[[], None]], repeats: int, warmup: int = 3
                 ) -> dict[str, list[float]]:
    """Seconds per call of each function, calls interleaved (a loaded machine slows both)."""
    for _ in range(warmup):
        for f in steps.values():
            f()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, f in steps.items():
            start = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - start)
    return times


def dt_step_times(*, batch: int = 64, context: int = 20, hidden: int = 128, layers: int = 3,
                  heads: int = 1, activation: str = "relu", dropout: float = 0.1,
                  repeats: int = 20) -> dict[str, float]:
    """Median seconds of one training step, shared DT and `MinimalDT`, and the median ratio
    shared / minimal over interleaved pairs; plus the batch sampling time (64 segments of a
    synthetic 10-episode task through `MultiTaskBatches` and `to_torch`)."""
    from shared.offline_rl.dt import DecisionTransformer

    size = {"hidden": hidden, "layers": layers, "heads": heads, "context": context,
            "max_ep_len": 500, "dropout": dropout, "activation": activation}
    torch.manual_seed(0)
    shared_dt = DecisionTransformer(OBS_DIM, ACT_DIM, conditioning="none", **size)
    minimal = MinimalDT(OBS_DIM, ACT_DIM, **size)
    trainable = sum(p.numel() for p in shared_dt.parameters() if p.requires_grad)
    if trainable != sum(p.numel() for p in minimal.parameters()):
        raise AssertionError("the reference is not the shared DT's size")
    data = dt_batch(batch, context)
    times = _interleaved({"shared": _train_step(shared_dt, data),
                          "minimal": _train_step(minimal, data)}, repeats)
    ratios = [a / b for a, b in zip(times["shared"], times["minimal"])]
    return {"shared_s": statistics.median(times["shared"]),
            "minimal_s": statistics.median(times["minimal"]),
            "ratio": statistics.median(ratios), "sampling_s": _sampling_time(batch, context),
            "parameters": trainable}


def _sampling_time(batch: int, context: int, repeats: int = 20) -> float:
    from shared.offline_rl.batches import MultiTaskBatches, TaskData
    from shared.offline_rl.episodes import Episode
    from shared.offline_rl.segments import Normaliser, to_torch

    rng = np.random.default_rng(0)
    episodes = [Episode(rng.standard_normal((150, OBS_DIM)).astype(np.float32),
                        rng.uniform(-1, 1, (150, ACT_DIM)).astype(np.float32),
                        rng.random(150).astype(np.float32), np.zeros(150, bool),
                        np.zeros(150, bool), np.zeros(150, bool), "toy") for _ in range(10)]
    batches = MultiTaskBatches([TaskData("toy", episodes, episodes[:2])], context, 5,
                               Normaliser.fit(episodes), 1000.0, 500)
    start = time.perf_counter()
    for _ in range(repeats):
        to_torch(batches.batch(0, batch, rng), torch.device("cpu"))
    return (time.perf_counter() - start) / repeats


def masked_eval_times(*, tasks: int, goals: int, hidden: int, layers: int, heads: int = 1,
                      context: int, prompt_steps: int = 5, density: float = 0.8,
                      steps: int = 10) -> dict[str, float]:
    """Median seconds per env step of a prompt DT acting with one random mask per task
    (density `density` over the trunk's parameters) on tasks × goals episodes: the per-mask
    loop against the batched (vmapped) forward, and whether their actions agree bitwise."""
    from shared.offline_rl.dt import DecisionTransformer
    from shared.offline_rl.masks import masked_params
    from shared.offline_rl.policy import DTPolicy, by_task
    from shared.offline_rl.segments import Normaliser

    torch.manual_seed(0)
    model = DecisionTransformer(OBS_DIM, ACT_DIM, hidden=hidden, layers=layers, heads=heads,
                                context=context, prompt_steps=prompt_steps, max_ep_len=500).eval()
    gen = torch.Generator().manual_seed(0)
    params = dict(model.named_parameters())
    trunk = [n for n, p in params.items() if n.startswith("transformer.h") and p.requires_grad]
    weights = {t: masked_params(model, {n: torch.rand(params[n].shape, generator=gen) < density
                                        for n in trunk}) for t in range(tasks)}
    prompt = dt_batch(tasks, prompt_steps, seed=1)
    prompts = {f"prompt_{k}": v for k, v in prompt.items()}
    norm = Normaliser(np.zeros(OBS_DIM, np.float32), np.ones(OBS_DIM, np.float32))
    obs = np.random.default_rng(0).standard_normal((steps, tasks * goals, OBS_DIM)).astype(np.float32)
    results, actions = {}, {}
    for batched in (False, True):
        policy = DTPolicy(model, norm, context=context, max_steps=steps, target_return=1.0,
                          return_scale=1.0, device=torch.device("cpu"), prompts=prompts,
                          weights=weights, choose=by_task, batched=batched)
        policy.reset(np.repeat(np.arange(tasks), goals))
        times, out = [], []
        for t in range(steps):
            start = time.perf_counter()
            out.append(policy.act(obs[t], np.zeros(len(obs[t]), np.float32), np.ones(len(obs[t]), bool)))
            times.append(time.perf_counter() - start)
        results["batched_s" if batched else "loop_s"] = statistics.median(times)
        actions[batched] = np.stack(out)
    results["bitwise_equal"] = bool(np.array_equal(actions[False], actions[True]))
    results["max_abs_diff"] = float(np.abs(actions[False] - actions[True]).max())
    return results


def dt_rows(threads: int) -> list[tuple[str, str, str]]:
    torch.set_num_threads(threads)
    rows = []
    for activation in ("relu", "gelu_pytorch_tanh", "gelu_new"):
        r = dt_step_times(activation=activation)
        rows.append((f"DT training step, h 128, 3 layers, K 20, batch 64, {activation}, "
                     f"{threads} thread(s): shared / minimal",
                     f"{r['shared_s'] * 1e3:,.0f} / {r['minimal_s'] * 1e3:,.0f} ms",
                     f"{r['ratio']:.2f} x (goal <= 1.0); sampling {r['sampling_s'] * 1e3:.1f} ms"))
    for tasks, goals, hidden, layers, context in ((10, 3, 64, 2, 10), (50, 3, 128, 3, 20)):
        r = masked_eval_times(tasks=tasks, goals=goals, hidden=hidden, layers=layers, context=context)
        rows.append((f"acting, {tasks} task masks x {goals} goals, h {hidden}, {layers} layers, "
                     f"K {context}: per-mask loop / batched", f"{r['loop_s'] * 1e3:,.0f} / "
                     f"{r['batched_s'] * 1e3:,.0f} ms per env step",
                     f"{r['loop_s'] / r['batched_s']:.2f} x; actions bitwise equal: {r['bitwise_equal']}"))
    return rows


def data_rows(args) -> list[tuple[str, str, str]]:
    tasks, workers = task_set(args.tasks), resolve_workers(args.workers)
    # Steps over time of the same number of steps of every task, as in the generator's mix.
    bare = len(tasks) / sum(1 / bare_step_rate(task, 1000) for task in tasks)
    rows = [("bare single-core loop (all tasks)", f"{bare:,.0f} steps/s", "")]
    for w in sorted({1, workers}):
        for write in (False, True):
            rate = generation_rate(tasks, args.episodes, args.max_steps, w, write=write)
            rows.append((f"generation, workers={w}{', Minari write' if write else ''}",
                         f"{rate:,.0f} steps/s", f"{rate / (w * bare):.2f} x workers x bare"))
    for w in sorted({1, workers}):
        rate = evaluator_rate(tasks, list(range(10)), args.max_steps, w)
        rows.append((f"evaluator, workers={w}, {len(tasks)} tasks x 10 goals",
                     f"{rate:,.2f} episodes/s", f"{rate * args.max_steps:,.0f} steps/s"))
    print(f"cores: {os.cpu_count()}; tasks: {', '.join(tasks)}; {args.episodes} episodes "
          f"x {args.max_steps} steps per task")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("all", "data", "dt"), default="all")
    parser.add_argument("--tasks", default="MT10", help="a task set or comma-separated tasks")
    parser.add_argument("--workers", type=int, default=0, help="0 = all cores")
    parser.add_argument("--episodes", type=int, default=20, help="per task")
    parser.add_argument("--max-steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for part dt")
    args = parser.parse_args()
    rows = data_rows(args) if args.part in ("all", "data") else []
    if args.part in ("all", "dt"):
        rows += dt_rows(args.threads)
    print("\n| measurement | rate | note |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
