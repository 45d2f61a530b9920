"""`K3sCluster` (``platform:k3s:Cluster``): K3s with embedded etcd on existing hosts, over SSH.

Thin Pulumi wiring around pure parts: `plan.install_plan` decides the steps and their
order, `render` the files, `scripts` the commands. Each step is one pulumi-command
resource whose ``depends_on`` is exactly the plan's, so creation, rolling changes and
teardown all follow one graph (see `plan.py` for the picture and `upgrade.py` for how
downgrades, minor skips and majority removals are refused).

Secrets: the cluster token and the agent token are `RandomPassword`s created once (their
inputs are ignored afterwards, so a code change can never roll them); with the etcd S3
secret key they reach a host only inside config.yaml on the install step's ``stdin``, and the
registry passwords, identity tokens and client keys only inside registries.yaml and the key
files on the same ``stdin`` (`render.install_stdin`). The
admin kubeconfig is read by a step with logging off and ``stdout``/``stderr`` as additional
secret outputs, and leaves the component as a secret output.

Re-runs: a command runs again only when its own inputs change (script text, which carries
the version and every non-secret value, or the config.yaml on stdin). Every command has an
``update`` equal to its ``create``, so a change is an in-place update, never a replacement
that would run the delete (uninstall) script, except a node's new address (a new host:
``replace_on_changes`` on ``connection.host``). Child names do not contain the cluster's name,
servers' install steps are protected unless ``k3s.allowDestroy``, and a gone node's steps are
retained untouched.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pulumi
import pulumi_random as random
from pulumi_command import remote

from components.k3s import render, scripts
from components.k3s.args import K3sClusterArgs, NodeSpec
from components.k3s.plan import Step, install_plan
from components.k3s.transition import Transition

TYPE_NAME = "platform:k3s:Cluster"
SSH_DIAL_ERROR_LIMIT = 10
SSH_PER_DIAL_TIMEOUT = 15
RETAINED_COMMAND_INPUTS = ["connection", "create", "update", "delete", "stdin", "logging", "addPreviousOutputInEnv",
                           "triggers", "environment"]
RETAINED_STAGE_INPUTS = ["connection", "source", "remotePath", "triggers"]
TOKEN_INPUTS = ["length", "lower", "upper", "numeric", "special", "minLower", "minNumeric", "keepers"]


def ca_hash_of(stdout: str | None) -> str | None:
    """The CA hash the ca-hash step printed (None in previews and mocks: the short token form)."""
    text = (stdout or "").strip()
    return text if re.fullmatch(r"[0-9a-f]{64}", text) else None


def child_aliases(previous_names: tuple[str, ...], suffix: str) -> list[str]:
    """The names a child ``<name>-<suffix>`` had under the component's earlier names."""
    return [f"{previous}-{suffix}" for previous in previous_names]


class K3sCluster(pulumi.ComponentResource):  # type: ignore[misc]
    """A K3s HA cluster. `kubeconfig` (secret) resolves once every node has joined."""

    kubeconfig: pulumi.Output[str]
    api_ready: pulumi.Output[bool]
    api_endpoint: pulumi.Output[str]
    deployed: pulumi.Output[dict[str, Any]]
    token: pulumi.Output[str]  # secret: what a restore from an etcd snapshot needs (README "Recovery")

    def __init__(self, name: str, args: K3sClusterArgs, opts: pulumi.ResourceOptions | None = None,
                 previous_names: tuple[str, ...] = ()) -> None:
        """`name` should not change with the cluster's name (`__main__` passes ``k3s``): a child's
        name is ``<name>-<step>``, so renaming would replace, i.e. uninstall, every node.
        `previous_names`: earlier names, whose children are aliased to the current ones."""
        super().__init__(TYPE_NAME, name, None, opts)
        self.args = args
        self._k3s_previous_names = tuple(p for p in previous_names if p != name)
        child = pulumi.ResourceOptions(parent=self)
        # Generated once; never regenerated (changing the token breaks every existing node).
        token_opts = child.merge(pulumi.ResourceOptions(ignore_changes=TOKEN_INPUTS))
        token = random.RandomPassword(
            f"{name}-token", length=64, lower=True, upper=False, numeric=True, special=False,
            opts=token_opts.merge(self._alias_opts("token")),
        )
        agent_token = random.RandomPassword(
            f"{name}-agent-token", length=64, lower=True, upper=False, numeric=True, special=False,
            opts=token_opts.merge(self._alias_opts("agent-token")),
        )
        s3_key = args.etcd.s3.secret_key if args.etcd.s3 is not None else None
        registry_credentials = render.registry_credentials(args)  # used only inside the secret stdin below
        secrets = pulumi.Output.all(
            token.result, agent_token.result, pulumi.Output.secret(s3_key.value) if s3_key else None,
        ).apply(lambda v: render.ConfigSecrets(v[0], v[1], v[2], registries=registry_credentials))
        private_key = (
            pulumi.Output.secret(args.ssh_private_key.value) if args.ssh_private_key is not None else None
        )
        nodes = {n.name: n for n in args.nodes}

        def connection(node: NodeSpec) -> remote.ConnectionArgs:
            proxy = None
            if args.bastion is not None:
                proxy = remote.ProxyConnectionArgs(
                    host=args.bastion.host, port=args.bastion.port, user=args.bastion.user,
                    private_key=private_key, host_key=args.bastion.host_key, dial_error_limit=SSH_DIAL_ERROR_LIMIT,
                    per_dial_timeout=SSH_PER_DIAL_TIMEOUT,
                )
            return remote.ConnectionArgs(
                host=node.address, port=node.ssh_port, user=node.ssh_user, private_key=private_key,
                host_key=node.host_key, proxy=proxy, dial_error_limit=SSH_DIAL_ERROR_LIMIT,
                per_dial_timeout=SSH_PER_DIAL_TIMEOUT,
            )

        # First: the record of this deployment. Its check sees the previous one (the engine passes the old
        # inputs) and refuses a downgrade, minor skip or majority removal before any step is planned.
        self.transition = Transition(f"{name}-transition", args.deployed, args.accept_transition,
                                     opts=child.merge(self._alias_opts("transition")))
        self.steps: dict[str, pulumi.CustomResource] = {}
        for step in install_plan(args):
            deps: list[pulumi.Resource] = [self.transition, *(self.steps[key] for key in step.after)]
            opts_ = child.merge(pulumi.ResourceOptions(depends_on=deps))
            self.steps[step.key] = self._step(name, step, nodes, connection, secrets, opts_)
            if step.kind == "ca-hash":
                hash_cmd = self.steps[step.key]
                assert isinstance(hash_cmd, remote.Command)
                # Joins after server 1 carry the CA hash (the secure token form).
                secrets = pulumi.Output.all(secrets, hash_cmd.stdout).apply(
                    lambda v: dataclasses.replace(v[0], ca_hash=ca_hash_of(v[1])))

        api = self.steps["api-ready"]
        kubeconfig_cmd = self.steps["kubeconfig"]
        assert isinstance(api, remote.Command) and isinstance(kubeconfig_cmd, remote.Command)
        endpoint, cluster_name = args.api_endpoint, args.cluster_name
        self.api_ready_step: pulumi.Resource = api
        self.ready_step: pulumi.Resource = kubeconfig_cmd
        self.api_ready = api.stdout.apply(lambda _: True)
        self.api_endpoint = pulumi.Output.from_input(render.api_url(endpoint))
        self.kubeconfig = pulumi.Output.secret(
            kubeconfig_cmd.stdout.apply(lambda text: render.rewrite_kubeconfig(text or "", endpoint, cluster_name))
        )
        deployed = args.deployed
        self.deployed = pulumi.Output.from_input(
            {"version": deployed.version, "servers": list(deployed.servers), "agents": list(deployed.agents)}
        )
        self.token = pulumi.Output.secret(token.result)
        self.register_outputs({
            "kubeconfig": self.kubeconfig, "apiReady": self.api_ready, "apiEndpoint": self.api_endpoint,
            "deployed": self.deployed, "token": self.token,
        })

    def _alias_opts(self, suffix: str) -> pulumi.ResourceOptions:
        names = child_aliases(self._k3s_previous_names, suffix)
        return pulumi.ResourceOptions(aliases=[pulumi.Alias(name=n) for n in names])

    def _step(self, name: str, step: Step, nodes: dict[str, NodeSpec], connection: Any,
              secrets: pulumi.Output[render.ConfigSecrets], opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
        args = self.args
        resource_name = f"{name}-{step.key}"
        host = nodes[step.host]
        node = nodes[step.node] if step.node else None
        opts = opts.merge(self._alias_opts(step.key))
        if step.node is not None and step.host == step.node and not step.retained:
            # A node's own steps dial its address: a new address is a new host, so they are replaced
            # (the old host's delete runs against the old address), never updated in place.
            opts = opts.merge(pulumi.ResourceOptions(replace_on_changes=["connection.host"]))
        if step.retained:
            # A gone node: nothing may dial it. Its steps stay exactly as deployed (every input ignored, so no
            # update) and are retained on delete (so removal and `pulumi destroy` never run its delete script).
            ignored = RETAINED_STAGE_INPUTS if step.kind == "stage" else RETAINED_COMMAND_INPUTS
            opts = opts.merge(pulumi.ResourceOptions(retain_on_delete=True, ignore_changes=ignored))
        if step.kind == "stage":
            assert node is not None and step.artefact is not None
            local = {"binary": args.airgap.binary, "installer": args.airgap.install_script,
                     "images": args.airgap.images}[step.artefact]
            assert local is not None
            return remote.CopyToRemote(
                resource_name, connection=connection(host), source=pulumi.FileAsset(local),
                remote_path=scripts.stage_path(args, node, step.artefact), opts=opts,
            )
        create: str
        triggers: list[str] | None = None
        delete: str | None = None
        stdin: pulumi.Output[str] | None = None
        extra = pulumi.ResourceOptions()
        if step.kind == "preflight":
            create = str(scripts.preflight_script(args))
        elif step.kind == "prepare":
            assert node is not None
            create = str(scripts.prepare_script(args, node))
            if node.role == "agent":  # the last step of an agent's removal
                delete = str(scripts.uninstall_script(args, node))
        elif step.kind == "ca-hash":
            create = str(scripts.ca_hash_script(args))
        elif step.kind == "labels":
            assert node is not None
            create = str(scripts.labels_script(args, node))
        elif step.kind == "gone":
            assert node is not None
            create = str(scripts.gone_script(args, node))
        elif step.kind == "node":
            assert node is not None
            create = str(scripts.node_create_script(args, node))
            delete = str(scripts.node_delete_script(args, node))
            # a new address is a new host under the same name: its old Node (and node password) must go first
            triggers = [node.address]
            extra = pulumi.ResourceOptions(delete_before_replace=True)
        elif step.kind == "install":
            assert node is not None
            create = str(scripts.install_script(args, node))
            delete = str(scripts.remove_script(args, node))
            bound = node
            stdin = pulumi.Output.secret(secrets.apply(lambda s: render.install_stdin(args, bound, s)))
            # A server's install is protected unless k3s.allowDestroy: a rename, a wrong node list or a
            # `pulumi destroy` can then never uninstall an etcd member by accident.
            extra = pulumi.ResourceOptions(
                # (not a gone server's: it is only retained, so dropping it later from the list works)
                delete_before_replace=True, protect=node.role == "server" and not args.allow_destroy and not node.gone,
            )
        elif step.kind == "api-ready":
            create = str(scripts.api_ready_script(args))
        elif step.kind == "member":
            assert node is not None
            create = str(scripts.member_create_script(args, node))
            delete = str(scripts.member_delete_script(args, node))
            extra = pulumi.ResourceOptions(delete_before_replace=True)
        elif step.kind == "kubeconfig":
            create = str(scripts.kubeconfig_script(args))
            extra = pulumi.ResourceOptions(additional_secret_outputs=["stdout", "stderr"])
        else:  # pragma: no cover - the plan only has the kinds above
            raise ValueError(f"unknown step kind {step.kind}")
        return remote.Command(
            resource_name,
            connection=connection(host),
            create=create,
            update=create,
            delete=delete,
            stdin=stdin,
            triggers=triggers,
            add_previous_output_in_env=False,
            logging=remote.Logging.NONE if step.kind == "kubeconfig" else remote.Logging.STDOUT_AND_STDERR,
            opts=opts.merge(extra),
        )
