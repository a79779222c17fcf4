"""The interfaces feature: links of every kind (``kinds/``) and their addresses."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from netplanx.document.problems import Problem
from netplanx.engine.feature import Adoption, DoctorCheck, Feature, NodeView, Section
from netplanx.engine.resource import Resource, ResourceType
from netplanx.system.context import KernelContext


class Interfaces(Feature):
    name = "interfaces"

    def sections(self, node_sections: Sequence[Section]) -> list[Section]:
        return self._section("Links and their addresses.")

    def node_sections(self) -> list[Section]:
        return self._section("Links of this node only.")

    @staticmethod
    def _section(description: str) -> list[Section]:
        from pydantic import Field

        from netplanx.features.interfaces.model import Interface

        return [Section("interfaces", "interfaces", list[Interface],
                        Field(default_factory=list, description=description))]

    def check_view(self, view: NodeView) -> Iterable[Problem]:
        from netplanx.features.interfaces.checks import interface_problems

        return interface_problems(view)

    def compile(self, view: NodeView) -> list[Resource]:
        from netplanx.features.interfaces.compile import interface_resources

        return interface_resources(view)

    def types(self, ctx: KernelContext) -> list[ResourceType]:
        from netplanx.features.interfaces.addresses import AddressType
        from netplanx.features.interfaces.links import LinkType

        return [LinkType(ctx), AddressType(ctx)]

    def adopt(self, adoption: Adoption) -> None:
        from netplanx.features.interfaces.adopt import adopt_interfaces

        adopt_interfaces(adoption)

    def doctor(self) -> list[DoctorCheck]:
        from netplanx.features.interfaces.kinds.catalog import KINDS
        from netplanx.system.probes import link_kind_errors

        checks = []
        link_kind_errors({kind.type: kind.kernel_option() for kind in KINDS.values() if kind.created})  # one child
        for kind in KINDS.values():
            if kind.created:
                error = kind.missing()
                checks.append(DoctorCheck(f"kernel: {kind.type} links", error is None, error or "supported",
                                          "" if error is None else kind.doctor_fix(), kind.required))
        return checks


FEATURE = Interfaces()
