"""cert-manager and the stack's ClusterIssuer: TLS for every ingress.

The chart installs its CRDs (``crds.enabled``, kept on uninstall so certificates survive a
re-install) and its ``startupapicheck`` hook, which Helm waits for: the release is done only
once the webhook answers, so the issuer resources after it are never rejected for an absent
webhook. One ClusterIssuer from config (`PlatformLayer.cluster_issuer`):

- ``selfSigned``: a private CA for a homelab without public DNS: a bootstrap self-signed
  ClusterIssuer signs a CA Certificate (its key stays in cert-manager's namespace) and the
  named ClusterIssuer issues from that CA. Clients trust the CA's ``ca.crt`` once.
- ``acmeHttp01``: ACME (Let's Encrypt by default), challenges solved through the ingress class.
- ``acmeDns01``: ACME, challenges solved at the DNS provider with an API token held in a
  Secret from ``platform:certsDns01Token`` (never in plain state).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import kube
from components.config import Certs, Node, Secret, StackConfig
from components.versions import ChartPin

NAMESPACE = "cert-manager"
RELEASE_NAME = "cert-manager"
API_VERSION = "cert-manager.io/v1"
DNS01_TOKEN_KEY = "api-token"  # noqa: S105 - a Secret key name, not a value
CA_DURATION = "87600h"  # ten years: the homelab CA is trusted once, by hand
ISSUER_TIMEOUT = "10m"
READY = {"pulumi.com/waitFor": "condition=Ready"}


def applies(cfg: StackConfig) -> bool:
    return cfg.certs.enabled


@dataclass(frozen=True)
class CertsArgs:
    """Everything cert-manager reads: its section, the ingress class (HTTP-01), nodes, its chart."""

    certs: Certs
    ingress_class: str | None
    nodes: tuple[Node, ...]
    chart: ChartPin

    @classmethod
    def from_config(cls, cfg: StackConfig) -> CertsArgs:
        ingress_class = cfg.ingress.class_name if cfg.ingress.enabled else None
        return cls(cfg.certs, ingress_class, cfg.nodes, cfg.charts["certManager"])


def values(args: CertsArgs) -> dict[str, Any]:
    """cert-manager chart values: CRDs included and kept, every Deployment on the control tier."""
    control = kube.control_tier(args.nodes).values()
    out: dict[str, Any] = {
        "crds": {"enabled": True, "keep": True},
        # An Ingress annotated kubernetes.io/tls-acme: "true" gets its certificate from our issuer.
        "ingressShim": {"defaultIssuerName": args.certs.issuer.name, "defaultIssuerKind": "ClusterIssuer",
                        "defaultIssuerGroup": "cert-manager.io"},
        **control,
    }
    if control:
        for part in ("webhook", "cainjector", "startupapicheck"):
            out[part] = dict(control)
    return out


def release_spec(args: CertsArgs) -> kube.ReleaseSpec:
    return kube.ReleaseSpec(RELEASE_NAME, args.chart, NAMESPACE, values(args))


def dns01_secret_name(args: CertsArgs) -> str:
    return f"{args.certs.issuer.name}-dns01-token"


def _issuer(name: str, spec: dict[str, Any], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {"apiVersion": API_VERSION, "kind": "ClusterIssuer", "metadata": metadata, "spec": spec}


def issuer_resources(args: CertsArgs) -> list[dict[str, Any]]:
    """The cert-manager resources behind the configured ClusterIssuer, in creation order."""
    issuer = args.certs.issuer
    if issuer.type == "selfSigned":
        root = f"{issuer.name}-selfsigned-root"
        return [
            _issuer(root, {"selfSigned": {}}),
            {
                "apiVersion": API_VERSION, "kind": "Certificate",
                "metadata": {"name": f"{issuer.name}-root", "namespace": NAMESPACE, "annotations": dict(READY)},
                "spec": {
                    "isCA": True, "commonName": issuer.ca_common_name, "secretName": f"{issuer.name}-root",
                    "duration": CA_DURATION,
                    "privateKey": {"algorithm": "ECDSA", "size": 256},
                    "issuerRef": {"name": root, "kind": "ClusterIssuer", "group": "cert-manager.io"},
                },
            },
            _issuer(issuer.name, {"ca": {"secretName": f"{issuer.name}-root"}}, READY),
        ]
    solver: dict[str, Any]
    if issuer.type == "acmeHttp01":
        if args.ingress_class is None:
            raise ValueError("platform:certs.issuer.type: acmeHttp01 needs platform:ingress.enabled")
        solver = {"http01": {"ingress": {"ingressClassName": args.ingress_class}}}
    else:
        ref = {"name": dns01_secret_name(args), "key": DNS01_TOKEN_KEY}
        provider = {"cloudflare": {"apiTokenSecretRef": ref}, "digitalocean": {"tokenSecretRef": ref}}
        solver = {"dns01": {issuer.dns01_provider: provider[issuer.dns01_provider]}}
    acme = {
        "email": issuer.email, "server": issuer.server,
        "privateKeySecretRef": {"name": f"{issuer.name}-account-key"},
        "solvers": [solver],
    }
    return [_issuer(issuer.name, {"acme": acme}, READY)]


def dns01_secret(args: CertsArgs) -> dict[str, Any] | None:
    """The DNS-01 API token Secret manifest (the value as a `Secret` config object), or None."""
    issuer = args.certs.issuer
    if issuer.type != "acmeDns01" or issuer.dns01_token is None:
        return None
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": dns01_secret_name(args), "namespace": NAMESPACE},
        "stringData": {DNS01_TOKEN_KEY: issuer.dns01_token},
    }


class CertManager(pulumi.ComponentResource):  # type: ignore[misc]
    """cert-manager with its CRDs and the ClusterIssuer. `ready` resolves once the issuer is Ready."""

    ready: pulumi.Output[bool]
    cluster_issuer: str

    def __init__(self, name: str, args: CertsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:certs:CertManager", name, None, opts)
        self.cluster_issuer = args.certs.issuer.name
        ns = kube.namespace(f"{name}-namespace", NAMESPACE, kube.child_options(self, opts),
                            kube.RESTRICTED_NAMESPACE_LABELS)
        chart = kube.release(f"{name}-chart", release_spec(args), ns, kube.child_options(self, opts))
        after: list[pulumi.Resource] = [chart]
        secret = dns01_secret(args)
        if secret is not None:
            token = secret["stringData"][DNS01_TOKEN_KEY]
            assert isinstance(token, Secret)
            after.append(k8s.core.v1.Secret(
                f"{name}-dns01-token", metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=secret["metadata"]["name"], namespace=ns.metadata.name),
                type=secret["type"], string_data={DNS01_TOKEN_KEY: pulumi.Output.secret(token.value)},
                opts=kube.child_options(self, opts),
            ))
        timeouts = pulumi.ResourceOptions(custom_timeouts=pulumi.CustomTimeouts(create=ISSUER_TIMEOUT,
                                                                                update=ISSUER_TIMEOUT))
        created: list[pulumi.Output[Any]] = []
        for manifest in issuer_resources(args):
            cr = k8s.apiextensions.CustomResource(
                f"{name}-{manifest['kind'].lower()}-{manifest['metadata']['name']}",
                api_version=manifest["apiVersion"], kind=manifest["kind"],
                metadata=manifest["metadata"], spec=manifest["spec"],
                opts=kube.child_options(self, opts, *after).merge(timeouts),
            )
            after.append(cr)
            created.append(cr.id)
        self.ready = kube.ready_when(*created)
        self.register_outputs({"ready": self.ready, "clusterIssuer": self.cluster_issuer})
