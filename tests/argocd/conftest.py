"""Fixtures for the Argo CD tests: the homelab stack with Argo CD variations, typed args."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from components.argocd import ArgoCDArgs
from components.config import StackConfig, parse_stack_config
from tests.addons.conftest import SSH_KEY, conformance, homelab_raw

DEPLOY_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\ndeploy-key-for-tests-only\n-----END OPENSSH PRIVATE KEY-----\n"
TOKEN = "glpat-test-token-0123456789"
KNOWN_HOSTS = "git.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
VAULT_ADDRESS = "http://vault.vault.svc:8200"
__all__ = ["conformance"]  # the reference-data fixture, shared with the add-on tests


def argocd_section(**changes: Any) -> dict[str, Any]:
    """The homelab's platform:argocd section with top-level `changes` (None deletes a key)."""
    section: dict[str, Any] = dict(homelab_raw()["platform:argocd"])
    for key, value in changes.items():
        if value is None:
            section.pop(key, None)
        else:
            section[key] = value
    return section


def stack(section: Mapping[str, Any] | None = None, secrets: Mapping[str, str] | None = None,
          overrides: Mapping[str, Any] | None = None) -> StackConfig:
    """The homelab stack with `section` as platform:argocd and extra secret keys."""
    raw = homelab_raw({"platform:argocd": dict(section) if section is not None else argocd_section(),
                       **(overrides or {})})
    chosen = secrets if secrets is not None else {"argocdRepoSshKey": DEPLOY_KEY}
    extra = {f"platform:{k}": v for k, v in chosen.items()}
    raw.update(extra)
    return parse_stack_config(raw, frozenset({SSH_KEY, *extra}), stack="homelab")


def args(section: Mapping[str, Any] | None = None, *, vault: bool = False, **kwargs: Any) -> ArgoCDArgs:
    cfg = stack(section, **kwargs)
    return ArgoCDArgs.from_config(cfg, vault_enabled=vault, vault_address=VAULT_ADDRESS if vault else None)


def plugin_args(**changes: Any) -> ArgoCDArgs:
    """Args with the Vault plugin on (Vault itself is wired by the lead; here it is assumed on)."""
    from dataclasses import replace

    image = "registry.example.com/platform/argocd-avp:v3.4.4-avp1.18.1"
    return replace(args(argocd_section(**changes)), vault_plugin=True, vault_enabled=True,
                   vault_address=VAULT_ADDRESS, plugin_image=image)
