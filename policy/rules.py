"""The platform's CrossGuard rules, importable without a policy server (tests call them directly).

Each rule is a plain function over what pulumi-policy hands a policy (`ResourceValidationArgs`
or `StackValidationArgs`) plus `report_violation`; `__main__.py` wraps them into a `PolicyPack`.

Stack class: a stack is *dev* and *ephemeral* when its name starts with `review-` (the review
stacks of merge requests), or when the policy config (`--policy-pack-config`) or a stack tag
(`platform:dev`, `platform:ephemeral` = `true`) says so. HA counts are enforced only outside
dev stacks, `protect` only outside ephemeral ones.

Secrets: a policy cannot tell whether a value was marked secret (pulumi-policy hands every
value in plaintext, pulumi/pulumi-policy#241), so the secret rule looks for secret *material*
(private keys, tokens, credentials in URLs, `password=` assignments) where the engine would
keep it in plaintext and show it in diffs: command scripts, environment and triggers
(only `stdin` and `connection` may carry secrets), ConfigMaps, and any resource's labels and
annotations. Kubernetes Secret `data`/`stringData` are marked secret by pulumi-kubernetes.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

ReportViolation = Callable[..., None]

HELM_TYPES = ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v3:Chart", "kubernetes:helm.sh/v4:Chart")
EXACT_VERSION_RE = re.compile(r"^v?\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
IMAGE_TAG_RE = re.compile(r"^(?P<name>[^@]+?)(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$")
POOL_TYPE = "kubernetes:metallb.io/v1beta1:IPAddressPool"
ALLOWED_POOL_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",          # RFC 1918
    "100.64.0.0/10",                                           # RFC 6598 shared address space
    "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24",       # RFC 5737 documentation
    "fc00::/7",                                                # RFC 4193 unique local
    "2001:db8::/32",                                           # RFC 3849 documentation
))
COMMAND_TYPES = ("command:remote:Command", "command:local:Command")
COMMAND_SECRET_INPUTS = ("stdin", "connection")
K3S_SERVER_MARKER = "install or upgrade K3s (server)"  # components/k3s/scripts.py, server install header
SHOOT_TYPE = "pulumi-python:dynamic/cleura:Shoot"
PVC_TYPES = ("kubernetes:core/v1:PersistentVolumeClaim", "kubernetes:core/v1:PersistentVolume")
HA_ETCD_SERVERS = 3
HA_VAULT_REPLICAS = 3
REVIEW_STACK_PREFIX = "review-"

SECRET_PATTERNS = (
    # The PEM label is assembled so that no literal key header sits in the source (secret scanners).
    ("a private key", re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*" + "PRIVATE" + r" KEY-----")),
    ("a K3s join token", re.compile(r"\bK10[0-9a-f]{32,}::")),
    ("a JWT / service-account token", re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.")),
    ("an AWS-style secret access key", re.compile(r"(?i)aws_secret_access_key\s*[=:]\s*['\"]?[A-Za-z0-9/+]{40}")),
    ("a GitLab token", re.compile(r"\bglpat-[0-9A-Za-z_-]{20,}")),
    ("credentials in a URL", re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@$]{3,}@")),
    # A value that looks like key material: 8+ characters with both letters and digits, not a
    # reference ($VAR, ${VAR:-default}, <placeholder>, a path) and not a plain word such as
    # `SEAL_TOKEN_ACTION=renewed` or `tokens: config.yaml` (scripts name such things all the time).
    ("a literal password/token assignment",
     re.compile(r"(?i)\b[\w-]*(?:password|passwd|secret|token|api[_-]?key)[\w-]*\s*[=:]\s*['\"]?"
                r"(?![$<{\[/~.-]|\*+|\s|['\"]|true\b|false\b|none\b|null\b|\(|file\b)"
                r"(?=[^\s'\"]*[A-Za-z])(?=[^\s'\"]*\d)[^\s'\"]{8,}")),
)


# --- helpers ---------------------------------------------------------------------------------------


def stack_of(urn: str) -> str:
    """`urn:pulumi:<stack>::<project>::<type>::<name>` -> stack."""
    parts = urn.split("::", 1)[0].split(":")
    return parts[2] if len(parts) >= 3 else ""


def _flag(config: Mapping[str, Any], tags: Mapping[str, str], key: str) -> bool:
    return bool(config.get(key)) or str(tags.get(f"platform:{key}", "")).lower() == "true"


def stack_is(kind: str, urn: str, config: Mapping[str, Any], tags: Mapping[str, str]) -> bool:
    """kind is `dev` or `ephemeral`; review stacks are both."""
    return stack_of(urn).startswith(REVIEW_STACK_PREFIX) or _flag(config, tags, kind)


def walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (path, leaf) of a nested inputs document."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from walk(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, Sequence) and not isinstance(value, str | bytes):
        # pulumi-policy hands lists as a read-only Sequence proxy, not a list
        for i, v in enumerate(value):
            yield from walk(v, f"{path}[{i}]")
    else:
        yield path, value


def secret_material(text: str) -> str | None:
    for what, pattern in SECRET_PATTERNS:
        if pattern.search(text):
            return what
    return None


def _args_parts(args: Any) -> tuple[str, str, Mapping[str, Any], str, Mapping[str, Any], Mapping[str, str]]:
    return (args.resource_type, args.name, args.props, args.urn, args.get_config(),
            getattr(args, "stack_tags", None) or {})


# --- resource rules --------------------------------------------------------------------------------


def helm_pinned(args: Any, report_violation: ReportViolation) -> None:
    """Helm releases and charts name an exact chart version (no range, no empty = latest)."""
    rtype, name, props, _, _, _ = _args_parts(args)
    if rtype not in HELM_TYPES:
        return
    version = props.get("version")
    chart = props.get("chart", "?")
    if not isinstance(version, str) or not EXACT_VERSION_RE.match(version):
        report_violation(f"{name}: chart {chart!r} has version {version!r}; pin an exact version "
                         "(e.g. 1.2.3) in components/versions.py")


def _image_problem(image: str) -> str | None:
    match = IMAGE_TAG_RE.match(image.strip())
    if match is None:
        return "is not an image reference"
    tag, digest = match.group("tag"), match.group("digest")
    name = match.group("name")
    if ":" in name.rsplit("/", 1)[-1]:
        return "is not an image reference"
    if digest:
        return None
    if not tag:
        return "has no tag (means latest)"
    if tag == "latest":
        return "uses the latest tag"
    return None


def images_pinned(args: Any, report_violation: ReportViolation) -> None:
    """No `latest` or untagged container image anywhere in a resource's inputs (Helm values too)."""
    _, name, props, _, _, _ = _args_parts(args)
    for path, value in walk(props):
        leaf = path.rsplit(".", 1)[-1]
        if leaf == "image" and isinstance(value, str) and value:
            problem = _image_problem(value)
            if problem:
                report_violation(f"{name}: {path} {value!r} {problem}; pin a version tag or a digest")
        elif leaf == "tag" and path.endswith("image.tag") and value == "latest":
            # An empty Helm `image.tag` means the chart's appVersion, pinned by the chart version.
            report_violation(f"{name}: {path} is 'latest'; pin a version tag")


def _range_networks(entry: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    if "-" in entry and "/" not in entry:
        first, last = (ipaddress.ip_address(p.strip()) for p in entry.split("-", 1))
        return list(ipaddress.summarize_address_range(first, last))
    return [ipaddress.ip_network(entry.strip(), strict=False)]


def metallb_private_pools(args: Any, report_violation: ReportViolation) -> None:
    """MetalLB pools hand out only private (RFC 1918/6598/4193) or documentation addresses."""
    rtype, name, props, _, _, _ = _args_parts(args)
    if rtype != POOL_TYPE:
        return
    for entry in ((props.get("spec") or {}).get("addresses") or []):
        try:
            networks = _range_networks(str(entry))
        except ValueError:
            report_violation(f"{name}: pool address {entry!r} is neither a CIDR nor a first-last range")
            continue
        for net in networks:
            if not any(net.version == ok.version and net.subnet_of(ok) for ok in ALLOWED_POOL_NETWORKS):  # type: ignore[arg-type]
                report_violation(f"{name}: pool address {entry!r} is public address space; MetalLB pools may "
                                 "use only private or documentation ranges")
                break


def no_plaintext_secrets(args: Any, report_violation: ReportViolation) -> None:
    """No secret material where the engine keeps inputs in plaintext and shows them in diffs."""
    rtype, name, props, _, _, _ = _args_parts(args)
    places: list[tuple[str, Any]] = []
    if rtype in COMMAND_TYPES:
        places += [(k, v) for k, v in props.items() if k not in COMMAND_SECRET_INPUTS]
    if rtype == "kubernetes:core/v1:ConfigMap":
        places += [("data", props.get("data")), ("binaryData", props.get("binaryData"))]
    raw_metadata = props.get("metadata")
    metadata: Mapping[str, Any] = raw_metadata if isinstance(raw_metadata, Mapping) else {}
    places += [("metadata.labels", metadata.get("labels")), ("metadata.annotations", metadata.get("annotations"))]
    for where, value in places:
        for path, leaf in walk(value, where):
            what = secret_material(leaf) if isinstance(leaf, str) else None
            if what:
                report_violation(f"{name}: {path} holds {what} in plaintext; pass secrets through a secret "
                                 "input (a command's stdin, a Kubernetes Secret) set from `pulumi config set --secret`")


def protect_stateful(args: Any, report_violation: ReportViolation) -> None:
    """The shoot and stateful volumes are `protect`ed outside ephemeral stacks."""
    rtype, name, props, urn, config, tags = _args_parts(args)
    stateful = rtype == SHOOT_TYPE or rtype in PVC_TYPES or (rtype in HELM_TYPES and props.get("chart") == "vault")
    if not stateful or stack_is("ephemeral", urn, config, tags):
        return
    if not args.opts.protect:
        report_violation(f"{name}: {rtype} holds state and the stack {stack_of(urn)!r} is not marked ephemeral; "
                         "register it with ResourceOptions(protect=True)")


# --- stack rules -----------------------------------------------------------------------------------


def is_transit_vault(props: Mapping[str, Any]) -> bool:
    """The auto-unseal Transit Vault: release `*transit`, one pod (its only data is the unseal key)."""
    server = (props.get("values") or {}).get("server") or {}
    ha = server.get("ha") or {}
    one_pod = (server.get("standalone") or {}).get("enabled") is True or (ha.get("enabled") and ha.get("replicas") == 1)
    return str(props.get("name", "")).endswith("transit") and bool(one_pod)


def ha_replicas(args: Any, report_violation: ReportViolation) -> None:
    """Outside dev stacks: 3 etcd servers for K3s, 3 Vault replicas when Vault exists."""
    resources = list(args.resources)
    if not resources:
        return
    urn = resources[0].urn
    config, tags = args.get_config(), getattr(args, "stack_tags", None) or {}
    if stack_is("dev", urn, config, tags):
        return
    servers = [r for r in resources if r.resource_type == "command:remote:Command"
               and K3S_SERVER_MARKER in str(r.props.get("create", ""))]
    if servers and len(servers) < HA_ETCD_SERVERS:
        report_violation(f"stack {stack_of(urn)!r} runs {len(servers)} K3s server(s) with embedded etcd; a "
                         f"stack not marked dev needs {HA_ETCD_SERVERS} (etcd keeps quorum through one loss)")
    for r in resources:
        if r.resource_type in HELM_TYPES and r.props.get("chart") == "vault":
            if is_transit_vault(r.props):
                continue  # one pod by design: it holds only the HA Vault's unseal key (README "Vault")
            ha = (((r.props.get("values") or {}).get("server") or {}).get("ha") or {})
            replicas = ha.get("replicas", 0) if ha.get("enabled") else 1
            if not isinstance(replicas, int | float) or replicas < HA_VAULT_REPLICAS:
                report_violation(f"{r.name}: Vault runs {replicas!r} replica(s); a stack not marked dev needs "
                                 f"server.ha.enabled with {HA_VAULT_REPLICAS} replicas (Raft quorum)", r.urn)
