"""The field types every part of the spec model shares: names, addresses, networks, and the base model.

Each validator raises ``ValueError`` texts shaped as ``what is wrong (allowed: ...)`` so that the loader
can prefix them with a file position.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.functional_validators import AfterValidator, BeforeValidator

from netplanx.addressing import canonical_network

IFNAME_MAX_BYTES = 15
IfNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IfAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _ifname(value: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("interface name must be non-empty text (allowed: 1-15 bytes, no '/', ':' or spaces)")
    if len(value.encode()) > IFNAME_MAX_BYTES:
        raise ValueError(f"interface name '{value}' is {len(value.encode())} bytes long "
                         f"(allowed: at most {IFNAME_MAX_BYTES} bytes)")
    if value in (".", "..") or re.search(r"[/:\s]", value):
        raise ValueError(f"interface name '{value}' contains '/', ':' or white space, or is '.'/'..' "
                         "(allowed: 1-15 bytes, no '/', ':' or spaces)")
    return value


def _netns_name(value: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", value) or value in (".", ".."):
        raise ValueError(f"namespace name {value!r} is not valid (allowed: 1-64 letters, digits, '_', '.', '-')")
    return value


def _network(value: Any) -> IfNetwork:
    text = str(value)
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise _network_error(text) from exc


def _network_error(text: str) -> ValueError:
    try:
        loose = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return ValueError(f"'{text}' is not a network (allowed: CIDR such as 10.0.0.0/24 or fd00::/64)")
    return ValueError(f"'{text}' has host bits set (allowed: the network address, {loose})")


def _destination(value: Any) -> str:
    """Route destinations stay canonical text: parsed once, fast (there may be many thousands)."""
    if value == "default":
        return "default"
    try:
        return canonical_network(str(value))[0]
    except ValueError:
        raise _network_error(str(value)) from None


def _interface_address(value: Any) -> str:
    text = str(value)
    if "/" not in text:
        raise ValueError(f"address '{text}' has no prefix length (allowed: address/prefix such as 10.0.0.1/24)")
    try:
        return str(ipaddress.ip_interface(text))
    except ValueError as exc:
        raise ValueError(f"'{text}' is not an address/prefix (allowed: such as 10.0.0.1/24 or fd00::1/64)") from exc


@functools.lru_cache(maxsize=4096)
def _ip_cached(text: str) -> IfAddress:
    return ipaddress.ip_address(text)  # many routes share a gateway: parse it once


def _ip(value: Any) -> IfAddress:
    try:
        return _ip_cached(str(value))
    except ValueError as exc:
        raise ValueError(f"'{value}' is not an IP address (allowed: IPv4 or IPv6 address)") from exc


def _mac(value: Any) -> str:
    text = str(value).lower()
    if not re.fullmatch(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}", text):
        raise ValueError(f"'{value}' is not a MAC address (allowed: six hex octets such as 02:00:00:00:00:01)")
    if int(text[:2], 16) & 1:
        raise ValueError(f"'{value}' is a multicast MAC address (allowed: a unicast address, first octet even)")
    return text


IFNAME_PATTERN = r"^[^/:\s]+$"
IfName = Annotated[str, AfterValidator(_ifname),
                   Field(description="Interface name, at most 15 bytes.",
                         json_schema_extra={"pattern": IFNAME_PATTERN, "maxLength": IFNAME_MAX_BYTES})]
NetnsName = Annotated[str, AfterValidator(_netns_name), Field(description="Name of a network namespace in /run/netns.")]
Network = Annotated[IfNetwork, BeforeValidator(_network), Field(description="A network in CIDR form.")]
Destination = Annotated[str, BeforeValidator(_destination)]
IP = Annotated[IfAddress, BeforeValidator(_ip), Field(description="An IPv4 or IPv6 address.")]
Mac = Annotated[str, BeforeValidator(_mac), Field(description="A unicast MAC address.")]
InterfaceAddress = Annotated[str, BeforeValidator(_interface_address),
                             Field(description="Address with prefix length, e.g. 10.0.0.1/24.")]
TABLE_NAMES = ("main", "local", "default")


def _table(value: Any) -> str | int:
    if value in TABLE_NAMES or (isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 0xFFFFFFFF):
        return value
    raise ValueError(f"table {value!r} is not valid (allowed: main, local, default or 1-4294967295)")


Table = Annotated[str | int, BeforeValidator(_table),
                  Field(json_schema_extra={"anyOf": [{"enum": list(TABLE_NAMES)},
                                                     {"type": "integer", "minimum": 1, "maximum": 4294967295}]})]


class SpecModel(BaseModel):
    """Base of every spec object: unknown keys are errors, values are immutable once loaded. Validators are
    built on first use (a spec uses a few of the models)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, strict=True, defer_build=True)


def _name(value: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?", value):
        raise ValueError(f"name {value!r} is not valid (allowed: 1-40 lower-case letters, digits and '-', "
                         "starting and ending with a letter or digit)")
    return value


def _family_network(version: int) -> Any:
    example = "10.0.0.0/24" if version == 4 else "fd00::/64"

    def check(value: Any) -> IfNetwork:
        try:
            network = _network(value)
        except ValueError as exc:
            if "host bits" in str(exc):
                raise
            raise ValueError(f"'{value}' is not an IPv{version} network (allowed: an IPv{version} CIDR such as "
                             f"{example})") from None
        if network.version != version:
            raise ValueError(f"'{value}' is not an IPv{version} network (allowed: an IPv{version} CIDR)")
        return network
    return check


def _family_ip(version: int) -> Any:
    def check(value: Any) -> IfAddress:
        try:
            address = _ip(value)
        except ValueError:
            raise ValueError(f"'{value}' is not an IPv{version} address (allowed: an IPv{version} address)") from None
        if address.version != version:
            raise ValueError(f"'{value}' is not an IPv{version} address (allowed: an IPv{version} address)")
        return address
    return check


Name = Annotated[str, AfterValidator(_name), Field(description="A name: lower-case letters, digits and '-'.")]
Network4 = Annotated[ipaddress.IPv4Network, BeforeValidator(_family_network(4)), Field(description="IPv4 CIDR.")]
Network6 = Annotated[ipaddress.IPv6Network, BeforeValidator(_family_network(6)), Field(description="IPv6 CIDR.")]
IP4 = Annotated[ipaddress.IPv4Address, BeforeValidator(_family_ip(4)), Field(description="IPv4 address.")]
IP6 = Annotated[ipaddress.IPv6Address, BeforeValidator(_family_ip(6)), Field(description="IPv6 address.")]


def _key_file(value: Any) -> str:
    text = str(value)
    if not text.startswith("/") or "/../" in f"{text}/" or "\0" in text:
        raise ValueError(f"'{text}' is not an absolute path without '..' (allowed: such as /etc/netx/wg.key)")
    return text


KeyFile = Annotated[str, BeforeValidator(_key_file), Field(description="Absolute path of a 0600 key file.")]


def _address_pattern(value: Any) -> str:
    text = str(value)
    if not re.fullmatch(r"[a-z][a-z0-9]*\.\S+", text):
        raise ValueError(f"'{text}' is not a resource address or pattern (allowed: KIND.NAME, '*' and '?' as "
                         "wildcards, such as policy.web-1 or ipcache.*)")
    return text


AddressPattern = Annotated[str, BeforeValidator(_address_pattern),
                           Field(description="A resource address as netx plan shows it; '*' and '?' match any text.")]
