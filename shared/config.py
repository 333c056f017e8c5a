"""Dataclass schemas + one YAML file per scale + `key=value` overrides (via OmegaConf).

A paper declares `@dataclass class Config(Common)`; `load_config` merges
`papers/<slug>/configs/<name>.yaml` and the command-line overrides onto it, checks types,
checks `choice(...)` fields and the declared ranges of numeric fields (`num`, `nums`), and
returns a plain dataclass instance. Any mistake the user can make raises `UserError` with one
line naming the key, the value and what is allowed, in plain words.

Every numeric field declares its range next to its one-line doc:

    steps: int = num(20000, ge=1)  # T, the longest horizon
    windows: list[int] = nums([1, 2, 5], ge=1)  # FWA window sizes k (non-empty)
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
import math
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from shared import UserError

T = TypeVar("T")


def choice(default: str, *options: str) -> Any:
    """A string field restricted to `options` (checked by `load_config`)."""
    assert default in options, (default, options)
    return field(default=default, metadata={"choices": tuple(options)})


@dataclass(frozen=True)
class Range:
    """Bounds of a numeric field (None = unbounded on that side)."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def ok(self, value: float) -> bool:
        if isinstance(value, float) and math.isnan(value):
            return False
        return ((self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
                and (self.le is None or value <= self.le) and (self.lt is None or value < self.lt))

    def text(self) -> str:
        parts = [f"{op} {_num(v)}" for op, v in
                 ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt)) if v is not None]
        return " and ".join(parts) if parts else "any number"


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else f"{v:g}"


def num(default: float | None, *, ge: float | None = None, gt: float | None = None,
        le: float | None = None, lt: float | None = None) -> Any:
    """A numeric field (int or float, or a dict of them) with its allowed range."""
    rng = Range(ge, gt, le, lt)
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata={"range": rng})
    return field(default=default, metadata={"range": rng})


def nums(default: list, *, ge: float | None = None, gt: float | None = None,
         le: float | None = None, lt: float | None = None, nonempty: bool = True) -> Any:
    """A list of numbers, each in the range; non-empty unless `nonempty=False`."""
    return field(default_factory=lambda: list(default),
                 metadata={"range": Range(ge, gt, le, lt), "nonempty": nonempty})


def nonempty(default: list) -> Any:
    """A list field (of strings, say) that must not be empty."""
    return field(default_factory=lambda: list(default), metadata={"nonempty": True})


def check_subset(key: str, values: list, allowed) -> None:
    """For a schema's __post_init__: every entry of a list field must be one of `allowed`
    (load_config turns the ValueError into a one-line user error)."""
    bad = [v for v in values if v not in allowed]
    if bad:
        raise ValueError(f"config key '{key}': {bad} not in {', '.join(map(str, allowed))}")


@dataclass
class Common:
    """Fields every paper's config has."""

    seed: int = num(0, ge=0)  # first seed; `reproduce` uses seed, seed+1, ..., seed+num_seeds-1
    num_seeds: int = num(3, ge=1)  # how many seeds `reproduce` runs
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


def _key_error(key: str, schema_obj: Any, problem: str, suggest: bool = True) -> UserError:
    close = difflib.get_close_matches(key, _all_keys(schema_obj), n=3, cutoff=0.5) if suggest else []
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


def _check_ranges(node: Any, prefix: str = "") -> None:
    for f in dataclasses.fields(node):
        value, key = getattr(node, f.name), f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            _check_ranges(value, key + ".")
            continue
        if f.metadata.get("nonempty") and isinstance(value, (list, dict)) and not value:
            raise UserError(f"config key '{key}': the list is empty; give at least one value")
        rng = f.metadata.get("range")
        if rng is None:
            continue
        items = (value.items() if isinstance(value, dict)
                 else enumerate(value) if isinstance(value, list) else [(None, value)])
        for sub, item in items:
            if item is None or isinstance(item, bool) or not isinstance(item, (int, float)):
                continue
            if not rng.ok(item):
                where = key if sub is None else f"{key}[{sub}]"
                raise UserError(f"config key '{where}': {_num(item) if math.isfinite(item) else item}"
                                f" is out of range (allowed: {rng.text()})")


def numeric_fields_without_range(schema: type, prefix: str = "") -> list[str]:
    """Keys of int/float fields (or lists/dicts of them) that declare no range."""
    missing = []
    hints = typing.get_type_hints(schema)
    for f in dataclasses.fields(schema):
        key, hint = f"{prefix}{f.name}", hints[f.name]
        if dataclasses.is_dataclass(hint):
            missing += numeric_fields_without_range(hint, key + ".")
        elif _is_numeric(hint) and "range" not in f.metadata:
            missing.append(key)
    return missing


def _is_numeric(hint: Any) -> bool:
    if hint in (int, float):
        return True
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (list, tuple, dict) or origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        return any(_is_numeric(a) for a in args if a is not type(None) and a is not str)
    return False


def field_docs(schema: type) -> dict[str, str]:
    """The one-line doc of each field: the comment after it in the schema's source."""
    try:
        source = inspect.getsource(schema)
    except (OSError, TypeError):
        return {}
    docs = {}
    for f in dataclasses.fields(schema):
        m = re.search(rf"^\s+{re.escape(f.name)}\s*:[^\n]*?#\s*(.+)$", source, re.M)
        if m:
            docs[f.name] = m.group(1).strip()
    for base in schema.__mro__[1:]:
        if dataclasses.is_dataclass(base):
            docs = {**field_docs(base), **docs}
    return docs


def describe(cfg: Any, prefix: str = "") -> list[str]:
    """`key = value  # doc [range]` for every field of a resolved config, nested keys dotted."""
    lines = []
    docs = field_docs(type(cfg))
    for f in dataclasses.fields(cfg):
        value, key = getattr(cfg, f.name), f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            doc = (type(value).__doc__ or "").strip().splitlines()
            lines.append(f"# {key}: {doc[0]}" if doc else f"# {key}")
            lines += describe(value, key + ".")
            continue
        extra = []
        if "range" in f.metadata:
            extra.append(f"range {f.metadata['range'].text()}")
        if f.metadata.get("choices"):
            extra.append("one of " + "|".join(f.metadata["choices"]))
        if f.metadata.get("nonempty"):
            extra.append("non-empty")
        doc = docs.get(f.name, "")
        tail = "  # " + doc + (f" [{'; '.join(extra)}]" if extra else "") if doc or extra else ""
        lines.append(f"{key} = {yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}{tail}")
    return lines


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0]
        raise UserError(f"config file {path} is not valid YAML: {first}") from None
    if not isinstance(data, dict):
        raise UserError(f"config file {path} must hold a mapping of keys to values")
    return data


@functools.lru_cache(maxsize=64)
def _structured(schema: type) -> DictConfig:
    """The schema's defaults as an OmegaConf node, built once per schema (about half of a
    `load_config`): `OmegaConf.merge` deep-copies its first argument, so this is never
    modified."""
    return OmegaConf.structured(schema)


def load_config(schema: type[T], config_dir: Path, name: str, overrides: list[str]) -> T:
    """Schema defaults <- `config_dir/<name>.yaml` <- `key=value` overrides, type-checked."""
    path = config_path(config_dir, name)
    for item in overrides:
        if "=" not in item or item.startswith("="):
            raise UserError(f"override '{item}' must look like key=value")
    defaults = schema()
    try:
        merged = OmegaConf.merge(
            _structured(schema),
            OmegaConf.create(_read_yaml(path)),
            OmegaConf.from_dotlist(list(overrides)),
        )
        cfg = OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        key = str(getattr(exc, "full_key", "") or "?")
        if "not in" in str(exc) or type(exc).__name__ == "ConfigKeyError":
            raise _key_error(key, defaults, "unknown key") from None
        raise _key_error(key, defaults, _plain_type_error(defaults, key, exc),
                         suggest=_field_hint(defaults, key) is None) from None
    except (TypeError, ValueError) as exc:  # raised by a schema's __post_init__
        raise UserError(f"config: {exc}") from None
    _check_choices(cfg)
    _check_ranges(cfg)
    return cfg


def config_path(config_dir: Path, name: str) -> Path:
    """`name` under `config_dir` (smoke, small, paper, ...) or a path to a .yaml file."""
    if name.endswith((".yaml", ".yml")) or "/" in name:
        path = Path(name)
        if not path.is_file():
            raise UserError(f"config file {name} does not exist")
        return path
    path = Path(config_dir) / f"{name}.yaml"
    if not path.exists():
        names = sorted(p.stem for p in Path(config_dir).glob("*.yaml"))
        raise UserError(f"no config '{name}' in {config_dir} (choose from: {', '.join(names)}, "
                        "or a path to a .yaml file)")
    return path


def config_label(name: str) -> str:
    """The name runs are filed under: the file's stem for a path, else the name."""
    return Path(name).stem if name.endswith((".yaml", ".yml")) or "/" in name else name


def _field_hint(schema_obj: Any, key: str) -> Any:
    node: Any = type(schema_obj)
    for part in key.split("."):
        name, index = re.fullmatch(r"([^\[]*)((?:\[[^\]]*\])*)", part).groups()
        if not dataclasses.is_dataclass(node):
            return None
        hints = typing.get_type_hints(node)
        if name not in hints:
            return None
        node = hints[name]
        for _ in re.findall(r"\[", index):  # an element of a list or a dict value
            args = typing.get_args(node)
            node = args[-1] if args else None
    return node


def _kind(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is bool:
        return "true or false"
    if hint is int:
        return "a whole number"
    if hint is float:
        return "a number"
    if hint is str:
        return "a string"
    if origin in (list, tuple):
        return f"a list of {_kind(args[0]).removeprefix('a ')}s" if args else "a list"
    if origin is dict:
        return "a mapping of names to values"
    return "a value of the right type"


def _plain_type_error(schema_obj: Any, key: str, exc: Exception) -> str:
    value = getattr(exc, "value", None)
    hint = _field_hint(schema_obj, key)
    shown = f"'{value}'" if value is not None else "the value"
    if hint is None:
        return f"bad value {shown}"
    return f"{shown} is not {_kind(hint)}"


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def dump_yaml(cfg: Any) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)
