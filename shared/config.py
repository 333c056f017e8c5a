"""Dataclass schemas + one YAML file per scale + `key=value` overrides (via OmegaConf).

A paper declares `@dataclass class Config(Common)`; `load_config` merges
`papers/<slug>/configs/<name>.yaml` and the command-line overrides onto it, checks types,
checks `choice(...)` fields, and returns a plain dataclass instance. Any mistake the user
can make raises `UserError` with one line naming the key and the closest valid keys.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from shared import UserError

T = TypeVar("T")


def choice(default: str, *options: str) -> Any:
    """A string field restricted to `options` (checked by `load_config`)."""
    assert default in options, (default, options)
    return field(default=default, metadata={"choices": tuple(options)})


def check_subset(key: str, values: list, allowed) -> None:
    """For a schema's __post_init__: every entry of a list field must be one of `allowed`
    (load_config turns the ValueError into a one-line user error)."""
    bad = [v for v in values if v not in allowed]
    if bad:
        raise ValueError(f"config key '{key}': {bad} not in {', '.join(map(str, allowed))}")


@dataclass
class Common:
    """Fields every paper's config has."""

    seed: int = 0  # first seed; `reproduce` uses seed, seed+1, ..., seed+num_seeds-1
    num_seeds: int = 3  # how many seeds `reproduce` runs
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    precision: str = choice("no", "no", "fp16", "bf16")  # mixed precision for networks
    deterministic: bool = False  # torch.use_deterministic_algorithms (slower on GPU)
    resume: str = ""  # "" = new run; "latest" = continue the newest unfinished run; or a run dir
    runs_dir: str = "runs"  # root of all run directories
    data_dir: str = "runs/data"  # where generated datasets are cached
    wandb: bool = True  # log to wandb too (mode from WANDB_MODE; offline unless logged in)

    @property
    def seeds(self) -> list[int]:
        return list(range(self.seed, self.seed + self.num_seeds))


def _all_keys(node: Any, prefix: str = "") -> list[str]:
    keys = []
    for f in dataclasses.fields(node):
        full = f"{prefix}{f.name}"
        keys.append(full)
        value = getattr(node, f.name)
        if dataclasses.is_dataclass(value):
            keys += _all_keys(value, full + ".")
    return keys


def _key_error(key: str, schema_obj: Any, problem: str) -> UserError:
    close = difflib.get_close_matches(key, _all_keys(schema_obj), n=3, cutoff=0.5)
    hint = f" (closest valid keys: {', '.join(close)})" if close else ""
    return UserError(f"config key '{key}': {problem}{hint}")


# YAML 1.1 reads no/off/yes/on as booleans, which a string field then holds as "False"/"True".
_YAML_BOOL_WORDS = {"False": ("no", "off", "false"), "True": ("yes", "on", "true")}


def _check_choices(node: Any, prefix: str = "") -> None:
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        options = f.metadata.get("choices")
        if options and value in _YAML_BOOL_WORDS and value not in options:
            spelled = [w for w in _YAML_BOOL_WORDS[value] if w in options]
            if spelled:  # `precision=no` on the command line means the option "no"
                value = spelled[0]
                setattr(node, f.name, value)
        if options and value not in options:
            raise UserError(
                f"config key '{prefix}{f.name}': '{value}' is not one of {', '.join(options)}"
            )
        if dataclasses.is_dataclass(value):
            _check_choices(value, f"{prefix}{f.name}.")


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0]
        raise UserError(f"config file {path} is not valid YAML: {first}") from None
    if not isinstance(data, dict):
        raise UserError(f"config file {path} must hold a mapping of keys to values")
    return data


def load_config(schema: type[T], config_dir: Path, name: str, overrides: list[str]) -> T:
    """Schema defaults <- `config_dir/<name>.yaml` <- `key=value` overrides, type-checked."""
    path = Path(config_dir) / f"{name}.yaml"
    if not path.exists():
        names = sorted(p.stem for p in Path(config_dir).glob("*.yaml"))
        raise UserError(f"no config '{name}' in {config_dir} (choose from: {', '.join(names)})")
    for item in overrides:
        if "=" not in item or item.startswith("="):
            raise UserError(f"override '{item}' must look like key=value")
    defaults = schema()
    try:
        merged = OmegaConf.merge(
            OmegaConf.structured(schema),
            OmegaConf.create(_read_yaml(path)),
            OmegaConf.from_dotlist(list(overrides)),
        )
        cfg = OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        key = str(getattr(exc, "full_key", "") or "?")
        if "not in" in str(exc) or type(exc).__name__ == "ConfigKeyError":
            raise _key_error(key, defaults, "unknown key") from None
        msg = str(getattr(exc, "msg", exc)).splitlines()[0]
        raise _key_error(key, defaults, f"bad value: {msg}") from None
    except (TypeError, ValueError) as exc:  # raised by a schema's __post_init__
        raise UserError(f"config: {exc}") from None
    _check_choices(cfg)
    return cfg


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def dump_yaml(cfg: Any) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)
