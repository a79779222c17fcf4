"""BPF_PROG_TEST_RUN: run a loaded program on a packet buffer, without any interface; and the packets.

The kernel's test skb arrives on loopback (ifindex 1), so map entries keyed by ifindex 1 apply.
"""

from __future__ import annotations

import ctypes
import os
import socket
import struct
from typing import NamedTuple

SYS_BPF, BPF_PROG_TEST_RUN = 321, 10
SKB_CONTEXT, MARK_OFFSET = 192, 8  # sizeof(struct __sk_buff) on the kernels netx runs on; where its mark is


class _TestRunAttr(ctypes.Structure):
    _fields_ = [("prog_fd", ctypes.c_uint32), ("retval", ctypes.c_uint32), ("data_size_in", ctypes.c_uint32),
                ("data_size_out", ctypes.c_uint32), ("data_in", ctypes.c_uint64), ("data_out", ctypes.c_uint64),
                ("repeat", ctypes.c_uint32), ("duration", ctypes.c_uint32), ("ctx_size_in", ctypes.c_uint32),
                ("ctx_size_out", ctypes.c_uint32), ("ctx_in", ctypes.c_uint64), ("ctx_out", ctypes.c_uint64),
                ("flags", ctypes.c_uint32), ("cpu", ctypes.c_uint32), ("batch_size", ctypes.c_uint32)]


class ProgTestRun(NamedTuple):
    retval: int  # the program's return value, signed
    duration_ns: int  # mean per run, as the kernel measures it
    data_out: bytes  # the packet as the program left it
    mark: int | None = None  # the skb's mark as the program left it (when a mark was given)


def prog_test_run(prog_fd: int, packet: bytes, repeat: int = 1, mark: int | None = None) -> ProgTestRun:
    """Run a program on ``packet`` ``repeat`` times on the same buffer (a program that rewrites the packet
    sees its own output from the second run on); with ``mark``, a tc program's skb carries it in and the
    result says what it became."""
    data = ctypes.create_string_buffer(packet, len(packet))
    out = ctypes.create_string_buffer(len(packet) + 256)
    attr = _TestRunAttr(prog_fd=prog_fd, data_size_in=len(packet), data_size_out=len(out),
                        data_in=ctypes.addressof(data), data_out=ctypes.addressof(out), repeat=repeat)
    context = ctypes.create_string_buffer(SKB_CONTEXT)
    if mark is not None:
        struct.pack_into("=I", context, MARK_OFFSET, mark)
        attr.ctx_in = attr.ctx_out = ctypes.addressof(context)
        attr.ctx_size_in = attr.ctx_size_out = SKB_CONTEXT
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(SYS_BPF, BPF_PROG_TEST_RUN, ctypes.byref(attr), ctypes.sizeof(attr)) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"BPF_PROG_TEST_RUN: {os.strerror(code)}")
    return ProgTestRun(ctypes.c_int32(attr.retval).value, attr.duration, out.raw[:attr.data_size_out],
                       struct.unpack_from("=I", context, MARK_OFFSET)[0] if mark is not None else None)


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF


def _layer4(protocol: str, sport: int, dport: int, echo: int) -> tuple[bytes, int]:
    if protocol == "tcp":
        return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, 0x02, 65535, 0, 0), 6
    if protocol == "udp":
        return struct.pack("!HHHH", sport, dport, 8, 0), 17
    return struct.pack("!BBHHH", echo, 0, 0, sport, 1), 1 if echo == 8 else 58


def ipv6_packet(source: str, destination: str, protocol: str, sport: int = 40000, dport: int = 0,
                icmp_type: int = 128) -> bytes:
    """An Ethernet frame with an IPv6 TCP SYN, UDP datagram or ICMPv6 message (echo request by default)."""
    l4, number = _layer4(protocol, sport, dport, icmp_type)
    header = struct.pack("!IHBB16s16s", 6 << 28, len(l4), number, 64, socket.inet_pton(socket.AF_INET6, source),
                         socket.inet_pton(socket.AF_INET6, destination))
    return b"\x02\x00\x00\x00\x00\x01" + b"\x02\x00\x00\x00\x00\x02" + b"\x86\xdd" + header + l4


def ipv4_packet(source: str, destination: str, protocol: str, sport: int = 40000, dport: int = 0) -> bytes:
    """An Ethernet frame with an IPv4 TCP SYN, UDP datagram or ICMP echo request."""
    l4, number = _layer4(protocol, sport, dport, 8)
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 1, 0, 64, number, 0, socket.inet_aton(source),
                         socket.inet_aton(destination))
    header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    return b"\x02\x00\x00\x00\x00\x01" + b"\x02\x00\x00\x00\x00\x02" + b"\x08\x00" + header + l4
