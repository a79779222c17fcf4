"""The ``interfaces`` section: a list of links, each of one kind (the ``type`` key picks its model)."""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Field

from netplanx.features.interfaces.kinds.catalog import KINDS

Interface: Any = Annotated[Union[tuple(kind.model() for kind in KINDS.values())],  # noqa: UP007
                           Field(discriminator="type")]
