"""The policy feature: identity and CIDR L3/L4 policy with default deny in eBPF, and flow visibility."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from netplanx.document.problems import Problem
from netplanx.engine.feature import Adoption, Command, DoctorCheck, Feature, NodeView, Section, View
from netplanx.engine.resource import Resource, ResourceType
from netplanx.system.context import KernelContext


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

    def compile(self, view: NodeView) -> list[Resource]:
        if view.node is None:
            return []
        from netplanx.features.policy.compile import policy_resources

        return policy_resources(view.spec, view.node)

    def types(self, ctx: KernelContext) -> list[ResourceType]:
        from netplanx.features.policy.types import policy_types

        return policy_types(ctx)

    def adopt(self, adoption: Adoption) -> None:
        from netplanx.features.policy.adopt import adopt_policies

        adopt_policies(adoption)

    def views(self) -> list[View]:
        from netplanx.features.policy.commands import POLICIES

        return [POLICIES]

    def commands(self) -> list[Command]:
        from netplanx.features.policy.commands import FLOWS

        return [FLOWS]

    def doctor(self) -> list[DoctorCheck]:
        from netplanx.features.ebpf import bcc_check, bpffs_check

        return [bpffs_check(), bcc_check()]


FEATURE = Policy()
