"""The prepared GPU check runs the paper path's training step (Trainer.train_step with the
paper config's averaging, and with FWA step windows) at a tiny size on CPU; at the paper size
it builds the standard CIFAR ResNet-18."""

import json

import pytest
import torch


@pytest.fixture
def _fresh_accelerate_state():
    yield
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(True)
    GradientState._reset_state()


def test_tiny_gpu_check_on_cpu(tmp_path, capsys, _fresh_accelerate_state):
    from papers.fwa.gpu_check import main

    out = tmp_path / "check.json"
    assert main(["--size", "tiny", "--steps", "3", "--device", "cpu", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["paper"] == "fwa" and report["size"] == "tiny"
    plain, fwa = report["results"]
    for row in (plain, fwa):
        assert row["steps"] == 3 and row["steps_per_s"] > 0 and row["peak_memory_bytes"] > 0
        assert row["device"] == "cpu" and row["mfu"] is None  # no peak FLOP/s for a CPU
        assert row["batch"] == 8 and row["precision"] == "no"
        assert 0 < row["flops_per_step"]
    assert plain["flops_per_step"] == fwa["flops_per_step"]  # the averaging adds no matmul FLOPs
    assert plain["fwa_windows"] == [] and plain["fwa_state_bytes"] == 0
    # one running sum per window (not a ring of k snapshots)
    assert fwa["fwa_windows"] == [5, 10] and fwa["fwa_state_bytes"] == 2 * 4 * fwa["params"]
    assert "fwa_overhead" in fwa
    assert json.loads(capsys.readouterr().out) == report


def test_paper_size_is_the_standard_cifar_resnet18(_fresh_accelerate_state):
    from papers.fwa.gpu_check import build

    cfg, trainer = build("paper", torch.device("cpu"), [5, 10])
    assert cfg.train.resnet_width == 64 and cfg.train.batch_size == 128
    assert cfg.precision == "bf16" and cfg.train.augment and cfg.train.momentum == 0.9
    assert sum(p.numel() for p in trainer.net.parameters()) == 11_173_962
    assert trainer.averagers.methods == ["sgd", "fwa5", "fwa10", "lawa5", "lawa10", "swa", "ema"]
