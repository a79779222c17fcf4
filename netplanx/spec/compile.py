"""Compile a validated spec into the desired resources of one host: every feature's part, in order."""

from __future__ import annotations

from typing import Any

from netplanx.engine.resource import Resource
from netplanx.errors import PlanError
from netplanx.registry import FEATURES
from netplanx.spec.semantic import node_views


def compile_spec(spec: Any, node_name: str | None = None) -> list[Resource]:
    """Every resource the spec asks of this host (``node_name``: which node of a cluster spec)."""
    views = node_views(spec)
    if views[0].node is None:
        view = views[0]
    else:
        view = next((v for v in views if v.node.name == node_name), None)
        if view is None:
            raise PlanError([f"node '{node_name}' is not in cluster {spec.cluster.name} (nodes: "
                             f"{', '.join(v.node.name for v in views)}); choose one with --node, or, to retire "
                             "this node, apply a spec without anything on it: echo 'apiVersion: netx/v1' | netx "
                             "apply - --auto-approve"])
    return _one_each([(feature.name, res) for feature in FEATURES for res in feature.compile(view)])


def _one_each(made: list[tuple[str, Resource]]) -> list[Resource]:
    """One resource an address. Two features asking the same of one object is one resource; a feature that
    folds the spec's own value into its own (``meta['merges']``: the masquerade ports joined with the
    reserved ports the sysctl section lists) replaces the earlier one; any other disagreement is an error
    (a plan would otherwise keep one of the two values without a word)."""
    chosen: dict[str, tuple[str, Resource]] = {}
    conflicts: list[str] = []
    for feature, res in made:
        earlier = chosen.get(res.address)
        if earlier is None or res.meta.get("merges"):
            chosen[res.address] = (feature, res)
        elif earlier[1].attrs != res.attrs:
            first, before = earlier
            differing = [key for key in {**before.attrs, **res.attrs} if before.attrs.get(key) != res.attrs.get(key)]
            conflicts.append(f"{res.address} is asked twice with different values: {_shown(before, differing)} by "
                             f"the {first} section and {_shown(res, differing)} by the {feature} section (allowed: "
                             "one value: leave it out of one of them, or give both the same)")
    if conflicts:
        raise PlanError(conflicts)
    return [res for _feature, res in chosen.values()]


def _shown(res: Resource, keys: list[str]) -> str:
    return ", ".join(f"{key}={res.attrs.get(key)!r}" for key in keys)


def compile_checks(spec: Any) -> list[dict[str, Any]]:
    """The post-conditions as plain data (they travel with the compiled resources)."""
    return [check.to_check() for check in spec.checks]


def compile_unmanaged(spec: Any) -> list[str]:
    """The address patterns of the live objects the spec leaves alone (they travel with the resources)."""
    return list(spec.unmanaged)
