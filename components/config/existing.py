"""Config for ``clusterKind: existing``: a cluster someone else built, reached through a kubeconfig.

No cluster is created or deleted: the platform layer is installed on the cluster that the
secret ``platform:kubeconfig`` points at (a cluster from kubeadm, another installer, or a
managed service). The kubeconfig is checked for the shape kubectl needs before anything is
registered, without ever echoing it: a pasted public key or half a file gets a clear message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import yaml

from components.config.reader import NAMESPACE, Reader, Secret, secret_command
from components.problems import Problems

KEY = f"{NAMESPACE}:kubeconfig"


@dataclass(frozen=True)
class Existing:
    """The cluster the stack installs onto, and what the program cannot discover offline."""

    kubeconfig: Secret
    server: str  # the API server URL of the current context (not secret; shown in messages)
    schedulable_nodes: int = 1  # declared: how many nodes untainted workloads can land on


def kubeconfig_problems(text: str) -> tuple[list[str], str]:
    """What is wrong with a kubeconfig's shape (never quoting it), and the current context's server."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        return [f"is not YAML{where}; set the whole file: pulumi config set --secret {KEY} -- < kubeconfig"], ""
    if not isinstance(doc, Mapping) or doc.get("kind", "Config") != "Config":
        return ["is not a kubeconfig (expected a YAML document of kind Config with clusters, users and "
                "contexts)"], ""
    def named(section: str) -> dict[str, Mapping[str, object]]:
        out: dict[str, Mapping[str, object]] = {}
        for item in doc.get(section) or []:
            if isinstance(item, Mapping) and isinstance(item.get("name"), str):
                body = item.get(section[:-1])
                out[str(item["name"])] = body if isinstance(body, Mapping) else {}
        return out
    clusters, users, contexts = named("clusters"), named("users"), named("contexts")
    current = doc.get("current-context")
    if not isinstance(current, str) or current not in contexts:
        names = ", ".join(sorted(contexts)) or "none"
        return [f"current-context {current!r} names no context in the file (contexts: {names}); set "
                "current-context or export the one you use with kubectl config view --minify --flatten"], ""
    context = contexts[current]
    problems: list[str] = []
    cluster = clusters.get(str(context.get("cluster")))
    if cluster is None:
        problems.append(f"context {current!r} names cluster {context.get('cluster')!r}, which the file lacks")
    server = str((cluster or {}).get("server") or "")
    if cluster is not None and not server.startswith("https://"):
        problems.append(f"cluster of context {current!r} has server {server or 'unset'!r}; the program talks to "
                        "API servers over https:// only")
    if str(context.get("user")) not in users:
        problems.append(f"context {current!r} names user {context.get('user')!r}, which the file lacks")
    elif any(isinstance(v, str) and v.startswith("/") for k, v in users[str(context.get("user"))].items()
             if k in ("client-certificate", "client-key", "tokenFile")):
        problems.append(f"user of context {current!r} refers to files on this machine; embed them "
                        "(kubectl config view --minify --flatten) so every machine that runs the stack has them")
    return problems, server


def parse_existing(top: Reader, secrets: Mapping[str, Secret], problems: Problems) -> Existing | None:
    """The ``existing`` section and the ``kubeconfig`` secret of an existing-cluster stack."""
    r = top.obj("existing")
    schedulable = r.integer("schedulableNodes", 1, minimum=1, maximum=10000)
    r.finish()
    secret = secrets.get("kubeconfig")
    if secret is None:
        problems.error(KEY, f"is required for clusterKind 'existing' (the cluster to install onto); run: "
                            f"{secret_command('kubeconfig', '-- < kubeconfig')}")
        return None
    found, server = kubeconfig_problems(secret.value)
    for problem in found:
        problems.error(KEY, problem)
    return Existing(secret, server, schedulable) if not found else None
