"""Adoption of gobgpd: its global configuration, peers and advertised paths as the ``bgp`` section."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from netplanx.engine.feature import Adoption
from netplanx.engine.resource import Resource

BGP_PORT = 179
BGP_HOLD_TIME = 90
BGP_RESTART_TIME = 120


def adopt_bgp(adoption: Adoption) -> None:
    config, peers, paths = adoption.live("bgp"), adoption.live("bgppeer"), adoption.live("bgppath")
    if config:
        adoption.spec["bgp"] = _bgp(config[0], peers, paths)
        adoption.describe([*config, *peers, *paths])


def _bgp(config: Resource, peers: Sequence[Resource], paths: Sequence[Resource]) -> dict[str, Any]:
    """The bgp section. A peer with a password gets a ``passwordFile`` to write (netx cannot know the
    password): until that file holds it, plans refuse to run rather than drop the password."""
    section: dict[str, Any] = {"api": config.meta["api"], "asn": config.attrs["asn"],
                               "routerId": config.attrs["router_id"]}
    if config.attrs["listen_port"] != BGP_PORT:
        section["listenPort"] = config.attrs["listen_port"]
    restart = _restart(config.attrs)
    if restart != (True, BGP_RESTART_TIME):
        section["gracefulRestart"] = _restart_entry(*restart)
    section["peers"] = [_bgp_peer(p.attrs, restart) for p in sorted(peers, key=lambda r: r.address)]
    prefixes = []
    for path in sorted(paths, key=lambda r: r.address):
        entry: dict[str, Any] = {"prefix": path.attrs["prefix"]}
        if path.attrs["communities"]:
            entry["communities"] = path.attrs["communities"]
        if path.attrs["next_hop"]:
            entry["nextHop"] = path.attrs["next_hop"]
        prefixes.append(entry)
    section["advertise"] = {"prefixes": prefixes}
    return section


def _restart(attrs: Mapping[str, Any]) -> tuple[bool, int]:
    """Graceful restart as (enabled, restart time); the default when gobgpd does not say (see types.py)."""
    if attrs["graceful_restart"] is None:
        return True, BGP_RESTART_TIME
    return attrs["graceful_restart"], attrs["restart_time"]


def _restart_entry(enabled: bool, restart_time: int) -> dict[str, Any]:
    return {"enabled": True, "restartTime": restart_time} if enabled else {"enabled": False}


def _bgp_peer(a: dict[str, Any], common: tuple[bool, int]) -> dict[str, Any]:
    entry: dict[str, Any] = {"address": a["address"], "asn": a["asn"]}
    if a["password"]:
        entry["passwordFile"] = f"/etc/netx/bgp-{a['address'].replace(':', '-')}.pw"
    if a["multihop"]:
        entry["multihop"] = a["multihop"]
    if a["hold_time"] != BGP_HOLD_TIME:
        entry["holdTime"] = a["hold_time"]
    if a["keepalive"] != a["hold_time"] // 3:
        entry["keepalive"] = a["keepalive"]
    if a["families"] != ["ipv6-unicast" if ":" in a["address"] else "ipv4-unicast"]:
        entry["families"] = a["families"]
    if a["description"]:
        entry["description"] = a["description"]
    if a["passive"]:
        entry["passive"] = True
    if _restart(a) != common:
        entry["gracefulRestart"] = _restart_entry(*_restart(a))
    return entry
