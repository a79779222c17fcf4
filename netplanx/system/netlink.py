"""A lean rtnetlink socket: batched requests acked once per batch, and dumps parsed lazily.

pyroute2 builds a full object per message and waits one round trip per request; at 10,000 routes
that is ~30x slower than iproute2 (see ../shared/PLATFORM.md). This module sends many requests per
sendmsg and parses only the attributes netx compares.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Iterator, Sequence

NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_ACK_TLVS = 0x200
NLMSGERR_ATTR_MSG = 1
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11
RTM_GETLINK = 18
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33

HEADER = struct.Struct("=IHHII")
ATTR = struct.Struct("=HH")
IFINFOMSG = struct.Struct("=BxHiII")
IFLA_IFNAME = 3
IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS = 29, 8
BATCH = 1024
LINK_REQUEST = IFINFOMSG.pack(0, 0, 0, 0, 0) + ATTR.pack(8, IFLA_EXT_MASK) + struct.pack("=I", RTEXT_FILTER_SKIP_STATS)


class NetlinkError(OSError):
    """A request the kernel refused; ``str()`` includes the kernel's extended ack message."""


def attrs(data: bytes | memoryview, offset: int, end: int) -> Iterator[tuple[int, int, int]]:
    """Yield (type, start, stop) of each attribute between offset and end."""
    while offset + 4 <= end:
        length, kind = ATTR.unpack_from(data, offset)
        if length < 4:
            return
        yield kind & 0x3FFF, offset + 4, offset + length
        offset += (length + 3) & ~3


def attr(kind: int, payload: bytes) -> bytes:
    """Encode one attribute, padded to four bytes."""
    length = 4 + len(payload)
    return ATTR.pack(length, kind) + payload + b"\0" * ((-length) & 3)


class NetlinkSocket:
    """One NETLINK_ROUTE socket in the namespace the process is in when it is opened."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        for forced, plain, value in ((SO_SNDBUFFORCE, socket.SO_SNDBUF, 1 << 20),
                                     (SO_RCVBUFFORCE, socket.SO_RCVBUF, 4 << 20)):
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, forced, value)
            except OSError:
                self.sock.setsockopt(socket.SOL_SOCKET, plain, value)
        self.sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
        self.sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
        self.sock.bind((0, 0))
        self.seq = 0
        self.writes = 0
        self.buffer: memoryview | None = None  # what dumps are received into (see _datagrams)

    def close(self) -> None:
        self.sock.close()

    def _message(self, kind: int, flags: int, body: bytes) -> tuple[int, bytes]:
        self.seq += 1
        return self.seq, HEADER.pack(HEADER.size + len(body), kind, flags, self.seq, 0) + body

    def _receive(self) -> Iterator[tuple[int, int, int, memoryview]]:
        """Yield (type, flags, seq, payload) of every message in one datagram."""
        data = memoryview(self.sock.recv(1 << 20))
        offset = 0
        while offset + HEADER.size <= len(data):
            length, kind, flags, seq, _pid = HEADER.unpack_from(data, offset)
            if length < HEADER.size:
                break
            yield kind, flags, seq, data[offset + HEADER.size:offset + length]
            offset += (length + 3) & ~3

    def datagrams(self, kind: int, body: bytes) -> tuple[int, Iterator[bytes]]:
        """Send a dump request: its sequence number, and the datagrams that come next, unframed (an endless
        iterator; the answer ends with NLMSG_DONE or NLMSG_ERROR of that sequence, see ``dump_ended``)."""
        seq, message = self._message(kind, NLM_F_REQUEST | NLM_F_DUMP, body)
        self.sock.send(message)
        return seq, self._datagrams()

    def _datagrams(self) -> Iterator[bytes]:
        """Every datagram received, each read into one buffer and copied out at its size: ``recv(1 << 20)``
        allocates a megabyte per datagram, about 0.5 ms of the 4 that the 20 datagrams of 10,000 routes take."""
        if self.buffer is None:
            self.buffer = memoryview(bytearray(1 << 20))
        buffer, receive = self.buffer, self.sock.recv_into
        while True:
            yield buffer[:receive(buffer)].tobytes()

    def dump(self, kind: int, body: bytes) -> Iterator[memoryview]:
        """Send a dump request and yield the payload of each answer (a dump answers with one message type).

        One loop over each datagram's messages: a route dump of 10,000 routes is 10,000 of them."""
        seq, datagrams = self.datagrams(kind, body)
        unpack, size = HEADER.unpack_from, HEADER.size
        for datagram in datagrams:
            data = memoryview(datagram)
            offset, end = 0, len(data)
            while offset + size <= end:
                length, mtype, flags, mseq, _pid = unpack(data, offset)
                if length < size:
                    break
                if mseq == seq:
                    if mtype == NLMSG_DONE:
                        return
                    if mtype == NLMSG_ERROR:
                        if not dump_ended(data[offset + size:offset + length], flags):
                            yield from self.dump(kind, body)
                        return
                    yield data[offset + size:offset + length]
                offset += (length + 3) & ~3

    def request(self, kind: int, body: bytes) -> Iterator[memoryview]:
        """Send one request that is answered by a message (not a dump) and yield its payload."""
        seq, message = self._message(kind, NLM_F_REQUEST, body)
        self.sock.send(message)
        while True:
            for mtype, flags, mseq, payload in self._receive():
                if mseq != seq:
                    continue
                if mtype == NLMSG_ERROR:
                    error = _error_of(payload, flags)
                    if error is not None:
                        raise error
                    return
                yield payload
                return

    def transact(self, requests: Sequence[tuple[int, int, bytes]]) -> list[NetlinkError | None]:
        """Send write requests in batches; one result per request, in order.

        Only the last request of a batch asks for an ack: the kernel handles a batch's messages in order
        and answers a failed one with an error whatever its flags, so the last ack means every earlier
        message without an error succeeded (10,000 acks are 10,000 reads; ``ip -batch`` waits for each)."""
        results: list[NetlinkError | None] = []
        for start in range(0, len(requests), BATCH):
            chunk = requests[start:start + BATCH]
            first = self.seq + 1
            wire = [self._message(kind, flags | NLM_F_REQUEST, body)[1] for kind, flags, body in chunk[:-1]]
            last, message = self._message(chunk[-1][0], chunk[-1][1] | NLM_F_REQUEST | NLM_F_ACK, chunk[-1][2])
            wire.append(message)
            self.sock.sendall(b"".join(wire))
            self.writes += len(chunk)
            results += self._outcomes(first, last)
        return results

    def _outcomes(self, first: int, last: int) -> list[NetlinkError | None]:
        """The error (or None) of each request from sequence ``first`` to ``last``, once ``last`` is answered."""
        found: list[NetlinkError | None] = [None] * (last - first + 1)
        while True:
            for mtype, flags, seq, payload in self._receive():
                if mtype == NLMSG_ERROR and first <= seq <= last:
                    found[seq - first] = _error_of(payload, flags)
                    if seq == last:
                        return found

    def link_names(self) -> dict[int, str]:
        """Index to name of every link in this namespace."""
        names = {}
        for payload in self.dump(RTM_GETLINK, LINK_REQUEST):
            index = IFINFOMSG.unpack_from(payload, 0)[2]
            for kind, start, stop in attrs(payload, IFINFOMSG.size, len(payload)):
                if kind == IFLA_IFNAME:
                    names[index] = bytes(payload[start:stop]).rstrip(b"\0").decode()
        return names


def dump_ended(payload: bytes | memoryview, flags: int) -> bool:
    """What an NLMSG_ERROR answering a dump means: True, the dump is over (an error code 0); False, a change
    interrupted it and it must be sent again (EINTR); any other error is raised."""
    error = _error_of(payload, flags)
    if error is None:
        return True
    if error.errno == errno.EINTR:
        return False
    raise error


def _error_of(payload: bytes | memoryview, flags: int) -> NetlinkError | None:
    code = -struct.unpack_from("=i", payload, 0)[0]
    if code == 0:
        return None
    text = os.strerror(code)
    if flags & NLM_F_ACK_TLVS:
        for kind, start, stop in attrs(payload, 4 + HEADER.size, len(payload)):
            if kind == NLMSGERR_ATTR_MSG:
                message = bytes(payload[start:stop]).rstrip(b"\0").decode(errors="replace")
                text = f"{text}: {message}"
    return NetlinkError(code, text)


RTM_DELROUTE = 25
RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, protocol, scope, type; flags
RTA_DST, RTA_TABLE = 1, 15
RTMGRP_IPV4_ROUTE, RTMGRP_IPV6_ROUTE = 0x40, 0x400


class RouteRemovals:
    """The route removals the kernel announces, read as they come (a socket in the namespace the process
    is in when it is opened, subscribed to the IPv4 and IPv6 route groups)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 4 << 20)
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((0, RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE))

    def close(self) -> None:
        self.sock.close()

    def __iter__(self) -> Iterator[tuple[int, str, int] | None]:
        """(table, ``destination/length``, protocol) of each removed route, forever; None when the kernel
        dropped notifications (the receive buffer overflowed): any route may have gone."""
        while True:
            try:
                data = self.sock.recv(1 << 20)
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise
                yield None
                continue
            offset = 0
            while offset + HEADER.size <= len(data):
                length, kind, _flags, _seq, _pid = HEADER.unpack_from(data, offset)
                if length < HEADER.size:
                    break
                if kind == RTM_DELROUTE:
                    yield _removed(data, offset + HEADER.size, offset + length)
                offset += (length + 3) & ~3


def _removed(data: bytes, start: int, end: int) -> tuple[int, str, int]:
    family, dst_len, _src_len, _tos, table, protocol, _scope, _type, _flags = RTMSG.unpack_from(data, start)
    destination = "0.0.0.0" if family == socket.AF_INET else "::"
    for kind, begin, stop in attrs(data, start + RTMSG.size, end):
        if kind == RTA_DST:
            destination = socket.inet_ntop(family, data[begin:stop])
        elif kind == RTA_TABLE:
            table = struct.unpack_from("=I", data, begin)[0]
    return table, f"{destination}/{dst_len}", protocol
