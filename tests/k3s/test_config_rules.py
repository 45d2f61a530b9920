"""The K3s-related config rules added for this component (components/config.py)."""

from __future__ import annotations

import copy

import pytest

from components.problems import ConfigError

from .stacks import homelab_raw, parse


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
