"""Two drivers, one model: kernel WireGuard through generic netlink, wireguard-go through its UAPI socket.

Both read a device into a DeviceState and apply a DeviceConfig/PeerConfig; the resource types above them
do not know which one runs.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from netplanx.errors import ProviderError
from netplanx.features.wireguard.keys import decode, encode
from netplanx.files import write_atomically
from netplanx.system.inotify import FolderWatch
from netplanx.system.polling import growing_pauses
from netplanx.system.processes import command_line, terminate

SOCKET_ROOT = Path("/run/netx/wireguard")
ACCEPT_TIMEOUT = 5.0  # seconds for a started wireguard-go to accept on its socket


@dataclass
class PeerState:
    public_key: str
    endpoint: str | None = None
    allowed_ips: list[str] = field(default_factory=list)
    keepalive: int = 0
    latest_handshake: int = 0
    rx_bytes: int = 0
    tx_bytes: int = 0


@dataclass
class DeviceState:
    listen_port: int
    private_key: bytes | None
    peers: list[PeerState]


class Driver(Protocol):
    name: str

    def exists(self, device: str) -> bool: ...
    def start(self, device: str) -> None: ...
    def stop(self, device: str) -> None: ...
    def get(self, device: str) -> DeviceState: ...
    def configure(self, device: str, private_key: bytes, listen_port: int) -> None: ...
    def set_peer(self, device: str, peer: PeerState) -> None: ...
    def remove_peer(self, device: str, public_key: str) -> None: ...


# --- wireguard-go (UAPI text protocol) ---------------------------------------------------------------

def uapi_set_device(private_key: bytes, listen_port: int) -> str:
    return f"set=1\nprivate_key={private_key.hex()}\nlisten_port={listen_port}\n\n"


def uapi_set_peer(peer: PeerState) -> str:
    lines = ["set=1", f"public_key={decode(peer.public_key).hex()}", "replace_allowed_ips=true"]
    if peer.endpoint:
        lines.append(f"endpoint={peer.endpoint}")
    lines.append(f"persistent_keepalive_interval={peer.keepalive}")
    lines += [f"allowed_ip={ip}" for ip in peer.allowed_ips]
    return "\n".join(lines) + "\n\n"


def uapi_remove_peer(public_key: str) -> str:
    return f"set=1\npublic_key={decode(public_key).hex()}\nremove=true\n\n"


def uapi_parse(text: str) -> DeviceState:
    """The answer to ``get=1``; raises ProviderError on a non-zero errno."""
    state = DeviceState(0, None, [])
    peer: PeerState | None = None
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key == "errno" and value != "0":
            raise ProviderError(f"wireguard-go answered errno={value}")
        if key == "private_key":
            state.private_key = bytes.fromhex(value)
        elif key == "listen_port":
            state.listen_port = int(value)
        elif key == "public_key":
            peer = PeerState(encode(bytes.fromhex(value)))
            state.peers.append(peer)
        elif peer is not None:
            if key == "endpoint":
                peer.endpoint = value
            elif key == "allowed_ip":
                peer.allowed_ips.append(value)
            elif key == "persistent_keepalive_interval":
                peer.keepalive = int(value)
            elif key == "last_handshake_time_sec":
                peer.latest_handshake = int(value)
            elif key == "rx_bytes":
                peer.rx_bytes = int(value)
            elif key == "tx_bytes":
                peer.tx_bytes = int(value)
    return state


class UserspaceDriver:
    """wireguard-go, one process per device, its UAPI socket in netx's own folder for this namespace.

    wireguard-go always puts its socket in /var/run/wireguard, whatever the network namespace: netx
    starts it (in the foreground, so its PID is known) in a private mount namespace where that folder is
    SOCKET_ROOT/NETNS, so devices of the same name in two namespaces never collide. The PID is kept in a
    file next to the socket and checked against /proc before it is signalled.
    """

    name = "wireguard-go"

    def __init__(self, scope: str):
        self.folder = SOCKET_ROOT / scope

    def _socket(self, device: str) -> Path:
        return self.folder / f"{device}.sock"

    def _pidfile(self, device: str) -> Path:
        return self.folder / f"{device}.pid"

    def exists(self, device: str) -> bool:
        return self._socket(device).exists()

    def _talk(self, device: str, request: str) -> str:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(5)
                sock.connect(str(self._socket(device)))
                sock.sendall(request.encode())
                answer = b""
                while not answer.endswith(b"\n\n"):
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    answer += chunk
        except OSError as exc:
            raise ProviderError(f"wireguard-go for {device} does not answer ({exc.strerror})") from None
        return answer.decode()

    def start(self, device: str) -> None:
        os.makedirs(self.folder, mode=0o700, exist_ok=True)
        script = 'mkdir -p /var/run/wireguard && mount --bind "$0" /var/run/wireguard && exec wireguard-go -f "$1"'
        with FolderWatch(self.folder) as watch:
            process = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
                                        str(self.folder), device], stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            exited = os.pidfd_open(process.pid)
            try:
                ready = watch.wait(lambda: self.exists(device), time.time() + 10, also=(exited,))
            finally:
                os.close(exited)
            if not ready:
                raise ProviderError(f"wireguard-go could not start {device} (exit status {process.poll()})")
        if not self.accepting(device, ACCEPT_TIMEOUT):
            raise ProviderError(f"wireguard-go for {device} made its socket but does not accept on it "
                                f"(exit status {process.poll()})")
        write_atomically(self._pidfile(device), f"{process.pid}\n")

    def accepting(self, device: str, within: float) -> bool:
        """Whether the daemon accepts connections on its socket within ``within`` seconds. wireguard-go binds the
        socket (the file appears) a moment before it listens; a connection in between is refused (a loaded CI
        run failed on it), and nothing signals the listen."""
        for _ in growing_pauses(within, 0.001, 0.05):
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                    sock.connect(str(self._socket(device)))
                return True
            except ConnectionRefusedError:
                pass
        return False

    def _pid(self, device: str) -> int | None:
        """The PID of the daemon serving ``device``, if the recorded process is still that daemon."""
        try:
            pid = int(self._pidfile(device).read_text())
        except (OSError, ValueError):
            return None
        command = command_line(pid)
        return pid if command and b"wireguard-go" in command[0] and device.encode() in command else None

    def stop(self, device: str) -> None:
        """Stop the daemon serving ``device`` (by its recorded PID) and wait until it is gone."""
        pid = self._pid(device)
        if pid is not None:
            terminate(pid, on_timeout=_still_running)
        self._socket(device).unlink(missing_ok=True)
        self._pidfile(device).unlink(missing_ok=True)
        with suppress(OSError):
            self.folder.rmdir()  # the last device of this namespace: leave nothing behind

    def get(self, device: str) -> DeviceState:
        return uapi_parse(self._talk(device, "get=1\n\n"))

    def _set(self, device: str, request: str) -> None:
        uapi_parse(self._talk(device, request))

    def configure(self, device: str, private_key: bytes, listen_port: int) -> None:
        self._set(device, uapi_set_device(private_key, listen_port))

    def set_peer(self, device: str, peer: PeerState) -> None:
        self._set(device, uapi_set_peer(peer))

    def remove_peer(self, device: str, public_key: str) -> None:
        self._set(device, uapi_remove_peer(public_key))


def _still_running(_pidfd: int) -> None:
    raise ProviderError("wireguard-go did not exit after SIGTERM")


# --- kernel WireGuard (generic netlink through pyroute2) -----------------------------------------------

def kernel_peer_arguments(peer: PeerState) -> dict[str, Any]:
    """pyroute2 WireGuard.set(peer=...) arguments for a peer."""
    arguments: dict[str, Any] = {"public_key": peer.public_key, "allowed_ips": list(peer.allowed_ips),
                                 "persistent_keepalive": peer.keepalive}
    if peer.endpoint:
        host, _, port = peer.endpoint.rpartition(":")
        arguments.update(endpoint_addr=host.strip("[]"), endpoint_port=int(port))
    return arguments


def _key_text(value: str | bytes) -> str:
    """A key as pyroute2 decodes it (base64, as bytes) in the base64 text of the model."""
    return value.decode() if isinstance(value, bytes) else value


def _address_text(value: str) -> str:
    """An allowed IP's address as text: pyroute2 decodes it as hex bytes ("0a:f4:02:00")."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return str(ipaddress.ip_address(bytes.fromhex(value.replace(":", ""))))


def kernel_parse(message: Any) -> DeviceState:
    """A pyroute2 WireGuard.info() message to the common model."""
    private = message.get_attr("WGDEVICE_A_PRIVATE_KEY")
    state = DeviceState(message.get_attr("WGDEVICE_A_LISTEN_PORT") or 0,
                        decode(_key_text(private)) if private else private, [])
    for peer in message.get_attr("WGDEVICE_A_PEERS") or []:
        endpoint = peer.get_attr("WGPEER_A_ENDPOINT") or {}
        host = endpoint.get("addr")
        allowed = [f"{_address_text(a.get_attr('WGALLOWEDIP_A_IPADDR'))}/{a.get_attr('WGALLOWEDIP_A_CIDR_MASK')}"
                   for a in peer.get_attr("WGPEER_A_ALLOWEDIPS") or []]
        handshake = peer.get_attr("WGPEER_A_LAST_HANDSHAKE_TIME") or {}
        state.peers.append(PeerState(
            public_key=_key_text(peer.get_attr("WGPEER_A_PUBLIC_KEY")),
            endpoint=(f"[{host}]" if ":" in host else host) + f":{endpoint['port']}" if host else None,
            allowed_ips=allowed, keepalive=peer.get_attr("WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL") or 0,
            latest_handshake=handshake.get("tv_sec", 0), rx_bytes=peer.get_attr("WGPEER_A_RX_BYTES") or 0,
            tx_bytes=peer.get_attr("WGPEER_A_TX_BYTES") or 0))
    return state


class KernelDriver:
    """The kernel module, where the kernel has it."""

    name = "kernel"

    def __init__(self, ipr: Any):
        from pyroute2 import WireGuard

        self.ipr = ipr
        self.wg = WireGuard()

    def exists(self, device: str) -> bool:
        return bool(self.ipr.link_lookup(ifname=device))

    def start(self, device: str) -> None:
        self.ipr.link("add", ifname=device, kind="wireguard")

    def stop(self, device: str) -> None:
        self.ipr.link("del", ifname=device)

    def get(self, device: str) -> DeviceState:
        return kernel_parse(self.wg.info(device)[0])

    def configure(self, device: str, private_key: bytes, listen_port: int) -> None:
        self.wg.set(device, private_key=encode(private_key), listen_port=listen_port)

    def set_peer(self, device: str, peer: PeerState) -> None:
        self.wg.set(device, peer=kernel_peer_arguments(peer))

    def remove_peer(self, device: str, public_key: str) -> None:
        self.wg.set(device, peer={"public_key": public_key, "remove": True})
