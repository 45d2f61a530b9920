"""Kubernetes' own syntax rules for label keys and values and for taints, as the API server applies them.

Mirrors ``k8s.io/apimachinery/pkg/util/validation`` (``IsQualifiedName``, ``IsValidLabelValue``)
and the core API's taint validation (key a qualified name, value a label value, one of three
effects, no two taints with the same key and effect). Every function returns a message that
echoes the wrong value, or None; K3s node labels and taints, and Cleura worker groups, use them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def _quote(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def label_key_problem(key: object, what: str = "label key") -> str | None:
    """Why `key` is not a qualified name (``[prefix/]name``), or None."""
    if not isinstance(key, str):
        return f"{_quote(key)} is not a valid {what}: not a string"
    prefix, slash, name = key.rpartition("/")
    if key.count("/") > 1:
        return (f"{_quote(key)} is not a valid {what}: more than one '/' (expected [prefix/]name, "
                "e.g. example.com/role)")
    if slash and not prefix:
        return f"{_quote(key)} is not a valid {what}: empty prefix before '/'"
    if slash and (len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix)):
        return (f"{_quote(key)} is not a valid {what}: prefix {prefix!r} must be a lowercase DNS subdomain of at "
                "most 253 characters (e.g. example.com)")
    if not name:
        return f"{_quote(key)} is not a valid {what}: empty name"
    if len(name) > 63:
        return f"{_quote(key)} is not a valid {what}: the name part has {len(name)} characters (at most 63)"
    if not _NAME.fullmatch(name):
        return (f"{_quote(key)} is not a valid {what}: the name part {name!r} must start and end with a letter "
                "or digit and contain only letters, digits, '-', '_' and '.'")
    return None


def label_value_problem(value: object, what: str = "label value") -> str | None:
    """Why `value` is not a valid label value (at most 63 of ``[A-Za-z0-9-_.]``, alphanumeric ends), or None."""
    if not isinstance(value, str):
        return f"{_quote(value)} is not a valid {what}: not a string"
    if len(value) > 63:
        return f"{_quote(value)} is not a valid {what}: {len(value)} characters (at most 63)"
    if not _VALUE.fullmatch(value):
        return (f"{_quote(value)} is not a valid {what}: must be empty or start and end with a letter or digit, "
                "with only letters, digits, '-', '_' and '.' between")
    return None


def taint_problem(key: object, value: object, effect: object) -> str | None:
    """Why (key, value, effect) is not a valid taint, or None."""
    problem = label_key_problem(key, "taint key")
    if problem:
        return problem
    if value not in (None, ""):
        problem = label_value_problem(value, "taint value")
        if problem:
            return problem
    if effect not in TAINT_EFFECTS:
        close = next((e for e in TAINT_EFFECTS if isinstance(effect, str) and e.lower() == effect.lower()), None)
        hint = f"; did you mean '{close}'?" if close else ""
        return f"{_quote(effect)} is not a valid taint effect: not one of {', '.join(TAINT_EFFECTS)}{hint}"
    return None


def parse_taint(text: object) -> tuple[tuple[str, str, str] | None, str | None]:
    """``key[=value]:Effect`` (the kubelet/K3s ``--node-taint`` form) -> ((key, value, effect), None) or (None, why)."""
    if not isinstance(text, str):
        return None, f"{_quote(text)} is not a taint: not a string (expected key[=value]:Effect)"
    body, colon, effect = text.rpartition(":")
    if not colon:
        return None, (f"{_quote(text)} is not a taint: no effect (expected key[=value]:Effect, Effect one of "
                      f"{', '.join(TAINT_EFFECTS)})")
    key, _, value = body.partition("=")
    problem = taint_problem(key, value, effect)
    if problem:
        return None, f"{_quote(text)} is not a taint: {problem}"
    return (key, value, effect), None


def duplicate_taints(taints: Iterable[tuple[str, str]]) -> list[tuple[int, int, tuple[str, str]]]:
    """(index, first index, (key, effect)) for each taint repeating an earlier key and effect."""
    seen: dict[tuple[str, str], int] = {}
    out = []
    for i, pair in enumerate(taints):
        if pair in seen:
            out.append((i, seen[pair], pair))
        else:
            seen[pair] = i
    return out
