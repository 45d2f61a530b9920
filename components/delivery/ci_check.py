"""Validate the pipeline the way GitLab builds it, with GitLab's own CI schema.

    python -m components.delivery.ci_check [--root .] [--out build/ci-check]

`check-jsonschema --builtin-schema vendor.gitlab-ci` reads one YAML document per file, and a
component is two (the `spec:` header, then the jobs with `$[[ inputs.* ]]` placeholders that
GitLab fills in before it validates anything). So this tool:

1. checks every `templates/<name>.yml` header: typed inputs, defaults that satisfy their own
   `type`/`options`/`regex`;
2. interpolates each component as GitLab does (a value that is exactly one placeholder takes
   the input's typed value, e.g. an array; placeholders inside text are replaced as text) with
   its defaults, once per value of every `options` input;
3. expands the project's `.gitlab-ci.yml` with each `include: component:` of this project at
   the inputs it passes (inputs checked against the spec: unknown, missing, wrong type, not in
   `options`, not matching `regex`), merging the jobs into one pipeline: duplicate job names
   and jobs in undeclared stages are errors;
4. writes every resulting document under `--out` and runs the real validator over them all,
   plus `.gitlab-ci.yml` itself as written.

Exit status 0 when everything validates, 1 otherwise (each problem printed with its file).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER_RE = re.compile(r"\$\[\[\s*inputs\.([A-Za-z0-9_-]+)\s*\]\]")
WHOLE_RE = re.compile(r"^\s*\$\[\[\s*inputs\.([A-Za-z0-9_-]+)\s*\]\]\s*$")
OWN_COMPONENT_RE = re.compile(r"^\$CI_SERVER_FQDN/\$CI_PROJECT_PATH/([A-Za-z0-9_-]+)@\$CI_COMMIT_SHA$")
TYPES: dict[str, tuple[type, ...]] = {"string": (str,), "number": (int, float), "boolean": (bool,), "array": (list,)}
GLOBAL_KEYS = {"default", "include", "stages", "variables", "workflow", "spec", "image", "services", "cache",
               "before_script", "after_script"}
SAMPLE_VALUES = {"string": "example", "number": 1, "boolean": True, "array": []}


class CiError(Exception):
    pass


def load_component(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    docs = list(yaml.safe_load_all(path.read_text()))
    if len(docs) != 2 or not isinstance(docs[0], dict) or "spec" not in docs[0] or not isinstance(docs[1], dict):
        raise CiError(f"{path}: a component is two YAML documents: `spec:` with its inputs, `---`, then the jobs")
    return docs[0], docs[1]


def input_problem(name: str, decl: Mapping[str, Any], value: object) -> str | None:
    kind = str(decl.get("type", "string"))
    if kind not in TYPES:
        return f"input {name}: unknown type {kind!r}"
    if not isinstance(value, TYPES[kind]) or (kind == "number" and isinstance(value, bool)):
        return f"input {name}: {value!r} is not a {kind}"
    if "options" in decl and value not in decl["options"]:
        return f"input {name}: {value!r} is not one of {decl['options']}"
    if "regex" in decl and (not isinstance(value, str) or re.search(str(decl["regex"]), value) is None):
        return f"input {name}: {value!r} does not match {decl['regex']}"
    return None


def check_spec(spec: Mapping[str, Any], where: str) -> list[str]:
    problems = []
    inputs = (spec.get("spec") or {}).get("inputs") or {}
    if not isinstance(inputs, dict):
        return [f"{where}: spec:inputs must be a mapping"]
    for name, decl in inputs.items():
        decl = decl or {}
        if "default" in decl:
            problem = input_problem(name, decl, decl["default"])
            if problem:
                problems.append(f"{where}: default of {problem}")
    return problems


def resolve_inputs(spec: Mapping[str, Any], given: Mapping[str, Any], where: str,
                   sample_required: bool = False) -> tuple[dict[str, Any], list[str]]:
    inputs = (spec.get("spec") or {}).get("inputs") or {}
    values: dict[str, Any] = {}
    problems = [f"{where}: input {k!r} is not declared by the component" for k in given if k not in inputs]
    for name, decl in inputs.items():
        decl = decl or {}
        if name in given:
            values[name] = given[name]
        elif "default" in decl:
            values[name] = decl["default"]
        elif sample_required:
            values[name] = (decl.get("options") or [SAMPLE_VALUES[str(decl.get("type", "string"))]])[0]
            continue
        else:
            problems.append(f"{where}: required input {name!r} is missing")
            continue
        problem = input_problem(name, decl, values[name])
        if problem:
            problems.append(f"{where}: {problem}")
    return values, problems


def interpolate(node: Any, values: Mapping[str, Any], where: str) -> Any:
    if isinstance(node, dict):
        return {interpolate(k, values, where): interpolate(v, values, where) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate(v, values, where) for v in node]
    if isinstance(node, str):
        whole = WHOLE_RE.match(node)
        if whole:
            return values[_known(whole.group(1), values, where)]

        def text(m: re.Match[str]) -> str:
            value = values[_known(m.group(1), values, where)]
            return str(value).lower() if isinstance(value, bool) else str(value)

        return PLACEHOLDER_RE.sub(text, node)
    return node


def _known(name: str, values: Mapping[str, Any], where: str) -> str:
    if name not in values:
        raise CiError(f"{where}: $[[ inputs.{name} ]] is used but not declared")
    return name


def option_variants(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Defaults, plus one variant per other value of every `options` input."""
    variants: list[dict[str, Any]] = [{}]
    for name, decl in ((spec.get("spec") or {}).get("inputs") or {}).items():
        for option in (decl or {}).get("options") or []:
            if option != (decl or {}).get("default"):
                variants.append({name: option})
    return variants


def deep_merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        return {**base, **{k: deep_merge(base[k], v) if k in base else v for k, v in override.items()}}
    return override


def expand_pipeline(root: Path) -> tuple[dict[str, Any], list[str]]:
    pipeline = yaml.safe_load((root / ".gitlab-ci.yml").read_text())
    problems: list[str] = []
    merged: dict[str, Any] = {}
    stages = set(pipeline.get("stages") or ["build", "test", "deploy"]) | {".pre", ".post"}
    includes = pipeline.get("include") or []
    for i, inc in enumerate(includes if isinstance(includes, list) else [includes]):
        where = f".gitlab-ci.yml include[{i}]"
        match = OWN_COMPONENT_RE.match(str((inc or {}).get("component", "")))
        if not match:
            continue
        path = root / "templates" / f"{match.group(1)}.yml"
        if not path.is_file():
            problems.append(f"{where}: component {match.group(1)!r} has no templates/{match.group(1)}.yml")
            continue
        spec, jobs = load_component(path)
        values, found = resolve_inputs(spec, inc.get("inputs") or {}, f"{where} ({match.group(1)})")
        problems += found
        if found:
            continue
        for name, job in interpolate(jobs, values, str(path)).items():
            if name in merged:
                problems.append(f"{where}: job {name!r} is defined twice")
            merged[name] = job
    # The including file's own keys merge into included jobs of the same name (hashes deep, the rest replaced).
    for name, value in pipeline.items():
        if name != "include":
            merged[name] = deep_merge(merged[name], value) if name in merged else value
    for name, job in merged.items():
        is_job = name not in GLOBAL_KEYS and not name.startswith(".") and isinstance(job, dict)
        if is_job and job.get("stage", "test") not in stages:
            problems.append(f".gitlab-ci.yml: job {name!r} is in stage {job.get('stage')!r}, not in `stages`")
    return merged, problems


def run(root: Path, out: Path, validator: str) -> list[str]:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    problems: list[str] = []
    files: list[Path] = [root / ".gitlab-ci.yml"]
    for path in sorted((root / "templates").glob("*.yml")):
        try:
            spec, jobs = load_component(path)
        except CiError as exc:
            problems.append(str(exc))
            continue
        problems += check_spec(spec, str(path))
        header = out / f"{path.stem}.spec.yml"
        header.write_text(yaml.safe_dump(spec, sort_keys=False))
        files.append(header)
        for n, variant in enumerate(option_variants(spec)):
            values, found = resolve_inputs(spec, variant, str(path), sample_required=True)
            problems += found
            try:
                doc = interpolate(jobs, values, str(path))
            except CiError as exc:
                problems.append(str(exc))
                continue
            target = out / f"{path.stem}.jobs.{n}.yml"
            target.write_text(yaml.safe_dump(doc, sort_keys=False))
            files.append(target)
    try:
        merged, found = expand_pipeline(root)
        problems += found
        target = out / "pipeline.expanded.yml"
        target.write_text(yaml.safe_dump(merged, sort_keys=False))
        files.append(target)
    except (CiError, OSError, yaml.YAMLError) as exc:
        problems.append(str(exc))
    proc = subprocess.run([validator, "--builtin-schema", "vendor.gitlab-ci", *map(str, files)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        problems.append(f"check-jsonschema (vendor.gitlab-ci) rejected the pipeline:\n{proc.stdout}{proc.stderr}")
    else:
        print(f"check-jsonschema vendor.gitlab-ci: {len(files)} documents valid "
              f"(.gitlab-ci.yml, component headers, interpolated components, the expanded pipeline)")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=str(PROJECT_ROOT))
    parser.add_argument("--out", default=str(PROJECT_ROOT / "build" / "ci-check"))
    parser.add_argument("--validator", default=str(Path(sys.executable).with_name("check-jsonschema")))
    args = parser.parse_args(argv)
    problems = run(Path(args.root), Path(args.out), args.validator)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
