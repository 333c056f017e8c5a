"""Atomic, checksummed checkpoints.

A checkpoint is a directory `<run_dir>/checkpoints/step_<N>/` holding
- `tensors.safetensors`: model weights and any other named tensors;
- `state.pt`: optimizer/scheduler/RNG states, step and small python values, loaded with
  `torch.load(weights_only=True)` so nothing is ever unpickled;
- `manifest.json`: size and sha256 of both files, written last.
Everything is written into a temporary directory that is renamed into place, so a kill
leaves either the previous checkpoint or the new one, never half of one. Loading verifies
the manifest and refuses a truncated or corrupt checkpoint with a `CheckpointError`.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle  # only for its exception type: nothing is unpickled unchecked
import shutil
import sys
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from shared import UserError

FILES = ("tensors.safetensors", "state.pt")


class CheckpointError(UserError):
    """A checkpoint that is missing, truncated or corrupt."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    with path.open("rb") as fh:
        os.fsync(fh.fileno())


def _unshared(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CPU, contiguous tensors that share no storage (safetensors refuses tied weights)."""
    seen, out = set(), {}
    for name, value in tensors.items():
        value = value.detach().cpu().contiguous()
        ptr = value.untyped_storage().data_ptr()
        out[name] = value.clone() if ptr in seen else value
        seen.add(ptr)
    return out


def save_checkpoint(
    ckpt_root: str | Path, step: int, tensors: dict[str, torch.Tensor], state: dict[str, Any],
    keep: int = 2,
) -> Path:
    """Write checkpoint `step` atomically and keep only the newest `keep` checkpoints."""
    root = Path(ckpt_root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:09d}"
    tmp = root / f".tmp-step_{step:09d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(_unshared(tensors), str(tmp / FILES[0]))
    torch.save(state, tmp / FILES[1])
    manifest = {
        "step": step,
        "files": {
            name: {"bytes": (tmp / name).stat().st_size, "sha256": _sha256(tmp / name)}
            for name in FILES
        },
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    for name in (*FILES, "manifest.json"):
        _fsync(tmp / name)
    if final.exists():  # re-saving the same step after a resume
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in list_checkpoints(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(ckpt_root: str | Path) -> list[Path]:
    root = Path(ckpt_root)
    if not root.exists():
        return []
    return sorted(p for p in root.glob("step_*") if p.is_dir())


def latest_checkpoint(ckpt_root: str | Path, verify: bool = True) -> Path | None:
    """The newest checkpoint under `ckpt_root` (None when there is none).

    With `verify`, a corrupt or incomplete newest checkpoint is passed over for the previous
    intact one, with one line on stderr saying so; when none is intact, the newest one's
    error is raised (a corrupt checkpoint is never used)."""
    found = list_checkpoints(ckpt_root)
    if not found or not verify:
        return found[-1] if found else None
    first_error = None
    for path in reversed(found):
        try:
            verify_checkpoint(path)
        except CheckpointError as exc:
            first_error = first_error or exc
            continue
        if first_error is not None:
            print(f"warning: {first_error}; resuming from the previous intact checkpoint "
                  f"{path.name}", file=sys.stderr, flush=True)
        return path
    raise first_error


def verify_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    manifest_path = path / "manifest.json"
    if not manifest_path.exists():
        raise CheckpointError(f"checkpoint {path} is incomplete: manifest.json is missing")
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError:
        raise CheckpointError(f"checkpoint {path} is corrupt: manifest.json is unreadable") from None
    for name, expected in manifest["files"].items():
        file = path / name
        if not file.exists():
            raise CheckpointError(f"checkpoint {path} is incomplete: {name} is missing")
        size = file.stat().st_size
        if size != expected["bytes"]:
            raise CheckpointError(
                f"checkpoint {path} is truncated or corrupt: {name} has {size} bytes, "
                f"expected {expected['bytes']}"
            )
        if _sha256(file) != expected["sha256"]:
            raise CheckpointError(f"checkpoint {path} is corrupt: {name} fails its sha256 check")
    return manifest


def load_checkpoint(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, state) of a verified checkpoint; never unpickles arbitrary objects."""
    path = Path(path)
    verify_checkpoint(path)
    try:
        tensors = load_file(str(path / FILES[0]), device=str(device))
        state = torch.load(path / FILES[1], map_location=device, weights_only=True)
    except (SafetensorError, RuntimeError, EOFError, OSError, pickle.UnpicklingError) as exc:
        first = (str(exc).splitlines() or [""])[0]
        raise CheckpointError(f"checkpoint {path} cannot be read: {first}") from None
    return tensors, state


def prefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v for k, v in tensors.items()}


def unprefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    start = len(prefix) + 1
    return {k[start:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
