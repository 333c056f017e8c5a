"""The prepared GPU check at the tiny size on CPU: the paper config's path (a random-weight
Stable-Diffusion-style pipeline, LoRA, the trainer's own sampling and micro-step) measured."""

import json

from papers.sdpo import gpu_check


def test_tiny_gpu_check_measures_the_paper_path(tmp_path, capsys):
    out = tmp_path / "sdpo.json"
    assert gpu_check.main(["--size", "tiny", "--steps", "3", "--device", "cpu", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["paper"] == "sdpo" and report["size"] == "tiny"
    train, sample = report["results"]
    assert train["name"] == "sdpo train micro-step" and train["steps"] == 3
    assert sample["name"] == "sdpo sample epoch" and sample["steps"] == 1
    for row in (train, sample):
        assert row["steps_per_s"] > 0 and row["flops_per_step"] > 0 and row["peak_memory_bytes"] > 0
        assert row["mfu"] is None and row["device"] == "cpu"  # no peak FLOP/s for a CPU
        assert 0 < row["trainable_params"] < row["unet_params"]  # LoRA only
        assert (row["T"], row["pairs_per_epoch"], row["batch_pairs"], row["grad_accum"]) == (2, 2, 1, 2)
    # a sampling epoch (2 pairs × 2 steps, no gradient) costs more than one micro-step here
    assert sample["flops_per_step"] > train["flops_per_step"]
    assert json.loads(capsys.readouterr().out) == report
