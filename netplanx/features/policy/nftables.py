"""The nftables table of the L7 redirect (``table inet netx-l7``), written and read with the nft command.

Prerouting, in this order: packets the tc programs marked for the proxy go to its transparent listener
(tproxy finds an established connection's socket; a SYN, also one that meets a TIME_WAIT socket of an
earlier proxied connection, goes to the listener: with the ``socket`` match first, such SYNs went to the
TIME_WAIT socket and were retransmitted); then replies to the proxy's transparent upstream connections
(their destination is a client's address) are marked so that policy routing delivers them locally. Output:
the packets of the proxy's own transparent sockets get the mark the policy datapath recognises.
"""

from __future__ import annotations

import shutil
import subprocess

from netplanx.engine.feature import DoctorCheck
from netplanx.errors import ProviderError
from netplanx.features.policy.haproxy import LISTENER_PORT

FAMILY, TABLE = "inet", "netx-l7"
MARK_MASK, MARK_TO_PROXY, MARK_FROM_PROXY = 0xF00, 0x200, 0x300  # bpf/policy.h
# the chains and rules as `nft list table` prints them (what a read compares)
CHAINS = {
    "prerouting": ("type filter hook prerouting priority mangle; policy accept;", [
        f"meta l4proto tcp meta mark & 0x{MARK_MASK:08x} == 0x{MARK_TO_PROXY:08x} tproxy to :{LISTENER_PORT} accept",
        f"meta l4proto tcp socket transparent 1 meta mark set meta mark & 0xfffff2ff | 0x{MARK_TO_PROXY:08x} accept",
    ]),
    "output": ("type route hook output priority mangle; policy accept;", [
        f"meta l4proto tcp socket transparent 1 meta mark set meta mark & 0xfffff3ff | 0x{MARK_FROM_PROXY:08x}",
    ]),
}


def nft_check() -> DoctorCheck:
    found = shutil.which("nft")
    return DoctorCheck("nftables (L7 policy redirect)", found is not None, found or "the nft command is missing",
                       "apt-get install nftables")


def wanted_rules() -> list[str]:
    """``CHAIN: LINE`` for every line of every chain, in order."""
    return [f"{chain}: {line}" for chain, (head, rules) in CHAINS.items() for line in (head, *rules)]


def _nft(*args: str, script: str | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["nft", *args], input=script, capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise ProviderError("the nft command is missing (fix: apt-get install nftables)") from None


def read_rules() -> list[str] | None:
    """The table's chains and rules (``CHAIN: LINE``), None when there is no such table."""
    done = _nft("list", "table", FAMILY, TABLE)
    if done.returncode != 0:
        return None
    found, chain = [], ""
    for raw in done.stdout.splitlines():
        line = raw.strip()
        if line.startswith("chain "):
            chain = line.split()[1]
        elif line and line != "}" and not line.startswith("table ") and chain:
            found.append(f"{chain}: {line}")
    return found


def write() -> None:
    """Create the table, or replace it whole in one transaction (a hand-edited one is written again)."""
    chains = "\n".join(f"    chain {name} {{\n        {head}\n" + "".join(f"        {r}\n" for r in rules) + "    }"
                       for name, (head, rules) in CHAINS.items())
    script = f"table {FAMILY} {TABLE}\ndelete table {FAMILY} {TABLE}\ntable {FAMILY} {TABLE} {{\n{chains}\n}}\n"
    done = _nft("-f", "-", script=script)
    if done.returncode != 0:
        raise ProviderError(f"nft could not write table {FAMILY} {TABLE}: {done.stderr.strip()}")


def delete() -> None:
    if read_rules() is None:
        return
    done = _nft("delete", "table", FAMILY, TABLE)
    if done.returncode != 0:
        raise ProviderError(f"nft could not delete table {FAMILY} {TABLE}: {done.stderr.strip()}")
