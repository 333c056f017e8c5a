"""The paper-only locomotion suites: readers on tiny files written here, and the MuJoCo
environments build and score with the task family's reward."""

import pickle

import h5py
import numpy as np
import pytest

from papers.prompt_diffuser.locomotion import make_locomotion_env, read_d4rl, read_prompt_dt
from shared import UserError


def test_d4rl_layout_splits_episodes_at_terminals_and_timeouts(tmp_path):
    path = tmp_path / "cheetah_vel-2.hdf5"
    with h5py.File(path, "w") as h5:
        h5["observations"] = np.arange(14 * 5, dtype=np.float32).reshape(14, 5)  # any obs width
        h5["actions"] = np.zeros((14, 2), np.float32)
        h5["rewards"] = np.arange(14, dtype=np.float32)
        h5["terminals"] = np.eye(14, dtype=bool)[3]
        h5["timeouts"] = np.eye(14, dtype=bool)[9]
    eps = read_d4rl(path)
    assert [len(e["rewards"]) for e in eps] == [4, 6, 4]
    assert eps[1]["rewards"][0] == 4 and eps[2]["observations"].shape == (4, 5)


def test_prompt_dt_layout_reads_trajectory_dicts_and_refuses_other_objects(tmp_path):
    trajs = [{"observations": np.ones((3, 27)), "actions": np.zeros((3, 8)), "rewards": np.ones(3),
              "terminals": np.zeros(3, bool)} for _ in range(2)]
    path = tmp_path / "ant_dir-6-expert.pkl"
    path.write_bytes(pickle.dumps(trajs))
    eps = read_prompt_dt(path)
    assert len(eps) == 2 and eps[0]["observations"].shape == (3, 27) and eps[0]["actions"].dtype == np.float32
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(pickle.dumps([{"observations": UserError("x")}]))
    with pytest.raises(UserError, match="not allowed|not a Prompt-DT"):
        read_prompt_dt(bad)
    short = tmp_path / "short.pkl"
    short.write_bytes(pickle.dumps([{"observations": np.ones((3, 2)), "actions": np.ones((3, 1))}]))
    with pytest.raises(UserError, match="lacks rewards"):
        read_prompt_dt(short)
    with pytest.raises(UserError, match="does not exist"):
        read_d4rl(tmp_path / "none.hdf5")


@pytest.mark.parametrize("suite, param, obs_dim", [("cheetah-vel", 1.5, 17), ("cheetah-dir", -1.0, 17),
                                                   ("ant-dir", 0.5, 27)])
def test_mujoco_envs_build_with_the_task_reward(suite, param, obs_dim):
    env = make_locomotion_env(suite, param, max_steps=5)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (obs_dim,)
    action = np.full(env.action_space.shape, 0.1, np.float32)
    _, reward, _, _, info = env.step(action)
    ctrl = float(action.astype(np.float64) @ action)
    if suite == "cheetah-vel":
        expected = -abs(info["x_velocity"] - param) - 0.05 * ctrl
    elif suite == "cheetah-dir":
        expected = param * info["x_velocity"] - 0.05 * ctrl
    else:
        expected = np.cos(param) * info["x_velocity"] + np.sin(param) * info["y_velocity"] - 0.5 * ctrl + 1.0
    assert reward == pytest.approx(expected)
    env.close()
