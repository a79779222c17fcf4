"""Post-conditions: what must hold after an apply for the change to be kept (else it is undone)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from netplanx.workflow import Session


def run_checks(session: Session, checks: Sequence[dict[str, Any]]) -> list[str]:
    """The checks that failed, each in words; run inside the namespace the session manages."""
    failed = []
    for check in checks:
        if check["type"] == "ping":
            done = subprocess.run(["ping", "-n", "-q", "-c", str(check["count"]), "-W", str(check["timeout"]),
                                   "-i", "0.2", check["address"]], capture_output=True, text=True)
            if done.returncode != 0:
                failed.append(f"ping {check['address']} got no answer ({check['count']} tries)")
        elif check["type"] == "wireguard-handshake":
            failed += _handshake(session, check["peer"], check["within"])
        elif check["type"] == "bgp-established":
            failed += _established(session, check["peer"], check["within"])
    return failed


def _established(session: Session, peer: str, within: int) -> list[str]:
    client = session.bgp.client()
    if client is None:
        return [f"BGP peer {peer}: this spec configures no BGP"]
    state = client.wait_established(peer, within)
    if state != "established":
        return [f"BGP peer {peer}: session {state}, not established within {within}s"]
    return []


def _handshake(session: Session, peer: str, within: int) -> list[str]:
    peers = [r for r in session.types["wgpeer"].read(()) if r.meta.get("node") == peer]
    if not peers:
        return [f"no WireGuard peer for node {peer}"]
    latest = max(r.meta["status"].get("latest_handshake", 0) for r in peers)
    age = time.time() - latest
    if not latest or age > within:
        return [f"WireGuard peer {peer}: latest handshake {'never' if not latest else f'{age:.0f}s ago'} "
                f"(allowed: within {within}s)"]
    return []
