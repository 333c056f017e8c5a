"""The paper's locomotion suites (Cheetah-dir, Cheetah-vel, Ant-dir) for `paper`-scale runs
on the user's data: readers and environments. Nothing here generates data (expert policies per
task would have to be trained first), and the tuning pipeline itself runs on Meta-World only.

Readers (every problem is one UserError naming the file):
- D4RL layout (`read_d4rl`): one HDF5 file per task with flat `observations [N, obs]`,
  `actions [N, act]`, `rewards [N]`, `terminals [N]` and optional `timeouts [N]`; episodes end
  at `terminals | timeouts` (steps after the last end are one more episode).
- Prompt-DT layout (`read_prompt_dt`): `<name>-<task>-expert.pkl` / `-prompt-expert.pkl`, a
  pickled list of trajectory dicts of numpy arrays (`observations`, `actions`, `rewards`,
  `terminals`). The unpickler admits numpy arrays, dtypes and builtin containers only.

Environments (`make_locomotion_env`, gymnasium's MuJoCo v5 suite) with the meta-RL rewards of
Prompt-DT's task families [recon: reconstructed from the task definitions]:
- cheetah-vel: HalfCheetah, r = −|v_x − v*| − 0.05‖a‖²;
- cheetah-dir: HalfCheetah, r = d·v_x − 0.05‖a‖², d = ±1;
- ant-dir: Ant (27-d observation, no contact forces), r = (cos θ, sin θ)·(v_x, v_y) − 0.5‖a‖² + 1.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import gymnasium
import numpy as np

from shared import UserError

SUITES = {"cheetah-vel": "HalfCheetah-v5", "cheetah-dir": "HalfCheetah-v5", "ant-dir": "Ant-v5"}
# Prompt-DT's held-out tasks (the brief): Cheetah-vel 40 tasks, Ant-dir 50, Cheetah-dir 2.
TEST_TASKS = {"cheetah-vel": [2, 7, 15, 23, 26], "ant-dir": [6, 17, 23, 30, 41], "cheetah-dir": [1]}


class LocomotionReward(gymnasium.Wrapper):
    """Replace the env's reward with the task family's (see the module docstring)."""

    def __init__(self, env: gymnasium.Env, suite: str, param: float) -> None:
        super().__init__(env)
        self.suite, self.param = suite, float(param)

    def step(self, action):
        obs, _, terminated, truncated, info = self.env.step(action)
        a = np.asarray(action, np.float64)
        if self.suite == "cheetah-vel":
            reward = -abs(info["x_velocity"] - self.param) - 0.05 * float(a @ a)
        elif self.suite == "cheetah-dir":
            reward = self.param * info["x_velocity"] - 0.05 * float(a @ a)
        else:
            direction = np.array([np.cos(self.param), np.sin(self.param)])
            reward = float(direction @ [info["x_velocity"], info["y_velocity"]]) - 0.5 * float(a @ a) + 1.0
        return obs, reward, terminated, truncated, info


def make_locomotion_env(suite: str, param: float, max_steps: int = 200) -> gymnasium.Env:
    """The env of one task: `param` is v* (cheetah-vel), d = ±1 (cheetah-dir) or θ (ant-dir)."""
    if suite not in SUITES:
        raise UserError(f"unknown locomotion suite {suite!r} (one of {', '.join(SUITES)})")
    kwargs = {"include_cfrc_ext_in_observation": False} if suite == "ant-dir" else {}
    env = gymnasium.make(SUITES[suite], max_episode_steps=max_steps, **kwargs)
    return LocomotionReward(env, suite, param)


def _episodes(file: Path, obs, act, rew, ends) -> list[dict]:
    out, start = [], 0
    stops = list(np.flatnonzero(ends) + 1)
    if not stops or stops[-1] != len(rew):
        stops.append(len(rew))
    for stop in stops:
        if stop > start:
            out.append({"observations": obs[start:stop].astype(np.float32),
                        "actions": act[start:stop].astype(np.float32),
                        "rewards": rew[start:stop].astype(np.float32)})
        start = stop
    if not out:
        raise UserError(f"{file}: no steps")
    return out


def _check(file: Path, obs, act, rew) -> None:
    if obs.ndim != 2 or act.ndim != 2 or len(obs) != len(act) or rew.shape != (len(obs),):
        raise UserError(f"{file}: observations {obs.shape}, actions {act.shape} and rewards "
                        f"{rew.shape} do not line up as [N, obs], [N, act], [N]")


def read_d4rl(file: str | Path) -> list[dict]:
    """Episodes of one D4RL-layout HDF5 file."""
    import h5py

    file = Path(file)
    if not file.is_file():
        raise UserError(f"D4RL file {file} does not exist")
    try:
        with h5py.File(file, "r") as h5:
            missing = [k for k in ("observations", "actions", "rewards", "terminals") if k not in h5]
            if missing:
                raise UserError(f"{file}: missing dataset(s) {', '.join(missing)}")
            obs, act = np.asarray(h5["observations"]), np.asarray(h5["actions"])
            rew, ends = np.asarray(h5["rewards"]).reshape(-1), np.asarray(h5["terminals"]).reshape(-1)
            if "timeouts" in h5:
                ends = ends | np.asarray(h5["timeouts"]).reshape(-1)
    except OSError as exc:
        raise UserError(f"{file}: not a readable HDF5 file ({exc})") from None
    _check(file, obs, act, rew)
    return _episodes(file, obs, act, rew, ends.astype(bool))


class _ArraysOnly(pickle.Unpickler):
    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("builtins", "dict"), ("builtins", "list")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a Prompt-DT data file")
        return super().find_class(module, name)


def read_prompt_dt(file: str | Path) -> list[dict]:
    """Episodes of one Prompt-DT-layout pickle (a list of trajectory dicts)."""
    file = Path(file)
    if not file.is_file():
        raise UserError(f"Prompt-DT file {file} does not exist")
    try:
        trajectories = _ArraysOnly(io.BytesIO(file.read_bytes())).load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError, TypeError) as exc:
        raise UserError(f"{file}: not a Prompt-DT trajectory pickle ({exc})") from None
    if not isinstance(trajectories, list) or not all(isinstance(t, dict) for t in trajectories):
        raise UserError(f"{file}: expected a list of trajectory dicts")
    out = []
    for i, t in enumerate(trajectories):
        missing = [k for k in ("observations", "actions", "rewards") if k not in t]
        if missing:
            raise UserError(f"{file}: trajectory {i} lacks {', '.join(missing)}")
        obs, act = np.asarray(t["observations"]), np.asarray(t["actions"])
        rew = np.asarray(t["rewards"]).reshape(-1)
        _check(file, obs, act, rew)
        out.append({"observations": obs.astype(np.float32), "actions": act.astype(np.float32),
                    "rewards": rew.astype(np.float32)})
    return out
