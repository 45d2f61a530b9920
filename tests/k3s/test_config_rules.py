"""The K3s-related config rules added for this component (components/config.py)."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import pytest

from components.problems import ConfigError

from .stacks import SECRETS, homelab_raw, parse, rich_raw


def test_kubelet_restricted_labels_are_rejected_with_a_hint() -> None:
    raw = copy.deepcopy(homelab_raw())
    raw["platform:nodes"][3]["labels"] = {"node-role.kubernetes.io/worker": "true", "topology.kubernetes.io/zone": "a"}
    with pytest.raises(ConfigError) as err:
        parse(raw)
    assert err.value.errors == [
        "platform:nodes[3].labels.node-role.kubernetes.io/worker: the kubelet may not set labels in the "
        "kubernetes.io / k8s.io namespaces (NodeRestriction) and K3s would not start; use your own prefix, "
        "e.g. example.com/role"]


@pytest.mark.parametrize("schedule", ["$(reboot) * * * *", "0 */6 * * `id`", "0 6 * *"])
def test_snapshot_schedule_must_be_a_plain_cron_expression(schedule: str) -> None:
    raw = copy.deepcopy(homelab_raw())
    raw["platform:k3s"]["etcd"]["snapshotSchedule"] = schedule
    with pytest.raises(ConfigError, match="is not a 5-field cron expression"):
        parse(raw)


def test_proxy_and_secrets_encryption_settings() -> None:
    from components.k3s import K3sClusterArgs, render

    raw = copy.deepcopy(homelab_raw())
    default = K3sClusterArgs.from_config(parse(raw))
    assert default.proxy is None and default.secrets_encryption is True
    raw["platform:k3s"]["proxy"] = {"http": "http://proxy.example.com:3128", "https": "http://proxy.example.com:3128",
                                    "noProxy": [".corp.example.com", "10.0.0.0/8"]}
    raw["platform:k3s"]["secretsEncryption"] = False
    args = K3sClusterArgs.from_config(parse(raw))
    assert args.secrets_encryption is False
    env = render.proxy_env(args)
    assert env[:2] == ("HTTP_PROXY=http://proxy.example.com:3128", "HTTPS_PROXY=http://proxy.example.com:3128")
    no_proxy = env[2].removeprefix("NO_PROXY=").split(",")
    # in-cluster and node-to-node traffic never goes through the proxy
    assert {"127.0.0.0/8", "localhost", "10.42.0.0/16", "10.43.0.0/16", ".svc", ".cluster.local", "192.0.2.49",
            "192.0.2.51", "192.0.2.56", ".corp.example.com", "10.0.0.0/8"} <= set(no_proxy)


@pytest.mark.parametrize(("proxy", "error"), [
    ({"http": "http://user:pw@proxy:3128"}, "platform:k3s.proxy.http: 'http://user:pw@proxy:3128' does not match"),
    ({"https": "proxy:3128"}, "platform:k3s.proxy.https: 'proxy:3128' does not match"),
    ({"noProxy": ["a b"]}, "platform:k3s.proxy.noProxy[0]: 'a b' is not a host, domain or CIDR"),
    ({"noProxy": ["x.example.com"]}, "platform:k3s.proxy.http: a proxy needs 'http' and/or 'https'"),
    ({"http": "http://p:1", "socks": "x"}, "platform:k3s.proxy.socks: unknown key"),
])
def test_proxy_errors_name_the_key(proxy: dict[str, object], error: str) -> None:
    raw = copy.deepcopy(homelab_raw())
    raw["platform:k3s"]["proxy"] = proxy
    with pytest.raises(ConfigError) as err:
        parse(raw)
    assert any(e.startswith(error) for e in err.value.errors), err.value.errors


def test_proxy_values_are_revalidated_by_the_args() -> None:
    import dataclasses

    from components.config.cluster import Proxy
    from components.k3s import K3sClusterArgs

    args = K3sClusterArgs.from_config(parse(copy.deepcopy(homelab_raw())))
    with pytest.raises(ConfigError, match=r"platform:k3s.proxy.https: .*without credentials"):
        dataclasses.replace(args, proxy=Proxy(None, "http://x;$(id)", ()))
    with pytest.raises(ConfigError, match=r"platform:k3s.proxy.noProxy: .*not a host"):
        dataclasses.replace(args, proxy=Proxy("http://p:1", None, ("$(id)",)))


def test_extra_config_and_kubelet_args_pass_through_but_never_override_owned_keys() -> None:
    from components.k3s import K3sClusterArgs, render

    raw = copy.deepcopy(homelab_raw())
    raw["platform:k3s"]["extraServerConfig"] = {"kube-proxy-arg": ["metrics-bind-address=0.0.0.0"],
                                                "etcd-expose-metrics": True}
    raw["platform:k3s"]["extraAgentConfig"] = {"image-credential-provider-bin-dir": "/opt/cred"}
    raw["platform:k3s"]["kubeletArgs"] = ["max-pods=150"]
    args = K3sClusterArgs.from_config(parse(raw))
    secrets = render.ConfigSecrets("t", "a")
    server = render.server_config(args, args.servers[1], secrets)
    assert server["kube-proxy-arg"] == ["metrics-bind-address=0.0.0.0"] and server["etcd-expose-metrics"] is True
    assert server["kubelet-arg"] == ["max-pods=150"]
    agent = render.agent_config(args, args.agents[0], secrets)
    assert agent["image-credential-provider-bin-dir"] == "/opt/cred" and agent["kubelet-arg"] == ["max-pods=150"]
    assert "etcd-expose-metrics" not in agent
    # identical on every server by construction (the keys K3s compares stay equal)
    docs = [render.server_config(args, n, secrets) for n in args.servers]
    assert len({d["kube-proxy-arg"][0] for d in docs}) == 1


@pytest.mark.parametrize(("key", "value", "error"), [
    ("extraServerConfig", {"token": "x"}, "platform:k3s.extraServerConfig.token: is set by the program itself"),
    ("extraServerConfig", {"Bad_Key": 1}, "platform:k3s.extraServerConfig.Bad_Key: is not a K3s config key"),
    ("extraAgentConfig", {"node-label": ["a=b"]}, "platform:k3s.extraAgentConfig.node-label: is set by the program"),
    ("extraAgentConfig", {"x": "a\nb"}, "platform:k3s.extraAgentConfig.x: 'a\\nb' is not a one-line"),
    ("kubeletArgs", ["--max-pods 5"], "platform:k3s.kubeletArgs[0]: '--max-pods 5' is not 'name=value'"),
])
def test_pass_through_errors_name_the_key(key: str, value: object, error: str) -> None:
    raw = copy.deepcopy(homelab_raw())
    raw["platform:k3s"][key] = value
    with pytest.raises(ConfigError) as err:
        parse(raw)
    assert any(e.startswith(error) for e in err.value.errors), err.value.errors


def test_unpinned_host_keys_warn_naming_the_nodes() -> None:
    cfg = parse(copy.deepcopy(homelab_raw()))
    warning = next(w for w in cfg.warnings if "no pinned host key" in w)
    assert warning.startswith("platform:ssh.hostKeys: no pinned host key for k3s-control-01, k3s-control-02")
    raw = copy.deepcopy(homelab_raw())
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBq3lyvYx1o2Xr4eYtWpL0Yb2q0"
    raw["platform:ssh"]["hostKeys"] = {n["name"]: key for n in raw["platform:nodes"]}
    assert not any("no pinned host key" in w for w in parse(raw).warnings)


PEM = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----"


def test_self_hosted_s3_insecure_and_endpoint_ca() -> None:
    from components.k3s import K3sClusterArgs, render, scripts

    raw = copy.deepcopy(homelab_raw())
    raw["platform:k3s"]["etcd"]["s3"] = {"endpoint": "minio.lan:9000", "bucket": "etcd-backups", "accessKey": "AK",
                                         "insecure": True, "endpointCa": PEM}
    args = K3sClusterArgs.from_config(parse(raw, secrets={**SECRETS, "platform:etcdS3SecretKey": "s"}))
    doc = render.server_config(args, args.servers[0], render.ConfigSecrets("t", "a", "s"))
    assert doc["etcd-s3-insecure"] is True and doc["etcd-s3-endpoint-ca"] == render.ETCD_S3_CA_PATH
    install = scripts.install_script(args, args.servers[0])
    assert install.values["ETCD_S3_CA"] == PEM + "\n"  # written to ETCD_S3_CA_PATH by the install step
    assert scripts.install_script(args, args.agents[0]).values["ETCD_S3_CA"] == ""
    raw["platform:k3s"]["etcd"]["s3"]["endpointCa"] = "not a cert"
    with pytest.raises(ConfigError, match=r"platform:k3s.etcd.s3.endpointCa: expected one or more PEM"):
        parse(raw, secrets={**SECRETS, "platform:etcdS3SecretKey": "s"})


def test_an_airgap_installer_other_than_the_pinned_one_is_pointed_out(tmp_path: Path) -> None:
    from components import versions

    raw = rich_raw(tmp_path)
    secrets = {**SECRETS, "platform:etcdS3SecretKey": "x"}
    cfg = parse(raw, secrets)
    [warning] = [w for w in cfg.warnings if "airgap.installScript" in w]
    assert versions.K3S_INSTALLER.sha256 in warning and "platform:versions.k3sInstaller" in warning
    # Pinned to the staged file's own sha256: no warning.
    digest = hashlib.sha256(Path(raw["platform:k3s"]["airgap"]["installScript"]).read_bytes()).hexdigest()
    raw["platform:versions"] = {**raw.get("platform:versions", {}),
                                "k3sInstaller": {"commit": "a" * 40, "sha256": digest}}
    assert not [w for w in parse(raw, secrets).warnings if "airgap.installScript" in w]


def test_the_installer_pin_override_is_validated() -> None:
    raw = homelab_raw()
    raw["platform:versions"] = {**raw.get("platform:versions", {}), "k3sInstaller": {"commit": "main"}}
    with pytest.raises(ConfigError) as err:
        parse(raw)
    text = str(err.value)
    assert "platform:versions.k3sInstaller.commit" in text and "40-hex" in text
    assert "platform:versions.k3sInstaller.sha256: is required" in text
