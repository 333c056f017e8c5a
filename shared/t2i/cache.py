"""A build cache for expensive artefacts that are directories of files (a trained model and its
vocabulary, a reward scorer, a written pipeline): built once, checksummed, locked.

    path = cache_root / name / cache_key(...everything the build depends on...)
    thing = cached(path, build, read, "my base model")

- `build_once(path, build)`: under an exclusive lock on `<path>.lock` (concurrent callers wait
  for one build instead of each building), when `path` does not exist yet, `build(tmp)` writes
  its files into a fresh temporary directory, a `manifest.json` with the size and sha256 of
  every file is added, and the directory is renamed into place: a kill leaves no half-written
  cache, and a failed build leaves nothing.
- `open_cache(path, what, read)`: verifies the manifest, then returns `read(path)`. A missing,
  truncated or corrupt file, an unreadable one, or one that does not fit (`read` raises
  `CacheMismatch`) is a one-line `UserError` naming the path and saying to delete it.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from safetensors import SafetensorError

from shared import UserError
from shared.cache import file_sha256
from shared.checkpoint import CheckpointError, verify_checkpoint

T = TypeVar("T")
MANIFEST = "manifest.json"
# What reading a damaged cache raises (besides a failed checksum): refused with one line.
READ_ERRORS = (SafetensorError, OSError, json.JSONDecodeError, UnicodeDecodeError)


class CacheMismatch(Exception):
    """Raised by a reader: the cached files are intact but do not fit what was asked for."""


def write_manifest(directory: Path) -> dict:
    """Size and sha256 of every file under `directory` (relative paths, sorted)."""
    directory = Path(directory)
    names = sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*")
                   if p.is_file() and p.name != MANIFEST)
    manifest = {"files": {name: {"bytes": (directory / name).stat().st_size,
                                 "sha256": file_sha256(directory / name)} for name in names}}
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def build_once(path: Path, build: Callable[[Path], None]) -> Path:
    """`path`, built by `build(tmp_dir)` if it does not exist yet (see the module docstring)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            try:
                build(tmp)
                write_manifest(tmp)
                os.replace(tmp, path)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return path


def open_cache(path: Path, what: str, read: Callable[[Path], T]) -> T:
    """`read(path)` of a verified cache; any damage is a one-line UserError."""
    path = Path(path)
    hint = f"delete {path} to rebuild the {what}"
    try:
        verify_checkpoint(path)
        return read(path)
    except CheckpointError as exc:
        raise UserError(f"{exc}; {hint}") from None
    except CacheMismatch as exc:
        raise UserError(f"cached {what} {path} {exc}; {hint}") from None
    except READ_ERRORS as exc:
        raise UserError(f"cached {what} {path} cannot be read ({type(exc).__name__}); {hint}") from None


def cached(path: Path, build: Callable[[Path], None], read: Callable[[Path], T], what: str) -> T:
    """Build `path` once (locked, checksummed), then read it back verified."""
    return open_cache(build_once(path, build), what, read)
