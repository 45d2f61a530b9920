"""Delete expired review shoots whose GitLab stop job never ran (dry run unless `--apply`).

    python -m components.delivery.reaper --region Sto2 --project-id <id> [--apply]
    python -m components.delivery.reaper --stack cleura [--prefix rv-] [--now 2026-12-02T07:00:00Z]

A shoot is selected only when all three hold:

1. its name starts with the review prefix (`--prefix`, default the review command's);
2. a worker group carries both markers the review command sets, `review.platform/mr` and
   `review.platform/expires-at` (the Cleura API keeps no other metadata on a shoot);
3. `expires-at` is an RFC 3339 time in the past (`--now` overrides the clock).

A shoot without the markers is never touched, whatever its name. Every shoot gets one line
with the decision and the reason. With `--apply` the selected shoots are deleted one by one
and each is waited for until the API answers 404; then the matching review stack
(`review-<iid>`), if it still exists in the backend, is removed with `pulumi stack rm`. The
exit status is 1 when any delete (or stack removal) failed, 2 on bad arguments or no access.

Credentials come from the environment exactly as for the provider (`CLEURA_API_USERNAME` +
`CLEURA_API_TOKEN`/`CLEURA_API_PASSWORD`, `CLEURA_API_URL`, else the `cleura` CLI login), and
every call goes through the provider's own client (`components.gardener.client`), so 429 and
5xx are retried the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from components.delivery.review_stack import (
    ANNOTATION_EXPIRES,
    ANNOTATION_MR,
    DEFAULT_PREFIX,
    PROJECT_ROOT,
    ReviewStackError,
    parse_rfc3339,
    read_stack_file,
    stack_name,
)
from components.gardener.client import ApiError, CleuraClient, CredentialsError, client_from_env
from components.gardener.operations import Location, ProviderError, ShootOps

DEFAULT_DELETE_TIMEOUT = 3600.0


@dataclass(frozen=True)
class Decision:
    name: str
    delete: bool
    reason: str
    iid: str | None = None


def markers(shoot: Mapping[str, Any]) -> dict[str, str]:
    """The review annotations of the first worker group that carries both (else what there is)."""
    found: dict[str, str] = {}
    workers = (shoot.get("shoot_provider") or {}).get("workers") or []
    for worker in workers if isinstance(workers, list) else []:
        annotations = worker.get("annotations") if isinstance(worker, Mapping) else None
        values = {str(kv.get("key")): str(kv.get("value")) for kv in annotations or []
                  if isinstance(kv, Mapping) and kv.get("key") in (ANNOTATION_MR, ANNOTATION_EXPIRES)}
        if len(values) == 2:
            return values
        found = found or values
    return found


def decide(shoot: Mapping[str, Any], *, prefix: str, now: datetime) -> Decision:
    """Pure: whether the reaper deletes this shoot, and why (or why not)."""
    name = str(shoot.get("name") or "")
    if not name.startswith(prefix):
        return Decision(name, False, f"name does not start with the review prefix {prefix!r}")
    found = markers(shoot)
    missing = [a for a in (ANNOTATION_MR, ANNOTATION_EXPIRES) if a not in found]
    if missing:
        return Decision(name, False, f"not marked as a review shoot (no {' and no '.join(missing)} annotation)")
    iid = found[ANNOTATION_MR]
    try:
        expires = parse_rfc3339(found[ANNOTATION_EXPIRES])
    except ReviewStackError:
        return Decision(name, False, f"{ANNOTATION_EXPIRES} {found[ANNOTATION_EXPIRES]!r} is not an RFC 3339 time",
                        iid)
    if (shoot.get("last_operation") or {}).get("type") == "Delete":
        return Decision(name, False, "already being deleted", iid)
    if expires > now:
        return Decision(name, False, f"merge request !{iid}: expires at {found[ANNOTATION_EXPIRES]}", iid)
    return Decision(name, True, f"merge request !{iid}: expired at {found[ANNOTATION_EXPIRES]}", iid)


def list_shoots(client: CleuraClient, loc: Location) -> list[dict[str, Any]]:
    data, _ = client.get_json(loc.shoots())
    return [s for s in data if isinstance(s, dict)] if isinstance(data, list) else []


# --- review stacks in the backend -----------------------------------------------------------------


StackRemover = Callable[[str], str | None]


def pulumi_stack_remover(root: Path, env: Mapping[str, str] | None = None) -> StackRemover:
    """Removes `stack` from the backend the environment points at; returns an error or None."""
    env = dict(os.environ if env is None else env)
    # The review stack's file is not in git: destroy/remove must use the state's secrets manager.
    env.setdefault("PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER", "true")

    def remove(stack: str) -> str | None:
        exe = shutil.which("pulumi", path=env.get("PATH"))
        if exe is None:
            return "the Pulumi CLI is not installed; remove it with `pulumi stack rm --force --yes " + stack + "`"
        listing = subprocess.run([exe, "stack", "ls", "--json", "--non-interactive"], cwd=root, env=env,
                                 capture_output=True, text=True, check=False)
        if listing.returncode != 0:
            return f"`pulumi stack ls` exited {listing.returncode}: {listing.stderr.strip()[:300]}"
        try:
            names = {str(s.get("name")).rsplit("/", 1)[-1] for s in json.loads(listing.stdout or "[]")}
        except (json.JSONDecodeError, AttributeError):
            return "`pulumi stack ls --json` printed no JSON list"
        if stack not in names:
            return None
        # --force: the shoot is gone already; --preserve-config keeps no file we never committed.
        proc = subprocess.run([exe, "stack", "rm", "--force", "--yes", "--non-interactive", stack], cwd=root,
                              env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            return f"`pulumi stack rm {stack}` exited {proc.returncode}: {proc.stderr.strip()[:300]}"
        (root / f"Pulumi.{stack}.yaml").unlink(missing_ok=True)
        return None

    return remove


# --- the run ------------------------------------------------------------------------------------


def reap(client: CleuraClient, loc: Location, *, prefix: str, now: datetime, apply: bool,
         remove_stack: StackRemover | None, out: Callable[[str], None] = print,
         timeout: float = DEFAULT_DELETE_TIMEOUT, ops: ShootOps | None = None) -> int:
    """One pass over the location's shoots; returns the exit status."""
    shoots = sorted(list_shoots(client, loc), key=lambda s: str(s.get("name")))
    decisions = [decide(s, prefix=prefix, now=now) for s in shoots]
    where = f"{loc.cloud}/{loc.region}/{loc.project_id}"
    out(f"reaper: {len(shoots)} shoot(s) in {where}, {sum(d.delete for d in decisions)} selected; "
        f"now {now.isoformat().replace('+00:00', 'Z')}{'' if apply else '; dry run (pass --apply to delete)'}")
    failures = 0
    ops = ops or ShootOps(client, loc)
    for d in decisions:
        if not d.delete:
            out(f"keep    {d.name}: {d.reason}")
            continue
        if not apply:
            out(f"select  {d.name}: {d.reason} (dry run: not deleted)")
            continue
        out(f"delete  {d.name}: {d.reason}")
        try:
            ops.delete(d.name, timeout=timeout)
        except (ProviderError, ApiError) as exc:
            failures += 1
            out(f"FAILED  {d.name}: {exc}")
            continue
        out(f"deleted {d.name}")
        if remove_stack is not None and d.iid is not None and d.name == f"{prefix}{d.iid}":
            error = remove_stack(stack_name(int(d.iid))) if d.iid.isdigit() else None
            if error:
                failures += 1
                out(f"FAILED  stack {stack_name(int(d.iid))}: {error}")
    return 1 if failures else 0


def location_from_stack(stack: str, root: Path) -> tuple[str, str, str]:
    config = read_stack_file(root / f"Pulumi.{stack}.yaml").get("config") or {}
    cleura = config.get("platform:cleura")
    if not isinstance(cleura, Mapping) or not cleura.get("region") or not cleura.get("projectId"):
        raise ReviewStackError(f"Pulumi.{stack}.yaml has no platform:cleura.region/projectId to take the shoots from")
    return str(cleura.get("cloud") or "public"), str(cleura["region"]), str(cleura["projectId"])


def main(argv: Iterable[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--region", default=env.get("CLEURA_REGION"), help="region tag, e.g. Sto2")
    parser.add_argument("--project-id", default=env.get("CLEURA_PROJECT_ID"), help="OpenStack project id")
    parser.add_argument("--cloud", default=env.get("CLEURA_CLOUD") or "public", help="cloud (default: public)")
    parser.add_argument("--stack", help="take cloud/region/project from Pulumi.<stack>.yaml")
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help="review shoot name prefix (default: %(default)s)")
    parser.add_argument("--now", help="RFC 3339 time to judge expiry against (default: the clock)")
    parser.add_argument("--apply", action="store_true", help="delete the selected shoots (default: dry run)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_DELETE_TIMEOUT,
                        help="seconds to wait for each deletion (default: %(default)s)")
    parser.add_argument("--keep-stacks", action="store_true", help="do not remove matching review stacks")
    parser.add_argument("--root", default=str(PROJECT_ROOT), help="project directory (default: this project)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    root = Path(args.root)
    try:
        if not args.prefix:
            raise ReviewStackError("--prefix must not be empty: it is what keeps other shoots out of reach")
        cloud, region, project = args.cloud, args.region, args.project_id
        if args.stack:
            cloud, region, project = location_from_stack(args.stack, root)
        if not region or not project:
            raise ReviewStackError("no location: pass --region and --project-id (or CLEURA_REGION and "
                                   "CLEURA_PROJECT_ID), or --stack <name>")
        now = parse_rfc3339(args.now) if args.now else datetime.now(UTC)
        client = client_from_env(cloud, env)
    except (ReviewStackError, CredentialsError) as exc:
        print(f"reaper: {exc}", file=sys.stderr)
        return 2
    remover = None if args.keep_stacks else pulumi_stack_remover(root, env)
    try:
        return reap(client, Location(cloud, region, project), prefix=args.prefix, now=now, apply=args.apply,
                    remove_stack=remover, timeout=args.timeout)
    except ApiError as exc:
        print(f"reaper: listing shoots failed: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
