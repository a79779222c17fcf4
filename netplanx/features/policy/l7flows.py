"""L7 flows: the proxy logs every request (``haproxy.LOG_FORMAT``) to a unix datagram socket that ``netx flows``
binds in the node's namespace while it watches; each line becomes a Flow with the method, path, status and
the rule that decided (``POLICY/SECTION[N]/http[M]``, or ``default-deny``: a 403 from the proxy).

HAProxy sends each line once; while no reader is bound, lines are dropped (and counted in ``show info``).
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path
from typing import Any

from netplanx.errors import NetxError
from netplanx.features.policy.haproxy import DENY, LOG_TAG
from netplanx.features.policy.maps import address_bytes

RECEIVE_BUFFER = 4 << 20
FIELDS = 14  # LOG_FORMAT's words, the quoted path last


class L7Log:
    """The bound log socket (only one reader at a time: a second would not get the lines)."""

    def __init__(self, path: Path):
        self.path = path
        if path.exists():
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as probe:
                try:
                    probe.connect(str(path))
                except OSError:
                    path.unlink(missing_ok=True)  # left by a reader that is gone
                else:
                    raise NetxError(f"another netx flows is reading the L7 proxy's log ({path})")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        self.sock.bind(str(path))
        os.chmod(path, 0o600)
        self.sock.setblocking(False)

    def fileno(self) -> int:
        return self.sock.fileno()

    def lines(self) -> list[str]:
        """Every line received so far (does not wait)."""
        found = []
        while True:
            try:
                found.append(self.sock.recv(65536).decode(errors="replace").rstrip("\n"))
            except BlockingIOError:
                return found

    def close(self) -> None:
        self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _number(text: str) -> int:
    return int(text) if text.isdigit() else 0


def l7_fields(line: str, namer: Any) -> dict[str, Any] | None:
    """The fields of a Flow for one log line (None for a line that is not a request's: HAProxy's notices);
    ``namer`` names addresses and identities."""
    words = line.split(" ", FIELDS - 1)
    if len(words) != FIELDS or words[0] != LOG_TAG:
        return None
    (_tag, stamp, client, client_port, target, target_port, src_id, dst_id, status, size, method, egress, ingress,
     path) = words
    rule, direction = (egress, "egress") if egress != "-" else (ingress, "ingress") if ingress != "-" else ("-", "")
    source = namer.address(_raw(client), _number(src_id))
    destination = namer.address(_raw(target), _number(dst_id))
    return dict(time=_number(stamp) / 1000, source=source, source_address=client, source_port=_number(client_port),
                destination=destination, destination_address=target, destination_port=_number(target_port),
                protocol="http", verdict="dropped" if rule == DENY else "allowed",
                endpoint=source if direction == "egress" else destination if direction else "",
                direction=direction, rule=rule, policy=rule.split("/", 1)[0],
                length=_number(size), method=method, path=path.strip('"'), status=_number(status))


def _raw(address: str) -> bytes:
    try:
        return address_bytes(address)
    except OSError:
        return b""
