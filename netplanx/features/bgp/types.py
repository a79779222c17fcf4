"""gobgpd as resources: its global configuration, its peers and the paths it advertises.

gobgpd keeps no marker, so what netx configured is recorded in netx's state (``bgp``: the API address,
whether netx started BGP and with which graceful restart, and the peers and prefixes it added). A peer or
path someone added by hand (``gobgp neighbor add``) is therefore unmanaged: shown, never touched. If
gobgpd restarts and forgets everything, the record still names what netx owns, so the next plan recreates
it, and the peers come back as after a graceful restart (see codec.peer_message).

gobgpd 3.10 does not report the global graceful restart settings (GetBgp leaves them out): the live
values are the ones netx started BGP with (recorded), or unknown (None, never a difference) for a gobgpd
someone else started. 'netx bgp sync' reports on bgp.global too: its state, and the learned prefixes it
holds back because a route netx does not own is in their place.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from netplanx.engine.resource import Dependency, Query, Resource, ResourceType
from netplanx.errors import NetxError
from netplanx.features.bgp.resources import FAMILIES, GLOBAL, global_resource, path_resource
from netplanx.system.secretfile import read_secret
from netplanx.system.state import StateStore

if TYPE_CHECKING:
    from netplanx.system.gobgp.client import GobgpClient

RECORD = "bgp"
API_OPTION = "bgp.api"  # read option: the gobgpd to read (netx show --bgp-api)
SALT = "bgp-salt"  # the key of the password digests: random, in 0600 state, never shown


class BgpContext:
    """The connection to this node's gobgpd and netx's record of what it configured there."""

    def __init__(self, store: StateStore):
        self.store = store
        self._client: GobgpClient | None = None
        self._address = ""
        self.live_passwords: dict[str, str] = {}  # in memory only: lets a rollback restore a changed password
        self.restoring = False  # netx started BGP here before and gobgpd forgot it: it restarted

    def record(self) -> dict[str, Any]:
        return self.store.load(RECORD)

    def save(self, **changes: Any) -> None:
        record = {"api": self._address, **self.record(), **changes}
        if record.get("global") or record.get("peers") or record.get("paths"):
            self.store.save(RECORD, record)
        else:
            self.store.remove(RECORD)

    def client(self, query: Query | None = None) -> GobgpClient | None:
        """The client for gobgpd's API (the address the read asks for, else the spec's, else the recorded
        one); None when netx has nothing to do with BGP here."""
        wanted = (r.meta["api"] for kind in KINDS for r in query.of_kind(kind) if r.meta.get("api")) if query else ()
        address = ((query.options.get(API_OPTION) if query else None) or next(iter(wanted), None)
                   or self._address or self.record().get("api"))
        if not address:
            return None
        if self._client is None or self._address != address:
            from netplanx.system.gobgp.client import GobgpClient  # grpc and the stubs: only when BGP is used

            if self._client is not None:
                self._client.close()
            self._client, self._address = GobgpClient(address), address
        return self._client

    def connected(self, resource: Resource) -> GobgpClient:
        """The client for the gobgpd that ``resource`` lives in."""
        client = self.client(Query([resource]))
        if client is None:
            raise NetxError("no gobgpd API address is known (allowed: bgp.api in the spec)")
        return client

    @staticmethod
    def started(client: GobgpClient) -> bool:
        """gobgpd runs BGP (ASN 0: never started, or it restarted and forgot its configuration)."""
        return client.global_config().asn != 0

    def password_digest(self, password: str) -> str | None:
        if not password:
            return None
        salt = self.store.load(SALT).get("key")
        if not salt:
            salt = secrets.token_hex(32)
            self.store.save(SALT, {"key": salt})
        return "hmac:" + hmac.new(bytes.fromhex(salt), password.encode(), hashlib.sha256).hexdigest()[:12]

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class BgpType(ResourceType):
    """What the three BGP kinds share: the context, claiming on update, no kernel dependency."""

    claims_on_update = True

    def __init__(self, bgp: BgpContext):
        self.bgp = bgp

    def dependencies(self, resource: Resource) -> list[Dependency]:
        return [] if resource.address == GLOBAL else [Dependency(GLOBAL)]

    @staticmethod
    def _each(operation: Callable[..., None], items: Sequence[Resource | tuple[Resource, Resource]],
              pairs: bool = False) -> list[Exception | None]:
        """Run ``operation`` on each resource (or before/after pair): one result each, None on success."""
        results: list[Exception | None] = []
        for item in items:
            try:
                operation(*item) if pairs else operation(item)
                results.append(None)
            except NetxError as exc:
                results.append(exc)
        return results


class GlobalType(BgpType):
    kind = "bgp"
    replace_on = frozenset({"asn", "router_id", "listen_port", "graceful_restart", "restart_time"})
    disruption_of: ClassVar[Mapping[str, str]] = {
        "create": "hitless", "update": "hitless", "replace": "all BGP sessions reset", "delete": "all BGP sessions "
        "close, advertised paths withdrawn",
    }
    UNREPORTED = ("graceful_restart", "restart_time")  # gobgpd does not report them: None when not recorded

    def differs(self, desired: Resource, live: Resource) -> list[str]:
        return [key for key in super().differs(desired, live)
                if key not in self.UNREPORTED or live.attrs.get(key) is not None]

    def read(self, query: Query) -> list[Resource]:
        client = self.bgp.client(query)
        if client is None:
            return []
        config = client.global_config()
        if config.asn == 0:
            return []
        from netplanx.features.bgp.syncrecord import sync_status

        record = self.bgp.record()
        restart = record.get("restart", {}) if record.get("global") else {}
        return [global_resource(asn=config.asn, router_id=config.router_id, listen_port=config.listen_port,
                                graceful_restart=restart.get("graceful_restart"),
                                restart_time=restart.get("restart_time"), api=client.address,
                                owned=bool(record.get("global")), status=sync_status(self.bgp.store))]

    def create(self, resources: Sequence[Resource]) -> list[Exception | None]:
        return self._each(self._start, resources)

    def update(self, pairs: Sequence[tuple[Resource, Resource]]) -> list[Exception | None]:
        return self._each(lambda _before, after: self.bgp.save(**{"global": after.owned}), pairs, pairs=True)

    def delete(self, resources: Sequence[Resource]) -> list[Exception | None]:
        return self._each(self._stop, resources)

    def _start(self, res: Resource) -> None:
        client = self.bgp.connected(res)
        self.bgp.restoring = bool(self.bgp.record().get("global"))
        restart = {key: res.attrs[key] for key in self.UNREPORTED}
        client.start(res.attrs["asn"], res.attrs["router_id"], res.attrs["listen_port"],
                     restart["restart_time"] if restart["graceful_restart"] else 0)
        self.bgp.save(**{"global": True, "restart": restart})

    def _stop(self, res: Resource) -> None:
        self.bgp.connected(res).stop()  # gobgpd drops every peer and path with it
        self.bgp.save(**{"global": False, "restart": {}, "peers": [], "paths": []})


class BgpPeerType(BgpType):
    kind = "bgppeer"
    disruption_of: ClassVar[Mapping[str, str]] = {
        "create": "hitless", "update": "session reset", "replace": "session reset", "delete": "session closes, "
        "paths learned from it withdrawn",
    }

    def dependencies(self, resource: Resource) -> list[Dependency]:
        """BGP's global configuration; and the advertised paths go in first (only the order matters), so
        that a session, a restored one above all, starts with every path this node advertises."""
        return [Dependency(GLOBAL), Dependency(kind="bgppath", matches=lambda _path: True, lifetime=False)]

    def disruption(self, action: str, changed: Sequence[str], before: Resource | None,
                   after: Resource | None) -> str:
        if action == "update" and set(changed) <= {"owned"}:
            return "hitless"
        return self.disruption_of[action]  # gobgpd restarts a session for any change of its configuration

    def preflight(self, desired: Sequence[Resource], live: Mapping[str, Resource]) -> list[str]:
        problems = []
        for res in desired:
            if res.meta.get("password_file"):
                try:
                    self._password(res)
                except NetxError as exc:
                    problems.append(f"{res.address}: {exc}")
        return problems

    def resolve(self, desired: Sequence[Resource]) -> list[Resource]:
        """Each peer with the digest of its password as its ``password`` attribute (the file is read now,
        not when the spec was compiled, so a changed password is a change)."""
        resolved = []
        for res in desired:
            digest = self.bgp.password_digest(self._password(res)) if res.meta.get("password_file") else None
            resolved.append(res._replace(attrs={**res.attrs, "password": digest}))
        return resolved

    def read(self, query: Query) -> list[Resource]:
        client = self.bgp.client(query)
        if client is None or not self.bgp.started(client):
            return []
        from netplanx.features.bgp import codec

        ours = set(self.bgp.record().get("peers", ()))
        found = []
        for peer in client.peers():
            view = codec.peer_view(peer)
            if view.password:
                self.bgp.live_passwords.setdefault(view.attrs["address"], view.password)
            found.append(Resource("bgppeer", f"bgppeer.{view.attrs['address']}",
                                  {**view.attrs, "password": self.bgp.password_digest(view.password)},
                                  view.attrs["address"] in ours, {"api": client.address, "status": view.status}))
        return found

    def create(self, resources: Sequence[Resource]) -> list[Exception | None]:
        return self._each(self._add, resources)

    def update(self, pairs: Sequence[tuple[Resource, Resource]]) -> list[Exception | None]:
        return self._each(self._change, pairs, pairs=True)

    def delete(self, resources: Sequence[Resource]) -> list[Exception | None]:
        return self._each(self._remove, resources)

    def _password(self, res: Resource) -> str:
        return read_secret(res.meta["password_file"], "BGP password file").strip("\n")

    def _message(self, res: Resource) -> Any:
        from netplanx.features.bgp import codec

        if res.meta.get("password_file"):
            password: str | None = self._password(res)
        else:  # a rollback to the state read before the apply: the password the peer had then
            password = self.bgp.live_passwords.get(res.attrs["address"]) if res.attrs["password"] else None
        return codec.peer_message(res.attrs, password, restarting=self.bgp.restoring)

    def _add(self, res: Resource) -> None:
        self.bgp.connected(res).add_peer(self._message(res))
        self._own(res.attrs["address"], True)

    def _change(self, before: Resource, after: Resource) -> None:
        client = self.bgp.connected(after)
        message = self._message(after)
        if {k for k in after.attrs if after.attrs[k] != before.attrs.get(k)} <= {"description", "password"}:
            client.update_peer(message)  # gobgpd restarts the session itself (and moves the TCP MD5 key)
        else:  # gobgpd applies timers and families to a new session only: start one
            self._remove(before)
            client.add_peer(message)
        self._own(after.attrs["address"], after.owned)

    def _remove(self, res: Resource) -> None:
        client = self.bgp.connected(res)
        if res.attrs["password"]:  # gobgpd keeps a deleted peer's TCP MD5 key on its listener: clear it first
            from netplanx.features.bgp import codec

            client.update_peer(codec.peer_message(res.attrs, None))
        client.delete_peer(res.attrs["address"])
        self._own(res.attrs["address"], False)

    def _own(self, address: str, owned: bool) -> None:
        peers = set(self.bgp.record().get("peers", ())) - {address}
        self.bgp.save(peers=sorted(peers | ({address} if owned else set())))


class PathType(BgpType):
    """Advertised paths, written in bulk (one AddPathStream for thousands)."""

    kind = "bgppath"
    steps_per_call = 1 << 20  # each call saves the record of every owned prefix: once per apply, not per 1,024
    disruption_of: ClassVar[Mapping[str, str]] = {
        "create": "hitless", "update": "re-advertised", "replace": "re-advertised", "delete": "withdrawn",
    }

    def read(self, query: Query) -> list[Resource]:
        client = self.bgp.client(query)
        if client is None or not self.bgp.started(client):
            return []
        from netplanx.features.bgp import codec

        ours = set(self.bgp.record().get("paths", ()))
        found = []
        for path in client.best_paths([codec.family(name) for name in FAMILIES]):
            view = codec.path_view(path)
            if view is None or view.neighbour is not None:
                continue  # learned from a peer: 'netx bgp sync' takes those to the kernel
            found.append(path_resource(view.prefix, next_hop=view.next_hop, communities=view.communities,
                                       api=client.address, owned=view.prefix in ours))
        return found

    def create(self, resources: Sequence[Resource]) -> list[Exception | None]:
        return self._write(resources, withdraw=False)

    def update(self, pairs: Sequence[tuple[Resource, Resource]]) -> list[Exception | None]:
        return self._write([after for _before, after in pairs], withdraw=False)

    def delete(self, resources: Sequence[Resource]) -> list[Exception | None]:
        return self._write(resources, withdraw=True)

    def _write(self, resources: Sequence[Resource], withdraw: bool) -> list[Exception | None]:
        from netplanx.features.bgp import codec

        try:
            self.bgp.connected(resources[0]).add_paths([codec.path_message(r.attrs["prefix"], r.attrs["next_hop"],
                                                               r.attrs["communities"], withdraw) for r in resources])
        except NetxError as exc:
            return [exc] * len(resources)
        ours = set(self.bgp.record().get("paths", ()))
        changed = {r.attrs["prefix"] for r in resources}
        owned = {r.attrs["prefix"] for r in resources if r.owned and not withdraw}
        self.bgp.save(paths=sorted((ours - changed) | owned))
        return [None] * len(resources)


KINDS = ("bgp", "bgppeer", "bgppath")
