"""cls_bpf filters on clsact hooks, through rtnetlink: one implementation for every eBPF feature.

Filters are read with the namespace's lean netlink socket, which decodes the program id the kernel
reports (``TCA_BPF_ID``: pyroute2 leaves it out, and a ``tc`` process per call made plans over 1,000
endpoints several times slower), and written with pyroute2. Attaching replaces a filter in place
(``replace``): traffic never passes the hook without a program.

The chaining contract: every netx program on a hook has its own priority, and they run in this order
(lower priority first):

* ``ingress`` (packets the device receives; on an endpoint's veth, packets leaving the endpoint): the
  service load balancer's DNAT first, so that the egress policy sees the chosen backend, then policy (on
  a device traffic from other nodes comes in by: the load balancer, then the policy's L7 ingress redirect);
* ``egress`` (packets the device sends; towards an endpoint): policy first (the endpoint's ingress
  policy sees the backend address), then the load balancer's reverse NAT.
"""

from __future__ import annotations

import errno
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from netplanx.system.netlink import NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, NetlinkError, NetlinkSocket, attr, attrs

CHAIN: Mapping[str, tuple[str, ...]] = {"ingress": ("lb", "policy"), "egress": ("policy", "lb")}
PARENTS = {"ingress": 0xFFFFFFF2, "egress": 0xFFFFFFF3}  # ffff:fff2 and ffff:fff3 of clsact
RTM_NEWQDISC, RTM_NEWTFILTER, RTM_GETTFILTER = 36, 44, 46
TCMSG = struct.Struct("=BxxxiIII")
TC_H_CLSACT = 0xFFFFFFF1
TCA_KIND, TCA_OPTIONS = 1, 2
TCA_BPF_CLASSID, TCA_BPF_FD, TCA_BPF_NAME, TCA_BPF_FLAGS, TCA_BPF_ID = 3, 6, 7, 8, 11
TCA_BPF_FLAG_ACT_DIRECT = 1
ETH_P_ALL_BE = 0x0300  # htons(ETH_P_ALL): the filter sees every protocol
NLA_F_NESTED = 0x8000


class Attachment(NamedTuple):
    """A filter to attach: the program ``fd`` on the device's ``hook`` at ``prio``, named ``name``."""

    ifindex: int
    hook: str
    fd: int
    prio: int
    name: str


def _clsact(ifindex: int) -> bytes:
    return TCMSG.pack(0, ifindex, 0, TC_H_CLSACT, 0) + attr(TCA_KIND, b"clsact\0")


def _bpf_filter(item: Attachment) -> bytes:
    """RTM_NEWTFILTER of a direct-action cls_bpf filter (what ``tc filter replace ... bpf da`` sends)."""
    options = (attr(TCA_BPF_FD, struct.pack("=I", item.fd)) + attr(TCA_BPF_NAME, item.name.encode() + b"\0")
               + attr(TCA_BPF_FLAGS, struct.pack("=I", TCA_BPF_FLAG_ACT_DIRECT))
               + attr(TCA_BPF_CLASSID, struct.pack("=I", 1)))
    info = (item.prio << 16) | ETH_P_ALL_BE
    return TCMSG.pack(0, item.ifindex, 1, PARENTS[item.hook], info) + attr(TCA_KIND, b"bpf\0") + \
        attr(TCA_OPTIONS | NLA_F_NESTED, options)


def priority(hook: str, program: str) -> int:
    """The priority of ``program`` ("lb" or "policy") on ``hook``, from the chaining contract."""
    return 100 * (CHAIN[hook].index(program) + 1)


class TcFilter(NamedTuple):
    """A cls_bpf filter on a clsact hook."""

    hook: str
    prio: int
    name: str
    prog_id: int


class TcHooks:
    """The clsact hooks of one namespace's devices, read and written with its sockets."""

    def __init__(self, nl: NetlinkSocket, writer: Callable[[], Any]):
        """``writer`` gives the pyroute2 IPRoute (netx's) that writes filters, opened when first needed."""
        self.nl = nl
        self.writer = writer

    def filters(self, ifindex: int, hook: str) -> list[TcFilter]:
        """The BPF filters on the device's ``hook``; [] when it has no clsact (or no longer exists)."""
        found = []
        try:
            for payload in self.nl.dump(RTM_GETTFILTER, TCMSG.pack(0, ifindex, 0, PARENTS[hook], 0)):
                _family, _index, _handle, _parent, info = TCMSG.unpack_from(payload, 0)
                kind, name, prog_id = "", "", 0
                for atype, start, stop in attrs(payload, TCMSG.size, len(payload)):
                    if atype == TCA_KIND:
                        kind = bytes(payload[start:stop]).rstrip(b"\0").decode()
                    elif atype == TCA_OPTIONS:
                        for inner, first, last in attrs(payload, start, stop):
                            if inner == TCA_BPF_NAME:
                                name = bytes(payload[first:last]).rstrip(b"\0").decode()
                            elif inner == TCA_BPF_ID:
                                prog_id = struct.unpack_from("=I", payload, first)[0]
                if kind == "bpf" and prog_id:
                    found.append(TcFilter(hook, info >> 16, name, prog_id))
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENODEV, errno.ENOENT):
                raise
        return found

    def attach_many(self, filters: Sequence[Attachment]) -> list[NetlinkError | None]:
        """Attach (or replace in place) many filters on the lean socket: every device's clsact, then every
        filter, each a batch of requests; one result per filter."""
        devices = sorted({f.ifindex for f in filters})
        made = dict(zip(devices, self.nl.transact([(RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL, _clsact(index))
                                                   for index in devices]), strict=True))
        results: list[NetlinkError | None] = [None] * len(filters)
        requests, slots = [], []
        for slot, item in enumerate(filters):
            error = made[item.ifindex]
            if error is not None and error.errno != errno.EEXIST:
                results[slot] = error
                continue
            requests.append((RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_REPLACE, _bpf_filter(item)))
            slots.append(slot)
        for slot, error in zip(slots, self.nl.transact(requests), strict=True):
            results[slot] = error
        return results

    def attach(self, ifindex: int, hook: str, fd: int, *, prio: int, name: str) -> None:
        """Attach the program at ``prio`` on ``hook``, or replace the one there in place."""
        try:
            self.writer().tc("add", "clsact", ifindex)
        except NetlinkError as exc:
            if exc.errno != errno.EEXIST:
                raise
        self.writer().tc("replace-filter", "bpf", ifindex, ":1", fd=fd, name=name, parent=PARENTS[hook], prio=prio,
                    classid=1, direct_action=True)
        self.nl.writes += 1

    def detach(self, ifindex: int, hook: str, prio: int) -> None:
        """Remove the filter at ``prio`` (none there: nothing to do)."""
        if any(f.prio == prio for f in self.filters(ifindex, hook)):
            self.writer().tc("del-filter", "bpf", ifindex, ":1", parent=PARENTS[hook], prio=prio)
            self.nl.writes += 1
