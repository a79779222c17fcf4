"""What ``netx bgp sync`` tells ``netx show``: a small record next to netx's other records (``bgp-sync``).

The sync writes it when its state changes: its PID and table, whether it follows gobgpd, and the learned
prefixes it holds back because a route netx does not own has their place (same table, destination and
metric). The sync is the only one that knows what it decided (its table, its metric, which route blocked
it), and it knows it without gobgpd: ``netx show`` reads the record instead of redoing the comparison. A
record whose PID no longer runs the sync says so.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from netplanx.system.processes import command_line
from netplanx.system.state import StateStore

RECORD = "bgp-sync"


class SyncRecord:
    """The record of the sync running in this process (written only when something in it changed)."""

    def __init__(self, store: StateStore, table: str):
        self.store = store
        self.table = table
        self.written: dict[str, Any] = {}

    def write(self, state: str, held: Mapping[str, str]) -> None:
        """``held``: held-back prefix -> what holds it back (its next hop and the foreign route)."""
        record = {"pid": os.getpid(), "table": self.table, "state": state, "held": dict(sorted(held.items()))}
        if record != self.written:
            self.store.save(RECORD, record)
            self.written = record


def sync_status(store: StateStore) -> dict[str, Any]:
    """The sync's state and held-back prefixes, for the status of bgp.global (empty: no sync ever ran)."""
    record = store.load(RECORD)
    if not record:
        return {}
    if not {b"bgp", b"sync"} <= set(command_line(record["pid"])):
        return {"sync": "not running"}
    status: dict[str, Any] = {"sync": record["state"]}
    if record["held"]:
        status["held_back"] = [f"{prefix} {why}" for prefix, why in record["held"].items()]
    return status
