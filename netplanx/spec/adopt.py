"""Adoption: write live resources back as a spec (the inverse of compile), every feature its sections."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from netplanx.engine.resource import Resource
from netplanx.registry import FEATURES


def adoption_options() -> dict[str, Any]:
    """What the readers must read for adoption besides what they read anyway (the router sysctls)."""
    return {key: value for feature in FEATURES for key, value in feature.adoption_options().items()}


def live_to_spec(resources: Sequence[Resource]) -> dict[str, Any]:
    """A spec dict that, planned against the same namespace, gives no changes."""
    by_kind: dict[str, list[Resource]] = {}
    for res in resources:
        by_kind.setdefault(res.kind, []).append(res)
    spec: dict[str, Any] = {"apiVersion": "netx/v1"}
    for feature in FEATURES:
        feature.adopt(by_kind, spec)
    return spec


def dump_spec(spec: dict[str, Any], schema_path: str) -> str:
    """YAML text of a spec, starting with the yaml-language-server modeline.

    Short lists and mappings go in flow style; text with ':' (IPv6) is quoted, since a plain ':' inside
    ``[ ]`` or ``{ }`` does not read back.
    """
    yaml = YAML()
    yaml.default_flow_style = None
    yaml.width = 120
    out = io.StringIO()
    out.write(f"# yaml-language-server: $schema={schema_path}\n")
    quoted = _quote_colons(spec)
    if "sysctl" in quoted:
        quoted["sysctl"] = CommentedMap(quoted["sysctl"])
        quoted["sysctl"].fa.set_block_style()
    yaml.dump(quoted, out)
    return out.getvalue()


def _quote_colons(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _quote_colons(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_quote_colons(v) for v in value]
    if isinstance(value, str) and ":" in value:
        return DoubleQuotedScalarString(value)
    return value
