"""The BGP feature: gobgpd driven over its gRPC API, ``netx bgp sync``, the established post-condition."""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from netplanx.document.problems import Problem
from netplanx.engine.feature import Adoption, Command, DoctorCheck, Feature, NodeView, Postcondition, Section
from netplanx.engine.resource import Resource, ResourceType
from netplanx.system.context import KernelContext


def _established(session: Any, check: Mapping[str, Any]) -> list[str]:
    """The BGP session with ``check['peer']`` is Established within ``check['within']`` seconds."""
    peer, within = check["peer"], check["within"]
    client = session.types["bgp"].bgp.client()
    if client is None:
        return [f"BGP peer {peer}: this spec configures no BGP"]
    state = client.wait_established(peer, within)
    if state != "established":
        return [f"BGP peer {peer}: session {state}, not established within {within}s"]
    return []


class Bgp(Feature):
    name = "bgp"

    def sections(self, node_sections: Sequence[Section]) -> list[Section]:
        from pydantic import Field

        from netplanx.features.bgp.model import Bgp

        return [Section("bgp", "bgp", Bgp | None,
                        Field(None, description="BGP: sessions and advertised paths, through gobgpd."))]

    def node_sections(self) -> list[Section]:
        from pydantic import Field

        from netplanx.features.bgp.compile import node_bgp
        from netplanx.features.bgp.model import NodeBgp

        return [Section("bgp", "bgp", NodeBgp | None,
                        Field(None, description="This node's BGP settings (with the spec's bgp section)."), node_bgp)]

    def postconditions(self) -> list[Postcondition]:
        from netplanx.features.bgp.model import EstablishedCheck

        return [Postcondition("bgp-established", EstablishedCheck, _established)]

    def check(self, spec: Any) -> Iterable[Problem]:
        from netplanx.features.bgp.checks import bgp_problems

        return bgp_problems(spec)

    def compile(self, view: NodeView) -> list[Resource]:
        from netplanx.features.bgp.compile import bgp_resources

        return bgp_resources(view)

    def types(self, ctx: KernelContext) -> list[ResourceType]:
        from netplanx.features.bgp.types import BgpContext, BgpPeerType, GlobalType, PathType

        bgp = BgpContext(ctx.store)
        ctx.on_close(bgp.close)
        return [GlobalType(bgp), BgpPeerType(bgp), PathType(bgp)]

    def adopt(self, adoption: Adoption) -> None:
        from netplanx.features.bgp.adopt import adopt_bgp

        adopt_bgp(adoption)

    def show_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--bgp-api", metavar="HOST:PORT",
                            help="also read the gobgpd at this API address (default: the one netx configured, if any)")

    def show_options(self, args: argparse.Namespace) -> dict[str, Any]:
        from netplanx.features.bgp.types import API_OPTION

        return {API_OPTION: args.bgp_api} if getattr(args, "bgp_api", None) else {}

    def commands(self) -> list[Command]:
        from netplanx.features.bgp.commands import BGP_COMMAND

        return [BGP_COMMAND]

    def doctor(self) -> list[DoctorCheck]:
        path = shutil.which("gobgpd")
        return [DoctorCheck("gobgpd (BGP)", path is not None, path or "not installed",
                            "apt-get install --no-install-recommends gobgpd")]


FEATURE = Bgp()
