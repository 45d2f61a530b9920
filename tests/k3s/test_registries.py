"""k3s.registries.configs: registry auth and TLS in registries.yaml, with the secrets on stdin only."""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.config import ConfigError
from components.config.reader import Secret
from components.config.registries import RegistryConfig, registry_dir_name, registry_host_problem
from components.k3s import render, scripts
from components.k3s.args import K3sClusterArgs

from .mockrun import record_cluster
from .sandbox import Sandbox, unshare_available
from .stacks import FAST, SECRETS, homelab_raw, parse

REGISTRY = "registry.example.com:5000"
PASSWORD = "pw-Zq8#x'y$(touch /tmp/pwned)\"`id`"
TOKEN = "identity-token-0123456789abcdef"


def pem(label: str, seed: str) -> str:
    body = base64.b64encode((seed * 40).encode()).decode()
    return f"-----BEGIN {label}-----\n" + "\n".join(body[i:i + 64] for i in range(0, len(body), 64)) + (
        f"\n-----END {label}-----\n")


CA = pem("CERTIFICATE", "ca")
CERT = pem("CERTIFICATE", "client")
KEY = pem("PRIVATE" + " KEY", "secret-client-key")  # assembled: no literal key header in the source
KEY_LINES = [line for line in KEY.splitlines() if "-----" not in line]


def registries_raw() -> dict[str, Any]:
    raw = copy.deepcopy(homelab_raw())
    raw["platform:k3s"]["registries"] = {
        "mirrors": {"docker.io": [f"https://{REGISTRY}"]},
        "configs": {
            REGISTRY: {"auth": {"username": "ci-puller"},
                       "tls": {"ca": CA, "cert": CERT, "insecureSkipVerify": False}},
            "ghcr.io": {},
            "quay.example.com": {"tls": {"insecureSkipVerify": True}},
            "tokens.example.com": {},
            "*": {"tls": {"ca": CA}},
        },
    }
    return raw


def credentials(password: str = PASSWORD, key: str = KEY) -> dict[str, str]:
    creds = {REGISTRY: {"password": password, "tlsKey": key}, "tokens.example.com": {"identityToken": TOKEN}}
    return {**SECRETS, "platform:k3sRegistryCredentials": json.dumps(creds)}


def registry_args(raw: dict[str, Any] | None = None, secrets: dict[str, str] | None = None) -> K3sClusterArgs:
    args = K3sClusterArgs.from_config(parse(raw or registries_raw(), secrets or credentials()))
    return dataclasses.replace(args, timeouts=FAST)


def secrets_of(args: K3sClusterArgs) -> render.ConfigSecrets:
    return render.ConfigSecrets("k" * 64, "g" * 64, None, registries=render.registry_credentials(args))


def errors(raw: dict[str, Any], secrets: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as failed:
        parse(raw, secrets)
    return "\n".join(failed.value.errors)


# -- the rendered file ---------------------------------------------------------------------------


def test_registries_yaml_uses_k3s_field_names() -> None:
    args = registry_args()
    doc = yaml.safe_load(render.registries_yaml(args, secrets_of(args)) or "")
    base = f"{render.REGISTRY_TLS_DIR}/registry.example.com_5000"
    assert doc == {
        "mirrors": {"docker.io": {"endpoint": [f"https://{REGISTRY}"]}},
        "configs": {
            "*": {"tls": {"ca_file": f"{render.REGISTRY_TLS_DIR}/_default/ca.crt"}},
            "ghcr.io": {},  # an empty entry: no wildcard config for this registry (K3s's documented form)
            "quay.example.com": {"tls": {"insecure_skip_verify": True}},
            REGISTRY: {"auth": {"username": "ci-puller", "password": PASSWORD},
                       "tls": {"ca_file": f"{base}/ca.crt", "cert_file": f"{base}/client.crt",
                               "key_file": f"{base}/client.key"}},
            "tokens.example.com": {"auth": {"identity_token": TOKEN}},
        },
    }


def test_mirrors_only_registries_yaml_is_byte_for_byte_what_earlier_runs_wrote() -> None:
    """Nodes deployed before `configs` existed keep their config digest: no restart on upgrade."""
    raw = copy.deepcopy(homelab_raw())
    raw["platform:k3s"]["registries"] = {"mirrors": {"docker.io": ["https://m.example.com"]}}
    args = registry_args(raw, SECRETS)
    assert render.registries_yaml(args) == (
        "# Managed by platform:k3s.\nmirrors:\n  docker.io:\n    endpoint:\n    - https://m.example.com\n")


def test_without_secrets_the_rendered_file_holds_placeholders_only() -> None:
    args = registry_args()
    text = render.registries_yaml(args) or ""
    assert PASSWORD not in text and TOKEN not in text
    assert "password: <registry-password>" in text and "identity_token: <registry-identity-token>" in text


def test_install_stdin_carries_config_registries_and_the_client_key_in_order() -> None:
    args = registry_args()
    node = args.agents[0]
    secrets = secrets_of(args)
    parts = render.install_stdin(args, node, secrets).split(render.STDIN_SEPARATOR + "\n")
    assert parts == [render.render_node_config(args, node, secrets), render.registries_yaml(args, secrets), KEY]
    assert render.registry_key_paths(args) == (f"{render.REGISTRY_TLS_DIR}/registry.example.com_5000/client.key",)
    # Without registries: config.yaml and an empty registries.yaml part.
    plain = registry_args(homelab_raw(), SECRETS)
    assert render.install_stdin(plain, node, secrets).endswith(f"\n{render.STDIN_SEPARATOR}\n")


def test_a_file_holding_the_stdin_separator_is_refused() -> None:
    args = registry_args()
    creds = ((REGISTRY, render.RegistryCredentials(PASSWORD, None, KEY + render.STDIN_SEPARATOR + "\n")),
             ("tokens.example.com", render.RegistryCredentials(None, TOKEN, None)))
    with pytest.raises(ValueError, match="separator"):
        render.install_stdin(args, args.servers[0], dataclasses.replace(secrets_of(args), registries=creds))


def test_registry_secrets_never_appear_in_any_script_and_the_certificates_do() -> None:
    args = registry_args()
    for name, script in scripts.all_scripts(args).items():
        assert PASSWORD not in script and TOKEN not in script, name
        assert not any(line in script for line in KEY_LINES), name
    for node in args.nodes:  # containerd runs on servers and agents alike
        install = scripts.install_script(args, node)
        assert install.values["REGISTRY_KEY_PATHS"] == render.registry_key_paths(args)
        certs = install.values["REGISTRY_CERTS"]
        assert isinstance(certs, list) and CERT in certs and CA in certs


def test_repr_of_registry_secrets_hides_them() -> None:
    args = registry_args()
    text = repr(args) + repr(secrets_of(args))
    assert PASSWORD not in text and TOKEN not in text and KEY_LINES[0] not in text


def test_registry_dir_names() -> None:
    assert registry_dir_name("registry.example.com:5000") == "registry.example.com_5000"
    assert registry_dir_name("ghcr.io") == "ghcr.io"
    assert registry_dir_name("[2001:db8::1]:5000") == "2001-db8--1_5000"
    assert registry_dir_name("[2001:db8::1]") == "2001-db8--1"
    assert registry_dir_name("*") == "_default"


@pytest.mark.parametrize("host, ok", [
    ("registry.example.com:5000", True), ("ghcr.io", True), ("192.0.2.10:5000", True), ("[2001:db8::1]:443", True),
    ("*", True), ("https://registry.example.com", False), ("registry.example.com/v2", False),
    ("registry.example.com:0", False), ("registry.example.com:70000", False), ("Registry.Example.com", False),
    ("2001:db8::1", False), ("a b", False), ("", False),
])
def test_registry_host_syntax(host: str, ok: bool) -> None:
    assert (registry_host_problem(host) is None) == ok


# -- config errors: every one names its key and never the secret ---------------------------------


def _with(mutate: Any, creds: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    raw = registries_raw()
    mutate(raw["platform:k3s"]["registries"]["configs"])
    secrets = credentials()
    if creds is not None:
        secrets["platform:k3sRegistryCredentials"] = json.dumps(creds)
    return raw, secrets


GOOD = {REGISTRY: {"password": PASSWORD, "tlsKey": KEY}, "tokens.example.com": {"identityToken": TOKEN}}


@pytest.mark.parametrize("mutate, creds, expected", [
    (lambda c: c.update({"https://r.example.com": {}}), None,
     'configs["https://r.example.com"]: \'https://r.example.com\' is not a registry host name: give host[:port] '
     "without a scheme"),
    (lambda c: None, {**GOOD, REGISTRY: {"tlsKey": KEY}},
     f'k3sRegistryCredentials["{REGISTRY}"]: has no password for platform:k3s.registries.configs["{REGISTRY}"]'
     ".auth.username ('ci-puller'); run: pulumi config set --secret --path "
     f"'platform:k3sRegistryCredentials[\"{REGISTRY}\"].password' <password>"),
    (lambda c: None, {**GOOD, REGISTRY: {"password": PASSWORD}},
     f"has no tlsKey for the client certificate platform:k3s.registries.configs[\"{REGISTRY}\"].tls.cert"),
    (lambda c: None, {**GOOD, "ghcr.io": {"password": PASSWORD}},
     'configs["ghcr.io"].auth.username: is required with the password'),
    (lambda c: None, {**GOOD, "tokens.example.com": {"identityToken": TOKEN, "password": PASSWORD}},
     "has both password and identityToken"),
    (lambda c: c["tokens.example.com"].update({"auth": {"username": "u"}}), None,
     "an identity token (platform:k3sRegistryCredentials[\"tokens.example.com\"].identityToken) authenticates on "
     "its own"),
    (lambda c: None, {**GOOD, "*": {"password": PASSWORD}}, "credentials for '*' would be sent to every registry"),
    (lambda c: c["*"].update({"auth": {"username": "u"}}), None,
     "credentials for '*' would be sent to every registry"),
    (lambda c: None, {**GOOD, "nowhere.example.com": {"password": PASSWORD}},
     'k3sRegistryCredentials["nowhere.example.com"]: has credentials for a registry that '
     "platform:k3s.registries.configs does not list"),
    (lambda c: None, {**GOOD, "tokens.example.com": {"token": TOKEN}},
     "k3sRegistryCredentials[\"tokens.example.com\"].token: unknown key; did you mean 'identityToken'?"),
    (lambda c: None, {**GOOD, REGISTRY: {"password": PASSWORD + "\nmore", "tlsKey": KEY}},
     "the password contains a newline or another control character (not shown)"),
    (lambda c: None, {**GOOD, REGISTRY: {"password": PASSWORD, "tlsKey": pem("ENCRYPTED PRIVATE" + " KEY", "x")}},
     "is protected by a passphrase"),
    (lambda c: None, {**GOOD, REGISTRY: {"password": PASSWORD, "tlsKey": PASSWORD}}, "is not a PEM private key"),
    (lambda c: c[REGISTRY]["auth"].update({"username": "ci:puller"}), None,
     "'ci:puller' is not a basic-auth user name (one line, no ':')"),
    (lambda c: c[REGISTRY]["tls"].update({"ca": "not a pem"}), None,
     f'configs["{REGISTRY}"].tls.ca: expected one or more PEM certificates'),
    (lambda c: c[REGISTRY]["tls"].update({"ca_file": "/etc/ca.crt"}), None,
     f'configs["{REGISTRY}"].tls.ca_file: unknown key'),
    (lambda c: c[REGISTRY].update({"auth": {"username": "ci-puller", "password": "inline"}}), None,
     f'configs["{REGISTRY}"].auth.password: unknown key'),
])
def test_config_mistakes_are_reported_with_the_key_and_the_fix(mutate: Any, creds: Any, expected: str) -> None:
    raw, secrets = _with(mutate, creds)
    message = errors(raw, secrets)
    assert expected in message, message
    for secret in (PASSWORD, TOKEN, *KEY_LINES):
        assert secret not in message


def test_credentials_that_are_not_an_object_are_refused_without_echoing_them() -> None:
    secrets = {**SECRETS, "platform:k3sRegistryCredentials": PASSWORD}
    message = errors(registries_raw(), secrets)
    assert "platform:k3sRegistryCredentials: is not an object of registry host" in message
    assert PASSWORD not in message


def test_credentials_set_in_plain_text_are_refused() -> None:
    raw = registries_raw()
    raw["platform:k3sRegistryCredentials"] = json.dumps(GOOD)
    with pytest.raises(ConfigError) as failed:
        from components.config import parse_stack_config

        parse_stack_config({**raw, **SECRETS}, frozenset(SECRETS))
    assert "platform:k3sRegistryCredentials: is a secret but was set in plain text" in str(failed.value)


def test_a_structured_secret_handed_over_decoded_is_read_too() -> None:
    secrets: dict[str, Any] = {**SECRETS, "platform:k3sRegistryCredentials": GOOD}
    args = K3sClusterArgs.from_config(parse(registries_raw(), secrets))
    assert {c.host for c in args.registry_configs if c.password} == {REGISTRY}


def test_private_registry_is_owned_by_the_program() -> None:
    raw = registries_raw()
    raw["platform:k3s"]["extraAgentConfig"] = {"private-registry": "/tmp/r.yaml"}
    assert "extraAgentConfig.private-registry: is set by the program itself" in errors(raw, credentials())


@pytest.mark.parametrize("change, expected", [
    (dict(host="https://x"), "is not a registry host[:port] or '*'"),
    (dict(username="a\nb"), "is not a basic-auth user name"),
    (dict(password=None), "needs both a username and a password"),
    (dict(identity_token=Secret("t", TOKEN)), "not both"),
    (dict(cert="junk"), "tls.cert: is not one or more PEM certificates"),
    (dict(tls_key=None), "a client certificate and its key"),
    (dict(tls_key=Secret("k", "junk")), "is not an unencrypted PEM private key"),
    (dict(password=Secret("p", "a\x7fb")), "has a control character"),
])
def test_args_revalidate_registry_configs(change: dict[str, Any], expected: str) -> None:
    args = registry_args()
    first = next(c for c in args.registry_configs if c.host == REGISTRY)
    bad = dataclasses.replace(first, **change)
    with pytest.raises(ConfigError) as failed:
        dataclasses.replace(args, registry_configs=(bad,))
    assert expected in str(failed.value)
    assert PASSWORD not in str(failed.value)


def test_args_refuse_auth_for_the_wildcard() -> None:
    args = registry_args()
    wildcard = RegistryConfig("*", username="u", password=Secret("p", PASSWORD))
    with pytest.raises(ConfigError, match="would be sent to every registry"):
        dataclasses.replace(args, registry_configs=(wildcard,))


# -- the registered graph: the secrets ride only on the secret stdin ------------------------------


def test_registry_secrets_reach_the_install_steps_only_on_secret_stdin() -> None:
    args = registry_args()
    rec = record_cluster(args, name="reg").recording
    installs = [r for r in rec if r.type == "command:remote:Command" and r.name.endswith("-install")]
    assert len(installs) == len(args.nodes)
    for res in installs:
        assert res.is_secret("stdin")
        assert f"password: {json.dumps(PASSWORD)}" in res.inputs["stdin"] or PASSWORD in res.inputs["stdin"]
        assert KEY in res.inputs["stdin"] and TOKEN in res.inputs["stdin"]
    for res in rec:
        shown = json.dumps(res.redacted_inputs(), default=str)
        assert PASSWORD not in shown and TOKEN not in shown, res.name
        assert not any(line in shown for line in KEY_LINES), res.name


# -- the install step on a host ---------------------------------------------------------------------

sandboxed = pytest.mark.skipif(not unshare_available(), reason="needs unshare (mount namespace) and chroot")


def _install(sb: Sandbox, args: K3sClusterArgs, node_index: int) -> Any:
    node = args.nodes[node_index]
    return sb.run(scripts.install_script(args, node), stdin=render.install_stdin(args, node, secrets_of(args)))


@sandboxed
@pytest.mark.parametrize("node_index", [0, 3], ids=["server", "agent"])
def test_registries_yaml_and_tls_files_land_with_their_modes_and_a_password_change_restarts(
    tmp_path: Path, node_index: int,
) -> None:
    args = registry_args()
    sb = Sandbox(tmp_path)
    first = _install(sb, args, node_index)
    assert first.returncode == 0, first.stderr
    registries = sb.path("/etc/rancher/k3s/registries.yaml")
    assert registries.read_text() == render.registries_yaml(args, secrets_of(args))
    assert registries.stat().st_mode & 0o777 == 0o600
    base = f"{render.REGISTRY_TLS_DIR}/registry.example.com_5000"
    for name, text, mode in (("client.key", KEY, 0o600), ("client.crt", CERT, 0o644), ("ca.crt", CA, 0o644)):
        path = sb.path(f"{base}/{name}")
        assert path.read_text() == text and path.stat().st_mode & 0o777 == mode, name
    assert sb.path(f"{render.REGISTRY_TLS_DIR}/_default/ca.crt").read_text() == CA
    for secret in (PASSWORD, TOKEN, *KEY_LINES):
        assert secret not in first.stdout + first.stderr

    # An unchanged run changes nothing and restarts nothing.
    before = sb.snapshot()
    sb.reset_calls()
    again = _install(sb, args, node_index)
    assert (again.returncode, again.changes) == (0, 0), again.stderr
    assert sb.mutating_calls() == []
    assert sb.snapshot() == before

    # A new password only: registries.yaml is rewritten and K3s restarts to read it.
    rotated = registry_args(secrets=credentials(password="a-new-password-42"))
    changed = _install(sb, rotated, node_index)
    assert changed.returncode == 0, changed.stderr
    service = "k3s" if node_index == 0 else "k3s-agent"
    assert f"systemctl restart --no-block {service}" in sb.mutating_calls()
    assert "password: a-new-password-42" in registries.read_text()
    assert "a-new-password-42" not in changed.stdout + changed.stderr


@sandboxed
def test_a_new_client_key_restarts_and_removed_registries_leave_no_files(tmp_path: Path) -> None:
    args = registry_args()
    sb = Sandbox(tmp_path)
    assert _install(sb, args, 3).returncode == 0
    other_key = pem("PRIVATE" + " KEY", "another-client-key")
    sb.reset_calls()
    rekeyed = _install(sb, registry_args(secrets=credentials(key=other_key)), 3)
    assert rekeyed.returncode == 0, rekeyed.stderr
    assert "systemctl restart --no-block k3s-agent" in sb.mutating_calls()
    assert sb.path(f"{render.REGISTRY_TLS_DIR}/registry.example.com_5000/client.key").read_text() == other_key

    plain = dataclasses.replace(registry_args(homelab_raw(), SECRETS), timeouts=FAST)
    sb.reset_calls()
    removed = _install(sb, plain, 3)
    assert removed.returncode == 0, removed.stderr
    assert not sb.path("/etc/rancher/k3s/registries.yaml").exists()
    assert not sb.path(render.REGISTRY_TLS_DIR).exists()
    assert "systemctl restart --no-block k3s-agent" in sb.mutating_calls()
    sb.reset_calls()
    assert (_install(sb, plain, 3).changes, sb.mutating_calls()) == (0, [])


@sandboxed
def test_stdin_without_the_expected_files_is_refused_without_echoing_it(tmp_path: Path) -> None:
    args = registry_args()
    sb = Sandbox(tmp_path)
    node = args.agents[0]
    config_only = render.render_node_config(args, node, secrets_of(args))
    result = sb.run(scripts.install_script(args, node), stdin=config_only)
    assert result.returncode != 0
    assert "stdin did not carry this node's config.yaml, registries.yaml and 1 registry client key(s)" in result.stderr
    assert "g" * 64 not in result.stderr + result.stdout
    assert not sb.path("/etc/rancher/k3s/config.yaml").exists()


def test_a_config_for_a_mirror_host_on_another_port_is_pointed_out() -> None:
    raw = registries_raw()
    raw["platform:k3s"]["registries"]["mirrors"] = {"docker.io": ["https://registry.example.com:5443/v2"]}
    cfg = parse(raw, credentials())
    [warning] = [w for w in cfg.warnings if "containerd matches configs by host:port" in w]
    assert warning.startswith(f'platform:k3s.registries.configs["{REGISTRY}"]')
    assert 'name the entry "registry.example.com:5443"' in warning
    assert not [w for w in parse(registries_raw(), credentials()).warnings if "host:port" in w]  # same port: fine
