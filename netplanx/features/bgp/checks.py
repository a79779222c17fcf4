"""Checks of the bgp sections: they must agree with each other and with the cluster's routing."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from netplanx.document.problems import Problem
from netplanx.features.bgp.model import BgpPeer, BgpPrefix


def bgp_problems(spec: Any) -> Iterator[Problem]:
    """The bgp section, and each cluster node's ``bgp`` (``cluster.nodes[].bgp``, this feature's node key)."""
    cluster = spec.cluster
    if spec.bgp is None:
        for index, node in enumerate(cluster.nodes if cluster else ()):
            if node.bgp is not None:
                yield Problem(("cluster", "nodes", index, "bgp"), f"node {node.name} has bgp settings but "
                                     "the spec has no bgp section (allowed: add bgp: with the common settings)")
        return
    if cluster is None and spec.bgp.router_id is None:
        yield Problem(("bgp", "asn"), "bgp needs a routerId outside a cluster (allowed: an IPv4 address of "
                                             "this host)", True)
    yield from _duplicates(spec.bgp.peers, ("bgp", "peers"), spec.bgp.advertise.prefixes,
                           ("bgp", "advertise", "prefixes"))
    restarting = spec.bgp.graceful_restart.enabled
    yield from _restart_times(spec.bgp.peers, ("bgp", "peers"), restarting)
    if cluster is None:
        return
    for index, node in enumerate(cluster.nodes):
        if node.bgp is None:
            continue
        at = ("cluster", "nodes", index, "bgp")
        yield from _restart_times(node.bgp.peers, (*at, "peers"), restarting)
        yield from _duplicates([*spec.bgp.peers, *node.bgp.peers], (*at, "peers"),
                               [*spec.bgp.advertise.prefixes, *node.bgp.prefixes], (*at, "prefixes"),
                               len(spec.bgp.peers), len(spec.bgp.advertise.prefixes))


def _duplicates(peers: Sequence[BgpPeer], peers_at: tuple[str | int, ...], prefixes: Sequence[BgpPrefix],
                prefixes_at: tuple[str | int, ...], common_peers: int | None = None,
                common_prefixes: int | None = None) -> Iterator[Problem]:
    """Peers with one address, prefixes advertised twice. For a node, ``common_*`` say how many come first
    from the common section: only the node's own ones are reported here (the common ones once, above)."""
    node = common_peers is not None
    yield from _repeated([p.address for p in peers], peers_at, "address", common_peers or 0, node,
                         ("bgp.peers", "peers"), "peer {} is declared twice", "one peer an address")
    yield from _repeated([p.prefix for p in prefixes], prefixes_at, "prefix", common_prefixes or 0, node,
                         ("bgp.advertise.prefixes", "prefixes"), "prefix {} is advertised twice", "each prefix once")


def _repeated(keys: Sequence[object], at: tuple[str | int, ...], field: str, common: int, node: bool,
              names: tuple[str, str], what: str, allowed: str) -> Iterator[Problem]:
    """A problem for each key seen before (``common`` keys come from the common section, named
    ``names[0]``; the node's own, ``names[1]``, follow them)."""
    seen: dict[object, int] = {}
    for index, key in enumerate(keys):
        first = seen.setdefault(key, index)
        if first != index and index >= common:
            where = f"the node's {names[1]}[{first - common}]" if node and first >= common else f"{names[0]}[{first}]"
            yield Problem((*at, index - common, field),
                                 f"{what.format(key)} (first at {where}; allowed: {allowed})")


def _restart_times(peers: Sequence[BgpPeer], at: tuple[str | int, ...], restarting: bool) -> Iterator[Problem]:
    """A peer's restartTime while graceful restart is off for it (off in the section, not turned on here)."""
    for index, peer in enumerate(peers):
        own = peer.graceful_restart
        if not restarting and own is not None and own.enabled is None and own.restart_time is not None:
            yield Problem((*at, index, "gracefulRestart", "restartTime"),
                          f"restartTime {own.restart_time} has no effect: bgp.gracefulRestart.enabled is false "
                          "(allowed: enabled: true here too, or no restartTime)")
