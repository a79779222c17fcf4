"""The host forms adoption writes (neighbours, route encap, WireGuard devices, endpoints, unmanaged objects):
their positioned errors, what they compile to, and adoption of live resources into them (no kernel)."""

from __future__ import annotations

import pytest

from netplanx.engine.plan import Plan
from netplanx.engine.planner import make_plan
from netplanx.engine.resource import Dependency, Resource, ResourceType
from netplanx.features.routing.routes import route_resource
from netplanx.features.wireguard.keys import encode, public_key
from netplanx.features.wireguard.types import device_resource
from netplanx.spec.adopt import adopt
from netplanx.spec.compile import compile_spec, compile_unmanaged
from netplanx.spec.validate import parse_spec
from tests.specs import problems_of, spec

SOURCE = "host.yaml"
KEY_A, KEY_B = encode(public_key(b"\1" * 32)), encode(public_key(b"\2" * 32))
WIREGUARD = spec(f"""\
    apiVersion: netx/v1
    wireguardDevices:
      - name: wg0
        publicKey: "{KEY_A}"
        privateKeyFile: /etc/netx/wg0.key
        peers:
          - {{name: peer-b, publicKey: "{KEY_B}", endpoint: "192.0.2.12:51820", allowedIPs: [10.9.2.0/24]}}
    routes:
      - {{to: 10.9.0.0/16, dev: wg0}}
    """)

CASES = [
    pytest.param("""\
        apiVersion: netx/v1
        neighbours:
          - {dev: vx0, ip: 10.0.0.9, lladdr: "02:00:00:00:00:09"}
        """, 3, 11, "dev 'vx0' is not declared (allowed: an interface in interfaces: none declared)",
        id="neighbour-on-undeclared-dev"),
    pytest.param("""\
        apiVersion: netx/v1
        interfaces:
          - {name: br0, type: bridge}
        neighbours:
          - {dev: br0, ip: 10.0.0.9, lladdr: "02:00:00:00:00:09"}
          - {dev: br0, ip: 10.0.0.9, lladdr: "02:00:00:00:00:0a"}
        """, 6, 20, "neighbour 10.0.0.9 on 'br0' is declared twice (first at neighbours[0]",
        id="neighbour-twice"),
    pytest.param("""\
        apiVersion: netx/v1
        interfaces:
          - {name: br0, type: bridge}
        neighbours:
          - {dev: br0, ip: 10.0.0.9, lladdr: "03:00:00:00:00:09"}
        """, 5, 38, "is a multicast MAC address", id="neighbour-multicast-mac"),
    pytest.param("""\
        apiVersion: netx/v1
        routes:
          - {to: 10.244.2.0/24, via: 10.244.2.0, encap: {id: 42, dst: 192.0.2.12}}
        """, 3, 5, "encap needs dev, the tunnel device", id="encap-without-dev"),
    pytest.param("""\
        apiVersion: netx/v1
        interfaces:
          - {name: vx0, type: vxlan, external: true}
        routes:
          - {to: 10.244.2.0/24, dev: vx0, encap: {id: 42, dst: "2001:db8::12"}}
        """, 5, 56, "is not an IPv4 address", id="encap-ipv6-remote"),
    pytest.param("""\
        apiVersion: netx/v1
        endpoints:
          - {name: web, address: 10.0.0.11}
          - {name: db, netns: web, address: 10.0.0.12}
        """, 4, 23, "namespace 'web' is already endpoint web's (allowed: one namespace an endpoint)",
        id="host-endpoints-sharing-a-namespace"),
    pytest.param("""\
        apiVersion: netx/v1
        cluster:
          name: demo
          podCIDR: 10.244.0.0/16
          nodes:
            - {name: node-a, address: 192.0.2.11, podCIDR: 10.244.1.0/24}
        endpoints:
          - {name: web, node: node-a, netns: elsewhere, address: 10.244.1.11}
        """, 8, 38, "netns is derived from the cluster (allowed: omit it", id="cluster-endpoint-with-netns"),
    pytest.param("""\
        apiVersion: netx/v1
        cluster:
          name: demo
          podCIDR: 10.244.0.0/16
          nodes:
            - {name: node-a, address: 192.0.2.11, podCIDR: 10.244.1.0/24}
        endpoints:
          - {name: web, address: 10.244.1.11}
        """, 8, 5, "an endpoint needs node (allowed: node-a)", id="cluster-endpoint-without-node"),
    pytest.param("""\
        apiVersion: netx/v1
        endpoints:
          - {name: web, address: 10.0.0.11}
        interfaces:
          - {name: ep-web, type: bridge}
        """, 5, 12, "interface 'ep-web' is created and configured by endpoints[0] (allowed: another name)",
        id="interface-named-like-a-host-endpoint-veth"),
    pytest.param(WIREGUARD.replace("routes:", "interfaces:\n  - {name: wg0, type: bridge}\nroutes:"), 9, 12,
                 "interface 'wg0' is created and configured by wireguardDevices[0] (allowed: another name)",
                 id="interface-named-like-a-wireguard-device"),
    pytest.param(WIREGUARD.replace(f'peer-b, publicKey: "{KEY_B}"', f'peer-b, publicKey: "{KEY_A}"'), 7, 35,
                 "peer peer-b has the device's own key (allowed: a key pair for each peer)", id="peer-with-own-key"),
    pytest.param(WIREGUARD.replace("allowedIPs: [10.9.2.0/24]}", "allowedIPs: [10.9.2.0/24]}\n      - {name: peer-c, "
                                   f'publicKey: "{KEY_A[:-2]}0=", allowedIPs: [10.9.3.0/24, 10.9.2.0/24]}}'), 8, 109,
                 "10.9.2.0/24 is already allowed for peer peer-b (allowed: each network to one peer)",
                 id="one-network-allowed-for-two-peers"),
    pytest.param(WIREGUARD.replace('endpoint: "192.0.2.12:51820"', 'endpoint: "2001:db8::12:51820"'), 7, 93,
                 "is not an endpoint (allowed: ADDRESS:PORT", id="peer-endpoint-ipv6-without-brackets"),
    pytest.param("""\
        apiVersion: netx/v1
        unmanaged: [policy.*, "*"]
        """, 2, 23, "'*' is not a resource address or pattern (allowed: KIND.NAME", id="unmanaged-without-kind"),
]


@pytest.mark.parametrize(("text", "line", "col", "message"), CASES)
def test_host_form_error_is_positioned(text: str, line: int, col: int, message: str) -> None:
    problems = problems_of(spec(text), SOURCE)
    assert problems[0].startswith(f"{SOURCE}:{line}:{col}: "), problems
    assert message in problems[0], problems[0]
    assert "allowed: " in problems[0] or "duplicate key" in problems[0]


def compiled(text: str, node: str | None = None) -> dict[str, Resource]:
    parsed, _document = parse_spec(spec(text), SOURCE)
    return {r.address: r for r in compile_spec(parsed, node)}


def test_link_local_addresses_may_repeat_on_several_interfaces() -> None:
    """An endpoint veth's gateway (169.254.1.1, fe80::1) is on every one of them: scoped to each link."""
    resources = compiled("""\
        apiVersion: netx/v1
        interfaces:
          - {name: v0, type: veth, peer: {name: p0, netns: a}, addresses: [169.254.1.1/32, "fe80::1/64"]}
          - {name: v1, type: veth, peer: {name: p1, netns: b}, addresses: [169.254.1.1/32, "fe80::1/64"]}
        """)
    assert {"address.v0.169.254.1.1/32", "address.v1.169.254.1.1/32", "address.v1.fe80::1/64"} <= set(resources)


def test_neighbours_and_encap_compile() -> None:
    resources = compiled("""\
        apiVersion: netx/v1
        interfaces:
          - {name: vx0, type: vxlan, external: true}
        routes:
          - {to: 10.244.2.0/24, via: 10.244.2.0, dev: vx0, onlink: true, encap: {id: 42, dst: 192.0.2.12}}
          - {to: 10.244.3.0/24, dev: vx0, encap: {id: 7}}
        neighbours:
          - {dev: vx0, ip: "fd00::9", lladdr: "02:AB:00:00:00:09"}
        """)
    assert resources["route.main.10.244.2.0/24"].attrs["encap"] == {"type": "ip", "id": 42, "dst": "192.0.2.12"}
    assert resources["route.main.10.244.3.0/24"].attrs["encap"] == {"type": "ip", "id": 7, "dst": None}
    assert resources["neigh.vx0.fd00::9"].attrs == {"dev": "vx0", "ip": "fd00::9", "lladdr": "02:ab:00:00:00:09"}


def test_a_host_wireguard_device_compiles_and_provides_its_link() -> None:
    resources = compiled(WIREGUARD)
    device = resources["wireguard.wg0"]
    assert device.attrs["mtu"] == 1420 and device.attrs["port"] == 51820
    assert device.meta["private_key_file"] == "/etc/netx/wg0.key" and device.meta["provides"] == ["link.wg0"]
    peer = resources["wgpeer.wg0.peer-b"]
    assert peer.attrs["endpoint"] == "192.0.2.12:51820" and peer.attrs["allowed_ips"] == ["10.9.2.0/24"]


def test_host_endpoints_compile_to_what_a_node_makes_for_them() -> None:
    resources = compiled("""\
        apiVersion: netx/v1
        endpoints:
          - {name: web, netns: c1-web, address: 10.0.0.11, address6: "fd00::b", mtu: 1450, labels: {app: web}}
          - {name: db, address: 10.0.0.12}
        """)
    assert resources["netns.c1-web"].meta["purpose"] == "endpoint web"
    assert resources["link.ep-web"].attrs["peer"] == {"name": "eth0", "netns": "c1-web"}
    assert resources["link.ep-web"].attrs["mtu"] == 1450 and resources["link.ep-db"].attrs["mtu"] == 1500
    assert {"address.ep-web.169.254.1.1/32", "address.ep-web.fe80::1/64", "address.ep-db.169.254.1.1/32",
            "route.main.10.0.0.11/32", "route.main.fd00::b/128", "route.main.10.0.0.12/32"} <= set(resources)
    assert "address.ep-db.fe80::1/64" not in resources
    assert resources["endpoint.web"].attrs == {"netns": "c1-web", "interface": "eth0", "mtu": 1450,
                                               "addresses": ["10.0.0.11/32", "fd00::b/128"],
                                               "gateways": ["169.254.1.1", "fe80::1"]}


def test_unmanaged_patterns_travel_with_the_spec() -> None:
    parsed, _document = parse_spec(spec("""\
        apiVersion: netx/v1
        unmanaged: [policy.*, ipcache.10.0.0.0/8]
        """), SOURCE)
    assert compile_unmanaged(parsed) == ["policy.*", "ipcache.10.0.0.0/8"]


class Kind(ResourceType):
    def __init__(self, kind: str, *depends: str):
        self.kind = kind
        self.depends = depends

    def dependencies(self, resource: Resource) -> list[Dependency]:
        return [Dependency(d) for d in self.depends]


TYPES = {"link": Kind("link"), "route": Kind("route", "link.wg0"), "wireguard": Kind("wireguard"),
         "policy": Kind("policy")}


def plan(desired: list[Resource], live: list[Resource], keep: list[str] = ()) -> Plan:
    return make_plan(TYPES, desired, live, keep=keep)


def test_objects_the_spec_leaves_unmanaged_are_listed_not_deleted() -> None:
    live = [Resource("policy", "policy.web", {"entries": 3}), Resource("policy", "policy.db", {"entries": 1})]
    assert {c.action for c in plan([], live).changes} == {"delete"}
    kept = plan([], live, keep=["policy.w*"])
    assert [c.address for c in kept.changes] == ["policy.db"] and kept.unmanaged == ["policy.web"]
    assert plan([], live, keep=["policy.*"]).empty


def test_a_resource_that_provides_a_link_comes_before_what_is_on_it() -> None:
    """A route through a WireGuard device is created after it and deleted before it."""
    device = device_resource("wg0", port=51820, public=KEY_A, private_key_file="/k", mtu=1420)
    route = route_resource(table=254, to="10.9.0.0/16", metric=None, kind="unicast", via=None, dev="wg0",
                           src=None, scope=None, onlink=False, nexthops=[])
    created = plan([route, device], [])
    assert [s.change.address for s in created.steps] == ["wireguard.wg0", "route.main.10.9.0.0/16"]
    removed = plan([], [route, device])
    assert [s.change.address for s in removed.steps] == ["route.main.10.9.0.0/16", "wireguard.wg0"]


def test_adoption_writes_what_it_cannot_describe_as_unmanaged() -> None:
    """Objects netx made that no host section describes are listed (by kind when all of a kind are);
    objects netx did not make are left to be shown as unmanaged by the plan."""
    live = [Resource("policy", "policy.web", {}), Resource("ipcache", "ipcache.10.0.0.1/32", {}),
            Resource("ipcache", "ipcache.10.0.0.2/32", {}, owned=False), Resource("policydp", "policydp.policy", {})]
    adoption = adopt(live)
    assert adoption.spec["unmanaged"] == ["policy.*", "policydp.*", "ipcache.10.0.0.1/32"]
    assert any(n.startswith("policies are not adopted") for n in adoption.notes)
    assert list(adoption.spec) == ["apiVersion", "unmanaged"]
