"""Fixtures of the real-engine tier: one local API server per test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.apiserver import LocalCluster, local_cluster


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """kine + kube-apiserver + kube-controller-manager on 127.0.0.1 (skips when not built)."""
    workdir: Path = tmp_path_factory.mktemp("apiserver")
    with local_cluster(workdir) as running:
        yield running
