"""HTTP client for the Cleura REST API: credentials per call, retries, re-authentication.

Why this shape:

* Credentials are read from the environment (or the `cleura` CLI) every time a client is built,
  i.e. once per provider call. The dynamic provider instance is pickled into Pulumi state, so
  nothing secret may ever live on it; a client lives for one call only.
* Retries are bounded exponential backoff with jitter on 429, 502/503/504, connection errors and
  read timeouts, honouring `Retry-After`. A write that might have reached the server (connection
  dropped after sending, 502/504) is *not* blindly repeated: `AmbiguousWriteError` tells the caller to
  look before trying again, so a flaky network never creates a second shoot or an orphan.
* 401, or 403 whose message mentions the token, logs in again once when a password is available
  (tokens have no advertised expiry). Other 4xx fail at once with the API's own message.
* Every message that leaves this module passes `redact`, because validation errors can echo
  request fields back.
"""

from __future__ import annotations

import base64
import email.utils
import http.client
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from components.gardener.waiting import time_scale

DEFAULT_API_URLS = {
    "public": "https://rest.cleura.cloud",
    "compliant": "https://rest.compliant.cleura.cloud",
}
CREDENTIAL_ENV = ("CLEURA_API_USERNAME", "CLEURA_API_TOKEN", "CLEURA_API_PASSWORD")
TOKEN_PATH = "/auth/v2/tokens"  # noqa: S105 - an endpoint path, not a secret


def stderr_report(message: str) -> None:
    """Progress for the Pulumi CLI: dynamic providers have no engine connection, stderr is shown."""
    sys.stderr.write(f"[cleura] {message}\n")
    sys.stderr.flush()


class CredentialsError(Exception):
    """No usable credentials were found (the message says where we looked)."""


@dataclass(frozen=True)
class Credentials:
    """Who we are for one call. `repr` never shows the token or password."""

    username: str = field(repr=False)
    token: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    endpoint: str | None = None
    cloud: str | None = None
    source: str = "environment"

    def secrets(self) -> list[str]:
        return [s for s in (self.token, self.password, self.username) if s and len(s) >= 4]


def cli_credentials(env: Mapping[str, str]) -> dict[str, Any] | None:
    """`cleura config get-credentials` (stable JSON contract); None when absent or no credentials.

    Run with the CLEURA_* credential variables stripped, as the official provider does, so the
    CLI answers from its own profile store.
    """
    exe = shutil.which("cleura", path=env.get("PATH"))
    if exe is None:
        return None
    args = [exe, "config", "get-credentials"]
    if env.get("CLEURA_PROFILE"):
        args += ["--profile", env["CLEURA_PROFILE"]]
    child_env = {k: v for k, v in env.items() if k not in CREDENTIAL_ENV}
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=5, env=child_env, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CredentialsError(f"`cleura config get-credentials` failed: {type(exc).__name__}") from None
    if proc.returncode == 2:
        return None
    if proc.returncode != 0:
        raise CredentialsError(f"`cleura config get-credentials` exited {proc.returncode}")
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise CredentialsError("`cleura config get-credentials` printed no JSON") from None
    return data if isinstance(data, dict) else None


def load_credentials(env: Mapping[str, str] | None = None,
                     cli: Callable[[Mapping[str, str]], dict[str, Any] | None] = cli_credentials) -> Credentials:
    """CLEURA_API_USERNAME + CLEURA_API_TOKEN and/or CLEURA_API_PASSWORD, else the `cleura` CLI."""
    env = os.environ if env is None else env
    user = env.get("CLEURA_API_USERNAME", "").strip()
    token = env.get("CLEURA_API_TOKEN", "").strip() or None
    password = env.get("CLEURA_API_PASSWORD") or None
    if user and (token or password):
        return Credentials(user, token, password, source="environment")
    data = cli(env)
    if data and data.get("username") and data.get("token"):
        return Credentials(str(data["username"]), str(data["token"]), None, endpoint=data.get("endpoint"),
                           cloud=data.get("cloud"), source="cleura CLI")
    missing = "CLEURA_API_USERNAME" if not user else "CLEURA_API_TOKEN or CLEURA_API_PASSWORD"
    raise CredentialsError(f"no Cleura credentials: set {missing} (or log in with the `cleura` CLI)")


def base_url(cloud: str, env: Mapping[str, str] | None = None, creds: Credentials | None = None) -> str:
    """CLEURA_API_URL, else the CLI profile's endpoint, else the cloud's well-known URL."""
    env = os.environ if env is None else env
    # The CLI profile's endpoint only for the profile's own cloud: a `compliant` resource must
    # never be read from the `public` endpoint, where its 404 would look like "deleted".
    profile = creds.endpoint if creds and (creds.cloud is None or creds.cloud == cloud) else None
    url = env.get("CLEURA_API_URL") or profile or DEFAULT_API_URLS.get(cloud)
    if not url:
        raise CredentialsError(f"cloud {cloud!r} has no default API URL; set CLEURA_API_URL")
    return url.rstrip("/")


def redact(text: str, secrets: list[str]) -> str:
    for s in sorted(secrets, key=len, reverse=True):
        text = text.replace(s, "***")
    return text


# --- errors ------------------------------------------------------------------------------------


class ApiError(Exception):
    """A failed call, with the API's own message (already redacted)."""

    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        self.method, self.path, self.status, self.message = method, path, status, message
        super().__init__(f"{method} {path}: HTTP {status}: {message}" if status else f"{method} {path}: {message}")


class NotFoundError(ApiError):
    pass


class ConflictError(ApiError):
    pass


class AuthError(ApiError):
    pass


class AmbiguousWriteError(ApiError):
    """A non-idempotent request may or may not have been applied; look before retrying."""


class TransientError(ApiError):
    """Retries exhausted on a transient failure."""


def error_message(body: bytes) -> str:
    """`error.message` (+ field errors) from the API's envelope, or a short body excerpt."""
    try:
        data = json.loads(body.decode("utf-8", "replace"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return body.decode("utf-8", "replace").strip()[:300] or "(empty body)"
    err = data.get("error") if isinstance(data, dict) else None
    if not isinstance(err, dict):
        return json.dumps(data)[:300]
    msg = str(err.get("message") or "(no message)")
    details = [f"{e.get('key')}: {e.get('value')}" for e in err.get("errors") or [] if isinstance(e, dict)]
    return msg + (f" ({'; '.join(details)})" if details else "")


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body.strip() else None

    @property
    def retry_after(self) -> float | None:
        return parse_retry_after(self.headers.get("retry-after"))


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff (unscaled seconds)."""

    attempts: int = 6
    base: float = 1.0
    factor: float = 2.0
    cap: float = 30.0
    retry_after_cap: float = 300.0
    jitter: float = 0.2

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        backoff = min(self.cap, self.base * self.factor ** attempt) * rng.uniform(1 - self.jitter, 1 + self.jitter)
        if retry_after is not None:
            return max(min(retry_after, self.retry_after_cap), backoff * 0.5)
        return backoff


@dataclass(frozen=True)
class Proxy:
    host: str
    port: int
    headers: dict[str, str] = field(default_factory=dict, repr=False)


def proxy_env(env: Mapping[str, str]) -> dict[str, str]:
    """`{scheme: url, "no": list}` from *_PROXY variables (lowercase wins, like urllib)."""
    out: dict[str, str] = {}
    for upper_first in (True, False):
        for key, value in env.items():
            if key.lower().endswith("_proxy") and value and (key.isupper() == upper_first):
                out[key.lower()[:-len("_proxy")]] = value
    return out


def proxy_for(scheme: str, host: str, proxies: Mapping[str, str]) -> Proxy | None:
    """The proxy for `scheme://host` honouring NO_PROXY (`*`, exact hosts, domain suffixes)."""
    url = proxies.get(scheme)
    if not url:
        return None
    for entry in (e.strip().lower() for e in proxies.get("no", "").split(",")):
        name = entry.split(":")[0].lstrip(".")
        if entry == "*" or (name and (host.lower() == name or host.lower().endswith("." + name))):
            return None
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if not parts.hostname:
        raise CredentialsError(f"{scheme.upper()}_PROXY is not a proxy URL")
    headers = {}
    if parts.username:
        auth = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        headers["Proxy-Authorization"] = "Basic " + base64.b64encode(auth).decode()
    return Proxy(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), headers)


class _NotSentError(Exception):
    pass


class _MaybeSentError(Exception):
    pass


IDEMPOTENT = ("GET", "HEAD", "PUT", "DELETE")


class CleuraClient:
    """One client per provider call; holds the token only for that call."""

    def __init__(self, url: str, creds: Credentials, *, scale: float = 1.0, timeout: float = 60.0,
                 retry: RetryPolicy | None = None, sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None, report: Callable[[str], None] = stderr_report,
                 proxies: Mapping[str, str] | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CredentialsError(f"API URL {url!r} is not http(s)://host[:port][/path]")
        self._scheme, self._host, self._port = parts.scheme, parts.hostname, parts.port
        self._prefix = parts.path.rstrip("/")
        self.base = url.rstrip("/")
        self.proxy = proxy_for(self._scheme, self._host, proxies or {})
        self._minted = False  # a token this client logged in for (revoked by `close`)
        self._creds = creds
        self._token = creds.token
        self.scale, self.timeout = scale, timeout
        self.retry = retry or RetryPolicy()
        self.sleep, self.rng, self.report = sleep, rng or random.Random(), report  # noqa: S311 - jitter, not crypto
        self.calls = 0

    # -- plumbing -----------------------------------------------------------------------------
    def _redact(self, text: str) -> str:
        return redact(text, self._creds.secrets() + ([self._token] if self._token else []))

    def _send(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Response:
        conn: http.client.HTTPConnection
        target = self._prefix + path
        if self.proxy is not None and self._scheme == "https":
            # HTTPS through a proxy: CONNECT tunnel, TLS to the API end to end.
            conn = http.client.HTTPSConnection(self.proxy.host, self.proxy.port, timeout=self.timeout)
            conn.set_tunnel(self._host, self._port or 443, headers=self.proxy.headers)
        elif self.proxy is not None:
            conn = http.client.HTTPConnection(self.proxy.host, self.proxy.port, timeout=self.timeout)
            target = f"http://{self._host}{f':{self._port}' if self._port else ''}{target}"
            headers = {**headers, **self.proxy.headers}
        elif self._scheme == "https":
            conn = http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout)
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        self.calls += 1
        try:
            try:
                conn.connect()
            except OSError as exc:
                raise _NotSentError(type(exc).__name__) from None
            try:
                conn.request(method, target, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException) as exc:
                raise _MaybeSentError(type(exc).__name__) from None
            return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
        finally:
            conn.close()

    def _headers(self, auth: bool, has_body: bool) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "platform-cleura-gardener/1"}
        if has_body:
            headers["Content-Type"] = "application/json"
        if auth:
            if not self._token:
                self.login()
            headers["X-AUTH-LOGIN"] = self._creds.username
            headers["X-AUTH-TOKEN"] = self._token or ""
        return headers

    def _backoff(self, attempt: int, retry_after: float | None, why: str, method: str, path: str) -> None:
        if attempt >= self.retry.attempts:
            raise TransientError(method, path, 0, f"giving up after {attempt} attempts: {why}")
        delay = self.retry.delay(attempt - 1, retry_after, self.rng)
        self.report(f"{method} {path}: {why}; retry {attempt}/{self.retry.attempts - 1} in {delay:.0f}s")
        self.sleep(delay * self.scale)

    # -- public -------------------------------------------------------------------------------
    def login(self) -> None:
        """POST /auth/v2/tokens with the password; stores the token for this client only."""
        if not self._creds.password:
            raise AuthError("POST", TOKEN_PATH, 0, "no CLEURA_API_PASSWORD to log in with")
        resp = self.request("POST", TOKEN_PATH, {"login": self._creds.username, "password": self._creds.password},
                            auth=False, idempotent=True)
        data = resp.json() or {}
        if data.get("result") != "login_ok" or not data.get("token"):
            raise AuthError("POST", TOKEN_PATH, resp.status,
                            f"login answered {data.get('result')!r}: accounts with two-factor authentication "
                            "cannot use the API; use a service account without 2FA or an API token")
        self._token = str(data["token"])
        self._minted = True

    def close(self) -> None:
        """Revoke the token this client minted (`DELETE /auth/v2/tokens`); a given token is left alone.

        Best effort and never raises: a failed revoke must not fail the provider call, and the token
        expires on its own.
        """
        if not self._minted or not self._token:
            return
        try:
            self.request("DELETE", TOKEN_PATH, idempotent=True)
        except (ApiError, CredentialsError):
            pass
        finally:
            self._token, self._minted = None, False

    def request(self, method: str, path: str, body: object = None, *, auth: bool = True,
                idempotent: bool | None = None) -> Response:
        """One logical call with retries; raises `ApiError` subclasses (messages redacted)."""
        idempotent = method in IDEMPOTENT if idempotent is None else idempotent
        payload = json.dumps(body).encode() if body is not None else None
        attempt, reauthed = 0, False
        while True:
            headers = self._headers(auth, payload is not None)
            try:
                resp = self._send(method, path, payload, headers)
            except _NotSentError as exc:
                attempt += 1
                self._backoff(attempt, None, f"connection failed ({exc})", method, path)
                continue
            except _MaybeSentError as exc:
                if not idempotent:
                    raise AmbiguousWriteError(method, path, 0, f"connection lost after sending ({exc}); "
                                                          "the request may have been applied") from None
                attempt += 1
                self._backoff(attempt, None, f"connection lost ({exc})", method, path)
                continue
            if 200 <= resp.status < 300:
                return resp
            message = self._redact(error_message(resp.body))
            status = resp.status
            token_problem = status == 401 or (status == 403 and "token" in message.lower())
            if auth and token_problem:
                if self._creds.password and not reauthed:
                    reauthed = True
                    self.report(f"{method} {path}: token rejected; logging in again")
                    self.login()
                    continue
                raise AuthError(method, path, status, message + (
                    "" if self._creds.password else
                    " (set CLEURA_API_PASSWORD to allow re-login, or refresh CLEURA_API_TOKEN)"))
            if status == 403 and "no access" in message.lower():
                raise AuthError(method, path, status, message)
            if status in (429, 503) or (status == 403 and not token_problem):
                # Not processed (rate limit, unavailable, or a transient "Forbidden IP"): safe to repeat.
                attempt += 1
                self._backoff(attempt, resp.retry_after, f"HTTP {status}: {message}", method, path)
                continue
            if status in (502, 504) or (status == 500 and method == "GET"):
                if not idempotent:
                    raise AmbiguousWriteError(method, path, status, f"{message}; the request may have been applied")
                attempt += 1
                self._backoff(attempt, resp.retry_after, f"HTTP {status}: {message}", method, path)
                continue
            if status == 404:
                raise NotFoundError(method, path, status, message)
            if status == 409:
                raise ConflictError(method, path, status, message)
            raise ApiError(method, path, status, message)

    def get_json(self, path: str) -> tuple[Any, float | None]:
        """GET returning (JSON, Retry-After); raises NotFoundError on 404."""
        resp = self.request("GET", path)
        return resp.json(), resp.retry_after


def client_from_env(cloud: str, env: Mapping[str, str] | None = None, **kwargs: Any) -> CleuraClient:
    """A client for one provider call, configured from the environment of *this* call."""
    env = os.environ if env is None else env
    creds = load_credentials(env)
    timeout = float(env.get("CLEURA_HTTP_TIMEOUT") or 60.0)
    kwargs.setdefault("scale", time_scale(env))
    kwargs.setdefault("proxies", proxy_env(env))
    url = base_url(cloud, env, creds)
    if creds.cloud and creds.cloud != cloud and not env.get("CLEURA_API_URL"):
        kwargs.get("report", stderr_report)(
            f"warning: the cleura CLI profile is for cloud {creds.cloud!r}, this resource is in cloud {cloud!r}: "
            f"using {url}, not the profile's endpoint (set CLEURA_PROFILE to a profile of that cloud)")
    return CleuraClient(url, creds, timeout=timeout, **kwargs)
