"""Network sysctls of the namespace. netx records the value it found before its first write, and
writes it back when the key leaves the spec (that is what deleting a sysctl means)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar

from netplanx.engine.resource import Dependency, Query, Resource
from netplanx.features.base import KernelType

PROC_SYS = Path("/proc/sys")
PER_INTERFACE = re.compile(r"net\.(?:ipv4|ipv6)\.(?:conf|neigh)\.([^.]+)\..+")
RECORD = "sysctl-originals"
READ_KEYS = "sysctl.keys"  # read option: more keys to read (adoption reads the router sysctls)


def normalize(value: object) -> str:
    """Sysctl values compare as text with white space folded (``1024\\t65535`` == ``1024 65535``)."""
    return " ".join(str(value).split())


def sysctl_resource(key: str, value: object, owned: bool = True, merges: bool = False) -> Resource:
    """``merges``: the value already holds what the spec's sysctl section asks of the key (it replaces that one)."""
    return Resource("sysctl", f"sysctl.{key}", {"key": key, "value": normalize(value)}, owned,
                    {"merges": True} if merges else {})


def interface_of(key: str) -> str | None:
    match = PER_INTERFACE.fullmatch(key)
    return match.group(1) if match and match.group(1) not in ("all", "default") else None


class SysctlType(KernelType):
    kind = "sysctl"
    claims_on_update = True  # the first change records the value to restore
    disruption_of: ClassVar[Mapping[str, str]] = {
        "create": "setting change", "update": "setting change", "replace": "setting change", "delete": "setting change",
    }

    def dependencies(self, resource: Resource) -> list[Dependency]:
        interface = interface_of(resource.attrs["key"])
        return [Dependency(f"link.{interface}")] if interface else []

    def preflight(self, desired: Sequence[Resource], live: Mapping[str, Resource]) -> list[str]:
        """A key with no file is a kernel feature missing (per-interface keys appear with their link)."""
        return [f"{r.address}: kernel lacks sysctl {r.attrs['key']} (no {_path(r.attrs['key'])})"
                for r in desired if r.address not in live and interface_of(r.attrs["key"]) is None]

    def read(self, query: Query) -> list[Resource]:
        originals = self.ctx.store.load(RECORD)
        found = []
        asked = {r.attrs["key"] for r in query.of_kind(self.kind)} | set(query.options.get(READ_KEYS, ()))
        for key in sorted(asked | set(originals)):
            try:
                value = _path(key).read_text()
            except FileNotFoundError:
                continue
            found.append(sysctl_resource(key, value, owned=key in originals))
        return found

    def create(self, resources: Sequence[Resource]) -> list[Exception | None]:
        """A per-interface key appearing with its link: its original is the namespace's ``default``."""
        return [self._write(r.attrs["key"], r.attrs["value"], _default_of(r.attrs["key"]), r.owned) for r in resources]

    def update(self, pairs: Sequence[tuple[Resource, Resource]]) -> list[Exception | None]:
        return [self._write(a.attrs["key"], a.attrs["value"], b.attrs["value"], a.owned) for b, a in pairs]

    def delete(self, resources: Sequence[Resource]) -> list[Exception | None]:
        """Write back the value found before netx first changed the key, and forget the key."""
        results: list[Exception | None] = []
        for res in resources:
            key = res.attrs["key"]
            original = self.ctx.store.load(RECORD).get(key)
            result = self._write(key, original, None, owned=False) if original is not None else None
            if result is None or isinstance(result, FileNotFoundError):  # its interface is gone: nothing to do
                self._record(key, None, forget=True)
                result = None
            results.append(result)
        return results

    def _write(self, key: str, value: str, previous: str | None, owned: bool) -> Exception | None:
        try:
            if owned:
                self._record(key, previous)
            _path(key).write_text(value)
            self.ctx.count_write()
            if not owned:
                self._record(key, None, forget=True)
        except OSError as exc:
            return exc
        return None

    def _record(self, key: str, original: str | None, forget: bool = False) -> None:
        """Remember the value to restore (None: nothing to restore), unless already remembered."""
        originals = self.ctx.store.load(RECORD)
        if forget:
            if key not in originals:
                return
            del originals[key]
        elif key in originals:
            return
        else:
            originals[key] = original
        self.ctx.store.save(RECORD, originals)


def _default_of(key: str) -> str | None:
    interface = interface_of(key)
    if interface is None:
        return None
    family, table = key.split(".")[1:3]
    try:
        return normalize(_path(key.replace(f"net.{family}.{table}.{interface}.",
                                           f"net.{family}.{table}.default.", 1)).read_text())
    except OSError:
        return None


def _path(key: str) -> Path:
    return PROC_SYS / key.replace(".", "/")
