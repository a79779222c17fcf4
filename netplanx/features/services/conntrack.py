"""The load balancer's connection tracking as netx reads it: which lb_ct entries are in use, as bpf/lb.c
decides it (an entry is in use while it, or the other direction of its flow, saw a packet within its
lifetime: CT_LIFETIMES, the close lifetime after a FIN or RST)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping

from netplanx.features.services.lbmaps import (
    CT_CLOSING,
    CT_LIFETIMES,
    DIR_FORWARD,
    DIR_MASQ_REPLY,
    DIR_REPLY,
    PROTOCOLS,
    CtKey,
    CtVal,
    LbMaps,
)

NS = 1_000_000_000
CLOCK_MONOTONIC_COARSE = 6  # linux/time.h (Python's time module does not name it)


def now() -> int:
    """The datapath's clock (bpf_ktime_get_coarse_ns: CLOCK_MONOTONIC_COARSE), in ns."""
    return time.clock_gettime_ns(CLOCK_MONOTONIC_COARSE)


def alive(key: CtKey, value: CtVal, at: int) -> bool:
    """Whether this direction saw a packet within its lifetime."""
    kind = "close" if value.flags & CT_CLOSING else ("tcp" if key.proto == PROTOCOLS["tcp"] else "udp")
    return value.seen >= at or at - value.seen <= CT_LIFETIMES[kind] * NS


def reply_key(key: CtKey, value: CtVal) -> CtKey:
    """The key of the reply direction of a forward entry."""
    masqueraded = any(bytes(value.nat_addr))
    return CtKey(value.addr, value.nat_addr if masqueraded else key.src, value.port,
                 value.nat_port if masqueraded else key.sport, key.proto,
                 DIR_MASQ_REPLY if masqueraded else DIR_REPLY)


def flows(maps: LbMaps) -> Counter[int]:
    """Flows in use per backend id (forward entries whose flow is alive in either direction)."""
    entries: Mapping[bytes, tuple[CtKey, CtVal]] = {bytes(k): (k, v) for k, v in maps.ct.items()}
    at = now()
    found: Counter[int] = Counter()
    for key, value in entries.values():
        if key.dir != DIR_FORWARD:
            continue
        peer = entries.get(bytes(reply_key(key, value)))
        mine = peer is not None and bytes(peer[1].addr) == bytes(key.dst) and peer[1].port == key.dport
        if alive(key, value, at) or (mine and alive(peer[0], peer[1], at)):
            found[value.backend] += 1
    return found
