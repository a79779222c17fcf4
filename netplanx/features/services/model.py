"""Services: a virtual IP, port and protocol balanced over backends by the eBPF load balancer."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator
from pydantic.functional_validators import AfterValidator, BeforeValidator

from netplanx.document.fields import IP4, IfName, Name, SpecModel
from netplanx.features.services.maglev import DEFAULT_TABLE_SIZE, TABLE_SIZES

UNUSABLE = {  # IPv4 ranges no packet can be balanced to or from, and why
    ipaddress.IPv4Network("0.0.0.0/8"): "unspecified (0.0.0.0/8, 'this network'): never a packet's destination",
    ipaddress.IPv4Network("127.0.0.0/8"): "loopback (127.0.0.0/8): the node answers it itself, the load balancer "
                                          "never sees it",
    ipaddress.IPv4Network("224.0.0.0/4"): "multicast (224.0.0.0/4): one packet to many receivers, no connection "
                                          "to balance",
    ipaddress.IPv4Network("255.255.255.255/32"): "the broadcast address: one packet to every host of the link",
}
UNICAST = "a unicast IPv4 address such as 10.96.0.10, outside 0.0.0.0/8, 127.0.0.0/8, 224.0.0.0/4 and 255.255.255.255"


def _unicast4(value: Any) -> ipaddress.IPv4Address:
    """An IPv4 address a packet can be balanced to: not unspecified, loopback, multicast or broadcast."""
    try:
        address = ipaddress.ip_address(str(value))
    except ValueError:
        raise ValueError(f"'{value}' is not an IPv4 address (allowed: {UNICAST})") from None
    if address.version == 6:
        raise ValueError(f"'{value}' is an IPv6 address: the load balancer balances IPv4 only (allowed: {UNICAST})")
    for network, why in UNUSABLE.items():
        if address in network:
            raise ValueError(f"'{value}' is {why} (allowed: {UNICAST})")
    return address


def _table_size(value: int) -> int:
    if value not in TABLE_SIZES:
        raise ValueError(f"maglevTableSize {value} is not one of the allowed primes (allowed: "
                         f"{', '.join(map(str, TABLE_SIZES))})")
    return value


TableSize = Annotated[int, AfterValidator(_table_size)]
Unicast4 = Annotated[ipaddress.IPv4Address, BeforeValidator(_unicast4), Field(description="Unicast IPv4 address.")]


class Backend(SpecModel):
    """Where a service sends traffic: an endpoint of the cluster (by name) or an address."""

    endpoint: Name | None = Field(None, description="An endpoint of the cluster (its address is used).")
    address: Unicast4 | None = Field(None, description="A unicast IPv4 address (a backend outside the spec's "
                                                       "endpoints).")
    port: int | None = Field(None, ge=1, le=65535, description="Backend port (default: the service port).")
    weight: int = Field(1, ge=1, le=10000, description="Share of new connections relative to the others (1-10000).")

    @model_validator(mode="after")
    def _one_target(self) -> Backend:
        if (self.endpoint is None) == (self.address is None):
            raise ValueError("a backend needs exactly one of endpoint or address (allowed: endpoint: NAME, or "
                             "address: IPv4)")
        return self


class Service(SpecModel):
    """A virtual IP and port; new flows go to a backend chosen by Maglev hashing and keep it."""

    name: Name
    vip: Unicast4 = Field(description="The virtual IPv4 address clients connect to: unicast (not 0.0.0.0/8, "
                                      "127.0.0.0/8, 224.0.0.0/4 or 255.255.255.255).")
    port: int = Field(ge=1, le=65535, description="The service port.")
    protocol: Literal["tcp", "udp"] = Field("tcp", description="tcp or udp.")
    affinity: Literal["none", "clientIP"] = Field(
        "none", description="clientIP: every connection of a client goes to the same backend (hash of the client "
                            "address only); none: per connection.")
    maglev_table_size: TableSize = Field(DEFAULT_TABLE_SIZE, alias="maglevTableSize",
                                   json_schema_extra={"enum": list(TABLE_SIZES)},
                                   description="Maglev lookup table size: a prime, about 100 times the backends "
                                               "or more keeps their shares within 1%.")
    backends: list[Backend] = Field(default_factory=list, description="Backends (none: the service drops "
                                                                      "new connections).")


class LoadBalancerDevice(SpecModel):
    """A host's device where the load balancer also runs (a cluster node's: cluster.underlay.loadBalancer)."""

    name: IfName = Field(description="The device (clients outside reach the VIPs through it).")
    mode: Literal["tc", "xdp", "xdpGeneric", "xdpNative"] = Field(
        "tc", description="tc, or xdp (native where the driver has it, else generic); replies go through tc egress.")
    masquerade: IP4 | None = Field(None, description="Source address of the flows it balances, so that replies "
                                                     "come back through this host (unset: the client's).")
