"""Checks that need the whole spec, gathered from every feature.

A cluster spec is checked as each node sees it (the common parts plus the node's own): a problem in a
common part is reported once, and each problem points where its value is written in the file.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from netplanx.document.problems import Problem
from netplanx.engine.feature import NodeView
from netplanx.registry import FEATURES
from netplanx.spec.model import NODE_SECTIONS

FIRST_AT = re.compile(r"first at (\w+)\[(\d+)\]")


def node_views(spec: Any) -> list[NodeView]:
    """The spec as each host sees it: one view per cluster node, or the spec itself for one host; each
    with the links the features' sections create on that host."""
    views = next((v for f in FEATURES if (v := f.node_views(spec, NODE_SECTIONS)) is not None), [NodeView(spec)])
    return [_with_links(view) for view in views]


def _with_links(view: NodeView) -> NodeView:
    made = {name: by for feature in FEATURES for name, by in feature.links(view).items()}
    if not made:
        return view
    return replace(view, links={**dict.fromkeys(made, ()), **view.links}, managed={**made, **view.managed})


def semantic_problems(spec: Any) -> list[Problem]:
    """Every cross-object problem of the spec, each with the data path it points at."""
    found: dict[tuple[tuple[str | int, ...], str], Problem] = {}
    for view in node_views(spec):
        for feature in FEATURES:
            for problem in feature.check_view(view):
                mapped = Problem(view.where(problem.path), _in_file(view, problem.text), problem.at_key)
                found.setdefault((mapped.path, mapped.text), mapped)
    return [*found.values(), *(p for feature in FEATURES for p in feature.check(spec))]


def _in_file(view: NodeView, text: str) -> str:
    """Rewrite ``first at routes[3]`` (an index in a node's view) to where that entry is written."""
    def place(match: re.Match[str]) -> str:
        path = view.where((match.group(1), int(match.group(2))))
        return "first at " + ".".join(f"{p}" if isinstance(p, str) else f"[{p}]" for p in path).replace(".[", "[")
    return FIRST_AT.sub(place, text)
