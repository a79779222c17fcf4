"""The host's compiled eBPF programs: what bcc built for a version, kept so that every other namespace (scope)
loads that version without compiling it again.

A scope's programs use that scope's maps, so a program cannot be shared between scopes; what is shared is
bcc's output. For each function: its instructions, the program type, and which instructions load a map (a
``BPF_PSEUDO_MAP_FD`` immediate), by the map's pin name; and the definition of every map (type, sizes,
flags, and the inner map template of a map of maps). Loading for a scope opens the scope's pinned maps,
creates and pins those it lacks, writes their descriptors into the instructions and hands them to the
kernel's verifier (BPF_PROG_LOAD: milliseconds, where clang takes seconds).

The record is one JSON file per source and version (``NAME-VERSION.json``) in a folder of netx's state; the
version is the digest of the C source, its headers and flags, so a record is only ever used for exactly
the code it was built from.
"""

from __future__ import annotations

import ctypes
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from netplanx.files import write_atomically
from netplanx.system.bpf.maps import BPF_F_INNER_MAP, MapInfo, map_info, obj_get, obj_pin

FORMAT = 1
LICENSE = b"GPL"
SYS_BPF, BPF_MAP_CREATE, BPF_PROG_LOAD = 321, 0, 5
LD_IMM64, PSEUDO_MAP_FD, PSEUDO_MAP_VALUE = 0x18, 1, 2
INSN = 8
MAPS_OF_MAPS = (12, 13)  # array_of_maps, hash_of_maps
LOG_SIZE = 1 << 20


class _MapCreate(ctypes.Structure):
    _fields_ = [("map_type", ctypes.c_uint32), ("key_size", ctypes.c_uint32), ("value_size", ctypes.c_uint32),
                ("max_entries", ctypes.c_uint32), ("map_flags", ctypes.c_uint32), ("inner_map_fd", ctypes.c_uint32),
                ("numa_node", ctypes.c_uint32), ("map_name", ctypes.c_char * 16)]


class _ProgLoad(ctypes.Structure):
    _fields_ = [("prog_type", ctypes.c_uint32), ("insn_cnt", ctypes.c_uint32), ("insns", ctypes.c_uint64),
                ("license", ctypes.c_uint64), ("log_level", ctypes.c_uint32), ("log_size", ctypes.c_uint32),
                ("log_buf", ctypes.c_uint64), ("kern_version", ctypes.c_uint32), ("prog_flags", ctypes.c_uint32),
                ("prog_name", ctypes.c_char * 16)]


def record_path(folder: Path, name: str, version: str) -> Path:
    return folder / f"{name}-{version}.json"


def describe(module: Any, functions: Mapping[str, tuple[int, int]], map_dir: Path) -> dict[str, Any] | None:
    """The record of a bcc module just loaded (``functions``: name -> (program type, fd)), or None when a
    program uses a map that is not pinned in ``map_dir`` (such a program is only ever compiled)."""
    pins = {}
    maps = {}
    for pin in sorted(map_dir.iterdir()):
        fd = obj_get(pin)
        try:
            info = map_info(fd)
        finally:
            os.close(fd)
        pins[info.id] = pin.name
        maps[pin.name] = _definition(info)
    unpinned = [map_info(fd) for fd in _unpinned_tables(module, set(pins))]
    templates = [_definition(info) for info in unpinned if info.flags & BPF_F_INNER_MAP]
    for definition in maps.values():
        if definition["type"] in MAPS_OF_MAPS:
            if len(templates) != 1:
                return None
            definition["inner"] = templates[0]
    programs = {}
    for function, (kind, _fd) in functions.items():
        code = module.dump_func(function.encode())
        relocations = []
        for index, fd in _map_loads(code):
            found = pins.get(map_info(fd).id)
            if found is None:
                return None
            relocations.append([index, found])
        programs[function] = {"type": kind, "insns": code.hex(), "maps": relocations}
    return {"format": FORMAT, "maps": maps, "programs": programs}


def save(folder: Path, name: str, version: str, record: Mapping[str, Any]) -> None:
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        write_atomically(record_path(folder, name, version), json.dumps(record))
    except OSError:
        pass  # a record that cannot be kept only costs a compile elsewhere


def recorded(folder: Path, name: str, version: str) -> dict[str, Any] | None:
    try:
        record = json.loads(record_path(folder, name, version).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("format") == FORMAT else None


def load_recorded(record: Mapping[str, Any], map_dir: Path) -> dict[str, int]:
    """Load a record's programs against the maps pinned in ``map_dir`` (every map of the record is made and
    pinned when missing, as bcc would have): function -> program fd. Raises OSError (with the verifier's log)
    when the kernel refuses one."""
    map_dir.mkdir(parents=True, exist_ok=True)
    fds = {pin: _pinned_map(map_dir / pin, definition) for pin, definition in sorted(record["maps"].items())}
    try:
        return {function: _load_program(function, program, fds) for function, program in record["programs"].items()}
    finally:
        for fd in fds.values():
            os.close(fd)


def _definition(info: MapInfo) -> dict[str, Any]:
    return {"type": info.type_id, "key": info.key_size, "value": info.value_size, "entries": info.max_entries,
            "flags": info.flags, "name": info.name}


def _unpinned_tables(module: Any, pinned_ids: set[int]) -> list[int]:
    """Descriptors of the module's maps that are not pinned (inner map templates)."""
    from bcc.libbcc import lib

    lib.bpf_num_tables.restype, lib.bpf_num_tables.argtypes = ctypes.c_ulonglong, [ctypes.c_void_p]
    lib.bpf_table_fd_id.restype, lib.bpf_table_fd_id.argtypes = ctypes.c_int, [ctypes.c_void_p, ctypes.c_ulonglong]
    fds = [lib.bpf_table_fd_id(module.module, i) for i in range(lib.bpf_num_tables(module.module))]
    return [fd for fd in fds if fd >= 0 and map_info(fd).id not in pinned_ids]  # bcc's own: not to be closed


def _map_loads(code: bytes) -> list[tuple[int, int]]:
    """(instruction index, map fd) of every instruction that loads a map."""
    found = []
    for index in range(len(code) // INSN):
        start = index * INSN
        if code[start] == LD_IMM64 and code[start + 1] >> 4 in (PSEUDO_MAP_FD, PSEUDO_MAP_VALUE):
            found.append((index, int.from_bytes(code[start + 4:start + 8], "little", signed=True)))
    return found


def _pinned_map(path: Path, definition: Mapping[str, Any]) -> int:
    """An open descriptor of the map pinned at ``path``, created and pinned first when it is not there."""
    if path.exists():
        return obj_get(path)
    inner = -1
    if definition.get("inner"):
        inner = _create_map(definition["inner"], -1)
    try:
        fd = _create_map(definition, inner)
    finally:
        if inner >= 0:
            os.close(inner)
    try:
        obj_pin(fd, path)
    except OSError:
        os.close(fd)
        return obj_get(path)  # another loader pinned it first: use theirs
    return fd


def _create_map(definition: Mapping[str, Any], inner: int) -> int:
    attr = _MapCreate(definition["type"], definition["key"], definition["value"], definition["entries"],
                      definition["flags"], inner if inner >= 0 else 0, 0, definition["name"].encode()[:15])
    return _bpf(BPF_MAP_CREATE, attr, f"creating map {definition['name']}")


def _load_program(function: str, program: Mapping[str, Any], fds: Mapping[str, int]) -> int:
    code = bytearray.fromhex(program["insns"])
    for index, pin in program["maps"]:
        start = index * INSN + 4
        code[start:start + 4] = fds[pin].to_bytes(4, "little", signed=True)
    insns = (ctypes.c_char * len(code)).from_buffer(code)
    license_ = ctypes.create_string_buffer(LICENSE)
    attr = _ProgLoad(program["type"], len(code) // INSN, ctypes.addressof(insns), ctypes.addressof(license_),
                     0, 0, 0, 0, 0, function.encode()[:15])
    try:
        return _bpf(BPF_PROG_LOAD, attr, f"loading {function}")
    except OSError:
        log = ctypes.create_string_buffer(LOG_SIZE)
        attr.log_level, attr.log_size, attr.log_buf = 1, LOG_SIZE, ctypes.addressof(log)
        try:
            return _bpf(BPF_PROG_LOAD, attr, f"loading {function}")
        except OSError as exc:
            raise OSError(exc.errno, f"{exc.strerror}\n{log.value.decode(errors='replace')[-2000:]}") from None


def _bpf(command: int, attr: ctypes.Structure, what: str) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    result = libc.syscall(SYS_BPF, command, ctypes.byref(attr), ctypes.sizeof(attr))
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")
    return result
