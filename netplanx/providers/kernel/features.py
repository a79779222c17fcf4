"""What this kernel can do, probed where it cannot hurt: in a private network namespace of a child.

A kernel without a link type (geneve, wireguard, dummy, vlan when not built and no modules) answers
EOPNOTSUPP to RTM_NEWLINK. The probe forks, unshares a fresh network namespace, tries to create the
link there and reports the errno; nothing is ever created where the operator works.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

CLONE_NEWNET = 0x40000000
PROBES = {
    "veth": {"peer": {"ifname": "netx-probe-p"}},
    "bridge": {},
    "macvlan": None,  # needs a parent: made from a probe veth below
    "vxlan": {"vxlan_id": 1, "vxlan_port": 4789},
    "geneve": {"geneve_id": 1, "geneve_remote": "192.0.2.1"},
    "wireguard": {},
}


@functools.cache
def link_kind_error(kind: str) -> str | None:
    """None when the kernel can create links of ``kind``, else why not (in words)."""
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked child
        os.close(read)
        code = _probe_in_child(kind)
        os.write(write, str(code).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        answer = pipe.read()
    os.waitpid(child, 0)
    code = int(answer or errno.EIO)
    if code == 0:
        return None
    if code == errno.EOPNOTSUPP:
        return f"kernel lacks {kind} (creating a {kind} link fails: not supported; the kernel has no " \
               f"CONFIG_{kind.upper()} and cannot load it)"
    return f"cannot create a {kind} link on this kernel ({os.strerror(code)})"


def _probe_in_child(kind: str) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        return ctypes.get_errno()
    try:
        with IPRoute() as ipr:
            if kind == "macvlan":
                ipr.link("add", ifname="netx-probe", kind="veth", peer={"ifname": "netx-probe-p"})
                parent = ipr.link_lookup(ifname="netx-probe")[0]
                ipr.link("add", ifname="netx-probe-m", kind="macvlan", link=parent)
            else:
                ipr.link("add", ifname="netx-probe", kind=kind, **(PROBES.get(kind) or {}))
    except NetlinkError as exc:
        return exc.code
    except Exception:
        return errno.EIO
    return 0
