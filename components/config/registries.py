"""`k3s.registries`: containerd mirrors and per-registry auth/TLS, as K3s's registries.yaml reads them.

K3s (``github.com/rancher/wharfie/pkg/registries``) reads ``mirrors.<registry>.endpoint`` and
``configs.<host[:port]>.{auth: {username, password, auth, identity_token}, tls: {ca_file,
cert_file, key_file, insecure_skip_verify}}``; it ignores unknown keys silently, so the stack
config is checked here instead, with camelCase keys:

- plain config ``platform:k3s.registries.configs["<host[:port]>"]``: ``auth.username``,
  ``tls.ca`` / ``tls.cert`` (PEM text, written to files under /etc/rancher/k3s/ by the install
  step), ``tls.insecureSkipVerify``; an empty entry (``{}``) is K3s's "no wildcard config for
  this registry";
- the secret ``platform:k3sRegistryCredentials``: an object of ``<host[:port]>`` ->
  ``{password | identityToken, tlsKey}`` (set with ``pulumi config set --secret --path``). Its
  values never appear in a message, a script or plain state: they reach the hosts inside
  registries.yaml and the key files on the install step's secret stdin.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from components.config.reader import NAMESPACE, Reader, Secret, describe, suggest
from components.netaddr import DNS_NAME_RE, parse_ip
from components.problems import Problems

CREDENTIALS_KEY = "k3sRegistryCredentials"
CREDENTIAL_FIELDS = ("password", "identityToken", "tlsKey")
PEM_CERTS_RE = r"(-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE-----\s*)+"
# The PEM label is assembled so that no literal key header sits in the source (secret scanners).
_KEY = "PRIVATE" + " KEY"
PEM_KEY_RE = re.compile(
    rf"-----BEGIN (?P<kind>(RSA |EC |ENCRYPTED )?){_KEY}-----\n(?P<body>[A-Za-z0-9+/= \n:,-]+?)\n?"
    rf"-----END (?P=kind){_KEY}-----\s*"
)
# Go's crypto/tls (tls.LoadX509KeyPair) reads these; a passphrase-protected key it cannot.
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
ENDPOINT_URL_RE = r"https?://[A-Za-z0-9.-]+(:\d+)?(/[A-Za-z0-9._/-]*)?"


@dataclass(frozen=True)
class RegistryConfig:
    """One ``configs`` entry of registries.yaml: credentials and TLS for one registry host."""

    host: str  # host[:port] as the image reference and mirror endpoints name it, or '*'
    username: str | None = None
    password: Secret | None = None
    identity_token: Secret | None = None  # registries.yaml auth.identity_token (an OAuth2 refresh token)
    ca: str | None = None  # PEM certificates that sign the registry's server certificate
    cert: str | None = None  # PEM client certificate (mutual TLS); its key is `tls_key`
    tls_key: Secret | None = None
    insecure_skip_verify: bool = False

    @property
    def has_auth(self) -> bool:
        return self.username is not None or self.password is not None or self.identity_token is not None


def registry_host_problem(host: object, *, wildcard: bool = True) -> str | None:
    """Why `host` is not a registry name K3s matches (``host[:port]``, or ``*``), or None."""
    if not isinstance(host, str):
        return f"{describe(host)} is not a registry host name"
    if host == "*":
        return None if wildcard else "'*' is not allowed here"
    if "://" in host or "/" in host:
        return (f"{describe(host)} is not a registry host name: give host[:port] without a scheme or path "
                "(e.g. registry.example.com:5000)")
    name, port = host, None
    m = re.fullmatch(r"(\[[^\]]*\]|[^:]*)(?::(\d{1,5}))?", host)
    if m is not None:
        name, port = m[1], m[2]
    if port is not None and not 0 < int(port) < 65536:
        return f"{describe(host)}: port {port} is out of range 1-65535"
    if name.startswith("["):
        ip = parse_ip(name[1:-1])
        ok = ip is not None and ip.version == 6
    else:
        ip = parse_ip(name)
        ok = (ip is not None and ip.version == 4) or bool(DNS_NAME_RE.fullmatch(name))
    if m is None or not ok:
        return (f"{describe(host)} is not a registry host name (a lower-case DNS name or IPv4 address, or an "
                "IPv6 address in brackets, with an optional :port" + (", or '*'" if wildcard else "") + ")")
    return None


def registry_dir_name(host: str) -> str:
    """A file-system name for `host` (its TLS files' directory): ``registry.example.com_5000``,
    ``2001-db8--1_5000`` for ``[2001:db8::1]:5000``, ``_default`` for ``*`` (as K3s names it)."""
    if host == "*":
        return "_default"
    name, _, port = host.rpartition(":") if not host.endswith("]") and ":" in host else (host, "", "")
    name = name.strip("[]").replace(":", "-")
    return f"{name}_{port}" if port else name


def pem_key_problem(text: str) -> str | None:
    """Why `text` is not an unencrypted PEM private key Go's crypto/tls reads (never echoed), or None."""
    m = PEM_KEY_RE.fullmatch(text.strip() + "\n")
    if m is None:
        return (f"is not a PEM private key (expected the whole key file, from its '-----BEGIN {_KEY}-----' "
                "line, or the RSA / EC form, to its END line)")
    if m["kind"] == "ENCRYPTED " or "Proc-Type: 4,ENCRYPTED" in m["body"]:
        return "is protected by a passphrase, which K3s (containerd) cannot use; decrypt it (openssl pkey -in key)"
    return None


def _pem_certs(r: Reader, key: str) -> str | None:
    value = r.string(key)
    if value is None:
        return None
    if not re.fullmatch(PEM_CERTS_RE, value.replace("\r\n", "\n").strip()):
        r.error(key, "expected one or more PEM certificates (the file's text, from -----BEGIN CERTIFICATE----- to "
                     "-----END CERTIFICATE-----)")
        return None
    return value.replace("\r\n", "\n").strip() + "\n"


def _decode_credentials(secret: Secret | None, problems: Problems) -> dict[str, Any]:
    """The credentials object (its text is never echoed: a parse error names only the key)."""
    where = f"{NAMESPACE}:{CREDENTIALS_KEY}"
    if secret is None:
        return {}
    text = secret.value
    value: Any = None
    try:
        value = json.loads(text)
    except ValueError:
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = None
    if not isinstance(value, Mapping):
        problems.error(where, "is not an object of registry host -> {password | identityToken, tlsKey} (its text is "
                              "not shown: it is a secret); set each value with: pulumi config set --secret --path "
                              f"'{where}[\"registry.example.com:5000\"].password' <password>")
        return {}
    return dict(value)


def parse_registries(k: Reader, secrets: Mapping[str, Secret]) -> tuple[
    tuple[tuple[str, tuple[str, ...]], ...], tuple[RegistryConfig, ...],
]:
    """``k3s.registries`` (mirrors and configs) and the secret ``k3sRegistryCredentials``."""
    problems = k.problems
    registries = k.obj("registries")
    mirrors = _parse_mirrors(registries)
    configs_path = registries.key_path("configs")
    raw_configs = registries.raw("configs") or {}
    if not isinstance(raw_configs, Mapping):
        registries.error("configs", "expected an object of registry host[:port] -> {auth, tls}")
        raw_configs = {}
    registries.finish()
    credentials = _decode_credentials(secrets.get(CREDENTIALS_KEY), problems)
    cred_path = f"{NAMESPACE}:{CREDENTIALS_KEY}"
    for host in credentials:
        if host not in raw_configs:
            problems.error(f'{cred_path}["{host}"]', f"has credentials for a registry that {configs_path} does not "
                           f"list{suggest(str(host), [str(h) for h in raw_configs])}; add "
                           f'{configs_path}["{host}"] (e.g. {{auth: {{username: ...}}}}), or remove the credentials '
                           f"(pulumi config rm --path '{cred_path}[\"{host}\"]')")
    out: list[RegistryConfig] = []
    dirs: dict[str, str] = {}
    for host, entry in raw_configs.items():
        path = f'{configs_path}["{host}"]'
        problem = registry_host_problem(host)
        if problem:
            problems.error(path, problem)
            continue
        parsed = _parse_config(Reader(entry, path, problems), host, credentials.get(host), cred_path)
        if parsed is None:
            continue
        name = registry_dir_name(host)
        if name in dirs:
            problems.error(path, f"names the same registry TLS directory as {dirs[name]}; use one entry per registry")
            continue
        dirs[name] = path
        out.append(parsed)
    for host, endpoint in port_mismatches(mirrors, out):
        problems.warn(f'{configs_path}["{host}"]', f"the mirror endpoint {endpoint} is on the same host with another "
                      f"port: containerd matches configs by host:port, so this entry does not apply to it; name the "
                      f'entry "{urllib.parse.urlsplit(endpoint).netloc}" if it is meant for that endpoint')
    return mirrors, tuple(sorted(out, key=lambda c: c.host))


def port_mismatches(mirrors: tuple[tuple[str, tuple[str, ...]], ...],
                    configs: list[RegistryConfig]) -> list[tuple[str, str]]:
    """(config host, endpoint) where a mirror endpoint has the config's host name but another port."""
    found: list[tuple[str, str]] = []
    endpoints = sorted({u for _, urls in mirrors for u in urls})
    for c in configs:
        if c.host == "*":
            continue
        wanted = urllib.parse.urlsplit(f"//{c.host}")
        for url in endpoints:
            got = urllib.parse.urlsplit(url)
            if got.hostname == wanted.hostname and got.netloc != wanted.netloc:
                found.append((c.host, url))
    return found


def _parse_mirrors(registries: Reader) -> tuple[tuple[str, tuple[str, ...]], ...]:
    mirrors: list[tuple[str, tuple[str, ...]]] = []
    raw_mirrors = registries.raw("mirrors") or {}
    if not isinstance(raw_mirrors, Mapping):
        registries.error("mirrors", "expected an object of registry -> [endpoint URLs]")
        raw_mirrors = {}
    for registry, endpoints in raw_mirrors.items():
        path = f"{registries.key_path('mirrors')}.{registry}"
        problem = registry_host_problem(registry)
        if problem:
            registries.problems.error(path, problem)
        bad = [u for u in endpoints if not (isinstance(u, str) and re.fullmatch(ENDPOINT_URL_RE, u))] if isinstance(
            endpoints, list) else [endpoints]
        if bad:
            registries.problems.error(path, f"expected a list of http(s):// endpoint URLs, got {describe(bad[0])}")
            continue
        if not problem:
            mirrors.append((str(registry), tuple(endpoints)))
    return tuple(sorted(mirrors))


def _secret_text(problems: Problems, at: str, value: object, what: str) -> str | None:
    """A one-line secret string (its text is never echoed)."""
    if not isinstance(value, str) or not value:
        problems.error(at, f"expected {what} as a non-empty string (the value is not shown: it is a secret)")
        return None
    if what != "a PEM private key" and CONTROL_RE.search(value):
        problems.error(at, f"{what} contains a newline or another control character (not shown), which "
                           "containerd's config.toml cannot carry; set it again without one")
        return None
    return value


def _parse_config(r: Reader, host: str, creds: object, cred_path: str) -> RegistryConfig | None:
    problems = r.problems
    username: str | None = None
    has_username = has_cert = False
    if r.has("auth"):
        a = r.obj("auth")
        has_username = a.has("username")
        username = a.string("username", required=True, hint="the registry user; its password goes in the secret "
                            f"{cred_path}")
        a.finish()
        if username is not None and (not username or CONTROL_RE.search(username) or ":" in username):
            a.error("username", f"{describe(username)} is not a basic-auth user name (one line, no ':')")
            username = None
    ca = cert = None
    insecure = False
    if r.has("tls"):
        t = r.obj("tls")
        has_cert = t.has("cert")
        ca = _pem_certs(t, "ca")
        cert = _pem_certs(t, "cert")
        insecure = t.boolean("insecureSkipVerify", False)
        t.finish()
    r.finish()
    at = f'{cred_path}["{host}"]'
    fields: dict[str, Any] = {}
    if creds is not None:
        if not isinstance(creds, Mapping):
            problems.error(at, "expected an object {password | identityToken, tlsKey} (not shown: it is a secret)")
        else:
            for name, value in creds.items():
                if name not in CREDENTIAL_FIELDS:
                    hint = "; did you mean 'identityToken'? (K3s's auth.identity_token)" if name in (
                        "token", "identity_token", "identitytoken", "auth") else suggest(str(name), CREDENTIAL_FIELDS)
                    problems.error(f"{at}.{name}", f"unknown key{hint} (known keys: {', '.join(CREDENTIAL_FIELDS)})")
                    continue
                fields[name] = value
    password = _secret_text(problems, f"{at}.password", fields["password"], "the password") if (
        "password" in fields) else None
    token = _secret_text(problems, f"{at}.identityToken", fields["identityToken"], "the identity token") if (
        "identityToken" in fields) else None
    key = _secret_text(problems, f"{at}.tlsKey", fields["tlsKey"], "a PEM private key") if (
        "tlsKey" in fields) else None
    if key is not None and (why := pem_key_problem(key)) is not None:
        problems.error(f"{at}.tlsKey", f"{why} (the value is not shown: it is a secret)")
        key = None
    set_cmd = f"pulumi config set --secret --path '{at}.%s'"
    if host == "*" and (r.has("auth") or "password" in fields or "identityToken" in fields):
        problems.error(r.key_path("auth") if r.has("auth") else at,
                       "credentials for '*' would be sent to every registry K3s pulls from; give them for the "
                       "registry's own host[:port] instead ('*' may carry tls only)")
        return None
    if "password" in fields and "identityToken" in fields:
        problems.error(at, "has both password and identityToken: registry auth is either username + password or an "
                           "identity token; remove one (pulumi config rm --path ...)")
    elif "identityToken" in fields and r.has("auth"):
        problems.error(r.key_path("auth"), f"an identity token ({at}.identityToken) authenticates on its own; "
                                           "remove auth, or use auth.username with a password instead of the token")
    elif has_username and "password" not in fields:
        problems.error(at, f"has no password for {r.key_path('auth.username')} ({describe(username)}); run: "
                           + set_cmd % "password" + " <password>")
    elif "password" in fields and not has_username:
        problems.error(r.key_path("auth.username"), f"is required with the password in {at}.password "
                                                    f"(add auth: {{username: <user>}} to {r.path})")
    if has_cert and "tlsKey" not in fields:
        problems.error(at, f"has no tlsKey for the client certificate {r.key_path('tls.cert')}; run: "
                           + set_cmd % "tlsKey" + " -- < client.key")
    elif "tlsKey" in fields and not has_cert:
        problems.error(r.key_path("tls.cert"), f"is required with the client key in {at}.tlsKey (the PEM "
                                               "certificate that goes with it)")
    return RegistryConfig(
        host=host, username=username, password=Secret(f"{at}.password", password) if password else None,
        identity_token=Secret(f"{at}.identityToken", token) if token else None, ca=ca, cert=cert,
        tls_key=Secret(f"{at}.tlsKey", key.replace("\r\n", "\n").strip() + "\n") if key else None,
        insecure_skip_verify=insecure,
    )
