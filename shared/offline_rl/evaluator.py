"""A batched, multi-process rollout evaluator for Meta-World policies.

The evaluator runs one episode for every (task, goal) pair, all in lock-step: per step it
calls `policy.act` once for the whole batch (one batched forward pass of a neural policy)
and steps every still-active env. Envs are sharded over worker processes that each own a
contiguous block of them and step the whole block per message over a Pipe; `workers=1`
keeps everything in this process, 0 uses every core. Workers start once ("spawn") and serve every `run` call
until `close()`. Results do not depend on `workers`: every env is reset with a fixed seed
per (task, goal) and stepped with the same actions.

Policy protocol:
    reset(task_index: np.ndarray[int]) -> None   # index into `tasks` for each of B episodes
    act(obs: [B, 39] float32, last_reward: [B] float32, active: [B] bool) -> [B, 4]
    observe_goals(goals: [B, 3] float64) -> None  # optional: only scripted experts define it
Actions are clipped to [-1, 1]. Inactive rows are ignored, their reward is 0. Episode i of a
run is slot i of `evaluator.slots`, the (task, goal) pairs task-major; a policy that wants a
prompt per episode indexes its prompts by that order.

ML1 (`benchmark="ML1"`): the envs are partially observable (the goal is zeros in the
observation) and `split="test"` runs Meta-World's held-out goals. A policy that defines
`observe_goals` receives each episode's goal position after every reset (an oracle for the
scripted experts; a learned policy must infer the goal, e.g. from its prompt).
"""

from __future__ import annotations

import collections
import multiprocessing
import time
import traceback

import numpy as np

from shared.offline_rl.tasks import (
    ACT_DIM,
    OBS_DIM,
    check_benchmark,
    check_max_steps,
    check_task,
    goal_position,
    make_env,
    resolve_workers,
    set_goal,
    stable_task_hash,
)

EVAL_SEED_TAG = 7919  # keeps evaluation reset seeds apart from data-generation seeds


def reset_seed(task: str, goal: int) -> int:
    """The fixed reset seed of the evaluation episode of (task, goal)."""
    sequence = np.random.SeedSequence([EVAL_SEED_TAG, stable_task_hash(task), int(goal)])
    return int(sequence.generate_state(1, np.uint32)[0])


POOL_SIZE = 32  # idle envs kept per process (one Meta-World env holds ~20 MB)
_POOL: collections.OrderedDict[tuple, list] = collections.OrderedDict()


def _acquire(task: str, goal: int, max_steps: int, benchmark_seed: int, benchmark: str,
             split: str):
    """An env of (task, goal): an idle one of the task from this process's pool, switched to
    the goal, else a new one. Building a Meta-World env costs ~0.3 s (the MuJoCo model
    compile), ~40 % of a smoke-size evaluation. `reset(seed=...)` fully restores the simulator,
    so an episode is bitwise the same on a reused env as on a new one (tested)."""
    key = (task, max_steps, benchmark_seed, benchmark, split)
    idle = _POOL.get(key)
    if not idle:
        return make_env(task, goal, max_steps, benchmark_seed, benchmark=benchmark, split=split)
    env = idle.pop()
    if not idle:  # no empty entries: `_release` evicts from the front
        del _POOL[key]
    set_goal(env, task, goal, benchmark_seed, benchmark=benchmark, split=split)
    return env


def _release(key: tuple, env) -> None:
    _POOL.setdefault(key, []).append(env)
    _POOL.move_to_end(key)
    while sum(len(v) for v in _POOL.values()) > POOL_SIZE:  # drop the least recently used
        oldest = next(iter(_POOL))
        if _POOL[oldest]:
            _POOL[oldest].pop(0).close()
        if not _POOL[oldest]:
            del _POOL[oldest]


class _Shard:
    """The envs of a block of episodes, in the process that steps them; `close` returns them
    to the process's pool."""

    def __init__(self, slots: list[tuple[str, int]], max_steps: int, benchmark_seed: int,
                 benchmark: str = "MT1", split: str = "train"):
        self.keys = [(task, max_steps, benchmark_seed, benchmark, split) for task, _ in slots]
        self.envs = []
        try:
            for task, goal in slots:
                self.envs.append(_acquire(task, goal, max_steps, benchmark_seed, benchmark, split))
        except BaseException:
            self.close()
            raise
        self.seeds = [reset_seed(task, goal) for task, goal in slots]
        self.obs = np.zeros((len(slots), OBS_DIM), dtype=np.float32)

    def close(self) -> None:
        envs, self.envs = self.envs, []
        for key, env in zip(self.keys, envs):
            _release(key, env)

    def reset(self) -> np.ndarray:
        for i, (env, seed) in enumerate(zip(self.envs, self.seeds)):
            self.obs[i] = env.reset(seed=seed)[0]
        return self.obs.copy()

    def step(self, actions: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, ...]:
        rewards = np.zeros(len(self.envs), dtype=np.float64)
        success = np.zeros(len(self.envs), dtype=bool)
        for i in np.flatnonzero(active):
            obs, rewards[i], _, _, info = self.envs[i].step(actions[i])
            self.obs[i] = obs
            success[i] = bool(info["success"])
        return self.obs.copy(), rewards, success

    def goals(self) -> np.ndarray:
        return np.stack([goal_position(env) for env in self.envs])

    def handle(self, command: str, payload: tuple) -> object:
        if command == "goals":
            return self.goals()
        return self.reset() if command == "reset" else self.step(*payload)


def _serve(conn, slots, max_steps: int, benchmark_seed: int, benchmark: str = "MT1",
           split: str = "train") -> None:
    """Worker loop: build the shard, then answer reset/step messages until close."""
    try:
        shard = _Shard(slots, max_steps, benchmark_seed, benchmark, split)
        conn.send(("ok", None))
    except Exception:  # noqa: BLE001 - reported to the parent, which raises it
        conn.send(("error", traceback.format_exc()))
        return
    while True:
        try:
            command, payload = conn.recv()
        except EOFError:  # the parent went away
            return
        if command == "close":
            return
        try:
            conn.send(("ok", shard.handle(command, payload)))
        except Exception:  # noqa: BLE001
            conn.send(("error", traceback.format_exc()))


class _LocalShard:
    def __init__(self, slots, max_steps: int, benchmark_seed: int, benchmark: str = "MT1",
                 split: str = "train"):
        self.shard, self.result = _Shard(slots, max_steps, benchmark_seed, benchmark, split), None

    def send(self, command: str, payload: tuple = ()) -> None:
        self.result = self.shard.handle(command, payload)

    def receive(self) -> object:
        return self.result

    def close(self) -> None:
        if self.shard is not None:
            self.shard.close()
        self.shard = None


class _RemoteShard:
    def __init__(self, context, slots, max_steps: int, benchmark_seed: int,
                 benchmark: str = "MT1", split: str = "train"):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, daemon=True,
                                       args=(child, slots, max_steps, benchmark_seed,
                                             benchmark, split))
        self.process.start()
        child.close()

    def send(self, command: str, payload: tuple = ()) -> None:
        self.conn.send((command, payload))

    def receive(self) -> object:
        try:
            status, result = self.conn.recv()
        except EOFError:
            raise RuntimeError("an evaluator worker died") from None
        if status == "error":
            raise RuntimeError(f"an evaluator worker failed:\n{result}")
        return result

    def close(self) -> None:
        try:
            self.conn.send(("close", ()))
        except OSError:
            pass
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join()
        self.conn.close()


class Evaluator:
    """One episode per (task, goal), `max_steps` long, or until success when
    `stop_on_success` (the return then sums only the steps taken up to the success).
    `goals` index the 50 goal variations of `benchmark`'s `split` ("MT1": train only;
    "ML1": train or the held-out test goals)."""

    def __init__(self, tasks: list[str], goals: list[int], max_steps: int, *, workers: int = 1,
                 benchmark_seed: int = 0, stop_on_success: bool = False,
                 benchmark: str = "MT1", split: str = "train"):
        self.benchmark, self.split = check_benchmark(benchmark, split)
        self.tasks = [check_task(task) for task in tasks]
        self.goals = [int(goal) for goal in goals]
        self.max_steps = check_max_steps(max_steps)
        self.stop_on_success = stop_on_success
        slots = [(task, goal) for task in self.tasks for goal in self.goals]
        if len(set(slots)) != len(slots):
            raise ValueError("Evaluator tasks and goals must not repeat")
        if not slots:
            raise ValueError("Evaluator needs at least one task and one goal")
        self.slots = slots
        self.task_index = np.repeat(np.arange(len(self.tasks)), len(self.goals))
        blocks = [b for b in np.array_split(np.arange(len(slots)), resolve_workers(workers)) if len(b)]
        self._blocks = [(int(b[0]), int(b[-1]) + 1) for b in blocks]
        self._shards = self._start([slots[a:b] for a, b in self._blocks], benchmark_seed)

    def _start(self, shard_slots: list[list], benchmark_seed: int) -> list:
        where = (self.max_steps, benchmark_seed, self.benchmark, self.split)
        if len(shard_slots) == 1:
            return [_LocalShard(shard_slots[0], *where)]
        context = multiprocessing.get_context("spawn")
        shards = [_RemoteShard(context, s, *where) for s in shard_slots]
        try:
            for shard in shards:
                shard.receive()  # envs built
        except RuntimeError:
            for shard in shards:
                shard.close()
            raise
        return shards

    def _all(self, command: str, *arrays: np.ndarray) -> list[np.ndarray]:
        """Send each shard its slice of `arrays`, then gather and join the answers."""
        for shard, (a, b) in zip(self._shards, self._blocks):
            shard.send(command, tuple(x[a:b] for x in arrays))
        answers = [shard.receive() for shard in self._shards]
        if command in ("reset", "goals"):
            return [np.concatenate(answers)]
        return [np.concatenate(parts) for parts in zip(*answers)]

    def _actions(self, policy, obs: np.ndarray, last_reward: np.ndarray, active: np.ndarray
                 ) -> np.ndarray:
        actions = np.asarray(policy.act(obs, last_reward, active.copy()), dtype=np.float32)
        if actions.shape != (len(obs), ACT_DIM):
            raise ValueError(f"policy.act returned shape {actions.shape}, "
                             f"expected {(len(obs), ACT_DIM)}")
        if not np.isfinite(actions[active]).all():
            raise ValueError("policy.act returned non-finite actions")
        return np.clip(np.nan_to_num(actions), -1.0, 1.0)

    def run(self, policy) -> dict:
        start = time.perf_counter()
        batch = len(self.task_index)
        policy.reset(self.task_index.copy())
        (obs,) = self._all("reset")
        if hasattr(policy, "observe_goals"):
            policy.observe_goals(self._all("goals")[0])
        active = np.ones(batch, dtype=bool)
        returns, success = np.zeros(batch), np.zeros(batch, dtype=bool)
        last_reward, env_steps = np.zeros(batch, dtype=np.float32), 0
        for _ in range(self.max_steps):
            actions = self._actions(policy, obs, last_reward, active)
            obs, rewards, succeeded = self._all("step", actions, active)
            env_steps += int(active.sum())
            returns += rewards
            success |= succeeded
            last_reward = rewards.astype(np.float32)
            if self.stop_on_success:
                active &= ~success
            if not active.any():
                break
        return self._summary(returns, success, env_steps, time.perf_counter() - start)

    def _summary(self, returns: np.ndarray, success: np.ndarray, env_steps: int,
                 seconds: float) -> dict:
        """Means per task and over tasks; `per_episode` lists every slot's outcome."""
        per_task = {
            task: {"success": float(success[self.task_index == i].mean()),
                   "return": float(returns[self.task_index == i].mean())}
            for i, task in enumerate(self.tasks)
        }
        return {
            "per_task": per_task,
            "success": float(np.mean([v["success"] for v in per_task.values()])),
            "return": float(np.mean([v["return"] for v in per_task.values()])),
            "episodes": int(len(returns)), "env_steps": env_steps, "seconds": seconds,
            "per_episode": [{"task": task, "goal": goal, "success": bool(s), "return": float(r)}
                            for (task, goal), s, r in zip(self.slots, success, returns)],
        }

    def close(self) -> None:
        for shard in getattr(self, "_shards", []):
            shard.close()
        self._shards = []

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - nothing useful to do at interpreter exit
            pass
