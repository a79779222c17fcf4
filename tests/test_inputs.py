"""What netx accepts as input: errors reported all at once, no coercion between YAML types, hostile files,
and the files netx writes."""

from __future__ import annotations

import pytest

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
    pytest.param(CLUSTER + "services: [{name: s, vip: 10.96.0.1, port: 80, backends: [{endpoint: web, weight: true}]}]\n",
                 "8:83: weight must be an integer, got True (allowed: a whole number)", id="weight-true"),
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
