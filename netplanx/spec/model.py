"""The spec model, assembled from the features' sections: one source of truth for validation and for
schema/netx.schema.json.

Every field carries a description; validators raise ``ValueError`` texts shaped as
``what is wrong (allowed: ...)`` so that the loader can prefix them with a file position.
"""

from __future__ import annotations

import functools
from typing import Any, Literal, Union

from pydantic import Field, create_model

from netplanx.document.fields import AddressPattern, SpecModel
from netplanx.engine.feature import Postcondition, Section
from netplanx.registry import FEATURES

API_VERSION = "netx/v1"
NODE_SECTIONS: tuple[Section, ...] = tuple(s for f in FEATURES for s in f.node_sections())
POSTCONDITIONS: tuple[Postcondition, ...] = tuple(p for f in FEATURES for p in f.postconditions())


def _spec_model() -> Any:
    fields: dict[str, Any] = {
        "api_version": (Literal["netx/v1"], Field(alias="apiVersion", description="Spec format version.")),
    }
    for feature in FEATURES:
        for section in feature.sections(NODE_SECTIONS):
            fields[section.name] = (section.annotation, section.field)
    checks = Union[tuple(p.model for p in POSTCONDITIONS)]  # noqa: UP007
    fields["checks"] = (list[checks], Field(  # type: ignore[valid-type]
        default_factory=list, description="Post-conditions: after apply they must hold, or the change is undone."))
    fields["unmanaged"] = (list[AddressPattern], Field(
        default_factory=list, description="Live objects netx made that this spec leaves as they are (addresses or "
                                          "patterns): plans list them as unmanaged instead of deleting them."))
    return create_model("Spec", __base__=SpecModel, __module__=__name__,
                        __doc__="A node's desired networking, or a cluster's (each node derives its own).", **fields)


Spec = _spec_model()


@functools.cache
def model_for(keys: frozenset[str]) -> Any:
    """The Spec model that validates only the top-level keys in ``keys`` (as the file writes them): models are
    built on first use (``defer_build``), and a spec of routes need not build the validators of services,
    policies or BGP (~10 ms). Every other section keeps its field, unvalidated, with its default: it is
    absent from the document, so an unknown key is still refused with every allowed key named."""
    fields: dict[str, Any] = {}
    for name, info in Spec.model_fields.items():
        if name == "api_version" or (info.alias or name) in keys:
            fields[name] = (info.rebuild_annotation(), info)
        else:
            fields[name] = (Any, Field(default=info.default, default_factory=info.default_factory, alias=info.alias))
    return create_model("Spec", __base__=SpecModel, __module__=__name__, __doc__=Spec.__doc__, **fields)
