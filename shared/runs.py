"""Run directories: one per run, never overwritten, with the resolved config, the git
commit and package versions saved beside the outputs.

Layout: `<runs_dir>/<slug>/<config>/<method>/seed<k>-<timestamp>/`; `reproduce` writes to
`<runs_dir>/<slug>/<config>/reproduce/<timestamp>/` where `make report` finds it.
"""

from __future__ import annotations

import atexit
import functools
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from shared import UserError
from shared.config import dump_yaml

KEY_PACKAGES = (
    "torch", "numpy", "scipy", "diffusers", "transformers", "accelerate", "gymnasium",
    "metaworld", "minari", "wandb", "scikit-learn", "mnist1d", "omegaconf", "safetensors",
)
DONE_MARKER = "DONE"
REPO_ROOT = Path(__file__).resolve().parents[1]
_STARTED = time.monotonic()  # every entry point imports this module first thing


def elapsed_s() -> float:
    """Seconds since this process imported shared.runs (about since it started)."""
    return time.monotonic() - _STARTED


def command_line(argv: list[str] | None = None) -> str:
    """The command as a user would type it: `python -m papers.<slug> ...` for a module run
    (sys.argv[0] is then the absolute path of its __main__.py), never an absolute path."""
    argv = list(sys.argv if argv is None else argv)
    if not argv:
        return ""
    head = Path(argv[0])
    try:
        rel = head.resolve().relative_to(REPO_ROOT)
    except (ValueError, OSError):
        rel = None
    if rel is not None and rel.suffix == ".py":
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "__main__":
            parts = parts[:-1]
        return " ".join(["python -m " + ".".join(parts), *argv[1:]])
    return " ".join([head.name if head.is_absolute() else argv[0], *argv[1:]])


def git_commit() -> dict:
    """The commit of the code that runs, and whether the tree had uncommitted changes."""
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD") or "unknown"
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "unknown", False
    return {"commit": commit, "dirty": dirty}


def package_versions(names: tuple[str, ...] = KEY_PACKAGES, with_python: bool = True) -> dict:
    """Installed versions of `names` (None when missing), plus Python's (read once per process)."""
    return dict(_package_versions(tuple(names), with_python))


@functools.lru_cache(maxsize=8)
def _package_versions(names: tuple[str, ...], with_python: bool) -> dict:
    versions = {"python": sys.version.split()[0]} if with_python else {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _stamp() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S-%f")


def _create_unique(parent: Path, prefix: str) -> Path:
    parent.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        path = parent / f"{prefix}{_stamp()}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            time.sleep(0.001)
    raise RuntimeError(f"could not create a fresh run directory under {parent}")


def method_dir(runs_dir: str | Path, slug: str, config: str, method: str) -> Path:
    return Path(runs_dir) / slug / config / method


def new_run_dir(runs_dir: str | Path, slug: str, config: str, method: str, seed: int) -> Path:
    return _create_unique(method_dir(runs_dir, slug, config, method), f"seed{seed}-")


def new_reproduce_dir(runs_dir: str | Path, slug: str, config: str) -> Path:
    return _create_unique(method_dir(runs_dir, slug, config, "reproduce"), "")


def is_done(run_dir: Path) -> bool:
    return (Path(run_dir) / DONE_MARKER).exists()


def mark_done(run_dir: Path) -> None:
    (Path(run_dir) / DONE_MARKER).write_text(datetime.now(UTC).isoformat() + "\n")


def resolve_run_dir(
    resume: str, runs_dir: str | Path, slug: str, config: str, method: str, seed: int
) -> tuple[Path, bool]:
    """(run directory, resuming?) for `resume` = "" (new), "latest" or an explicit path.

    "latest" picks the newest run of the same paper, config, method and seed (a finished
    one is reused, an unfinished one continued) and starts a new one when there is none;
    an explicit path must exist.
    """
    if resume == "":
        return lock_run(new_run_dir(runs_dir, slug, config, method, seed)), False
    if resume == "latest":
        parent = method_dir(runs_dir, slug, config, method)
        candidates = sorted(parent.glob(f"seed{seed}-*")) if parent.exists() else []
        if candidates:
            return lock_run(candidates[-1]), True
        return lock_run(new_run_dir(runs_dir, slug, config, method, seed)), False
    path = Path(resume)
    if not path.is_dir():
        raise UserError(f"resume={resume}: no such run directory")
    check_run_dir(path, slug, config, method, seed)
    return lock_run(path), True


def check_run_dir(path: Path, slug: str, config: str, method: str, seed: int) -> None:
    """An explicit resume= directory must be a run of this paper, config, method and seed:
    `.../<slug>/<config>/<method>/seed<k>-<stamp>/` holding the run's config.yaml."""
    path = Path(path).resolve()
    expected = f"{slug}/{config}/{method}/seed{seed}-*"
    parts = path.parts[-4:]
    ok = (len(parts) == 4 and list(parts[:3]) == [slug, config, method]
          and parts[3].startswith(f"seed{seed}-") and (path / "config.yaml").is_file())
    if not ok:
        raise UserError(f"resume={path}: not a run directory of {expected} (a run directory "
                        "holds config.yaml; use resume=latest for the newest one)")


_LOCKS: dict[Path, Any] = {}


def lock_run(run_dir: Path) -> Path:
    """Hold an OS lock on `run_dir` for the life of this process (released on exit or
    death), so that a second process writing the same run is refused with one line."""
    import fcntl
    import os

    key = Path(run_dir).resolve()
    if key in _LOCKS:
        return run_dir
    handle = open(key / ".lock", "a+")  # noqa: SIM115 - held open until the process ends
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        owner = handle.read().strip() or "?"
        handle.close()
        raise UserError(f"run {run_dir} is in use by another process (pid {owner}); wait for "
                        "it to finish, or drop resume= to start a new run") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    if not _LOCKS:
        atexit.register(_release_all)
    _LOCKS[key] = handle
    return run_dir


def _release_all() -> None:
    """Close the held lock files at exit (the OS would drop the locks anyway; this only
    spares the interpreter's unclosed-file warnings)."""
    for handle in _LOCKS.values():
        handle.close()
    _LOCKS.clear()


def release_run(run_dir: Path) -> None:
    """Drop this process's lock on `run_dir` (normally it is held until the process ends)."""
    handle = _LOCKS.pop(Path(run_dir).resolve(), None)
    if handle is not None:
        handle.close()


def _flatten(tree: dict, prefix: str = "") -> dict:
    """{"a": {"b": 1}} -> {"a.b": 1}."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def check_same_config(run_dir: Path, cfg: Any, relevant: tuple[str, ...]) -> None:
    """Refuse to continue or reuse a run whose config differs in a `relevant` key (a key
    or a prefix such as "train.")."""
    saved_path = Path(run_dir) / "config.yaml"
    if not saved_path.exists():
        return
    saved = _flatten(yaml.safe_load(saved_path.read_text()) or {})
    current = _flatten(yaml.safe_load(dump_yaml(cfg)))
    changed = sorted(k for k in set(saved) | set(current)
                     if k.startswith(relevant) and saved.get(k) != current.get(k))
    if changed:
        raise UserError(f"cannot resume {run_dir}: it was run with different values of "
                        f"{', '.join(changed)}; drop resume= to start a new run")


def write_run_info(run_dir: Path, cfg: Any, extra: dict | None = None) -> dict:
    """Save the resolved config and provenance (commit, versions, command) in the run dir."""
    run_dir = Path(run_dir)
    (run_dir / "config.yaml").write_text(dump_yaml(cfg))
    info = {
        "git": git_commit(),
        "versions": package_versions(),
        "command": command_line(),
        "started": datetime.now(UTC).isoformat(),
        **(extra or {}),
    }
    name = "run.json" if not (run_dir / "run.json").exists() else f"run-resumed-{_stamp()}.json"
    (run_dir / name).write_text(json.dumps(info, indent=2) + "\n")
    return info


RESULT_FILE = "result.json"


def open_run(cfg: Any, slug: str, config: str, method: str, seed: int, relevant: tuple[str, ...],
             extra: dict | None = None) -> tuple[Path, dict | None]:
    """A run that ends in one `result.json`: (run directory, the finished run's result or
    None). With cfg.resume a finished run of the same relevant config is reused; otherwise
    the run info is written and the caller computes, then calls `finish_run`."""
    run_dir, resuming = resolve_run_dir(cfg.resume, cfg.runs_dir, slug, config, method, seed)
    if resuming:
        check_same_config(run_dir, cfg, relevant)
        if is_done(run_dir):
            return run_dir, json.loads((run_dir / RESULT_FILE).read_text())
    write_run_info(run_dir, cfg, extra)
    return run_dir, None


def finish_run(run_dir: Path, result: dict) -> dict:
    """Write result.json, then the DONE marker (so a killed run is never taken as finished)."""
    (Path(run_dir) / RESULT_FILE).write_text(json.dumps(result) + "\n")
    mark_done(run_dir)
    return result


def read_summary(run_dir: str | Path) -> dict:
    """summary.json of a finished run (a finished run without one is a user-visible error)."""
    path = Path(run_dir) / "summary.json"
    if not path.exists():
        raise UserError(f"run {run_dir} is marked finished but has no summary.json")
    return json.loads(path.read_text())


def run_jobs(fn: Any, jobs: list, processes: int, desc: str) -> list:
    """[fn(job) for job in jobs] in order, with a progress bar; with `processes` > 1 in that
    many spawned processes (`fn` must be a module-level function, jobs picklable)."""
    import multiprocessing as mp

    from shared.tracking import progress

    bar = progress(total=len(jobs), desc=desc)
    results = []
    try:
        if processes <= 1:
            for job in jobs:
                results.append(fn(job))
                bar.update(1)
        else:
            with mp.get_context("spawn").Pool(processes) as pool:
                for result in pool.imap(fn, jobs):
                    results.append(result)
                    bar.update(1)
    finally:
        bar.close()
    return results


def run_state(run_dir: Path) -> str:
    """finished (DONE marker), running (another process holds its lock) or dead."""
    import fcntl

    run_dir = Path(run_dir)
    if is_done(run_dir):
        return "finished"
    lock = run_dir / ".lock"
    if lock.exists() and run_dir.resolve() not in _LOCKS:
        with open(lock, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return "running"
            fcntl.flock(handle, fcntl.LOCK_UN)
    elif run_dir.resolve() in _LOCKS:
        return "running"
    return "dead"


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def list_runs(runs_dir: str | Path) -> list[dict]:
    """Every run under `runs_dir`: paper, config, method, seed, state, age, path (newest last)."""
    rows = []
    now = time.time()
    for path in sorted(Path(runs_dir).glob("*/*/*/*")):
        if not path.is_dir() or path.parts[-4] == "data":
            continue
        slug, config, method, name = path.parts[-4:]
        if not ((path / "config.yaml").exists() or (path / "run.json").exists()
                or (path / "results.json").exists()):
            continue
        seed = name.split("-")[0].removeprefix("seed") if name.startswith("seed") else "-"
        rows.append({"paper": slug, "config": config, "method": method, "seed": seed,
                     "state": run_state(path), "age_s": now - path.stat().st_mtime,
                     "path": str(path)})
    return sorted(rows, key=lambda r: -r["age_s"])


def main(argv: list[str] | None = None) -> int:
    """python -m shared.runs list [--runs-dir runs]"""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m shared.runs")
    parser.add_argument("command", choices=["list"])
    parser.add_argument("--runs-dir", default="runs")
    args = parser.parse_args(argv)
    rows = list_runs(args.runs_dir)
    if not rows:
        print(f"no runs under {args.runs_dir}")
        return 0
    cols = ("paper", "config", "method", "seed", "state", "age", "path")
    table = [[r["paper"], r["config"], r["method"], r["seed"], r["state"], _age(r["age_s"]),
              r["path"]] for r in rows]
    widths = [max(len(c), *(len(str(row[i])) for row in table)) for i, c in enumerate(cols)]
    for row in [list(cols), *table]:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
