"""Issue 10, day 2: refresh keeps state, previews show no false replacements, the exec credential.

The `kubernetes` provider is modelled by `k8s_diff_config`, written to pulumi-kubernetes'
`DiffConfig` (provider/pkg/provider/provider.go): a computed `kubeconfig` is a replacement; a
known one replaces only when the *active cluster* entry (server, CA, ...) changes, anything else
(the user/credential part) is an update. Resource previews come from `Engine.preview_view`,
which follows the engine's step semantics for a provider without preview support.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from concurrent import futures
from dataclasses import replace
from typing import Any

import grpc
import pytest
import yaml
from google.protobuf import empty_pb2
from pulumi.output import Unknown
from pulumi.runtime.proto import engine_pb2_grpc

from components.gardener.credential import cluster_of, render_exec_kubeconfig, user_of
from components.gardener.marker import MARKER_KEY
from components.gardener.progress import child_urn
from components.gardener.provider import SHOOT_OUTPUT_KEYS, ShootKubeconfigProvider
from components.gardener.spec import Timeouts
from tests.conftest import RunProgram

from .conftest import (
    CLAIM_TYPE,
    KUBECONFIG_TYPE,
    OWNER,
    PASSWORD,
    PROJECT,
    REGION,
    SHOOT_TYPE,
    claim_inputs,
    host_env,
    shoot_inputs,
    spec,
)
from .engine import PROJECT_ROOT, CheckFailedError, Engine, EngineError, ProviderHost, register
from .fake_cleura import FakeCleura

KC_OUTPUTS = ("kubeconfig", "server", "certificate_authority_data", "issued_at")


def _active_cluster(kubeconfig: str) -> dict[str, Any]:
    doc = yaml.safe_load(kubeconfig)
    ctx = next(c["context"] for c in doc["contexts"] if c["name"] == doc["current-context"])
    return dict(next(c["cluster"] for c in doc["clusters"] if c["name"] == ctx["cluster"]))


def k8s_diff_config(old: str, new: object) -> str:
    """pulumi-kubernetes DiffConfig on `kubeconfig`: "same", "update" or "replace"."""
    if isinstance(new, Unknown):
        return "replace"
    assert isinstance(new, str)
    if new == old:
        return "same"
    return "replace" if _active_cluster(old) != _active_cluster(new) else "update"


def kc_inputs(shoot_id: object, shoot_uid: object, *, name: str = "demo", seconds: int = 3600) -> dict[str, Any]:
    from components.gardener.resources import ShootKubeconfig

    reg = register(lambda: ShootKubeconfig("kc", shoot_name=name, cloud="public", region=REGION, project_id=PROJECT,
                                           expiration_seconds=seconds))
    return {**reg.one(":ShootKubeconfig").inputs, "shoot_id": shoot_id, "shoot_uid": shoot_uid}


@pytest.fixture
def stack(fake: FakeCleura, host: ProviderHost) -> tuple[Engine, Engine]:
    """A created shoot and its kubeconfig, wired like ShootCluster (id and uid from the shoot)."""
    shoot = Engine(host, SHOOT_TYPE, "shoot")
    shoot.up(shoot_inputs(spec()))
    assert shoot.state is not None
    kc = Engine(host, KUBECONFIG_TYPE, "kc")
    kc.up(kc_inputs(shoot.state.id, shoot.state.outputs["uid"]))
    return shoot, kc


def _preview_chain(shoot: Engine, kc: Engine, new_spec: Any) -> tuple[str, str, str]:
    """(shoot step, kubeconfig step, kubernetes provider step) of one preview."""
    assert kc.state is not None
    shoot_step = shoot.preview(shoot_inputs(new_spec))
    sid, outs = shoot.preview_view(shoot_inputs(new_spec), SHOOT_OUTPUT_KEYS)
    kc_news = kc_inputs(sid, outs.get("uid"))
    kc_step = kc.preview(kc_news)
    _, kc_view = kc.preview_view(kc_news, KC_OUTPUTS)
    return shoot_step.op, kc_step.op, k8s_diff_config(kc.state.outputs["kubeconfig"], kc_view["kubeconfig"])


def test_in_place_shoot_change_previews_no_kubeconfig_or_provider_change(stack: tuple[Engine, Engine]) -> None:
    shoot, kc = stack
    # Without the fix (replace on unknown shoot_uid) this previewed kubeconfig + provider replacement.
    assert _preview_chain(shoot, kc, spec(kubernetes_version="1.33.5")) == ("update", "same", "same")
    assert _preview_chain(shoot, kc, spec()) == ("same", "same", "same")


def test_a_replaced_shoot_still_previews_a_new_cluster(stack: tuple[Engine, Engine]) -> None:
    shoot, kc = stack
    assert _preview_chain(shoot, kc, spec(floating_pool_name="ext-net-2")) == ("replace", "replace", "replace")


def test_a_shoot_recreated_out_of_band_gets_a_new_kubeconfig(fake: FakeCleura, stack: tuple[Engine, Engine]) -> None:
    shoot, kc = stack
    assert shoot.state is not None and kc.state is not None
    old = kc.state.outputs["kubeconfig"]
    step = kc.preview(kc_inputs(shoot.state.id, "another-uid"))
    assert (step.op, step.replaces) == ("replace", ("shoot_uid",))
    kc.up(kc_inputs(shoot.state.id, "another-uid"))
    assert k8s_diff_config(old, kc.state.outputs["kubeconfig"]) in ("same", "replace")


def test_the_kubeconfig_holds_no_credential_and_never_rotates(fake: FakeCleura, stack: tuple[Engine, Engine]) -> None:
    shoot, kc = stack
    assert kc.state is not None and shoot.state is not None
    text = kc.state.outputs["kubeconfig"]
    assert "token" not in yaml.safe_load(text)["users"][0]["user"]
    assert "kc-" not in text and PASSWORD not in text
    assert _active_cluster(text)["certificate-authority-data"]
    fake.kubeconfig_cap = 600  # whatever the API grants, nothing in state expires
    for _ in range(2):
        assert kc.preview(kc_inputs(shoot.state.id, shoot.state.outputs["uid"])).op == "same"


def _run_exec(kubeconfig: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    exec_ = yaml.safe_load(kubeconfig)["users"][0]["user"]["exec"]
    base = {k: v for k, v in os.environ.items() if not k.startswith("CLEURA_")}
    return subprocess.run([exec_["command"], *exec_["args"]], cwd=PROJECT_ROOT, env={**base, **env},
                          capture_output=True, text=True, timeout=60, check=False)


def test_the_exec_plugin_mints_a_fresh_credential_and_revokes_its_api_token(fake: FakeCleura,
                                                                           stack: tuple[Engine, Engine]) -> None:
    _, kc = stack
    assert kc.state is not None
    fake.revoked.clear()
    env = {**host_env(fake.url), "CLEURA_CREDENTIAL_PYTHON": os.environ.get("PYTHON", "python3")}
    first, second = _run_exec(kc.state.outputs["kubeconfig"], env), _run_exec(kc.state.outputs["kubeconfig"], env)
    assert first.returncode == 0, first.stderr
    cred = json.loads(first.stdout)
    assert cred["kind"] == "ExecCredential" and cred["apiVersion"] == "client.authentication.k8s.io/v1"
    assert cred["status"]["token"].startswith("kc-") and cred["status"]["expirationTimestamp"].endswith("Z")
    assert json.loads(second.stdout)["status"]["token"] != cred["status"]["token"]  # minted per connection
    assert len(fake.revoked) == 2  # each run logged in with the password and revoked that token


def test_the_exec_plugin_fails_clearly_without_credentials_or_shoot(fake: FakeCleura,
                                                                   stack: tuple[Engine, Engine]) -> None:
    _, kc = stack
    assert kc.state is not None
    bad = _run_exec(kc.state.outputs["kubeconfig"], {"CLEURA_API_URL": fake.url, "PATH": os.environ["PATH"]})
    assert bad.returncode == 1 and "no Cleura credentials" in bad.stderr and "Traceback" not in bad.stderr
    fake.remove_out_of_band("demo")
    gone = _run_exec(kc.state.outputs["kubeconfig"], host_env(fake.url))
    assert gone.returncode == 1 and "does not exist" in gone.stderr


def test_legacy_token_kubeconfig_state_migrates_as_an_update_not_a_replacement(
        fake: FakeCleura, host: ProviderHost, stack: tuple[Engine, Engine]) -> None:
    shoot, kc = stack
    assert kc.state is not None and shoot.state is not None
    legacy_text = ("apiVersion: v1\nkind: Config\nclusters:\n- name: demo\n  cluster:\n"
                   f"    certificate-authority-data: {kc.state.outputs['certificate_authority_data']}\n"
                   f"    server: {kc.state.outputs['server']}\ncontexts:\n- name: demo\n  context:\n"
                   "    cluster: demo\n    user: admin\ncurrent-context: demo\nusers:\n- name: admin\n"
                   "  user:\n    token: kc-old\n")
    legacy = {k: v for k, v in kc.state.outputs.items()
              if k not in ("credential", "server", "certificate_authority_data", "shoot_id")}
    legacy.update({"kubeconfig": legacy_text, "expires_at": "2026-01-01T00:00:00Z", "granted_seconds": 86400})
    kc.state = replace(kc.state, inputs={k: v for k, v in kc.state.inputs.items() if k not in ("credential",
                                                                                            "shoot_id")},
                       outputs=legacy)
    news = kc_inputs(shoot.state.id, shoot.state.outputs["uid"])
    assert kc.preview(news).op == "update"
    kc.up(news)
    assert k8s_diff_config(legacy_text, kc.state.outputs["kubeconfig"]) == "update"


def test_kubeconfig_helpers_read_yaml_and_json() -> None:
    text = render_exec_kubeconfig(server="https://api.x", ca_data="Q0E=", cloud="public", region="Sto2",
                                  project_id="p", shoot_name="x", seconds=600)
    assert cluster_of(text) == ("https://api.x", "Q0E=")
    assert json.loads(text) == yaml.safe_load(text)
    cert = ("apiVersion: v1\nclusters:\n- cluster:\n    server: https://a\nusers:\n- name: u\n  user:\n"
            "    client-certificate-data: Q0VSVA==\n    client-key-data: S0VZ\n")
    assert user_of(cert) == {"clientCertificateData": "CERT", "clientKeyData": "KEY"}
    with pytest.raises(ValueError, match="no https"):
        cluster_of("apiVersion: v1\n")


def test_kubeconfig_diff_unit_rules() -> None:
    p, u = ShootKubeconfigProvider(), Unknown()
    olds = {"cloud": "public", "region": "Sto2", "project_id": "p", "shoot_name": "demo", "shoot_uid": "u1",
            "shoot_id": "public/Sto2/p/demo", "credential": "exec", "server": "https://a", "expiration_seconds": 3600}
    same = {k: olds[k] for k in ("cloud", "region", "project_id", "shoot_name", "shoot_id", "credential",
                                 "expiration_seconds")}
    assert p.diff("id", olds, {**same, "shoot_uid": u}).changes is False  # shoot updated in place
    assert p.diff("id", olds, {**same, "shoot_id": u, "shoot_uid": u}).replaces == ["shoot_id"]  # shoot replaced
    assert p.diff("id", olds, {**same, "shoot_uid": "u2"}).replaces == ["shoot_uid"]
    lifetime = p.diff("id", olds, {**same, "shoot_uid": "u1", "expiration_seconds": 600})
    assert lifetime.changes is True and lifetime.replaces == []


def test_program_never_sets_delete_unreachable_unless_asked(program: RunProgram) -> None:
    for stack_name in ("cleura", "homelab"):
        rec = program(stack_name)
        prov = [r for r in rec.resources if r.type == "pulumi:providers:kubernetes"]
        assert len(prov) == 1
        assert prov[0].inputs.get("deleteUnreachable") in (False, "false")
    rec = program("cleura", {"platform:deleteUnreachable": "true"})
    prov = [r for r in rec.resources if r.type == "pulumi:providers:kubernetes"]
    assert prov[0].inputs.get("deleteUnreachable") in (True, "true")


def test_program_ignores_an_ambient_delete_unreachable_env(program: RunProgram,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULUMI_K8S_DELETE_UNREACHABLE", "true")
    prov = [r for r in program("cleura").resources if r.type == "pulumi:providers:kubernetes"]
    assert prov[0].inputs.get("deleteUnreachable") in (False, "false")


# --- 404 means "gone" only for the shoot itself ---------------------------------------------------


@pytest.fixture
def created(fake: FakeCleura, host: ProviderHost) -> Engine:
    e = Engine(host, SHOOT_TYPE, "shoot")
    e.up(shoot_inputs(spec()))
    return e


def test_refresh_keeps_state_when_the_project_or_region_404s(fake: FakeCleura, created: Engine) -> None:
    before = created.state
    fake.projects.discard((REGION, PROJECT))  # "Project ... was not found" for the shoot and the list
    with pytest.raises(EngineError, match=r"location is wrong, not the shoot gone.*state is kept"):
        created.refresh()
    assert created.state == before
    fake.projects.add((REGION, PROJECT))
    assert created.refresh() == "same"


def test_refresh_keeps_state_on_a_route_404_and_an_empty_200(fake: FakeCleura, created: Engine) -> None:
    before = created.state
    fake.add_fault("GET", r"/shoots/Sto2/p1234567890abcdef", "status", status=404, message="no route", times=2)
    with pytest.raises(EngineError, match="state is kept"):
        created.refresh()
    fake.add_fault("GET", r"/shoots/Sto2/p1234567890abcdef/demo$", "empty")
    with pytest.raises(EngineError, match="200 without a shoot"):
        created.refresh()
    assert created.state == before


def test_refresh_drops_a_shoot_only_when_its_project_lists_it_gone(fake: FakeCleura, created: Engine) -> None:
    fake.remove_out_of_band("demo")
    assert created.refresh() == "deleted"


def test_the_cli_profile_endpoint_is_used_only_for_its_own_cloud() -> None:
    from components.gardener.client import Credentials, base_url

    creds = Credentials("u", "t", endpoint="https://rest.example.invalid", cloud="public", source="cleura CLI")
    assert base_url("public", {}, creds) == "https://rest.example.invalid"
    assert base_url("compliant", {}, creds) == "https://rest.compliant.cleura.cloud"
    assert base_url("compliant", {}, replace(creds, cloud=None)) == "https://rest.example.invalid"


# --- interrupted creates: the stack's marker and the claim ----------------------------------------


def test_an_interrupted_create_is_resumed_by_marker_without_adopt(fake: FakeCleura, host: ProviderHost) -> None:
    fake.create_duration = 900
    e = Engine(host, SHOOT_TYPE, "shoot")
    with pytest.raises(EngineError, match="timed out after 60s"):
        e.up(shoot_inputs(spec(), timeouts=Timeouts(create=60), owner=OWNER))
    assert e.state is None and fake.shoot_names() == ["demo"]
    annotations = fake.shoot("demo")["shoot_provider"]["workers"][0]["annotations"]  # type: ignore[index]
    assert {"key": MARKER_KEY, "value": OWNER} in annotations
    assert e.up(shoot_inputs(spec(), owner=OWNER)).op == "create"  # no adopt needed: it is ours
    assert fake.count("POST", r"/shoots/Sto2/p1234567890abcdef$") == 1
    assert e.preview(shoot_inputs(spec(), owner=OWNER)).op == "same"  # the marker is never a diff
    e.up(shoot_inputs(spec(workers=(replace(spec().workers[0], maximum=4),)), owner=OWNER))
    annotations = fake.shoot("demo")["shoot_provider"]["workers"][0]["annotations"]  # type: ignore[index]
    assert {"key": MARKER_KEY, "value": OWNER} in annotations  # a worker PUT keeps it


def test_another_stacks_or_an_unmarked_shoot_still_needs_adopt(fake: FakeCleura, host: ProviderHost) -> None:
    Engine(host, SHOOT_TYPE, "other").up(shoot_inputs(spec(), owner="platform/prod/cleura"))
    with pytest.raises(EngineError, match=r"belongs to another stack \(platform/prod/cleura\).*adopt: true"):
        Engine(host, SHOOT_TYPE, "shoot").up(shoot_inputs(spec(), owner=OWNER))


def test_destroy_after_a_failed_create_deletes_the_shoot_it_started(fake: FakeCleura, host: ProviderHost) -> None:
    claim, shoot = Engine(host, CLAIM_TYPE, "claim"), Engine(host, SHOOT_TYPE, "shoot")
    claim.up(claim_inputs())
    fake.fail_next_create = "Quota exceeded for resources: cores"
    with pytest.raises(EngineError, match="Quota exceeded"):
        shoot.up(shoot_inputs(spec(), owner=OWNER))
    assert shoot.state is None and fake.shoot_names() == ["demo"]  # billed, not in state
    claim.destroy()  # `pulumi destroy`: only the claim is in state
    assert fake.shoot_names() == []


def test_the_claim_never_deletes_a_shoot_without_our_marker(fake: FakeCleura, host: ProviderHost) -> None:
    Engine(host, SHOOT_TYPE, "other").up(shoot_inputs(spec(), owner="platform/prod/cleura"))
    claim = Engine(host, CLAIM_TYPE, "claim")
    claim.up(claim_inputs())
    claim.destroy()
    assert fake.shoot_names() == ["demo"]


# --- hibernation ----------------------------------------------------------------------------------


def _hibernated(fake: FakeCleura) -> bool:
    with fake.lock:
        rec = next(r for k, r in fake.shoots.items() if k[3] == "demo")
        return bool(fake._view(rec)["status"]["is_hibernated"])


def test_desired_hibernation_hibernates_and_wakes_in_place(fake: FakeCleura, created: Engine) -> None:
    assert created.preview(shoot_inputs(spec(hibernated=False))).op == "same"
    assert created.up(shoot_inputs(spec(hibernated=True))).op == "update"
    assert _hibernated(fake) and fake.count("PATCH", r"/demo/hibernate$", 202) == 1
    assert created.preview(shoot_inputs(spec(hibernated=True))).op == "same"
    assert created.preview(shoot_inputs(spec())).op == "same"  # unset: not managed
    # Waking up comes before any other change (they need nodes), and waits for the wake-up itself.
    bigger = spec(hibernated=False, workers=(replace(spec().workers[0], maximum=5),))
    assert created.up(shoot_inputs(bigger)).op == "update"
    assert not _hibernated(fake)
    order = [r[1] for r in fake.requests if r[0] in ("PATCH", "PUT")]
    assert order[-2].endswith("/wakeup") and order[-1].endswith("/workers/default")


def test_out_of_band_hibernation_previews_a_wakeup_only_when_managed(fake: FakeCleura, created: Engine) -> None:
    fake.hibernate_out_of_band("demo")
    assert created.refresh() == "changed"
    assert created.preview(shoot_inputs(spec())).op == "same"
    assert created.preview(shoot_inputs(spec(hibernated=False))).op == "update"


def test_a_hibernated_shoot_fails_the_kubeconfig_clearly_instead_of_waiting(fake: FakeCleura, host: ProviderHost,
                                                                            created: Engine) -> None:
    fake.hibernate_out_of_band("demo")
    assert created.state is not None
    kc = Engine(host, KUBECONFIG_TYPE, "kc")
    with pytest.raises(EngineError, match=r"is hibernated.*hibernated: false"):
        kc.up(kc_inputs(created.state.id, created.state.outputs["uid"]))
    assert fake.count("POST", "admin-kubeconfig", 409) == 1  # no minute-long wait on 409s


def test_the_exec_plugin_explains_a_hibernated_shoot(fake: FakeCleura, stack: tuple[Engine, Engine]) -> None:
    _, kc = stack
    assert kc.state is not None
    fake.hibernate_out_of_band("demo")
    res = _run_exec(kc.state.outputs["kubeconfig"], host_env(fake.url))
    assert res.returncode == 1 and "is hibernated" in res.stderr


def test_creating_a_hibernated_shoot_hibernates_it_after_the_create(fake: FakeCleura, host: ProviderHost) -> None:
    e = Engine(host, SHOOT_TYPE, "shoot")
    e.up(shoot_inputs(spec(hibernated=True)))
    assert _hibernated(fake) and e.state is not None and e.state.outputs["hibernated"] is True
    assert e.preview(shoot_inputs(spec(hibernated=True))).op == "same"


# --- smaller day-2 items ------------------------------------------------------------------------


def test_ha_enabled_out_of_band_fails_the_preview_instead_of_planning_a_destroy(fake: FakeCleura,
                                                                                created: Engine) -> None:
    from components.gardener.client import CleuraClient, Credentials

    CleuraClient(fake.url, Credentials("svc-robot", None, PASSWORD), report=lambda m: None).request(
        "PATCH", "/gardener/v2/public/shoots/Sto2/p1234567890abcdef/demo/ha-control-plane/enable")
    time.sleep(0.1)
    assert created.refresh() == "changed"
    with pytest.raises(EngineError, match="set enableHaControlPlane: true"):
        created.preview(shoot_inputs(spec()))
    assert created.preview(shoot_inputs(spec(enable_ha_control_plane=True))).op == "same"


def test_a_declared_ha_switched_off_still_replaces(fake: FakeCleura, host: ProviderHost) -> None:
    e = Engine(host, SHOOT_TYPE, "shoot")
    e.up(shoot_inputs(spec(enable_ha_control_plane=True)))
    step = e.preview(shoot_inputs(spec()))
    assert step.op == "replace" and "enable_ha_control_plane" in step.replaces


def test_the_v3_kubeconfig_post_is_retried_on_502(fake: FakeCleura, host: ProviderHost, created: Engine) -> None:
    assert created.state is not None
    fake.add_fault("POST", "admin-kubeconfig", "status", status=502, message="Bad Gateway")
    kc = Engine(host, KUBECONFIG_TYPE, "kc")
    assert kc.up(kc_inputs(created.state.id, created.state.outputs["uid"])).op == "create"
    assert fake.count("POST", "admin-kubeconfig", 502) == 1 and fake.count("POST", "admin-kubeconfig", 201) == 1


def test_a_wait_timeout_is_one_provider_error_line(fake: FakeCleura, host: ProviderHost) -> None:
    fake.create_duration = 900
    with pytest.raises(EngineError) as err:
        Engine(host, SHOOT_TYPE, "shoot").up(shoot_inputs(spec(), timeouts=Timeouts(create=60), owner=OWNER))
    details = err.value.details
    assert "ProviderError: timed out after 60s waiting for shoot demo: create" in details
    assert "WaitTimeoutError" not in details and "waiting.py" not in details and "operations.py" not in details
    assert "next `pulumi up` resumes it" in details


# --- progress through the engine --------------------------------------------------------------------


class _FakeEngine(engine_pb2_grpc.EngineServicer):  # type: ignore[misc]
    def __init__(self) -> None:
        self.logs: list[Any] = []

    def Log(self, request: Any, context: Any) -> empty_pb2.Empty:
        self.logs.append(request)
        return empty_pb2.Empty()


def test_wait_progress_goes_to_the_engine_on_the_resources_row(fake: FakeCleura) -> None:
    engine = _FakeEngine()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    engine_pb2_grpc.add_EngineServicer_to_server(engine, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    host = ProviderHost(host_env(fake.url), args=(f"127.0.0.1:{port}",))
    try:
        urn = "urn:pulumi:gardener-test::platform::platform:gardener:ShootCluster$pulumi-python:dynamic/cleura:Shoot::c"
        Engine(host, SHOOT_TYPE, "shoot").up({**shoot_inputs(spec()), "resource_urn": urn})
        messages = [r.message for r in engine.logs]
        assert any("create accepted" in m for m in messages) and any("Create Succeeded" in m for m in messages)
        assert all(r.urn == urn and r.ephemeral for r in engine.logs)
        assert "create accepted" not in host.logs()  # not printed again as a stack-level diagnostic
    finally:
        host.close()
        server.stop(0)


def test_the_component_passes_its_shoots_real_urn() -> None:
    from components.gardener.cluster import ShootCluster

    from .test_cluster import stack_config

    reg = register(lambda: ShootCluster("cleura", stack_config()).name)
    shoot = reg.one(":Shoot")
    assert shoot.inputs["resource_urn"] == shoot.urn
    assert child_urn("urn:pulumi:s::p::a:b:C::n", "x:y:Z", "m") == "urn:pulumi:s::p::a:b:C$x:y:Z::m"


# --- proxies and wall-clock deadlines -----------------------------------------------------------------


def test_http_proxy_and_no_proxy_are_honoured(fake: FakeCleura) -> None:
    from components.gardener.client import CleuraClient, Credentials, RetryPolicy, TransientError, proxy_env

    creds = Credentials("svc-robot", None, PASSWORD)
    via = CleuraClient("http://cleura-api.invalid", creds, report=lambda m: None,
                       proxies=proxy_env({"HTTP_PROXY": fake.url}))
    assert via.request("GET", "/gardener/v2/public/shoots/Sto2/p1234567890abcdef").json() == []
    bypass = CleuraClient("http://cleura-api.invalid", creds, report=lambda m: None, sleep=lambda s: None,
                          retry=RetryPolicy(attempts=1),
                          proxies=proxy_env({"http_proxy": fake.url, "NO_PROXY": "localhost,.invalid"}))
    with pytest.raises(TransientError):  # straight to the unresolvable host: the proxy was bypassed
        bypass.request("GET", "/gardener/v2/public/shoots/Sto2/p1234567890abcdef")


def test_https_goes_through_a_connect_tunnel_with_proxy_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    import http.client

    from components.gardener.client import CleuraClient, Credentials, proxy_env, proxy_for

    seen: dict[str, Any] = {}

    class Conn:
        def __init__(self, host: str, port: int, timeout: float) -> None:
            seen["connect"] = (host, port)

        def set_tunnel(self, host: str, port: int, headers: dict[str, str]) -> None:
            seen["tunnel"] = (host, port, headers)

        def connect(self) -> None:
            raise OSError("stop here")

        def close(self) -> None:
            pass

    monkeypatch.setattr(http.client, "HTTPSConnection", Conn)
    proxies = proxy_env({"HTTPS_PROXY": "http://u%40x:p%3Ass@proxy.corp:3128", "https_proxy": ""})
    client = CleuraClient("https://rest.cleura.cloud", Credentials("u", "t"), report=lambda m: None,
                          sleep=lambda s: None, proxies=proxies)
    with pytest.raises(Exception, match="giving up"):
        client.request("GET", "/x")
    assert seen["connect"] == ("proxy.corp", 3128)
    assert seen["tunnel"][:2] == ("rest.cleura.cloud", 443)
    assert seen["tunnel"][2]["Proxy-Authorization"] == "Basic dUB4OnA6c3M="  # u@x:p:ss
    assert proxy_for("https", "rest.cleura.cloud", {"https": "proxy:1", "no": "*"}) is None
    assert proxy_for("https", "api.cleura.cloud", {"https": "proxy:1", "no": "cleura.cloud"}) is None
    assert proxy_for("https", "notcleura.cloud", {"https": "proxy:1", "no": "cleura.cloud"}) is not None


def test_deadlines_run_on_wall_clock_time() -> None:
    from components.gardener.client import CleuraClient, Credentials
    from components.gardener.operations import Location, ShootOps

    # time.monotonic stops while a laptop is suspended (CLOCK_MONOTONIC): a 60-minute wait would
    # resume as if no time had passed. Wall-clock time counts the suspended hours.
    ops = ShootOps(CleuraClient("http://x.invalid", Credentials("u", "t")), Location("public", "Sto2", "p"))
    assert ops.now is time.time


# --- preview-time cloud-profile checks ----------------------------------------------------------------

PROFILE = {
    "name": "cleuracloud",
    "kubernetes": {"versions": [{"version": "1.34.2", "classification": "supported"},
                                {"version": "1.33.4", "classification": "supported"},
                                {"version": "1.31.0", "classification": "expired"}]},
    "machine_images": [{"name": "gardenlinux", "versions": [{"version": "1877.19.0"}, {"version": "1877.20.0"}]}],
    "machine_types": [{"name": "b.2c4gb", "usable": True}, {"name": "b.4c16gb", "usable": True},
                      {"name": "old.1c1gb", "usable": False}],
    "regions": [{"name": "sto2", "zones": [{"name": "nova"}]}],
    "provider_config": {"constraints": {"floating_pools": [{"name": "ext-net"}],
                                        "load_balancer_providers": [{"name": "amphora"}, {"name": "ovn"}]}},
}


def test_preview_checks_the_cloud_profile_and_lists_the_valid_choices(fake: FakeCleura, host: ProviderHost) -> None:
    fake.cloud_profiles = [PROFILE]
    e = Engine(host, SHOOT_TYPE, "shoot")
    bad = spec(kubernetes_version="1.31.0", floating_pool_name="ext-nett", load_balancer_provider="octavia",
               workers=(replace(spec().workers[0], machine_type="old.1c1gb", image_version="1.0.0", zones=("az9",)),))
    with pytest.raises(CheckFailedError) as err:
        e.check(shoot_inputs(bad))
    found = dict(err.value.failures)
    assert "supported: 1.34.2, 1.33.4" in found["kubernetes_version"]
    assert "choose one of ext-net" in found["shoot_provider.infrastructure_config.floating_pool_name"]
    assert "amphora, ovn" in found["shoot_provider.load_balancer_provider"]
    assert "b.2c4gb, b.4c16gb" in found["shoot_provider.workers[0].machine.type"]
    assert "1877.20.0, 1877.19.0" in found["shoot_provider.workers[0].machine.image_version"]
    assert "choose from nova" in found["shoot_provider.workers[0].zones"]
    assert e.up(shoot_inputs(spec())).op == "create"  # every value on offer


def test_unchanged_values_are_not_rechecked_and_a_missing_profile_is_skipped(fake: FakeCleura,
                                                                            host: ProviderHost) -> None:
    e = Engine(host, SHOOT_TYPE, "shoot")
    e.up(shoot_inputs(spec()))  # fake.cloud_profiles is None: endpoint 404s, check skipped
    fake.cloud_profiles = [{**PROFILE, "kubernetes": {"versions": [{"version": "1.34.2"}]}}]
    assert e.preview(shoot_inputs(spec())).op == "same"  # 1.33.4 since withdrawn: not this run's change
    with pytest.raises(CheckFailedError, match=r"1\.33\.9 is not offered"):
        e.check(shoot_inputs(spec(kubernetes_version="1.33.9")))


def test_the_profile_check_needs_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    from components.gardener import provider

    for var in ("CLEURA_API_USERNAME", "CLEURA_API_TOKEN", "CLEURA_API_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")  # no `cleura` CLI either
    assert provider._profile_check({"region": "Sto2", "project_id": "p", "name": "x"}, {}) == []


def test_destroy_keeps_state_when_the_location_404s(fake: FakeCleura, created: Engine) -> None:
    before = created.state
    fake.projects.discard((REGION, PROJECT))
    with pytest.raises(EngineError, match="location is wrong"):
        created.destroy()
    assert created.state == before
    fake.projects.add((REGION, PROJECT))


def test_a_rename_creates_the_new_shoot_before_deleting_the_old(fake: FakeCleura, created: Engine) -> None:
    step = created.preview(shoot_inputs(spec(name="demo2")))
    assert step.op == "replace" and not step.delete_before_replace
    reused = created.preview(shoot_inputs(spec(floating_pool_name="ext-net-2")))
    assert reused.op == "replace" and reused.delete_before_replace  # same name: must go first
    created.up(shoot_inputs(spec(name="demo2")))
    creates = [i for i, r in enumerate(fake.bodies) if r[0] == "POST" and r[1].endswith("p1234567890abcdef")]
    deletes = [i for i, r in enumerate(fake.bodies) if r[0] == "DELETE" and r[1].endswith("/demo")]
    assert creates[-1] < deletes[0] and fake.shoot_names() == ["demo2"]


def test_every_provider_call_revokes_the_token_it_logged_in_for(fake: FakeCleura, created: Engine) -> None:
    logins = fake.count("POST", r"/auth/v2/tokens$", 201)
    assert logins >= 1 and len(fake.revoked) == logins
    assert not fake.tokens  # nothing left valid on the API side
    created.refresh()
    assert len(fake.revoked) == fake.count("POST", r"/auth/v2/tokens$", 201) == logins + 1


def test_state_without_the_declared_ha_fails_safe_and_records_it_once(fake: FakeCleura, host: ProviderHost) -> None:
    e = Engine(host, SHOOT_TYPE, "shoot")
    e.up(shoot_inputs(spec(enable_ha_control_plane=True)))
    assert e.state is not None
    e.state.outputs.pop("declared_enable_ha_control_plane")  # state written before the rule
    e.refresh()
    assert e.state is not None and e.state.outputs.get("declared_enable_ha_control_plane") is None
    with pytest.raises(EngineError, match="set enableHaControlPlane: true"):
        e.preview(shoot_inputs(spec()))
    assert e.up(shoot_inputs(spec(enable_ha_control_plane=True))).op == "update"  # records it, no API call
    assert e.preview(shoot_inputs(spec(enable_ha_control_plane=True))).op == "same"
    assert e.preview(shoot_inputs(spec())).op == "replace"


def test_delete_unreachable_is_an_explicit_config_switch_with_a_warning() -> None:
    from components.config import parse_stack_config
    from components.problems import ConfigError

    raw = yaml.safe_load((PROJECT_ROOT / "Pulumi.cleura.yaml").read_text())["config"]
    assert parse_stack_config(raw, stack="cleura").delete_unreachable is False
    on = parse_stack_config({**raw, "platform:deleteUnreachable": True}, stack="cleura")
    assert on.delete_unreachable is True and any("DROP every in-cluster resource" in w for w in on.warnings)
    with pytest.raises(ConfigError, match="deleteUnreachable"):
        parse_stack_config({**raw, "platform:deleteUnreachable": "sometimes"}, stack="cleura")


def test_stack_config_accepts_adopt_observe_and_hibernated_and_names_the_mistake() -> None:
    from components.gardener.spec import parse_cleura
    from components.problems import Problems

    raw = yaml.safe_load((PROJECT_ROOT / "Pulumi.cleura.yaml").read_text())["config"]["platform:cleura"]
    cfg = parse_cleura({**raw, "adopt": "observe", "hibernated": True}, "platform:cleura", Problems())
    assert cfg is not None and cfg.adopt == "observe" and cfg.shoot.hibernated is True
    assert cfg.shoot.to_inputs()["hibernated"] is True
    problems = Problems()
    assert parse_cleura({**raw, "adopt": "watch"}, "platform:cleura", problems) is None
    assert problems.errors == ["platform:cleura.adopt: expected true, false or observe, got 'watch'"]


def test_an_ambiguous_create_of_a_still_hidden_shoot_is_not_sent_twice(fake: FakeCleura, host: ProviderHost) -> None:
    fake.create_invisible = 30.0  # GET keeps answering 404 for the new shoot for a while
    fake.add_fault("POST", r"/shoots/Sto2/p1234567890abcdef$", "drop_after")  # applied, answer lost
    e = Engine(host, SHOOT_TYPE, "shoot")
    e.up(shoot_inputs(spec()))
    assert fake.count("POST", r"/shoots/Sto2/p1234567890abcdef$") == 1 and fake.shoot_names() == ["demo"]


def test_a_cli_profile_of_another_cloud_is_warned_about(monkeypatch: pytest.MonkeyPatch) -> None:
    import components.gardener.client as client_module

    profile = {"username": "u", "token": "t", "cloud": "public", "endpoint": "https://rest.example.invalid"}
    monkeypatch.setattr(client_module, "cli_credentials", lambda env: profile)
    monkeypatch.setattr(client_module.load_credentials, "__defaults__", (None, lambda env: profile))
    seen: list[str] = []
    client = client_module.client_from_env("compliant", {}, report=seen.append)
    assert client.base == "https://rest.compliant.cleura.cloud"
    assert seen and "profile is for cloud 'public'" in seen[0]
    seen.clear()
    assert client_module.client_from_env("public", {}, report=seen.append).base == "https://rest.example.invalid"
    assert not seen
