"""What a merge-request preview leaves behind: the plan report, the diff artifact, the MR note.

    pulumi preview --diff --suppress-outputs ... 2>&1 | tee preview.txt
    python -m components.delivery.preview --stack cleura --diff preview.txt --exit-code $rc \
        --report plan.json --note note.md [--post]

* `--report`: GitLab's Terraform report (`artifacts:reports:terraform`): `{"create", "update",
  "delete"}` counts, so the merge-request widget shows the change without any token. A replace
  counts as one create and one delete, as `gitlab-terraform` counts a Terraform replace.
  Counts come from `--json` output when given, else from the `Resources:` summary the CLI prints.
* `--note`: the note body: a marker line (`<!-- platform-preview stack=<stack> -->`), the
  summary first, then the diff in a collapsible block, cut from the middle when too long, with
  the stack's outputs section removed (outputs are never posted, even non-secret ones).
* `--post`: create the note, or edit the one carrying this stack's marker in place (one note
  per stack, not one per push); needs `GITLAB_API_TOKEN` (a project access token with `api`
  scope; the job token cannot write notes). Without it the step says so and skips.

Values of the secret CI variables (`PULUMI_CONFIG_PASSPHRASE`, Cleura credentials, the token)
are replaced by `[secret]` in everything written or posted, in case a tool ever prints one.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SECRET_ENV = ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_ACCESS_TOKEN", "CLEURA_API_TOKEN", "CLEURA_API_PASSWORD",
              "GITLAB_API_TOKEN", "AWS_SECRET_ACCESS_KEY", "VAULT_TOKEN")
NOTE_LIMIT = 60_000  # characters of diff in a note; GitLab accepts 1,000,000 but nobody reads that far
MARKER = "<!-- platform-preview stack={stack} -->"
SUMMARY_RE = re.compile(r"^\s*(\+-|[+~-])\s*(\d+)\s+to\s+(create|update|delete|replace)\b", re.MULTILINE)


def redact(text: str, env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    for name in SECRET_ENV:
        value = env.get(name, "")
        if len(value) >= 4:
            text = text.replace(value, "[secret]")
    return text


# --- counts -------------------------------------------------------------------------------------


def counts_from_digest(digest: Mapping[str, Any]) -> dict[str, int]:
    """create/update/delete from `pulumi preview --json` (`changeSummary`, else the steps)."""
    summary = digest.get("changeSummary")
    ops: dict[str, int] = {}
    if isinstance(summary, Mapping) and summary:
        ops = {str(k): int(v) for k, v in summary.items()}
    else:
        for step in digest.get("steps") or []:
            op = str(step.get("op"))
            ops[op] = ops.get(op, 0) + 1
    # A replacement appears once as `replace` in the summary; in steps as create-/delete-replaced too.
    replaced = ops.get("replace", 0)
    create = sum(ops.get(o, 0) for o in ("create", "import")) + replaced
    delete = sum(ops.get(o, 0) for o in ("delete", "discard")) + replaced
    return {"create": create, "update": ops.get("update", 0), "delete": delete}


def counts_from_text(text: str) -> dict[str, int] | None:
    """The same counts from the `Resources:` block of the human output; None when there is none."""
    block = text[text.rfind("Resources:"):] if "Resources:" in text else ""
    if not block:
        return None
    found = {kind: int(n) for _, n, kind in SUMMARY_RE.findall(block)}
    replaced = found.get("replace", 0)
    return {"create": found.get("create", 0) + replaced, "update": found.get("update", 0),
            "delete": found.get("delete", 0) + replaced}


def plan_report(counts: Mapping[str, int]) -> dict[str, int]:
    """The document GitLab reads from `artifacts:reports:terraform`.

    GitLab's parser (`Gitlab::Ci::Parsers::Terraform::Tfplan`) accepts exactly the keys
    `create`, `update`, `delete`, in this order, and adds `job_path` itself; any other key
    makes the widget show "invalid report".
    """
    return {"create": int(counts["create"]), "update": int(counts["update"]), "delete": int(counts["delete"])}


# --- the note -----------------------------------------------------------------------------------


def strip_outputs(diff: str) -> str:
    """Drop the `Outputs:` section (it runs until the `Resources:` summary or the end)."""
    return re.sub(r"(?ms)^Outputs:\n.*?(?=^Resources:|\Z)", "Outputs: (not shown)\n\n", diff)


def cut_middle(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head, tail = limit * 2 // 3, limit // 3
    head_text = text[:head].rsplit("\n", 1)[0]
    tail_text = text[-tail:].split("\n", 1)[-1]
    dropped = text.count("\n") - head_text.count("\n") - tail_text.count("\n")
    return f"{head_text}\n\n... {dropped} lines cut from the middle; the whole diff is in the job's artifacts ...\n\n" \
           f"{tail_text}"


@dataclass(frozen=True)
class NoteContext:
    stack: str
    exit_code: int = 0
    commit: str = ""
    job_url: str = ""


def note_body(ctx: NoteContext, diff: str, counts: Mapping[str, int] | None, limit: int = NOTE_LIMIT) -> str:
    marker = MARKER.format(stack=ctx.stack)
    if ctx.exit_code != 0:
        status = f":x: preview **failed** (exit {ctx.exit_code}): see the diff and the job log"
    elif counts and not any(counts.values()):
        status = ":white_check_mark: no changes"
    else:
        status = ":eyes: changes"
    if counts:
        summary = f"**{counts['create']} to create, {counts['update']} to update, {counts['delete']} to delete**"
    else:
        summary = "no change summary (the preview did not finish)"
    where = " · ".join(p for p in (f"commit `{ctx.commit[:12]}`" if ctx.commit else "",
                                   f"[job]({ctx.job_url})" if ctx.job_url else "") if p)
    body = cut_middle(strip_outputs(diff).replace("```", "`\u200b``"), limit)
    head = f"{marker}\n### `pulumi preview` of stack `{ctx.stack}`\n\n{status}: {summary}"
    if where:
        head += f" · {where}"
    return f"{head}\n\n<details><summary>Diff</summary>\n\n```diff\n{body.rstrip()}\n```\n\n</details>\n"


# --- GitLab ------------------------------------------------------------------------------------


Http = Callable[[str, str, dict[str, str], bytes | None], tuple[int, bytes]]


def urllib_http(method: str, url: str, headers: dict[str, str], body: bytes | None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers)  # noqa: S310 - http(s) API URL
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class GitLabError(Exception):
    pass


def upsert_note(api_url: str, project_id: str, mr_iid: str, token: str, stack: str, body: str,
                http: Http = urllib_http) -> tuple[str, int]:
    """Edit the note carrying this stack's marker, else create one; returns (action, note id)."""
    base = f"{api_url.rstrip('/')}/projects/{urllib.parse.quote(project_id, safe='')}/merge_requests/{mr_iid}/notes"
    headers = {"PRIVATE-TOKEN": token, "Content-Type": "application/json", "Accept": "application/json"}
    marker = MARKER.format(stack=stack)
    page = 1
    while True:
        status, raw = http("GET", f"{base}?per_page=100&page={page}&sort=asc", headers, None)
        if status != 200:
            raise GitLabError(f"listing notes: HTTP {status}: {raw[:200].decode('utf-8', 'replace')}")
        notes = json.loads(raw or b"[]")
        for note in notes:
            if isinstance(note, dict) and str(note.get("body", "")).startswith(marker):
                status, raw = http("PUT", f"{base}/{note['id']}", headers, json.dumps({"body": body}).encode())
                if status != 200:
                    raise GitLabError(f"editing note {note['id']}: HTTP {status}")
                return "edited", int(note["id"])
        if len(notes) < 100:
            break
        page += 1
    status, raw = http("POST", base, headers, json.dumps({"body": body}).encode())
    if status not in (200, 201):
        raise GitLabError(f"creating note: HTTP {status}: {raw[:200].decode('utf-8', 'replace')}")
    return "created", int(json.loads(raw)["id"])


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None, http: Http = urllib_http) -> int:
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--diff", required=True, help="the output of `pulumi preview --diff`")
    parser.add_argument("--json", help="the output of `pulumi preview --json` (counts; optional)")
    parser.add_argument("--exit-code", type=int, default=0, help="the preview's exit status")
    parser.add_argument("--report", help="write the Terraform-style plan report here")
    parser.add_argument("--note", help="write the merge-request note body here")
    parser.add_argument("--post", action="store_true", help="post or edit the note (needs GITLAB_API_TOKEN)")
    parser.add_argument("--limit", type=int, default=NOTE_LIMIT, help="diff characters in the note")
    args = parser.parse_args(argv)
    diff = redact(Path(args.diff).read_text(errors="replace"), env)
    counts = None
    if args.json and Path(args.json).is_file():
        try:
            counts = counts_from_digest(json.loads(Path(args.json).read_text()))
        except (json.JSONDecodeError, AttributeError, TypeError, ValueError):
            counts = None
    counts = counts or counts_from_text(diff)
    if args.report:
        Path(args.report).write_text(json.dumps(plan_report(counts or {"create": 0, "update": 0, "delete": 0})) + "\n")
    ctx = NoteContext(args.stack, args.exit_code, env.get("CI_COMMIT_SHA", ""), env.get("CI_JOB_URL", ""))
    body = redact(note_body(ctx, diff, counts, args.limit), env)
    if args.note:
        Path(args.note).write_text(body)
    print(f"preview {args.stack}: " + (", ".join(f"{v} to {k}" for k, v in counts.items()) if counts
                                       else "no summary"))
    if not args.post:
        return 0
    token, iid = env.get("GITLAB_API_TOKEN", ""), env.get("CI_MERGE_REQUEST_IID", "")
    if not token or not iid:
        print("note: not posted (set GITLAB_API_TOKEN, a project access token with api scope, on a "
              "merge-request pipeline); the plan report still shows the counts in the widget")
        return 0
    try:
        action, note_id = upsert_note(env.get("CI_API_V4_URL", "https://gitlab.com/api/v4"),
                                      env.get("CI_PROJECT_ID", ""), iid, token, args.stack, body, http)
    except (GitLabError, OSError, ValueError) as exc:
        # A note is a convenience: never fail the preview for it, but say why.
        print(f"note: not posted: {redact(str(exc), env)}", file=sys.stderr)
        return 0
    print(f"note: {action} note {note_id} on !{iid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
