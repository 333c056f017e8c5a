"""The command-line contract, on a real paper (fwa, whose config loads fast)."""

import pytest


def test_help_lists_every_command_with_one_line(cli):
    code, out, _ = cli("fwa", "--help")
    assert code == 0
    for command in ("data", "train", "eval", "reproduce", "config"):
        assert f"\n  {command} " in out
    assert "config --config small" in out


def test_no_command_prints_the_usage_and_exits_2(cli):
    code, _, err = cli("fwa")
    assert code == 2 and "commands:" in err


def test_command_help_describes_the_command(cli):
    code, out, _ = cli("fwa", "data", "--help")
    assert code == 0 and "usage: python -m papers.fwa data" in out
    assert "Generate (or check) every dataset" in out and "--config" in out


@pytest.mark.parametrize("argv, words", [
    (["trian"], "unknown command 'trian'"),
    (["train", "--bogus"], "unrecognized arguments: --bogus"),
    (["train", "--config", "nope"], "no config 'nope'"),
    (["train", "--config", "/no/such/file.yaml"], "does not exist"),
    (["train", "--config", "smoke", "num_seeds=0"], "num_seeds"),
])
def test_mistakes_on_the_command_line_are_one_line_and_exit_2(cli, argv, words):
    code, _, err = cli("fwa", *argv)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:"), err
    assert words in lines[0]


def test_config_prints_the_resolved_config_with_docs_and_ranges(cli):
    code, out, _ = cli("fwa", "config", "--config", "smoke", "seed=4")
    assert code == 0
    assert "seed = 4  # first seed" in out and "[range >= 0]" in out
    assert "precision = 'no'" in out and "one of no|fp16|bf16" in out


@pytest.mark.parametrize("key", ["runs_dir", "data_dir"])
def test_bad_runs_and_data_dirs_are_one_line(cli, tmp_path, key):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for value, words in ((a_file, "is not a directory"), (a_file / "sub", "cannot be created"),
                         (tmp_path / "missing" / "dir", "its parent")):
        code, _, err = cli("fwa", "data", "--config", "smoke", f"{key}={value}",
                           *(() if key == "data_dir" else (f"data_dir={tmp_path}/d",)))
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and words in lines[0] and key in lines[0], err


def test_a_config_file_given_by_path_files_runs_under_runs_dir(cli, tmp_path, repo_root):
    mine = tmp_path / "elsewhere" / "mine.yaml"
    mine.parent.mkdir()
    mine.write_text((repo_root / "papers/fwa/configs/smoke.yaml").read_text())
    code, _, err = cli("fwa", "config", "--config", str(mine))
    assert code == 0, err
    from shared.config import config_label

    assert config_label(str(mine)) == "mine"
    assert not list(mine.parent.glob("fwa"))  # nothing is written next to the file
