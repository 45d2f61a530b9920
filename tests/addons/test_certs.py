"""cert-manager: CRDs from the chart, the ClusterIssuer from config, secrets, conformance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pytest

from components import certs
from components.config import ConfigError, parse_stack_config
from tests.addons import schema
from tests.addons.conftest import SSH_KEY, homelab, homelab_raw, record

TOKEN_KEY = "platform:certsDns01Token"
ACME = {"email": "ops@example.com"}


def args(overrides: dict[str, Any] | None = None) -> certs.CertsArgs:
    return certs.CertsArgs.from_config(homelab(overrides))


def issuer(**fields: Any) -> dict[str, Any]:
    return {"platform:certs": {"issuer": fields}}


def dns01_config(provider: str = "cloudflare") -> Any:
    raw = homelab_raw(issuer(type="acmeDns01", dns01Provider=provider, **ACME))
    raw[TOKEN_KEY] = "dns-token-value"
    return parse_stack_config(raw, frozenset({SSH_KEY, TOKEN_KEY}), stack="homelab")


def test_chart_installs_and_keeps_its_crds() -> None:
    values = certs.values(args())
    assert values["crds"] == {"enabled": True, "keep": True}
    assert values["ingressShim"] == {"defaultIssuerName": "homelab-ca", "defaultIssuerKind": "ClusterIssuer",
                                     "defaultIssuerGroup": "cert-manager.io"}
    for part in ("webhook", "cainjector", "startupapicheck"):
        assert values[part]["nodeSelector"] == {"example.com/role": "control"}


def test_homelab_gets_a_private_ca() -> None:
    root_issuer, ca_cert, ca_issuer = certs.issuer_resources(args())
    assert root_issuer["spec"] == {"selfSigned": {}}
    assert ca_cert["spec"]["isCA"] is True and ca_cert["metadata"]["namespace"] == "cert-manager"
    assert ca_cert["spec"]["issuerRef"] == {"name": root_issuer["metadata"]["name"], "kind": "ClusterIssuer",
                                            "group": "cert-manager.io"}
    assert ca_cert["spec"]["commonName"] == "Homelab Platform CA"
    assert ca_issuer["metadata"]["name"] == "homelab-ca"
    assert ca_issuer["spec"] == {"ca": {"secretName": ca_cert["spec"]["secretName"]}}
    assert ca_issuer["metadata"]["annotations"] == {"pulumi.com/waitFor": "condition=Ready"}


def test_acme_http01_solves_through_the_ingress_class() -> None:
    (only,) = certs.issuer_resources(args({**issuer(name="letsencrypt", type="acmeHttp01", **ACME),
                                           "platform:ingress": {"className": "public"}}))
    acme = only["spec"]["acme"]
    assert acme["email"] == "ops@example.com" and acme["server"].startswith("https://acme-v02.api.letsencrypt.org")
    assert acme["solvers"] == [{"http01": {"ingress": {"ingressClassName": "public"}}}]


@pytest.mark.parametrize(("provider", "ref_key"), [("cloudflare", "apiTokenSecretRef"),
                                                   ("digitalocean", "tokenSecretRef")])
def test_acme_dns01_reads_its_token_from_a_secret(provider: str, ref_key: str) -> None:
    a = certs.CertsArgs.from_config(dns01_config(provider))
    (only,) = certs.issuer_resources(a)
    (solver,) = only["spec"]["acme"]["solvers"]
    assert solver == {"dns01": {provider: {ref_key: {"name": "platform-ca-dns01-token", "key": "api-token"}}}}
    secret = certs.dns01_secret(a)
    assert secret is not None and secret["metadata"]["name"] == "platform-ca-dns01-token"


def test_dns01_token_is_a_secret_in_state_and_never_plain() -> None:
    cfg = dns01_config()

    def build(provider: pulumi.ProviderResource) -> None:
        certs.CertManager("c", certs.CertsArgs.from_config(cfg), pulumi.ResourceOptions(providers=[provider]))

    rec = record(build)
    (secret,) = rec.of_type("kubernetes:core/v1:Secret")
    assert secret.is_secret("stringData.api-token")
    assert "dns-token-value" not in json.dumps([r.redacted_inputs() for r in rec])
    (issuer_cr,) = rec.of_type("kubernetes:cert-manager.io/v1:ClusterIssuer")
    assert rec.depends_on(issuer_cr, secret)
    assert rec.depends_on(issuer_cr, one_release(rec))


def one_release(rec: Any) -> Any:
    (release,) = rec.of_type("kubernetes:helm.sh/v3:Release")
    return release


@pytest.mark.parametrize(("overrides", "key", "fragment"), [
    (issuer(type="acmeHttp01"), "platform:certs.issuer.email", "e-mail"),
    (issuer(type="acmeDns01", **ACME), TOKEN_KEY, "pulumi config set --secret"),
    ({**issuer(type="acmeHttp01", **ACME), "platform:ingress": {"enabled": False}}, "platform:certs.issuer.type",
     "ingress"),
    (issuer(type="letsencrypt"), "platform:certs.issuer.type", "letsencrypt"),
])
def test_issuer_errors_name_the_key(overrides: dict[str, Any], key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        homelab(overrides)
    assert any(e.startswith(key) and fragment in e for e in err.value.errors), err.value.errors


@pytest.mark.parametrize("overrides", [{}, issuer(name="le", type="acmeHttp01", **ACME)])
def test_values_and_issuer_resources_conform(conformance: Path, overrides: dict[str, Any]) -> None:
    a = args(overrides)
    spec = certs.release_spec(a)
    assert (spec.pin.chart, spec.pin.version) == ("cert-manager", "v1.21.1")
    found = schema.check_values(spec.pin.chart, spec.pin.version, spec.values, conformance)
    assert found.errors == [] and found.warnings == []
    for resource in certs.issuer_resources(a):
        assert schema.validate_custom_resource(resource, conformance) == [], resource["kind"]


def test_dns01_issuer_conforms(conformance: Path) -> None:
    for resource in certs.issuer_resources(certs.CertsArgs.from_config(dns01_config())):
        assert schema.validate_custom_resource(resource, conformance) == []
