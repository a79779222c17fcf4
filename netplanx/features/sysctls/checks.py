"""Checks of a host's sysctls: a per-interface key must name a link of the host."""

from __future__ import annotations

import re
from collections.abc import Iterator

from netplanx.document.problems import Problem
from netplanx.engine.feature import NodeView
from netplanx.features.interfaces.checks import declared_links
from netplanx.features.interfaces.kinds.base import names_text

PER_INTERFACE_SYSCTL = re.compile(r"net\.(ipv4|ipv6)\.(conf|neigh)\.([^.]+)\..+")


def sysctl_problems(view: NodeView) -> Iterator[Problem]:
    declared = declared_links(view)
    for key in view.spec.sysctl:
        match = PER_INTERFACE_SYSCTL.fullmatch(key)
        if match and match.group(3) not in ("all", "default") and match.group(3) not in declared:
            yield Problem(("sysctl", key), f"sysctl {key} names interface '{match.group(3)}' which is not "
                          f"declared (allowed: all, default, or {names_text(declared)})", at_key=True)
