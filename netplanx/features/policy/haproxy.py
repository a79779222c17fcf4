"""The node's HAProxy configuration, rendered from its L7 scopes ("dispatch" shape: a map picks the scope).

One transparent listener takes every redirected connection with its original destination. The frontend
looks the scope up by ``address:port``: the source's for egress rules (``egress.map``), the original
destination's for ingress rules (``ingress.map``); each scope is a backend holding only its own rules, so
the cost per request does not grow with the number of scopes. A connection between two endpoints of the
node that meets the sender's egress rules and the receiver's ingress rules passes the egress backend, then
the ingress frontend over an abstract socket with the PROXY protocol (addresses kept). Peers are matched
by identity, through an excerpt of the ipcache (``ipcache.map``).

Upstream connections are transparent (``usesrc clientip``): the backend, and the policy datapath in front
of it, see the client's own address. Every request is logged to a unix datagram socket (``netx flows``
binds it) with the rule that decided: ``POLICY/SECTION[N]/http[M]``, or ``default-deny``.

The texts hold two placeholders: RUN (the proxy's folder, which depends on the namespace, not on the spec)
and DIGEST (the digest of every file, written into ``description`` so that ``show info`` reads it back).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

from netplanx.features.policy.l7scopes import HttpMatch, Scope, any_peer
from netplanx.features.policy.regex import anchored

RUN, DIGEST = "@RUN@", "@DIGEST@"
LISTENER_PORT = 15001
INGRESS_HOP = "abns@netx-l7-ingress"  # abstract sockets belong to the network namespace
DESCRIPTION = "netx-l7 sha256:"
LOG_TAG = "netx-l7"
DENY = "default-deny"
MAIN, SCOPES = "haproxy.cfg", "scopes"
MAPS = ("ipcache.map", "egress.map", "ingress.map")
PEERS_PER_LINE = 50  # HAProxy reads at most 64 words a line
LOG_FORMAT = (f"{LOG_TAG} %[date(0,ms)] %ci %cp %fi %fp %[var(txn.src_id)] %[var(txn.dst_id)] %ST %B %HM "
              "%[var(txn.erule)] %[var(txn.irule)] %{+Q}HP")
UPSTREAM = "    server original 0.0.0.0 source 0.0.0.0 usesrc clientip"


def word(text: str) -> str:
    """One configuration word holding ``text`` exactly: single quotes (nothing inside is interpreted), a
    single quote itself in double quotes."""
    return "'" + text.replace("'", "'\"'\"'") + "'"


def _lookups() -> list[str]:
    return [f"    log-format \"{LOG_FORMAT}\"",
            f"    http-request set-var(txn.src_id) src,map_ip({RUN}/ipcache.map,2)",
            f"    http-request set-var(txn.dst_id) dst,map_ip({RUN}/ipcache.map,2)",
            "    http-request set-var(txn.dport) dst_port",
            "    http-request set-var(txn.ekey) src,concat(:,txn.dport)",
            "    http-request set-var(txn.ikey) dst,concat(:,txn.dport)"]


def _dispatch(kind: str) -> str:
    table = f"{RUN}/{kind}.map"
    key = "txn.ekey" if kind == "egress" else "txn.ikey"
    return f"    use_backend %[var({key}),map_str({table})] if {{ var({key}),map_str({table}) -m found }}"


def render_main(node: str) -> str:
    """Everything but the scopes: global settings, the listener, the ingress hop, the fallback."""
    return "\n".join([
        f"# netx: the L7 proxy of {node}, generated from the spec (netx apply writes it again when it differs)",
        "global",
        "    master-worker",
        f"    stats socket {RUN}/stats.sock mode 600 level admin expose-fd listeners",
        f"    log {RUN}/log.sock len 8192 format raw local0 info info",
        f"    description {DESCRIPTION}{DIGEST}",
        "    node netx-l7",
        "    hard-stop-after 60s",
        "",
        "defaults",
        "    mode http",
        "    log global",
        "    option idle-close-on-response",
        "    http-reuse never",
        "    timeout connect 5s",
        "    timeout client 60s",
        "    timeout server 60s",
        "    timeout http-keep-alive 60s",
        "",
        "frontend netx-l7",
        f"    bind 0.0.0.0:{LISTENER_PORT} transparent",
        f"    bind :::{LISTENER_PORT} v6only transparent",
        *_lookups(),
        _dispatch("egress"),
        _dispatch("ingress"),
        "    default_backend netx-l7-forward",
        "",
        "frontend netx-l7-ingress",
        f"    bind {INGRESS_HOP} accept-proxy",
        *_lookups(),
        _dispatch("ingress"),
        "    default_backend netx-l7-forward",
        "",
        "# connections redirected before a change took their scope away: on as they are (the destination's",
        "# policy still judges them by the client's address)",
        "backend netx-l7-forward",
        UPSTREAM,
        ""])


def _conditions(match: HttpMatch, peers: str | None) -> list[str]:
    found = [peers] if peers else []
    if match.method is not None:
        found.append(f"{{ method -m reg {word(anchored(match.method))} }}")
    if match.path is not None:
        found.append(f"{{ path -m reg {word(anchored(match.path))} }}")
    for name, value in match.headers:
        found.append(f"{{ req.fhdr({name}) -m found }}" if value is None else
                     f"{{ req.fhdr({name}) -m str {word(value)} }}")
    return found


def render_scope(scope: Scope) -> str:
    """The backend of one scope: its peers, its rules in order, 403 when none matched."""
    decided = "txn.erule" if scope.direction == "egress" else "txn.irule"
    peer = "txn.dst_id" if scope.direction == "egress" else "txn.src_id"
    lines = [f"# netx: {scope.endpoint} {scope.direction} tcp/{scope.port}", f"backend {scope.name}"]
    names: dict[frozenset[int], str] = {}  # one ACL per set of peers (several lines of one name: any of them)
    for match in scope.matches:
        if any_peer(match) or match.peers in names:
            continue
        names[match.peers] = f"peers{len(names)}"
        identities = sorted(match.peers)
        for first in range(0, len(identities), PEERS_PER_LINE):
            values = " ".join(map(str, identities[first:first + PEERS_PER_LINE]))
            lines.append(f"    acl {names[match.peers]} var({peer}) -m str {values}")
    for match in scope.matches:
        conditions = " ".join([*_conditions(match, names.get(match.peers)), f"!{{ var({decided}) -m found }}"])
        lines.append(f"    http-request set-var({decided}) str({match.label}) if {conditions}")
    lines += [f"    http-request set-var({decided}) str({DENY}) if !{{ var({decided}) -m found }}",
              f"    http-request deny deny_status 403 if {{ var({decided}) -m str {DENY} }}"]
    if scope.direction == "egress":  # on to the receiver's ingress rules when it is on this node
        lines += [f"    use-server to-ingress if {{ var(txn.ikey),map_str({RUN}/ingress.map) -m found }}",
                  f"    server to-ingress {INGRESS_HOP} send-proxy-v2 weight 0"]
    return "\n".join([*lines, UPSTREAM, ""])


def render_maps(scopes: Iterable[Scope], ipcache: Mapping[str, tuple[int, str]]) -> dict[str, str]:
    """ipcache.map (prefix -> identity), egress.map and ingress.map (address:port -> scope)."""
    keys: dict[str, list[str]] = {"egress": [], "ingress": []}
    for scope in scopes:
        keys[scope.direction] += [f"{address}:{scope.port} {scope.name}" for address in scope.addresses]
    return {"ipcache.map": "".join(f"{prefix} {identity}\n" for prefix, (identity, _n) in sorted(ipcache.items())),
            "egress.map": "".join(f"{line}\n" for line in sorted(keys["egress"])),
            "ingress.map": "".join(f"{line}\n" for line in sorted(keys["ingress"]))}


def scope_file(name: str) -> str:
    """Where a scope's backend lives, under the SCOPES folder (HAProxy reads its .cfg files in order)."""
    return f"{name}.cfg"


def digest(files: Mapping[str, str]) -> str:
    """The digest of a configuration: every file (placeholders in), by name; SCOPES files as ``scopes/NAME``."""
    hashed = hashlib.sha256()
    for name in sorted(files):
        hashed.update(f"{name}\0{files[name]}\0".encode())
    return hashed.hexdigest()[:16]


def fill(text: str, run: str, config_digest: str) -> str:
    """A file as written: the placeholders replaced."""
    return text.replace(RUN, run).replace(DIGEST, config_digest)


def template(text: str, run: str) -> str:
    """A file as read back, with its placeholders again (the digest in its description too)."""
    text = text.replace(run, RUN)
    start = text.find(DESCRIPTION)
    if start < 0:
        return text
    start += len(DESCRIPTION)
    end = text.find("\n", start)
    return text[:start] + DIGEST + text[end if end >= 0 else len(text):]
