"""The WireGuard feature: encryption between nodes, a host's own devices; keys, the handshake
post-condition, ``netx keygen``."""

from __future__ import annotations

import argparse
import shutil
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from netplanx.document.problems import Problem
from netplanx.engine.feature import Adoption, Command, Console, DoctorCheck, Feature, NodeView, Postcondition, Section
from netplanx.engine.resource import Query, Resource, ResourceType
from netplanx.system.context import KernelContext
from netplanx.system.probes import link_kind_error


def _handshake(session: Any, check: Mapping[str, Any]) -> list[str]:
    """The WireGuard peer of ``check['peer']`` shook hands within ``check['within']`` seconds."""
    peer, within = check["peer"], check["within"]
    peers = [r for r in session.types["wgpeer"].read(Query()) if r.meta.get("node") == peer]
    if not peers:
        return [f"no WireGuard peer for node {peer}"]
    latest = max(r.meta["status"].get("latest_handshake", 0) for r in peers)
    age = time.time() - latest
    if not latest or age > within:
        return [f"WireGuard peer {peer}: latest handshake {'never' if not latest else f'{age:.0f}s ago'} "
                f"(allowed: within {within}s)"]
    return []


def _keygen_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=__import__("pathlib").Path)
    parser.add_argument("--force", action="store_true", help="replace an existing key file (key rotation)")


def _keygen(args: argparse.Namespace, out: Console, _session: Callable[[], Any]) -> int:
    from netplanx.features.wireguard.keys import generate

    out.print(generate(args.file, force=args.force))
    return 0


class Wireguard(Feature):
    name = "wireguard"

    def sections(self, node_sections: Sequence[Section]) -> list[Section]:
        from pydantic import Field

        from netplanx.features.wireguard.model import WireguardDevice

        return [Section("wireguardDevices", "wireguard_devices", list[WireguardDevice],
                        Field(default_factory=list, alias="wireguardDevices",
                              description="WireGuard devices of this host and their peers (a cluster's come from "
                                          "cluster.encryption)."))]

    def links(self, view: NodeView) -> Mapping[str, str]:
        return {d.name: f"wireguardDevices[{i}]" for i, d in enumerate(view.spec.wireguard_devices)}

    def check(self, spec: Any) -> Iterable[Problem]:
        from netplanx.features.wireguard.devices import device_problems

        return device_problems(spec)

    def compile(self, view: NodeView) -> list[Resource]:
        from netplanx.features.wireguard.devices import device_resources

        return device_resources(view.spec)

    def adopt(self, adoption: Adoption) -> None:
        from netplanx.features.wireguard.adopt import adopt_wireguard

        adopt_wireguard(adoption)

    def node_sections(self) -> list[Section]:
        from pydantic import Field

        from netplanx.features.wireguard.model import NodeWireguard

        return [Section("wireguard", "wireguard", NodeWireguard | None,
                        Field(None, description="Keys (with cluster.encryption)."))]

    def postconditions(self) -> list[Postcondition]:
        from netplanx.features.wireguard.model import HandshakeCheck

        return [Postcondition("wireguard-handshake", HandshakeCheck, _handshake)]

    def types(self, ctx: KernelContext) -> list[ResourceType]:
        from netplanx.features.wireguard.types import WireguardContext, WireguardPeerType, WireguardType

        wg = WireguardContext(ctx)
        return [WireguardType(ctx, wg), WireguardPeerType(ctx, wg)]

    def commands(self) -> list[Command]:
        return [Command("keygen", "write a WireGuard private key file (0600), print its public key",
                        "Write a new WireGuard private key to FILE with mode 0600 and print the public key to put "
                        "in the cluster spec.",
                        ["netx keygen /etc/netx/wg.key", "netx keygen /etc/netx/wg.key --force   # key rotation"],
                        _keygen_arguments, _keygen, shared=False)]

    def doctor(self) -> list[DoctorCheck]:
        kernel = link_kind_error("wireguard") is None
        userspace = shutil.which("wireguard-go")
        detail = "kernel WireGuard" if kernel else (f"wireguard-go at {userspace} (kernel lacks wireguard)"
                                                    if userspace else "kernel lacks wireguard, no wireguard-go")
        return [DoctorCheck("WireGuard (encryption)", kernel or userspace is not None, detail,
                            "apt-get install --no-install-recommends wireguard-go")]


FEATURE = Wireguard()
