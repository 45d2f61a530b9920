"""Config for certificates (cert-manager and one ClusterIssuer): ``platform:certs``.

Issuer types: ``selfSigned`` (a private CA for a homelab without public DNS: a self-signed
root in cert-manager's namespace and a CA ClusterIssuer on it), ``acmeHttp01`` (ACME, solved
through the ingress class) and ``acmeDns01`` (ACME, solved at a DNS provider with an API token
from the secret ``platform:certsDns01Token``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from components.config.ingress import Ingress
from components.config.reader import NAMESPACE, Reader, Secret, secret_command
from components.netaddr import DNS_LABEL_RE, DNS_NAME_RE

ISSUER_TYPES = ("selfSigned", "acmeHttp01", "acmeDns01")
DNS01_PROVIDERS = ("cloudflare", "digitalocean")
LETSENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
DNS01_SECRET_KEY = "certsDns01Token"  # noqa: S105 - a config key name, not a value


@dataclass(frozen=True)
class Issuer:
    name: str = "platform-ca"
    type: Literal["selfSigned", "acmeHttp01", "acmeDns01"] = "selfSigned"
    email: str | None = None
    server: str = LETSENCRYPT
    dns01_provider: Literal["cloudflare", "digitalocean"] = "cloudflare"
    dns01_token: Secret | None = None
    ca_common_name: str = "Platform CA"


@dataclass(frozen=True)
class Certs:
    enabled: bool = True
    issuer: Issuer = field(default_factory=Issuer)


def parse_certs(top: Reader, ingress: Ingress, secrets: Mapping[str, Secret]) -> Certs:
    c = top.obj("certs")
    enabled = c.boolean("enabled", True)
    i = c.obj("issuer")
    name = i.string("name", "platform-ca", pattern=DNS_LABEL_RE.pattern, hint="a DNS-1123 label") or "platform-ca"
    kind = i.choice("type", ISSUER_TYPES, "selfSigned")
    email = i.string("email", pattern=r"[^@\s]+@[^@\s]+\.[^@\s]+", hint="an e-mail address")
    server = i.string("server", LETSENCRYPT, pattern=r"https://\S+", hint="an https:// ACME directory URL")
    provider = i.choice("dns01Provider", DNS01_PROVIDERS, "cloudflare")
    common_name = i.string("caCommonName", "Platform CA") or "Platform CA"
    token = secrets.get(DNS01_SECRET_KEY)
    if enabled and kind.startswith("acme") and email is None:
        i.error("email", f"issuer type {kind} needs the ACME account e-mail address")
    if enabled and kind == "acmeHttp01" and not ingress.enabled:
        i.error("type", f"acmeHttp01 solves challenges through the ingress, but {NAMESPACE}:ingress.enabled is "
                        "false; enable the ingress or use acmeDns01 or selfSigned")
    if enabled and kind == "acmeDns01" and token is None:
        top.problems.error(f"{NAMESPACE}:{DNS01_SECRET_KEY}",
                           f"issuer type acmeDns01 needs the {provider} API token; run: "
                           f"{secret_command(DNS01_SECRET_KEY)}")
    if common_name and not DNS_NAME_RE.fullmatch(common_name.replace(" ", "-").lower()):
        i.error("caCommonName", "use letters, digits, spaces, dots and dashes")
    i.finish()
    c.finish()
    issuer = Issuer(name, kind, email, server or LETSENCRYPT, provider, token,  # type: ignore[arg-type]
                    common_name)
    return Certs(enabled, issuer)
