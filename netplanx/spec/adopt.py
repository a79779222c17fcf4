"""Adoption: write live resources back as a spec (the inverse of compile), every feature its sections.

The features adopt from the last in the registry to the first, so that higher-level forms (an endpoint, a
service) take their resources before the features below describe what is left. What netx made and no
section can describe goes to ``unmanaged``: the plan then lists it instead of deleting it.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from netplanx.engine.feature import Adoption, Applied
from netplanx.engine.resource import Resource
from netplanx.registry import FEATURES
from netplanx.spec.model import API_VERSION, Spec

LEFT_NOTE = ("netx made the objects under 'unmanaged' and no section of a spec for this host describes them:\n"
             "plans leave them as they are")


def adoption_options() -> dict[str, Any]:
    """What the readers must read for adoption besides what they read anyway (the router sysctls)."""
    return {key: value for feature in FEATURES for key, value in feature.adoption_options().items()}


def adopt(resources: Sequence[Resource], node: str = "", applied: Applied | None = None) -> Adoption:
    """Every feature's sections for the live ``resources``: planned against the same namespace, no changes."""
    adoption = Adoption(resources, node, applied)
    for feature in reversed(FEATURES):
        feature.adopt(adoption)
    left = [r for r in adoption.left() if r.owned]
    if left:
        adoption.spec["unmanaged"] = _patterns(left, resources)
        adoption.notes.append(LEFT_NOTE)
    order = [field.alias or name for name, field in Spec.model_fields.items()]
    adoption.spec = {"apiVersion": API_VERSION,
                     **{key: adoption.spec[key] for key in sorted(adoption.spec, key=order.index)}}
    return adoption


def live_to_spec(resources: Sequence[Resource]) -> dict[str, Any]:
    """A spec dict that, planned against the same namespace, gives no changes."""
    return adopt(resources).spec


def _patterns(left: Sequence[Resource], live: Sequence[Resource]) -> list[str]:
    """The addresses of ``left``, as ``KIND.*`` where every live object of a kind is among them."""
    addresses = {r.address for r in left}
    whole = {r.kind for r in left} - {r.kind for r in live if r.address not in addresses}
    return [f"{k}.*" for k in sorted(whole)] + sorted(r.address for r in left if r.kind not in whole)


def dump_spec(spec: dict[str, Any], schema_path: str, notes: Sequence[str] = ()) -> str:
    """YAML text of a spec, starting with the yaml-language-server modeline and the notes as comments.

    Short lists and mappings go in flow style; text with ':' (IPv6) is quoted, since a plain ':' inside
    ``[ ]`` or ``{ }`` does not read back.
    """
    yaml = YAML()
    yaml.default_flow_style = None
    yaml.width = 120
    out = io.StringIO()
    out.write(f"# yaml-language-server: $schema={schema_path}\n")
    for note in notes:
        out.writelines(f"# {line}\n" for line in note.splitlines())
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
