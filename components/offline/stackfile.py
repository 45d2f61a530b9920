"""Read ``Pulumi.<stack>.yaml`` exactly as the Pulumi CLI does, and encode values as it passes them.

The CLI (``sdk/go/common/workspace/loaders.go``, ``LoadProjectStackBytes``) decodes the stack
file with ``gopkg.in/yaml.v3`` into untyped values, re-encodes and decodes it once more into a
``config.Map``, and each ``config.Value`` (``resource/config/object.go``) keeps a top-level string
as its text, a top-level bool or number as its JSON text and anything structured as JSON
(``encoding/json``: keys sorted, ``<``, ``>``, ``&`` escaped). The language host hands the
program that ``{key: text}`` map as ``PULUMI_CONFIG``.

yaml.v3 is not PyYAML's YAML 1.1: only ``true``/``false`` (any case-form of those) are booleans
(``yes``, ``on`` stay strings), ``~``/``null``/empty are null, integers follow Go's
``strconv.ParseInt(s, 0, 64)`` after removing ``_`` (so ``0x1F`` is 31 and, for compatibility,
``0123`` is octal 83, exactly what the CLI passes), unquoted timestamps become ``time.Time``
(passed as Go's ``Time.String()``), a null top-level value is passed as the empty string, and
duplicate keys are an error. This module parses the
file with PyYAML's composer (the same libyaml grammar) and resolves every plain scalar with
yaml.v3's rules, so an offline run receives byte for byte what a ``pulumi`` run would.

Known differences: a timestamp with a non-UTC offset is rendered with a numeric zone name
(the CLI uses the machine's local zone name when the offset matches it), and project-level
``config:`` defaults in ``Pulumi.yaml`` are not merged (this project sets none).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_PLAIN = "?plain"  # a plain (unquoted, untagged) scalar: resolved by yaml.v3's rules below
_STR = "tag:yaml.org,2002:str"
_YAML_STYLE_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_NULLS = {"", "~", "null", "Null", "NULL"}
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_SPECIAL_FLOATS = {
    **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf),
}
INT64 = (-(2**63), 2**63 - 1)
UINT64_MAX = 2**64 - 1


class StackFileError(Exception):
    """The stack file cannot be read the way the CLI reads it; the message names file and line."""


@dataclass(frozen=True)
class GoTime:
    """A YAML timestamp as yaml.v3 decodes it; the CLI passes ``Time.String()``."""

    moment: datetime

    def __str__(self) -> str:
        m = self.moment
        text = m.strftime("%Y-%m-%d %H:%M:%S")
        if m.microsecond:
            text += f".{m.microsecond:06d}".rstrip("0")
        offset = m.utcoffset() or timedelta(0)
        minutes = int(offset.total_seconds()) // 60
        sign = "-" if minutes < 0 else "+"
        numeric = f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"
        return f"{text} {numeric} {'UTC' if minutes == 0 else numeric}"


@dataclass(frozen=True)
class StackFile:
    """The ``config:`` block as the CLI hands it to the program (secure values listed apart)."""

    path: Path
    values: dict[str, str]  # key -> the text PULUMI_CONFIG carries
    encrypted: tuple[str, ...]  # keys holding a `secure:` value (top level or nested)
    notes: tuple[str, ...] = ()  # unquoted values the CLI reads as a different number (0123 -> 83)
    # encrypted keys with a structured value (``config set --secret --path``): the structure, as JSON
    # text, with each `secure:` leaf replaced by `placeholder(path)` (an offline run has no passphrase)
    shapes: tuple[tuple[str, str], ...] = ()


class _Loader(yaml.SafeLoader):
    """PyYAML's grammar with no YAML 1.1 type guessing: plain scalars are left to `_resolve_plain`."""

    def resolve(self, kind: type[Node], value: Any, implicit: Any) -> str:
        if kind is ScalarNode and implicit[0]:
            return _PLAIN
        if kind is ScalarNode:
            return _STR
        result: str = super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]
        return result


def _go_parse_int(text: str) -> int | None:
    """Go's ``strconv.ParseInt(text, 0, 64)`` (then ParseUint) as yaml.v3 calls it, or None."""
    sign, body = (text[0], text[1:]) if text[:1] in "+-" else ("", text)
    if not body:
        return None
    lower = body.lower()
    base, digits = 10, body
    if lower.startswith(("0x", "0o", "0b")):
        base, digits = {"x": 16, "o": 8, "b": 2}[lower[1]], body[2:]
    elif body.startswith("0") and len(body) > 1:
        base, digits = 8, body[1:]
    allowed = "0123456789abcdef"[:base]
    if not digits or any(c not in allowed for c in digits.lower()):
        return None
    value = int(digits, base) * (-1 if sign == "-" else 1)
    if INT64[0] <= value <= INT64[1] or (not sign and value <= UINT64_MAX):  # ParseUint takes no sign
        return value
    return None


def _parse_timestamp(text: str) -> GoTime | None:
    match = re.fullmatch(
        r"(\d{4})-(\d{1,2})-(\d{1,2})(?:(?:[Tt](\d{1,2}):(\d{1,2}):(\d{1,2})(\.\d+)?(Z|[-+]\d{2}:\d{2}))"
        r"|(?: (\d{1,2}):(\d{1,2}):(\d{1,2})(\.\d+)?))?",
        text,
    )
    if match is None:
        return None
    g = match.groups()
    hour, minute, second, fraction, zone = (g[3], g[4], g[5], g[6], g[7]) if g[3] else (g[8], g[9], g[10], g[11], None)
    tz = UTC
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    try:
        moment = datetime(
            int(g[0]), int(g[1]), int(g[2]), int(hour or 0), int(minute or 0), int(second or 0),
            int(((fraction or ".")[1:] + "000000")[:6]), tzinfo=tz,
        )
    except ValueError:
        return None
    return GoTime(moment)


def resolve_plain(text: str) -> Any:
    """A plain scalar as yaml.v3 resolves it into an untyped value (``resolve.go``)."""
    if text in _NULLS:
        return None
    if text in _BOOLS:
        return _BOOLS[text]
    if text in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[text]
    first = text[0]
    if first == ".":
        try:
            return float(text) if re.fullmatch(r"\.[0-9]+([eE][-+]?[0-9]+)?", text) else text
        except ValueError:
            return text
    if first in "0123456789+-":
        stamp = _parse_timestamp(text)
        if stamp is not None:
            return stamp
        plain = text.replace("_", "")
        number = _go_parse_int(plain)
        if number is not None:
            return number
        if _YAML_STYLE_FLOAT.fullmatch(plain):
            number_f = float(plain)
            return text if math.isinf(number_f) else number_f  # Go's ParseFloat fails out of range: a string
    return text


def _key_text(key: Any, node: Node, path: Path) -> str:
    """Map keys as ``fmt.Sprintf("%v", k)`` renders them (Pulumi's unmarshalObject)."""
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "<nil>"
    if isinstance(key, (int, float, GoTime)):
        return go_number(key) if isinstance(key, float) else str(key)
    raise StackFileError(f"{_where(path, node)}: a mapping key must be a scalar")


def _where(path: Path, node: Node) -> str:
    return f"{path.name}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"


def _construct(node: Node, path: Path) -> Any:
    if isinstance(node, ScalarNode):
        if node.tag == _PLAIN:
            return resolve_plain(node.value)
        if node.tag in (_STR, "!"):
            return node.value
        short = node.tag.replace("tag:yaml.org,2002:", "!!")
        if short == "!!null":
            return None
        if short in ("!!int", "!!float", "!!bool"):
            value = resolve_plain(node.value)
            ok = {"!!int": isinstance(value, int) and not isinstance(value, bool),
                  "!!float": isinstance(value, (int, float)) and not isinstance(value, bool),
                  "!!bool": isinstance(value, bool)}[short]
            if not ok:
                raise StackFileError(f"{_where(path, node)}: cannot decode {node.value!r} as a {short}")
            return float(value) if short == "!!float" else value
        return node.value  # !!str, !!binary, application tags: the CLI keeps the text
    if isinstance(node, SequenceNode):
        return [_construct(item, path) for item in node.value]
    if isinstance(node, MappingNode):
        out: dict[str, Any] = {}
        lines: dict[str, int] = {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode) and key_node.tag == _PLAIN and key_node.value == "<<":
                sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                for source in sources:
                    value = _construct(source, path)
                    if not isinstance(value, dict):
                        raise StackFileError(f"{_where(path, source)}: map merge requires a map or a list of maps")
                    for k, v in value.items():
                        merged.setdefault(k, v)
                continue
            key = _key_text(_construct(key_node, path), key_node, path)
            if key in lines:
                raise StackFileError(
                    f"{_where(path, key_node)}: mapping key {key!r} already defined at line {lines[key]}"
                )
            lines[key] = key_node.start_mark.line + 1
            out[key] = _construct(value_node, path)
        return {**{k: v for k, v in merged.items() if k not in out}, **out}
    raise StackFileError(f"{_where(path, node)}: unsupported YAML node")


_LEGACY_OCTAL = re.compile(r"[-+]?0[0-9_]+")
_TRAILING_ZERO = re.compile(r"[-+]?[0-9]+\.[0-9]*0")


def _surprises(node: Node, path: Path, seen: set[int] | None = None) -> list[str]:
    """Unquoted values whose text the CLI reads as another number: leading-zero octal, 1.10 -> 1.1."""
    seen = set() if seen is None else seen
    if id(node) in seen:
        return []
    seen.add(id(node))
    if isinstance(node, ScalarNode):
        if node.tag != _PLAIN:
            return []
        text, value = node.value, resolve_plain(node.value)
        if isinstance(value, int) and not isinstance(value, bool) and _LEGACY_OCTAL.fullmatch(text):
            return [f"{_where(path, node)}: unquoted {text} is read as the octal number {value} (the CLI passes "
                    f"{value}); quote it (\"{text}\") if {text} was meant"]
        if isinstance(value, float) and _TRAILING_ZERO.fullmatch(text) and "e" not in text.lower():
            return [f"{_where(path, node)}: unquoted {text} is read as the number {go_number(value)}; quote it "
                    f"(\"{text}\") if it is a version or other text"]
        return []
    if isinstance(node, SequenceNode):
        return [note for item in node.value for note in _surprises(item, path, seen)]
    if isinstance(node, MappingNode):
        return [note for _, value in node.value for note in _surprises(value, path, seen)]
    return []


def go_number(value: float) -> str:
    """A float64 as Go's ``encoding/json`` writes it (shortest digits; exponent outside [1e-6, 1e21))."""
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"json: unsupported value: {value}")
    if value == int(value) and abs(value) < 1e21:
        return str(int(value)) if value or math.copysign(1, value) > 0 else "-0"
    shortest = Decimal(repr(value))  # repr is the shortest text that reads back as `value`, as in Go
    if abs(value) < 1e-6 or abs(value) >= 1e21:
        mantissa, _, exponent = f"{shortest:e}".partition("e")
        if "." in mantissa:
            mantissa = mantissa.rstrip("0").rstrip(".")
        return f"{mantissa}e{exponent[0]}{int(exponent[1:])}"
    return format(shortest, "f")


_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f",
                 "<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _go_string(text: str) -> str:
    out = []
    for char in text:
        if char in _JSON_ESCAPES:
            out.append(_JSON_ESCAPES[char])
        elif ord(char) < 0x20:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def go_json(value: Any) -> str:
    """`value` as Go's ``json.Marshal`` writes it (compact, map keys sorted, HTML-safe)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_number(value)
    if isinstance(value, GoTime):
        return _go_string(str(value))
    if isinstance(value, str):
        return _go_string(value)
    if isinstance(value, Mapping):
        items = sorted((str(k), v) for k, v in value.items())
        return "{" + ",".join(f"{_go_string(k)}:{go_json(v)}" for k, v in items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(go_json(v) for v in value) + "]"
    raise TypeError(f"cannot encode {type(value).__name__}")


def config_text(value: Any) -> str:
    """The text the CLI passes for one top-level config value (``MarshalString`` + ``marshalText``)."""
    if value is None:
        return ""  # a bare `key:` or `key: ~` reaches the program as the empty string
    if isinstance(value, str):
        return value
    if isinstance(value, GoTime):
        return str(value)
    return go_json(value)


def _is_secure(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("secure"), str)


def _holds_secure(value: Any) -> bool:
    if _is_secure(value):
        return True
    if isinstance(value, dict):
        return any(_holds_secure(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_secure(v) for v in value)
    return False


def placeholder(path: str) -> str:
    """The text an offline run gets instead of the secret at `path` (``platform:key["a"].b``)."""
    return f"offline-render-placeholder-for-{path.split(':', 1)[-1]}"


def _shape(value: Any, path: str) -> Any:
    """`value` with every `secure:` leaf replaced by its placeholder."""
    if _is_secure(value):
        return placeholder(path)
    if isinstance(value, dict):
        return {k: _shape(v, f'{path}["{k}"]' if "." in str(k) or ":" in str(k) else f"{path}.{k}")
                for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def load(path: Path, project: str = "platform") -> StackFile:
    """Parse a stack file into the CLI's ``PULUMI_CONFIG`` texts, or raise `StackFileError`."""
    if not path.exists():
        return StackFile(path, {}, ())
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{path.name}:{mark.line + 1}:{mark.column + 1}" if mark else path.name
        raise StackFileError(f"{where}: invalid YAML: {err.problem or err.context}") from None
    except yaml.YAMLError as err:
        raise StackFileError(f"{path.name}: invalid YAML: {err}") from None
    if root is None:
        return StackFile(path, {}, ())
    if not isinstance(root, MappingNode):
        raise StackFileError(f"{_where(path, root)}: a stack file is a mapping (config:, secretsprovider:, ...)")
    config_node = next((v for k, v in root.value if isinstance(k, ScalarNode) and k.value == "config"), None)
    document = _construct(root, path)
    config = document.get("config")
    if config is None:
        return StackFile(path, {}, ())
    if not isinstance(config, dict):
        assert config_node is not None
        raise StackFileError(f"{_where(path, config_node)}: 'config' must be a mapping of key: value")
    assert config_node is not None
    notes = tuple(_surprises(config_node, path))
    values: dict[str, str] = {}
    encrypted: list[str] = []
    shapes: list[tuple[str, str]] = []
    for key, value in config.items():
        full = key if ":" in key else f"{project}:{key}"  # the CLI namespaces bare keys with the project
        parts = full.split(":")
        if len(parts) == 3 and parts[1] == "config":
            full = f"{parts[0]}:{parts[2]}"  # the legacy <namespace>:config:<name> form (config.ParseKey)
        elif len(parts) != 2:
            raise StackFileError(f"{path.name}: could not parse {key!r} as a configuration key (configuration keys "
                                 "should be of the form `<namespace>:<name>`)")
        if _holds_secure(value):
            encrypted.append(full)
            if not _is_secure(value):
                shapes.append((full, config_text(_shape(value, full))))
            continue
        try:
            values[full] = config_text(value)
        except ValueError as err:
            raise StackFileError(f"{path.name}: config key {key!r}: {err}") from None
    return StackFile(path, values, tuple(sorted(encrypted)), notes, tuple(sorted(shapes)))
