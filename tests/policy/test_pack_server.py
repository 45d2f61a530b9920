"""The pack as the engine runs it: `policy/__main__.py` starts pulumi-policy's gRPC analyzer,
and we speak the engine's side of the protocol (GetAnalyzerInfo, Analyze, AnalyzeStack)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def analyzer() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    proc = subprocess.Popen([sys.executable, "__main__.py"], cwd=ROOT / "policy", stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().strip())
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=30)
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        proc.kill()
        proc.wait()


def struct(props: dict[str, Any]) -> struct_pb2.Struct:
    return json_format.ParseDict(props, struct_pb2.Struct())


def analyze(stub: analyzer_pb2_grpc.AnalyzerStub, rtype: str, props: dict[str, Any], stack: str = "prod",
            protect: bool = False) -> list[tuple[str, int]]:
    request = analyzer_pb2.AnalyzeRequest(type=rtype, properties=struct(props), name="r",
                                          urn=f"urn:pulumi:{stack}::platform::{rtype}::r",
                                          options=analyzer_pb2.AnalyzerResourceOptions(protect=protect))
    return [(d.policyName, d.enforcementLevel) for d in stub.Analyze(request).diagnostics]


def test_info_lists_every_policy(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "platform-policies"
    assert {p.name for p in info.policies} == {"helm-pinned-versions", "images-pinned", "metallb-private-pools",
                                               "no-plaintext-secrets", "protect-stateful", "ha-replicas"}


def test_violations_come_back_through_the_protocol(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    mandatory, advisory = analyzer_pb2.MANDATORY, analyzer_pb2.ADVISORY
    deployment = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:latest"}]}}}}
    assert analyze(analyzer, "kubernetes:apps/v1:Deployment", deployment) == [("images-pinned", mandatory)]
    pool = {"spec": {"addresses": ["8.8.8.0/24"]}}
    assert analyze(analyzer, "kubernetes:metallb.io/v1beta1:IPAddressPool", pool) == [
        ("metallb-private-pools", mandatory)]
    release = {"chart": "metallb", "version": "^0.16"}
    assert analyze(analyzer, "kubernetes:helm.sh/v3:Release", release) == [("helm-pinned-versions", mandatory)]
    shoot = "pulumi-python:dynamic/cleura:Shoot"
    assert analyze(analyzer, shoot, {}) == [("protect-stateful", advisory)]
    assert analyze(analyzer, shoot, {}, protect=True) == []
    assert analyze(analyzer, shoot, {}, stack="review-7") == []
    good = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:1.27.3"}]}}}}
    assert analyze(analyzer, "kubernetes:apps/v1:Deployment", good) == []


def test_stack_policy_through_the_protocol(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    def resources(stack: str, servers: int) -> list[analyzer_pb2.AnalyzerResource]:
        return [analyzer_pb2.AnalyzerResource(
            type="command:remote:Command", name=f"s{i}",
            urn=f"urn:pulumi:{stack}::platform::command:remote:Command::s{i}",
            properties=struct({"create": "# platform:k3s: install or upgrade K3s (server)"}))
            for i in range(servers)]

    one = analyzer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=resources("prod", 1)))
    assert [d.policyName for d in one.diagnostics] == ["ha-replicas"]
    three = analyzer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=resources("prod", 3)))
    assert list(three.diagnostics) == []
    review = analyzer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=resources("review-2", 1)))
    assert list(review.diagnostics) == []
