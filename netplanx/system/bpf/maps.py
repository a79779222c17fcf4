"""Pinned BPF maps through libbpf (as linked by libbcc), without compiling anything.

Keys and values are ctypes types (a ``ctypes.Structure`` mirroring the C struct, or a scalar such as
``ctypes.c_uint32``); scalars come back as Python ints. Per-CPU maps return one value per possible CPU.

    with BpfMap.open("/sys/fs/bpf/netx/host/lb/maps-abc/lb_be", c_uint32, BackendValue) as backends:
        backends.update(7, BackendValue(...))
        for key, value in backends.items(): ...

Errors raise ``MapError`` (an OSError subclass carrying errno) with the map path and operation.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

BPF_ANY, BPF_NOEXIST, BPF_EXIST = 0, 1, 2
BPF_F_INNER_MAP = 1 << 12
MAP_TYPES = {1: "hash", 2: "array", 5: "percpu_hash", 6: "percpu_array", 9: "lru_hash", 10: "lru_percpu_hash",
             11: "lpm_trie", 12: "array_of_maps", 13: "hash_of_maps"}
MAP_TYPE_IDS = {name: number for number, name in MAP_TYPES.items()}
PERCPU = {"percpu_hash", "percpu_array", "lru_percpu_hash"}
CType = Any  # a ctypes type: Structure subclass or scalar such as c_uint32


class MapError(OSError):
    """A BPF map operation failed (``errno`` tells why)."""


@cache
def libbpf() -> ctypes.CDLL:
    """libbcc's handle: it resolves libbpf's functions (bpf_obj_get, bpf_map_*) as well as bcc's own."""
    lib = ctypes.CDLL("libbcc.so.0", use_errno=True)
    void, u32p = ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint32)
    signatures = {
        "bpf_obj_get": ([ctypes.c_char_p], ctypes.c_int),
        "bpf_obj_pin": ([ctypes.c_int, ctypes.c_char_p], ctypes.c_int),
        "bpf_map_lookup_elem": ([ctypes.c_int, void, void], ctypes.c_int),
        "bpf_map_update_elem": ([ctypes.c_int, void, void, ctypes.c_uint64], ctypes.c_int),
        "bpf_map_delete_elem": ([ctypes.c_int, void], ctypes.c_int),
        "bpf_map_get_next_key": ([ctypes.c_int, void, void], ctypes.c_int),
        "bpf_map_lookup_batch": ([ctypes.c_int, void, void, void, void, u32p, void], ctypes.c_int),
        "bpf_map_update_batch": ([ctypes.c_int, void, void, u32p, void], ctypes.c_int),
        "bpf_map_get_fd_by_id": ([ctypes.c_uint32], ctypes.c_int),
        "bpf_prog_get_fd_by_id": ([ctypes.c_uint32], ctypes.c_int),
        "bpf_obj_get_info_by_fd": ([ctypes.c_int, void, u32p], ctypes.c_int),
        "bcc_create_map": ([ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int],
                           ctypes.c_int),
    }
    for name, (arguments, result) in signatures.items():
        function = getattr(lib, name)
        function.argtypes, function.restype = arguments, result
    return lib


def _check(result: int, what: str) -> int:
    if result < 0:
        code = -result if result < -1 else (ctypes.get_errno() or errno.EIO)
        raise MapError(code, f"{what}: {os.strerror(code)}")
    return result


class _MapInfo(ctypes.Structure):
    _fields_ = [("type", ctypes.c_uint32), ("id", ctypes.c_uint32), ("key_size", ctypes.c_uint32),
                ("value_size", ctypes.c_uint32), ("max_entries", ctypes.c_uint32), ("map_flags", ctypes.c_uint32),
                ("name", ctypes.c_char * 16)]


class _ProgInfo(ctypes.Structure):
    _fields_ = [("type", ctypes.c_uint32), ("id", ctypes.c_uint32), ("tag", ctypes.c_uint8 * 8),
                ("jited_prog_len", ctypes.c_uint32), ("xlated_prog_len", ctypes.c_uint32),
                ("jited_prog_insns", ctypes.c_uint64), ("xlated_prog_insns", ctypes.c_uint64),
                ("load_time", ctypes.c_uint64), ("created_by_uid", ctypes.c_uint32), ("nr_map_ids", ctypes.c_uint32),
                ("map_ids", ctypes.c_uint64), ("name", ctypes.c_char * 16)]


@dataclass(frozen=True)
class MapInfo:
    """What the kernel says about a map."""

    id: int
    type: str
    key_size: int
    value_size: int
    max_entries: int
    flags: int
    name: str
    type_id: int = 0  # the kernel's number of ``type``


@dataclass(frozen=True)
class ProgInfo:
    id: int
    type: int
    name: str
    tag: str


def map_info(fd: int) -> MapInfo:
    info = _MapInfo()
    size = ctypes.c_uint32(ctypes.sizeof(info))
    _check(libbpf().bpf_obj_get_info_by_fd(fd, ctypes.byref(info), ctypes.byref(size)), "map info")
    return MapInfo(info.id, MAP_TYPES.get(info.type, str(info.type)), info.key_size, info.value_size,
                   info.max_entries, info.map_flags, info.name.decode(), info.type)


def prog_info(fd: int) -> ProgInfo:
    info = _ProgInfo()
    size = ctypes.c_uint32(ctypes.sizeof(info))
    _check(libbpf().bpf_obj_get_info_by_fd(fd, ctypes.byref(info), ctypes.byref(size)), "program info")
    return ProgInfo(info.id, info.type, info.name.decode(), bytes(info.tag).hex())


def obj_get(path: str | Path) -> int:
    """An fd of a pinned map or program (the caller closes it)."""
    return _check(libbpf().bpf_obj_get(str(path).encode()), f"open pin {path}")


def obj_pin(fd: int, path: str | Path) -> None:
    _check(libbpf().bpf_obj_pin(fd, str(path).encode()), f"pin {path}")


def prog_fd_by_id(prog_id: int) -> int:
    return _check(libbpf().bpf_prog_get_fd_by_id(prog_id), f"program id {prog_id}")


@cache
def possible_cpus() -> int:
    """Per-CPU map values have one slot per possible CPU."""
    text = Path("/sys/devices/system/cpu/possible").read_text().strip()
    total = 0
    for part in text.split(","):
        low, _, high = part.partition("-")
        total += int(high or low) - int(low) + 1
    return total


def create_map(kind: str, key_size: int, value_size: int, max_entries: int, flags: int = 0, name: str = "") -> int:
    """A new, unpinned map (e.g. an inner map of a map-in-map); the caller closes the fd."""
    return _check(libbpf().bcc_create_map(MAP_TYPE_IDS[kind], name.encode()[:15], key_size, value_size,
                                          max_entries, flags), f"create {kind} map {name}")


class BpfMap:
    """One open map: lookup, update, delete, iterate, batches; keys and values decoded with ctypes types."""

    def __init__(self, fd: int, key_type: CType, value_type: CType, label: str = ""):
        self.fd = fd
        self.key_type = key_type
        self.value_type = value_type
        self.info = map_info(fd)
        self.label = label or self.info.name
        self.percpu = self.info.type in PERCPU
        if ctypes.sizeof(key_type) != self.info.key_size or ctypes.sizeof(value_type) != self.info.value_size:
            os.close(fd)
            raise MapError(errno.EINVAL, f"{self.label}: key/value sizes {self.info.key_size}/{self.info.value_size} "
                           f"do not match {ctypes.sizeof(key_type)}/{ctypes.sizeof(value_type)} (stale pin?)")
        self._slot = (ctypes.sizeof(value_type) + 7) & ~7

    @classmethod
    def open(cls, path: str | Path, key_type: CType, value_type: CType) -> BpfMap:
        """Open a pinned map; its key and value sizes must match the types."""
        return cls(obj_get(path), key_type, value_type, str(path))

    @classmethod
    def by_id(cls, map_id: int, key_type: CType, value_type: CType) -> BpfMap:
        """Open a map by kernel id (e.g. an inner map found in a map-in-map)."""
        fd = _check(libbpf().bpf_map_get_fd_by_id(map_id), f"map id {map_id}")
        return cls(fd, key_type, value_type, f"map id {map_id}")

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> BpfMap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _key(self, key: Any) -> Any:
        return key if isinstance(key, self.key_type) else self.key_type(key)

    def _value_buffer(self) -> Any:
        return (ctypes.c_uint8 * (self._slot * possible_cpus()))() if self.percpu else self.value_type()

    def _decode(self, raw: Any) -> Any:
        if self.percpu:
            base = ctypes.addressof(raw)
            return [_plain(self.value_type.from_buffer_copy(
                ctypes.string_at(base + cpu * self._slot, ctypes.sizeof(self.value_type))))
                for cpu in range(possible_cpus())]
        return _plain(raw)

    def lookup(self, key: Any) -> Any:
        """The value (a list of per-CPU values for per-CPU maps), or None when the key is absent."""
        raw = self._value_buffer()
        result = libbpf().bpf_map_lookup_elem(self.fd, ctypes.byref(self._key(key)), ctypes.byref(raw))
        if result < 0:
            code = -result if result < -1 else ctypes.get_errno()
            if code == errno.ENOENT:
                return None
            _check(result, f"{self.label}: lookup")
        return self._decode(raw)

    def update(self, key: Any, value: Any, flags: int = BPF_ANY) -> None:
        """Write one entry; for per-CPU maps ``value`` is written on every CPU."""
        if self.percpu:
            raw = self._value_buffer()
            single = value if isinstance(value, self.value_type) else self.value_type(value)
            for cpu in range(possible_cpus()):
                ctypes.memmove(ctypes.addressof(raw) + cpu * self._slot, ctypes.byref(single),
                               ctypes.sizeof(single))
        else:
            raw = value if isinstance(value, self.value_type) else self.value_type(value)
        _check(libbpf().bpf_map_update_elem(self.fd, ctypes.byref(self._key(key)), ctypes.byref(raw), flags),
               f"{self.label}: update")

    def delete(self, key: Any) -> bool:
        """Remove an entry; False when it was not there."""
        result = libbpf().bpf_map_delete_elem(self.fd, ctypes.byref(self._key(key)))
        if result < 0:
            code = -result if result < -1 else ctypes.get_errno()
            if code == errno.ENOENT:
                return False
            _check(result, f"{self.label}: delete")
        return True

    def keys(self) -> Iterator[Any]:
        """Every key (hash maps: in the kernel's order; arrays: 0..max_entries-1)."""
        current, following = self.key_type(), self.key_type()
        pointer = None
        while True:
            result = libbpf().bpf_map_get_next_key(self.fd, pointer, ctypes.byref(following))
            if result < 0:
                code = -result if result < -1 else ctypes.get_errno()
                if code == errno.ENOENT:
                    return
                _check(result, f"{self.label}: next key")
            yield _plain(self.key_type.from_buffer_copy(following))
            ctypes.memmove(ctypes.byref(current), ctypes.byref(following), ctypes.sizeof(current))
            pointer = ctypes.byref(current)

    def items(self, batch: int = 4096) -> list[tuple[Any, Any]]:
        """Every entry, read with batch lookups where the kernel has them (one syscall per ``batch``)."""
        if self.info.type in ("hash_of_maps", "array_of_maps") or self.percpu:
            return [(k, v) for k in list(self.keys()) if (v := self.lookup(k)) is not None]
        found: list[tuple[Any, Any]] = []
        # the position between batches: a bucket number (hash maps) or the last key (the kernel's generic
        # batch, as for LPM tries), so the buffer holds either
        size = max(8, self.info.key_size)
        token_in, token_out = (ctypes.c_uint8 * size)(), (ctypes.c_uint8 * size)()
        first = True
        while True:
            keys, values = (self.key_type * batch)(), (self.value_type * batch)()  # fresh: the entries refer to them
            count = ctypes.c_uint32(batch)
            result = libbpf().bpf_map_lookup_batch(self.fd, None if first else ctypes.byref(token_in),
                                                   ctypes.byref(token_out), keys, values, ctypes.byref(count), None)
            code = 0 if result >= 0 else (-result if result < -1 else ctypes.get_errno())
            if code not in (0, errno.ENOENT):
                if code == errno.EINVAL and first:  # no batch support for this map type
                    return [(k, v) for k in list(self.keys()) if (v := self.lookup(k)) is not None]
                _check(result, f"{self.label}: lookup batch")
            found += zip(keys[:count.value], values[:count.value], strict=True)  # ints, or structures (views)
            if code == errno.ENOENT:
                return found
            ctypes.memmove(token_in, token_out, size)
            first = False

    def update_batch(self, entries: Sequence[tuple[Any, Any]]) -> None:
        """Write many entries in one syscall (not for per-CPU maps)."""
        if not entries:
            return
        keys = (self.key_type * len(entries))(*[self._key(k) for k, _ in entries])
        values = (self.value_type * len(entries))(
            *[v if isinstance(v, self.value_type) else self.value_type(v) for _, v in entries])
        count = ctypes.c_uint32(len(entries))
        _check(libbpf().bpf_map_update_batch(self.fd, keys, values, ctypes.byref(count), None),
               f"{self.label}: update batch")

    def clear(self, keep: Iterable[Any] = ()) -> int:
        """Delete every key not in ``keep`` (hash maps); the number removed."""
        kept = {bytes(self._key(k)) for k in keep}
        removed = 0
        for key in list(self.keys()):
            if bytes(self._key(key)) not in kept and self.delete(key):
                removed += 1
        return removed


def _plain(value: Any) -> Any:
    """Scalars as ints; structures as ctypes structures that own their memory (safe to keep)."""
    if isinstance(value, ctypes._SimpleCData):
        return value.value
    if isinstance(value, ctypes.Structure):
        return type(value).from_buffer_copy(value)
    return value
