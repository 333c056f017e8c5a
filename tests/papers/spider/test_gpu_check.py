"""The prepared GPU check runs the paper path's training step at a tiny size on CPU."""

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
    from papers.spider.gpu_check import main

    out = tmp_path / "check.json"
    assert main(["--size", "tiny", "--steps", "3", "--device", "cpu", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["paper"] == "spider" and report["size"] == "tiny"
    (row,) = report["results"]
    assert row["steps"] == 3 and row["steps_per_s"] > 0 and row["peak_memory_bytes"] > 0
    assert row["device"] == "cpu" and row["mfu"] is None  # no peak FLOP/s for a CPU
    # FLOPs counted from the step: below 6 x params x tokens (frozen weights get no gradient)
    assert 0 < row["flops_per_step"] < 6 * row["params"] * row["tokens_per_step"]
    assert 0 < row["trained_params"] < row["params"]
    assert row["rule_extra_bytes"] == 8 * row["trained_params"]  # SPIDER's θ₀ and G in fp32
    assert json.loads(capsys.readouterr().out) == report


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_paper_size_needs_a_gpu(capsys):
    from papers.spider.gpu_check import main

    with pytest.raises(SystemExit) as exc:
        main(["--size", "paper", "--steps", "1", "--device", "cpu"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --size paper") and "needs a GPU" in err[0]
