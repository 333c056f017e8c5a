import numpy as np

from shared.offline_rl import Episode, dataset_report


def episode(rewards, solved):
    n = len(rewards)
    return Episode(
        observations=np.zeros((n, 39), np.float32), actions=np.zeros((n, 4), np.float32),
        rewards=np.asarray(rewards, np.float32), terminals=np.zeros(n, bool),
        timeouts=np.eye(n, dtype=bool)[-1], success=np.array([solved] * n), task="reach-v3")


def test_report_table_and_plot(tmp_path):
    datasets = {
        "expert": {"reach-v3": [episode([1, 2], True), episode([3, 4], True)]},
        "sub-optimal": {"reach-v3": [episode([1, 0], False), episode([2, 1], True)],
                        "push-v3": [episode([0.5], False)]},
    }
    markdown = dataset_report(datasets, tmp_path / "out")
    assert "| reach-v3 | expert | 2 | 4 | 5.0 ± 2.0 | 1.00 |" in markdown
    assert "| reach-v3 | sub-optimal | 2 | 4 | 2.0 ± 1.0 | 0.50 |" in markdown
    assert "| push-v3 | sub-optimal | 1 | 1 | 0.5 ± 0.0 | 0.00 |" in markdown
    assert (tmp_path / "out" / "dataset_report.md").read_text() == markdown
    assert (tmp_path / "out" / "dataset_report.png").read_bytes()[:4] == b"\x89PNG"
