"""WireGuard as resources: the device (``wireguard.DEV``) and its peers (``wgpeer.DEV.NODE``).

Resources hold public keys only: compared and shown as fingerprints, the full key carried in
``meta['_public_key']`` (meta keys starting with '_' are kept in saved plans, never displayed). The
private key stays in its file and is read just before it is written to the device. A device netx
started is recorded, and its peers are netx's; so is the path of the key file it was configured from
(adoption writes it back). A device provides its link: routes and addresses on it come after it.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from typing import ClassVar

from netplanx.engine.resource import Dependency, Query, Resource
from netplanx.errors import NetxError
from netplanx.features.base import StepwiseType
from netplanx.features.wireguard.drivers import Driver, KernelDriver, PeerState, UserspaceDriver
from netplanx.features.wireguard.keys import encode, fingerprint, public_key, read_private
from netplanx.system import rtnl
from netplanx.system.context import KernelContext
from netplanx.system.probes import link_kind_error

RECORD = "wireguard"
PEERS = "wireguard-peers"  # device -> public key -> node, so a peer keeps its name after it leaves the spec
KEY_FILES = "wireguard-key-files"  # device -> the private key file it was configured from


def wireguard_devices(ctx: KernelContext) -> dict[str, str]:
    """Devices netx started in this namespace, with the driver that runs each."""
    return ctx.store.load(RECORD)


def device_resource(name: str, *, port: int, public: str, private_key_file: str, mtu: int,
                    owned: bool = True, key_file: str = "") -> Resource:
    """``private_key_file``: the file to configure the device from (a live one: none, the key it has is
    kept in memory for a rollback); ``key_file``: the file a live device was configured from."""
    return Resource("wireguard", f"wireguard.{name}",
                    {"name": name, "port": port, "key": fingerprint(public), "mtu": mtu}, owned,
                    {"private_key_file": private_key_file, "_public_key": public, "key_file": key_file,
                     "provides": [f"link.{name}"]})


def peer_resource(device: str, node: str, *, public: str, endpoint: str | None, allowed_ips: Sequence[str],
                  keepalive: int = 0, owned: bool = True, status: Mapping[str, int] | None = None) -> Resource:
    return Resource("wgpeer", f"wgpeer.{device}.{node}",
                    {"device": device, "key": fingerprint(public), "endpoint": endpoint,
                     "allowed_ips": sorted(allowed_ips), "keepalive": keepalive}, owned,
                    {"_public_key": public, "node": node, "status": dict(status or {})})


class WireguardContext:
    """The driver for this namespace, chosen once: kernel WireGuard where it exists, else wireguard-go."""

    def __init__(self, ctx: KernelContext):
        self.ctx = ctx
        self.scope = ctx.scope
        self._driver: Driver | None = None
        self.live_keys: dict[str, bytes] = {}  # in memory only: lets a rollback restore a rotated key
        ctx.claim_links(self._links)

    def _links(self, query: Query) -> tuple[set[str], set[str]]:
        """WireGuard devices are this feature's resources, not links of the interfaces feature."""
        return set(wireguard_devices(self.ctx)) | {r.attrs["name"] for r in query.of_kind("wireguard")}, {"wireguard"}

    def missing(self) -> str | None:
        if link_kind_error("wireguard") is None or shutil.which("wireguard-go"):
            return None
        return "kernel lacks wireguard and wireguard-go is not installed (apt-get install wireguard-go)"

    @property
    def driver(self) -> Driver:
        if self._driver is None:
            if link_kind_error("wireguard") is None:
                self._driver = KernelDriver(self.ctx.ipr)
            else:
                self._driver = UserspaceDriver(self.scope)
        return self._driver


class WireguardType(StepwiseType):
    kind = "wireguard"
    disruption_of: ClassVar[Mapping[str, str]] = {
        "create": "hitless", "update": "session reset", "replace": "traffic loss", "delete": "traffic loss",
    }

    def __init__(self, ctx: KernelContext, wg: WireguardContext):
        super().__init__(ctx)
        self.wg = wg

    def disruption(self, action: str, changed: Sequence[str], before: Resource | None,
                   after: Resource | None) -> str:
        if action == "update" and set(changed) <= {"mtu"}:
            return "hitless"
        if action == "update" and "key" in changed:
            return ("traffic loss: key rotation; every other node drops this node's traffic until it applies the "
                    "spec with this node's new public key, then the sessions re-establish")
        return self.disruption_of[action]

    def preflight(self, desired: Sequence[Resource], live: Mapping[str, Resource]) -> list[str]:
        problems = []
        if desired and (missing := self.wg.missing()):
            problems.append(f"{desired[0].address}: {missing}")
        for res in desired:
            try:
                private = read_private(res.meta["private_key_file"])
            except NetxError as exc:
                problems.append(f"{res.address}: {exc}")
                continue
            if encode(public_key(private)) != res.meta["_public_key"]:
                problems.append(f"{res.address}: the private key in {res.meta['private_key_file']} does not "
                                f"belong to this node's public key {res.attrs['key']} (allowed: the key pair made "
                                "with netx keygen)")
        return problems

    def read(self, query: Query) -> list[Resource]:
        ours = wireguard_devices(self.ctx)
        key_files = self.ctx.store.load(KEY_FILES)
        names = {r.attrs["name"] for r in query.of_kind(self.kind)} | set(ours)
        found = []
        for name in sorted(names):
            if not self.wg.driver.exists(name):
                continue
            state = self.wg.driver.get(name)
            public = encode(public_key(state.private_key)) if state.private_key else ""
            if state.private_key:
                self.wg.live_keys.setdefault(name, state.private_key)
            index = self.ctx.index_of(name)
            mtu = rtnl.links(self.ctx.nl, {}, index)[0].get_attr("IFLA_MTU") if index else 0
            found.append(device_resource(name, port=state.listen_port, public=public, private_key_file="",
                                         mtu=mtu, owned=name in ours, key_file=key_files.get(name, "")))
        return found

    def _update(self, before: Resource, after: Resource) -> None:
        self._configure(after)

    def _create(self, res: Resource) -> None:
        name = res.attrs["name"]
        self.wg.driver.start(name)
        ours = wireguard_devices(self.ctx)
        ours[name] = self.wg.driver.name
        self.ctx.store.save(RECORD, ours)
        self._configure(res)

    def _configure(self, res: Resource) -> None:
        name = res.attrs["name"]
        if res.meta.get("private_key_file"):
            private = read_private(res.meta["private_key_file"])
            self._key_file(name, res.meta["private_key_file"])
        else:  # a rollback to the state read before the apply: the key the device had then
            private = self.wg.live_keys[name]
            self._key_file(name, res.meta.get("key_file") or None)
        self.wg.driver.configure(name, private, res.attrs["port"])
        index = self.ctx.index_of(name)
        self.ctx.ipr.link("set", index=index, mtu=res.attrs["mtu"], state="up")
        self.ctx.count_write(2)

    def _delete(self, res: Resource) -> None:
        self.wg.driver.stop(res.attrs["name"])
        ours = wireguard_devices(self.ctx)
        ours.pop(res.attrs["name"], None)
        self.ctx.store.save(RECORD, ours)
        self._key_file(res.attrs["name"], None)
        self.ctx.count_write()

    def _key_file(self, device: str, path: str | None) -> None:
        """Record the key file ``device`` was configured from (None: forget it)."""
        recorded = self.ctx.store.load(KEY_FILES)
        if path:
            recorded[device] = path
        else:
            recorded.pop(device, None)
        self.ctx.store.save(KEY_FILES, recorded)


class WireguardPeerType(StepwiseType):
    kind = "wgpeer"
    disruption_of: ClassVar[Mapping[str, str]] = {
        "create": "hitless", "update": "hitless", "replace": "session reset", "delete": "traffic loss",
    }

    def __init__(self, ctx: KernelContext, wg: WireguardContext):
        super().__init__(ctx)
        self.wg = wg

    def dependencies(self, resource: Resource) -> list[Dependency]:
        return [Dependency(f"wireguard.{resource.attrs['device']}")]

    def disruption(self, action: str, changed: Sequence[str], before: Resource | None,
                   after: Resource | None) -> str:
        """A peer's new key works only once that peer runs it: say what the traffic waits for."""
        if action == "update" and "key" in changed and after is not None:
            node = after.meta.get("node", "the peer")
            return (f"traffic loss: {node} rotated its key; traffic to {node} stops until {node} runs the new key "
                    f"(apply this spec on {node} too), then the session re-establishes")
        return self.disruption_of[action]

    def read(self, query: Query) -> list[Resource]:
        wanted = query.of_kind(self.kind)
        ours = wireguard_devices(self.ctx)
        devices = {r.attrs["device"] for r in wanted} | set(ours)
        recorded = self.ctx.store.load(PEERS)
        nodes = {(device, key): node for device, keys in recorded.items() for key, node in keys.items()}
        nodes.update({(r.attrs["device"], r.meta["_public_key"]): r.meta["node"] for r in wanted})
        found = []
        for device in sorted(devices):
            if not self.wg.driver.exists(device):
                continue
            for peer in self.wg.driver.get(device).peers:
                node = nodes.get((device, peer.public_key), fingerprint(peer.public_key))
                status = {"latest_handshake": peer.latest_handshake, "rx_bytes": peer.rx_bytes,
                          "tx_bytes": peer.tx_bytes}
                found.append(peer_resource(device, node, public=peer.public_key, endpoint=peer.endpoint,
                                           allowed_ips=peer.allowed_ips, keepalive=peer.keepalive,
                                           owned=device in ours, status=status))
        return found

    def _create(self, res: Resource) -> None:
        self.wg.driver.set_peer(res.attrs["device"], _peer(res))
        self._name(res.attrs["device"], res.meta["_public_key"], res.meta["node"])
        self.ctx.count_write()

    def _update(self, before: Resource, after: Resource) -> None:
        """A peer whose key changed (rotation) is a new peer for WireGuard: the old one is removed first."""
        if before.meta["_public_key"] != after.meta["_public_key"]:
            self._delete(before)
        self._create(after)

    def _delete(self, res: Resource) -> None:
        self.wg.driver.remove_peer(res.attrs["device"], res.meta["_public_key"])
        self._name(res.attrs["device"], res.meta["_public_key"], None)
        self.ctx.count_write()

    def _name(self, device: str, public: str, node: str | None) -> None:
        """Remember which node a peer's key belongs to (None: forget it)."""
        recorded = self.ctx.store.load(PEERS)
        keys = recorded.setdefault(device, {})
        if node is None:
            keys.pop(public, None)
        else:
            keys[public] = node
        self.ctx.store.save(PEERS, recorded)


def _peer(res: Resource) -> PeerState:
    a = res.attrs
    return PeerState(public_key=res.meta["_public_key"], endpoint=a["endpoint"], allowed_ips=list(a["allowed_ips"]),
                     keepalive=a["keepalive"])
