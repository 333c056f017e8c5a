"""Episodes <-> one Minari dataset on disk, with a checksummed manifest.

Layout: `<root>/<dataset_id>/data/{main_data.hdf5, metadata.json}` (Minari's HDF5 storage)
and `<root>/<dataset_id>/manifest.json`. Minari's conventions hold: `observations` has T + 1
rows (the final observation last) and infos have T + 1 entries (the first from `reset`), so
`infos/success[0]` is always False. Each episode's seed and goal index are its Minari `seed`
and `options/goal`, and are repeated in the manifest.

A dataset is built in a private temporary directory beside its target, its manifest is
written last, and the finished directory is renamed into place, so a reader never sees a
half-written dataset and two processes building the same dataset cannot mix their files. A
target without a manifest, or whose files fail their sha256, is refused, never repaired.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import gymnasium
import numpy as np

from shared import UserError
from shared.cache import file_sha256
from shared.offline_rl.episodes import Episode
from shared.offline_rl.tasks import ACT_DIM, OBS_DIM

MANIFEST = "manifest.json"
OBSERVATION_SPACE = gymnasium.spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)
ACTION_SPACE = gymnasium.spaces.Box(-1.0, 1.0, (ACT_DIM,), np.float32)


@contextlib.contextmanager
def _minari_root(path: Path) -> Iterator[None]:
    """Point Minari at `path` (it only reads the location from the environment)."""
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(Path(path).resolve())  # Minari joins a relative one twice
    try:
        yield
    finally:
        if old is None:
            del os.environ["MINARI_DATASETS_PATH"]
        else:
            os.environ["MINARI_DATASETS_PATH"] = old


def _buffer(index: int, episode: Episode):
    from minari.data_collector import EpisodeBuffer

    if episode.final_observation is None:
        raise ValueError(f"episode {index} has no final observation to store")
    return EpisodeBuffer(
        id=index, seed=int(episode.seed), options={"goal": int(episode.goal)},
        observations=np.concatenate([episode.observations, episode.final_observation[None]]),
        actions=episode.actions, rewards=episode.rewards,
        terminations=episode.terminals, truncations=episode.timeouts,
        infos={"success": np.concatenate([[False], episode.success]).astype(bool)},
    )


def episode_stats(episodes: list[Episode]) -> dict:
    returns = np.array([ep.total_return for ep in episodes], dtype=np.float64)
    return {
        "episodes": len(episodes), "steps": int(sum(len(ep) for ep in episodes)),
        "return_mean": float(returns.mean()) if len(returns) else 0.0,
        "return_std": float(returns.std()) if len(returns) else 0.0,
        "success_rate": float(np.mean([ep.succeeded for ep in episodes])) if episodes else 0.0,
    }


def _file_digests(directory: Path) -> dict[str, str]:
    return {
        path.relative_to(directory).as_posix(): file_sha256(path)
        for path in sorted(directory.rglob("*")) if path.is_file() and path.name != MANIFEST
    }


def _create(root: Path, dataset_id: str, episodes: list[Episode], description: str) -> Path:
    import minari

    with _minari_root(root), warnings.catch_warnings():
        # Minari warns about metadata we leave out on purpose (author e-mail and the like).
        warnings.simplefilter("ignore", UserWarning)
        minari.create_dataset_from_buffers(
            dataset_id, buffer=[_buffer(i, ep) for i, ep in enumerate(episodes)],
            observation_space=OBSERVATION_SPACE, action_space=ACTION_SPACE,
            algorithm_name="scripted Meta-World policy with scheduled noise",
            author="repro2024 shared.offline_rl", code_permalink="shared/offline_rl",
            description=description, data_format="hdf5")
    return root / dataset_id


def write_dataset(target: Path, episodes: list[Episode], info: dict) -> bool:
    """Store `episodes` as the Minari dataset `target` (its directory name is the dataset
    id); `info` goes into the manifest. Returns False when another process got there first
    (the caller then reads and verifies theirs)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=target.parent))
    try:
        built = _create(scratch, target.name, episodes, info.get("description", ""))
        manifest = {
            **info, "dataset_id": target.name, "created": datetime.now(UTC).isoformat(),
            "seeds": [int(ep.seed) for ep in episodes], "goals": [int(ep.goal) for ep in episodes],
            "stats": episode_stats(episodes), "files": _file_digests(built),
        }
        (built / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")  # last: complete
        try:
            os.rename(built, target)
        except OSError:
            if not target.exists():
                raise
            return False
        return True
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def read_manifest(target: Path) -> dict:
    """The verified manifest of `target`; a one-line UserError if partial or corrupt."""
    target = Path(target)
    manifest_path = target / MANIFEST
    if not manifest_path.exists():
        raise UserError(f"dataset {target.name} is incomplete (no manifest): "
                        f"delete {target} to regenerate")
    try:
        manifest = json.loads(manifest_path.read_text())
        expected = dict(manifest["files"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"dataset {target.name} is corrupt (unreadable manifest: "
                        f"{_first_line(exc)}): delete {target} to regenerate") from None
    found = _file_digests(target)
    for name in sorted(set(expected) | set(found)):
        if expected.get(name) != found.get(name):
            problem = ("is missing" if name not in found else
                       "is not in the manifest" if name not in expected else
                       "fails its sha256 check")
            raise UserError(f"dataset {target.name} is corrupt ({name} {problem}): "
                            f"delete {target} to regenerate")
    return manifest


def _episode(data, task: str, goal: int, seed: int) -> Episode:
    observations = np.asarray(data.observations, dtype=np.float32)
    return Episode(
        observations=observations[:-1], actions=np.asarray(data.actions, dtype=np.float32),
        rewards=np.asarray(data.rewards, dtype=np.float32),
        terminals=np.asarray(data.terminations, dtype=bool),
        timeouts=np.asarray(data.truncations, dtype=bool),
        success=np.asarray(data.infos["success"][1:], dtype=bool),
        task=task, goal=goal, seed=seed, final_observation=observations[-1])


def read_dataset(target: Path, task: str) -> tuple[dict, list[Episode]]:
    """(manifest, episodes) of the dataset at `target`, verified against its manifest."""
    import minari

    target = Path(target)
    manifest = read_manifest(target)
    try:
        dataset = minari.MinariDataset(target / "data")
        episodes = [
            _episode(data, task, goal, seed) for data, goal, seed in
            zip(dataset.iterate_episodes(), manifest["goals"], manifest["seeds"], strict=True)
        ]
    except Exception as exc:  # noqa: BLE001 - any failure to read is a corrupt dataset
        raise UserError(f"dataset {target.name} is corrupt (cannot read it: "
                        f"{_first_line(exc)}): delete {target} to regenerate") from None
    return manifest, episodes
