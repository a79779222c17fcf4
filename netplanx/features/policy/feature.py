"""The policy feature: identity and CIDR L3/L4 policy with default deny in eBPF, and flow visibility."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from netplanx.document.problems import Problem
from netplanx.engine.feature import Adoption, Command, Console, DoctorCheck, Feature, NodeView, Section, View
from netplanx.engine.resource import Resource, ResourceType
from netplanx.system.context import KernelContext


def _show(args: argparse.Namespace, out: Console, open_session: Callable[[], Any]) -> int:
    from netplanx.features.policy.commands import show_policies  # the BPF maps: only for this command

    return show_policies(args, out, open_session)


def _flows(args: argparse.Namespace, out: Console, open_session: Callable[[], Any]) -> int:
    from netplanx.features.policy.commands import cmd_flows

    return cmd_flows(args, out, open_session)


def _flows_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint", metavar="NAME", help="only flows from, to or enforced at this endpoint")
    parser.add_argument("--verdict", choices=("allowed", "dropped"), help="only this verdict")
    parser.add_argument("--policy", metavar="NAME", help="only flows decided by this policy's rules")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--aggregate", type=float, metavar="SECONDS",
                        help="print counts per (source, destination, port, verdict) every SECONDS")
    parser.add_argument("--count", type=int, metavar="N", help="stop after N flows")
    parser.add_argument("--duration", type=float, metavar="SECONDS", help="stop after SECONDS")


class Policy(Feature):
    name = "policy"

    def sections(self, node_sections: Sequence[Section]) -> list[Section]:
        from pydantic import Field

        from netplanx.features.policy.model import Policy

        return [Section("policies", "policies", list[Policy], Field(
            default_factory=list, description="Network policies over the endpoints, enforced in eBPF on every node."))]

    def check(self, spec: Any) -> Iterable[Problem]:
        from netplanx.features.policy.checks import policy_problems

        return policy_problems(spec)

    def check_view(self, view: NodeView) -> Iterable[Problem]:
        from netplanx.features.policy.checks import l7_reserved_problems

        return l7_reserved_problems(view)

    def compile(self, view: NodeView) -> list[Resource]:
        if view.node is None:
            return []
        from netplanx.features.policy.compile import policy_resources

        return policy_resources(view)

    def types(self, ctx: KernelContext) -> list[ResourceType]:
        from netplanx.features.policy.types import policy_types

        return policy_types(ctx)

    def adopt(self, adoption: Adoption) -> None:
        from netplanx.features.policy.adopt import adopt_policies

        adopt_policies(adoption)

    def views(self) -> list[View]:
        return [View("policies", "per-endpoint policy entries and per-rule counters", _show)]

    def commands(self) -> list[Command]:
        return [Command(
            "flows", "print the policy datapath's verdicts and the L7 proxy's requests live",
            "Print each policy verdict (new connections and every drop) as the datapath reports it: time, source, "
            "destination, ports, protocol, verdict and the deciding rule; on a node with L7 rules, every HTTP "
            "request the proxy handles too (method, path, status and the deciding rule).",
            ["netx flows --netns node-a", "netx flows --verdict dropped --endpoint web-1",
             "netx flows --policy web --json", "netx flows --aggregate 10"],
            _flows_arguments, _flows)]

    def doctor(self) -> list[DoctorCheck]:
        from netplanx.features.ebpf import bcc_check, bpffs_check
        from netplanx.features.policy.nftables import nft_check
        from netplanx.features.policy.proxy import haproxy_check

        return [bpffs_check(), bcc_check(), haproxy_check(), nft_check()]


FEATURE = Policy()
