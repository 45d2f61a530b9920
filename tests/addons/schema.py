"""Conformance against ``../shared/reference``: chart values and custom resources.

Two questions, answered with the pinned upstream files and a real JSON-schema validator:

- `check_values(chart, version, values)`: does every value the program sets exist in that
  chart version's ``values.yaml`` (or a subchart's, under its prefix), with a compatible type,
  or sit in a documented open map? For the tigera-operator chart, ``installation.*``,
  ``apiServer.*``, ``goldmane.*``, ``whisker.*`` and ``defaultFelixConfiguration.*`` are checked
  against the CRD of the resource they become. Where the chart ships ``values.schema.json`` the
  merged values are validated against it. Misses inside subcharts whose reference file is not
  the exact pinned version are warnings (INDEX.md), everything else is an error.
- `validate_custom_resource(obj)`: does a manifest validate against its CRD's
  ``openAPIV3Schema``, with unknown fields rejected except where the schema preserves them
  (``x-kubernetes-preserve-unknown-fields``), ``x-kubernetes-int-or-string`` and ``nullable``
  honoured, and ``metadata`` checked for name and scope? CEL rules
  (``x-kubernetes-validations``) are not evaluated.

Every file is read once per process (the Installation CRD is 1.46 MB). Reusable outside the
tests, e.g. on the files `make render` writes: ``python -m tests.addons.schema build/render/homelab``.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference"

# Keys whose children are free-form in every chart (INDEX.md section 3).
OPEN_MAP_KEYS = frozenset({
    "podAnnotations", "annotations", "labels", "podLabels", "additionalLabels", "nodeSelector", "resources",
    "extraArgs", "env", "serviceAnnotations", "serviceLabels",
})
# Chart-specific open maps, as key paths under which anything goes.
OPEN_MAP_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "longhorn": (("defaultSettings",),),
    # values.yaml has `entryPoint: {}`; templates/_podtemplate.tpl reads to, scheme, priority, permanent.
    "traefik": (("ports", "web", "http", "redirections", "entryPoint"),),
    # values.yaml has `ingressShim: {}` with defaultIssuerName/Kind/Group documented in comments.
    "cert-manager": (("ingressShim",),),
    "argo-cd": (
        ("configs", "params"), ("configs", "cm"), ("configs", "rbac"), ("configs", "secret", "extra"),
        ("configs", "repositories"), ("configs", "credentialTemplates"),
        # Kubernetes objects passed through whole (a DeploymentStrategy, an Affinity, ConfigMapPlugins).
        ("redis-ha", "haproxy", "deploymentStrategy"), ("redis-ha", "haproxy", "additionalAffinities"),
        ("redis-ha", "additionalAffinities"), ("configs", "cmp", "plugins"),
    ),
    "vault": (("server", "extraEnvironmentVars"),),  # name -> value, like `env`
}
# Values the chart's templates read that values.yaml only shows in a comment (INDEX.md section 3).
COMMENTED_VALUES: dict[str, tuple[tuple[str, ...], ...]] = {
    "vault": (("server", "readinessProbe", "path"),),
}
# tigera-operator: these values become the spec of a custom resource (minus `enabled`).
CHART_RESOURCE_KEYS: dict[str, dict[str, tuple[str, str]]] = {
    "tigera-operator": {
        "installation": ("operator.tigera.io/v1", "Installation"),
        "apiServer": ("operator.tigera.io/v1", "APIServer"),
        "goldmane": ("operator.tigera.io/v1", "Goldmane"),
        "whisker": ("operator.tigera.io/v1", "Whisker"),
        "defaultFelixConfiguration": ("projectcalico.org/v3", "FelixConfiguration"),
    },
}
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


@dataclass
class Findings:
    """Errors fail conformance; warnings are reported (approximate reference files)."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def extend(self, other: Findings) -> None:
        self.errors += other.errors
        self.warnings += other.warnings


class ReferenceMissingError(FileNotFoundError):
    """The reference data (or the chart/CRD asked for) is not in ``../shared/reference``."""


def _load_yaml(path: Path) -> Any:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open() as fh:
        return yaml.load(fh, Loader=loader)  # noqa: S506 - a safe loader (C or Python)


@functools.lru_cache(maxsize=8)
def _index(root: Path) -> dict[str, Any]:
    path = root / "index.json"
    if not path.is_file():
        raise ReferenceMissingError(f"{path} not found")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


@functools.lru_cache(maxsize=64)
def _file(root: Path, relative: str) -> Any:
    return _load_yaml(root / relative) if not relative.endswith(".json") else json.loads((root / relative).read_text())


def _dotted(path: Iterable[str]) -> str:
    return ".".join(f'"{p}"' if "." in p or "/" in p else p for p in path)


# -- CRDs --------------------------------------------------------------------------------


_GO_GLOBAL_FLAGS = re.compile(r"\(\?([imsU]+)\)")


def python_pattern(pattern: str) -> str:
    """A Go (RE2) pattern in Python syntax: inline global flags such as ``^(?i)...`` move to the front."""
    flags = "".join(sorted({f for group in _GO_GLOBAL_FLAGS.findall(pattern) for f in group if f != "U"}))
    stripped = _GO_GLOBAL_FLAGS.sub("", pattern)
    return f"(?{flags}){stripped}" if flags else stripped


def to_json_schema(node: Any, *, preserve: bool = False) -> Any:
    """Translate an ``openAPIV3Schema`` (structural) into a strict JSON schema.

    Objects reject properties their schema does not name (the API server prunes or rejects
    them) unless ``x-kubernetes-preserve-unknown-fields`` is set.
    """
    if not isinstance(node, Mapping):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {k: to_json_schema(v) for k, v in value.items()}
        elif key == "patternProperties":
            out[key] = {python_pattern(k): to_json_schema(v) for k, v in value.items()}
        elif key == "pattern" and isinstance(value, str):
            out[key] = python_pattern(value)
        elif key in ("items", "additionalProperties", "not") and isinstance(value, Mapping):
            out[key] = to_json_schema(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [to_json_schema(v, preserve=True) for v in value]
        elif key.startswith("x-kubernetes-") or key in ("nullable", "description", "example", "externalDocs"):
            continue
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if node.get("x-kubernetes-embedded-resource"):
        props = out.setdefault("properties", {})
        for name in ("apiVersion", "kind"):
            props.setdefault(name, {"type": "string"})
        props.setdefault("metadata", {"type": "object"})
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(node.get(bound), bool):  # OpenAPI 3.0's boolean form
            exclusive = out.pop(bound)
            if exclusive and limit in out:
                out[bound] = out.pop(limit)
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    keeps_unknown = preserve or node.get("x-kubernetes-preserve-unknown-fields") is True
    if node.get("type") == "object" and "additionalProperties" not in node and not keeps_unknown:
        out["additionalProperties"] = False
    return out


@dataclass(frozen=True)
class CrdVersion:
    group: str
    version: str
    kind: str
    scope: str
    validator: jsonschema.protocols.Validator
    spec_validator: jsonschema.protocols.Validator | None


@functools.lru_cache(maxsize=64)
def crd_version(api_version: str, kind: str, root: Path = REFERENCE) -> CrdVersion:
    """The compiled schema of `kind` at `api_version`, read (once) from the reference CRDs."""
    group, _, version = api_version.rpartition("/")
    entries = [c for c in _index(root)["crds"] if c["group"] == group and c["kind"] == kind]
    if not entries:
        raise ReferenceMissingError(f"no CRD for {kind} in group {group!r} under {root / 'crds'}")
    crd = _file(root, entries[0]["path"])
    for v in crd["spec"]["versions"]:
        if v["name"] == version:
            if not v.get("served", True):
                raise ValueError(f"{api_version} {kind} is not served")
            schema = to_json_schema(v["schema"]["openAPIV3Schema"])
            schema.setdefault("properties", {})["metadata"] = {"type": "object"}
            validator = jsonschema.Draft7Validator(schema)
            spec_schema = schema["properties"].get("spec")
            return CrdVersion(
                group, version, kind, crd["spec"]["scope"], validator,
                jsonschema.Draft7Validator(spec_schema) if spec_schema else None,
            )
    served = ", ".join(v["name"] for v in crd["spec"]["versions"])
    raise ValueError(f"{kind} has no version {version!r} in group {group} (served: {served})")


def has_crd(api_version: str, kind: str, root: Path = REFERENCE) -> bool:
    group = api_version.rpartition("/")[0]
    return any(c["group"] == group and c["kind"] == kind for c in _index(root)["crds"])


def _errors(validator: jsonschema.protocols.Validator, instance: Any, prefix: str) -> list[str]:
    out = []
    for err in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path))):
        where = _dotted(str(p) for p in err.absolute_path)
        out.append(f"{prefix}{'.' + where if where else ''}: {err.message}")
    return out


def validate_custom_resource(obj: Mapping[str, Any], root: Path = REFERENCE) -> list[str]:
    """Every way `obj` (a full manifest) violates its CRD in the reference; [] when valid."""
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return ["manifest has no apiVersion/kind"]
    crd = crd_version(api_version, kind, root)
    meta = obj.get("metadata")
    label = f"{kind}/{meta.get('name') if isinstance(meta, Mapping) else '?'}"
    problems = _errors(crd.validator, dict(obj), label)
    if not isinstance(meta, Mapping) or not isinstance(meta.get("name"), str):
        problems.append(f"{label}: metadata.name is required")
    else:
        if not re.match(DNS_SUBDOMAIN, meta["name"]) or len(meta["name"]) > 253:
            problems.append(f"{label}: metadata.name {meta['name']!r} is not a DNS subdomain")
        if crd.scope == "Namespaced" and not meta.get("namespace"):
            problems.append(f"{label}: {kind} is namespaced but metadata.namespace is not set")
        if crd.scope == "Cluster" and meta.get("namespace"):
            problems.append(f"{label}: {kind} is cluster-scoped but metadata.namespace is set")
        for key in ("labels", "annotations"):
            for k, v in (meta.get(key) or {}).items():
                if not isinstance(v, str):
                    problems.append(f"{label}: metadata.{key}.{k} must be a string, got {v!r}")
    return problems


def validate_spec(api_version: str, kind: str, spec: Any, root: Path = REFERENCE, label: str = "") -> list[str]:
    """Errors of `spec` alone against the CRD's ``spec`` schema (for chart values that become one)."""
    crd = crd_version(api_version, kind, root)
    return _errors(crd.spec_validator, spec, label or f"{kind}.spec") if crd.spec_validator else []


# -- chart values --------------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    """One values file visible at a key path: its subtree there, and whether it is exact."""

    tree: Mapping[str, Any]
    source: str
    exact: bool


@dataclass(frozen=True)
class ChartRef:
    chart: str
    version: str
    root: Path
    values_file: str
    values: Mapping[str, Any]
    schema: Mapping[str, Any] | None
    subcharts: tuple[tuple[tuple[str, ...], str, bool, Mapping[str, Any] | None], ...]  # prefix, file, exact, schema


@functools.lru_cache(maxsize=16)
def chart_ref(chart: str, version: str, root: Path = REFERENCE) -> ChartRef:
    entries = [c for c in _index(root)["charts"] if c["chart"] == chart and c["version"] == version]
    if not entries:
        known = ", ".join(f"{c['chart']} {c['version']}" for c in _index(root)["charts"])
        raise ReferenceMissingError(f"no reference values for chart {chart} {version} (have: {known})")
    entry = entries[0]
    files = [f["path"] for f in entry["files"]]
    values_file = next(f for f in files if f.endswith("values.yaml"))
    schema_file = next((f for f in files if f.endswith("values.schema.json")), None)
    subs: list[tuple[tuple[str, ...], str, bool, Mapping[str, Any] | None]] = []

    def collect(items: list[dict[str, Any]]) -> None:
        for sub in items:
            paths = [f["path"] for f in sub.get("files", [])]
            sub_values = next((p for p in paths if p.endswith("values.yaml")), None)
            sub_schema = next((p for p in paths if p.endswith("values.schema.json")), None)
            if sub_values:
                subs.append((
                    tuple(sub["values_prefix"].split(".")), sub_values, sub.get("exact") is True,
                    _file(root, sub_schema) if sub_schema else None,
                ))
            collect(sub.get("subcharts", []))

    collect(entry.get("subcharts", []))
    schema = _file(root, schema_file) if schema_file else None
    return ChartRef(chart, version, root, values_file, _file(root, values_file) or {}, schema, tuple(subs))


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "map"
    if isinstance(value, list):
        return "list"
    return "null"


def _is_open(chart: str, path: tuple[str, ...]) -> bool:
    if path and path[-1] in OPEN_MAP_KEYS:
        return True
    return any(path[: len(p)] == p for p in OPEN_MAP_PATHS.get(chart, ()))


def _walk(ref: ChartRef, mine: Mapping[str, Any], layers: list[Layer], path: tuple[str, ...],
          found: Findings) -> None:
    for key, value in mine.items():
        here = (*path, str(key))
        name = f"{ref.chart} {ref.version}: {_dotted(here)}"
        present = [layer for layer in layers if key in layer.tree]
        sub_roots = [Layer(_file(ref.root, f), f, exact) for prefix, f, exact, _ in ref.subcharts if prefix == here]
        if not present and not sub_roots and here in COMMENTED_VALUES.get(ref.chart, ()):
            continue
        if not present and not sub_roots:
            message = f"{name} is not a value of the chart" + (
                f" (looked in {', '.join(sorted({layer.source for layer in layers}))})" if layers else ""
            )
            (found.errors if all(layer.exact for layer in layers) else found.warnings).append(message)
            continue
        default = present[0].tree[key] if present else None
        if default is not None and value is not None and _kind(default) != _kind(value):
            found.errors.append(f"{name} is a {_kind(value)} but the chart's default is a {_kind(default)} "
                                f"({default!r})")
            continue
        if _is_open(ref.chart, here) or not isinstance(value, Mapping):
            continue
        below = [Layer(layer.tree[key], layer.source, layer.exact) for layer in present
                 if isinstance(layer.tree[key], Mapping)]
        _walk(ref, value, below + sub_roots, here, found)


def _merge(base: Any, override: Any) -> Any:
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        out = dict(base)
        for k, v in override.items():
            out[k] = _merge(base.get(k), v) if k in base else v
        return out
    return override


def check_values(chart: str, version: str, values: Mapping[str, Any], root: Path = REFERENCE) -> Findings:
    """Conformance of Helm `values` for `chart` at `version` (see the module docstring)."""
    ref = chart_ref(chart, version, root)
    found = Findings()
    resource_keys = CHART_RESOURCE_KEYS.get(chart, {})
    plain = {k: v for k, v in values.items() if k not in resource_keys}
    _walk(ref, plain, [Layer(ref.values, ref.values_file, True)], (), found)
    for key, (api_version, kind) in resource_keys.items():
        if key not in values:
            continue
        mine = values[key]
        if not isinstance(mine, Mapping):
            found.errors.append(f"{chart} {version}: {key} must be a map")
            continue
        if "enabled" in mine and not isinstance(mine["enabled"], bool):
            found.errors.append(f"{chart} {version}: {key}.enabled must be a boolean")
        spec = {k: v for k, v in _merge(ref.values.get(key) or {}, mine).items() if k != "enabled"}
        found.errors += validate_spec(api_version, kind, spec, root, f"{chart} {version}: {key} ({kind}.spec)")
    merged = _merge(ref.values, values)
    if ref.schema is not None:
        validator = jsonschema.validators.validator_for(ref.schema, default=jsonschema.Draft7Validator)
        found.errors += _errors(validator(ref.schema), merged, f"{chart} {version} values.schema.json")
    for prefix, sub_file, exact, sub_schema in ref.subcharts:
        if sub_schema is None:
            continue
        provided: Any = merged
        for part in prefix:
            provided = provided.get(part, {}) if isinstance(provided, Mapping) else {}
        sub_merged = _merge(_file(root, sub_file), provided)
        validator = jsonschema.validators.validator_for(sub_schema, default=jsonschema.Draft7Validator)
        errors = _errors(validator(sub_schema), sub_merged, f"{chart} {version} {'.'.join(prefix)} values.schema.json")
        (found.errors if exact else found.warnings).extend(errors)
    return found


# -- rendered output -----------------------------------------------------------------------


def check_render_dir(directory: Path, root: Path = REFERENCE) -> Findings:
    """Conformance of a `make render` output directory: ``helm/*.yaml`` and ``manifests/*.yaml``."""
    found = Findings()
    for path in sorted((directory / "helm").glob("*.yaml")):
        doc = _load_yaml(path) or {}
        chart, version = doc.get("chart"), doc.get("version")
        if not doc.get("values"):
            continue  # nothing set, nothing to conform (e.g. Calico's CRD chart, whose values are empty)
        if isinstance(chart, str) and isinstance(version, str):
            try:
                found.extend(check_values(chart, version, doc.get("values") or {}, root))
            except ReferenceMissingError as exc:
                found.warnings.append(f"{path.name}: {exc}")
    for path in sorted((directory / "manifests").glob("*.yaml")):
        doc = _load_yaml(path) or {}
        if has_crd(str(doc.get("apiVersion", "")), str(doc.get("kind", "")), root):
            found.errors += validate_custom_resource(doc, root)
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tests.addons.schema <render directory>", file=sys.stderr)
        return 2
    found = check_render_dir(Path(argv[0]))
    for warning in found.warnings:
        print(f"warning: {warning}")
    for error in found.errors:
        print(f"error: {error}")
    print(f"{len(found.errors)} error(s), {len(found.warnings)} warning(s)")
    return 0 if found.ok else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
