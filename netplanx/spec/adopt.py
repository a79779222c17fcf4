"""Adoption: write live resources back as a spec (the inverse of compile) so a host can be taken over."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from netplanx.engine.resource import Resource
from netplanx.providers.kernel.names import table_name
from netplanx.providers.kernel.routes import DEFAULT_METRIC, default_scope
from netplanx.providers.kernel.rules import ALL_MASK
from netplanx.providers.kernel.sysctls import sysctl_resource

ROUTER_SYSCTLS = (
    "net.ipv4.ip_forward",
    "net.ipv6.conf.all.forwarding",
    "net.ipv4.conf.all.rp_filter",
    "net.ipv4.conf.default.rp_filter",
    "net.ipv4.fib_multipath_hash_policy",
    "net.ipv6.fib_multipath_hash_policy",
)
DEFAULT_MTU = 1500
BGP_PORT = 179
BGP_HOLD_TIME = 90


def adoption_interest() -> list[Resource]:
    """The sysctls adoption reads (besides every link, address, route and rule)."""
    return [sysctl_resource(key, "") for key in ROUTER_SYSCTLS]


def live_to_spec(resources: Sequence[Resource]) -> dict[str, Any]:
    """A spec dict that, planned against the same namespace, gives no changes."""
    by_kind: dict[str, list[Resource]] = {}
    for res in resources:
        by_kind.setdefault(res.kind, []).append(res)
    addresses: dict[str, list[str]] = {}
    for res in by_kind.get("address", []):
        addresses.setdefault(res.attrs["dev"], []).append(res.attrs["address"])
    interfaces = []
    named = set()
    pairs: set[str] = set()  # veth ends already written as the pair's primary
    for res in sorted(by_kind.get("link", []), key=lambda r: r.meta.get("index", 0)):
        attrs = dict(res.attrs)
        name = attrs["name"]
        if name == "lo" and not addresses.get(name):
            continue
        if attrs["type"] == "veth" and attrs["peer"]["netns"] is None:
            if name in pairs:  # the other end of a pair already written: configure it as a device
                attrs["type"] = "device"
            pairs.add(attrs["peer"]["name"])
        interfaces.append(_interface(attrs, addresses.get(name, [])))
        named.add(name)
    for dev in sorted(set(addresses) - named):  # the folded peer end of a veth pair
        interfaces.append({"name": dev, "type": "device", "addresses": sorted(addresses[dev])})
    spec: dict[str, Any] = {"apiVersion": "netx/v1"}
    if interfaces:
        spec["interfaces"] = interfaces
    routes = [_route(r.attrs) for r in sorted(by_kind.get("route", []), key=lambda r: r.address)]
    if routes:
        spec["routes"] = routes
    rules = [_rule(r.attrs) for r in sorted(by_kind.get("rule", []), key=lambda r: r.address) if "#" not in r.address]
    if rules:
        spec["rules"] = rules
    sysctls = {r.attrs["key"]: _number(r.attrs["value"]) for r in by_kind.get("sysctl", [])}
    if sysctls:
        spec["sysctl"] = dict(sorted(sysctls.items()))
    if by_kind.get("bgp"):
        spec["bgp"] = _bgp(by_kind["bgp"][0], by_kind.get("bgppeer", []), by_kind.get("bgppath", []))
    return spec


def _bgp(config: Resource, peers: Sequence[Resource], paths: Sequence[Resource]) -> dict[str, Any]:
    """The bgp section. A peer with a password gets a ``passwordFile`` to write (netx cannot know the
    password): until that file holds it, plans refuse to run rather than drop the password."""
    section: dict[str, Any] = {"api": config.meta["api"], "asn": config.attrs["asn"],
                               "routerId": config.attrs["router_id"]}
    if config.attrs["listen_port"] != BGP_PORT:
        section["listenPort"] = config.attrs["listen_port"]
    section["peers"] = [_bgp_peer(p.attrs) for p in sorted(peers, key=lambda r: r.address)]
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


def _bgp_peer(a: dict[str, Any]) -> dict[str, Any]:
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
    return entry


def dump_spec(spec: dict[str, Any], schema_path: str) -> str:
    """YAML text of a spec, starting with the yaml-language-server modeline.

    Short lists and mappings go in flow style; text with ':' (IPv6) is quoted, since a plain ':' inside
    ``[ ]`` or ``{ }`` does not read back.
    """
    yaml = YAML()
    yaml.default_flow_style = None
    yaml.width = 120
    out = io.StringIO()
    out.write(f"# yaml-language-server: $schema={schema_path}\n")
    quoted = _quote_colons(spec)
    if "sysctl" in quoted:
        quoted["sysctl"] = CommentedMap(quoted["sysctl"])
        quoted["sysctl"].fa.set_block_style()
    yaml.dump(quoted, out)
    return out.getvalue()


def _quote_colons(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _quote_colons(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_quote_colons(v) for v in value]
    if isinstance(value, str) and ":" in value:
        return DoubleQuotedScalarString(value)
    return value


def _number(value: str) -> int | str:
    return int(value) if value.lstrip("-").isdigit() else value


def _interface(a: dict[str, Any], addresses: list[str]) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": a["name"], "type": a["type"]}
    if a["type"] == "veth":
        entry["peer"] = {k: v for k, v in a["peer"].items() if v is not None}
    elif a["type"] == "bridge" and a.get("stp"):
        entry["stp"] = True
    elif a["type"] == "vxlan":
        entry["vni"] = a["vni"]
        if a["port"] != 4789:
            entry["port"] = a["port"]
        entry.update({k: a[k] for k in ("local", "remote", "group", "device", "ttl") if a.get(k)})
        if not a["learning"]:
            entry["learning"] = False
    elif a["type"] == "macvlan":
        entry.update(parent=a["parent"], mode=a["mode"])
    if a.get("mtu") and a["mtu"] != DEFAULT_MTU:
        entry["mtu"] = a["mtu"]
    if a["state"] != "up":
        entry["state"] = a["state"]
    if a.get("master"):
        entry["master"] = a["master"]
    if addresses:
        entry["addresses"] = sorted(addresses)
    return entry


def _route(a: dict[str, Any]) -> dict[str, Any]:
    family = 6 if ":" in a["to"] else 4
    entry: dict[str, Any] = {"to": a["to"]}
    entry.update({k: a[k] for k in ("via", "dev", "src") if a.get(k)})
    if a["table"] != 254:
        entry["table"] = table_name(a["table"]) if not table_name(a["table"]).isdigit() else a["table"]
    if a["metric"] != DEFAULT_METRIC[family]:
        entry["metric"] = a["metric"]
    if a["type"] != "unicast":
        entry["type"] = a["type"]
    if family == 4 and a["scope"] != default_scope(family, a["type"], a.get("via"), a["nexthops"]):
        entry["scope"] = a["scope"]
    if a["onlink"]:
        entry["onlink"] = True
    if a["nexthops"]:
        entry["nexthops"] = [{k: v for k, v in hop.items() if v is not None and not (k == "weight" and v == 1)}
                             for hop in a["nexthops"]]
    return entry


def _rule(a: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"priority": a["priority"], "family": a["family"]}
    entry.update({k: a[k] for k in ("from", "to", "iif", "oif", "fwmark") if a.get(k) is not None})
    if a.get("fwmark") is not None and a.get("fwmask") != ALL_MASK:
        entry["fwmask"] = a["fwmask"]
    if a["action"] != "lookup":
        entry["action"] = a["action"]
    else:
        name = table_name(a["table"])
        entry["table"] = a["table"] if name.isdigit() else name
    return entry
