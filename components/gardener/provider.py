"""Pulumi dynamic providers for Cleura Gardener: `Shoot`, `ShootKubeconfig`, `ProjectBootstrap`.

KEEP THIS MODULE PATH STABLE: the provider classes are pickled *by reference*
(`components.gardener.provider.ShootProvider`) into every resource's `__provider` input, and the
provider process imports them again for preview, up, refresh and destroy.

The classes hold no state at all. Credentials, HTTP connections and clocks are created inside
each call from the environment of the provider process (`client_from_env`), so nothing secret
is ever pickled into Pulumi state. All decisions are delegated to pure modules (`spec`,
`diffing`, `state`) and to `operations`; this file only translates to the engine's shapes.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)

from components.gardener.client import client_from_env, stderr_report
from components.gardener.diffing import ShootDiff, diff_shoot
from components.gardener.operations import Location, ProviderError, ShootOps
from components.gardener.schema import Issue, is_unknown, render_path
from components.gardener.spec import (
    BOOTSTRAP_INPUT_FIELDS,
    KUBECONFIG_INPUT_FIELDS,
    SHOOT_INPUT_FIELDS,
    timeouts_from_inputs,
    validate_bootstrap_inputs,
    validate_kubeconfig_inputs,
    validate_shoot_inputs,
)
from components.gardener.state import (
    last_operation_failure,
    merge_observed,
    observed_outputs,
    reported_inputs,
    version_tuple,
)

PROVIDER_KEY = "__provider"


def _inputs(props: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """The resource's own inputs out of a property bag (drops `__provider` and outputs)."""
    return {k: v for k, v in props.items() if k in fields and v is not None}


def _failures(issues: list[Issue]) -> list[CheckFailure]:
    return [CheckFailure(render_path(i.path), i.message) for i in issues]


def _default_cloud(d: dict[str, Any], olds: dict[str, Any]) -> None:
    """Unset cloud: keep the recorded one (an env change must not replace anything), else env/public."""
    if d.get("cloud") is None:
        d["cloud"] = olds.get("cloud") or os.environ.get("CLEURA_CLOUD") or "public"


def _location(props: dict[str, Any]) -> Location:
    return Location(str(props.get("cloud") or "public"), str(props["region"]), str(props["project_id"]))


def _ops(props: dict[str, Any]) -> ShootOps:
    loc = _location(props)
    return ShootOps(client_from_env(loc.cloud), loc)


def _check_unknown_keys(props: dict[str, Any], fields: dict[str, Any], extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """Inputs for validation: everything but `__provider` and our own seeded output names."""
    return {k: v for k, v in props.items() if k != PROVIDER_KEY and (k in fields or k not in extra)}


class ShootProvider(ResourceProvider):  # type: ignore[misc]
    """A Gardener shoot managed through Cleura's v2 API."""

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        raw = _check_unknown_keys(news, SHOOT_INPUT_FIELDS, SHOOT_OUTPUT_KEYS)
        d, issues = validate_shoot_inputs(raw)
        _default_cloud(d, olds)
        old_v, new_v = olds.get("kubernetes_version"), d.get("kubernetes_version")
        if (isinstance(old_v, str) and isinstance(new_v, str) and not is_unknown(new_v)
                and version_tuple(new_v) < version_tuple(old_v)[: len(version_tuple(new_v))]):
            issues.append(Issue(("kubernetes_version",),
                                f"{new_v} would be a downgrade from {old_v}; the API only upgrades"))
        return CheckResult(d, _failures(issues))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        result = diff_shoot(olds, news)
        if result.replaces:
            stderr_report(f"shoot {olds.get('name')}: will be REPLACED because {', '.join(result.replaces)} "
                          "cannot change in place: all worker nodes, workloads and data are lost")
        if sum(1 for c in result.changes if c.endswith(("(added)", "(removed)"))):
            stderr_report(f"shoot {olds.get('name')}: the set of worker groups changes")
        return DiffResult(changes=result.has_changes, replaces=ShootDiff.top_level(result.replaces),
                          delete_before_replace=result.delete_before_replace)

    def create(self, props: dict[str, Any]) -> CreateResult:
        d = _validated(props)
        timeouts = timeouts_from_inputs(d.get("timeouts"))
        shoot = _ops(d).create(d, adopt=bool(d.get("adopt")), timeout=timeouts.create)
        return CreateResult(shoot_id(d), shoot_outputs(d, shoot))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        user = _inputs(props, SHOOT_INPUT_FIELDS)
        shoot = _ops(user).get(str(user["name"]))
        if shoot is None:
            stderr_report(f"shoot {user['name']}: not found; removing it from state (the next up recreates it)")
            return ReadResult("", {})
        failure = last_operation_failure(shoot)
        if failure:
            stderr_report(f"warning: shoot {user['name']}: last operation failed: {failure}")
        return ReadResult(id_, shoot_outputs(user, shoot))

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        d = _validated(news)
        timeouts = timeouts_from_inputs(d.get("timeouts"))
        shoot = _ops(d).update(d, timeout=timeouts.update)
        return UpdateResult(shoot_outputs(d, shoot))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        user = _inputs(props, SHOOT_INPUT_FIELDS)
        timeouts = timeouts_from_inputs(user.get("timeouts"))
        _ops(user).delete(str(user["name"]), timeout=timeouts.delete)


def _validated(props: dict[str, Any]) -> dict[str, Any]:
    d, issues = validate_shoot_inputs(_inputs(props, SHOOT_INPUT_FIELDS))
    if issues:
        raise ProviderError("; ".join(f"{render_path(i.path)}: {i.message}" for i in issues))
    _default_cloud(d, props)
    return d


def shoot_id(d: dict[str, Any]) -> str:
    return f"{d.get('cloud') or 'public'}/{d['region']}/{d['project_id']}/{d['name']}"


def shoot_outputs(user: dict[str, Any], shoot: dict[str, Any]) -> dict[str, Any]:
    """State = user inputs with observed drift + read-only observations (see `state`)."""
    return {**merge_observed(user, reported_inputs(shoot)), **observed_outputs(shoot)}


SHOOT_OUTPUT_KEYS = tuple(observed_outputs({}).keys())


# --- kubeconfig ------------------------------------------------------------------------------------


def parse_time(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def rotation_due(state: dict[str, Any], renew_before: int, now: datetime) -> tuple[bool, str]:
    """Is the kubeconfig due for renewal? Uses the *granted* `expires_at` (the API may clamp);
    falls back to `issued_at + expiration_seconds`; unparseable state is due (mint a good one)."""
    expires = parse_time(state.get("expires_at"))
    if expires is None:
        issued = parse_time(state.get("issued_at"))
        seconds = state.get("expiration_seconds")
        if issued is None or not isinstance(seconds, int | float):
            return True, "no usable expiry recorded"
        expires = datetime.fromtimestamp(issued.timestamp() + float(seconds), UTC)
    left = (expires - now).total_seconds()
    if left <= renew_before:
        return True, f"expires at {expires.isoformat()} ({int(left)}s left, renew {renew_before}s before)"
    return False, f"valid for {int(left)}s more"


class ShootKubeconfigProvider(ResourceProvider):  # type: ignore[misc]
    """A short-lived admin kubeconfig from the v3 endpoint; rotated by replacement when due."""

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        d, issues = validate_kubeconfig_inputs(_check_unknown_keys(news, KUBECONFIG_INPUT_FIELDS, KUBECONFIG_OUTPUTS))
        _default_cloud(d, olds)
        return CheckResult(d, _failures(issues))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [k for k in ("cloud", "region", "project_id", "shoot_name", "shoot_uid", "expiration_seconds")
                    if (is_unknown(news.get(k)) or news.get(k) != olds.get(k))
                    and not (k == "shoot_uid" and news.get(k) is None)]
        renew = news.get("renew_before_expiry_seconds", 0)
        due, why = rotation_due(olds, int(renew) if isinstance(renew, int | float) else 0, datetime.now(UTC))
        if due:
            stderr_report(f"kubeconfig for shoot {olds.get('shoot_name')}: rotating ({why})")
            replaces.append("expires_at")
        changed = bool(replaces) or news.get("renew_before_expiry_seconds") != olds.get("renew_before_expiry_seconds")
        return DiffResult(changes=changed, replaces=replaces, delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        d = _inputs(props, KUBECONFIG_INPUT_FIELDS)
        issued = datetime.now(UTC)
        data = _ops(d).mint_kubeconfig(str(d["shoot_name"]), int(d.get("expiration_seconds", 86400)))
        expires = parse_time(data.get("expires_at"))
        granted = int((expires - issued).total_seconds()) if expires else None
        if granted is not None and granted < int(d.get("expiration_seconds", 86400)) - 60:
            stderr_report(f"kubeconfig for shoot {d['shoot_name']}: the API granted {granted}s, "
                          f"less than the {int(d.get('expiration_seconds', 86400))}s asked")
        outs = {**d, "kubeconfig": data["kubeconfig"], "expires_at": data.get("expires_at"),
                "issued_at": issued.isoformat(), "granted_seconds": granted}
        return CreateResult(f"{shoot_id({**d, 'name': d['shoot_name']})}/kubeconfig/{issued.timestamp():.0f}", outs)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """Nothing to refresh on Cleura's side, except: the shoot is gone or was recreated."""
        d = _inputs(props, KUBECONFIG_INPUT_FIELDS)
        shoot = _ops(d).get(str(d["shoot_name"]))
        if shoot is None or (d.get("shoot_uid") and shoot.get("uid") and shoot.get("uid") != d["shoot_uid"]):
            return ReadResult("", {})
        return ReadResult(id_, {k: v for k, v in props.items() if k != PROVIDER_KEY})

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        outs = {k: v for k, v in olds.items() if k != PROVIDER_KEY}
        outs["renew_before_expiry_seconds"] = news.get("renew_before_expiry_seconds")
        return UpdateResult(outs)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        stderr_report(f"kubeconfig for shoot {props.get('shoot_name')}: forgotten; Cleura has no revoke call, "
                      f"it stays valid until {props.get('expires_at')}")


KUBECONFIG_OUTPUTS = ("kubeconfig", "expires_at", "issued_at", "granted_seconds")


class ProjectBootstrapProvider(ResourceProvider):  # type: ignore[misc]
    """The per-project bootstrap call (idempotent; no read, no undo)."""

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        d, issues = validate_bootstrap_inputs(_check_unknown_keys(news, BOOTSTRAP_INPUT_FIELDS))
        _default_cloud(d, olds)
        return CheckResult(d, _failures(issues))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [k for k in BOOTSTRAP_INPUT_FIELDS if is_unknown(news.get(k)) or news.get(k) != olds.get(k)]
        return DiffResult(changes=bool(replaces), replaces=replaces, delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        d = _inputs(props, BOOTSTRAP_INPUT_FIELDS)
        _ops(d).bootstrap()
        return CreateResult(f"{d.get('cloud') or 'public'}/{d['region']}/{d['project_id']}", d)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_, {k: v for k, v in props.items() if k != PROVIDER_KEY})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        stderr_report(f"project {props.get('project_id')}: bootstrap cannot be undone; only forgetting it")
