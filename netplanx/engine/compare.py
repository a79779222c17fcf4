"""The one loop that holds expected states against the live state: after an apply (is every change
there?) and before applying a saved plan (is every before-state still what the plan saw?)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal, NamedTuple

from netplanx.engine.resource import Resource, ResourceType


class Mismatch(NamedTuple):
    """``address`` is ``missing``, ``present`` though it should not be, or ``different`` (in ``attrs``)."""

    address: str
    problem: Literal["missing", "present", "different"]
    attrs: tuple[str, ...] = ()


def mismatches(types: Mapping[str, ResourceType], expected: Iterable[tuple[str, Resource | None]],
               live: Mapping[str, Resource], exact: bool) -> list[Mismatch]:
    """Where the live state differs from ``expected`` (address -> the state it should have, None: absent).

    ``exact``: every attribute and the owner must be as expected, and any live object counts as present
    (a saved plan's before-states); otherwise only the attributes the expected state pins, and only an
    object netx owns counts as left behind (verification after an apply)."""
    found = []
    for address, want in expected:
        have = live.get(address)
        if want is None:
            if have is not None and (exact or have.owned):
                found.append(Mismatch(address, "present"))
        elif have is None:
            found.append(Mismatch(address, "missing"))
        elif exact:
            if have.fingerprint() != want.fingerprint():
                found.append(Mismatch(address, "different"))
        elif want.attrs == have.attrs:
            continue  # what every kind's ``differs`` finds: nothing (the common case, at C speed)
        elif differing := types[want.kind].differs(want, have):
            found.append(Mismatch(address, "different", tuple(differing)))
    return found
