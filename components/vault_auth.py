"""Kubernetes-auth roles that the Vault bootstrap creates for other components.

A component that reads secrets from the platform's Vault (the Argo CD Vault Plugin, for one)
describes the role it needs with `VaultAuthRole`; `PlatformLayer` hands every such role to
`Vault`, whose bootstrap writes the policy and the role idempotently. Kept apart from both
components so neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VaultAuthRole:
    """One ``auth/kubernetes/role/<name>`` with the single policy it grants."""

    name: str
    service_accounts: tuple[str, ...]
    namespaces: tuple[str, ...]
    policy_name: str
    policy_hcl: str
    token_ttl: str = "1h"  # noqa: S105 - a duration
