"""The services feature: services on an eBPF load balancer (tc and XDP) with Maglev hashing."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from netplanx.document.problems import Problem
from netplanx.engine.feature import Adoption, Console, DoctorCheck, Feature, NodeView, Section, View
from netplanx.engine.resource import Resource, ResourceType
from netplanx.system.context import KernelContext


def _show(args: argparse.Namespace, out: Console, open_session: Callable[[], Any]) -> int:
    from netplanx.features.services.show import show_services  # the BPF maps: only for this command

    return show_services(args, out, open_session)


class Services(Feature):
    name = "services"

    def sections(self, node_sections: Sequence[Section]) -> list[Section]:
        from pydantic import Field

        from netplanx.features.services.model import LoadBalancerDevice, Service

        return [Section("services", "services", list[Service],
                        Field(default_factory=list, description="Load-balanced services (eBPF, Maglev).")),
                Section("loadBalancerDevices", "load_balancer_devices", list[LoadBalancerDevice],
                        Field(default_factory=list, alias="loadBalancerDevices",
                              description="Without cluster: devices of the host where the load balancer also runs "
                                          "(besides its endpoints' veths)."))]

    def check_view(self, view: NodeView) -> Iterable[Problem]:
        from netplanx.features.services.checks import device_problems

        return device_problems(view)

    def check(self, spec: Any) -> Iterable[Problem]:
        from netplanx.features.services.checks import service_problems

        return service_problems(spec)

    def compile(self, view: NodeView) -> list[Resource]:
        from netplanx.features.services.compile import service_resources

        return service_resources(view)

    def types(self, ctx: KernelContext) -> list[ResourceType]:
        from netplanx.features.services.attachments import AttachmentType
        from netplanx.features.services.programs import ProgramType
        from netplanx.features.services.services import LbContext, ServiceType

        lb = LbContext(ctx.scope, ctx.bpf_programs)
        return [ProgramType(ctx, lb), ServiceType(ctx, lb), AttachmentType(ctx, lb)]

    def adopt(self, adoption: Adoption) -> None:
        from netplanx.features.services.adopt import adopt_services

        adopt_services(adoption)

    def views(self) -> list[View]:
        return [View("services", "the load balancer's services, backends and packet counters", _show)]

    def doctor(self) -> list[DoctorCheck]:
        from netplanx.features.ebpf import bcc_check, bpffs_check

        return [bpffs_check(), bcc_check()]


FEATURE = Services()
