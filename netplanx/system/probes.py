"""What this kernel can do, probed where it cannot hurt: in a private network namespace of a child.

A kernel without a link type (geneve, wireguard, dummy, vlan when not built and no modules) answers
EOPNOTSUPP to RTM_NEWLINK of that kind, before it looks at any of the link's settings; a kernel that has it
(or loads its module on the request) creates the link or refuses the settings, which the probe leaves
out. The probe forks, unshares a fresh network namespace, asks for a link of every kind it is given over
the lean netlink socket, and reports each errno; nothing is ever created where the operator works. (No
pyroute2 here: making its socket costs more than the probe, seconds in an emulated machine.)
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
from collections.abc import Mapping

from netplanx.system.netlink import IFINFOMSG, NLM_F_CREATE, NLM_F_EXCL, NetlinkSocket, attr

CLONE_NEWNET = 0x40000000
RTM_NEWLINK = 16
IFLA_IFNAME, IFLA_LINKINFO, IFLA_INFO_KIND = 3, 18, 1
NOT_ALLOWED = (errno.EPERM, errno.EACCES)
_answers: dict[str, str | None] = {}


def link_kind_error(kind: str, config: str = "") -> str | None:
    """None when the kernel can create links of ``kind``, else why not (in words, naming the kernel option
    ``config``, by default CONFIG_ and the kind). Answers are kept for the process's life."""
    return link_kind_errors({kind: config})[kind]


def link_kind_errors(kinds: Mapping[str, str]) -> dict[str, str | None]:
    """link_kind_error for every kind of ``kinds`` (kind -> its kernel option, or ''), probed in one child."""
    unknown = [kind for kind in kinds if kind not in _answers]
    if unknown:
        for kind, code in zip(unknown, _probe(unknown), strict=True):
            _answers[kind] = _describe(kind, code, kinds[kind] or f"CONFIG_{kind.upper()}")
    return {kind: _answers[kind] for kind in kinds}


def _describe(kind: str, code: int, config: str) -> str | None:
    article = "an" if kind[0] in "aeiou" else "a"
    if code == errno.EOPNOTSUPP:
        return f"kernel lacks {kind} (creating {article} {kind} link fails: not supported; the kernel has no " \
               f"{config} and cannot load it)"
    if code in NOT_ALLOWED or code == errno.EIO:
        return f"cannot create {article} {kind} link on this kernel ({os.strerror(code)})"
    return None  # created, or the settings the probe leaves out refused: the kernel has the kind


def _probe(kinds: list[str]) -> list[int]:
    """The errno of creating a link of each kind in a fresh network namespace of a forked child (0: made)."""
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked child
        os.close(read)
        os.write(write, json.dumps(_in_child(kinds)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        answer = pipe.read()
    os.waitpid(child, 0)
    return json.loads(answer) if answer else [errno.EIO] * len(kinds)


def _in_child(kinds: list[str]) -> list[int]:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        return [ctypes.get_errno()] * len(kinds)
    nl = NetlinkSocket()
    requests = [(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, IFINFOMSG.pack(0, 0, 0, 0, 0)
                 + attr(IFLA_IFNAME, f"netx-probe{number}".encode() + b"\0")
                 + attr(IFLA_LINKINFO, attr(IFLA_INFO_KIND, kind.encode())))
                for number, kind in enumerate(kinds)]
    return [error.errno if error is not None else 0 for error in nl.transact(requests)]
