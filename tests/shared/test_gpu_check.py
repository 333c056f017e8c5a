import torch

from shared.gpu_check import device_peak_flops, measure


def test_measure_counts_steps_and_reports_memory_on_cpu():
    calls = []
    row = measure(lambda: calls.append(1), steps=7, warmup=3, device=torch.device("cpu"),
                  flops_per_step=1e6, name="noop")
    assert len(calls) == 10 and row["steps"] == 7 and row["steps_per_s"] > 0
    assert row["peak_memory_bytes"] > 0 and row["memory_kind"] == "process max RSS"
    assert row["mfu"] is None and row["name"] == "noop"  # no known peak on CPU
    assert device_peak_flops(torch.device("cpu")) is None
