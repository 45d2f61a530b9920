"""Delivery tooling the GitLab pipeline calls: review stacks per merge request, the TTL reaper,
merge-request notes, the Terraform-style plan report, drift classification, changed stacks.

None of this is part of the Pulumi program: these are command-line tools (`python -m
components.delivery.<tool>`), pure functions plus thin I/O, tested without the Pulumi CLI.
"""
