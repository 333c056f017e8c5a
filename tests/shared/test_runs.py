import json
from dataclasses import dataclass

import pytest

from shared import UserError
from shared.runs import (
    check_same_config,
    finish_run,
    is_done,
    mark_done,
    new_reproduce_dir,
    new_run_dir,
    open_run,
    resolve_run_dir,
    write_run_info,
)


@dataclass
class Cfg:
    lr: float = 0.1
    resume: str = ""


def test_run_dirs_are_unique_and_never_reused(tmp_path):
    dirs = {new_run_dir(tmp_path, "p", "smoke", "m", 0) for _ in range(20)}
    assert len(dirs) == 20
    assert all(d.parent == tmp_path / "p" / "smoke" / "m" and d.name.startswith("seed0-") for d in dirs)
    assert new_reproduce_dir(tmp_path, "p", "smoke").parent.name == "reproduce"


def test_resume_latest_picks_the_newest_run_of_that_seed(tmp_path):
    first = new_run_dir(tmp_path, "p", "c", "m", 1)
    newest = new_run_dir(tmp_path, "p", "c", "m", 1)
    new_run_dir(tmp_path, "p", "c", "m", 2)
    assert resolve_run_dir("latest", tmp_path, "p", "c", "m", 1) == (newest, True)
    mark_done(newest)
    assert is_done(newest) and not is_done(first)
    fresh, resuming = resolve_run_dir("latest", tmp_path, "p", "c", "m", 3)
    assert not resuming and fresh.name.startswith("seed3-")
    fresh, resuming = resolve_run_dir("", tmp_path, "p", "c", "m", 1)
    assert not resuming and fresh not in (first, newest)


def test_resume_from_a_missing_path_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no such run directory"):
        resolve_run_dir(str(tmp_path / "nope"), tmp_path, "p", "c", "m", 0)


def test_run_info_records_config_commit_and_versions(tmp_path):
    info = write_run_info(tmp_path, Cfg(lr=0.5), {"seed": 3})
    assert "lr: 0.5" in (tmp_path / "config.yaml").read_text()
    saved = json.loads((tmp_path / "run.json").read_text())
    assert saved == info and saved["seed"] == 3
    assert set(saved["git"]) == {"commit", "dirty"}
    assert saved["versions"]["torch"] is not None
    write_run_info(tmp_path, Cfg(lr=0.5))  # a resume writes a second file, keeping the first
    assert len(list(tmp_path.glob("run-resumed-*.json"))) == 1


def test_resuming_with_a_different_relevant_config_is_refused(tmp_path):
    write_run_info(tmp_path, Cfg(lr=0.5))
    check_same_config(tmp_path, Cfg(lr=0.5, resume="latest"), ("lr",))
    with pytest.raises(UserError, match="different values of lr"):
        check_same_config(tmp_path, Cfg(lr=0.1), ("lr",))


def _square(x: int) -> int:
    return x * x


def test_run_jobs_keeps_order_in_one_or_several_processes():
    from shared.runs import run_jobs

    assert run_jobs(_square, [3, 1, 2], 1, "jobs") == [9, 1, 4]
    assert run_jobs(_square, [3, 1, 2], 2, "jobs") == [9, 1, 4]


def test_read_summary_of_a_finished_run(tmp_path):
    import json

    import pytest

    from shared import UserError
    from shared.runs import read_summary

    with pytest.raises(UserError, match="no summary.json"):
        read_summary(tmp_path)
    (tmp_path / "summary.json").write_text(json.dumps({"final": 1.5}))
    assert read_summary(tmp_path) == {"final": 1.5}


@dataclass
class RunCfg:
    lr: float = 0.1
    resume: str = ""
    runs_dir: str = ""


def test_open_run_reuses_a_finished_run_and_redoes_a_killed_one(tmp_path):
    cfg = RunCfg(runs_dir=str(tmp_path))
    run_dir, done = open_run(cfg, "p", "small", "m", 0, ("lr",), {"seed": 0})
    assert done is None and (run_dir / "run.json").exists()
    finish_run(run_dir, {"acc": 0.5})
    resumed = RunCfg(runs_dir=str(tmp_path), resume="latest")
    again, done = open_run(resumed, "p", "small", "m", 0, ("lr",))
    assert again == run_dir and done == {"acc": 0.5}
    (run_dir / "DONE").unlink()  # killed after writing its result, before the marker
    again, done = open_run(resumed, "p", "small", "m", 0, ("lr",))
    assert again == run_dir and done is None
    fresh, done = open_run(cfg, "p", "small", "m", 0, ("lr",))
    assert fresh != run_dir and done is None
    with pytest.raises(UserError, match="different values of lr"):
        open_run(RunCfg(lr=0.2, runs_dir=str(tmp_path), resume="latest"), "p", "small", "m", 0, ("lr",))


def test_resume_dir_must_be_a_run_of_the_same_paper_config_method_and_seed(tmp_path):
    run = new_run_dir(tmp_path, "p", "smoke", "m", 0)
    (run / "config.yaml").write_text("lr: 0.1\n")
    assert resolve_run_dir(str(run), tmp_path, "p", "smoke", "m", 0) == (run, True)
    empty = tmp_path / "empty"
    empty.mkdir()
    for path, args in ((empty, ("p", "smoke", "m", 0)), (run, ("p", "small", "m", 0)),
                       (run, ("p", "smoke", "other", 0)), (run, ("p", "smoke", "m", 1)),
                       (run, ("q", "smoke", "m", 0))):
        with pytest.raises(UserError, match="not a run directory of"):
            resolve_run_dir(str(path), tmp_path, *args)
    (run / "config.yaml").unlink()
    with pytest.raises(UserError, match="not a run directory of"):
        resolve_run_dir(str(run), tmp_path, "p", "smoke", "m", 0)


def test_a_second_process_writing_the_same_run_is_refused(tmp_path):
    import subprocess
    import sys

    run = new_run_dir(tmp_path, "p", "smoke", "m", 0)
    (run / "config.yaml").write_text("lr: 0.1\n")
    code = ("import sys; from shared.runs import resolve_run_dir; from shared import UserError\n"
            "try:\n    resolve_run_dir(sys.argv[1], sys.argv[2], 'p', 'smoke', 'm', 0)\n"
            "except UserError as e:\n    print(e); sys.exit(2)\n")
    holder = subprocess.Popen([sys.executable, "-c", code + "import time; time.sleep(30)",
                               "latest", str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(200):  # wait until the holder has its lock
            if (run / ".lock").exists() and (run / ".lock").read_text().strip():
                break
            import time
            time.sleep(0.05)
        second = subprocess.run([sys.executable, "-c", code, "latest", str(tmp_path)],
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 2 and "is in use by another process" in second.stdout
    finally:
        holder.kill()
        holder.wait()
    # the lock dies with its process
    again = subprocess.run([sys.executable, "-c", code, "latest", str(tmp_path)],
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stdout


def test_runs_are_listed_with_their_state(tmp_path, capsys):
    from shared.runs import list_runs, lock_run, main, release_run

    done = new_run_dir(tmp_path, "p", "smoke", "m", 0)
    (done / "config.yaml").write_text("lr: 0.1\n")
    mark_done(done)
    dead = new_run_dir(tmp_path, "p", "smoke", "m", 1)
    (dead / "config.yaml").write_text("lr: 0.1\n")
    live = new_run_dir(tmp_path, "p", "small", "m", 2)
    (live / "config.yaml").write_text("lr: 0.1\n")
    lock_run(live)
    try:
        states = {(r["config"], r["seed"]): r["state"] for r in list_runs(tmp_path)}
        assert states == {("smoke", "0"): "finished", ("smoke", "1"): "dead",
                          ("small", "2"): "running"}
        assert main(["list", "--runs-dir", str(tmp_path)]) == 0
        out = capsys.readouterr().out.splitlines()
        assert out[0].split() == ["paper", "config", "method", "seed", "state", "age", "path"]
        assert len(out) == 4
    finally:
        release_run(live)
