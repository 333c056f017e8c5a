"""Checksummed `.npz` caches for generated datasets (never pickled).

`cached_arrays(path, build)` returns the arrays stored at `path` when its sha256 sidecar
matches, builds and stores them (atomically) when absent, and refuses a file whose checksum
does not match with a one-line `UserError`, never using it silently.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from shared import UserError


def cache_key(**parts: object) -> str:
    """A short stable hash of the things a cached artefact depends on."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_verified_npz(path: Path) -> dict[str, np.ndarray]:
    path = Path(path)
    sidecar = path.with_suffix(path.suffix + ".sha256")
    if not sidecar.exists():
        raise UserError(f"cached data {path} has no checksum file: delete it to regenerate")
    if file_sha256(path) != sidecar.read_text().strip():
        raise UserError(f"cached data {path} is corrupt (sha256 mismatch): delete it to regenerate")
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as fh:
        np.savez(fh, **arrays)
    # The checksum goes in place before the data, so whoever sees the data file (another
    # process building the same cache, say) also finds its checksum.
    sidecar = path.with_suffix(path.suffix + ".sha256")
    sidecar_tmp = sidecar.with_name(f".{sidecar.name}.{os.getpid()}.tmp")
    sidecar_tmp.write_text(file_sha256(tmp) + "\n")
    os.replace(sidecar_tmp, sidecar)
    os.replace(tmp, path)


def cached_arrays(path: Path, build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    path = Path(path)
    if path.exists():
        return load_verified_npz(path)
    arrays = build()
    save_npz(path, arrays)
    return arrays
