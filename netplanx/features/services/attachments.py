"""Where the load balancer runs: ``datapath.DEVICE.HOOK`` is one program attached to one device.

Hooks: ``ingress`` (tc, lb_ingress: DNAT of client traffic), ``egress`` (tc, lb_egress: reverse NAT of
replies), at the priorities of the tc chaining contract (``system/bpf/tc.py``), and ``xdp`` (lb_xdp, DNAT
before the stack). tc filters are named ``netx-lb-HOOK``; a new program version replaces them in place
(tc replace / XDP replace in the same mode), which drops nothing.

Modes (the ``mode`` attribute, and the plan's words): ``tc`` on the tc hooks; ``xdp-native`` or
``xdp-generic`` on the xdp hook. The spec's ``xdp`` is made concrete when the plan is made (native where
the device's driver has native XDP, else generic), so that a create and an update decide alike; only for
a device that does not exist yet is it decided, by the same rule, when attached. Changing the mode of an
attached program detaches it first (the kernel runs one XDP mode at a time): the plan says so.
"""

from __future__ import annotations

import ctypes
import fcntl
import socket
from collections.abc import Mapping, Sequence
from typing import ClassVar

from netplanx.engine.resource import Dependency, Query, Resource
from netplanx.features.base import StepwiseType
from netplanx.features.services.lbmaps import LB, Addr, Masq, addr_in, addr_out
from netplanx.features.services.services import PROGRAM_ADDRESS, LbContext
from netplanx.system.bpf.loader import device_exists, ifindex, pinned_versions, xdp_attach, xdp_detach, xdp_state
from netplanx.system.bpf.tc import priority
from netplanx.system.context import KernelContext

RECORD = "lb-datapath"  # device -> hooks netx attached (to find them after they leave the spec)
TC_HOOKS = {hook: (f"lb_{hook}", priority(hook, "lb")) for hook in ("ingress", "egress")}
XDP_PROGRAM = "lb_xdp"
FILTER_PREFIX = "netx-lb-"
NATIVE_XDP_DRIVERS = frozenset({"veth", "virtio_net", "tun", "mlx4_en", "mlx5_core", "i40e", "ice", "ixgbe",
                                "ixgbevf", "igb", "igc", "bnxt_en", "ena", "nfp", "qede", "sfc", "thunder-nicvf",
                                "netsec", "stmmac", "fec", "tsnep", "dpaa2-eth", "hv_netvsc", "xen-netfront"})


AUTO = "xdp"  # desired only: native where the driver has it, else generic (made concrete at plan time)
XDP_MODES = ("xdp-native", "xdp-generic")
MODE_CHANGE = ("traffic loss: the XDP program is detached, then attached in the new mode; packets arriving in "
               "between are not balanced")


def attachment_resource(device: str, hook: str, *, version: str, mode: str = "tc", masquerade: str | None = None,
                        masquerade6: str | None = None, owned: bool = True) -> Resource:
    """``mode``: tc; for the xdp hook xdp-native, xdp-generic or (desired) xdp.
    ``masquerade``, ``masquerade6``: the source address new IPv4 and IPv6 flows entering here get (ingress and
    xdp hooks; unset: that family is not masqueraded)."""
    program = XDP_PROGRAM if hook == "xdp" else TC_HOOKS[hook][0]
    return Resource("datapath", f"datapath.{device}.{hook}",
                    {"device": device, "hook": hook, "program": program, "version": version, "mode": mode,
                     "masquerade": masquerade, "masquerade6": masquerade6}, owned)


def _address(value: Addr) -> str | None:
    return addr_out(value) if any(bytes(value)) else None


def driver(device: str) -> str:
    """The device's driver name (ETHTOOL_GDRVINFO), "" when it cannot be asked."""
    info = ctypes.create_string_buffer(196)
    ctypes.c_uint32.from_buffer(info).value = 0x3  # ETHTOOL_GDRVINFO
    request = ctypes.create_string_buffer(40)
    request.raw = device.encode()[:15].ljust(16, b"\0") + ctypes.c_void_p(ctypes.addressof(info)).value.to_bytes(
        8, "little") + b"\0" * 16
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            fcntl.ioctl(sock.fileno(), 0x8946, request)  # SIOCETHTOOL
        except OSError:
            return ""
    return info.raw[4:36].split(b"\0")[0].decode()


def xdp_mode(device: str) -> str:
    """What ``xdp`` means on this device: xdp-native where its driver has native XDP, else xdp-generic."""
    return "xdp-native" if driver(device) in NATIVE_XDP_DRIVERS else "xdp-generic"


class AttachmentType(StepwiseType):
    kind = "datapath"
    disruption_of: ClassVar[Mapping[str, str]] = {
        "create": "hitless", "update": "hitless (in-place program replace)", "replace": "brief loss of balancing",
        "delete": "service traffic through this device is no longer balanced"}

    def __init__(self, ctx: KernelContext, lb: LbContext):
        super().__init__(ctx)
        self.lb = lb

    def dependencies(self, resource: Resource) -> list[Dependency]:
        return [Dependency(f"link.{resource.attrs['device']}"), Dependency(PROGRAM_ADDRESS)]

    def resolve(self, desired: Sequence[Resource]) -> list[Resource]:
        """``xdp`` made concrete for the devices that exist (the others are decided when attached)."""
        return [res._replace(attrs={**res.attrs, "mode": xdp_mode(res.attrs["device"])})
                if res.attrs["mode"] == AUTO and device_exists(res.attrs["device"]) else res for res in desired]

    def differs(self, desired: Resource, live: Resource) -> list[str]:
        changed = super().differs(desired, live)
        if "mode" in changed and desired.attrs["mode"] == AUTO and live.attrs["mode"] in XDP_MODES:
            changed.remove("mode")  # the device did not exist at plan time: the attach decided by the same rule
        return changed

    def disruption(self, action: str, changed: Sequence[str], before: Resource | None,
                   after: Resource | None) -> str:
        """The label; on the xdp hook with the mode (and the device's driver)."""
        if after is None or after.attrs["hook"] != "xdp":
            return self.disruption_of.get(action, "hitless")
        device, mode = after.attrs["device"], after.attrs["mode"]
        name = driver(device) if device_exists(device) else ""
        where = f" (driver {name})" if name else ""
        if action == "update" and before is not None and "mode" in changed:
            return f"{MODE_CHANGE}; mode {before.attrs['mode']} -> {mode}{where}"
        if mode == AUTO:
            return (f"{self.disruption_of.get(action, 'hitless')}; mode xdp-native if the driver has it, else "
                    "xdp-generic (decided when attached: the device does not exist yet)")
        return f"{self.disruption_of.get(action, 'hitless')}; mode {mode}{where}"

    def read(self, query: Query) -> list[Resource]:
        recorded: dict[str, list[str]] = self.ctx.store.load(RECORD)
        wanted: dict[str, set[str]] = {}
        for res in query.of_kind(self.kind):
            wanted.setdefault(res.attrs["device"], set()).add(res.attrs["hook"])
        for device, hooks in recorded.items():
            wanted.setdefault(device, set()).update(hooks)
        if not wanted:
            return []
        versions = pinned_versions(LB, self.lb.scope)
        maps = self.lb.maps()
        found = []
        for device in sorted(wanted):
            if not device_exists(device):
                continue
            entry = maps.masq.lookup(ifindex(device)) if maps is not None else None
            masquerade = {"masquerade": _address(entry.v4), "masquerade6": _address(entry.v6)} if entry else {}
            for hook in ("ingress", "egress"):
                for attached in self.ctx.tc.filters(ifindex(device), hook):
                    if attached.prio == TC_HOOKS[hook][1] and attached.name.startswith(FILTER_PREFIX):
                        version = versions.get(attached.prog_id, ("unknown", ""))[0]
                        found.append(attachment_resource(device, hook, version=version,
                                                         **(masquerade if hook == "ingress" else {})))
            state = xdp_state(device)
            if state is not None and (state.prog_id in versions or "xdp" in recorded.get(device, ())):
                version = versions.get(state.prog_id, ("unknown", ""))[0]
                found.append(attachment_resource(device, "xdp", version=version, mode=f"xdp-{state.mode}",
                                                 **masquerade))
        return found

    def _record(self, device: str, hook: str, present: bool) -> None:
        recorded = self.ctx.store.load(RECORD)
        hooks = set(recorded.get(device, ()))
        hooks = hooks | {hook} if present else hooks - {hook}
        if hooks:
            recorded[device] = sorted(hooks)
        else:
            recorded.pop(device, None)
        self.ctx.store.save(RECORD, recorded)

    def _create(self, res: Resource) -> None:
        """Attach the program of the version ``res`` names (in a rollback, the previous one, still pinned)."""
        device, hook = res.attrs["device"], res.attrs["hook"]
        loaded = self.lb.program(res.attrs["version"])
        self._record(device, hook, True)
        if hook != "egress":
            self._masquerade(device, res.attrs.get("masquerade"), res.attrs.get("masquerade6"))
        if hook == "xdp":
            mode = xdp_mode(device) if res.attrs["mode"] == AUTO else res.attrs["mode"]
            xdp_attach(device, loaded.fd(XDP_PROGRAM), mode.removeprefix("xdp-"))
        else:
            program, prio = TC_HOOKS[hook]
            self.ctx.tc.attach(ifindex(device), hook, loaded.fd(program), prio=prio, name=f"{FILTER_PREFIX}{hook}")
        self.ctx.count_write()

    def _update(self, before: Resource, after: Resource) -> None:
        self._create(after)

    def _masquerade(self, device: str, v4: str | None, v6: str | None) -> None:
        maps = self.lb.maps()
        if maps is None:
            return
        if v4 is None and v6 is None:
            maps.masq.delete(ifindex(device))
        else:
            maps.masq.update(ifindex(device), Masq(addr_in(v4), addr_in(v6)))

    def _delete(self, res: Resource) -> None:
        device, hook = res.attrs["device"], res.attrs["hook"]
        if device_exists(device):
            if hook != "egress":
                self._masquerade(device, None, None)
            if hook == "xdp":
                xdp_detach(device)
            else:
                self.ctx.tc.detach(ifindex(device), hook, TC_HOOKS[hook][1])
        self._record(device, hook, False)
        self.ctx.count_write()
