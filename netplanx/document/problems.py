"""A problem found in a document, at a data path; the spec layer turns it into FILE:LINE:COL."""

from __future__ import annotations

from typing import NamedTuple


class Problem(NamedTuple):
    """``text`` about the value at ``path`` (at its mapping key rather than its value with ``at_key``)."""

    path: tuple[str | int, ...]
    text: str
    at_key: bool = False
