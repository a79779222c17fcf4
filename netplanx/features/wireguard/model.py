"""WireGuard in the spec: ``cluster.encryption.wireguard``, each node's keys, the handshake post-condition."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field
from pydantic.functional_validators import BeforeValidator

from netplanx.document.fields import IfName, KeyFile, Name, SpecModel

OVERHEAD = 60  # outer IPv4 + UDP + WireGuard header and tag


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
