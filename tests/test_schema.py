"""schema/netx.schema.json is generated from the model, and the examples agree with both."""

from __future__ import annotations

import json
import re
import textwrap
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from netplanx.document.loader import load_document
from netplanx.errors import SpecError
from netplanx.spec.schema import json_schema, schema_text
from netplanx.spec.validate import parse_spec
from tests.specs import TOP_KEYS

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "schema" / "netx.schema.json"
# netx specs among the examples (the Ansible playbook and inventory are YAML of another kind)
EXAMPLES = sorted(p for p in (ROOT / "examples").rglob("*") if p.suffix in (".yaml", ".yml")
                  and "apiVersion: netx/" in p.read_text())
MODELINE = re.compile(r"# yaml-language-server: \$schema=(?P<path>\S+)\s*")
REGENERATE = ".venv/bin/netx schema > schema/netx.schema.json"


@cache
def validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def schema_errors(data: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator().iter_errors(data)]


def test_checked_in_schema_is_up_to_date() -> None:
    assert SCHEMA.read_text() == schema_text(), f"schema/netx.schema.json is stale; regenerate it: {REGENERATE}"


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    schema = json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def test_there_are_examples() -> None:
    assert EXAMPLES, "no YAML files under examples/"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_example_has_a_schema_modeline(path: Path) -> None:
    first = path.read_text().splitlines()[0]
    match = MODELINE.fullmatch(first)
    assert match, f"{path.name} must start with '# yaml-language-server: $schema=RELATIVE/PATH', got {first!r}"
    target = match["path"]
    assert not re.match(r"^[a-z]+:|^/", target), f"the modeline path must be relative, got {target}"
    assert (path.parent / target).resolve() == SCHEMA.resolve(), f"{target} does not lead to {SCHEMA}"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_example_is_valid_for_netx_and_for_the_schema(path: Path) -> None:
    text = path.read_text()
    parse_spec(text, str(path))
    assert schema_errors(load_document(text, str(path)).data) == []


# Documents wrong in a way the schema can express: netx and any editor using the schema must agree.
BAD = [
    pytest.param("apiVersion: netx/v1\ncolour: blue\n", "unknown key 'colour'", id="unknown-top-key"),
    pytest.param("apiVersion: netx/v1\ninterfaces:\n  - {name: eth0, type: device, mtuu: 1500}\n",
                 "unknown key 'mtuu'", id="unknown-interface-key"),
    pytest.param("apiVersion: netx/v1\nroutes:\n  - {to: default, gw: 192.0.2.1}\n",
                 "unknown key 'gw'", id="unknown-route-key"),
    pytest.param("interfaces: []\n", "missing required key 'apiVersion'", id="missing-api-version"),
    pytest.param("apiVersion: netx/v2\n", "is not allowed for apiVersion", id="wrong-api-version"),
    pytest.param("apiVersion: netx/v1\ninterfaces:\n  - {name: tun0, type: tun}\n", "unknown type 'tun'",
                 id="unknown-interface-type"),
    pytest.param("apiVersion: netx/v1\ninterfaces:\n  - {name: v0, type: veth}\n", "missing required key 'peer'",
                 id="veth-without-peer"),
    pytest.param("apiVersion: netx/v1\ninterfaces:\n  - {name: eth0, type: device, mtu: 70000}\n",
                 "mtu 70000 is too large", id="mtu-out-of-range"),
    pytest.param("apiVersion: netx/v1\ninterfaces:\n  - {name: eth0, type: device, state: sideways}\n",
                 "is not allowed for state", id="state-literal"),
    pytest.param("apiVersion: netx/v1\nrules:\n  - {priority: 0, table: 10}\n", "priority 0 is too small",
                 id="rule-priority-range"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_document_is_rejected_by_netx_and_by_the_schema(text: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(text, "bad.yaml")
    assert any(message in problem for problem in caught.value.problems), caught.value.problems
    assert schema_errors(load_document(text, "bad.yaml").data), "the JSON schema accepts what netx rejects"


def test_unknown_key_is_named_by_both() -> None:
    text = textwrap.dedent("""\
        apiVersion: netx/v1
        interfaces:
          - name: eth0
            type: device
        routes: []
        colour: blue
        """)
    with pytest.raises(SpecError) as caught:
        parse_spec(text, "bad.yaml")
    assert caught.value.problems == [
        f"bad.yaml:6:1: unknown key 'colour' (allowed: {TOP_KEYS})"]
    assert schema_errors(load_document(text, "bad.yaml").data) == [
        "[]: Additional properties are not allowed ('colour' was unexpected)",
    ]



@pytest.mark.parametrize("text", [
    pytest.param("apiVersion: netx/v1\nsysctl:\n  kernel.panic: 10\n", id="non-net-sysctl-key"),
    pytest.param("apiVersion: netx/v1\ninterfaces:\n  - {name: uplink-to-core01, type: device}\n",
                 id="interface-name-too-long"),
])
def test_field_rules_are_in_the_schema(text: str) -> None:
    with pytest.raises(SpecError):
        parse_spec(text, "bad.yaml")
    assert schema_errors(load_document(text, "bad.yaml").data), "the JSON schema accepts what netx rejects"
