"""Two CPU processes (torchrun, gloo): the smoke `train` writes exactly one run directory per
run kind (the main process runs it, the other waits) with the one-process run's final metrics.
How `reproduce` deals its runs over processes is checked in-process (a launch costs ~20 s)."""

import json
import sys

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="gloo on loopback")


def test_train_on_two_processes_is_the_one_process_run(launch, list_run_dirs, cli, tmp_path):
    data = f"data_dir={tmp_path}/data"
    args = ["--config", "smoke", "wandb=false", "num_seeds=1", "method=pd", data]
    proc = launch("prompt_diffuser", ["train", *args, f"runs_dir={tmp_path}/two"], nproc=2)
    assert "Traceback" not in proc.stderr
    runs = list_run_dirs(tmp_path / "two", "prompt_diffuser", "smoke")
    assert sorted(r.parent.name for r in runs) == ["pd-expert", "pretrain"]  # not one per rank
    assert all((r / "DONE").exists() for r in runs)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1 and "held-out return" in lines[0]
    two = json.loads((runs[0] / "summary.json").read_text())["heldout"]

    code, _, err = cli("prompt_diffuser", "train", *args, f"runs_dir={tmp_path}/one")
    assert code == 0, err
    one_run = [r for r in list_run_dirs(tmp_path / "one", "prompt_diffuser", "smoke")
               if r.parent.name == "pd-expert"][0]
    assert json.loads((one_run / "summary.json").read_text())["heldout"] == two



def test_reproduce_deals_runs_over_processes_and_every_process_gets_every_result(monkeypatch):
    from papers.prompt_diffuser import distributed

    jobs = list(range(7))
    ran = {}

    class FakeGroup:
        def all_gather_object(self, parts, mine):
            for r in (0, 1):
                parts[r] = [job * 10 for job in jobs[r::2]]

    for rank in (0, 1):
        monkeypatch.setattr(distributed, "world", lambda rank=rank: (2, rank))
        monkeypatch.setattr(distributed, "_group", lambda: FakeGroup())
        out = distributed.shared_jobs(lambda j: j * 10, jobs,
                                      lambda fn, js, rank=rank: ran.setdefault(rank, [fn(j) for j in js]))
        assert out == [j * 10 for j in jobs]
    assert ran == {0: [0, 20, 40, 60], 1: [10, 30, 50]}
