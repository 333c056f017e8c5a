"""The prepared GPU check runs its paper path at a tiny size on the CPU (`--size tiny`)."""

import json

from papers.harmodt.gpu_check import main


def test_gpu_check_tiny_on_cpu(tmp_path, capsys):
    out = tmp_path / "harmodt.json"
    assert main(["--size", "tiny", "--steps", "6", "--device", "cpu", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["paper"] == "harmodt" and report["size"] == "tiny"
    harmodt, prompt_dt = report["results"]
    assert harmodt["name"].startswith("harmodt-f iteration (h 16, 1 layers")
    assert prompt_dt["name"].startswith("prompt-dt iteration")
    assert harmodt["mask_interval"] == 4 and prompt_dt["mask_interval"] is None
    for row in (harmodt, prompt_dt):
        assert row["steps"] == 6 and row["steps_per_s"] > 0 and row["peak_memory_bytes"] > 0
        assert row["flops_per_step"] > 0 and row["mfu"] is None  # no peak for a CPU
    assert json.loads(capsys.readouterr().out) == report
