"""Checks of the bgp sections: they must agree with each other and with the cluster's routing."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from netplanx.spec.cluster_checks import ClusterProblem
from netplanx.spec.model import BgpPeer, BgpPrefix, Spec


def bgp_problems(spec: Spec) -> Iterator[ClusterProblem]:
    cluster = spec.cluster
    if cluster is not None and cluster.routing.routes == "bgp":
        at = ("cluster", "routing", "routes")
        if cluster.routing.mode != "native":
            yield ClusterProblem(at, "routes: bgp needs mode: native (allowed: static with mode tunnel)")
        if spec.bgp is None:
            yield ClusterProblem(at, "routes: bgp needs a bgp section with the peers (allowed: add bgp:, or "
                                     "routes: static)")
        if cluster.encryption is not None:
            yield ClusterProblem(at, "routes: bgp with encryption is not supported: WireGuard carries the pod "
                                     "networks itself (allowed: routes: static)")
    if spec.bgp is None:
        for index, node in enumerate(cluster.nodes if cluster else ()):
            if node.bgp is not None:
                yield ClusterProblem(("cluster", "nodes", index, "bgp"), f"node {node.name} has bgp settings but "
                                     "the spec has no bgp section (allowed: add bgp: with the common settings)")
        return
    if cluster is None and spec.bgp.router_id is None:
        yield ClusterProblem(("bgp", "asn"), "bgp needs a routerId outside a cluster (allowed: an IPv4 address of "
                                             "this host)", True)
    yield from _duplicates(spec.bgp.peers, ("bgp", "peers"), spec.bgp.advertise.prefixes,
                           ("bgp", "advertise", "prefixes"))
    if cluster is None:
        return
    for index, node in enumerate(cluster.nodes):
        if node.bgp is None:
            continue
        at = ("cluster", "nodes", index, "bgp")
        yield from _duplicates([*spec.bgp.peers, *node.bgp.peers], (*at, "peers"),
                               [*spec.bgp.advertise.prefixes, *node.bgp.prefixes], (*at, "prefixes"),
                               len(spec.bgp.peers), len(spec.bgp.advertise.prefixes))


def _duplicates(peers: Sequence[BgpPeer], peers_at: tuple[str | int, ...], prefixes: Sequence[BgpPrefix],
                prefixes_at: tuple[str | int, ...], common_peers: int | None = None,
                common_prefixes: int | None = None) -> Iterator[ClusterProblem]:
    """Peers with one address, prefixes advertised twice. For a node, ``common_*`` say how many come first
    from the common section: only the node's own ones are reported here (the common ones once, above)."""
    node = common_peers is not None
    common_peers, common_prefixes = common_peers or 0, common_prefixes or 0
    seen: dict[object, int] = {}
    for index, peer in enumerate(peers):
        first = seen.setdefault(peer.address, index)
        if first != index and index >= common_peers:
            yield ClusterProblem((*peers_at, index - common_peers, "address"),
                                 f"peer {peer.address} is declared twice (first at "
                                 f"{_where(first, common_peers, node, 'bgp.peers', 'peers')}; allowed: one peer an "
                                 "address)")
    seen = {}
    for index, prefix in enumerate(prefixes):
        first = seen.setdefault(prefix.prefix, index)
        if first != index and index >= common_prefixes:
            yield ClusterProblem((*prefixes_at, index - common_prefixes, "prefix"),
                                 f"prefix {prefix.prefix} is advertised twice (first at "
                                 f"{_where(first, common_prefixes, node, 'bgp.advertise.prefixes', 'prefixes')}; "
                                 "allowed: each prefix once)")


def _where(index: int, common: int, node: bool, common_name: str, own_name: str) -> str:
    return f"the node's {own_name}[{index - common}]" if node and index >= common else f"{common_name}[{index}]"
