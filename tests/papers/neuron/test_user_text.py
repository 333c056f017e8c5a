"""The shipped NTU-60 six-level description template loads and validates; a user's bad
description file is one clear line (exit 2 from the command line), caught before any work."""

import json
from pathlib import Path

import pytest

import papers.neuron
from papers.neuron.config import LEVELS
from papers.neuron.pipeline import load_descriptions
from shared import UserError

TEMPLATE = Path(papers.neuron.__file__).parent / "data" / "ntu60_descriptions_template.json"


def test_the_ntu60_template_has_every_level_and_class_in_our_schema():
    table = json.loads(TEMPLATE.read_text(encoding="utf-8"))
    assert table["dataset"] == "ntu60" and len(table["classes"]) == 60 and "schema" in table
    assert table["classes"][10] == "reading" and table["classes"][56] == "touch other person's pocket"
    rows = load_descriptions(TEMPLATE, 60, 2)
    assert len(rows) == 60 and all(len(r) == len(LEVELS) == 6 for r in rows)
    texts = [t for r in rows for level in r for t in level]
    assert len(texts) == 60 * 6 * 2 and len(set(texts)) == len(texts)  # no two alike
    # the temporal levels are cumulative: level 2 begins like level 1, level 3 like level 2
    for r in rows:
        assert r[4][0].startswith(r[3][0][:-1]) and r[5][0].startswith(r[4][0][:-1])


def _write(tmp_path, table) -> Path:
    path = tmp_path / "text.json"
    path.write_text(table if isinstance(table, str) else json.dumps(table))
    return path


def _good(classes=3, n=2):
    return {level: [[f"{level} {c} {i}" for i in range(n)] for c in range(classes)] for level in LEVELS}


@pytest.mark.parametrize("mutate,message", [
    (lambda t: t.pop("fine"), "missing level(s) fine"),
    (lambda t: t["coarse"].pop(), "level 'coarse' needs one entry per class (3), got 2"),
    (lambda t: t["medium"][1].pop(), "level 'medium', class 1: needs a list of at least 2"),
    (lambda t: t["temporal2"][0].__setitem__(1, ""), "class 0: description 1 is not a non-empty string"),
    (lambda t: t["temporal3"].__setitem__(2, "one text"), "class 2: needs a list of at least 2"),
    (lambda t: t.__setitem__("classes", ["a", "b"]), "'classes' must list the 3 class names"),
])
def test_a_bad_description_file_is_one_line(tmp_path, mutate, message):
    table = _good()
    assert load_descriptions(_write(tmp_path, table), 3, 2)[2][5] == ["temporal3 2 0", "temporal3 2 1"]
    mutate(table)
    with pytest.raises(UserError) as err:
        load_descriptions(_write(tmp_path, table), 3, 2)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_unreadable_files_are_one_line(tmp_path):
    for content, message in (("{not json", "not valid JSON"), ("[1, 2]", "must be a JSON object")):
        with pytest.raises(UserError, match=message):
            load_descriptions(_write(tmp_path, content), 3, 2)
    with pytest.raises(UserError, match="cannot be read"):
        load_descriptions(tmp_path / "absent.json", 3, 2)
    with pytest.raises(UserError, match="at least 10 descriptions"):  # the template has 2, not 10
        load_descriptions(TEMPLATE, 60, 10)


def test_the_command_line_rejects_a_bad_file_before_any_work(one_line_error, tmp_path):
    import numpy as np

    (tmp_path / "ntu").mkdir()  # a tiny stand-in for NTU60_CS.npz: never read past its presence
    x, y = np.zeros((2, 4, 150), np.float32), np.eye(60, dtype=np.float32)[[0, 1]]
    np.savez(tmp_path / "ntu" / "NTU60_CS.npz", x_train=x, y_train=y, x_test=x, y_test=y)
    bad = _good(classes=60)
    del bad["temporal1"]
    path = _write(tmp_path, bad)
    line = one_line_error("neuron", "train", ["data.source=ntu60", f"data.path={tmp_path / 'ntu'}",
                                              f"text.descriptions_path={path}", "text.per_level=2",
                                              "unseen=[10,11,19,26,56]"])
    assert "missing level(s) temporal1" in line
    assert not (tmp_path / "runs_dir").exists() or not any((tmp_path / "runs_dir").rglob("result.json"))
    line = one_line_error("neuron", "reproduce", ["data.source=ntu60", f"data.path={tmp_path / 'ntu'}",
                                                  f"text.descriptions_path={path}", "text.per_level=2",
                                                  "experiment.unseen_lists=[[10,11,19,26,56]]"])
    assert "missing level(s) temporal1" in line
