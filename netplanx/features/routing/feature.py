"""The routing feature: routes, policy rules and permanent neighbours; the ``ping`` post-condition."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from netplanx.document.problems import Problem
from netplanx.engine.feature import Adoption, Feature, NodeView, Postcondition, Section
from netplanx.engine.resource import Resource, ResourceType
from netplanx.system.context import KernelContext


def _ping(_session: Any, check: Mapping[str, Any]) -> list[str]:
    """The address answers ping from the namespace the session manages."""
    done = subprocess.run(["ping", "-n", "-q", "-c", str(check["count"]), "-W", str(check["timeout"]),
                           "-i", "0.2", check["address"]], capture_output=True, text=True)
    if done.returncode != 0:
        return [f"ping {check['address']} got no answer ({check['count']} tries)"]
    return []


class Routing(Feature):
    name = "routing"

    def sections(self, node_sections: Sequence[Section]) -> list[Section]:
        return self._sections("Routes.", "Policy routing rules.", "Permanent neighbour entries.")

    def node_sections(self) -> list[Section]:
        return self._sections("Routes of this node only.", "Rules of this node only.",
                              "Permanent neighbour entries of this node only.")

    @staticmethod
    def _sections(routes: str, rules: str, neighbours: str) -> list[Section]:
        from pydantic import Field

        from netplanx.features.routing.model import Neighbour, Route, Rule

        return [Section("routes", "routes", list[Route], Field(default_factory=list, description=routes)),
                Section("rules", "rules", list[Rule], Field(default_factory=list, description=rules)),
                Section("neighbours", "neighbours", list[Neighbour],
                        Field(default_factory=list, description=neighbours))]

    def postconditions(self) -> list[Postcondition]:
        from netplanx.features.routing.model import PingCheck

        return [Postcondition("ping", PingCheck, _ping)]

    def check_view(self, view: NodeView) -> Iterable[Problem]:
        from netplanx.features.routing.checks import neighbour_problems, route_problems, rule_problems

        return [*route_problems(view), *rule_problems(view), *neighbour_problems(view)]

    def compile(self, view: NodeView) -> list[Resource]:
        from netplanx.features.routing.compile import routing_resources

        return routing_resources(view)

    def types(self, ctx: KernelContext) -> list[ResourceType]:
        from netplanx.features.routing.neighbours import NeighbourType
        from netplanx.features.routing.routes import RouteType
        from netplanx.features.routing.rules import RuleType

        return [RouteType(ctx), NeighbourType(ctx), RuleType(ctx)]

    def adopt(self, adoption: Adoption) -> None:
        from netplanx.features.routing.adopt import adopt_routing

        adopt_routing(adoption)


FEATURE = Routing()
