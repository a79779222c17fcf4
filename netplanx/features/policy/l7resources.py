"""The L7 redirect as resources a plan shows: the proxy, its rules per scope, and the plumbing that sends
connections to it.

* ``l7proxy.node``: the node's HAProxy (its version and the digest of its whole configuration);
* ``l7rule.ENDPOINT.DIRECTION.PORT``: the HTTP rules of one scope, as plans read them (``GET /api/v1/.*
  allowed for app=client by web/ingress[0]``), and the digest of the file that holds them;
* ``nftables.inet.netx-l7``: the tproxy table; ``rule.ipv4.9``/``rule.ipv6.9`` (fwmark 0x200/0xf00) and
  ``local 0.0.0.0/0``/``::/0 dev lo`` in table 2004: policy routing that delivers redirected packets locally
  (the routing feature's kinds); the ``net.unix.max_dgram_qlen`` sysctl, so that the log socket keeps up;
* ``l7hook.DEVICE``: the program that applies ingress redirects to traffic from other nodes on the devices
  it comes in by (only on a node with L7 ingress rules).
"""

from __future__ import annotations

import json
from typing import Any

from netplanx.engine.feature import NodeView
from netplanx.engine.resource import Resource
from netplanx.features.policy import haproxy
from netplanx.features.policy.l7scopes import Scope
from netplanx.features.policy.nftables import FAMILY, MARK_MASK, MARK_TO_PROXY, TABLE, wanted_rules
from netplanx.features.routing.routes import route_resource
from netplanx.features.routing.rules import rule_resource
from netplanx.features.sysctls.sysctls import sysctl_resource

L7_PROXY = "l7proxy.node"
NFT_TABLE = f"nftables.{FAMILY}.{TABLE}"
ROUTE_TABLE, RULE_PRIORITY = 2004, 9  # as Cilium's proxy routing
LOG_QUEUE, LOG_QUEUE_LENGTH = "net.unix.max_dgram_qlen", 4096  # the default, 10, drops log lines at load
HOOK_PROGRAMS = {"ethernet": "from_remote", "ip": "from_remote_ip"}
SCOPE_HEADER = "# netx "


def proxy_resource(config_digest: str, files: dict[str, str], version: str | None = None,
                   pid: int | None = None) -> Resource:
    """``files``: the proxy's own files (name -> text with placeholders); ``version``: HAProxy's, filled in
    when the plan is made; ``pid``: the running master's."""
    return Resource("l7proxy", L7_PROXY, {"version": version, "digest": config_digest}, True,
                    {"_files": files, **({"pid": pid} if pid else {})})


def scope_text(scope: Scope) -> str:
    """The file of one scope: a header line with what the plan shows, then its backend."""
    header = json.dumps({"scope": f"{scope.endpoint} {scope.direction} tcp/{scope.port}",
                         "requests": scope.requests()})
    return f"{SCOPE_HEADER}{header}\n{haproxy.render_scope(scope)}"


def rule_from_file(name: str, text: str) -> Resource:
    """An ``l7rule`` from its file (with placeholders again); a file without netx's header reads as edited."""
    first, _newline, _rest = text.partition("\n")
    try:
        attrs = json.loads(first.removeprefix(SCOPE_HEADER)) if first.startswith(SCOPE_HEADER) else {}
    except ValueError:
        attrs = {}
    return l7rule_resource(name, attrs.get("scope", "(edited)"), attrs.get("requests", []), text)


def l7rule_resource(name: str, scope: str, requests: list[str], text: str) -> Resource:
    return Resource("l7rule", f"l7rule.{name}",
                    {"scope": scope, "requests": requests, "digest": haproxy.digest({name: text})}, True,
                    {"file": haproxy.scope_file(name), "_text": text})


def nftables_resource(rules: list[str]) -> Resource:
    return Resource("nftables", NFT_TABLE, {"rules": rules})


def hook_resource(device: str, program: str) -> Resource:
    return Resource("l7hook", f"l7hook.{device}", {"device": device, "program": program})


def _route(to: str) -> Resource:
    return route_resource(table=ROUTE_TABLE, to=to, metric=None, kind="local", via=None, dev="lo", src=None,
                          scope=None, onlink=False, nexthops=[])


def _rule(family: str) -> Resource:
    return rule_resource(family=family, priority=RULE_PRIORITY, action="lookup", table=ROUTE_TABLE, from_=None,
                         to=None, iif=None, oif=None, fwmark=MARK_TO_PROXY, fwmask=MARK_MASK)


def hook_devices(view: NodeView) -> dict[str, str]:
    """The devices traffic from other nodes comes in by, each with its kind of header."""
    cluster = view.spec.cluster
    devices = {cluster.underlay.device: "ethernet"}
    if cluster.encryption is not None:
        devices[cluster.encryption.wireguard.device] = "ip"
    elif cluster.routing.mode == "tunnel":
        devices[cluster.routing.tunnel.device] = "ethernet"
    return devices


def l7_resources(view: NodeView, scopes: list[Scope], ipcache: dict[str, tuple[int, str]]) -> list[Resource]:
    """Everything the node's L7 scopes need (nothing without scopes)."""
    if not scopes:
        return []
    files = {haproxy.MAIN: haproxy.render_main(view.node.name), **haproxy.render_maps(scopes, ipcache)}
    texts = {scope.name: scope_text(scope) for scope in scopes}
    config_digest = haproxy.digest({**files, **{f"{haproxy.SCOPES}/{haproxy.scope_file(n)}": t
                                                for n, t in texts.items()}})
    resources = [proxy_resource(config_digest, files)]
    resources += [l7rule_resource(scope.name, f"{scope.endpoint} {scope.direction} tcp/{scope.port}",
                                  scope.requests(), texts[scope.name]) for scope in scopes]
    queue = sysctl_resource(LOG_QUEUE, _queue_length(view.spec.sysctl.get(LOG_QUEUE)), merges=True)
    resources += [nftables_resource(wanted_rules()), _route("0.0.0.0/0"), _route("::/0"), _rule("ipv4"),
                  _rule("ipv6"), queue]
    if any(scope.direction == "ingress" for scope in scopes):
        resources += [hook_resource(device, HOOK_PROGRAMS[kind]) for device, kind in hook_devices(view).items()]
    return resources


def _queue_length(declared: Any) -> int:
    """At least LOG_QUEUE_LENGTH; more when the spec's own sysctl section asks for more (one resource holds
    the key)."""
    try:
        return max(LOG_QUEUE_LENGTH, int(str(declared)))
    except ValueError:
        return LOG_QUEUE_LENGTH
