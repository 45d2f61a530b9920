"""MetalLB: LoadBalancer addresses for K3s clusters (L2, or BGP when peers are configured).

The chart goes first (its CRDs come with it); the address pools and advertisements are
created after the release *and* after the controller's validating webhook answers. Helm's wait
does not cover the webhook: the controller's readiness probe is a plain ping (``/readyz``), while
its webhook server only starts once the cert rotator's certificates have been written to the
``metallb-webhook-cert`` Secret and synced into the pod by the kubelet (up to a minute or two
later). Until then every create of a MetalLB resource fails with ``failed calling webhook``
(connection refused or x509), and Pulumi retries a create only for a missing CRD, never for a
webhook error. So a gate Job (`webhook_gate_job`) retries a server-side dry-run create of a probe
``L2Advertisement`` (always valid: an empty spec selects every pool) until the API server gets an
answer from the webhook, and the custom resources wait for that Job. The Job runs again when the
chart version or its values change (either can roll the controller pod, a new webhook server):
both are in its pod template. The script is ``components/sh/metallb-webhook-gate.sh`` (POSIX sh)
and runs in the pinned ``IMAGES["webhookGate"]`` (the K3s image: busybox sh and kubectl), never
in ``registry.k8s.io/kubectl``, which is distroless and has no shell. BGP peers are written as
``metallb.io/v1beta2``.

Clusters with a cloud load balancer (Gardener shoots: OpenStack Octavia) do not get MetalLB;
see `applies`. Address validation (ranges, overlaps with nodes, pod and service networks, L2
pools inside a node subnet, ASNs) lives in the config model.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import ipaddress
import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import kube
from components.config import AddressPool, Node, StackConfig
from components.config import MetalLB as MetalLBConfig
from components.netaddr import AddressRange
from components.versions import IMAGES, K3S_VERSION, ChartPin, ImagePin

NAMESPACE = "metallb-system"
RELEASE_NAME = "metallb"
API_V1BETA1 = "metallb.io/v1beta1"
API_V1BETA2 = "metallb.io/v1beta2"
# The webhook gate: a shell Job with kubectl and its least-privilege RBAC.
WEBHOOK_GATE_NAME = "metallb-webhook-gate"
WEBHOOK_PROBE_NAME = "pulumi-webhook-probe"
WEBHOOK_GATE_SCRIPT = "sh/metallb-webhook-gate.sh"
WEBHOOK_WAIT_SECONDS = 600
WEBHOOK_GATE_TIMEOUT = "15m"  # Pulumi's wait for the Job: longer than the script's own deadline


def applies(cfg: StackConfig) -> bool:
    """MetalLB runs on K3s (and existing) clusters that enable it and define at least one pool."""
    on = cfg.cluster_kind in ("k3s", "existing") and cfg.metallb is not None and cfg.metallb.enabled
    return on and cfg.metallb is not None and bool(cfg.metallb.pools)


@dataclass(frozen=True)
class MetalLBArgs:
    """Everything MetalLB reads: its own section, the nodes (placement), its chart, the gate image."""

    metallb: MetalLBConfig
    nodes: tuple[Node, ...]
    chart: ChartPin
    gate_image: ImagePin

    @classmethod
    def from_config(cls, cfg: StackConfig) -> MetalLBArgs:
        if cfg.metallb is None:
            raise ValueError("MetalLB needs a K3s stack config (metallb section)")
        return cls(cfg.metallb, cfg.nodes, cfg.charts["metallb"], gate_image(cfg))


def gate_image(cfg: StackConfig) -> ImagePin:
    """The gate image at the cluster's own K3s version (``v1.34.2+k3s1`` -> tag ``v1.34.2-k3s1``)."""
    pin = IMAGES["webhookGate"]
    version = cfg.k3s.version if cfg.k3s is not None else K3S_VERSION
    return ImagePin(pin.repository, version.replace("+", "-"), pin.build_file, pin.base, pin.shell, pin.tools)


def address_text(rng: AddressRange) -> str:
    """MetalLB's spelling of a range: a normalised CIDR, or ``first-last``."""
    if "/" in rng.text:
        return str(ipaddress.ip_network(rng.text.strip(), strict=True))
    return f"{rng.first}-{rng.last}"


def _pool(pool: AddressPool) -> dict[str, Any]:
    return {
        "apiVersion": API_V1BETA1, "kind": "IPAddressPool",
        "metadata": {"name": pool.name, "namespace": NAMESPACE},
        "spec": {"addresses": [address_text(r) for r in pool.addresses], "autoAssign": pool.auto_assign},
    }


def custom_resources(args: MetalLBArgs) -> list[dict[str, Any]]:
    """Pools first, then their advertisements and the BGP peers (manifests, in creation order)."""
    metallb = args.metallb
    out = [_pool(p) for p in metallb.pools]
    for pool in metallb.pools:
        if pool.advertise == "l2":
            out.append({
                "apiVersion": API_V1BETA1, "kind": "L2Advertisement",
                "metadata": {"name": f"{pool.name}-l2", "namespace": NAMESPACE},
                "spec": {"ipAddressPools": [pool.name]},
            })
        elif pool.advertise == "bgp":
            out.append({
                "apiVersion": API_V1BETA1, "kind": "BGPAdvertisement",
                "metadata": {"name": f"{pool.name}-bgp", "namespace": NAMESPACE},
                "spec": {"ipAddressPools": [pool.name]},
            })
    for peer in metallb.bgp_peers:
        out.append({
            "apiVersion": API_V1BETA2, "kind": "BGPPeer",
            "metadata": {"name": peer.name, "namespace": NAMESPACE},
            "spec": {"myASN": peer.my_asn, "peerASN": peer.asn, "peerAddress": str(peer.address)},
        })
    return out


def values(args: MetalLBArgs) -> dict[str, Any]:
    """metallb chart values: controller on the control tier, speakers on every node."""
    metallb = args.metallb
    bgp = bool(metallb.bgp_peers)
    speakers = kube.everywhere(args.nodes)
    out: dict[str, Any] = {
        "controller": kube.control_tier(args.nodes).values(),
        # tolerateMaster (default) covers control-plane taints; the stack's own taints here.
        "speaker": speakers.values(),
        # frr-k8s is the BGP backend: an extra DaemonSet that only BGP needs.
        "frrk8s": {"enabled": bgp},
    }
    if bgp and speakers.tolerations:
        out["frr-k8s"] = {"frrk8s": speakers.values()}
    return {k: v for k, v in out.items() if v}


def webhook_probe() -> dict[str, Any]:
    """The object the gate dry-runs: accepted by the webhook whatever pools exist (empty spec)."""
    return {
        "apiVersion": API_V1BETA1, "kind": "L2Advertisement",
        "metadata": {"name": WEBHOOK_PROBE_NAME, "namespace": NAMESPACE},
        "spec": {},
    }


def webhook_gate_script() -> str:
    """Retry a server-side dry-run create of ``$PROBE`` until the webhook answers, bounded."""
    return importlib.resources.files("components").joinpath(WEBHOOK_GATE_SCRIPT).read_text()


def values_digest(args: MetalLBArgs) -> str:
    """sha256 of the chart version and values: the gate runs again whenever either changes."""
    text = json.dumps({"version": args.chart.version, "values": values(args)}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def webhook_gate_rbac() -> list[dict[str, Any]]:
    """ServiceAccount, Role and RoleBinding: the gate may only create (dry-run) L2Advertisements."""
    meta = {"name": WEBHOOK_GATE_NAME, "namespace": NAMESPACE}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta,
         "rules": [{"apiGroups": ["metallb.io"], "resources": ["l2advertisements"], "verbs": ["create"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta,
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": WEBHOOK_GATE_NAME},
         "subjects": [{"kind": "ServiceAccount", "name": WEBHOOK_GATE_NAME, "namespace": NAMESPACE}]},
    ]


def webhook_gate_job(args: MetalLBArgs) -> dict[str, Any]:
    """The Job that completes once the MetalLB webhook answers (Pulumi awaits Job completion).

    The chart version and a digest of the values are in the pod template, so an upgrade or a
    values change (either may roll the controller) replaces the Job and the custom resources
    are gated again.
    """
    image = args.gate_image
    if image.shell is None:
        raise ValueError(f"{image.ref} has no shell ({image.build_file}); the gate script cannot run there")
    pod: dict[str, Any] = {
        "serviceAccountName": WEBHOOK_GATE_NAME,
        "restartPolicy": "Never",
        "containers": [{
            "name": "wait-for-webhook",
            "image": image.ref,
            "command": [image.shell, "-c", webhook_gate_script()],
            "env": [
                {"name": "PROBE", "value": json.dumps(webhook_probe(), sort_keys=True, separators=(",", ":"))},
                {"name": "WAIT_SECONDS", "value": str(WEBHOOK_WAIT_SECONDS)},
                {"name": "METALLB_CHART_VERSION", "value": args.chart.version},
                {"name": "METALLB_VALUES_SHA256", "value": values_digest(args)},
            ],
        }],
        **kube.control_tier(args.nodes).values(),
    }
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": WEBHOOK_GATE_NAME, "namespace": NAMESPACE,
                     "annotations": {kube.REPLACE_UNREADY: "true"}},  # a failed gate reruns on the next up
        "spec": {
            "backoffLimit": 2,  # a lost pod (node restart) is retried; the script itself loops
            "activeDeadlineSeconds": WEBHOOK_WAIT_SECONDS + 120,
            "template": {"spec": pod},
        },
    }


def release_spec(args: MetalLBArgs) -> kube.ReleaseSpec:
    return kube.ReleaseSpec(RELEASE_NAME, args.chart, NAMESPACE, values(args))


def release_args(args: MetalLBArgs) -> k8s.helm.v3.ReleaseArgs:
    return release_spec(args).args()


def _resource_name(name: str, manifest: dict[str, Any]) -> str:
    return f"{name}-{manifest['kind'].lower()}-{manifest['metadata']['name']}"


class MetalLB(pulumi.ComponentResource):  # type: ignore[misc]
    """MetalLB and its pools. `ready` resolves once every pool, advertisement and peer exists."""

    ready: pulumi.Output[bool]

    def __init__(self, name: str, args: MetalLBArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:metallb:MetalLB", name, None, opts)
        ns = kube.namespace(f"{name}-namespace", NAMESPACE, kube.child_options(self, opts))
        chart = kube.release(f"{name}-chart", release_spec(args), ns, kube.child_options(self, opts))
        gate = self._webhook_gate(name, args, ns, chart, opts)
        pools: list[pulumi.Resource] = []
        created: list[pulumi.Output[Any]] = []
        for manifest in custom_resources(args):
            after = [chart, gate] if manifest["kind"] == "IPAddressPool" else [chart, gate, *pools]
            cr = k8s.apiextensions.CustomResource(
                _resource_name(name, manifest), api_version=manifest["apiVersion"], kind=manifest["kind"],
                metadata=manifest["metadata"], spec=manifest["spec"],
                opts=kube.child_options(self, opts, *after),
            )
            if manifest["kind"] == "IPAddressPool":
                pools.append(cr)
            created.append(cr.id)
        self.ready = kube.ready_when(*created)
        self.register_outputs({"ready": self.ready})

    def _webhook_gate(self, name: str, args: MetalLBArgs, ns: k8s.core.v1.Namespace, chart: pulumi.Resource,
                      opts: pulumi.ResourceOptions | None) -> k8s.batch.v1.Job:
        """The RBAC and the Job that completes once the validating webhook answers."""
        sa_m, role_m, binding_m = webhook_gate_rbac()

        def meta(manifest: dict[str, Any]) -> k8s.meta.v1.ObjectMetaArgs:
            return k8s.meta.v1.ObjectMetaArgs(name=manifest["metadata"]["name"], namespace=ns.metadata.name)

        sa = k8s.core.v1.ServiceAccount(f"{name}-webhook-gate-sa", metadata=meta(sa_m),
                                        opts=kube.child_options(self, opts))
        role = k8s.rbac.v1.Role(f"{name}-webhook-gate-role", metadata=meta(role_m), rules=role_m["rules"],
                                opts=kube.child_options(self, opts))
        binding = k8s.rbac.v1.RoleBinding(
            f"{name}-webhook-gate-binding", metadata=meta(binding_m), role_ref=binding_m["roleRef"],
            subjects=binding_m["subjects"], opts=kube.child_options(self, opts, sa, role),
        )
        job = webhook_gate_job(args)
        return k8s.batch.v1.Job(
            f"{name}-webhook-gate", metadata=meta(job), spec=job["spec"],
            opts=kube.child_options(self, opts, chart, binding).merge(pulumi.ResourceOptions(
                # A fixed name: a changed pod template (immutable) replaces the Job delete-first.
                delete_before_replace=True,
                custom_timeouts=pulumi.CustomTimeouts(create=WEBHOOK_GATE_TIMEOUT, update=WEBHOOK_GATE_TIMEOUT),
            )),
        )
