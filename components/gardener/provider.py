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

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)

from components.gardener.client import (
    ApiError,
    CredentialsError,
    NotFoundError,
    RetryPolicy,
    client_from_env,
    load_credentials,
    stderr_report,
)
from components.gardener.credential import (
    DEFAULT_CREDENTIAL_SECONDS,
    MIN_CREDENTIAL_SECONDS,
    cluster_of,
    render_exec_kubeconfig,
)
from components.gardener.diffing import ShootDiff, diff_shoot
from components.gardener.marker import owners_of
from components.gardener.operations import OWNER_KEY, Location, ProviderError, ShootOps
from components.gardener.profile import pick_profile, profile_issues
from components.gardener.progress import URN_KEY, reporter
from components.gardener.schema import Issue, contains_unknown, is_unknown, render_path
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
from components.gardener.waiting import OperationFailedError, WaitTimeoutError

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


@contextmanager
def _session(props: dict[str, Any], urn: object = None) -> Iterator[ShootOps]:
    """Lifecycle calls for one provider call; the token it minted is revoked at the end.

    With the resource's URN, progress goes to the engine and shows on that resource's row.
    """
    loc = _location(props)
    with reporter(urn) as report:
        client = client_from_env(loc.cloud, report=report)
        try:
            yield ShootOps(client, loc)
        finally:
            client.close()


F = TypeVar("F", bound=Callable[..., Any])


def provider_errors(fn: F) -> F:
    """Every expected failure reaches the engine as one `ProviderError` line.

    The SDK's host turns any exception into its traceback text; re-raising here, `from None`,
    keeps that to this frame and the message (no wait internals, no HTTP plumbing).
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ProviderError, ApiError, CredentialsError, WaitTimeoutError, OperationFailedError) as exc:
            message = str(exc)
        raise ProviderError(message) from None  # outside the handler: no "During handling ..." chain

    return cast(F, wrapper)


def _check_unknown_keys(props: dict[str, Any], fields: dict[str, Any], extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """Inputs for validation: everything but `__provider` and our own seeded output names."""
    return {k: v for k, v in props.items() if k != PROVIDER_KEY and (k in fields or k not in extra)}


class ShootProvider(ResourceProvider):  # type: ignore[misc]
    """A Gardener shoot managed through Cleura's v2 API."""

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        raw = _check_unknown_keys(news, SHOOT_INPUT_FIELDS, (*SHOOT_OUTPUT_KEYS, *PASSTHROUGH_KEYS))
        d, issues = validate_shoot_inputs(raw)
        _default_cloud(d, olds)
        for key in PASSTHROUGH_KEYS:  # the stack's marker (see `marker`) and the URN for progress
            if isinstance(news.get(key), str):
                d[key] = news[key]
        if not issues:
            issues += _profile_check(d, olds)
        old_v, new_v = olds.get("kubernetes_version"), d.get("kubernetes_version")
        if (isinstance(old_v, str) and isinstance(new_v, str) and not is_unknown(new_v)
                and version_tuple(new_v) < version_tuple(old_v)[: len(version_tuple(new_v))]):
            issues.append(Issue(("kubernetes_version",),
                                f"{new_v} would be a downgrade from {old_v}; the API only upgrades"))
        return CheckResult(d, _failures(issues))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        result = diff_shoot(olds, news)
        if news.get("adopt") == "observe" and olds.get("adopt") == "observe":
            if result.has_changes:
                stderr_report(f"shoot {olds.get('name')}: observe mode, not applied: the live shoot differs in "
                              + ", ".join((*result.replaces, *result.changes)))
            return DiffResult(changes=False, replaces=[], delete_before_replace=False)
        if ("enable_ha_control_plane" in result.replaces and not is_unknown(news.get("enable_ha_control_plane"))
                and olds.get(DECLARED_HA) is not True):
            raise ProviderError(
                f"shoot {olds.get('name')}: the HA control plane was enabled outside Pulumi, and it cannot be "
                "disabled in place; set enableHaControlPlane: true in platform:cleura to keep it (planning "
                "nothing). Only a stack that declared true and now declares false replaces the shoot (state "
                "recorded before this rule: run one up with true first).")
        if (not result.has_changes and olds.get(DECLARED_HA) is None
                and news.get("enable_ha_control_plane") is True):
            # State from before DECLARED_HA: record the declared true once (no API call).
            return DiffResult(changes=True, replaces=[], delete_before_replace=False)
        if result.replaces:
            stderr_report(f"shoot {olds.get('name')}: will be REPLACED because {', '.join(result.replaces)} "
                          "cannot change in place: all worker nodes, workloads and data are lost")
        if sum(1 for c in result.changes if c.endswith(("(added)", "(removed)"))):
            stderr_report(f"shoot {olds.get('name')}: the set of worker groups changes")
        return DiffResult(changes=result.has_changes, replaces=ShootDiff.top_level(result.replaces),
                          delete_before_replace=result.delete_before_replace)

    @provider_errors
    def create(self, props: dict[str, Any]) -> CreateResult:
        d = _validated(props)
        timeouts = timeouts_from_inputs(d.get("timeouts"))
        with _session(d, d.get(URN_KEY)) as ops:
            shoot = ops.create(d, adopt=d.get("adopt") or False, timeout=timeouts.create, owner=d.get(OWNER_KEY))
        return CreateResult(shoot_id(d), shoot_outputs(d, shoot))

    @provider_errors
    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        user = _inputs(props, SHOOT_INPUT_FIELDS)
        user.update({k: props[k] for k in PASSTHROUGH_KEYS if isinstance(props.get(k), str)})  # kept in state
        with _session(user) as ops:
            shoot = ops.read_existing(str(user["name"]))
        if shoot is None:
            stderr_report(f"shoot {user['name']}: not found; removing it from state (the next up recreates it)")
            return ReadResult("", {})
        failure = last_operation_failure(shoot)
        if failure:
            stderr_report(f"warning: shoot {user['name']}: last operation failed: {failure}")
        outs = shoot_outputs(user, shoot)
        outs[DECLARED_HA] = props.get(DECLARED_HA)  # a refresh learns nothing about what was declared
        return ReadResult(id_, outs)

    @provider_errors
    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        d = _validated(news)
        timeouts = timeouts_from_inputs(d.get("timeouts"))
        with _session(d, d.get(URN_KEY)) as ops:
            shoot = ops.update(d, timeout=timeouts.update)
        return UpdateResult(shoot_outputs(d, shoot))

    @provider_errors
    def delete(self, _id: str, props: dict[str, Any]) -> None:
        user = _inputs(props, SHOOT_INPUT_FIELDS)
        if user.get("adopt") == "observe":
            stderr_report(f"shoot {user.get('name')}: observe mode: forgotten by this stack, not deleted")
            return
        timeouts = timeouts_from_inputs(user.get("timeouts"))
        with _session(user, props.get(URN_KEY)) as ops:
            ops.delete(str(user["name"]), timeout=timeouts.delete)


def _profile_check(d: dict[str, Any], olds: dict[str, Any]) -> list[Issue]:
    """Cloud-profile issues when credentials are present (see `profile`); skipped, never fatal,
    when the profile cannot be read. `CLEURA_PROFILE_CHECK=off` turns it off."""
    if os.environ.get("CLEURA_PROFILE_CHECK", "").lower() in ("off", "0", "false"):
        return []
    try:
        load_credentials()
    except CredentialsError:
        return []  # offline preview: nothing to check against
    if any(contains_unknown(d.get(k)) for k in ("cloud", "region", "project_id")):
        return []
    loc = _location(d)
    try:
        client = client_from_env(loc.cloud, retry=RetryPolicy(attempts=2), report=lambda m: None)
        try:
            profiles, _ = client.get_json(f"/gardener/v2/{loc.cloud}/cloud-profiles")
        finally:
            client.close()
    except (ApiError, CredentialsError) as exc:
        if not isinstance(exc, NotFoundError):
            stderr_report(f"shoot {d.get('name')}: cloud profile not checked ({exc})")
        return []
    profile = pick_profile(profiles, str(d.get("region") or ""), olds.get("cloud_profile_name"))
    return profile_issues(d, olds, profile) if profile is not None else []


def _validated(props: dict[str, Any]) -> dict[str, Any]:
    d, issues = validate_shoot_inputs(_inputs(props, SHOOT_INPUT_FIELDS))
    if issues:
        raise ProviderError("; ".join(f"{render_path(i.path)}: {i.message}" for i in issues))
    _default_cloud(d, props)
    for key in PASSTHROUGH_KEYS:
        if isinstance(props.get(key), str):
            d[key] = props[key]
    return d


PASSTHROUGH_KEYS = (OWNER_KEY, URN_KEY)


def shoot_id(d: dict[str, Any]) -> str:
    return f"{d.get('cloud') or 'public'}/{d['region']}/{d['project_id']}/{d['name']}"


DECLARED_HA = "declared_enable_ha_control_plane"


def shoot_outputs(user: dict[str, Any], shoot: dict[str, Any]) -> dict[str, Any]:
    """State = user inputs with observed drift + read-only observations (see `state`).

    `enable_ha_control_plane` in state is the *observed* value (drift shows), so what the user
    last declared is kept beside it: HA switched on out of band must not read as "the user
    turned HA off", which would plan a replacement of the whole cluster.
    """
    declared = bool(user.get("enable_ha_control_plane"))
    return {**merge_observed(user, reported_inputs(shoot)), **observed_outputs(shoot), DECLARED_HA: declared}


SHOOT_OUTPUT_KEYS = (*observed_outputs({}).keys(), DECLARED_HA)


# --- kubeconfig ------------------------------------------------------------------------------------


class ShootKubeconfigProvider(ResourceProvider):  # type: ignore[misc]
    """The `kubernetes` provider's kubeconfig: server + CA + an exec credential plugin (credential.py).

    Nothing secret and nothing that expires is stored, so the kubeconfig is the same text for the
    life of the shoot: previews never see it change (no false replacement of the provider) and
    refresh/destroy days later still authenticate, because the plugin mints a credential when
    pulumi-kubernetes connects.

    Diff rules (all about previews, where the dynamic host hands back unknown outputs):
    * `shoot_id` unknown: the Shoot is being created or replaced, so this is a new cluster: replace.
    * `shoot_uid` unknown but `shoot_id` known and unchanged: the Shoot is updated in place, which
      never changes its uid: no change. A known, different uid (recreated out of band): replace.
    * location or shoot name changed: replace. Credential lifetime or legacy state: update in place.
    """

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        d, issues = validate_kubeconfig_inputs(_check_unknown_keys(news, KUBECONFIG_INPUT_FIELDS, KUBECONFIG_OUTPUTS))
        _default_cloud(d, olds)
        return CheckResult(d, _failures(issues))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = kubeconfig_replaces(olds, news)
        legacy = olds.get("credential") != "exec" or not olds.get("server")
        changed = bool(replaces) or legacy or any(
            news.get(k) != olds.get(k) for k in ("expiration_seconds", "renew_before_expiry_seconds", "credential"))
        if legacy and not replaces:
            stderr_report(f"kubeconfig for shoot {olds.get('shoot_name')}: switching to an exec credential "
                          "(one-time; the cluster entry stays the same, so the kubernetes provider is updated, "
                          "not replaced)")
        return DiffResult(changes=changed, replaces=replaces, delete_before_replace=False)

    def _render(self, d: dict[str, Any]) -> dict[str, Any]:
        issued = datetime.now(UTC)
        name = str(d["shoot_name"])
        # Only the cluster entry is kept; the short-lived credential that came with it is dropped here.
        with _session(d) as ops:
            data = ops.mint_kubeconfig(name, MIN_CREDENTIAL_SECONDS)
        server, ca = cluster_of(str(data["kubeconfig"]))
        seconds = int(d.get("expiration_seconds", DEFAULT_CREDENTIAL_SECONDS))
        kubeconfig = render_exec_kubeconfig(server=server, ca_data=ca, cloud=str(d.get("cloud") or "public"),
                                            region=str(d["region"]), project_id=str(d["project_id"]),
                                            shoot_name=name, seconds=seconds)
        return {**d, "credential": "exec", "kubeconfig": kubeconfig, "server": server,
                "certificate_authority_data": ca, "issued_at": issued.isoformat()}

    @provider_errors
    def create(self, props: dict[str, Any]) -> CreateResult:
        d = _inputs(props, KUBECONFIG_INPUT_FIELDS)
        outs = self._render(d)
        return CreateResult(f"{shoot_id({**d, 'name': d['shoot_name']})}/kubeconfig", outs)

    @provider_errors
    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """Nothing to refresh on Cleura's side, except: the shoot is gone or was recreated."""
        d = _inputs(props, KUBECONFIG_INPUT_FIELDS)
        with _session(d) as ops:
            shoot = ops.read_existing(str(d["shoot_name"]))
        if shoot is None or (d.get("shoot_uid") and shoot.get("uid") and shoot.get("uid") != d["shoot_uid"]):
            return ReadResult("", {})
        return ReadResult(id_, {k: v for k, v in props.items() if k != PROVIDER_KEY})

    @provider_errors
    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(self._render(_inputs(news, KUBECONFIG_INPUT_FIELDS)))

    @provider_errors
    def delete(self, _id: str, props: dict[str, Any]) -> None:
        if props.get("credential") != "exec":
            stderr_report(f"kubeconfig for shoot {props.get('shoot_name')}: forgotten; Cleura has no revoke "
                          f"call, it stays valid until {props.get('expires_at')}")


def kubeconfig_replaces(olds: dict[str, Any], news: dict[str, Any]) -> list[str]:
    """Which kubeconfig inputs force a new kubeconfig (see `ShootKubeconfigProvider`)."""
    replaces = [k for k in ("cloud", "region", "project_id", "shoot_name")
                if is_unknown(news.get(k)) or news.get(k) != olds.get(k)]
    new_id, old_id = news.get("shoot_id"), olds.get("shoot_id")
    if is_unknown(new_id) or (new_id is not None and old_id is not None and new_id != old_id):
        replaces.append("shoot_id")
    new_uid = news.get("shoot_uid")
    if new_uid is not None and not is_unknown(new_uid) and new_uid != olds.get("shoot_uid"):
        replaces.append("shoot_uid")  # the shoot was recreated (same name, new cluster)
    elif is_unknown(new_uid) and new_id is None:
        replaces.append("shoot_uid")  # no id to tell an update from a replacement: be safe
    return replaces


KUBECONFIG_OUTPUTS = ("kubeconfig", "server", "certificate_authority_data", "issued_at")


class ProjectBootstrapProvider(ResourceProvider):  # type: ignore[misc]
    """The per-project bootstrap call (idempotent; no read, no undo)."""

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        d, issues = validate_bootstrap_inputs(_check_unknown_keys(news, BOOTSTRAP_INPUT_FIELDS))
        _default_cloud(d, olds)
        return CheckResult(d, _failures(issues))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [k for k in BOOTSTRAP_INPUT_FIELDS if is_unknown(news.get(k)) or news.get(k) != olds.get(k)]
        return DiffResult(changes=bool(replaces), replaces=replaces, delete_before_replace=False)

    @provider_errors
    def create(self, props: dict[str, Any]) -> CreateResult:
        d = _inputs(props, BOOTSTRAP_INPUT_FIELDS)
        with _session(d) as ops:
            ops.bootstrap()
        return CreateResult(f"{d.get('cloud') or 'public'}/{d['region']}/{d['project_id']}", d)

    @provider_errors
    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_, {k: v for k, v in props.items() if k != PROVIDER_KEY})

    @provider_errors
    def delete(self, _id: str, props: dict[str, Any]) -> None:
        stderr_report(f"project {props.get('project_id')}: bootstrap cannot be undone; only forgetting it")


# --- claim ----------------------------------------------------------------------------------------


CLAIM_FIELDS = ("cloud", "region", "project_id", "name", "owner")


class ShootClaimProvider(ResourceProvider):  # type: ignore[misc]
    """Recorded *before* the shoot's create, so `destroy` can remove a shoot a failed create left.

    The Python host cannot return partial state: a create that fails or is interrupted after the
    POST leaves a billed shoot that is not in state. This claim is in state by then; its delete
    (which runs after the Shoot's, since the Shoot depends on it) removes a shoot of that name
    only if it carries this stack's marker. Anything else is left alone and reported.
    """

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        d = {k: news.get(k) for k in CLAIM_FIELDS if news.get(k) is not None}
        _default_cloud(d, olds)
        missing = [k for k in ("region", "project_id", "name", "owner") if not d.get(k)]
        return CheckResult(d, [CheckFailure(k, "is required") for k in missing])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [k for k in ("cloud", "region", "project_id", "name")
                    if is_unknown(news.get(k)) or news.get(k) != olds.get(k)]
        changed = bool(replaces) or news.get("owner") != olds.get("owner")
        return DiffResult(changes=changed, replaces=replaces, delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        d = {k: props.get(k) for k in CLAIM_FIELDS}
        return CreateResult(f"{shoot_id(d)}/claim", d)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_, {k: v for k, v in props.items() if k != PROVIDER_KEY})

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult({k: news.get(k) for k in CLAIM_FIELDS})

    @provider_errors
    def delete(self, _id: str, props: dict[str, Any]) -> None:
        name, owner = str(props["name"]), str(props.get("owner") or "")
        with _session(props) as ops:
            shoot = ops.get(name)
            if shoot is None:
                return
            if owner and owner in owners_of(shoot):
                stderr_report(f"shoot {name}: left behind by a failed or interrupted create of this stack "
                              "(it carries this stack's marker); deleting it")
                ops.delete(name, timeout=3600)
                return
            stderr_report(f"shoot {name}: exists but does not carry this stack's marker; left alone")
