"""The static shell text of every K3s script, read from ``components/k3s/sh/*.sh`` (package data).

Each file is real shell that editors and ``shellcheck`` read directly: a header of comments
(a ``# shellcheck shell=bash`` directive and a description) up to a ``# ---`` line, which is
not rendered, then the text that `scripts.assemble` places after the values block. No value
is ever interpolated into these files; they refer only to ``"$NAME"``.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

HEADER_END = "\n# ---\n"


@cache
def shell_text(name: str) -> str:
    """The rendered part of ``sh/<name>`` (everything after its header)."""
    text = resources.files("components.k3s").joinpath("sh", name).read_text(encoding="utf-8")
    _header, sep, body = text.partition(HEADER_END)
    if not sep:
        raise ValueError(f"components/k3s/sh/{name} has no '# ---' line ending its header")
    return body
