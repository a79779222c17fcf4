"""Adoption of the policy datapath: not possible as ``policies``, and said so.

A node's maps hold the verdicts for its own endpoints only, by identity (a hash of labels); selectors, the
labels of endpoints on other nodes and rules that an earlier rule shadows leave no trace there. So no spec
written from one node compiles back to the same entries: the datapath is left to the cluster spec (the
adopted spec lists it as unmanaged, and plans leave it as it is).
"""

from __future__ import annotations

from netplanx.engine.feature import Adoption

KINDS = ("policydp", "ipcache", "policy", "l7proxy", "l7rule", "nftables", "l7hook")
NOTE = ("policies are not adopted: a node's policy maps hold verdicts by identity for its own endpoints only,\n"
        "not the selectors and rules that made them; its policy datapath is left as it is (under 'unmanaged')")


def adopt_policies(adoption: Adoption) -> None:
    if any(adoption.live(kind) for kind in KINDS):
        adoption.notes.append(NOTE)
