"""The cluster feature: nodes, their underlay, tunnel or native routing, endpoints (a host's too); per-node
views."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from netplanx.document.problems import Problem
from netplanx.engine.feature import Adoption, Feature, NodeView, Section
from netplanx.engine.resource import Resource, ResourceType
from netplanx.system.context import KernelContext


class Cluster(Feature):
    name = "cluster"

    def sections(self, node_sections: Sequence[Section]) -> list[Section]:
        from pydantic import Field, create_model

        from netplanx.features.cluster import model

        node = create_model("Node", __base__=model.Node, __doc__=model.Node.__doc__, __module__=model.__name__,
                            **{s.name: (s.annotation, s.field) for s in node_sections})
        cluster = create_model("Cluster", __base__=model.Cluster, __doc__=model.Cluster.__doc__,
                               __module__=model.__name__,
                               nodes=(list[node], Field(min_length=1, description="The nodes.")))
        return [Section("cluster", "cluster", cluster | None,
                        Field(None, description="Nodes, pod networks and routing mode.")),
                Section("endpoints", "endpoints", list[model.Endpoint],
                        Field(default_factory=list, description="Workloads, each on one node."))]

    def node_views(self, spec: Any, node_sections: Sequence[Section]) -> list[NodeView] | None:
        if spec.cluster is None:
            return None
        from netplanx.features.cluster.nodes import node_views

        return node_views(spec, node_sections)

    def check(self, spec: Any) -> Iterable[Problem]:
        from netplanx.features.cluster.checks import cluster_problems

        return cluster_problems(spec)

    def links(self, view: NodeView) -> Mapping[str, str]:
        if view.node is not None:
            return {}  # a node's: in its view already
        from netplanx.features.cluster.nodes import host_interface

        return {host_interface(e): f"endpoints[{i}]" for i, e in enumerate(view.spec.endpoints)}

    def compile(self, view: NodeView) -> list[Resource]:
        from netplanx.features.cluster.compile import cluster_resources, host_resources

        return host_resources(view.spec) if view.node is None else cluster_resources(view.spec, view.node)

    def types(self, ctx: KernelContext) -> list[ResourceType]:
        from netplanx.features.cluster.endpoints import EndpointType
        from netplanx.features.cluster.namespaces import NamespaceType

        return [NamespaceType(ctx), EndpointType(ctx)]

    def adopt(self, adoption: Adoption) -> None:
        from netplanx.features.cluster.adopt import adopt_endpoints

        adopt_endpoints(adoption)


FEATURE = Cluster()
