"""Episodes, quality recipes, and the rollout that generates one noisy scripted episode.

A quality level mimics one SAC replay buffer that improves from poor to expert: episode `j`
of an `n`-episode buffer acts, at every step, uniformly at random with probability `eps_j`,
else takes the scripted expert's action plus Gaussian noise of std `sigma_j`, clipped to
[-1, 1]; `(eps_j, sigma_j)` go from `(eps_start, sigma_start)` at `j = 0` to
`(eps_end, sigma_end)` at `j = n - 1` along progress `(j / (n - 1)) ** curve` (a
one-episode buffer uses the start values).

"sub-optimal" with N episodes is exactly the first N episodes of the 2N-episode
"near-optimal" buffer (its noisier half: progress 0 -> ~0.71, so eps 1 -> ~0.29 and
sigma 1 -> ~0.36), stored once.

Episode `j` of task `t` uses goal variation `j % 50` (or `goals[j % len(goals)]` when a goal
list is given) and the seed `episode_seed(seed, t, j)`, which drives all of its randomness; so
an episode never depends on which process made it. In ML1 (`benchmark="ML1"`) the stored
observations hide the goal, as the env returns them; the scripted expert is given the goal
(`goal_position(env)` written into its copy of the observation), so data quality is the same
as in MT1.

Measured (MT10, 200 steps, 100 episodes, seed 0): expert succeeds in 81-100% of episodes per
task; near-optimal rises from 0-28% success in its first quarter to 76-100% in its last.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from shared.offline_rl.tasks import (
    GOAL_SLICE,
    N_GOALS,
    goal_position,
    make_env,
    scripted_policy,
    set_goal,
    stable_task_hash,
)


@dataclass
class Episode:
    """One trajectory. `observations[t]` is the observation at which `actions[t]` was taken;
    `success[t]` is Meta-World's `info['success']` after that step. `goal` and `seed` are
    -1 for episodes read from files that do not record them."""

    observations: np.ndarray  # [T, 39] float32
    actions: np.ndarray  # [T, 4] float32
    rewards: np.ndarray  # [T] float32
    terminals: np.ndarray  # [T] bool
    timeouts: np.ndarray  # [T] bool
    success: np.ndarray  # [T] bool
    task: str
    goal: int = -1
    seed: int = -1
    final_observation: np.ndarray | None = None  # [39] float32 after the last action, if known

    def __len__(self) -> int:
        return len(self.rewards)

    @property
    def total_return(self) -> float:
        """Undiscounted return (summed in float64)."""
        return float(np.sum(self.rewards, dtype=np.float64))

    @property
    def succeeded(self) -> bool:
        """Whether the task was solved at any step."""
        return bool(self.success.any())


@dataclass(frozen=True)
class QualityRecipe:
    """How a quality level is generated (see the module docstring).

    `generation` names the buffer the episodes come from and `fraction` how much of it is
    kept: a level with `fraction < 1` and `episodes=N` is the first `N` episodes of the
    `generation` buffer made with `round(N / fraction)` episodes, so it shares that cache."""

    eps_start: float
    eps_end: float
    sigma_start: float
    sigma_end: float
    generation: str
    fraction: float = 1.0
    description: str = ""
    curve: float = 1.0  # progress = (j / (n − 1)) ** curve; < 1 improves fast, then plateaus

    def schedule(self, index: int, episodes: int) -> tuple[float, float]:
        """(eps, sigma) of episode `index` in a buffer of `episodes` episodes."""
        frac = (index / (episodes - 1)) ** self.curve if episodes > 1 else 0.0
        eps = self.eps_start + frac * (self.eps_end - self.eps_start)
        sigma = self.sigma_start + frac * (self.sigma_end - self.sigma_start)
        return eps, sigma

    def generated_episodes(self, episodes: int) -> int:
        """How many episodes the underlying buffer has when `episodes` are asked for."""
        return int(round(episodes / self.fraction))


QUALITIES: dict[str, QualityRecipe] = {
    "expert": QualityRecipe(
        0.0, 0.0, 0.1, 0.1, generation="expert",
        description="scripted expert + N(0, 0.1^2) action noise in every episode"),
    # eps starts at 1 (pure exploration, like a fresh SAC buffer): starting at 0.8 let the
    # easy tasks (reach, button-press-topdown) succeed in 25-40% of the first quarter.
    # curve 0.5: SAC improves fast and then plateaus. With a linear schedule (curve 1) the
    # first half of an MT10 buffer (150 steps) succeeded in 7% of episodes and every method
    # trained on it scored ~0; with 0.5 it is 34% (near-optimal 62%).
    "near-optimal": QualityRecipe(
        1.0, 0.0, 1.0, 0.1, generation="near-optimal", curve=0.5,
        description="one improving buffer: eps 1->0 random actions, noise std 1.0->0.1, "
                    "progress (j/(n-1))^0.5"),
    "sub-optimal": QualityRecipe(
        1.0, 0.0, 1.0, 0.1, generation="near-optimal", fraction=0.5, curve=0.5,
        description="the first (noisier) half of a near-optimal buffer twice as long"),
    "random": QualityRecipe(
        1.0, 1.0, 0.0, 0.0, generation="random",
        description="uniformly random actions in every episode"),
}


def episode_seed(base_seed: int, task: str, index: int) -> int:
    """The seed of episode `index` of `task`: the same in every process and platform."""
    sequence = np.random.SeedSequence([int(base_seed), stable_task_hash(task), int(index)])
    return int(sequence.generate_state(1, np.uint32)[0])


def rollout(env, policy, seed: int, eps: float, sigma: float, max_steps: int,
            reveal_goal: bool = False) -> dict[str, np.ndarray]:
    """One episode from `env.reset()` to `max_steps` (Meta-World never terminates early);
    `seed` drives the exploration and noise (Meta-World ignores the reset seed).
    `reveal_goal`: the policy sees the observation with the goal position written in (for a
    scripted expert in a partially observable env); the stored observation is the env's.

    Returns arrays with `observations` holding T + 1 rows (the final observation last)."""
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    observations, actions, rewards, success, truncated = [obs], [], [], [], []
    for _ in range(max_steps):
        # Draw every random number each step so the stream does not depend on branches.
        explore, uniform, noise = rng.random(), rng.uniform(-1, 1, 4), rng.standard_normal(4)
        if explore < eps:
            action = uniform
        else:
            seen = obs
            if reveal_goal:
                seen = obs.copy()
                seen[GOAL_SLICE] = goal_position(env)
            action = np.clip(policy.get_action(seen) + sigma * noise, -1.0, 1.0)
        action = action.astype(np.float32)  # the stored action is exactly the executed one
        obs, reward, terminated, trunc, info = env.step(action)
        observations.append(obs)
        actions.append(action)
        rewards.append(reward)
        success.append(bool(info["success"]))
        truncated.append(bool(trunc))
        if terminated or trunc:
            break
    return {
        "observations": np.asarray(observations, dtype=np.float32),
        "actions": np.asarray(actions, dtype=np.float32),
        "rewards": np.asarray(rewards, dtype=np.float32),
        "success": np.asarray(success, dtype=bool),
        "timeouts": np.asarray(truncated, dtype=bool),
    }


def make_episode(arrays: dict[str, np.ndarray], task: str, goal: int, seed: int) -> Episode:
    steps = len(arrays["rewards"])
    return Episode(
        observations=arrays["observations"][:steps], actions=arrays["actions"],
        rewards=arrays["rewards"], terminals=np.zeros(steps, dtype=bool),
        timeouts=arrays["timeouts"], success=arrays["success"], task=task, goal=goal, seed=seed,
        final_observation=arrays["observations"][steps])


_ENVS: dict[tuple, object] = {}


def _env(task: str, goal: int, max_steps: int, benchmark_seed: int, benchmark: str = "MT1",
         split: str = "train"):
    # One env per task per process, switched between goal variations: building one costs
    # ~0.1 s and a MuJoCo model per goal would cost memory; `reset` fully restores the
    # simulator, so an episode does not depend on what the env ran before.
    key = (task, max_steps, benchmark_seed, benchmark, split)
    if key not in _ENVS:
        _ENVS[key] = make_env(task, goal, max_steps, benchmark_seed, benchmark=benchmark,
                              split=split)
    set_goal(_ENVS[key], task, goal, benchmark_seed, benchmark=benchmark, split=split)
    return _ENVS[key]


def episode_goal(index: int, goals: tuple[int, ...] | None = None) -> int:
    """The goal variation of episode `index` of a buffer: cycling over `goals` (all 50 when
    None)."""
    return index % N_GOALS if goals is None else int(goals[index % len(goals)])


def generate_chunk(task: str, recipe: QualityRecipe, episodes: int, start: int, stop: int,
                   seed: int, max_steps: int, benchmark_seed: int, benchmark: str = "MT1",
                   split: str = "train", goals: tuple[int, ...] | None = None) -> list[Episode]:
    """Episodes `start..stop-1` of the `episodes`-long buffer of `task` made with `recipe`."""
    policy = scripted_policy(task)
    out = []
    with warnings.catch_warnings():
        # Scripted policies warn whenever a gain saturates; the action is clipped anyway.
        warnings.filterwarnings("ignore", message="Constant\\(s\\) may be too high")
        for index in range(start, stop):
            goal, ep_seed = episode_goal(index, goals), episode_seed(seed, task, index)
            eps, sigma = recipe.schedule(index, episodes)
            env = _env(task, goal, max_steps, benchmark_seed, benchmark, split)
            arrays = rollout(env, policy, ep_seed, eps, sigma, max_steps,
                             reveal_goal=benchmark == "ML1")
            out.append(make_episode(arrays, task, goal, ep_seed))
    return out
