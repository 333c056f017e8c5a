"""Console progress bars, a JSONL metrics file per run, and wandb.

wandb mode: `WANDB_MODE` when set (online | offline | disabled), else online when the user
has logged in (`wandb login` / WANDB_API_KEY) and offline otherwise. Any wandb failure is
reported once per process as a warning and tracking continues without it: it never stops a
run. Online, `wandb.init` gives up after INIT_TIMEOUT_S seconds, and after one failure the
process does not try again (so an unreachable server costs one short wait, not one per run).
Offline and disabled modes make no network lookups (tested with a socket guard).
Projects are one per paper (`repro2024-<slug>`), groups one per config and method, runs one
per seed.
"""

from __future__ import annotations

import json
import netrc
import os
import sys
import time
import uuid
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

PROJECT_PREFIX = "repro2024"
INIT_TIMEOUT_S = 5.0
_FAILED = {"warned": False, "online_failed": False}  # per process


def _logged_in() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        hosts = netrc.netrc().hosts
    except (OSError, netrc.NetrcParseError):
        return False
    return any("wandb" in host for host in hosts)


def wandb_mode() -> str:
    env = os.environ.get("WANDB_MODE", "").strip().lower()
    if env in ("online", "offline", "disabled"):
        return env
    if env == "dryrun":
        return "offline"
    return "online" if _logged_in() else "offline"


def progress(iterable: Iterable | None = None, **kwargs: Any) -> tqdm:
    """A tqdm bar on stderr; `REPRO_PROGRESS=0` turns bars off."""
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("mininterval", 0.5 if sys.stderr.isatty() else 10.0)
    kwargs.setdefault("disable", os.environ.get("REPRO_PROGRESS", "1") == "0")
    return tqdm(iterable, **kwargs)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    return value


class Tracker:
    """Log scalar metrics to `<run_dir>/metrics.jsonl` and (optionally) wandb.

    On resume pass `resume_step`: records logged after that step by the killed run are
    dropped, so the file holds exactly what an uninterrupted run would have written.
    """

    def __init__(
        self,
        run_dir: str | Path,
        *,
        slug: str,
        group: str,
        name: str,
        config: dict | None = None,
        use_wandb: bool = True,
        resume_step: int | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / "metrics.jsonl"
        if resume_step is not None:
            self._truncate_after(resume_step)
        self._run = None
        mode = wandb_mode()
        if use_wandb and mode != "disabled" and not (mode == "online" and _FAILED["online_failed"]):
            self._run = self._safe(self._start_wandb, slug, group, name, config or {})

    def _truncate_after(self, step: int) -> None:
        if not self.path.exists():
            return
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                if json.loads(line).get("step", -1) <= step:
                    kept.append(line)
            except json.JSONDecodeError:  # a line cut short by the kill
                continue
        self.path.write_text("".join(f"{line}\n" for line in kept))

    def _safe(self, fn, *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:  # noqa: BLE001 - wandb must never stop a run
            if wandb_mode() == "online":
                _FAILED["online_failed"] = True
            if not _FAILED["warned"]:
                first = (str(exc).splitlines() or [""])[0]
                warnings.warn(f"wandb disabled: {type(exc).__name__}: {first} (this warning "
                              "is shown once per process)", stacklevel=2)
                _FAILED["warned"] = True
            self._run = None
            return None

    def _start_wandb(self, slug: str, group: str, name: str, config: dict) -> Any:
        import wandb

        id_file = self.run_dir / "wandb_id"
        run_id = id_file.read_text().strip() if id_file.exists() else uuid.uuid4().hex[:12]
        id_file.write_text(run_id + "\n")
        os.environ.setdefault("WANDB_SILENT", "true")
        return wandb.init(
            project=f"{PROJECT_PREFIX}-{slug}", group=group, name=name, id=run_id,
            resume="allow", config=config, dir=str(self.run_dir), mode=wandb_mode(),
            reinit="create_new", settings=wandb.Settings(init_timeout=INIT_TIMEOUT_S, console="off"),
        )

    @property
    def wandb_run(self) -> Any:
        return self._run

    def log(self, metrics: dict[str, Any], step: int) -> None:
        record = {"step": int(step), "time": round(time.time(), 3)}
        record.update({k: _jsonable(v) for k, v in metrics.items()})
        with self.path.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        if self._run is not None:
            self._safe(self._run.log, {k: record[k] for k in metrics}, int(step))

    def summary(self, metrics: dict[str, Any]) -> None:
        if self._run is not None:
            self._safe(self._run.summary.update, {k: _jsonable(v) for k, v in metrics.items()})

    def finish(self) -> None:
        if self._run is not None:
            self._safe(self._run.finish)
            self._run = None

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.finish()


def read_metrics(run_dir: str | Path) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
