"""Renames, address changes and teardown can never uninstall a live server by accident."""

from __future__ import annotations

import copy
import dataclasses

from components.k3s import K3sClusterArgs
from components.k3s.cluster import child_aliases

from .mockrun import record_cluster
from .stacks import homelab_args, homelab_raw, parse


def test_renaming_the_cluster_keeps_every_child_name_so_nothing_is_deleted() -> None:
    raw = copy.deepcopy(homelab_raw())
    raw["platform:clusterName"] = "homelab-renamed"
    renamed = K3sClusterArgs.from_config(parse(raw))
    before = {r.name for r in record_cluster(homelab_args(), name="k3s").recording}
    after = {r.name for r in record_cluster(renamed, name="k3s").recording}
    assert before == after  # no child registered under a new name: no delete of an install step
    assert all("homelab" not in name for name in after)
    # stacks deployed before the fixed name keep their resources through aliases
    assert child_aliases(("homelab",), "k3s-control-01-install") == ["homelab-k3s-control-01-install"]
    assert child_aliases((), "token") == []


def test_server_installs_are_protected_unless_allow_destroy() -> None:
    rec = record_cluster(homelab_args(), name="k3s").recording
    for r in rec:
        if r.type == "command:remote:Command" and r.name.endswith("-install"):
            assert r.options["protect"] is (r.name.startswith("k3s-k3s-control-")), r.name
    unprotected = record_cluster(dataclasses.replace(homelab_args(), allow_destroy=True), name="k3s").recording
    assert not any(r.options["protect"] for r in unprotected)
    raw = copy.deepcopy(homelab_raw())
    raw["platform:k3s"]["allowDestroy"] = True
    assert K3sClusterArgs.from_config(parse(raw)).allow_destroy is True


def test_an_address_change_is_planned_as_a_replacement() -> None:
    rec = record_cluster(homelab_args(), name="k3s").recording
    for key in ("k3s-control-02-prepare", "k3s-control-02-install", "k3s-worker-01-prepare", "k3s-worker-01-install"):
        assert "connection.host" in rec.named(f"k3s-{key}").options["replace_on_changes"], key
    # steps that run on the first server about a node are not replaced by the node's address...
    assert "connection.host" not in rec.named("k3s-k3s-worker-01-member").options["replace_on_changes"]
    # ...except its Node: a new host under the old name needs the old Node (and node password) gone first
    node = rec.named("k3s-k3s-worker-01-node")
    assert node.inputs["triggers"] == ["192.0.2.54"] and node.options["delete_before_replace"] is True
    assert rec.named("k3s-k3s-worker-01-install").options["delete_before_replace"] is True
