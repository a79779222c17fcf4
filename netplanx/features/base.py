"""What the kernel's resource types have in common."""

from __future__ import annotations

import errno
from collections.abc import Callable, Sequence

from netplanx.engine.resource import Dependency, Resource, ResourceType
from netplanx.errors import NetxError
from netplanx.system.context import KernelContext
from netplanx.system.netlink import NetlinkError


class KernelType(ResourceType):
    """A resource type bound to the sockets of one namespace."""

    def __init__(self, ctx: KernelContext):
        self.ctx = ctx

    def _send(self, resources: Sequence[Resource],
              encode: Callable[[Resource], tuple[int, int, bytes]]) -> list[Exception | None]:
        """Encode one netlink request per resource (one that cannot be encoded fails alone) and send them
        batched on the lean socket; the outcome of each."""
        results: list[Exception | None] = [None] * len(resources)
        requests, slots = [], []
        for slot, resource in enumerate(resources):
            try:
                requests.append(encode(resource))
                slots.append(slot)
            except NetlinkError as exc:
                results[slot] = exc
        for slot, outcome in zip(slots, self.ctx.nl.transact(requests), strict=True):
            results[slot] = outcome
        return results


class StepwiseType(KernelType):
    """Resources written one at a time by ``_create``, ``_update`` and ``_delete``; an error of one of
    them becomes that resource's result instead of stopping the others."""

    def create(self, resources: Sequence[Resource]) -> list[Exception | None]:
        return [_guarded(self._create, r) for r in resources]

    def update(self, pairs: Sequence[tuple[Resource, Resource]]) -> list[Exception | None]:
        return [_guarded(self._update, before, after) for before, after in pairs]

    def delete(self, resources: Sequence[Resource]) -> list[Exception | None]:
        return [_guarded(self._delete, r) for r in resources]

    def _create(self, res: Resource) -> None:
        raise NotImplementedError

    def _update(self, before: Resource, after: Resource) -> None:
        raise NotImplementedError

    def _delete(self, res: Resource) -> None:
        raise NotImplementedError


def _guarded(operation: Callable[..., None], *resources: Resource) -> Exception | None:
    try:
        operation(*resources)
    except (NetlinkError, NetxError, OSError) as exc:
        return exc
    return None


GONE = (errno.ENODEV, errno.ESRCH, errno.ENOENT, errno.EADDRNOTAVAIL)  # what a delete of a missing object says


def gone_is_done(result: Exception | None) -> Exception | None:
    """A delete that finds nothing left to delete (its link went first, taking it along) has done its job;
    verification confirms the object is absent."""
    return None if isinstance(result, OSError) and result.errno in GONE else result


class OnLinkType(KernelType):
    """Objects that live on one link (``attrs['dev']``), written one pyroute2 request each."""

    def dependencies(self, resource: Resource) -> list[Dependency]:
        return [Dependency(f"link.{resource.attrs['dev']}")]

    def create(self, resources: Sequence[Resource]) -> list[Exception | None]:
        return [self._call("add", r) for r in resources]

    def update(self, pairs: Sequence[tuple[Resource, Resource]]) -> list[Exception | None]:
        return [self._call("replace", after) for _before, after in pairs]

    def delete(self, resources: Sequence[Resource]) -> list[Exception | None]:
        return [gone_is_done(self._call("del", r)) for r in resources]

    def _call(self, command: str, res: Resource) -> Exception | None:
        try:
            index = self.ctx.index_of(res.attrs["dev"])
            if index is None:
                raise NetlinkError(errno.ENODEV, f"No such device: {res.attrs['dev']}")
            self._request(command, res, index)
            self.ctx.count_write()
        except (NetlinkError, OSError) as exc:
            return exc
        return None

    def _request(self, command: str, res: Resource, index: int) -> None:
        """Send one add/replace/del request for ``res`` on the link with ``index``."""
        raise NotImplementedError
