"""WireGuard between the nodes of a three-node lab, keys, and both drivers against one model."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from netplanx.features.wireguard import drivers
from netplanx.features.wireguard.keys import decode, encode, fingerprint, public_key, x25519
from netplanx.lab.cluster import Lab, lab_spec
from tests.conftest import IS_ROOT, ROOT, assert_adopts, fast_in_vm, ip_json
from tests.traffic import REKEY_WAIT, capture, ping, tcp_exchange

NODES = ["node-a", "node-b", "node-c"]
ENDPOINTS = {"web-a": "node-a", "web-b": "node-b", "db-c": "node-c"}
WEB_A, WEB_B, WEB_B6, DB_C = "10.244.1.11", "10.244.2.11", "fd00:244:0:2::b", "10.244.3.11"


class SecretWatch:
    """Every output netx produced in a test, checked for private key material at the end."""

    def __init__(self) -> None:
        self.outputs: list[str] = []
        self.secrets: list[bytes] = []
        self.publics: list[str] = []

    def add_keys(self, keys: dict[str, tuple[str, Path]]) -> None:
        for public, path in keys.values():
            self.secrets.append(decode(path.read_text()))
            self.publics.append(public)

    def check(self, state_dir: Path) -> None:
        texts = self.outputs + [p.read_bytes().decode(errors="replace") for p in state_dir.rglob("*") if p.is_file()]
        assert self.secrets
        for secret in self.secrets:
            for form in (encode(secret), secret.hex(), base64.b64encode(secret).decode().rstrip("=")):
                assert not any(form in text for text in texts), "private key material in netx's output or state"
        for public in self.publics:  # public keys are shown as fingerprints only
            assert not any(public in text for text in self.outputs), "a full public key in netx's output"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[Lab, SecretWatch]]:
    if not IS_ROOT:
        pytest.skip("needs root: creates network namespaces")
    made = fast_in_vm(Lab(f"lw{uuid.uuid4().hex[:6]}", list(NODES), tmp_path))
    watch = SecretWatch()
    original = made.netx

    def recorded(node: str, *args: str) -> subprocess.CompletedProcess[str]:
        done = original(node, *args)
        watch.outputs += [done.stdout, done.stderr]
        return done

    made.netx = recorded  # type: ignore[method-assign]
    try:
        yield made.up(), watch
    finally:
        made.down()
    watch.check(made.state_dir)


def encrypted(lab: Lab, keys: dict, mode: str = "tunnel", nodes: list[str] | None = None) -> str:
    endpoints = {e: n for e, n in ENDPOINTS.items() if n in (nodes or lab.nodes)}
    return lab_spec(lab.name, nodes or lab.nodes, mode, endpoints, keys=keys)


def actions(plan: dict) -> dict[str, str]:
    return {c["address"]: c["action"] for c in plan["changes"]}


@pytest.mark.parametrize("mode", ["tunnel", "native"])
def test_traffic_between_nodes_is_only_wireguard_on_the_underlay(lab, mode):
    lab, watch = lab
    keys = lab.keys()
    watch.add_keys(keys)
    first = lab.apply(encrypted(lab, keys, mode))
    assert {r["result"] for r in first.values()} == {"applied"}
    web_a = lab.endpoint_netns("web-a")
    with capture(lab.underlay, "ul0", "udp port 51820") as wireguard, \
            capture(lab.underlay, "ul0", "(ip and not udp port 51820) or "
                    "(ip6 and not udp port 51820 and not ip6 multicast and not icmp6)") as clear:
        assert ping(web_a, WEB_B) and ping(web_a, WEB_B6) and ping(web_a, DB_C)
        assert tcp_exchange(lab.endpoint_netns("web-b"), WEB_B, web_a).startswith("hello 10.244.1.11")
    assert wireguard, "no WireGuard packets on the underlay"
    assert clear == [], f"traffic in clear on the underlay: {clear[:3]}"
    assert not ip_json(lab.netns("node-a"), "link", "show", "netx-tunnel") if "netx-tunnel" in subprocess.run(
        ["ip", "-n", lab.netns("node-a"), "link"], capture_output=True, text=True).stdout else True
    second = lab.apply(encrypted(lab, keys, mode))
    assert {r["result"] for r in second.values()} == {"no-changes"}
    shown = json.loads(lab.netx("node-a", "show", "-o", "json").stdout)
    peers = [r for r in shown if r["kind"] == "wgpeer"]
    assert len(peers) == 2 and any(p["meta"]["status"]["latest_handshake"] > 0 for p in peers)
    assert all(p["attrs"]["key"].startswith("wg:") and "_public_key" not in p["meta"] for p in peers)
    assert any(p["meta"]["status"]["rx_bytes"] > 0 for p in peers)
    table = lab.netx("node-a", "show").stdout
    assert "latest_handshake=" in table and "rx_bytes=" in table
    adopted = assert_adopts(lab, "node-a")  # (a spec holds full public keys: not a recorded output)
    assert f"privateKeyFile: {keys['node-a'][1]}" in adopted and keys["node-b"][0] in adopted
    assert all(secret not in adopted for secret in (path.read_text().strip() for _public, path in keys.values()))


@pytest.mark.kernel("wireguard")
def test_the_encrypted_cluster_runs_on_the_kernel_driver(lab):
    """Where the kernel has WireGuard, netx drives it (not wireguard-go): the same cluster, the same checks."""
    test_traffic_between_nodes_is_only_wireguard_on_the_underlay(lab, "tunnel")
    made = lab[0]
    for node in NODES:
        kinds = [link.get("linkinfo", {}).get("info_kind") for link in ip_json(made.netns(node), "-d", "link", "show")]
        assert kinds.count("wireguard") == 1, kinds
        assert not list((drivers.SOCKET_ROOT / made.netns(node)).glob("*.sock")), "wireguard-go is running"


def test_removing_a_node_removes_its_peer_everywhere(lab):
    lab, watch = lab
    keys = lab.keys()
    watch.add_keys(keys)
    lab.apply(encrypted(lab, keys))
    without_c = encrypted(lab, keys, nodes=["node-a", "node-b"])
    for node in ("node-a", "node-b"):
        assert actions(lab.plan(without_c, node)) == {
            "wgpeer.netx-wg.node-c": "delete", "route.main.10.244.3.0/24": "delete",
            "route.main.fd00:244:0:3::/64": "delete"}
    lab.nodes = ["node-a", "node-b"]
    lab.apply(without_c)
    peers = [r["address"] for r in json.loads(lab.netx("node-a", "show", "-o", "json").stdout) if r["kind"] == "wgpeer"]
    assert peers == ["wgpeer.netx-wg.node-b"]
    assert ping(lab.endpoint_netns("web-a"), WEB_B)


def test_key_rotation_is_planned_and_re_establishes(lab):
    lab, watch = lab
    keys = lab.keys()
    watch.add_keys(keys)
    lab.apply(encrypted(lab, keys))
    assert ping(lab.endpoint_netns("web-a"), WEB_B)
    rotated = lab.keys(generation=2)
    watch.add_keys(rotated)
    plan = lab.plan(encrypted(lab, rotated), "node-a")
    changes = {c["address"]: c for c in plan["changes"]}
    assert set(changes) == {"wireguard.netx-wg", "wgpeer.netx-wg.node-b", "wgpeer.netx-wg.node-c"}
    device = changes["wireguard.netx-wg"]
    assert device["action"] == "update" and device["changed"] == ["key"]
    assert device["disruption"].startswith("traffic loss: key rotation; every other node drops this node's traffic")
    assert device["after"]["attrs"]["key"] == fingerprint(rotated["node-a"][0])
    human = lab.netx("node-a", "plan", str(lab.write(encrypted(lab, rotated), "rotated.yaml"))).stdout
    assert f'~ key: "{fingerprint(keys["node-a"][0])}" -> "{fingerprint(rotated["node-a"][0])}"' in human
    lab.apply(encrypted(lab, rotated))  # node by node: a handshake tried between two applies waits for its retry
    assert ping(lab.endpoint_netns("web-a"), WEB_B, within=REKEY_WAIT)
    assert ping(lab.endpoint_netns("db-c"), WEB_B6, within=REKEY_WAIT)


def test_one_node_rotating_its_key_says_what_traffic_waits_for(lab):
    """node-a rotates; on node-b the peer change is labelled with what it waits for, and it is true:
    after node-b applies, node-a and node-b reach each other only once node-a applies too."""
    lab, watch = lab
    keys = lab.keys()
    watch.add_keys(keys)
    lab.apply(encrypted(lab, keys))
    rotated = {**keys, "node-a": lab.keys(generation=2)["node-a"]}
    watch.add_keys(rotated)
    peer = {c["address"]: c for c in lab.plan(encrypted(lab, rotated), "node-b")["changes"]}["wgpeer.netx-wg.node-a"]
    assert peer["action"] == "update" and peer["changed"] == ["key"]
    assert peer["disruption"] == ("traffic loss: node-a rotated its key; traffic to node-a stops until node-a runs the "
                                  "new key (apply this spec on node-a too), then the session re-establishes")
    lab.apply(encrypted(lab, rotated), nodes=["node-b"])
    assert not ping(lab.endpoint_netns("web-b"), WEB_A)
    lab.apply(encrypted(lab, rotated), nodes=["node-a", "node-c"])
    # node-b's next handshake may be up to one retry away
    assert ping(lab.endpoint_netns("web-b"), WEB_A, within=REKEY_WAIT)
    assert ping(lab.endpoint_netns("db-c"), WEB_A, within=REKEY_WAIT)


def test_readable_key_file_is_refused_and_nothing_changes(lab):
    lab, watch = lab
    keys = lab.keys()
    watch.add_keys(keys)
    keys["node-a"][1].chmod(0o644)
    before = ip_json(lab.netns("node-a"), "link", "show")
    result = lab.netx("node-a", "apply", str(lab.write(encrypted(lab, keys))), "--auto-approve")
    assert result.returncode == 1
    assert "is readable by group or others (mode 0644); refusing it" in result.stderr
    assert "nothing was changed" in result.stderr
    assert ip_json(lab.netns("node-a"), "link", "show") == before
    link = keys["node-a"][1].with_suffix(".link")
    link.symlink_to(keys["node-b"][1])
    keys["node-a"] = (keys["node-a"][0], link)
    result = lab.netx("node-a", "plan", str(lab.write(encrypted(lab, keys))))
    assert result.returncode == 1 and "is a symbolic link" in result.stderr


def test_keygen_writes_a_private_file_and_prints_the_public_key(tmp_path):
    path = tmp_path / "node.key"
    made = subprocess.run([sys.executable, "-m", "netplanx", "keygen", str(path)], capture_output=True, text=True,
                          cwd=ROOT)
    assert made.returncode == 0 and oct(path.stat().st_mode & 0o777) == "0o600"
    assert made.stdout.strip() == encode(public_key(decode(path.read_text())))
    assert path.read_text().strip() not in made.stdout + made.stderr
    again = subprocess.run([sys.executable, "-m", "netplanx", "keygen", str(path)], capture_output=True, text=True,
                           cwd=ROOT)
    assert again.returncode == 1 and "use --force" in again.stderr
    wg = subprocess.run(["wg", "pubkey"], input=path.read_text(), capture_output=True, text=True)
    if wg.returncode == 0:  # wireguard-tools agrees with netx's X25519
        assert wg.stdout.strip() == made.stdout.strip()


def test_x25519_matches_rfc_7748():
    scalar = bytes.fromhex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")
    point = bytes.fromhex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")
    assert x25519(scalar, point).hex() == "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"


# --- both drivers, one resource model -------------------------------------------------------------------

PEER = drivers.PeerState(public_key=encode(bytes(range(32))), endpoint="192.0.2.12:51820",
                         allowed_ips=["10.244.2.0/24", "fd00:244:0:2::/64"], keepalive=25)


class Message:
    """The shape of a pyroute2 genl message (attributes by name), built from plain data."""

    def __init__(self, **attrs: object):
        self.attrs = attrs

    def get_attr(self, name: str) -> object:
        return self.attrs.get(name)


def test_userspace_driver_speaks_the_uapi_protocol():
    text = drivers.uapi_set_peer(PEER)
    assert text.startswith("set=1\n") and text.endswith("\n\n")
    assert f"public_key={bytes(range(32)).hex()}" in text and "replace_allowed_ips=true" in text
    answer = (f"private_key={'11' * 32}\nlisten_port=51820\npublic_key={bytes(range(32)).hex()}\n"
              "endpoint=192.0.2.12:51820\nallowed_ip=10.244.2.0/24\nallowed_ip=fd00:244:0:2::/64\n"
              "persistent_keepalive_interval=25\nlast_handshake_time_sec=7\nrx_bytes=10\ntx_bytes=20\nerrno=0\n\n")
    state = drivers.uapi_parse(answer)
    assert state.listen_port == 51820 and state.private_key == bytes.fromhex("11" * 32)
    assert state.peers == [drivers.PeerState(PEER.public_key, PEER.endpoint, PEER.allowed_ips, 25, 7, 10, 20)]
    with pytest.raises(Exception, match="errno=22"):
        drivers.uapi_parse("errno=22\n\n")


def test_a_started_daemon_is_ready_when_it_accepts_not_when_its_socket_appears(tmp_path):
    """wireguard-go binds its socket (the file appears, which start() awaits) a moment before it listens: a real
    socket bound but not yet listening is refused, accepted once it listens (here 0.1 s later), and a socket
    that never listens is given up at the deadline."""
    import socket
    import threading
    import time

    driver = drivers.UserspaceDriver("t")
    driver.folder = tmp_path
    late = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    late.bind(str(tmp_path / "wg-late.sock"))
    never = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    never.bind(str(tmp_path / "wg-never.sock"))
    try:
        with pytest.raises(ConnectionRefusedError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.connect(str(tmp_path / "wg-late.sock"))
        timer = threading.Timer(0.1, late.listen)
        started = time.monotonic()
        timer.start()
        assert driver.accepting("wg-late", 5)
        assert time.monotonic() - started >= 0.1
        timer.join()
        assert not driver.accepting("wg-never", 0.2)
    finally:
        late.close()
        never.close()


def test_kernel_driver_maps_the_same_model():
    arguments = drivers.kernel_peer_arguments(PEER)
    assert arguments == {"public_key": PEER.public_key, "allowed_ips": PEER.allowed_ips, "persistent_keepalive": 25,
                         "endpoint_addr": "192.0.2.12", "endpoint_port": 51820}
    allowed = [Message(WGALLOWEDIP_A_IPADDR="10.244.2.0", WGALLOWEDIP_A_CIDR_MASK=24),
               Message(WGALLOWEDIP_A_IPADDR="fd00:244:0:2::", WGALLOWEDIP_A_CIDR_MASK=64)]
    peer = Message(WGPEER_A_PUBLIC_KEY=PEER.public_key, WGPEER_A_ENDPOINT={"addr": "192.0.2.12", "port": 51820},
                   WGPEER_A_ALLOWEDIPS=allowed, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL=25,
                   WGPEER_A_LAST_HANDSHAKE_TIME={"tv_sec": 7}, WGPEER_A_RX_BYTES=10, WGPEER_A_TX_BYTES=20)
    device = Message(WGDEVICE_A_PRIVATE_KEY=encode(bytes.fromhex("11" * 32)), WGDEVICE_A_LISTEN_PORT=51820,
                     WGDEVICE_A_PEERS=[peer])
    kernel = drivers.kernel_parse(device)
    uapi = drivers.uapi_parse(f"private_key={'11' * 32}\nlisten_port=51820\npublic_key={bytes(range(32)).hex()}\n"
                              "endpoint=192.0.2.12:51820\nallowed_ip=10.244.2.0/24\nallowed_ip=fd00:244:0:2::/64\n"
                              "persistent_keepalive_interval=25\nlast_handshake_time_sec=7\nrx_bytes=10\n"
                              "tx_bytes=20\nerrno=0\n\n")
    assert kernel == uapi  # one model, whichever driver read it


@pytest.mark.kernel("wireguard")
def test_kernel_driver_against_the_kernel(tmp_path):
    namespace = f"netx-wgk-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    try:
        from pyroute2 import IPRoute

        from netplanx.system import netns

        ipr = netns.call_inside(namespace, IPRoute)
        driver = netns.call_inside(namespace, lambda: drivers.KernelDriver(ipr))
        driver.start("wgk0")
        driver.configure("wgk0", bytes.fromhex("11" * 32), 51820)
        driver.set_peer("wgk0", PEER)
        state = driver.get("wgk0")
        assert state.listen_port == 51820 and [p.public_key for p in state.peers] == [PEER.public_key]
    finally:
        subprocess.run(["ip", "netns", "del", namespace], check=False)



def test_failure_at_every_step_of_turning_encryption_on_rolls_back(lab):
    """WireGuard in the fault campaign: the daemon, its peers and the re-pointed routes are undone too."""
    from tests.conftest import snapshot

    lab, watch = lab
    keys = lab.keys()
    watch.add_keys(keys)
    lab.apply(lab_spec(lab.name, lab.nodes, "tunnel", ENDPOINTS))
    before = snapshot(lab.netns("node-a"))
    path = lab.write(encrypted(lab, keys), "encrypted.yaml")
    steps = len(lab.plan(encrypted(lab, keys), "node-a")["steps"])
    assert steps >= 10
    env = {**os.environ, "NETX_STATE_DIR": str(lab.state_dir)}
    for step in range(1, steps + 1):
        failed = subprocess.run([sys.executable, "-m", "netplanx", "apply", str(path), "--auto-approve", "--node",
                                 "node-a", "--netns", lab.netns("node-a")], capture_output=True, text=True,
                                env={**env, "NETX_FAILPOINT_STEP": str(step)}, timeout=120)
        watch.outputs += [failed.stdout, failed.stderr]
        assert failed.returncode == 1 and "back where it was (verified)" in failed.stderr, failed.stderr
        assert snapshot(lab.netns("node-a")) == before, f"step {step}"
        assert not list((drivers.SOCKET_ROOT / lab.netns("node-a")).glob("*.sock")), "wireguard-go left running"
    assert ping(lab.endpoint_netns("web-a"), WEB_B)


def test_a_wireguard_device_netx_did_not_start_is_left_alone(lab):
    """Ownership: a wireguard-go device someone else runs in the namespace is not netx's to stop."""
    lab, watch = lab
    keys = lab.keys()
    watch.add_keys(keys)
    foreign = drivers.UserspaceDriver(lab.netns("node-a"))
    from netplanx.system import netns

    netns.call_inside(lab.netns("node-a"), lambda: foreign.start("wg-foreign"))
    try:
        lab.apply(encrypted(lab, keys))
        lab.apply(lab_spec(lab.name, lab.nodes, "tunnel", ENDPOINTS))
        assert foreign.exists("wg-foreign") and ip_json(lab.netns("node-a"), "link", "show", "wg-foreign")
        shown = {r["address"]: r["owned"] for r in json.loads(lab.netx("node-a", "show", "-o", "json").stdout)}
        assert shown["link.wg-foreign"] is False and "wireguard.netx-wg" not in shown
    finally:
        foreign.stop("wg-foreign")


def test_a_host_wireguard_device_with_a_route_through_it_is_applied_adopted_and_removed(netx, netns, tmp_path):
    """A host's own device (wireguardDevices): created before the route on it, configured from its key file,
    adopted with that file, and removed after the route."""
    from netplanx.features.wireguard.keys import generate

    key = tmp_path / "hw0.key"
    spec = f"""\
        apiVersion: netx/v1
        wireguardDevices:
          - name: hw0
            port: 51999
            publicKey: "{generate(key)}"
            privateKeyFile: {key}
            peers:
              - {{name: far, publicKey: "{PEER.public_key}", endpoint: "192.0.2.12:51820", allowedIPs: [10.9.2.0/24],
                 keepalive: 25}}
        routes:
          - {{to: 10.9.0.0/16, dev: hw0}}
        """
    steps = [s["address"] for s in netx.plan(spec)["steps"]]
    assert steps.index("wireguard.hw0") < steps.index("route.main.10.9.0.0/16")
    netx.apply(spec)
    assert ip_json(netns, "link", "show", "hw0")[0]["mtu"] == 1420
    assert ip_json(netns, "route", "show", "10.9.0.0/16")[0]["dev"] == "hw0"
    assert netx.plan(spec)["changes"] == []
    adopted = assert_adopts(netx)
    assert f"privateKeyFile: {key}" in adopted and "keepalive: 25" in adopted and "port: 51999" in adopted
    removed = [s["address"] for s in netx.plan("apiVersion: netx/v1\n")["steps"]]
    assert removed.index("route.main.10.9.0.0/16") < removed.index("wireguard.hw0") and len(removed) == 3
    netx.apply("apiVersion: netx/v1\n")
    assert not ip_json(netns, "link", "show")[1:], "only lo is left"
