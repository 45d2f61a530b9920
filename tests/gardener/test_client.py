"""The HTTP client against the fake API over real HTTP: retries, faults, auth, credentials."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from components.gardener.client import (
    AmbiguousWriteError,
    ApiError,
    AuthError,
    CleuraClient,
    Credentials,
    CredentialsError,
    RetryPolicy,
    TransientError,
    base_url,
    error_message,
    load_credentials,
    parse_retry_after,
)
from components.gardener.spec import create_body, shoot_path

from .conftest import PASSWORD, PROJECT, REGION, USER, spec
from .fake_cleura import FakeCleura

SHOOTS = shoot_path("public", REGION, PROJECT)


class Sleeps(list[float]):
    """Records requested sleeps without sleeping (scale 1: real-world numbers are visible)."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make(fake: FakeCleura, *, token: str | None = None, password: str | None = PASSWORD,
         timeout: float = 2.0, sleeps: Sleeps | None = None) -> CleuraClient:
    return CleuraClient(fake.url, Credentials(USER, token, password), timeout=timeout,
                        sleep=sleeps if sleeps is not None else Sleeps(), report=lambda m: None)


def test_logs_in_with_the_flat_v2_body_and_sends_both_headers(fake: FakeCleura) -> None:
    c = make(fake)
    assert c.get_json(SHOOTS)[0] == []
    assert fake.requests[0] == ("POST", "/auth/v2/tokens", 201)
    assert fake.bodies[0][2] == {"login": USER, "password": PASSWORD}


def test_429_honours_retry_after(fake: FakeCleura) -> None:
    sleeps = Sleeps()
    fake.add_fault("GET", SHOOTS + "$", "status", status=429, message="Too Many Requests", retry_after="7")
    assert make(fake, sleeps=sleeps).get_json(SHOOTS)[0] == []
    assert sleeps == [7.0]


def test_5xx_are_retried_with_bounded_exponential_backoff(fake: FakeCleura) -> None:
    sleeps = Sleeps()
    fake.add_fault("GET", SHOOTS, "status", status=503, times=2)
    fake.add_fault("GET", SHOOTS, "status", status=502, times=1)
    fake.add_fault("GET", SHOOTS, "status", status=504, times=1)
    assert make(fake, sleeps=sleeps).get_json(SHOOTS)[0] == []
    assert len(sleeps) == 4 and sleeps == sorted(sleeps) and sleeps[-1] <= 30 * 1.2


def test_retries_give_up(fake: FakeCleura) -> None:
    fake.add_fault("GET", SHOOTS, "status", status=503, times=100)
    c = make(fake)
    with pytest.raises(TransientError, match=r"giving up after 6 attempts.*503"):
        c.get_json(SHOOTS)
    assert fake.count("GET", SHOOTS) == RetryPolicy().attempts


def test_dropped_connection_is_retried_for_reads(fake: FakeCleura) -> None:
    fake.add_fault("GET", SHOOTS, "drop")
    assert make(fake).get_json(SHOOTS)[0] == []
    assert fake.count("GET", SHOOTS) == 2


def test_slow_answer_hits_the_read_timeout_and_is_retried(fake: FakeCleura) -> None:
    fake.add_fault("GET", SHOOTS, "slow", delay=0.6)
    started = time.monotonic()
    c = make(fake, timeout=0.2)
    assert c.get_json(SHOOTS)[0] == []
    assert time.monotonic() - started < 0.6  # did not wait for the slow answer
    assert c.calls == 3  # login, the timed-out GET, its retry


def test_a_write_that_may_have_been_applied_is_not_repeated_blindly(fake: FakeCleura) -> None:
    fake.add_fault("POST", SHOOTS + "$", "drop_after")
    with pytest.raises(AmbiguousWriteError, match=r"may have been applied"):
        make(fake).request("POST", SHOOTS, create_body(spec()), idempotent=False)
    assert fake.count("POST", SHOOTS + "$") == 1 and fake.shoot_names() == ["demo"]


def test_429_on_a_write_is_safe_to_repeat(fake: FakeCleura) -> None:
    fake.add_fault("POST", SHOOTS + "$", "status", status=429, retry_after="1")
    make(fake).request("POST", SHOOTS, create_body(spec()), idempotent=False)
    assert fake.shoot_names() == ["demo"]


def test_other_4xx_fail_at_once_with_the_apis_message(fake: FakeCleura) -> None:
    body = create_body(spec())
    body["kubernetes_version"] = "1.20.0"
    with pytest.raises(ApiError) as err:
        make(fake).request("POST", SHOOTS, body, idempotent=False)
    assert err.value.status == 400 and "Kubernetes version 1.20.0 is not supported" in str(err.value)
    assert fake.count("POST", SHOOTS + "$") == 1


def test_expired_token_logs_in_again_once(fake: FakeCleura) -> None:
    c = make(fake)
    c.get_json(SHOOTS)
    fake.expire_tokens()
    assert c.get_json(SHOOTS)[0] == []
    assert fake.count("POST", "/auth/v2/tokens") == 2


def test_rejected_token_without_password_fails_without_leaking_it(fake: FakeCleura) -> None:
    token = fake.issue_token()
    c = make(fake, token=token, password=None)
    assert c.get_json(SHOOTS)[0] == []
    fake.expire_tokens()
    with pytest.raises(AuthError) as err:
        c.get_json(SHOOTS)
    assert "Invalid token" in str(err.value) and "CLEURA_API_PASSWORD" in str(err.value)
    assert token not in str(err.value)


def test_login_errors_never_echo_the_password(fake: FakeCleura) -> None:
    c = CleuraClient(fake.url, Credentials(USER, None, "wrong-password-123"), report=lambda m: None)
    with pytest.raises(ApiError) as err:
        c.get_json(SHOOTS)
    assert "Invalid credentials" in str(err.value)
    assert "wrong-password-123" not in str(err.value) and "***" in str(err.value)


def test_forbidden_ip_is_transient_but_no_access_is_final(fake: FakeCleura) -> None:
    fake.add_fault("GET", SHOOTS, "status", status=403, message="Forbidden IP")
    assert make(fake).get_json(SHOOTS)[0] == []
    fake.add_fault("GET", SHOOTS, "status", status=403, message="No access: Your user does not have access")
    with pytest.raises(AuthError, match=r"No access"):
        make(fake).get_json(SHOOTS)


def test_error_envelope_and_retry_after_parsing() -> None:
    body = json.dumps({"error": {"code": 400, "message": "bad", "errors": [{"key": "name", "value": "x"}]}})
    assert error_message(body.encode()) == "bad (name: x)"
    assert error_message(b"<html>oops</html>") == "<html>oops</html>"
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT", now=1792567670.0) == pytest.approx(10.0)
    assert parse_retry_after("soon") is None


# --- credentials ------------------------------------------------------------------------------------


def no_cli(env: Any) -> None:
    return None


def test_credentials_from_environment() -> None:
    creds = load_credentials({"CLEURA_API_USERNAME": "u1", "CLEURA_API_TOKEN": "t-123456"}, cli=no_cli)
    assert (creds.username, creds.token, creds.password) == ("u1", "t-123456", None)
    assert "t-123456" not in repr(creds) and "u1" not in repr(creds)
    with pytest.raises(CredentialsError, match=r"CLEURA_API_USERNAME"):
        load_credentials({"CLEURA_API_TOKEN": "t"}, cli=no_cli)
    with pytest.raises(CredentialsError, match=r"CLEURA_API_TOKEN or CLEURA_API_PASSWORD"):
        load_credentials({"CLEURA_API_USERNAME": "u"}, cli=no_cli)


def fake_cli(tmp_path: Path, stdout: str, code: int) -> dict[str, str]:
    exe = tmp_path / "cleura"
    exe.write_text(f"#!/bin/sh\n[ -z \"$CLEURA_API_TOKEN\" ] || exit 9\necho '{stdout}'\nexit {code}\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return {"PATH": f"{tmp_path}:{os.environ.get('PATH', '')}"}


def test_credentials_from_the_cleura_cli(tmp_path: Path) -> None:
    out = json.dumps({"version": 1, "profile": "default", "cloud": "public", "endpoint": "https://api.example",
                      "username": "cli-user", "token": "cli-token-1"})
    env = {**fake_cli(tmp_path, out, 0), "CLEURA_API_TOKEN": "ignored-without-username"}
    creds = load_credentials(env)
    assert (creds.username, creds.token, creds.source) == ("cli-user", "cli-token-1", "cleura CLI")
    assert base_url("public", {}, creds) == "https://api.example"


def test_cli_without_usable_credentials(tmp_path: Path) -> None:
    env = fake_cli(tmp_path, '{"error": "not logged in"}', 2)
    with pytest.raises(CredentialsError, match=r"no Cleura credentials"):
        load_credentials(env)
    env = fake_cli(tmp_path, "garbage", 1)
    with pytest.raises(CredentialsError, match=r"exited 1"):
        load_credentials(env)


def test_base_url_rules() -> None:
    assert base_url("public", {}) == "https://rest.cleura.cloud"
    assert base_url("compliant", {}) == "https://rest.compliant.cleura.cloud"
    assert base_url("public", {"CLEURA_API_URL": "http://127.0.0.1:9/"}) == "http://127.0.0.1:9"
    with pytest.raises(CredentialsError, match=r"CLEURA_API_URL"):
        base_url("my-private-cloud", {})
