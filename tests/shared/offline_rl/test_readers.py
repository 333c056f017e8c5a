import h5py
import numpy as np
import pytest

from shared import UserError
from shared.offline_rl import load_datasets, read_d4rl_hdf5, read_episode_npz_dir


def steps(n, start=0):
    """Step-aligned arrays whose reward says which global step it is."""
    return {
        "observations": np.arange(start, start + n, dtype=np.float64)[:, None].repeat(39, 1),
        "actions": np.zeros((n, 4), dtype=np.float32),
        "rewards": np.arange(start, start + n, dtype=np.float32),
    }


def write_d4rl(path, n=13, ends=(4,), timeouts=(9,), success=(2, 11)):
    data = steps(n)
    data["rewards"] = data["rewards"][:, None]  # D4RL files often store [N, 1]
    terminals, timeout_flags, success_flags = (np.zeros(n, bool) for _ in range(3))
    terminals[list(ends)], timeout_flags[list(timeouts)], success_flags[list(success)] = 1, 1, 1
    with h5py.File(path, "w") as h5:
        for key, value in {**data, "terminals": terminals, "timeouts": timeout_flags}.items():
            h5[key] = value
        h5["infos/success"] = success_flags
    return path


def one_line_error(fn, *args, match=None):
    with pytest.raises(UserError, match=match) as info:
        fn(*args)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_d4rl_file_splits_at_terminals_and_timeouts(tmp_path):
    episodes = read_d4rl_hdf5(write_d4rl(tmp_path / "reach-v3.hdf5"))
    assert [len(ep) for ep in episodes] == [5, 5, 3]
    assert [ep.rewards[0] for ep in episodes] == [0, 5, 10]
    assert episodes[0].terminals.tolist() == [False] * 4 + [True]
    assert episodes[1].timeouts[-1] and not episodes[1].terminals.any()
    assert episodes[2].timeouts[-1]  # the trailing piece ends where the file stops
    assert [ep.succeeded for ep in episodes] == [True, False, True]
    assert episodes[0].task == "reach-v3" and episodes[0].observations.dtype == np.float32


def test_load_datasets_prefers_the_quality_specific_d4rl_file(tmp_path):
    write_d4rl(tmp_path / "reach-v3.hdf5", n=10, ends=(), timeouts=(9,), success=(2,))
    write_d4rl(tmp_path / "reach-v3-expert.hdf5", n=6, ends=(), timeouts=(5,), success=(2,))
    data = load_datasets(["reach-v3"], "expert", 1, seed=0, max_steps=10, data_dir=tmp_path,
                         source="d4rl", path=str(tmp_path))
    assert [len(ep) for ep in data["reach-v3"]] == [6]
    message = one_line_error(lambda: load_datasets(
        ["push-v3"], "expert", 1, seed=0, max_steps=10, data_dir=tmp_path, source="d4rl",
        path=str(tmp_path)), match="push-v3")
    assert "hdf5" in message


def test_bad_d4rl_files_are_refused_naming_the_file(tmp_path):
    garbage = tmp_path / "garbage.hdf5"
    garbage.write_bytes(b"not an hdf5 file at all")
    assert "garbage.hdf5" in one_line_error(read_d4rl_hdf5, garbage)
    with h5py.File(tmp_path / "noact.hdf5", "w") as h5:
        h5["observations"], h5["rewards"] = np.zeros((3, 39)), np.zeros(3)
    assert "'actions'" in one_line_error(read_d4rl_hdf5, tmp_path / "noact.hdf5")
    with h5py.File(tmp_path / "wide.hdf5", "w") as h5:
        data = steps(3)
        data["observations"] = np.zeros((3, 40))
        for key, value in data.items():
            h5[key] = value
    assert "(3, 40)" in one_line_error(read_d4rl_hdf5, tmp_path / "wide.hdf5")
    one_line_error(read_d4rl_hdf5, tmp_path / "absent.hdf5", match="does not exist")


def test_npz_directory_reads_in_numeric_order_with_mtdiff_keys(tmp_path):
    task_dir = tmp_path / "push-v3"
    task_dir.mkdir()
    for index in (0, 1, 2, 10):
        data = steps(4, start=10 * index)
        data["dones"] = np.array([0, 0, 0, 1])
        np.savez(task_dir / f"{index}.npz", **data)
    episodes = read_episode_npz_dir(task_dir)
    assert [ep.rewards[0] for ep in episodes] == [0, 10, 20, 100]
    assert all(ep.terminals.tolist() == [False, False, False, True] for ep in episodes)
    assert episodes[0].task == "push-v3" and not episodes[0].succeeded


def test_npz_file_with_final_observation_and_several_episodes(tmp_path):
    data = steps(6)
    data["observations"] = np.zeros((7, 39))  # T + 1 rows
    data["terminals"] = np.array([0, 1, 0, 0, 0, 1])
    data["success"] = np.array([0, 1, 0, 0, 0, 0])
    nested = tmp_path / "reach-v3" / "run0" / "dataset"  # MTDiff's layout
    nested.mkdir(parents=True)
    np.savez(nested / "0.npz", **data)
    def load(episodes):
        return load_datasets(["reach-v3"], "expert", episodes, seed=0, max_steps=10,
                             data_dir=tmp_path, source="npz", path=str(tmp_path))["reach-v3"]

    assert [len(ep) for ep in load(5)] == [2, 4]
    assert [ep.succeeded for ep in load(5)] == [True, False]
    assert [len(ep) for ep in load(1)] == [2]  # `episodes` caps what a file source gives


def test_bad_npz_files_are_refused_naming_the_file(tmp_path):
    one_line_error(read_episode_npz_dir, tmp_path / "missing", match="does not exist")
    one_line_error(read_episode_npz_dir, tmp_path, match="no .npz")
    (tmp_path / "0.npz").write_bytes(b"PK\x03\x04 truncated")
    assert "0.npz" in one_line_error(read_episode_npz_dir, tmp_path)
    data = steps(5)
    data["actions"] = np.zeros((4, 4))
    np.savez(tmp_path / "0.npz", **data)
    assert "'actions' has shape (4, 4)" in one_line_error(read_episode_npz_dir, tmp_path)
