"""The sysctls feature: network sysctls of the namespace, restored when they leave the spec."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from netplanx.document.problems import Problem
from netplanx.engine.feature import Adoption, Feature, NodeView, Section
from netplanx.engine.resource import Resource, ResourceType
from netplanx.system.context import KernelContext


class Sysctls(Feature):
    name = "sysctls"

    def sections(self, node_sections: Sequence[Section]) -> list[Section]:
        return self._section("Network sysctls (net.*), per namespace.")

    def node_sections(self) -> list[Section]:
        return self._section("Sysctls of this node only.")

    @staticmethod
    def _section(description: str) -> list[Section]:
        from netplanx.features.sysctls.model import Sysctls, sysctl_field

        return [Section("sysctl", "sysctl", Sysctls, sysctl_field(description))]

    def check_view(self, view: NodeView) -> Iterable[Problem]:
        from netplanx.features.sysctls.checks import sysctl_problems

        return sysctl_problems(view)

    def compile(self, view: NodeView) -> list[Resource]:
        from netplanx.features.sysctls.sysctls import sysctl_resource

        return [sysctl_resource(key, value) for key, value in view.spec.sysctl.items()]

    def types(self, ctx: KernelContext) -> list[ResourceType]:
        from netplanx.features.sysctls.sysctls import SysctlType

        return [SysctlType(ctx)]

    def adopt(self, adoption: Adoption) -> None:
        from netplanx.features.sysctls.adopt import adopt_sysctls

        adopt_sysctls(adoption)

    def adoption_options(self) -> dict[str, Any]:
        from netplanx.features.sysctls.adopt import ROUTER_SYSCTLS
        from netplanx.features.sysctls.sysctls import READ_KEYS

        return {READ_KEYS: ROUTER_SYSCTLS}


FEATURE = Sysctls()
