"""Flow visibility: the datapath reports each verdict of a new connection (and every drop) into a pinned
ring buffer, the L7 proxy every HTTP request into its log socket (``l7flows.py``); ``netx flows`` decodes,
names, filters, prints or aggregates them.

Only one reader consumes the ring buffer at a time (a second ``netx flows`` would share its events).
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import TextIO

from netplanx.errors import NetxError
from netplanx.features.policy import maps as pm
from netplanx.features.policy.entries import BUILTIN_RULES, DIRECTIONS, PROTOCOL_NAMES
from netplanx.features.policy.identity import identity_name
from netplanx.features.policy.l7flows import L7Log, l7_fields
from netplanx.system.bpf.maps import obj_get

REASON_PROXY = 2  # bpf/policy.h: allowed, redirected to the L7 proxy


@dataclass
class Flow:
    """One reported verdict, with names where the datapath knows them."""

    time: float
    source: str
    source_address: str
    source_port: int | None  # None for ICMP, which has no ports
    destination: str
    destination_address: str
    destination_port: int | None
    protocol: str
    verdict: str
    endpoint: str
    direction: str
    rule: str
    policy: str
    length: int
    icmp_id: int | None = None  # the echo identifier of an ICMP echo request or reply
    redirected: bool = False  # a connection allowed through the node's L7 proxy
    method: str | None = None  # an HTTP request's (protocol http: a line of the L7 proxy's log)
    path: str | None = None
    status: int | None = None

    def line(self) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(self.time)) + f".{int(self.time * 1000) % 1000:03d}"
        source = f"{self.source} {_endpoint(self.source_address, self.source_port, self.protocol)}"
        destination = f"{self.destination} {_endpoint(self.destination_address, self.destination_port, self.protocol)}"
        what = f"http  {self.method} {self.path} {self.status}" if self.protocol == "http" else self.protocol
        proxy = ", to the L7 proxy" if self.redirected else ""
        return (f"{stamp}  {source} -> {destination}  {what}  {self.verdict.upper()}  "
                f"by {self.rule} ({self.endpoint} {self.direction}){proxy}")


def _endpoint(address: str, port: int | None, protocol: str) -> str:
    if protocol not in ("tcp", "udp", "http"):
        return address
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


class Namer:
    """Names addresses, identities, rules and endpoints from the datapath's own maps."""

    def __init__(self, scope: str, links: dict[int, str], endpoints: dict[int, str]):
        self.scope = scope
        self.links = links
        self.endpoints = endpoints
        self.refresh()

    def refresh(self) -> None:
        self.refreshed = time.monotonic()
        names = pm.read_names(self.scope)
        self.identities = {i: t for (kind, i), t in names.items() if kind == pm.NAME_IDENTITY}
        self.rules = {**BUILTIN_RULES, **{i: t for (kind, i), t in names.items() if kind == pm.NAME_RULE}}
        self.ipcache: dict[bytes, str] = {}
        with pm.open_map(self.scope, "ipcache") as ipcache:
            for key, value in ipcache.items():
                if key.prefixlen == 128:
                    self.ipcache[bytes(key.addr)] = value.name.decode(errors="replace")

    def address(self, raw: bytes, identity: int) -> str:
        return self.ipcache.get(raw) or identity_name(identity, self.identities)

    def flow(self, data: bytes, offset: float) -> Flow:
        if pm.FLOW_EVENT.unpack_from(data)[9] not in self.rules and time.monotonic() - self.refreshed > 1:
            self.refresh()  # a rule written after we started
        (ts, saddr, daddr, sport, dport, protocol, verdict, egress, reason, rule, ifindex, src_id, dst_id,
         length) = pm.FLOW_EVENT.unpack_from(data)
        rule_name = self.rules.get(rule, f"rule {rule}")
        name = PROTOCOL_NAMES.get(protocol, str(protocol))
        icmp = name in ("icmp", "icmp6")  # the datapath keeps the echo id in both port fields, for its conntrack
        return Flow(time=offset + ts / 1e9, source=self.address(saddr, src_id), source_address=pm.address_text(saddr),
                    source_port=None if icmp else sport, destination=self.address(daddr, dst_id),
                    destination_address=pm.address_text(daddr), destination_port=None if icmp else dport,
                    protocol=name, icmp_id=sport if icmp else None,
                    verdict="dropped" if verdict else "allowed",
                    endpoint=self.endpoints.get(ifindex) or self.links.get(ifindex) or f"ifindex-{ifindex}",
                    direction=DIRECTIONS[egress], rule=rule_name, policy=rule_name.split("/", 1)[0],
                    length=length, redirected=reason == REASON_PROXY)


@dataclass
class FlowFilter:
    endpoint: str | None = None
    verdict: str | None = None
    policy: str | None = None

    def __call__(self, flow: Flow) -> bool:
        if self.endpoint and self.endpoint not in (flow.source, flow.destination, flow.endpoint):
            return False
        if self.verdict and flow.verdict != self.verdict:
            return False
        return not (self.policy and flow.policy != self.policy)


def _monotonic_offset() -> float:
    """Wall clock minus the monotonic clock bpf_ktime_get_ns counts in."""
    return time.time() - time.clock_gettime(time.CLOCK_MONOTONIC)


def watch(scope: str, namer: Namer, ready: Callable[[], None], deadline: float | None,
          l7: L7Log | None = None) -> Iterator[Flow | None]:
    """Flows as the datapath reports them (and the L7 proxy's requests, from ``l7``), until ``deadline``
    (monotonic seconds) or forever."""
    from bcc import libbcc

    path = pm.map_path(scope, "flows")
    if not path.exists():
        raise NetxError(f"no policy datapath in this namespace ({path} is missing); apply a spec with policies")
    fd = obj_get(path)
    pending: list[bytes] = []

    def received(_ctx: int, data: int, size: int) -> int:
        pending.append(ctypes.string_at(data, size))
        return 0

    callback = libbcc._RINGBUF_CB_TYPE(received)
    ring = libbcc.lib.bpf_new_ringbuf(fd, callback, None)
    if not ring:
        raise NetxError(f"cannot read the ring buffer {path}")
    offset = _monotonic_offset()
    started = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    poller = select.poll()  # the ring buffer's fd is readable when it holds events
    for source in (fd, l7.fileno() if l7 else None):
        if source is not None:
            poller.register(source, select.POLLIN)
    try:
        ready()
        while deadline is None or time.monotonic() < deadline:
            poller.poll(200)
            libbcc.lib.bpf_consume_ringbuf(ring)
            batch, pending[:] = list(pending), []
            for data in batch:
                if pm.FLOW_EVENT.unpack_from(data)[0] >= started:  # not the backlog of before we started
                    yield namer.flow(data, offset)
            requests = [Flow(**fields) for line in (l7.lines() if l7 else ()) if (fields := l7_fields(line, namer))]
            yield from requests
            if not batch and not requests:
                yield None  # a tick: aggregation flushes on time even when nothing happens
    finally:
        libbcc.lib.bpf_free_ringbuf(ring)
        os.close(fd)


class Aggregator:
    """Counts per (source, destination, port, verdict) over fixed intervals."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.started = time.time()
        self.counts: dict[tuple[str, str, str, str], list[int]] = {}

    def add(self, flow: Flow) -> None:
        port = f"{flow.protocol}/{flow.destination_port}" if flow.protocol in ("tcp", "udp", "http") else flow.protocol
        cell = self.counts.setdefault((flow.source, flow.destination, port, flow.verdict), [0, 0])
        cell[0] += 1
        cell[1] += flow.length

    def due(self) -> bool:
        return time.time() - self.started >= self.seconds

    def flush(self, out: TextIO, as_json: bool) -> None:
        end = time.time()
        for (source, destination, port, verdict), (flows, size) in sorted(self.counts.items()):
            if as_json:
                out.write(json.dumps({"start": self.started, "end": end, "source": source,
                                      "destination": destination, "port": port, "verdict": verdict,
                                      "flows": flows, "bytes": size}) + "\n")
            else:
                out.write(f"{time.strftime('%H:%M:%S', time.localtime(end))}  {source} -> {destination}  {port}  "
                          f"{verdict.upper()}  {flows} flow(s) {size} bytes\n")
        out.flush()
        self.counts = {}
        self.started = end


def print_flows(flows: Iterator[Flow | None], keep: FlowFilter, out: TextIO, as_json: bool, count: int | None,
                aggregate: float | None) -> int:
    """Print (or aggregate) the flows that pass the filter; stop after ``count`` of them. Returns how many."""
    shown = 0
    folder = Aggregator(aggregate) if aggregate else None
    for flow in flows:
        if folder and folder.due():
            folder.flush(out, as_json)
        if flow is None or not keep(flow):
            continue
        shown += 1
        if folder:
            folder.add(flow)
        elif as_json:
            out.write(json.dumps(asdict(flow)) + "\n")
        else:
            out.write(flow.line() + "\n")
        out.flush()
        if count and shown >= count:
            break
    if folder:
        folder.flush(out, as_json)
    return shown
