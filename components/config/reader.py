"""A small typed reader over raw config objects that records problems instead of raising.

Stack config arrives as plain JSON-ish values. Each `Reader` wraps one object at a key path,
hands out typed fields, and at `finish()` reports every key it was never asked for as an
unknown key with the closest known spelling, which catches typos such as ``podCIDR``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeVar

from components.problems import Problems

T = TypeVar("T")

NAMESPACE = "platform"

_MISSING = object()


def suggest(key: str, known: Sequence[str]) -> str:
    """`; did you mean 'x'?` for the closest known key, or an empty string."""
    key = str(key)  # YAML may hand over non-string keys (`1: x`); they must be reported, not crash
    lowered = {k.lower(): k for k in known}
    if key.lower() in lowered:
        return f"; did you mean '{lowered[key.lower()]}'?"
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def describe(value: object) -> str:
    """A short, quoted rendering of a bad value for error messages."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def yaml_typed_hint(value: object) -> str:
    """Why a string key got a number or a boolean: YAML typed the unquoted text; say to quote it."""
    if isinstance(value, bool):
        return f"; YAML reads an unquoted {str(value).lower()} as a boolean: quote it if a string was meant"
    if isinstance(value, float):
        return (f"; YAML read the unquoted text as the number {value!r} (1.10 becomes 1.1): quote the value "
                "as written, e.g. \"1.10\"")
    if isinstance(value, int):
        return "; YAML read the unquoted text as a number (0123 becomes 83): quote it if a string was meant"
    return ""


class Reader:
    """Typed access to one config object at `path`; unknown keys are reported by `finish()`."""

    def __init__(self, raw: object, path: str, problems: Problems) -> None:
        self.path = path
        self.problems = problems
        self._seen: set[str] = set()
        # Not an object at all: reported once here; its fields are then not also "required".
        self.broken = raw is not None and not isinstance(raw, Mapping)
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            problems.error(path, f"expected an object, got {describe(raw)}")
            raw = {}
        self._raw: Mapping[str, Any] = raw

    # -- plumbing -----------------------------------------------------------------------
    def key_path(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return key in self._raw

    def raw(self, key: str, default: Any = None) -> Any:
        self._seen.add(key)
        return self._raw.get(key, default)

    def error(self, key: str, message: str) -> None:
        self.problems.error(self.key_path(key), message)

    def finish(self) -> None:
        known = sorted(self._seen)
        for key in self._raw:
            if key not in self._seen:
                hint = suggest(key, known) or " (known keys: " + ", ".join(known) + ")"
                self.problems.error(self.key_path(key), f"unknown key{hint}")

    # -- typed fields -------------------------------------------------------------------
    def string(
        self, key: str, default: str | None = None, *, required: bool = False, pattern: str | None = None,
        hint: str = "",
    ) -> str | None:
        value = self.raw(key, _MISSING)
        if value is _MISSING or value is None:
            if required and not self.broken:
                self.error(key, f"is required{hint and ' (' + hint + ')'}")
            return default
        if not isinstance(value, str):
            self.error(key, f"expected a string, got {describe(value)}{yaml_typed_hint(value)}")
            return default
        if pattern is not None and not re.fullmatch(pattern, value):
            self.error(key, f"{describe(value)} does not match {hint or pattern}")
            return default
        return value

    def integer(self, key: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
        value = self.raw(key, _MISSING)
        if value is _MISSING or value is None:
            return default
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(key, f"expected an integer, got {describe(value)}")
            return default
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            bounds = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            self.error(key, f"{value} is out of range (expected {bounds})")
            return default
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw(key, _MISSING)
        if value is _MISSING or value is None:
            return default
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            self.error(key, f"expected true or false, got {describe(value)}")
            return default
        return value

    def choice(self, key: str, choices: Sequence[str], default: str) -> str:
        value = self.string(key, default)
        assert value is not None
        if value not in choices:
            self.error(key, f"{describe(value)} is not one of {', '.join(choices)}{suggest(value, choices)}")
            return default
        return value

    def obj(self, key: str) -> Reader:
        return Reader(self.raw(key), self.key_path(key), self.problems)

    def items(self, key: str) -> Iterator[tuple[str, Any]]:
        """(path, item) for each element of a list-valued key."""
        value = self.raw(key, _MISSING)
        if value is _MISSING or value is None:
            return
        if not isinstance(value, list):
            self.error(key, f"expected a list, got {describe(value)}")
            return
        for index, item in enumerate(value):
            yield f"{self.key_path(key)}[{index}]", item

    def strings(self, key: str) -> tuple[str, ...]:
        out: list[str] = []
        for path, item in self.items(key):
            if isinstance(item, str):
                out.append(item)
            else:
                self.problems.error(path, f"expected a string, got {describe(item)}{yaml_typed_hint(item)}")
        return tuple(out)

    def string_map(self, key: str) -> dict[str, str]:
        value = self.raw(key, _MISSING)
        if value is _MISSING or value is None:
            return {}
        if not isinstance(value, Mapping):
            self.error(key, f"expected an object of strings, got {describe(value)}")
            return {}
        out: dict[str, str] = {}
        for k, v in value.items():
            if isinstance(v, bool) or not isinstance(v, (str, int)):
                self.problems.error(f"{self.key_path(key)}.{k}", f"expected a string, got {describe(v)}")
            else:
                out[str(k)] = str(v)
        return out


class Secret:
    """A secret config value. Its text never appears in repr, logs or error messages."""

    __slots__ = ("_value", "key")

    def __init__(self, key: str, value: str) -> None:
        self.key = key
        self._value = value

    @property
    def value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.key!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and (self.key, self._value) == (other.key, other._value)

    def __hash__(self) -> int:
        return hash(self.key)


def secret_command(key: str, example: str = "<value>") -> str:
    return f"pulumi config set --secret {NAMESPACE}:{key} {example}"


K = TypeVar("K")
V = TypeVar("V")


class FrozenMap(Mapping[K, V]):
    """A read-only, hashable mapping for frozen config objects (a frozen dataclass with a plain
    dict field cannot be hashed, and its contents could still be changed)."""

    __slots__ = ("_data", "_key")

    def __init__(self, items: Mapping[K, V] | None = None) -> None:
        self._data: dict[K, V] = dict(items or {})
        self._key = tuple(sorted(self._data.items(), key=lambda kv: repr(kv[0])))

    def __getitem__(self, key: K) -> V:
        return self._data[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(self._data) == dict(other)

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"
