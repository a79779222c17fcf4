"""WireGuard in the spec: ``cluster.encryption.wireguard``, each node's keys, a host's own devices
(``wireguardDevices``), the handshake post-condition."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field
from pydantic.functional_validators import BeforeValidator

from netplanx.document.fields import IfName, KeyFile, Name, Network, SpecModel

OVERHEAD = 60  # outer IPv4 + UDP + WireGuard header and tag
DEVICE_MTU = 1420  # wg-quick's default: 1500 less the overhead over IPv6


def _key(value: Any) -> str:
    import base64

    try:
        if len(base64.b64decode(str(value), validate=True)) == 32:
            return str(value)
    except ValueError:
        pass
    raise ValueError(f"'{value}' is not a WireGuard public key (allowed: 44 characters of base64, as netx keygen "
                     "prints)")


PublicKey = Annotated[str, BeforeValidator(_key), Field(description="WireGuard public key (base64).")]


class NodeWireguard(SpecModel):
    """A node's WireGuard identity: its public key here, its private key in a file on that node."""

    public_key: PublicKey = Field(alias="publicKey")
    private_key_file: KeyFile = Field(alias="privateKeyFile")


class Wireguard(SpecModel):
    """Encrypt traffic between endpoints on different nodes with WireGuard."""

    device: IfName = Field("netx-wg", description="Name of the WireGuard device on every node.")
    port: int = Field(51820, ge=1, le=65535, description="UDP listen port.")
    keepalive: int = Field(0, ge=0, le=65535, description="Persistent keepalive in seconds (0: off).")


class Encryption(SpecModel):
    wireguard: Wireguard = Field(description="WireGuard between all nodes.")


class Handshake(SpecModel):
    peer: Name = Field(description="The node whose WireGuard peer must have shaken hands.")
    within: int = Field(60, ge=1, le=86400, description="Maximum age of the latest handshake, in seconds.")


class HandshakeCheck(SpecModel):
    """A WireGuard peer must have a recent handshake after apply."""

    wireguard_handshake: Handshake = Field(alias="wireguardHandshake")

    def to_check(self) -> dict[str, object]:
        return {"type": "wireguard-handshake", "peer": self.wireguard_handshake.peer,
                "within": self.wireguard_handshake.within}


def _endpoint(value: Any) -> str:
    """``HOST:PORT`` (``[IPv6]:PORT``), in the form WireGuard reports it."""
    import ipaddress

    host, _, port = str(value).rpartition(":")
    try:
        address = ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
        number = int(port)
        if not 1 <= number <= 65535 or (address.version == 6) != host.startswith("["):
            raise ValueError(value)
    except ValueError:
        raise ValueError(f"'{value}' is not an endpoint (allowed: ADDRESS:PORT such as 192.0.2.12:51820, or "
                         "[2001:db8::12]:51820)") from None
    return f"[{address}]:{number}" if address.version == 6 else f"{address}:{number}"


Endpoint = Annotated[str, BeforeValidator(_endpoint), Field(description="ADDRESS:PORT of the peer ([IPv6]:PORT).")]


class WireguardPeer(SpecModel):
    """A peer of a WireGuard device: its key, where it is, and the networks it may send from and receive."""

    name: Name = Field(description="The peer's name (shown in plans).")
    public_key: PublicKey = Field(alias="publicKey")
    endpoint: Endpoint | None = Field(None, description="Where to reach it (unset: it connects first).")
    allowed_ips: list[Network] = Field(default_factory=list, alias="allowedIPs",
                                       description="Networks routed to this peer and accepted from it.")
    keepalive: int = Field(0, ge=0, le=65535, description="Persistent keepalive in seconds (0: off).")


class WireguardDevice(SpecModel):
    """A WireGuard device of this host (a cluster node's comes from cluster.encryption instead)."""

    name: IfName
    port: int = Field(51820, ge=1, le=65535, description="UDP listen port.")
    public_key: PublicKey = Field(alias="publicKey")
    private_key_file: KeyFile = Field(alias="privateKeyFile")
    mtu: int = Field(DEVICE_MTU, ge=68, le=65535, description="MTU of the device.")
    peers: list[WireguardPeer] = Field(default_factory=list, description="Its peers.")
