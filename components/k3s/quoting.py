"""The one shell-quoting helper every rendered K3s script goes through.

Scripts are built as a *header* of variable assignments followed by a *static body*
(see `scripts.py`): every value that came from configuration appears exactly once, on
the right-hand side of an assignment rendered by `assign()`, quoted by `sh_quote()`. The
body refers only to ``"$VARIABLES"``, so no configuration text is ever parsed as shell.

File contents that travel inside a script (registries.yaml, the kube-vip manifest) are
values like any other: one single-quoted word, newlines included.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_SAFE = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")
_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
# The characters bash still interprets inside "...", and its internal quoting bytes \x01 (CTLESC)
# and \x7f (CTLNUL), which bash 5.2 corrupts inside a double-quoted word of an array assignment.
_DOUBLE_SPECIAL = re.compile(r"[$`\\\"!\x01\x7f]")


class UnsafeValueError(ValueError):
    """A value that cannot be represented safely in a shell script (e.g. contains NUL)."""


def sh_quote(value: str | int) -> str:
    """Quote `value` as one shell word that expands to exactly `value`.

    Plain words stay readable (``192.0.2.51``); text with single quotes but none of
    ``$ ` \\ " !`` is double-quoted; anything else is single-quoted, with embedded single
    quotes written as ``'"'"'``. Newlines are fine inside either quoting.
    NUL cannot be passed to a process at all and is rejected.
    """
    if isinstance(value, bool):
        raise UnsafeValueError("booleans must be rendered explicitly as 'true'/'false'")
    text = str(value)
    if "\x00" in text:
        raise UnsafeValueError("a NUL byte cannot appear in a shell value")
    if text and _SAFE.fullmatch(text) and not text.startswith(("-", "=")):
        return text
    if "'" in text and not _DOUBLE_SPECIAL.search(text):
        return '"' + text + '"'  # reads better than '"'"' and nothing in it is special to bash
    return "'" + text.replace("'", "'\"'\"'") + "'"


def assign(name: str, value: str | int | Sequence[str]) -> str:
    """``NAME=<quoted>`` (or ``NAME=(<quoted> ...)`` for a sequence): one header line."""
    if not _NAME.fullmatch(name):
        raise UnsafeValueError(f"{name!r} is not an upper-case shell variable name")
    if isinstance(value, (str, int)):
        return f"{name}={sh_quote(value)}"
    return f"{name}=(" + " ".join(sh_quote(v) for v in value) + ")"
