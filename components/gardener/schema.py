"""A tiny declarative schema walker shared by the stack-config parser and the provider's `check`.

Why not two parsers: the same rules must reject a bad worker name whether it comes from
`Pulumi.cleura.yaml` (camelCase keys, reported as ``platform:cleura.shootProvider.workers[1].name``)
or from the engine's `Check` call (snake_case provider inputs, reported as
``shoot_provider.workers[1].name``). One walker, one set of field rules, two key styles.

The walker also tolerates Pulumi's *unknown* sentinel: during a preview any input may be a
not-yet-computed value, and validating it would produce false errors.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from components.config.reader import yaml_typed_hint

# The string the Python SDK uses for "unknown during preview" (`pulumi.runtime.rpc.UNKNOWN`).
# Copied as a literal so this module stays importable without Pulumi; a test pins the value.
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"

Kind = Literal["str", "int", "bool", "obj", "list", "duration", "adopt"]
KeyStyle = Literal["snake", "camel"]
PathPart = str | int
Path = tuple[PathPart, ...]
Rule = Callable[[Any], "str | None"]


def is_unknown(value: object) -> bool:
    """True for Pulumi's preview-time unknown placeholder, in either form.

    On the wire it is the `UNKNOWN` string; the dynamic-provider host deserialises `check` and
    `diff` inputs with `keep_unknowns=True`, which turns it into a `pulumi.output.Unknown`
    instance. Matched by name so this module needs no Pulumi import.
    """
    if isinstance(value, str):
        return value == UNKNOWN
    kind = type(value)
    return kind.__name__ == "Unknown" and kind.__module__ == "pulumi.output"


def contains_unknown(value: object) -> bool:
    """True when the value or anything nested in it is unknown."""
    if is_unknown(value):
        return True
    if isinstance(value, Mapping):
        return any(contains_unknown(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(contains_unknown(v) for v in value)
    return False


@dataclass(frozen=True)
class Issue:
    """One validation problem at a path of snake_case keys and list indexes."""

    path: Path
    message: str


@dataclass(frozen=True)
class Field:
    """How one key is typed and checked. `rule` returns an error message or None."""

    kind: Kind
    required: bool = False
    fields: Mapping[str, Field] | None = None
    item: Field | None = None
    rule: Rule | None = None
    default: Any = None
    min_items: int = 0


@dataclass
class Walk:
    """Collected issues for one walk, plus the key style used to read and report keys."""

    style: KeyStyle = "snake"
    issues: list[Issue] = field(default_factory=list)

    def error(self, path: Path, message: str) -> None:
        self.issues.append(Issue(path, message))


def dig(d: object, *path: str) -> Any:
    """The value at `path` in nested mappings, or None where any step is missing."""
    for key in path:
        if not isinstance(d, Mapping):
            return None
        d = d.get(key)
    return d


def camel(name: str) -> str:
    """`kubernetes_version` -> `kubernetesVersion` (the stack YAML spelling)."""
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


class AsWritten(str):
    """A key exactly as the user wrote it (an unknown key): shown verbatim, never re-spelt."""

    __slots__ = ()


def display_key(name: str, style: KeyStyle) -> str:
    if isinstance(name, AsWritten):
        return str(name)
    return camel(name) if style == "camel" else name


def render_path(path: Path, style: KeyStyle = "snake", prefix: str = "") -> str:
    """`("shoot_provider", "workers", 1, "name")` -> `shoot_provider.workers[1].name`."""
    out = prefix
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            key = display_key(part, style)
            out = f"{out}.{key}" if out else key
    return out


def describe(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _closest(key: str, known: list[str]) -> str | None:
    lowered = {k.lower().replace("_", ""): k for k in known}
    squashed = key.lower().replace("_", "").replace("-", "")
    if squashed in lowered:
        return lowered[squashed]
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return close[0] if close else None


def _suggest(key: str, known: list[str]) -> str:
    close = _closest(key, known)
    if close:
        return f"; did you mean '{close}'?"
    return f" (known keys: {', '.join(sorted(known))})"


_TYPE_NAMES = {
    "str": "a string",
    "int": "an integer",
    "bool": "true or false",
    "adopt": "true, false or observe",
    "obj": "an object",
    "list": "a list",
    "duration": "a duration such as '45m' or a number of seconds",
}

_DURATION_RE = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(value: object) -> int | None:
    """Seconds from `90`, `"90s"`, `"45m"`, `"1h30m"`; None if not a positive duration."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and float(value).is_integer() and value > 0:
        return int(value)
    if isinstance(value, str) and value:
        m = _DURATION_RE.match(value.strip())
        if m and any(m.groups()):
            h, mi, s = (int(g) if g else 0 for g in m.groups())
            total = h * 3600 + mi * 60 + s
            return total if total > 0 else None
    return None


def _coerce(kind: Kind, value: object) -> tuple[bool, object]:
    """Type-check one scalar; numbers arrive as floats over gRPC, so integral floats are ints."""
    if kind == "str":
        return isinstance(value, str), value
    if kind == "bool":
        return isinstance(value, bool), value
    if kind == "adopt":
        return isinstance(value, bool) or value == "observe", value
    if kind == "int":
        if isinstance(value, bool):
            return False, value
        if isinstance(value, int):
            return True, value
        if isinstance(value, float) and value.is_integer():
            return True, int(value)
        return False, value
    if kind == "duration":
        seconds = parse_duration(value)
        return seconds is not None, seconds
    return False, value


def walk_object(fields: Mapping[str, Field], raw: object, path: Path, w: Walk) -> dict[str, Any]:
    """Validate `raw` against `fields`; return a snake_case dict with defaults and unknowns kept."""
    if not isinstance(raw, Mapping):
        w.error(path, f"expected an object, got {describe(raw)}")
        return {}
    by_display = {display_key(k, w.style): k for k in fields}
    out: dict[str, Any] = {}
    misspelt: set[str] = set()  # known keys an unknown key probably meant: not also "is required"
    for key in raw:
        if key not in by_display:
            w.error((*path, AsWritten(key)), "unknown key" + _suggest(str(key), list(by_display)))
            close = _closest(str(key), list(by_display))
            if close is not None:
                misspelt.add(by_display[close])
    for name, spec in fields.items():
        value = raw.get(display_key(name, w.style))
        if value is None and name in misspelt:
            continue
        walked = walk_value(spec, value, (*path, name), w)
        if walked is not None:
            out[name] = walked
    return out


def walk_value(spec: Field, value: object, path: Path, w: Walk) -> Any:
    """Validate one value; unknown stays unknown, missing optional stays None (or its default)."""
    if is_unknown(value):
        return value
    if value is None:
        if spec.required:
            w.error(path, "is required")
        return spec.default
    if spec.kind == "obj":
        assert spec.fields is not None
        if not isinstance(value, Mapping):
            w.error(path, f"expected an object, got {describe(value)}")
            return None
        result: Any = walk_object(spec.fields, value, path, w)
    elif spec.kind == "list":
        assert spec.item is not None
        if not isinstance(value, list | tuple):
            w.error(path, f"expected a list, got {describe(value)}")
            return None
        if len(value) < spec.min_items:
            w.error(path, f"needs at least {spec.min_items} item(s)")
        for i, item in enumerate(value):
            if item is None:  # `- ` with nothing after it: a YAML slip, never a value to drop silently
                w.error((*path, i), "is empty (null); remove the item or give it a value")
        result = [walk_value(spec.item, v, (*path, i), w) for i, v in enumerate(value) if v is not None]
        result = [v for v in result if v is not None]
    else:
        ok, coerced = _coerce(spec.kind, value)
        if not ok:
            hint = yaml_typed_hint(value) if spec.kind == "str" else ""
            w.error(path, f"expected {_TYPE_NAMES[spec.kind]}, got {describe(value)}{hint}")
            return None
        result = coerced
    if spec.rule is not None:
        problem = spec.rule(result)
        if problem:
            w.error(path, problem)
    return result
