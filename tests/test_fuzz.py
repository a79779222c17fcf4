"""Property-based fuzzing of the spec loader: whatever the bytes, the answer is a spec or positioned errors.

CI runs a bounded number of examples; ``NETX_FUZZ_EXAMPLES=20000 pytest tests/test_fuzz.py`` is the long
campaign recorded in docs/reliability.md.
"""

from __future__ import annotations

import os
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from netplanx.errors import SpecError
from netplanx.spec.compile import compile_spec
from netplanx.spec.validate import parse_spec

EXAMPLES = int(os.environ.get("NETX_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                derandomize=os.environ.get("NETX_FUZZ_RANDOM") is None)
POSITIONED = re.compile(r"^fuzz\.yaml:\d+:\d+: .+")

KEYS = ["apiVersion", "interfaces", "routes", "rules", "sysctl", "cluster", "endpoints", "name", "type", "peer",
        "netns", "mtu", "state", "mac", "master", "addresses", "vni", "port", "local", "remote", "group", "device",
        "learning", "parent", "mode", "to", "via", "dev", "src", "table", "metric", "scope", "onlink", "nexthops",
        "weight", "priority", "family", "from", "iif", "fwmark", "action", "podCIDR", "podCIDR6", "nodes", "node",
        "address", "address6", "routing", "tunnel", "underlay", "prefixLength", "labels", "external", "protocol"]
VALUES = ["netx/v1", "veth", "bridge", "vxlan", "geneve", "macvlan", "device", "up", "down", "eth0", "br0",
          "10.0.0.1/24", "10.0.0.0/24", "fd00::1/64", "192.0.2.1", "2001:db8::1", "default", "blackhole", "main",
          "lookup", "tunnel", "native", "node-a", "02:00:00:00:00:01", "net.ipv4.ip_forward", "", "../x", "a/b",
          "x" * 20, "é" * 9]
scalars = st.one_of(st.sampled_from(VALUES), st.integers(-2, 2**33), st.booleans(), st.none(), st.text(max_size=8),
                    st.floats(allow_nan=False, allow_infinity=False))
documents = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), children,
                                               max_size=5)),
    max_leaves=30,
)


def dump(data: object) -> str:
    from io import StringIO

    out = StringIO()
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.dump(data, out)
    return out.getvalue()


def check(text: str) -> None:
    """A valid spec compiles for every node; anything else is only positioned SpecErrors."""
    try:
        spec, _document = parse_spec(text, "fuzz.yaml")
    except SpecError as error:
        assert error.problems
        for problem in error.problems:
            assert POSITIONED.match(problem), problem
        return
    for node in [n.name for n in spec.cluster.nodes] if spec.cluster else [None]:
        compile_spec(spec, node)


@FUZZ
@given(st.builds(lambda body: {"apiVersion": "netx/v1", **body}, st.dictionaries(st.sampled_from(KEYS), documents,
                                                                                   max_size=4)))
def test_structured_documents(data: dict) -> None:
    check(dump(data))


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes(raw: bytes) -> None:
    text = raw.decode("utf-8", errors="surrogateescape")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return  # not text: the file reader reports these bytes (tests/test_spec_errors.py)
    check(text)


@FUZZ
@given(st.text(alphabet=st.sampled_from(list("{}[]:-,&*!|>'\"# \n\tabc01.:/")), max_size=120))
def test_yaml_punctuation(text: str) -> None:
    check("apiVersion: netx/v1\n" + text)


@FUZZ
@given(st.data())
def test_mutated_example(data: st.DataObject) -> None:
    with open(os.path.join(os.path.dirname(__file__), "..", "examples", "host.yaml")) as handle:
        text = handle.read()
    position = data.draw(st.integers(0, len(text)))
    cut = data.draw(st.integers(0, 20))
    insert = data.draw(st.text(alphabet=st.sampled_from(list("{}[]:-,&*x9 \n/.")), max_size=10))
    check(text[:position] + insert + text[position + cut:])
