"""The route read in C (netplanx/features/routing/_route_dump.c): from a dump's datagrams it gives exactly the routes
of the Python reference (routes._decode_routes over NetlinkSocket.dump, and _decode one message at a time), raises
what the Python path raises, and reads any datagram, however malformed, within its bounds."""

from __future__ import annotations

import errno
import os
import struct
import subprocess
from collections.abc import Iterator, Sequence
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netplanx.engine.resource import Query, Resource
from netplanx.features.routing import routes
from netplanx.features.routing.routes import (
    ROUTE_DUMP,
    RTM_GETROUTE,
    _decode,
    _decode_routes,
    _encode,
    _read_routes,
    route_resource,
)
from netplanx.system import netns as namespaces
from netplanx.system.netlink import HEADER, NLMSG_DONE, NLMSG_ERROR, NetlinkError, NetlinkSocket
from tests.conftest import ip
from tests.test_fuzz import FUZZ

NAMES = {1: "lo", 2: "b0"}
RTM_NEWROUTE = 24


class Replay:
    """Answers dump requests with recorded datagrams (one list per request, in turn), as NetlinkSocket does:
    ``dump`` and ``_read_routes`` frame them with their own code. A request beyond the recorded ones raises
    Exhausted."""

    dump = NetlinkSocket.dump

    def __init__(self, seq: int, answers: Sequence[Sequence[bytes]]) -> None:
        self.seq, self.answers = seq, list(answers)

    def datagrams(self, kind: int, body: bytes) -> tuple[int, Iterator[bytes]]:
        assert (kind, body) == (RTM_GETROUTE, ROUTE_DUMP)
        if not self.answers:
            raise Exhausted
        answer = self.answers.pop(0)

        def datagrams() -> Iterator[bytes]:
            yield from answer
            raise Exhausted  # where a socket would wait for ever
        return self.seq, datagrams()


class Exhausted(Exception):
    """A read past the recorded answers."""


class Recorder:
    """A NetlinkSocket that keeps the datagrams of the dump it answers."""

    dump = NetlinkSocket.dump

    def __init__(self, nl: NetlinkSocket) -> None:
        self.nl, self.kept = nl, []

    def datagrams(self, kind: int, body: bytes) -> tuple[int, Iterator[bytes]]:
        seq, datagrams = self.nl.datagrams(kind, body)
        self.seq, self.kept = seq, []

        def kept() -> Iterator[bytes]:
            for datagram in datagrams:
                self.kept.append(datagram)
                yield datagram
        return seq, kept()


def three_ways(netns: str) -> tuple[list[Resource], list[Resource], list[Resource], int]:
    """The routes of one real dump in ``netns``: decoded one message at a time, by _decode_routes, and in C;
    and how many datagrams the dump took."""
    def read() -> tuple[list[Resource], list[Resource], list[Resource], int]:
        nl = NetlinkSocket()
        try:
            names = nl.link_names()
            recorder = Recorder(nl)
            messages = [bytes(payload) for payload in recorder.dump(RTM_GETROUTE, ROUTE_DUMP)]
        finally:
            nl.close()
        one_by_one = [r for r in (_decode(memoryview(m), names) for m in messages) if r is not None]
        by_shape = _decode_routes(Replay(recorder.seq, [recorder.kept]).dump(RTM_GETROUTE, ROUTE_DUMP), names)
        in_c = _read_routes(Replay(recorder.seq, [recorder.kept]), names)
        return one_by_one, by_shape, in_c, len(recorder.kept)
    return namespaces.call_inside(netns, read)


def assert_same_routes(in_c: list[Resource], by_shape: list[Resource]) -> None:
    """Equal, of the same types, and sharing meta objects the same way (one read-only meta per shape)."""
    assert in_c == by_shape
    assert all(type(r) is Resource and type(r.attrs) is dict for r in in_c)
    assert [type(r.meta) for r in in_c] == [type(r.meta) for r in by_shape]
    assert [r.address for r in in_c] == [r.address for r in by_shape]

    def sharing(found: list[Resource]) -> list[int]:
        first: dict[int, int] = {}
        return [first.setdefault(id(r.meta), i) for i, r in enumerate(found)]
    assert sharing(in_c) == sharing(by_shape)


def test_the_c_route_read_is_built() -> None:
    """Without it every plan decodes the routes in Python: ~17 ms for 10,000 instead of ~5."""
    assert routes._route_dump is not None, (
        "netplanx.features.routing._route_dump is missing: install a C compiler, then pip install -e .")


def test_a_large_dump_reads_the_same_in_c(netns: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """3,000 routes of interleaved shapes (metrics, tables, types, families) span many datagrams; the C read
    keeps its shapes across them; RouteType.read gives the same routes with the extension and without it."""
    ip("-n", netns, "link", "add", "b0", "type", "veth", "peer", "name", "b1")
    ip("-n", netns, "addr", "add", "192.0.2.1/24", "dev", "b0")
    ip("-n", netns, "addr", "add", "2001:db8::1/64", "dev", "b0")
    ip("-n", netns, "link", "set", "b0", "up")
    lines = []
    for i in range(3000):
        to = f"10.{i // 256}.{i % 256}.0/24"
        lines.append(("route add " + to + " via 192.0.2.254", f"route add {to} via 192.0.2.253 metric 100",
                      f"route add {to} via 192.0.2.254 table 200", f"route add blackhole {to} table 201",
                      f"route add 2001:db8:{i:x}::/48 via 2001:db8::fe")[i % 5])
    lines += [f"route add 10.200.{i}.1/32 dev b0 src 192.0.2.1" for i in range(50)]
    lines += ["route add 10.201.0.0/16 nexthop via 192.0.2.10 nexthop via 192.0.2.11",
              "route add local 10.202.0.1 dev b0"]
    subprocess.run(["ip", "-n", netns, "-batch", "-"], input="\n".join(lines) + "\n", text=True, check=True)

    one_by_one, by_shape, in_c, datagrams = three_ways(netns)
    assert datagrams > 5
    assert len(in_c) > 3050
    assert by_shape == one_by_one
    assert_same_routes(in_c, by_shape)
    assert not [r for r in in_c if r.attrs["to"] == "10.202.0.1/32"]  # the local table's

    def read() -> list[Resource]:
        nl = NetlinkSocket()
        try:
            return routes.RouteType(SimpleNamespace(nl=nl, link_names=nl.link_names)).read(Query())
        finally:
            nl.close()
    assert_same_routes(namespaces.call_inside(netns, read), in_c)
    monkeypatch.setattr(routes, "_route_dump", None)  # the read where the extension was not built
    assert_same_routes(namespaces.call_inside(netns, read), in_c)


# Crafted datagrams: the faults a real kernel does not make on demand.

def message(kind: int, payload: bytes, seq: int = 7, flags: int = 2) -> bytes:
    size = HEADER.size + len(payload)
    return HEADER.pack(size, kind, flags, seq, 0) + payload + b"\0" * (-size % 4)


def route(to: str, metric: int | None = None, table: int = 254, seq: int = 7) -> bytes:
    """An RTM_NEWROUTE as the kernel dumps it: rtmsg, RTA_TABLE, RTA_DST (IPv4), then the rest."""
    return message(RTM_NEWROUTE, _encode(route_resource(table=table, to=to, metric=metric, kind="blackhole",
                                                        via=None, dev=None, src=None, scope=None, onlink=False,
                                                        nexthops=[]), {}), seq=seq)


def error(code: int, text: str = "") -> bytes:
    """An NLMSG_ERROR: the error, the request's header, and (with text) the extended ack's message."""
    extra = b""
    if text:
        body = text.encode() + b"\0"
        extra = struct.pack("=HH", 4 + len(body), 1) + body + b"\0" * (-len(body) % 4)
    return message(NLMSG_ERROR, struct.pack("=i", -code) + HEADER.pack(16, RTM_GETROUTE, 0x301, 7, 0) + extra,
                   flags=0x200 if text else 0x100)


DONE = message(NLMSG_DONE, b"\0\0\0\0")
ROUTES = b"".join([route("10.1.0.0/16"), route("10.2.0.0/16"), route("10.3.0.0/24", metric=5),
                   route("10.4.0.0/16"), route("2001:db8::/32"), route("10.5.0.0/16", table=100),
                   route("10.6.0.0/16", table=255), route("10.7.0.0/16", table=255), route("10.8.0.0/16", metric=5)])


def outcome(read: Any) -> tuple[str, Any]:
    try:
        return "read", read()
    except Exception as exc:  # the kind of failure is what is compared
        return "raised", (type(exc), str(exc) if isinstance(exc, OSError) else None)


def both(answers: Sequence[Sequence[bytes]]) -> tuple[tuple[str, Any], tuple[str, Any]]:
    """What the Python path and the C path make of the same answers."""
    python = outcome(lambda: _decode_routes(Replay(7, answers).dump(RTM_GETROUTE, ROUTE_DUMP), NAMES))
    c = outcome(lambda: _read_routes(Replay(7, answers), NAMES))
    return python, c


def test_crafted_routes_read_the_same_in_c() -> None:
    python, c = both([[ROUTES, DONE]])
    assert python[0] == "read" and len(python[1]) == 7
    assert c == python
    assert_same_routes(c[1], python[1])


def test_messages_of_another_dump_are_skipped() -> None:
    stale = route("10.50.0.0/16", seq=6)
    python, c = both([[stale + message(NLMSG_DONE, b"\0\0\0\0", seq=6) + ROUTES, DONE]])
    assert c == python and len(c[1]) == 7


@pytest.mark.parametrize("code, text", [(errno.EBUSY, ""), (errno.ENOBUFS, "no room"), (errno.EPERM, "")])
def test_an_error_in_the_middle_of_a_dump_raises_as_before(code: int, text: str) -> None:
    python, c = both([[ROUTES, route("10.60.0.0/16") + error(code, text) + route("10.61.0.0/16"), DONE]])
    expected = f"{os.strerror(code)}: {text}" if text else os.strerror(code)
    assert python == c == ("raised", (NetlinkError, str(NetlinkError(code, expected))))


def test_an_error_code_0_ends_the_dump() -> None:
    python, c = both([[ROUTES + error(0) + route("10.61.0.0/16")]])
    assert c == python and len(c[1]) == 7


def test_an_interrupted_dump_is_read_again_from_scratch() -> None:
    """EINTR: the dump is sent again, and only the routes of the dump that ended are read."""
    first = [route("10.70.0.0/16") + route("10.71.0.0/16"), route("10.72.0.0/16") + error(errno.EINTR)]
    again = [ROUTES, DONE]
    read = _read_routes(Replay(7, [first, again]), NAMES)
    assert read == _read_routes(Replay(7, [again]), NAMES)
    assert not [r for r in read if r.attrs["to"].startswith("10.7")]
    # the generator dump sends it again too (what it had yielded before stays yielded)
    tail = [bytes(m) for m in Replay(7, [first, again]).dump(RTM_GETROUTE, ROUTE_DUMP)][-9:]
    assert tail == [bytes(m) for m in Replay(7, [again]).dump(RTM_GETROUTE, ROUTE_DUMP)]


@pytest.mark.parametrize("length", [0, 1, 15, 16, 17, 10_000, 0xFFFF_FFFF])
def test_a_wrong_length_field_is_read_within_the_datagram(length: int) -> None:
    """A length below the header's ends the datagram; one past its end reads what is there (a memoryview's
    slice); either way as the Python framing does."""
    last = route("10.90.0.0/16")
    broken = struct.pack("=I", length) + last[4:]
    for datagram in (ROUTES + broken, ROUTES + broken[:20], ROUTES + broken[:30], broken + ROUTES):
        python, c = both([[datagram, DONE]])
        assert c == python


@pytest.mark.parametrize("cut", range(0, 60))
def test_a_route_cut_short_fails_or_reads_as_in_python(cut: int) -> None:
    """A message that ends anywhere (in its header, its destination, its attributes) after one of its shape."""
    whole = route("10.80.0.0/16")
    short = struct.pack("=I", cut + HEADER.size) + whole[4:HEADER.size] + whole[HEADER.size:HEADER.size + cut]
    for before in (b"", route("10.81.0.0/16"), route("10.6.0.0/16", table=255)):
        python, c = both([[before + short, DONE]])
        assert c == python


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(ROUTES) - 1), st.integers(0, 255)), max_size=6),
       st.integers(0, len(ROUTES)))
def test_corrupted_datagrams_read_as_in_python(edits: list[tuple[int, int]], end: int) -> None:
    """Any bytes changed, any end: the same routes, or the same failure (no read outside the datagram)."""
    data = bytearray(ROUTES[:end] if end else ROUTES)
    for at, value in edits:
        if at < len(data):
            data[at] = value
    python, c = both([[bytes(data), DONE]])
    assert c == python


def test_the_reader_checks_what_it_is_given() -> None:
    from netplanx.features.routing._route_dump import Reader

    with pytest.raises(TypeError):
        Reader(len, len, tuple, routes._Shape)
    with pytest.raises(TypeError):
        Reader(len, len, Resource, Resource)
    with pytest.raises(TypeError):
        Reader(None, len, Resource, routes._Shape)
    reader = Reader(lambda payload: None, lambda route: "not a shape", Resource, routes._Shape)
    with pytest.raises(TypeError):
        reader.feed(ROUTES, 7, [])
    with pytest.raises(TypeError):
        Reader(lambda payload: None, routes._shape_of, Resource, routes._Shape).feed(ROUTES, 7, ())
    assert Reader(lambda payload: None, routes._shape_of, Resource, routes._Shape).feed(bytearray(DONE), 7,
                                                                                         []) is True


def test_every_byte_of_a_destination_is_written_as_inet_ntop_does() -> None:
    """The C read writes IPv4 addresses itself (glibc's inet_ntop goes through sprintf): each value in each place."""
    datagram = b"".join(route(f"{v}.{v * 7 % 256}.{v * 13 % 256}.{v * 31 % 256}/32") for v in range(256))
    python, c = both([[datagram, DONE]])
    assert python[0] == "read" and len(python[1]) == 256
    assert c == python
    assert_same_routes(c[1], python[1])
