"""`eval` of runs it cannot use: one line, exit 2 (the successful paths are in test_train and
test_two_processes)."""


def test_eval_without_a_finished_run_is_one_line(one_line_error, tmp_path):
    line = one_line_error("fwa", "eval", [f"runs_dir={tmp_path}/empty"])
    assert "no finished training run under" in line and "run `train` first" in line


def test_eval_of_a_directory_that_is_not_a_training_run_is_one_line(one_line_error, tmp_path):
    assert "no such run directory" in one_line_error("fwa", "eval", [f"eval_run={tmp_path}/nope"])
    fake = tmp_path / "fwa" / "smoke" / "convex" / "seed0-x"
    fake.mkdir(parents=True)
    (fake / "config.yaml").write_text("seed: 0\n")
    line = one_line_error("fwa", "eval", [f"eval_run={fake}"])
    assert "not a fwa training run directory" in line
    run = tmp_path / "fwa" / "smoke" / "train-mnist1d" / "seed0-x"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("seed: 0\n")
    assert "has no checkpoint to evaluate" in one_line_error("fwa", "eval", [f"eval_run={run}"])
