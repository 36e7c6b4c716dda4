"""Typed dataclass configs: load from dicts/JSON, reject unknown keys, apply `--set a.b=v` overrides."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from .errors import ConfigError
from .registry import unknown_name_message

C = TypeVar("C")
__all__ = ["ConfigError", "from_dict", "to_dict", "apply_overrides", "load_json", "check_ranges"]


def shown(value: Any) -> str:
    """A config value as the user wrote it in JSON: null, true and false; other values as Python shows them."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text):,} characters)"  # the message stays one line


def _field_types(cls) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check `value` against the annotation `tp`, converting JSON forms (int -> float, list -> tuple)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if isinstance(value, NumberText):  # '.5' from --set: a number where one fits, else the text as typed
        takes = set(args) if origin in (typing.Union, types.UnionType) else {tp}
        value = value.number if takes & {int, float} else str(value)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except ConfigError as e:
                errors.append(str(e))
        wants = [m.group(1) for e in errors if (m := re.fullmatch(rf"{re.escape(where)}: expected (.+), got .*", e))]
        if len(wants) == len(errors) > 1:  # "expected a number or a string, got [1, 4]"
            raise ConfigError(f"{where}: expected {' or '.join(wants)}, got {shown(value)}")
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected an object, got {shown(value)}")
        return from_dict(tp, value, where)
    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {shown(value)}")
        inner = args[0] if args else Any
        items = [_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected an object, got {shown(value)}")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {shown(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {shown(value)}")
        if not math.isfinite(value):
            raise ConfigError(f"{where}: expected a finite number, got {shown(value)}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {shown(value)}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {shown(value)}")
        return value
    return value


def from_dict(cls: type[C], data: dict, where: str = "config") -> C:
    """Build dataclass `cls` from `data`; unknown keys are errors with a did-you-mean hint."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected an object, got {data!r}")
    types_ = _field_types(cls)
    kwargs = {}
    for key, value in data.items():
        if key not in types_:
            raise ConfigError(f"{where}: " + unknown_name_message("key", key, types_))
        kwargs[key] = _coerce(value, types_[key], f"{where}.{key}")
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if validate is not None:
        try:
            validate()
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
    return obj


def check_ranges(obj: Any) -> None:
    """Check the numeric fields named in `obj.RANGES`: key -> (low, high[, "open" | "right-open"]).

    Bounds are inclusive unless marked: "open" excludes the low bound, "right-open" the high one;
    None means no bound. The message names the key and the allowed range."""
    for key, spec in getattr(obj, "RANGES", {}).items():
        lo, hi, kind = (*spec, "")[:3]
        v = getattr(obj, key)
        if v is None or isinstance(v, str):  # a word such as "auto", checked by the config's own rules
            continue
        bad = (lo is not None and (v <= lo if kind == "open" else v < lo)) or (
            hi is not None and (v >= hi if kind == "right-open" else v > hi)
        )
        if bad:
            if hi is None:
                allowed = f"{'above' if kind == 'open' else 'at least'} {lo}"
            else:
                allowed = f"in [{lo}, {hi}{')' if kind == 'right-open' else ']'}"
            raise ConfigError(f"{key} must be {allowed}, got {v}")


def to_dict(obj: Any) -> Any:
    """A dataclass as JSON-ready dicts (tuples become lists)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)


class NumberText(str):
    """A `--set` value JSON does not read but a shell user may mean as a number ('.5', '5.', '+2'):
    that number where the setting takes one, the text as typed where it takes a string (`work=5.`)."""

    number: int | float


def parse_override(text: str) -> tuple[list[str], Any]:
    """'student.lr=1e-3' -> (['student', 'lr'], 0.001); values are JSON, else plain strings ('.5' and
    the like as a NumberText)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. --set train.lr=1e-3")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except ValueError:  # not JSON, or a number too long for Python to read: the text itself
        value = raw
        if _NUMBER.fullmatch(raw.strip()):
            try:
                number = float(raw) if set(raw) & set(".eE") else int(raw)
            except ValueError:  # past int()'s digit limit: left as text, and a number field says so
                pass
            else:
                value = NumberText(raw)
                value.number = number
    return key.strip().split("."), value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply `--set a.b=v` overrides to a raw config dict (validated later by `from_dict`)."""
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {text!r}: '{part}' is not a section")
        node[path[-1]] = value
    return data


def load_json(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: config file does not exist")
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder, expected a JSON config file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}, line {e.lineno}: invalid JSON: {e.msg}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{e.object[e.start]:02x} at byte {e.start + 1})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config is a JSON object {{...}}, got {type(data).__name__}")
    return data
