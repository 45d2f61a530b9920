"""Collecting configuration problems instead of failing on the first one.

Every parser in the project reports into one `Problems` so a user with ten mistakes sees ten
messages in one run, each naming the config key path (``platform:nodes[3].address``) and
what is expected, before a single resource is registered.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Problems:
    """Errors (fatal) and warnings (printed, not fatal), each prefixed with its key path."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def error(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}")

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(f"{path}: {message}")

    def raise_if_any(self) -> None:
        if self.errors:
            raise ConfigError(self.errors, self.warnings)


class ConfigError(Exception):
    """Raised once, with every problem found; `__main__.py` prints it and exits non-zero."""

    def __init__(self, errors: list[str], warnings: list[str] | None = None) -> None:
        self.errors = list(errors)
        self.warnings = list(warnings or [])
        super().__init__(self.render())

    def render(self) -> str:
        lines = [f"{len(self.errors)} configuration error(s):"]
        lines += [f"  - {e}" for e in self.errors]
        if self.warnings:
            lines.append(f"{len(self.warnings)} warning(s):")
            lines += [f"  - {w}" for w in self.warnings]
        return "\n".join(lines)
