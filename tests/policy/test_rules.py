"""Each CrossGuard rule with passing and failing resources, through pulumi-policy's own argument
types (no CLI, no policy server), and the real program's stacks through every rule."""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)
from pulumi_policy.proxy import unknown_checking_proxy

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "policy"))
import rules  # type: ignore[import-not-found]  # noqa: E402 - the pack's own module, as the CLI loads it

from components.offline.render import render_secrets  # noqa: E402
from components.offline.runner import run_program  # noqa: E402

RESOURCE_RULES = (rules.helm_pinned, rules.images_pinned, rules.metallb_private_pools, rules.no_plaintext_secrets,
                  rules.protect_stateful)


def opts(protect: bool = False) -> PolicyResourceOptions:
    return PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def urn(rtype: str, name: str, stack: str = "prod") -> str:
    return f"urn:pulumi:{stack}::platform::{rtype}::{name}"


def check(rule: Callable[..., None], rtype: str, props: Mapping[str, Any], *, stack: str = "prod",
          protect: bool = False, config: Mapping[str, Any] | None = None,
          tags: Mapping[str, str] | None = None) -> list[str]:
    found: list[str] = []
    # Props wrapped the way the policy server wraps them (read-only Mapping/Sequence proxies).
    args = ResourceValidationArgs(rtype, unknown_checking_proxy(dict(props)), urn(rtype, "r", stack), "r",
                                  opts(protect), None, config, tags)
    rule(args, lambda message, urn=None: found.append(message))
    return found


def check_stack(resources: list[tuple[str, Mapping[str, Any]]], *, stack: str = "prod",
                config: Mapping[str, Any] | None = None) -> list[str]:
    found: list[str] = []
    policy_resources = [PolicyResource(t, unknown_checking_proxy(dict(p)), urn(t, f"r{i}", stack), f"r{i}", opts(),
                                       None, None, [], {})
                        for i, (t, p) in enumerate(resources)]
    rules.ha_replicas(StackValidationArgs(policy_resources, config), lambda message, urn=None: found.append(message))
    return found


RELEASE = "kubernetes:helm.sh/v3:Release"


@pytest.mark.parametrize(("rtype", "version", "ok"), [
    (RELEASE, "0.16.1", True), (RELEASE, "v3.32.1", True), ("kubernetes:helm.sh/v4:Chart", "1.2.3-rc.1", True),
    (RELEASE, None, False), (RELEASE, "", False), (RELEASE, "^1.2.0", False), (RELEASE, "~1.2", False),
    (RELEASE, "1.x", False), ("kubernetes:helm.sh/v4:Chart", ">=1.0.0", False), (RELEASE, "latest", False),
])
def test_helm_pinned(rtype: str, version: str | None, ok: bool) -> None:
    props = {"chart": "metallb", **({"version": version} if version is not None else {})}
    assert (check(rules.helm_pinned, rtype, props) == []) is ok


def deployment(image: str) -> dict[str, Any]:
    return {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}}


@pytest.mark.parametrize(("image", "ok"), [
    ("ghcr.io/kube-vip/kube-vip:v0.9.2", True), ("registry:5000/team/app:1.2", True),
    ("busybox@sha256:" + "a" * 64, True), ("busybox:1.36@sha256:" + "b" * 64, True),
    ("busybox", False), ("busybox:latest", False), ("registry:5000/team/app", False), ("nginx:", False),
])
def test_images_pinned(image: str, ok: bool) -> None:
    assert (check(rules.images_pinned, "kubernetes:apps/v1:Deployment", deployment(image)) == []) is ok


def test_images_in_helm_values() -> None:
    good = {"values": {"controller": {"image": {"repository": "quay.io/metallb/controller", "tag": "v0.16.1"}},
                       "speaker": {"image": {"repository": "x", "tag": ""}}}}  # "": the chart's appVersion
    bad = {"values": {"controller": {"image": {"repository": "quay.io/metallb/controller", "tag": "latest"}}}}
    assert check(rules.images_pinned, RELEASE, good) == []
    assert len(check(rules.images_pinned, RELEASE, bad)) == 1


@pytest.mark.parametrize(("addresses", "ok"), [
    (["192.0.2.50/32"], True), (["10.0.10.0/24", "192.168.1.240-192.168.1.250"], True),
    (["172.16.5.0/28", "100.64.0.1/32", "198.51.100.0/25", "fd00:10::/64", "2001:db8::/120"], True),
    (["8.8.8.0/24"], False), (["192.168.1.250-192.168.2.10"], True), (["172.32.0.0/24"], False),
    (["10.255.255.250-11.0.0.5"], False), (["2a01:4f8::/64"], False), (["not-an-address"], False),
])
def test_metallb_private_pools(addresses: list[str], ok: bool) -> None:
    props = {"spec": {"addresses": addresses}}
    assert (check(rules.metallb_private_pools, rules.POOL_TYPE, props) == []) is ok


KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"


@pytest.mark.parametrize(("rtype", "props", "ok"), [
    ("command:remote:Command", {"create": "echo hi", "stdin": KEY, "connection": {"privateKey": KEY}}, True),
    ("command:remote:Command", {"create": 'TOKEN="$(cat /run/token)"\npassword_file=/etc/x'}, True),
    ("command:remote:Command", {"create": f"cat > /root/.ssh/id <<EOF\n{KEY}EOF"}, False),
    ("command:remote:Command", {"create": "k3s server --token K10" + "ab" * 20 + "::server:abc"}, False),
    ("command:local:Command", {"environment": {"DB_PASSWORD": "password=Hunter2Hunter2"}}, False),
    ("command:remote:Command", {"create": "curl https://admin:s3cr3tpass@example.com/api"}, False),
    ("command:remote:Command", {"triggers": ["api_key: AbCdEf123456"]}, False),
    ("kubernetes:core/v1:ConfigMap", {"data": {"app.conf": "log_level=info\nport=8080"}}, True),
    # Script plumbing that names tokens is not a secret: defaults, paths, plain words.
    ("kubernetes:core/v1:ConfigMap", {"data": {"lib.sh": "K8S_TOKEN_FILE=${K8S_TOKEN_FILE:-/var/run/secrets/x}\n"
                                                         "SEAL_TOKEN_ACTION=renewed\n# short_tokens: config.yaml"}},
     True),
    ("kubernetes:core/v1:ConfigMap", {"data": {"app.conf": "db_password=CorrectHorse9"}}, False),
    ("kubernetes:core/v1:Secret", {"stringData": {"password": "CorrectHorse9"}}, True),  # secret by provider
    ("kubernetes:core/v1:Secret", {"metadata": {"annotations": {"x": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.sig"}},
                                   "stringData": {}}, False),
])
def test_no_plaintext_secrets(rtype: str, props: dict[str, Any], ok: bool) -> None:
    assert (check(rules.no_plaintext_secrets, rtype, props) == []) is ok


@pytest.mark.parametrize(("rtype", "props", "stack", "protect", "config", "ok"), [
    (rules.SHOOT_TYPE, {}, "cleura", True, None, True),
    (rules.SHOOT_TYPE, {}, "cleura", False, None, False),
    (rules.SHOOT_TYPE, {}, "review-42", False, None, True),                 # review stacks are ephemeral
    (rules.SHOOT_TYPE, {}, "sandbox", False, {"ephemeral": True}, True),   # marked by policy config
    ("kubernetes:core/v1:PersistentVolumeClaim", {}, "homelab", False, None, False),
    (RELEASE, {"chart": "vault"}, "homelab", False, None, False),
    (RELEASE, {"chart": "metallb"}, "homelab", False, None, True),
])
def test_protect_stateful(rtype: str, props: dict[str, Any], stack: str, protect: bool,
                          config: dict[str, Any] | None, ok: bool) -> None:
    found = check(rules.protect_stateful, rtype, props, stack=stack, protect=protect, config=config)
    assert (found == []) is ok


def test_protect_stateful_by_stack_tag() -> None:
    assert check(rules.protect_stateful, rules.SHOOT_TYPE, {}, stack="tmp", tags={"platform:ephemeral": "true"}) == []


def server(n: int) -> tuple[str, dict[str, Any]]:
    return ("command:remote:Command", {"create": f"#!/usr/bin/env bash\n# platform:k3s: {rules.K3S_SERVER_MARKER}\n"
                                                 f"# node {n}"})


def vault(enabled: bool, replicas: int) -> tuple[str, dict[str, Any]]:
    return (RELEASE, {"chart": "vault", "values": {"server": {"ha": {"enabled": enabled, "replicas": replicas}}}})


def test_ha_replicas() -> None:
    agent = ("command:remote:Command", {"create": "# platform:k3s: install or upgrade K3s (agent)"})
    assert check_stack([server(1), server(2), server(3), agent]) == []
    assert len(check_stack([server(1), agent])) == 1
    assert check_stack([server(1)], stack="review-3") == []
    assert check_stack([server(1)], config={"dev": True}) == []
    assert check_stack([(rules.SHOOT_TYPE, {})]) == []                      # no K3s: nothing to count
    assert check_stack([server(1), server(2), server(3), vault(True, 3)]) == []
    assert len(check_stack([server(1), server(2), server(3), vault(True, 1)])) == 1
    assert len(check_stack([vault(False, 3)])) == 1                          # standalone Vault
    assert check_stack([vault(False, 1)], stack="review-1") == []
    # The auto-unseal Transit Vault is one pod by design; a one-pod HA Vault is not.
    transit = (RELEASE, {"chart": "vault", "name": "vault-transit",
                         "values": {"server": {"ha": {"enabled": True, "replicas": 1}}}})
    assert check_stack([transit, vault(True, 3)]) == []
    assert len(check_stack([(RELEASE, {**transit[1], "name": "vault-ha"}), vault(True, 3)])) == 1


def test_every_rule_is_in_the_pack() -> None:
    tree = ast.parse((ROOT / "policy" / "__main__.py").read_text())
    used = {n.value.id for n in ast.walk(tree) if isinstance(n, ast.keyword) and n.arg == "validate"
            and isinstance(n.value, ast.Name)}
    assert used == {f.__name__ for f in (*RESOURCE_RULES, rules.ha_replicas)}


@pytest.mark.parametrize("stack", ["homelab", "cleura"])
def test_the_program_passes_the_mandatory_rules(stack: str) -> None:
    """Every resource the real program registers, through every rule, as the engine would hand it."""
    recording = run_program(stack, secrets=render_secrets(stack))
    violations: list[str] = []
    advisory: list[str] = []
    policy_resources = []
    for r in recording.resources:
        o = opts(bool(r.options.get("protect")))
        args = ResourceValidationArgs(r.type, r.inputs, r.urn, r.name, o, None, {}, {})
        for rule in RESOURCE_RULES:
            sink = advisory if rule is rules.protect_stateful else violations
            rule(args, lambda message, urn=None, sink=sink: sink.append(message))
        policy_resources.append(PolicyResource(r.type, r.inputs, r.urn, r.name, o, None, None, [], {}))
    rules.ha_replicas(StackValidationArgs(policy_resources, {}), lambda message, urn=None: violations.append(message))
    assert violations == []
    assert len(recording.resources) > 5
    if stack == "cleura":
        # The program does not protect the shoot yet: the rule is advisory until it does.
        assert any("cleura-shoot" in a for a in advisory)
