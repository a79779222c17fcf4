"""Services: a virtual IP, port and protocol balanced over backends by the eBPF load balancer."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator
from pydantic.functional_validators import AfterValidator, BeforeValidator

from netplanx.document.fields import IP4, IP6, IfName, Name, SpecModel
from netplanx.features.services.maglev import DEFAULT_TABLE_SIZE, TABLE_SIZES

UNUSABLE = {  # ranges no packet can be balanced to or from, and why
    ipaddress.IPv4Network("0.0.0.0/8"): "unspecified (0.0.0.0/8, 'this network'): never a packet's destination",
    ipaddress.IPv4Network("127.0.0.0/8"): "loopback (127.0.0.0/8): the node answers it itself, the load balancer "
                                          "never sees it",
    ipaddress.IPv4Network("224.0.0.0/4"): "multicast (224.0.0.0/4): one packet to many receivers, no connection "
                                          "to balance",
    ipaddress.IPv4Network("255.255.255.255/32"): "the broadcast address: one packet to every host of the link",
    ipaddress.IPv6Network("::/128"): "unspecified (::): never a packet's destination",
    ipaddress.IPv6Network("::1/128"): "loopback (::1): the node answers it itself, the load balancer never sees it",
    ipaddress.IPv6Network("ff00::/8"): "multicast (ff00::/8): one packet to many receivers, no connection to "
                                       "balance",
    ipaddress.IPv6Network("fe80::/10"): "link-local (fe80::/10): it means a different host on every link, and "
                                        "names none without an interface",
    ipaddress.IPv6Network("::ffff:0:0/96"): "IPv4-mapped (::ffff:0:0/96): the load balancer stores IPv4 addresses "
                                            "that way; write the IPv4 address itself",
}
UNICAST4 = "0.0.0.0/8, 127.0.0.0/8, 224.0.0.0/4 and 255.255.255.255"
UNICAST6 = "::, ::1, ff00::/8, fe80::/10 and ::ffff:0:0/96"
UNICAST = {4: f"a unicast IPv4 address such as 10.96.0.10, outside {UNICAST4}",
           6: f"a unicast IPv6 address such as fd00:96::10, outside {UNICAST6}",
           None: f"a unicast IPv4 or IPv6 address such as 10.96.0.10 or fd00:96::10, outside {UNICAST4}, {UNICAST6}"}


def _unicast(version: int | None) -> Any:
    """A check of an address a packet can be balanced to (of one family, or either)."""
    allowed = UNICAST[version]

    def check(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        try:
            address = ipaddress.ip_address(str(value))
        except ValueError:
            raise ValueError(f"'{value}' is not an {'IP' if version is None else f'IPv{version}'} address "
                             f"(allowed: {allowed})") from None
        if version is not None and address.version != version:
            raise ValueError(f"'{value}' is an IPv{address.version} address (allowed: {allowed})")
        for network, why in UNUSABLE.items():
            if network.version == address.version and address in network:
                raise ValueError(f"'{value}' is {why} (allowed: {allowed})")
        return address
    return check


def _cgroup(value: Any) -> str:
    """A cgroup v2 directory: a path below the cgroup2 mount, or an absolute path (resolved at plan time)."""
    allowed = ("allowed: a path below the cgroup v2 mount such as netx-workloads or kubepods.slice/pods, or the "
               "absolute path of such a directory")
    text = str(value)
    parts = text.strip("/").split("/")
    if not text.strip("/") or any(part in ("", ".", "..") for part in parts) or text.endswith("/"):
        raise ValueError(f"cgroup '{text}' is not a normalized path below the cgroup root ({allowed})")
    if any(ord(c) < 32 or c == "\x7f" for c in text):
        raise ValueError(f"cgroup {text!r} contains control characters ({allowed})")
    return text


def _table_size(value: int) -> int:
    if value not in TABLE_SIZES:
        raise ValueError(f"maglevTableSize {value} is not one of the allowed primes (allowed: "
                         f"{', '.join(map(str, TABLE_SIZES))})")
    return value


TableSize = Annotated[int, AfterValidator(_table_size)]
Unicast = Annotated[ipaddress.IPv4Address | ipaddress.IPv6Address, BeforeValidator(_unicast(None)),
                    Field(description="Unicast IPv4 or IPv6 address.")]
Unicast6 = Annotated[ipaddress.IPv6Address, BeforeValidator(_unicast(6)), Field(description="Unicast IPv6 address.")]
CgroupPath = Annotated[str, AfterValidator(_cgroup), Field(description="A cgroup v2 directory.")]


class Backend(SpecModel):
    """Where a service sends traffic: an endpoint of the cluster (by name) or an address."""

    endpoint: Name | None = Field(None, description="An endpoint of the cluster (its address is used).")
    address: Unicast | None = Field(None, description="A unicast IPv4 or IPv6 address (a backend outside the "
                                                      "spec's endpoints), of a VIP's family.")
    port: int | None = Field(None, ge=1, le=65535, description="Backend port (default: the service port).")
    weight: int = Field(1, ge=1, le=10000, description="Share of new connections relative to the others (1-10000).")

    @model_validator(mode="after")
    def _one_target(self) -> Backend:
        if (self.endpoint is None) == (self.address is None):
            raise ValueError("a backend needs exactly one of endpoint or address (allowed: endpoint: NAME, or "
                             "address: IPv4 or IPv6)")
        return self


class Service(SpecModel):
    """A virtual IP and port; new flows go to a backend chosen by Maglev hashing and keep it."""

    name: Name
    vip: Unicast = Field(description="The virtual IP clients connect to: unicast IPv4 or IPv6 (not 0.0.0.0/8, "
                                     "127.0.0.0/8, 224.0.0.0/4, 255.255.255.255, ::, ::1, ff00::/8, fe80::/10 or "
                                     "::ffff:0:0/96).")
    vip6: Unicast6 | None = Field(None, description="A second VIP, IPv6, for a dual-stack service (vip is then "
                                                    "IPv4); each VIP balances over the backends of its family.")
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
    masquerade: IP4 | None = Field(None, description="Source address of the IPv4 flows it balances, so that "
                                                     "replies come back through this host (unset: the client's).")
    masquerade6: IP6 | None = Field(None, description="The same for IPv6 flows.")


class SocketLB(SpecModel):
    """Socket-level load balancing for the processes of one cgroup v2 directory (and its descendants)."""

    enabled: bool = Field(True, description="Attach the socket programs (false: the packet path balances "
                                            "everything).")
    cgroup: CgroupPath | None = Field(None, description="The cgroup v2 directory that holds the node's workloads: "
                                                        "a path below the cgroup2 mount (found in /proc/mounts), "
                                                        "or its absolute path; never the root. It must exist.")

    @model_validator(mode="after")
    def _cgroup_when_enabled(self) -> SocketLB:
        if self.enabled and self.cgroup is None:
            raise ValueError("socketLB needs the cgroup of the workloads (allowed: cgroup: PATH below the cgroup v2 "
                             "mount, such as netx-workloads; or enabled: false)")
        return self
