import warnings
from pathlib import Path

import pytest

from shared import tracking
from shared.tracking import Tracker, read_metrics, wandb_mode


def test_metrics_are_appended_as_jsonl(tmp_path):
    with Tracker(tmp_path, slug="t", group="g", name="n", use_wandb=False) as tr:
        tr.log({"loss": 1.5}, step=1)
        tr.log({"loss": 0.5, "acc": 0.9}, step=2)
    records = read_metrics(tmp_path)
    assert [(r["step"], r["loss"]) for r in records] == [(1, 1.5), (2, 0.5)]
    assert records[1]["acc"] == 0.9


def test_resume_drops_records_logged_after_the_checkpoint(tmp_path):
    tr = Tracker(tmp_path, slug="t", group="g", name="n", use_wandb=False)
    for step in range(1, 6):
        tr.log({"x": step}, step=step)
    with (tmp_path / "metrics.jsonl").open("a") as fh:
        fh.write('{"step": 6, "x"')  # a line cut short by a kill
    Tracker(tmp_path, slug="t", group="g", name="n", use_wandb=False, resume_step=3)
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2, 3]


def test_wandb_mode_defaults_to_offline_without_login(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    assert wandb_mode() == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_mode() == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_mode() == "disabled"


def test_wandb_offline_works_without_network_or_login(monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # a wandb failure would warn
        with Tracker(run_dir, slug="t", group="g", name="n", config={"a": 1}) as tr:
            assert tr.wandb_run is not None
            tr.log({"loss": 1.0}, step=1)
    offline_runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 1
    assert read_metrics(run_dir)[0]["loss"] == 1.0


def test_wandb_disabled_creates_no_wandb_files(monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    with Tracker(tmp_path, slug="t", group="g", name="n") as tr:
        assert tr.wandb_run is None
        tr.log({"loss": 1.0}, step=1)
    assert not (tmp_path / "wandb").exists()
    assert len(read_metrics(tmp_path)) == 1


def test_a_wandb_failure_never_stops_the_run(monkeypatch, tmp_path):
    import wandb

    def broken(*args, **kwargs):
        raise ConnectionError("no route to host\nsecond line")

    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setattr(wandb, "init", broken)
    monkeypatch.setattr(tracking, "_FAILED", {"warned": False, "online_failed": False})
    with pytest.warns(UserWarning, match="wandb disabled: ConnectionError: no route to host"):
        tr = Tracker(tmp_path, slug="t", group="g", name="n")
    tr.log({"loss": 2.0}, step=1)
    tr.finish()
    assert read_metrics(tmp_path)[0]["loss"] == 2.0


def test_an_online_failure_warns_once_and_is_not_retried_in_the_process(monkeypatch, tmp_path):
    import wandb

    calls = []

    def unreachable(*args, **kwargs):
        calls.append(kwargs["settings"].init_timeout)
        raise TimeoutError("timed out")

    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setattr(wandb, "init", unreachable)
    monkeypatch.setattr(tracking, "_FAILED", {"warned": False, "online_failed": False})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(3):
            (tmp_path / str(i)).mkdir()
            Tracker(tmp_path / str(i), slug="t", group="g", name=str(i)).finish()
    assert calls == [tracking.INIT_TIMEOUT_S] and tracking.INIT_TIMEOUT_S <= 10
    assert len([w for w in caught if "wandb disabled" in str(w.message)]) == 1


def test_offline_wandb_makes_no_network_lookup_in_a_smoke_train(monkeypatch, tmp_path):
    """A socket guard: any connect other than to a local (AF_UNIX) socket, and any name
    lookup, fails the test; a smoke train with wandb=true WANDB_MODE=offline runs under it."""
    import socket

    from papers.fwa.__main__ import COMMANDS
    from papers.fwa.config import FWAConfig
    from shared.cli import run_cli

    attempts = []
    real_connect = socket.socket.connect

    def guarded_connect(self, address):
        if self.family != socket.AF_UNIX:
            attempts.append(address)
            raise OSError("network access in a test")
        return real_connect(self, address)

    def no_lookup(*args, **kwargs):
        attempts.append(args[:1])
        raise OSError("name lookup in a test")

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "getfqdn"):
        monkeypatch.setattr(socket, name, no_lookup)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(tracking, "_FAILED", {"warned": False, "online_failed": False})
    paper = Path(__file__).resolve().parents[2] / "papers" / "fwa"
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # a wandb failure would warn
        assert run_cli("fwa", FWAConfig, COMMANDS, paper,
                       ["train", "--config", "smoke", "wandb=true", f"runs_dir={tmp_path}/runs",
                        f"data_dir={tmp_path}/data"]) == 0
    assert attempts == []
    assert list((tmp_path / "runs").rglob("offline-run-*"))


def test_progress_bar_can_be_switched_off(monkeypatch):
    monkeypatch.setenv("REPRO_PROGRESS", "0")
    assert tracking.progress(range(3)).disable
    monkeypatch.setenv("REPRO_PROGRESS", "1")
    assert not tracking.progress(range(3)).disable
