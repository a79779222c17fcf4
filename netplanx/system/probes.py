"""What this kernel can do, probed where it cannot hurt: in a private network namespace of a child.

A kernel without a link type (geneve, wireguard, dummy, vlan when not built and no modules) answers
EOPNOTSUPP to RTM_NEWLINK. The probe forks, unshares a fresh network namespace, tries to create the
link there and reports the errno; nothing is ever created where the operator works.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Callable
from typing import Any

CLONE_NEWNET = 0x40000000
RTM_NEWLINK = 16
Attempt = Callable[[Any], None]  # given netx's pyroute2 IPRoute
_answers: dict[str, str | None] = {}


def link_kind_error(kind: str, settings: dict[str, Any] | None = None, attempt: Attempt | None = None,
                    request: bytes | None = None) -> str | None:
    """None when the kernel can create links of ``kind``, else why not (in words). ``settings`` are the
    link's pyroute2 arguments for the probe; ``attempt`` replaces the plain link creation (a kind that
    needs a lower device makes one first); ``request``: an RTM_NEWLINK body sent on the lean socket instead
    (no pyroute2 import). Answers are kept for the process's life."""
    if kind not in _answers:
        _answers[kind] = _describe(kind, _probe(request if request is not None else
                                                attempt or _plain(kind, settings or {})))
    return _answers[kind]


def _plain(kind: str, settings: dict[str, Any]) -> Attempt:
    def attempt(ipr: Any) -> None:
        ipr.link("add", ifname="netx-probe", kind=kind, **settings)
    return attempt


def _describe(kind: str, code: int) -> str | None:
    if code == 0:
        return None
    if code == errno.EOPNOTSUPP:
        return f"kernel lacks {kind} (creating a {kind} link fails: not supported; the kernel has no " \
               f"CONFIG_{kind.upper()} and cannot load it)"
    return f"cannot create a {kind} link on this kernel ({os.strerror(code)})"


def _probe(attempt: Attempt | bytes) -> int:
    """The errno of ``attempt`` (or of an RTM_NEWLINK request) run in a fresh network namespace of a forked
    child (0: it worked)."""
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked child
        os.close(read)
        os.write(write, str(_in_child(attempt)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        answer = pipe.read()
    os.waitpid(child, 0)
    return int(answer or errno.EIO)


def _in_child(attempt: Attempt | bytes) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        return ctypes.get_errno()
    if isinstance(attempt, bytes):
        from netplanx.system.netlink import NLM_F_CREATE, NLM_F_EXCL, NetlinkSocket

        nl = NetlinkSocket()
        try:
            error = nl.transact([(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, attempt)])[0]
        finally:
            nl.close()
        return error.errno if error is not None else 0
    from netplanx.system.pyroute import IPRoute

    try:
        ipr = IPRoute()
        try:
            attempt(ipr)
        finally:
            ipr.close()
    except OSError as exc:
        return exc.errno or errno.EIO
    except Exception:
        return errno.EIO
    return 0
