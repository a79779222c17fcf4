"""Waves: which nodes of a cluster take a commit when, decided by every node on its own from the same facts.

The waves are the nodes of the commit's own ``cluster.nodes``, in that order, cut into batches as
Ansible's ``serial`` cuts hosts (``[1, "25%", "100%"]``: a canary, a quarter of the fleet, the rest; a
percentage is of all the nodes, rounded down but at least 1; the last size repeats). Every node computes
the same waves from the signed commit itself, so no node can be talked out of its place, and a node knows
exactly whose reports it waits for (a node that never reported is waited for, not forgotten).

A node of wave k applies commit C only when every node of the waves before it reports C healthy (applied,
verified, its post-conditions held), and no node at all reports C failed: the first failure stops the
rollout, and the failed node has rolled itself back.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

HEALTHY, FAILED = "healthy", "failed"
MAX_REPORT = 4096


@dataclass(frozen=True)
class Report:
    """What one node published about the last commit it tried."""

    commit: str
    result: str  # healthy | failed
    at: float = field(default_factory=time.time)
    message: str = ""

    def encode(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def decode(cls, data: bytes) -> Report | None:
        """A report read from the status location; None when it is not one (nothing is trusted blindly:
        a malformed report counts as no report)."""
        try:
            raw = json.loads(data)
            report = cls(str(raw["commit"]), str(raw["result"]), float(raw["at"]), str(raw.get("message", "")))
        except (ValueError, KeyError, TypeError):
            return None
        return report if report.result in (HEALTHY, FAILED) else None


def batch_sizes(total: int, serial: Sequence[int | str]) -> list[int]:
    """The size of each wave for ``total`` nodes, as Ansible's ``serial``."""
    sizes: list[int] = []
    steps = list(serial)
    while sum(sizes) < total:
        step = steps.pop(0) if len(steps) > 1 else steps[0]
        size = max(int(int(step[:-1]) / 100 * total), 1) if isinstance(step, str) else int(step)
        sizes.append(min(size, total - sum(sizes)))
    return sizes


def waves(nodes: Sequence[str], serial: Sequence[int | str]) -> list[list[str]]:
    cut, start = [], 0
    for size in batch_sizes(len(nodes), serial):
        cut.append(list(nodes[start:start + size]))
        start += size
    return cut


@dataclass(frozen=True)
class Gate:
    """Whether this node may apply the commit now: its wave, whom it waits for, who failed."""

    wave: int  # 0-based
    waves: int
    waiting: list[str]
    failed: dict[str, Report]

    @property
    def open(self) -> bool:
        return not self.waiting and not self.failed

    def reason(self, commit: str) -> str:
        if self.failed:
            who = ", ".join(f"{n} ({r.message or 'failed'})" for n, r in sorted(self.failed.items()))
            return f"the rollout of {commit[:12]} is stopped: {who}"
        return (f"wave {self.wave + 1} of {self.waves} waits for {commit[:12]} to be healthy on "
                f"{', '.join(self.waiting)}")


def decide(nodes: Sequence[str], serial: Sequence[int | str], node: str, commit: str,
           reports: Mapping[str, Report]) -> Gate:
    """The gate of ``node`` (one of ``nodes``) for ``commit``, given every node's last report."""
    cut = waves(nodes, serial)
    mine = next(index for index, wave in enumerate(cut) if node in wave)
    failed = {n: r for n, r in reports.items() if n in nodes and n != node and r.commit == commit
              and r.result == FAILED}
    waiting = [n for wave in cut[:mine] for n in wave
               if not (n in reports and reports[n].commit == commit and reports[n].result == HEALTHY)]
    return Gate(mine, len(cut), waiting, failed)
