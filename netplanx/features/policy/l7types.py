"""Resource types of the L7 redirect: the proxy (``l7proxy``), its rules per scope (``l7rule``), the tproxy
table (``nftables``) and the programs on the devices traffic from other nodes comes in by (``l7hook``).

The scopes' files are written first, then the proxy (re)loads them all: it depends on every ``l7rule``, and
the endpoints' entries that redirect to it depend on it (``policy.ENDPOINT``). Before a start or reload, the
files on disk must hash to the digest the plan carries; a read compares the digest the running proxy reports
(``show info`` description) with its files, so that a killed proxy, a hand-edited file or a reload that did
not happen is drift.
"""

from __future__ import annotations

import functools
import re
import shutil
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from netplanx.engine.resource import Dependency, Query, Resource
from netplanx.errors import ProviderError
from netplanx.features.base import StepwiseType
from netplanx.features.policy import haproxy, nftables
from netplanx.features.policy.l7resources import (
    L7_PROXY,
    LOG_QUEUE,
    NFT_TABLE,
    RULE_PRIORITY,
    hook_resource,
    nftables_resource,
    proxy_resource,
    rule_from_file,
)
from netplanx.features.policy.proxy import Proxy, installed_version
from netplanx.features.policy.resources import POLICY_PROGRAM
from netplanx.files import write_atomically
from netplanx.system.context import KernelContext

NFT_RECORD = "l7-nftables"  # the table is netx's here (to find it once the spec drops it)
HOOK_RECORD = "policy-remote-hooks"  # device -> program, attached by netx
PLANNED = re.compile(r"[0-9a-f]{16}")  # a digest a plan carries (not "edited ...", "unreachable")
RELOAD = ("hitless: HAProxy reloads (established connections keep going on the old worker, at most 60 s; an idle "
          "keep-alive connection gets one more request, then is closed)")


@functools.cache
def _version() -> str | None:
    return installed_version()


class ProxyType(StepwiseType):
    kind = "l7proxy"
    disruption_of: ClassVar[Mapping[str, str]] = {
        "create": "hitless: HAProxy starts (connections go to it once the policy entries redirect them; its "
                  "upstream is transparent: backends see the client's own address)",
        "update": RELOAD, "replace": RELOAD,
        "delete": "L7 rules no longer applied: HAProxy stops; connections still redirected to it are refused until "
                  "the policy entries change"}

    def __init__(self, ctx: KernelContext, proxy: Proxy):
        super().__init__(ctx)
        self.proxy = proxy

    def dependencies(self, resource: Resource) -> list[Dependency]:
        return [Dependency(kind="l7rule", lifetime=False, matches=lambda _rule: True),
                Dependency(NFT_TABLE, lifetime=False), Dependency(f"sysctl.{LOG_QUEUE}", lifetime=False),
                *(Dependency(f"rule.{family}.{RULE_PRIORITY}", lifetime=False) for family in ("ipv4", "ipv6"))]

    def preflight(self, desired: Sequence[Resource], live: Mapping[str, Resource]) -> list[str]:
        if not desired:
            return []
        problems = [] if _version() else [f"{L7_PROXY}: HAProxy is not installed (fix: apt-get install haproxy)"]
        if shutil.which("nft") is None:
            problems.append(f"{NFT_TABLE}: the nft command is missing (fix: apt-get install nftables)")
        return problems

    def resolve(self, desired: Sequence[Resource]) -> list[Resource]:
        """The version a start or reload runs: the installed haproxy's."""
        return [res._replace(attrs={**res.attrs, "version": _version()}) for res in desired]

    def read(self, query: Query) -> list[Resource]:
        """The running proxy: its version and the digest it was loaded with ("edited ..." when its files on
        disk do not hash to it, "unreachable" when it does not answer)."""
        pid = self.proxy.pid()
        if pid is None:
            return []
        files = self._own_files()
        try:
            info = self.proxy.info()
        except ProviderError:
            return [proxy_resource("unreachable", files, "unknown", pid)]
        running = self.proxy.running_digest(info)
        on_disk = self._disk_digest(files)
        shown = running if on_disk == running else f"edited (files {on_disk}, loaded {running})"
        return [proxy_resource(shown, files, info.get("Version", "unknown"), pid)]

    def _own_files(self) -> dict[str, str]:
        found = {}
        for name in (haproxy.MAIN, *haproxy.MAPS):
            try:
                found[name] = haproxy.template((self.proxy.folder / name).read_text(), str(self.proxy.folder))
            except FileNotFoundError:
                continue
        return found

    def _disk_digest(self, files: Mapping[str, str]) -> str:
        scopes = {f"{haproxy.SCOPES}/{path.name}": haproxy.template(path.read_text(), str(self.proxy.folder))
                  for path in sorted(self.proxy.scopes.glob("*.cfg"))}
        return haproxy.digest({**files, **scopes})

    def _write(self, res: Resource) -> None:
        """Write the proxy's own files, then check that everything on disk is what the plan carries."""
        self.proxy.prepare()
        run = str(self.proxy.folder)
        for name, text in res.meta["_files"].items():
            write_atomically(self.proxy.folder / name, haproxy.fill(text, run, res.attrs["digest"]))
        on_disk = self._disk_digest(self._own_files())
        # (a rollback may restore what a read found, an edited or unreachable proxy's files: as they were)
        if PLANNED.fullmatch(res.attrs["digest"]) and on_disk != res.attrs["digest"]:
            raise ProviderError(f"{res.address}: the files in {run} hash to {on_disk}, not to the planned "
                                f"{res.attrs['digest']}")

    def _create(self, res: Resource) -> None:
        try:
            self._write(res)
            self.proxy.start()
            self._serving(res)
        except ProviderError:
            self.proxy.stop()
            self._remove_own_files()
            raise
        self.ctx.count_write()

    def _update(self, before: Resource, after: Resource) -> None:
        self._write(after)
        if self.proxy.pid() is not None and before.attrs["digest"] != "unreachable":
            self.proxy.reload()
        else:
            self.proxy.stop()
            self.proxy.start()
        self._serving(after)
        self.ctx.count_write()

    def _serving(self, res: Resource) -> None:
        """The worker that serves now was loaded with these files (``show info``: its description)."""
        if not PLANNED.fullmatch(res.attrs["digest"]):
            return
        running = self.proxy.await_digest(res.attrs["digest"])
        if running != res.attrs["digest"]:
            raise ProviderError(f"{res.address}: HAProxy serves configuration {running}, not {res.attrs['digest']}")

    def _delete(self, res: Resource) -> None:
        self.proxy.stop()
        self._remove_own_files()
        self.ctx.count_write()

    def _remove_own_files(self) -> None:
        for name in (haproxy.MAIN, *haproxy.MAPS):
            (self.proxy.folder / name).unlink(missing_ok=True)
        self.proxy.remove_folder()


class RuleFileType(StepwiseType):
    """One scope's rules: a file the proxy loads (the proxy's reload applies a change)."""

    kind = "l7rule"
    disruption_of: ClassVar[Mapping[str, str]] = {
        "create": "HTTP requests here are checked by the proxy; a request no rule allows gets 403",
        "update": "the rules change when the proxy reloads; established connections keep going",
        "replace": "the rules change when the proxy reloads; established connections keep going",
        "delete": "the proxy no longer checks HTTP requests here"}

    def __init__(self, ctx: KernelContext, proxy: Proxy):
        super().__init__(ctx)
        self.proxy = proxy

    def read(self, query: Query) -> list[Resource]:
        run = str(self.proxy.folder)
        return [rule_from_file(path.name.removesuffix(".cfg"), haproxy.template(path.read_text(), run))
                for path in sorted(self.proxy.scopes.glob("*.cfg"))]

    def _create(self, res: Resource) -> None:
        self.proxy.prepare()
        write_atomically(self.proxy.scopes / res.meta["file"],
                         haproxy.fill(res.meta["_text"], str(self.proxy.folder), ""))
        self.ctx.count_write()

    def _update(self, before: Resource, after: Resource) -> None:
        self._create(after)

    def _delete(self, res: Resource) -> None:
        (self.proxy.scopes / res.meta["file"]).unlink(missing_ok=True)
        self.proxy.remove_folder()
        self.ctx.count_write()


class NftablesType(StepwiseType):
    kind = "nftables"
    disruption_of: ClassVar[Mapping[str, str]] = {
        "create": "hitless", "update": "redirected connections are re-routed once the table is written again",
        "replace": "redirected connections are re-routed once the table is written again",
        "delete": "connections marked for the proxy are no longer redirected"}

    def read(self, query: Query) -> list[Resource]:
        if not query.of_kind(self.kind) and not self.ctx.store.load(NFT_RECORD):
            return []
        rules = nftables.read_rules()
        return [] if rules is None else [nftables_resource(rules)]

    def _create(self, res: Resource) -> None:
        nftables.write()
        self.ctx.store.save(NFT_RECORD, {"table": nftables.TABLE})
        self.ctx.count_write()

    def _update(self, before: Resource, after: Resource) -> None:
        self._create(after)

    def _delete(self, res: Resource) -> None:
        nftables.delete()
        self.ctx.store.remove(NFT_RECORD)
        self.ctx.count_write()


class HookType(StepwiseType):
    """``from_remote`` (or ``from_remote_ip``) on the tc ingress hook of a device other nodes' traffic comes in
    by, at the policy's priority (after the load balancer's DNAT)."""

    kind = "l7hook"
    disruption_of: ClassVar[Mapping[str, str]] = {
        "create": "hitless: connections from other nodes to L7 ingress ports are redirected to the proxy",
        "update": "hitless (program replaced in place)", "replace": "hitless (program replaced in place)",
        "delete": "connections from other nodes are no longer redirected here"}

    def __init__(self, ctx: KernelContext, filters: Any):
        super().__init__(ctx)
        self.filters = filters

    def dependencies(self, resource: Resource) -> list[Dependency]:
        return [Dependency(POLICY_PROGRAM), Dependency(f"link.{resource.attrs['device']}"),
                Dependency(L7_PROXY, lifetime=False)]

    def read(self, query: Query) -> list[Resource]:
        devices = set(self.ctx.store.load(HOOK_RECORD)) | {r.attrs["device"] for r in query.of_kind(self.kind)}
        found = []
        for device in sorted(devices):
            program = self.filters.hook(device)
            if program is not None:
                found.append(hook_resource(device, program))
        return found

    def _create(self, res: Resource) -> None:
        device, program = res.attrs["device"], res.attrs["program"]
        self.filters.attach_hook(device, program)
        recorded = self.ctx.store.load(HOOK_RECORD)
        recorded[device] = program
        self.ctx.store.save(HOOK_RECORD, recorded)
        self.ctx.count_write()

    def _update(self, before: Resource, after: Resource) -> None:
        self._create(after)

    def _delete(self, res: Resource) -> None:
        self.filters.detach_hook(res.attrs["device"])
        recorded = self.ctx.store.load(HOOK_RECORD)
        recorded.pop(res.attrs["device"], None)
        self.ctx.store.save(HOOK_RECORD, recorded)
        self.ctx.count_write()


def l7_types(ctx: KernelContext, filters: Any) -> list[Any]:
    proxy = Proxy(ctx.scope)
    return [RuleFileType(ctx, proxy), ProxyType(ctx, proxy), NftablesType(ctx), HookType(ctx, filters)]
