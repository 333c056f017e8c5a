"""The prepared GPU check runs the paper path's distributed step at a tiny size on CPU (a
world of one gloo process) and reports steps/s, peak memory and the counted FLOPs."""

import contextlib
import io
import json

import torch.distributed as dist

from papers.dsgda import gpu_check

TORCHRUN_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def test_tiny_gpu_check_on_cpu(monkeypatch, tmp_path):
    for key in TORCHRUN_KEYS:  # the check sets up its own world of one; restore the env after
        monkeypatch.setenv(key, "")
        monkeypatch.delenv(key)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert gpu_check.main(["--size", "tiny", "--steps", "3", "--device", "cpu",
                               "--out", str(tmp_path / "out.json")]) == 0
    report = json.loads((tmp_path / "out.json").read_text())
    assert report == json.loads(out.getvalue())
    assert report["paper"] == "dsgda" and report["size"] == "tiny"
    (row,) = report["results"]
    assert row["steps"] == 3 and row["steps_per_s"] > 0 and row["peak_memory_bytes"] > 0
    assert row["backend"] == "gloo" and row["topology"] == "torus" and row["clients"] == 4
    assert row["counted_flops_per_step"] > 0 and row["mfu"] is None
    assert row["mix_rounds"] == (2 + 10 + 3) // 2  # K = 2 over the counted round, warm-up and steps
    assert not dist.is_initialized()
