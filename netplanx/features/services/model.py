"""Services: a virtual IP, port and protocol balanced over backends by the eBPF load balancer."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator
from pydantic.functional_validators import AfterValidator

from netplanx.document.fields import IP4, IfName, Name, SpecModel
from netplanx.features.services.maglev import DEFAULT_TABLE_SIZE, TABLE_SIZES


def _table_size(value: int) -> int:
    if value not in TABLE_SIZES:
        raise ValueError(f"maglevTableSize {value} is not one of the allowed primes (allowed: "
                         f"{', '.join(map(str, TABLE_SIZES))})")
    return value


TableSize = Annotated[int, AfterValidator(_table_size)]


class Backend(SpecModel):
    """Where a service sends traffic: an endpoint of the cluster (by name) or an address."""

    endpoint: Name | None = Field(None, description="An endpoint of the cluster (its address is used).")
    address: IP4 | None = Field(None, description="An IPv4 address (a backend outside the spec's endpoints).")
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
    vip: IP4 = Field(description="The virtual IPv4 address clients connect to.")
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
