"""Tell drift from an error after `pulumi preview --refresh --expect-no-changes --json`.

    pulumi preview --stack S --refresh --expect-no-changes --non-interactive --json > drift.json; rc=$?
    python -m components.delivery.drift --stack S --exit-code $rc --json drift.json --report drift-report.json

`preview --refresh` reads the real state of every resource and diffs the program against it
without writing state (`pulumi refresh` would accept the drift into state and hide it). Newer
CLIs exit 7 when `--expect-no-changes` finds changes; older ones exit 255 for drift and for
errors alike, so the JSON decides: planned changes and no error diagnostics mean drift.

Exit status: 0 no drift, 3 drift (the changed resources are printed and written to
`--report`), 1 error (the preview failed; its error diagnostics are printed).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.delivery.preview import redact

EXIT_CLEAN, EXIT_ERROR, EXIT_DRIFT = 0, 1, 3
CLI_EXIT_CHANGES = 7  # `--expect-no-changes` found changes (newer CLIs)
UNCHANGED_OPS = frozenset({"same", "read", "refresh"})


@dataclass(frozen=True)
class Change:
    op: str
    type: str
    name: str
    properties: tuple[str, ...] = ()

    def line(self) -> str:
        props = f" ({', '.join(self.properties)})" if self.properties else ""
        return f"{self.op:8} {self.type} {self.name}{props}"


@dataclass(frozen=True)
class Verdict:
    status: str  # clean | drift | error
    changes: tuple[Change, ...] = ()
    errors: tuple[str, ...] = field(default_factory=tuple)

    @property
    def exit_code(self) -> int:
        return {"clean": EXIT_CLEAN, "drift": EXIT_DRIFT}.get(self.status, EXIT_ERROR)


def parse_digest(text: str) -> Mapping[str, Any] | None:
    """The JSON document, tolerating text the CLI printed around it (older CLIs add an error line)."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        return None
    try:
        data = json.loads(text[start:end + 1])
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def changes(digest: Mapping[str, Any]) -> tuple[Change, ...]:
    found = []
    for step in digest.get("steps") or []:
        op = str(step.get("op", ""))
        if op in UNCHANGED_OPS or op in ("create-replacement", "delete-replaced", "discard-replaced"):
            continue
        urn = str(step.get("urn", ""))
        parts = urn.split("::")
        rtype = parts[2].rsplit("$", 1)[-1] if len(parts) >= 4 else "?"
        name = parts[3] if len(parts) >= 4 else urn
        props = tuple(str(p) for p in (step.get("diffReasons") or step.get("replaceReasons") or []))
        found.append(Change(op, rtype, name, props))
    return tuple(found)


def classify(exit_code: int, output: str) -> Verdict:
    """Pure: the verdict from the CLI's exit status and its `--json` output."""
    digest = parse_digest(output)
    errors = tuple(str(d.get("message", "")).strip() for d in (digest or {}).get("diagnostics") or []
                   if str(d.get("severity")) == "error")
    found = changes(digest) if digest else ()
    summary = (digest or {}).get("changeSummary") or {}
    summary_changes = sum(int(v) for k, v in summary.items() if k not in UNCHANGED_OPS)
    if exit_code == 0:
        return Verdict("clean") if not found and not summary_changes else Verdict("drift", found)
    if exit_code == CLI_EXIT_CHANGES:
        return Verdict("drift", found)
    if digest is not None and not errors and (found or summary_changes):
        return Verdict("drift", found)
    if not errors:
        errors = (f"`pulumi preview` exited {exit_code} without a change list"
                  + ("" if digest else " or any JSON output") + "; see the job log",)
    return Verdict("error", found, errors)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--exit-code", type=int, required=True, help="the preview's exit status")
    parser.add_argument("--json", required=True, help="the preview's --json output")
    parser.add_argument("--report", help="write the verdict and the changed resources here (JSON)")
    args = parser.parse_args(argv)
    path = Path(args.json)
    verdict = classify(args.exit_code, path.read_text(errors="replace") if path.is_file() else "")
    if args.report:
        Path(args.report).write_text(json.dumps({
            "stack": args.stack, "status": verdict.status,
            "changes": [{"op": c.op, "type": c.type, "name": c.name, "properties": list(c.properties)}
                        for c in verdict.changes],
            "errors": [redact(e) for e in verdict.errors]}, indent=2) + "\n")
    if verdict.status == "clean":
        print(f"drift {args.stack}: none; the stack matches the program")
    elif verdict.status == "drift":
        print(f"drift {args.stack}: {len(verdict.changes)} resource(s) differ from the program "
              "(a change made outside Pulumi, e.g. `kubectl apply` or an edited shoot):")
        for change in verdict.changes:
            print(f"  {change.line()}")
        print("Fix: revert the out-of-band change, or bring it into the program, then `pulumi up` this stack.")
    else:
        print(f"drift {args.stack}: the check itself failed, which says nothing about drift:", file=sys.stderr)
        for error in verdict.errors:
            print(f"  {redact(error)}", file=sys.stderr)
    return verdict.exit_code


if __name__ == "__main__":
    sys.exit(main())
