"""What netx accepts as input: errors reported all at once, no coercion between YAML types, hostile files,
and the files netx writes."""

from __future__ import annotations

import base64
import json
import os
import resource
import stat
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.specs import problems_of, spec

SOURCE = "in.yaml"


def test_a_schema_error_does_not_hide_the_whole_file_checks() -> None:
    """port 70000 fails the schema; the policy whose selector selects no endpoint is still reported."""
    text = spec("""\
        apiVersion: netx/v1
        cluster:
          name: c
          podCIDR: 10.244.0.0/16
          nodes: [{name: n1, address: 192.0.2.1, podCIDR: 10.244.1.0/24}]
        endpoints:
          - {name: web, node: n1, address: 10.244.1.10, labels: {app: web}}
        services:
          - {name: s, vip: 10.96.0.1, port: 70000, backends: [{endpoint: web}]}
        policies:
          - {name: p, selector: {app: db}, ingress: [{from: [{labels: {app: web}}]}]}
        """)
    assert problems_of(text, SOURCE) == [
        f"{SOURCE}:9:37: port 70000 is too large (allowed: at most 65535)",
        f"{SOURCE}:11:25: selector {{app=db}} selects no endpoint (allowed: labels of an endpoint: app=web)"]


def test_problems_that_follow_from_an_entry_with_its_own_error_are_not_repeated() -> None:
    """The endpoint fails the schema; the service backend naming it is not reported as a second problem."""
    text = spec("""\
        apiVersion: netx/v1
        cluster:
          name: c
          podCIDR: 10.244.0.0/16
          nodes: [{name: n1, address: 192.0.2.1, podCIDR: 10.244.1.0/24}]
        endpoints:
          - {name: web, node: n1, address: 10.244.1.300}
        services:
          - {name: s, vip: 10.96.0.1, port: 80, backends: [{endpoint: web}]}
        """)
    assert problems_of(text, SOURCE) == [
        f"{SOURCE}:7:36: '10.244.1.300' is not an IPv4 address (allowed: an IPv4 address)"]


@pytest.mark.parametrize("path, offending", [
    pytest.param("routes", "{to: 10.9.0.0/16, via: 10.0.0.1, metric: -1}", id="route"),
])
def test_the_rest_of_a_list_is_checked_when_one_item_fails(path: str, offending: str) -> None:
    text = spec(f"""\
        apiVersion: netx/v1
        interfaces:
          - {{name: a, type: device, addresses: [10.0.0.5/24]}}
        {path}:
          - {offending}
          - {{to: 10.8.0.0/16, via: 10.1.0.1}}
        """)
    found = problems_of(text, SOURCE)
    assert len(found) == 2 and "metric -1 is too small" in found[0]
    assert found[1].startswith(f"{SOURCE}:6:") and "gateway 10.1.0.1 is not reachable" in found[1]


CLUSTER = """\
apiVersion: netx/v1
cluster:
  name: c
  podCIDR: 10.244.0.0/16
  nodes: [{name: n1, address: 192.0.2.1, podCIDR: 10.244.1.0/24}]
endpoints:
  - {name: web, node: n1, address: 10.244.1.10, labels: {app: web}}
"""


@pytest.mark.parametrize("text, expected", [
    pytest.param(CLUSTER + "services: [{name: s, vip: 10.96.0.1, port: true}]\n",
                 "8:44: port must be an integer, got True (allowed: a whole number)", id="port-true"),
    pytest.param(CLUSTER + "services: [{name: s, vip: 10.96.0.1, port: 80,\n"
                           "             backends: [{endpoint: web, weight: true}]}]\n",
                 "9:49: weight must be an integer, got True (allowed: a whole number)", id="weight-true"),
    pytest.param(CLUSTER + "services: [{name: s, vip: 10.96.0.1, port: 80, maglevTableSize: true}]\n",
                 "8:65: maglevTableSize must be an integer, got True (allowed: a whole number)", id="maglev-true"),
    pytest.param(CLUSTER + "services: [{name: s, vip: 10.96.0.1, port: 80.0}]\n",
                 "8:44: port must be an integer, got 80.0 (allowed: a whole number)", id="port-float"),
    pytest.param("apiVersion: netx/v1\ninterfaces: [{name: v, type: vxlan, vni: true, remote: 192.0.2.2}]\n",
                 "2:42: vni must be an integer, got True (allowed: a whole number)", id="vni-true"),
    pytest.param("apiVersion: netx/v1\ninterfaces: [{name: v, type: bridge, stp: 1}]\n",
                 "2:43: stp must be true or false, got 1 (allowed: true, false)", id="bool-from-number"),
    pytest.param("apiVersion: netx/v1\ninterfaces: [{name: v, type: bridge, stp: 'yes'}]\n",
                 "2:43: stp must be true or false, got 'yes' (allowed: true, false)", id="bool-from-text"),
    pytest.param(CLUSTER.replace("labels: {app: web}", "labels: {app: 1}"),
                 "7:63: app must be text, got int 1 (allowed: a string)", id="label-number"),
    pytest.param("apiVersion: netx/v1\nroutes: [{to: 10.1.0.0/16, dev: lo, metric: '100'}]\n",
                 "2:45: metric must be an integer, got '100' (allowed: a whole number)", id="int-from-text"),
])
def test_no_coercion_between_booleans_numbers_and_text(text: str, expected: str) -> None:
    assert problems_of(text, SOURCE) == [f"{SOURCE}:{expected}"]


def netx_here(*args: str, stdin: bytes | None = None, limit_memory: bool = False) -> subprocess.CompletedProcess:
    """The real command (no namespace needed: validate reads nothing of the host)."""
    def bounded() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))  # 1 GiB of address space
    return subprocess.run([sys.executable, "-m", "netplanx", *args], capture_output=True, input=stdin, timeout=20,
                          cwd=ROOT, preexec_fn=bounded if limit_memory else None)


@pytest.mark.parametrize("make, refused", [
    pytest.param(lambda p: p.mkdir(), "it is a directory (allowed: a regular file, or - for standard input)",
                 id="directory"),
    pytest.param(lambda p: os.mkfifo(p), "it is a FIFO (allowed: a regular file, or - for standard input)",
                 id="fifo"),
    pytest.param(lambda p: p.symlink_to("/dev/zero"),
                 "it is a character device (allowed: a regular file, or - for standard input)", id="dev-zero"),
    pytest.param(lambda p: os.truncate(p.open("w").name, 4 << 30),
                 "file is 4294967296 bytes (allowed: at most 16777216)", id="four-gib-sparse-file"),
])
def test_hostile_spec_files_are_refused_quickly_and_without_reading_them(tmp_path, make, refused) -> None:
    path = tmp_path / "spec.yaml"
    make(path)
    done = netx_here("validate", str(path), limit_memory=True)
    assert done.returncode == 1 and done.stderr.decode().startswith(f"{path}:1:1: {refused}\n")
    assert b"Traceback" not in done.stderr


def test_the_spec_can_come_from_standard_input_with_the_same_limit() -> None:
    done = netx_here("validate", "-", stdin=b"apiVersion: netx/v1\nroutes: [{to: 10.1.0.0/16, dev: ghost}]\n")
    assert done.returncode == 1 and b"dev 'ghost' is not declared" in done.stderr  # read, parsed, checked
    done = netx_here("validate", "-", stdin=b"apiVersion: netx/v1\n" + b"#" * (16 << 20))
    assert done.returncode == 1 and b"standard input is larger than 16777216 bytes" in done.stderr


def test_a_file_name_with_a_newline_does_not_break_the_error_line(tmp_path) -> None:
    path = tmp_path / "evil\nname.yaml"
    path.write_text("apiVersion: netx/v1\nroutes: [{to: 10.1.0.0/16, dev: ghost}]\n")
    lines = netx_here("validate", str(path)).stderr.decode().splitlines()
    assert lines[0].startswith(f"{tmp_path}/evil\\nname.yaml:2:33: dev 'ghost' is not declared")


def test_files_netx_writes_have_its_mode_whatever_was_there(netx, tmp_path) -> None:
    """A saved plan written over a 0644 file is 0600; so is a key written over a world-readable file."""
    out = tmp_path / "plan.json"
    out.write_text("old")
    out.chmod(0o644)
    assert netx("plan", "-o", str(out), spec="apiVersion: netx/v1\n").code == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600 and json.loads(out.read_text())["format"] == "netx-plan/1"
    key = tmp_path / "wg.key"
    key.write_text("old")
    key.chmod(0o644)
    assert netx("keygen", str(key), "--force", netns=False).code == 0
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_keygen_writes_a_clamped_key_that_wg_agrees_with(netx, tmp_path) -> None:
    """As ``wg genkey``: the file holds the key a device reports, and ``wg pubkey`` gives netx's public key."""
    for number in range(8):
        path = tmp_path / f"k{number}"
        public = netx("keygen", str(path), netns=False).out.strip()
        private = base64.b64decode(path.read_text())
        assert private[0] & 7 == 0 and private[31] & 0x80 == 0 and private[31] & 0x40
        wg = subprocess.run(["wg", "pubkey"], input=path.read_text(), capture_output=True, text=True, check=True)
        assert wg.stdout.strip() == public
