"""BGP resources: ``bgp.global`` (gobgpd's global configuration), ``bgppeer.ADDRESS`` and
``bgppath.PREFIX`` (a path this node advertises). Every one carries gobgpd's API address in meta.

Graceful restart is two attributes of the global configuration and of each peer: ``graceful_restart``
(negotiated or not) and ``restart_time`` (seconds; 0 when it is off).

A peer's password is never an attribute: the attribute is a keyed digest of it (the key is a random
secret in netx's 0600 state), so a changed password shows as a change and nothing that is printed or
saved lets anyone guess the password.
"""

from __future__ import annotations

from collections.abc import Sequence

from netplanx.engine.resource import Resource

GLOBAL = "bgp.global"
FAMILIES = ("ipv4-unicast", "ipv6-unicast")  # the address families netx configures on peers
COMMUNITY_NAMES = {"no-export": 0xFFFFFF01, "no-advertise": 0xFFFFFF02, "no-export-subconfed": 0xFFFFFF03}


def global_resource(*, asn: int, router_id: str, listen_port: int, graceful_restart: bool | None,
                    restart_time: int | None, api: str, owned: bool = True, status: dict | None = None) -> Resource:
    """``graceful_restart`` and ``restart_time`` None: unknown (gobgpd does not report them, see types.py)."""
    attrs = {"asn": asn, "router_id": router_id, "listen_port": listen_port, "graceful_restart": graceful_restart,
             "restart_time": restart_time}
    return Resource("bgp", GLOBAL, attrs, owned, {"api": api, "status": status} if status else {"api": api})


def peer_resource(address: str, *, asn: int, password_file: str | None, multihop: int, hold_time: int,
                  keepalive: int, families: Sequence[str], description: str, passive: bool, graceful_restart: bool,
                  restart_time: int, api: str, password: str | None = None, owned: bool = True,
                  status: dict | None = None) -> Resource:
    """``password``: the digest (live peers, and desired ones once resolved); None without a password."""
    attrs = {"address": address, "asn": asn, "password": password, "multihop": multihop, "hold_time": hold_time,
             "keepalive": keepalive, "families": sorted(families), "description": description, "passive": passive,
             "graceful_restart": graceful_restart, "restart_time": restart_time if graceful_restart else 0}
    meta = {"api": api, "status": status or {}}
    if password_file:
        meta["password_file"] = password_file
    return Resource("bgppeer", f"bgppeer.{address}", attrs, owned, meta)


def path_resource(prefix: str, *, next_hop: str | None, communities: Sequence[str], api: str,
                  owned: bool = True) -> Resource:
    """``next_hop`` None: gobgpd puts its address on each session (as for any locally originated path)."""
    return Resource("bgppath", f"bgppath.{prefix}",
                    {"prefix": prefix, "next_hop": next_hop, "communities": sorted(set(communities))}, owned,
                    {"api": api})
