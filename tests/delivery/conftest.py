"""The project's fake Cleura API (tests/gardener/fake_cleura.py) for the reaper, over real HTTP.

The fake, its per-session server and the accelerated-time environment are the Gardener tests'
own (tests/gardener/conftest.py), so the reaper is tested against exactly what the provider is.
"""

from __future__ import annotations

from tests.gardener.conftest import PASSWORD, PROJECT, REGION, SPEED, USER, fake, fake_server, host_env

__all__ = ["PASSWORD", "PROJECT", "REGION", "SPEED", "USER", "fake", "fake_server", "reaper_env"]


def reaper_env(url: str, **extra: str) -> dict[str, str]:
    """The provider's environment, with a bare PATH: the reaper runs as a child process."""
    return host_env(url, **{"PATH": "/usr/bin:/bin", **extra})
