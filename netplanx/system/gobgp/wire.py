"""Protobuf wire format, written by hand where building message objects costs more than the work (a path
advertised is a few bytes that differ in a message that is otherwise the same for 10,000 paths)."""

from __future__ import annotations


def varint(number: int) -> bytes:
    found = bytearray()
    while number > 0x7F:
        found.append(number & 0x7F | 0x80)
        number >>= 7
    found.append(number)
    return bytes(found)


def number_field(number: int, value: int) -> bytes:
    """A varint field (wire type 0); none for 0, as proto3 writes it."""
    return varint(number << 3) + varint(value) if value else b""


def bytes_field(number: int, value: str | bytes) -> bytes:
    """A length-delimited field (wire type 2): text, bytes or an embedded message."""
    data = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(data)) + data
