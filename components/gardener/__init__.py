"""Cleura Gardener shoots as Pulumi resources (dynamic providers over Cleura's REST API).

Public surface: `parse_cleura`/`CleuraConfig` (stack config), `ShootCluster` (component),
`create_body`/`create_body_from_inputs` (the create POST body, for offline renders). The
Pulumi-dependent modules are imported lazily so config parsing stays Pulumi-free.
"""

from components.gardener.spec import (
    CleuraConfig,
    ShootSpec,
    Timeouts,
    Worker,
    create_body,
    create_body_from_inputs,
    parse_cleura,
)

__all__ = [
    "CleuraConfig",
    "ShootSpec",
    "Timeouts",
    "Worker",
    "create_body",
    "create_body_from_inputs",
    "parse_cleura",
]
