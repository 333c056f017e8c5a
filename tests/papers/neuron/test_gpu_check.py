"""The prepared GPU check runs its paper path at a tiny size on the CPU (`--size tiny`)."""

import json

from papers.neuron.gpu_check import main


def test_gpu_check_tiny_on_cpu(tmp_path, capsys):
    out = tmp_path / "neuron.json"
    assert main(["--size", "tiny", "--steps", "3", "--device", "cpu", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["paper"] == "neuron" and report["size"] == "tiny"
    encoder, head = report["results"]
    assert encoder["name"].startswith("encoder pre-training (shiftgcn width 16")
    assert head["name"].startswith("Neuron head (8 prototypes")
    for row in (encoder, head):
        assert row["steps"] == 3 and row["steps_per_s"] > 0 and row["peak_memory_bytes"] > 0
        assert row["flops_per_step"] > 0 and row["mfu"] is None  # no peak for a CPU
        assert row["samples_per_s"] == row["steps_per_s"] * row["samples_per_step"]
    assert json.loads(capsys.readouterr().out) == report
