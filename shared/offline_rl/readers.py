"""Readers for user-supplied Meta-World data.

D4RL layout (`read_d4rl_hdf5`): one HDF5 file with flat, step-aligned datasets
`observations [N, 39]`, `actions [N, 4]`, `rewards [N]` and `terminals [N]`, plus optional
`timeouts [N]` and `infos/success [N]` (absent: False). Episodes end where
`terminals | timeouts` is true; steps after the last end form a final episode.

MTDiff / HarmoDT layout (`read_episode_npz_dir`): a directory per task with `.npz` files,
named `0.npz, 1.npz, ...` (read in numeric order; other names in sorted order), each with
`observations [T, 39]` (T + 1 rows are accepted: the last is the final observation),
`actions [T, 4]`, `rewards [T]` (or `[T, 1]`), and optionally `terminals` or `dones`,
`timeouts` and `success` `[T]`. A file that marks several ends holds several episodes, as in
MTDiff's own loader. MTDiff's nested `<task>/<run>/dataset/*.npz` layout is found too.

Every problem (missing path, unreadable file, missing key, wrong shape) is a one-line
UserError naming the file.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from shared import UserError
from shared.offline_rl.episodes import Episode
from shared.offline_rl.tasks import ACT_DIM, OBS_DIM


def d4rl_file(path: str | Path, task: str, quality: str) -> Path:
    """`path/<task>-<quality>.hdf5` if present, else `path/<task>.hdf5`."""
    if not str(path):
        raise UserError("source 'd4rl' needs a path: the directory holding <task>.hdf5 files")
    directory = Path(path)
    if not directory.is_dir():
        raise UserError(f"D4RL data directory {directory} does not exist")
    for name in (f"{task}-{quality}.hdf5", f"{task}.hdf5"):
        if (directory / name).is_file():
            return directory / name
    raise UserError(f"no {task}-{quality}.hdf5 or {task}.hdf5 in {directory}")


def _flat(file: Path, name: str, array: np.ndarray, steps: int) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.shape != (steps,):
        raise UserError(f"{file}: '{name}' has shape {array.shape}, expected ({steps},)")
    return array


def _check_matrix(file: Path, name: str, array: np.ndarray, steps: int | None, width: int
                  ) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 2 or array.shape[1] != width or (steps is not None and len(array) != steps):
        expected = f"({steps if steps is not None else 'T'}, {width})"
        raise UserError(f"{file}: '{name}' has shape {array.shape}, expected {expected}")
    return array


def _split(file: Path, arrays: dict[str, np.ndarray], task: str) -> list[Episode]:
    """Cut step-aligned arrays into episodes at `terminals | timeouts`."""
    steps = len(arrays["rewards"])
    ends = np.flatnonzero(arrays["terminals"] | arrays["timeouts"]) + 1
    if steps and (not len(ends) or ends[-1] != steps):
        ends = np.append(ends, steps)
        arrays["timeouts"] = arrays["timeouts"].copy()
        arrays["timeouts"][-1] = not arrays["terminals"][-1]  # the file stops mid-episode
    episodes, start = [], 0
    for end in ends:
        piece = {k: v[start:end] for k, v in arrays.items()}
        episodes.append(Episode(
            observations=piece["observations"].astype(np.float32),
            actions=piece["actions"].astype(np.float32),
            rewards=piece["rewards"].astype(np.float32),
            terminals=piece["terminals"].astype(bool), timeouts=piece["timeouts"].astype(bool),
            success=piece["success"].astype(bool), task=task))
        start = end
    return episodes


def _step_arrays(file: Path, data: dict, done_keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The step-aligned arrays of one file, validated."""
    for key in ("observations", "actions", "rewards"):
        if key not in data:
            raise UserError(f"{file}: missing '{key}' (has: {', '.join(sorted(data)) or 'none'})")
    rewards = np.asarray(data["rewards"])
    steps = len(rewards) if rewards.ndim else -1
    if steps == 0:
        raise UserError(f"{file}: holds no steps")
    observations = _check_matrix(file, "observations", data["observations"], None, OBS_DIM)
    if len(observations) == steps + 1:
        observations = observations[:-1]  # the final observation after the last action
    arrays = {
        "observations": _check_matrix(file, "observations", observations, steps, OBS_DIM),
        "actions": _check_matrix(file, "actions", data["actions"], steps, ACT_DIM),
        "rewards": _flat(file, "rewards", rewards, steps),
    }
    done_key = next((k for k in done_keys if k in data), None)
    zeros = np.zeros(steps, dtype=bool)
    arrays["terminals"] = _flat(file, done_key, data[done_key], steps).astype(bool) \
        if done_key else zeros
    for key in ("timeouts", "success"):
        arrays[key] = _flat(file, key, data[key], steps).astype(bool) if key in data else zeros
    return arrays


def read_d4rl_hdf5(file: str | Path, task: str = "") -> list[Episode]:
    """Episodes of a D4RL-layout HDF5 file; `task` defaults to the file name's stem."""
    import h5py

    file = Path(file)
    if not file.is_file():
        raise UserError(f"D4RL file {file} does not exist")
    try:
        with h5py.File(file, "r") as h5:
            data = {k: h5[k][()] for k in h5 if isinstance(h5[k], h5py.Dataset)}
            if "infos/success" in h5:
                data["success"] = h5["infos/success"][()]
    except (OSError, KeyError, ValueError) as exc:
        raise UserError(f"{file}: not a readable HDF5 file ({type(exc).__name__})") from None
    return _split(file, _step_arrays(file, data, ("terminals",)), task or file.stem)


def _npz_files(directory: Path) -> list[Path]:
    files = [p for p in directory.glob("*.npz") if p.is_file()]
    if not files:
        files = [p for p in directory.glob("*/dataset/*.npz") if p.is_file()]  # MTDiff runs

    def order(path: Path) -> tuple:
        return (0, int(path.stem), str(path)) if path.stem.isdigit() else (1, 0, str(path))

    return sorted(files, key=lambda p: (str(p.parent), *order(p)))


def read_episode_npz_dir(directory: str | Path, task: str = "") -> list[Episode]:
    """Episodes of a directory of per-episode `.npz` files; `task` defaults to its name."""
    directory = Path(directory)
    if not directory.is_dir():
        raise UserError(f"episode directory {directory} does not exist")
    files = _npz_files(directory)
    if not files:
        raise UserError(f"no .npz episode files in {directory}")
    episodes = []
    for file in files:
        try:
            with np.load(file, allow_pickle=False) as npz:
                data = {k: npz[k] for k in npz.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise UserError(f"{file}: not a readable .npz file ({type(exc).__name__})") from None
        arrays = _step_arrays(file, data, ("terminals", "dones"))
        episodes += _split(file, arrays, task or directory.name)
    return episodes
