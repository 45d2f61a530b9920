"""Progress on the resource's own row: `Log` to the engine with the resource's URN, ephemeral.

The engine starts every provider plugin with its own gRPC address as the first argument
(`pulumi-resource-pulumi-python <engine>` runs `python -m pulumi.dynamic "$@"`), but the SDK's
dynamic host ignores it, so a dynamic provider that writes to stderr shows up as stack-level
diagnostics (printed again in the summary). Here the provider talks to the engine itself: an
ephemeral `Log` with the resource's URN is rendered as the status column of that resource's row
and is not repeated at the end. The URN arrives as the `resource_urn` input (computed by the
component from its own URN; always known, also in previews). Without an engine address or URN
(tests, the exec plugin), or when a call fails, the message goes to stderr as before.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from components.gardener.client import stderr_report

URN_KEY = "resource_urn"
_ADDRESS_RE = re.compile(r"^[\w.\-\[\]:]+:\d+$")


def engine_address(argv: Sequence[str] | None = None) -> str | None:
    args = sys.argv if argv is None else argv
    return args[1] if len(args) > 1 and _ADDRESS_RE.match(args[1]) else None


def child_urn(parent_urn: str, child_type: str, child_name: str) -> str:
    """The URN the engine gives a resource parented to `parent_urn` (type chain joined by `$`)."""
    stack_part, project, qualified_type, _ = parent_urn.split("::", 3)
    return f"{stack_part}::{project}::{qualified_type}${child_type}::{child_name}"


@contextmanager
def reporter(urn: object, address: str | None = None) -> Iterator[Callable[[str], None]]:
    """A `report(message)` for one provider call; closes its channel at the end."""
    address = engine_address() if address is None else address
    if not address or not isinstance(urn, str) or not urn.startswith("urn:pulumi:"):
        yield stderr_report
        return
    import grpc
    from pulumi.runtime.proto import engine_pb2, engine_pb2_grpc

    channel = grpc.insecure_channel(address)
    stub: Any = engine_pb2_grpc.EngineStub(channel)
    broken = [False]

    def report(message: str) -> None:
        if not broken[0]:
            try:
                stub.Log(engine_pb2.LogRequest(severity=engine_pb2.INFO, message=message, urn=urn, ephemeral=True),
                         timeout=5)
                return
            except grpc.RpcError:
                broken[0] = True  # the engine went away: keep the messages, on stderr
        stderr_report(message)

    try:
        yield report
    finally:
        channel.close()
