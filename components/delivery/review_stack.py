"""Create or update the review stack of one merge request from a template stack file.

    python -m components.delivery.review_stack <iid> [--template cleura] [--ttl 2d] [--dotenv review.env]

writes `Pulumi.review-<iid>.yaml`: the template's `platform:` config with a shoot name that is
valid (1-15 of `[a-z0-9-]`) and unique per merge request, one small worker group, no HA
control plane, and the review markers as worker-group annotations (the only metadata the
Cleura API keeps on a shoot): `review.platform/mr` and `review.platform/expires-at`. The
reaper (`components.delivery.reaper`) selects shoots by exactly these markers.

Running it again for the same merge request rewrites the same file (only `expires-at` moves
with `--now`), keeps what Pulumi added to it (`encryptionsalt`, `secretsprovider`), and never
changes the shoot name, so a push updates the shoot in place.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PREFIX = "rv-"
DEFAULT_TEMPLATE = "cleura"
REVIEW_TEMPLATE = "review"  # Pulumi.review.yaml, when present, is the template by default
DEFAULT_TTL = "2d"
DEFAULT_MACHINE_TYPE = "b.2c4gb"
MAX_IID = 10**7
SHOOT_NAME_MAX = 15
ANNOTATION_MR = "review.platform/mr"
ANNOTATION_EXPIRES = "review.platform/expires-at"
STACK_PREFIX = "review-"
# Hibernate outside working hours (UTC): asleep from 19:00 on weekdays, awake at 07:00 on
# weekdays, so a Friday evening hibernation lasts until Monday morning.
OFFICE_HOURS_HIBERNATION = ({"start": "0 19 * * 1-5", "end": "0 7 * * 1-5"},)
PREFIX_RE = re.compile(r"^[a-z][a-z0-9-]*$")
TTL_RE = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?$")
KEPT_FILE_KEYS = ("secretsprovider", "encryptedkey", "encryptionsalt")


class ReviewStackError(Exception):
    """A bad argument or template; the message names it and the fix."""


@dataclass(frozen=True)
class ReviewStack:
    iid: int
    stack: str
    shoot: str
    expires_at: str
    path: Path


def shoot_name(iid: int, prefix: str = DEFAULT_PREFIX) -> str:
    """`<prefix><iid>`: unique per merge request, a valid shoot name for every iid 1..10^7."""
    if not isinstance(iid, int) or isinstance(iid, bool) or not 1 <= iid <= MAX_IID:
        raise ReviewStackError(f"merge request iid {iid!r} is out of range: expected 1..{MAX_IID}")
    check_prefix(prefix)
    return f"{prefix}{iid}"


def check_prefix(prefix: str) -> None:
    room = SHOOT_NAME_MAX - len(str(MAX_IID))
    if not PREFIX_RE.match(prefix) or len(prefix) > room:
        raise ReviewStackError(
            f"--prefix {prefix!r} is invalid: expected 1-{room} of [a-z0-9-] starting with a letter, so that "
            f"'<prefix><iid>' stays a valid shoot name (at most {SHOOT_NAME_MAX} characters) for every iid "
            f"up to {MAX_IID}; e.g. --prefix {DEFAULT_PREFIX}")


def stack_name(iid: int) -> str:
    return f"{STACK_PREFIX}{iid}"


def parse_ttl(text: str) -> timedelta:
    """`2d`, `36h`, `1d12h`, `90m` (GitLab's `auto_stop_in` accepts the same words spelled out)."""
    match = TTL_RE.match(text.strip())
    if not text.strip() or match is None or not any(match.groups()):
        raise ReviewStackError(f"--ttl {text!r} is invalid: expected e.g. 2d, 36h, 1d12h or 90m")
    days, hours, minutes = (int(g or 0) for g in match.groups())
    ttl = timedelta(days=days, hours=hours, minutes=minutes)
    if ttl <= timedelta(0):
        raise ReviewStackError(f"--ttl {text!r} must be longer than zero")
    return ttl


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_rfc3339(text: str) -> datetime:
    """An RFC 3339 timestamp with an explicit offset (`Z` or `+hh:mm`); naive times are refused."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ReviewStackError(f"{text!r} is not an RFC 3339 timestamp (e.g. 2026-12-02T07:00:00Z)") from None
    if moment.tzinfo is None:
        raise ReviewStackError(f"{text!r} has no UTC offset; write e.g. 2026-12-02T07:00:00Z")
    return moment.astimezone(UTC)


def _key_values(items: object) -> list[dict[str, str]]:
    return [dict(i) for i in items] if isinstance(items, list) else []


def review_config(template: Mapping[str, Any], iid: int, *, expires_at: str, prefix: str = DEFAULT_PREFIX,
                  machine_type: str = DEFAULT_MACHINE_TYPE, hibernate: bool = False) -> dict[str, Any]:
    """The review stack's `config:` block from the template's (pure; the template is not changed)."""
    encrypted = sorted(k for k, v in template.items() if isinstance(v, Mapping) and "secure" in v)
    if encrypted:
        raise ReviewStackError(
            f"template holds encrypted values ({', '.join(encrypted)}): they are encrypted for the template "
            "stack and cannot be copied; give review stacks their secrets from CI variables instead")
    if template.get("platform:clusterKind") != "cleura":
        raise ReviewStackError(
            f"platform:clusterKind: {template.get('platform:clusterKind')!r} in the template; review stacks are "
            "Gardener shoots, so the template must be a stack with clusterKind: cleura (e.g. Pulumi.cleura.yaml)")
    cleura = template.get("platform:cleura")
    workers = (cleura or {}).get("shootProvider", {}).get("workers") if isinstance(cleura, Mapping) else None
    if not isinstance(workers, list) or not workers or not isinstance(workers[0], Mapping):
        raise ReviewStackError("platform:cleura.shootProvider.workers: the template has no worker group to copy")
    name = shoot_name(iid, prefix)
    config = copy.deepcopy(dict(template))
    config["platform:clusterName"] = name
    shoot = config["platform:cleura"]
    shoot["name"] = name
    shoot["enableHaControlPlane"] = False
    shoot["adopt"] = False
    if hibernate:
        shoot["hibernationSchedules"] = [dict(s) for s in OFFICE_HOURS_HIBERNATION]
    worker = copy.deepcopy(dict(workers[0]))
    worker["machine"] = {**dict(worker.get("machine") or {}), "type": machine_type}
    worker["minimum"], worker["maximum"], worker["maxSurge"] = 1, 1, 1
    worker["zones"] = list(worker.get("zones") or [])[:1] or ["nova"]
    markers = {ANNOTATION_MR: str(iid), ANNOTATION_EXPIRES: expires_at}
    kept = [kv for kv in _key_values(worker.get("annotations")) if kv.get("key") not in markers]
    worker["annotations"] = kept + [{"key": k, "value": v} for k, v in markers.items()]
    shoot["shootProvider"]["workers"] = [worker]
    return config


def read_stack_file(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ReviewStackError(f"template stack file {path} does not exist (--template <stack>)") from None
    except yaml.YAMLError as exc:
        raise ReviewStackError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("config", {}), dict):
        raise ReviewStackError(f"{path}: expected a mapping with a `config:` mapping")
    return data


def default_template(root: Path) -> str:
    """`review` when the project has a `Pulumi.review.yaml` template, else `cleura`."""
    return REVIEW_TEMPLATE if (root / f"Pulumi.{REVIEW_TEMPLATE}.yaml").is_file() else DEFAULT_TEMPLATE


def write_review_stack(iid: int, *, root: Path = PROJECT_ROOT, template: str | None = None,
                       ttl: timedelta = timedelta(days=2), now: datetime | None = None,
                       prefix: str = DEFAULT_PREFIX, machine_type: str = DEFAULT_MACHINE_TYPE,
                       hibernate: bool = False) -> ReviewStack:
    """Write (or rewrite) `Pulumi.review-<iid>.yaml` under `root`; returns what it wrote."""
    template = template or default_template(root)
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    expires_at = rfc3339(moment + ttl)
    source = read_stack_file(root / f"Pulumi.{template}.yaml")
    config = review_config(source.get("config") or {}, iid, expires_at=expires_at, prefix=prefix,
                           machine_type=machine_type, hibernate=hibernate)
    path = root / f"Pulumi.{stack_name(iid)}.yaml"
    existing = read_stack_file(path) if path.exists() else {}
    document: dict[str, Any] = {k: existing[k] for k in KEPT_FILE_KEYS if k in existing}
    document["config"] = config
    header = (f"# Review stack of merge request !{iid}, generated from Pulumi.{template}.yaml by\n"
              f"# `python -m components.delivery.review_stack {iid}`; do not edit or commit it.\n"
              f"# The shoot {config['platform:cleura']['name']} expires at {expires_at} (reaped after that).\n")
    path.write_text(header + yaml.safe_dump(document, sort_keys=True, default_flow_style=False))
    return ReviewStack(iid, stack_name(iid), config["platform:cleura"]["name"], expires_at, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("iid", help="merge request iid ($CI_MERGE_REQUEST_IID), 1..10^7")
    parser.add_argument("--template", help="template stack (default: review if Pulumi.review.yaml exists, else cleura)")
    parser.add_argument("--ttl", default=DEFAULT_TTL, help="lifetime after this run (default: %(default)s)")
    parser.add_argument("--now", help="RFC 3339 time to count the TTL from (default: the clock)")
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help="shoot name prefix (default: %(default)s)")
    parser.add_argument("--machine-type", default=DEFAULT_MACHINE_TYPE, help="worker flavor (default: %(default)s)")
    parser.add_argument("--hibernate-outside-hours", action="store_true",
                        help="hibernate 19:00-07:00 UTC on weekdays and over the weekend")
    parser.add_argument("--root", default=str(PROJECT_ROOT), help="project directory (default: this project)")
    parser.add_argument("--dotenv", help="also write REVIEW_STACK/REVIEW_SHOOT/REVIEW_EXPIRES_AT to this file")
    args = parser.parse_args(argv)
    try:
        if not args.iid.isdigit():
            raise ReviewStackError(f"merge request iid {args.iid!r} is not a number (pass $CI_MERGE_REQUEST_IID)")
        result = write_review_stack(
            int(args.iid), root=Path(args.root), template=args.template, ttl=parse_ttl(args.ttl),
            now=parse_rfc3339(args.now) if args.now else None, prefix=args.prefix,
            machine_type=args.machine_type, hibernate=args.hibernate_outside_hours)
    except ReviewStackError as exc:
        print(f"review_stack: {exc}", file=sys.stderr)
        return 2
    if args.dotenv:
        Path(args.dotenv).write_text(f"REVIEW_STACK={result.stack}\nREVIEW_SHOOT={result.shoot}\n"
                                     f"REVIEW_EXPIRES_AT={result.expires_at}\n")
    print(f"{result.path.name}: stack {result.stack}, shoot {result.shoot}, expires at {result.expires_at}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
