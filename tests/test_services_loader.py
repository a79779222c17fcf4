"""The eBPF groundwork the providers share: loading with versioned pins, re-opening without compiling,
tc and XDP attachments, pinned-map access (checked against bpftool and tc, independent observers)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

from netplanx.features.services.lbmaps import LB, SOCKET_HOOKS, BackendVal, LbMaps, addr_in, port_in, u32
from netplanx.system import netns as namespaces
from netplanx.system.bpf.cgroup import ATTACH_TYPES, attached, link_create, open_cgroup
from netplanx.system.bpf.loader import (
    PIN_ROOT,
    TC_ACT_UNSPEC,
    ifindex,
    load,
    pinned_versions,
    xdp_attach,
    xdp_detach,
    xdp_state,
)
from netplanx.system.bpf.maps import BPF_F_INNER_MAP, BpfMap, create_map, map_info
from netplanx.system.bpf.tc import TcHooks
from netplanx.system.bpf.testrun import prog_test_run
from netplanx.system.netlink import NetlinkSocket
from netplanx.system.pyroute import IPRoute


@pytest.fixture
def scope(netns: str) -> Iterator[str]:
    subprocess.run(["ip", "-n", netns, "link", "add", "lb0", "type", "veth", "peer", "name", "lb1"], check=True)
    subprocess.run(["ip", "-n", netns, "link", "set", "lb0", "up"], check=True)
    subprocess.run(["ip", "-n", netns, "link", "set", "lb1", "up"], check=True)
    try:
        with namespaces.inside(netns):
            yield netns
    finally:
        shutil.rmtree(PIN_ROOT / netns, ignore_errors=True)


def test_programs_are_pinned_per_version_and_reopened_without_compiling(scope):
    first = load(LB, scope)
    assert (PIN_ROOT / scope / "lb" / f"prog-{LB.version}" / "lb_ingress").exists()
    assert (PIN_ROOT / scope / "lb" / f"maps-{LB.map_version}" / "lb_svc").exists()
    again = load(LB, scope)  # the same programs, from their pins
    assert again.ids == first.ids
    assert {function for _, function in pinned_versions(LB, scope).values()} == set(LB.programs)
    packet = b"\x02" * 12 + b"\x08\x00" + bytes(40)
    assert prog_test_run(again.fd("lb_ingress"), packet).retval == TC_ACT_UNSPEC
    first.close()
    again.close()


def test_a_recorded_version_loads_its_socket_programs_for_their_hooks(scope, cgroup, tmp_path, monkeypatch):
    """A version compiled in one scope is recorded with each program's cgroup hook; another scope loads the
    record without bcc (the kernel refuses a socket-address program loaded without its hook) and its socket
    programs attach to a cgroup."""
    records = tmp_path / "records"
    load(LB, scope, records).close()
    record = json.loads((records / f"lb-{LB.version}.json").read_text())
    assert {function: record["programs"][function]["attach"] for function in SOCKET_HOOKS.values()} == {
        function: ATTACH_TYPES[hook] for hook, function in SOCKET_HOOKS.items()}
    other = f"{scope}-record"
    monkeypatch.setitem(sys.modules, "bcc", None)  # compiling would fail: the record is all there is
    try:
        loaded = load(LB, other, records)
        with open_cgroup(cgroup) as cgroup_fd:
            links = [link_create(loaded.fd(function), cgroup_fd, hook) for hook, function in SOCKET_HOOKS.items()]
            assert all(attached(cgroup_fd, hook) == [loaded.ids[f]] for hook, f in SOCKET_HOOKS.items())
            for link in links:
                os.close(link)  # unpinned: the links go with their last descriptor
        loaded.close()
    finally:
        shutil.rmtree(PIN_ROOT / other, ignore_errors=True)


def test_pinned_maps_are_read_and_written_as_ctypes_structures(scope):
    load(LB, scope).close()
    maps = LbMaps.open(scope)
    maps.be.update_batch([(i, BackendVal(addr_in("10.0.0.1"), port_in(8000 + i), 1, 7)) for i in range(1, 101)])
    maps.be.update(200, BackendVal(addr_in("10.0.0.2"), port_in(80), 2, 7))
    assert maps.be.lookup(200).weight == 2 and maps.be.lookup(999) is None
    assert len(maps.be.items(batch=16)) == 101  # several batches
    assert maps.be.delete(200) and not maps.be.delete(200)
    dumped = json.loads(subprocess.run(["bpftool", "-j", "map", "dump", "pinned",
                                        str(LbMaps.folder(scope) / "lb_be")], capture_output=True, text=True,
                                       check=True).stdout)
    assert len(dumped) == 100
    with BpfMap(create_map("array", 4, 4, 251, BPF_F_INNER_MAP, "row"), u32, u32) as row:
        row.update_batch([(slot, slot % 3) for slot in range(251)])
        maps.maglev.update(7, row.fd)
        assert map_info(row.fd).max_entries == 251
    with BpfMap.by_id(maps.maglev.lookup(7), u32, u32) as inner:
        assert [value for _, value in inner.items()][:4] == [0, 1, 2, 0]
    per_cpu = maps.stats.lookup(5)
    assert isinstance(per_cpu, list) and all(s.packets == 0 for s in per_cpu)
    maps.close()


def test_tc_filters_are_attached_replaced_in_place_and_detached(scope):
    loaded = load(LB, scope)
    writer = IPRoute()
    hooks, index = TcHooks(NetlinkSocket(), lambda: writer), ifindex("lb0")
    hooks.attach(index, "ingress", loaded.fd("lb_ingress"), prio=100, name="netx-lb-ingress")
    hooks.attach(index, "ingress", loaded.fd("lb_egress"), prio=100, name="netx-lb-ingress")  # replace
    hooks.attach(index, "egress", loaded.fd("lb_egress"), prio=200, name="netx-lb-egress")
    found = hooks.filters(index, "ingress")
    assert [(f.prio, f.name, f.prog_id) for f in found] == [(100, "netx-lb-ingress", loaded.ids["lb_egress"])]
    shown = subprocess.run(["tc", "filter", "show", "dev", "lb0", "egress"], capture_output=True, text=True).stdout
    assert "netx-lb-egress" in shown and "pref 200" in shown
    hooks.detach(index, "ingress", 100)
    assert hooks.filters(index, "ingress") == []
    loaded.close()


def test_xdp_is_attached_in_the_mode_asked(scope):
    loaded = load(LB, scope)
    xdp_attach("lb0", loaded.fd("lb_xdp"), "native")
    assert xdp_state("lb0").mode == "native"
    xdp_attach("lb0", loaded.fd("lb_xdp"), "generic")  # another mode: detached, then attached
    state = xdp_state("lb0")
    assert state.mode == "generic" and state.prog_id == loaded.ids["lb_xdp"]
    xdp_detach("lb0")
    assert xdp_state("lb0") is None
    loaded.close()
