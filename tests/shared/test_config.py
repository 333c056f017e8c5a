from dataclasses import dataclass, field

import pytest

from shared import UserError
from shared.config import (
    Common,
    choice,
    describe,
    dump_yaml,
    load_config,
    nonempty,
    num,
    numeric_fields_without_range,
    nums,
)


@dataclass
class Inner:
    """Inner block."""

    lr: float = num(0.1, gt=0)  # learning rate
    windows: list[int] = nums([1, 2], ge=1)  # window sizes
    schedule: str = choice("sqrt", "sqrt", "const")  # step-size schedule
    names: list[str] = nonempty(["a"])  # some names
    scale: dict[str, float] = num({"a": 1.0}, ge=0, le=10)  # per-name scale


@dataclass
class Schema(Common):
    inner: Inner = field(default_factory=Inner)
    epochs: int = 3

    def __post_init__(self):
        if self.epochs < 0:
            raise ValueError("config key 'epochs': must be ≥ 0")


@pytest.fixture
def config_dir(tmp_path):
    (tmp_path / "smoke.yaml").write_text("epochs: 5\ninner:\n  lr: 0.5\n")
    return tmp_path


def test_yaml_and_nested_overrides_are_merged_onto_defaults(config_dir):
    cfg = load_config(Schema, config_dir, "smoke", ["inner.windows=[3,4]", "inner.schedule=const"])
    assert cfg.epochs == 5 and cfg.inner.lr == 0.5
    assert cfg.inner.windows == [3, 4] and cfg.inner.schedule == "const"
    assert cfg.seeds == [0, 1, 2]


def test_int_override_of_a_float_field_is_converted(config_dir):
    assert load_config(Schema, config_dir, "smoke", ["inner.lr=1"]).inner.lr == 1.0


@pytest.mark.parametrize("override, words", [
    (["no_such_key=1"], ["no_such_key", "unknown key"]),
    (["inner.lrr=1"], ["inner.lrr", "closest valid keys: inner.lr"]),
    (["epochs=abc"], ["'epochs'", "'abc' is not a whole number"]),
    (["inner.windows=[1,x]"], ["inner.windows[1]", "'x' is not a whole number"]),
    (["inner.windows=3"], ["inner.windows", "is not a list of whole numbers"]),
    (["inner.lr=-0.1"], ["inner.lr", "-0.1 is out of range (allowed: > 0)"]),
    (["inner.lr=nan"], ["inner.lr", "out of range"]),
    (["inner.windows=[1,0]"], ["inner.windows[1]", "0 is out of range (allowed: >= 1)"]),
    (["inner.windows=[]"], ["inner.windows", "the list is empty"]),
    (["inner.names=[]"], ["inner.names", "the list is empty"]),
    (["inner.scale.a=11"], ["inner.scale[a]", "allowed: >= 0 and <= 10"]),
    (["num_seeds=0"], ["num_seeds", "0 is out of range (allowed: >= 1)"]),
    (["seed=-1"], ["seed", "out of range"]),
    (["inner.schedule=cubic"], ["inner.schedule", "not one of sqrt, const"]),
    (["precision=fp8"], ["precision", "not one of"]),
    (["epochs=-1"], ["epochs", "≥ 0"]),
    (["epochs"], ["must look like key=value"]),
])
def test_user_mistakes_raise_one_line_naming_the_key(config_dir, override, words):
    with pytest.raises(UserError) as err:
        load_config(Schema, config_dir, "smoke", override)
    message = str(err.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_unknown_config_name_lists_the_available_ones(config_dir):
    with pytest.raises(UserError, match="choose from: smoke"):
        load_config(Schema, config_dir, "large", [])


def test_invalid_yaml_is_a_user_error(tmp_path):
    (tmp_path / "bad.yaml").write_text("epochs: [1,\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_config(Schema, tmp_path, "bad", [])


def test_dump_yaml_round_trips(config_dir, tmp_path):
    cfg = load_config(Schema, config_dir, "smoke", ["inner.windows=[7]"])
    (tmp_path / "saved.yaml").write_text(dump_yaml(cfg))
    assert load_config(Schema, tmp_path, "saved", []) == cfg


def test_yaml_boolean_spelling_of_a_choice_is_read_as_the_word(config_dir):
    # YAML 1.1 turns `no` into False; the choice field still gets its option "no"
    assert load_config(Schema, config_dir, "smoke", ["precision=no"]).precision == "no"
    assert load_config(Schema, config_dir, "smoke", ["precision=bf16"]).precision == "bf16"


def test_a_config_can_be_a_path_to_a_yaml_file(config_dir, tmp_path):
    path = tmp_path / "elsewhere" / "mine.yaml"
    path.parent.mkdir()
    path.write_text("epochs: 7\n")
    assert load_config(Schema, config_dir, str(path), []).epochs == 7
    with pytest.raises(UserError, match="does not exist"):
        load_config(Schema, config_dir, str(tmp_path / "missing.yaml"), [])


def test_describe_shows_each_field_with_its_doc_and_range(config_dir):
    lines = describe(load_config(Schema, config_dir, "smoke", []))
    assert "inner.lr = 0.5  # learning rate [range > 0]" in lines
    assert "inner.schedule = sqrt  # step-size schedule [one of sqrt|const]" in lines
    assert "num_seeds = 3  # how many seeds `reproduce` runs [range >= 1]" in lines
    assert "# inner: Inner block." in lines


def test_numeric_fields_without_a_range_are_found():
    assert numeric_fields_without_range(Schema) == ["epochs"]
