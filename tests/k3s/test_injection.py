"""Hostile text in every user-controlled field is either rejected or arrives intact and inert.

For every accepted example, each rendered script's values block is executed by bash and
every variable must hold exactly the intended value while no command ran (a canary file
that every payload tries to create must not exist). The static part of each script only
ever expands "$VARIABLES" (see test_scripts), so values that arrive intact cannot run.
config.yaml must load back to exactly the rendered document.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from components.k3s import render, scripts
from components.k3s.args import K3sClusterArgs
from components.problems import ConfigError

from .sandbox import Sandbox, unshare_available
from .stacks import FAST, SECRETS, homelab_raw, parse

CANARY = Path(f"/tmp/platform-k3s-canary-{os.getpid()}")
PAYLOADS = [
    f"$(touch {CANARY})", f"`touch {CANARY}`", f";touch {CANARY};", f"\ntouch {CANARY}\n", f"' ; touch {CANARY} ; '",
    f'"; touch {CANARY}; "', f"|| touch {CANARY}", f"&& touch {CANARY}", "${IFS}", "$HOME", "*", "~root", "\\", "'",
    "\n", " ", "-rf /", "%s%n", "{a,b}",
]
PREFIXES = ["", "192.0.2.60", "node-x", "example.com", "eth0", "v1.34.2+k3s1", "/var/lib/x", "10.42.0.0/16",
            "0 */6 * * *", "https://m.example.com", "a=b:NoSchedule", "etcd-backups"]

hostile = st.one_of(
    st.text(max_size=24),
    st.sampled_from(PREFIXES),
    st.builds(lambda pre, payload, post: pre + payload + post, st.sampled_from(PREFIXES), st.sampled_from(PAYLOADS),
              st.text(max_size=4)),
)

Setter = Callable[[dict[str, Any], str], None]


def at(*path: Any) -> Setter:
    def setter(raw: dict[str, Any], value: str) -> None:
        target = raw
        for key in path[:-1]:
            target = target.setdefault(key, {}) if isinstance(target, dict) else target[key]
        target[path[-1]] = value
    return setter


def label_key(raw: dict[str, Any], value: str) -> None:
    raw["platform:nodes"][4]["labels"] = {value: "x"}


def mirror(raw: dict[str, Any], value: str) -> None:
    raw["platform:k3s"]["registries"] = {"mirrors": {value: [f"https://{value}"]}}


def hostpath(raw: dict[str, Any], value: str) -> None:
    raw["platform:storage"] = {"kind": "openebs", "openebs": {"engine": "hostpath", "hostpathBasePath": value}}


def s3(field: str) -> Setter:
    def setter(raw: dict[str, Any], value: str) -> None:
        base = {"bucket": "etcd-backups", "accessKey": "AKIA", field: value}
        raw["platform:k3s"].setdefault("etcd", {})["s3"] = base
    return setter


REGISTRY = "registry.example.com:5000"


def registry_config(entry: Callable[[str], dict[str, Any]], host: str | None = None) -> Setter:
    def setter(raw: dict[str, Any], value: str) -> None:
        raw["platform:k3s"]["registries"] = {"configs": {host or value: entry(value)}}
    return setter


# Fields whose setter needs a secret too (the hostile `secret` of the example goes there).
FIELD_SECRETS: dict[str, Callable[[str], dict[str, str]]] = {
    "k3s.registries.configs.auth.username": lambda secret: {
        "platform:k3sRegistryCredentials": json.dumps({REGISTRY: {"password": secret or "x"}})},
}

FIELDS: dict[str, Setter] = {
    "clusterName": at("platform:clusterName"),
    "nodes[0].name": at("platform:nodes", 0, "name"),
    "nodes[4].name": at("platform:nodes", 4, "name"),
    "nodes[1].address": at("platform:nodes", 1, "address"),
    "nodes[4].labels.key": label_key,
    "nodes[4].labels.value": lambda raw, v: raw["platform:nodes"][4].__setitem__("labels", {"example.com/x": v}),
    "nodes[5].taints": lambda raw, v: raw["platform:nodes"][5].__setitem__("taints", [v]),
    "nodes[2].user": at("platform:nodes", 2, "user"),
    "ssh.user": at("platform:ssh", "user"),
    "network.clusterDomain": at("platform:network", "clusterDomain"),
    "network.clusterDns": at("platform:network", "clusterDns"),
    "network.podCidr": at("platform:network", "podCidr"),
    "k3s.vip.address": at("platform:k3s", "vip", "address"),
    "k3s.vip.interface": at("platform:k3s", "vip", "interface"),
    "k3s.apiEndpoint": at("platform:k3s", "apiEndpoint"),
    "k3s.tlsSans": lambda raw, v: raw["platform:k3s"].__setitem__("tlsSans", [v]),
    "k3s.firewall": at("platform:k3s", "firewall"),
    "k3s.etcd.snapshotSchedule": at("platform:k3s", "etcd", "snapshotSchedule"),
    "k3s.etcd.s3.endpoint": s3("endpoint"),
    "k3s.etcd.s3.folder": s3("folder"),
    "k3s.etcd.s3.region": s3("region"),
    "k3s.etcd.s3.accessKey": s3("accessKey"),
    "k3s.registries.mirrors": mirror,
    "k3s.registries.configs.host": registry_config(lambda v: {"tls": {"insecureSkipVerify": True}}),
    "k3s.registries.configs.auth.username": registry_config(lambda v: {"auth": {"username": v}}, REGISTRY),
    "k3s.registries.configs.tls.ca": registry_config(lambda v: {"tls": {"ca": v}}, REGISTRY),
    "versions.k3s": at("platform:versions", "k3s"),
    "versions.kubeVip": at("platform:versions", "kubeVip"),
    "storage.openebs.hostpathBasePath": hostpath,
}


def values_program(script: scripts.Script) -> tuple[str, list[str]]:
    """Bash that runs the values block and prints every variable; and what it must print."""
    block = script.split("# --- values ---\n", 1)[1].split("# --- end of values ---\n", 1)[0]
    lines = [block]
    expected: list[str] = []
    for name, value in script.values.items():
        if isinstance(value, (str, int)):
            lines.append(f"printf '%s\\0' \"${name}\"")
            expected.append(str(value))
        else:
            lines.append(f"printf '%s\\0' \"${{#{name}[@]}}\" ${{{name}[@]+\"${{{name}[@]}}\"}}")
            expected += [str(len(value)), *value]
    return "\n".join(lines), expected


def check_inert(args: K3sClusterArgs, secrets: render.ConfigSecrets) -> None:
    programs, expected = [], []
    for script in scripts.all_scripts(args).values():
        program, want = values_program(script)
        programs.append(program)
        expected += want
    proc = subprocess.run(["bash", "-c", "\n".join(programs)], capture_output=True, cwd="/tmp")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode("utf-8", "surrogateescape").split("\0")[:-1] == expected
    assert not CANARY.exists(), "a value ran a command"
    for node in args.nodes:
        text = render.render_node_config(args, node, secrets)
        assert yaml.safe_load(text) == render.node_config(args, node, secrets)
    registries = render.registries_yaml(args, secrets)
    if registries is not None:  # on stdin, like config.yaml: it must load back to exactly the document
        assert yaml.safe_load(registries) == render.registries_doc(args, secrets)


@pytest.fixture(autouse=True)
def no_canary() -> Any:
    CANARY.unlink(missing_ok=True)
    yield
    assert not CANARY.exists(), "a value ran a command"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(FIELDS)), hostile, hostile)
def test_hostile_text_in_any_field_is_rejected_or_inert(field: str, value: str, secret: str) -> None:
    raw = copy.deepcopy(homelab_raw())
    FIELDS[field](raw, value)
    secret_values = {**SECRETS, "platform:etcdS3SecretKey": secret or "x",
                     **(FIELD_SECRETS[field](secret) if field in FIELD_SECRETS else {})}
    try:
        args = K3sClusterArgs.from_config(parse(raw, secret_values))
    except ConfigError:
        event("rejected by validation")
        return
    event("accepted: checked inert")
    check_inert(args, render.ConfigSecrets(secret, secret[::-1], secret, registries=render.registry_credentials(args)))


@pytest.mark.parametrize("payload", PAYLOADS)
def test_valid_configs_carrying_payloads_in_free_text_stay_inert(payload: str) -> None:
    """Secrets are free text by nature: they reach the host only inside config.yaml on stdin."""
    raw = copy.deepcopy(homelab_raw())
    raw["platform:k3s"]["etcd"]["s3"] = {"bucket": "etcd-backups", "accessKey": "AKIA"}
    args = K3sClusterArgs.from_config(parse(raw, {**SECRETS, "platform:etcdS3SecretKey": payload}))
    check_inert(args, render.ConfigSecrets(payload, payload, payload))


@pytest.mark.skipif(not unshare_available(), reason="needs unshare (mount namespace) and chroot")
def test_a_hostile_secret_on_stdin_runs_nothing_on_the_host(tmp_path: Path) -> None:
    args = dataclasses.replace(K3sClusterArgs.from_config(parse(homelab_raw())), timeouts=FAST)
    sb = Sandbox(tmp_path)
    hostile_secret = "".join(PAYLOADS).replace(str(CANARY), "/pwned")
    node = args.servers[0]
    config = render.install_stdin(args, node, render.ConfigSecrets(hostile_secret, hostile_secret, None))
    result = sb.run(scripts.install_script(args, node), stdin=config)
    assert result.returncode == 0, result.stderr
    assert not sb.path("/pwned").exists()
    assert yaml.safe_load(sb.path("/etc/rancher/k3s/config.yaml").read_text())["token"] == hostile_secret
    assert hostile_secret not in result.stderr + result.stdout


@pytest.mark.parametrize("payload", [p for p in PAYLOADS if "\n" not in p and ":" not in p])
def test_registry_username_and_password_carrying_payloads_stay_inert(payload: str) -> None:
    """A registry's username (config) and password (secret) are free text: they travel only in
    registries.yaml on the install step's stdin and load back exactly."""
    raw = copy.deepcopy(homelab_raw())
    registry_config(lambda v: {"auth": {"username": v}}, REGISTRY)(raw, "ci" + payload)
    args = K3sClusterArgs.from_config(parse(raw, {**SECRETS, **FIELD_SECRETS["k3s.registries.configs.auth.username"](
        "pw" + payload)}))
    secrets = render.ConfigSecrets("t", "a", None, registries=render.registry_credentials(args))
    check_inert(args, secrets)
    auth = render.registries_doc(args, secrets)["configs"][REGISTRY]["auth"]  # type: ignore[index]
    assert auth == {"username": "ci" + payload, "password": "pw" + payload}
    assert not any("pw" + payload in str(s) for s in scripts.all_scripts(args).values())
