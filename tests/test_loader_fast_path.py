"""The loader's C fast path (netplanx/document/_fast_yaml.c): every document it reads gives the data of the ruamel
path (same values, same types, same positions); every other one it leaves to the ruamel path, which loads it or
reports what is wrong at its position."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netplanx.document import loader, scalars
from netplanx.errors import SpecError
from tests.test_docs_examples import YAML_BLOCKS
from tests.test_fuzz import FUZZ, documents, dump
from tests.test_spec_errors import CASES, EXACT

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").rglob("*.yaml"))
SOURCE = "spec.yaml"
LEFT = "left to the ruamel path"


def test_the_fast_path_is_built() -> None:
    """Without it every document takes the ruamel path, ~3.5x slower for a large spec."""
    assert loader._fast_path() is not None, (
        "netplanx.document._fast_yaml is missing: apt-get install libyaml-dev, then pip install -e .")


def fast(text: str) -> Any:
    """The data the fast path reads from ``text``, or LEFT."""
    module = loader._fast_path()
    try:
        return module.load(text, loader._plain_value, loader.MAX_DEPTH, loader.MAX_NODES)
    except module.Unsupported:
        return LEFT


def typed(value: Any) -> Any:
    """``value`` with the type of every scalar (True is not 1) and the order of every mapping's keys."""
    if isinstance(value, dict):
        return [(key, typed(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [typed(item) for item in value]
    return type(value).__name__, value


def outcome(load: Any, text: str) -> Any:
    """What ``load`` (load_document or _load_composed) makes of ``text``: its typed data, or its problems."""
    try:
        return typed(load(text, SOURCE).data)
    except SpecError as exc:
        return exc.problems


def paths(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    yield path
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for part, item in items:
        yield from paths(item, (*path, part))


def check(text: str) -> bool:
    """The fast path reads ``text`` as the ruamel path does (data and positions), or leaves it to it: whether it
    read it."""
    data = fast(text)
    composed = outcome(loader._load_composed, text)
    assert outcome(loader.load_document, text) == composed
    if data is LEFT:
        return False
    assert typed(data) == composed
    document, slow = loader.load_document(text, SOURCE), loader._load_composed(text, SOURCE)
    for path in paths(data):
        for key in (False, True):
            assert document.positions.of(path, key) == slow.positions.of(path, key), (path, key)
    return True


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: str(path.relative_to(ROOT)))
def test_the_fast_path_reads_every_example_as_the_ruamel_path_does(path: Path) -> None:
    assert check(path.read_text())


@pytest.mark.parametrize("text", [
    *(pytest.param(case.values[0], id=f"spec-errors-{case.id}") for case in [*CASES, *EXACT]),
    *(pytest.param(block.text, id=block.name) for block in YAML_BLOCKS),
])
def test_the_specs_of_the_tests_and_docs_are_read_alike_or_left_to_ruamel(text: str) -> None:
    check(text)


@FUZZ
@given(documents)
def test_generated_documents_are_read_alike_or_left_to_ruamel(data: Any) -> None:
    check(dump(data))


@FUZZ
@given(st.text(alphabet=st.sampled_from(list("{}[]:?-,&*!<|>'\"#% \n\tab01.:/~\\")), max_size=80))
def test_yaml_punctuation_is_read_alike_or_left_to_ruamel(text: str) -> None:
    check(text)


@pytest.mark.parametrize("text, value", [
    ("k: true", True), ("k: False", False), ("k: yes", "yes"), ("k: no", "no"), ("k: on", "on"), ("k: off", "off"),
    ("k: ~", None), ("k: null", None), ("k:", None), ("k: 0x1f", 31), ("k: 0o17", 15), ("k: 1_000", 1000),
    ("k: -12", -12), ("k: 1.5e3", 1500.0), ("k: 2001-12-14", "2001-12-14"), ("k: 1:20", "1:20"),
    ("k: '1'", "1"), ('k: "true"', "true"), ("k: ''", ""),
    ("k: |\n  a\n  b\n", "a\nb\n"), ("k: >\n  a\n  b\n", "a b\n"),
    ("k: héllo wörld ✓", "héllo wörld ✓"), ("k: [10.0.0.1/24, '<<', a b]", ["10.0.0.1/24", "<<", "a b"]),
    ("k: {'fd00::1/64': \"2001:db8::1\"}", {"fd00::1/64": "2001:db8::1"}),
])
def test_scalars_are_resolved_as_on_the_ruamel_path(text: str, value: Any) -> None:
    assert check(text)
    assert typed(fast(text)) == typed({"k": value})


def test_keys_are_their_text() -> None:
    text = "1: a\ntrue: b\n~: c\n'x': d\n? |\n  e\n: f\n"
    assert check(text)
    assert fast(text) == {"1": "a", "true": "b", "~": "c", "x": "d", "e\n": "f"}


def test_each_plain_text_is_resolved_once_and_equal_values_share_one_object() -> None:
    calls = []

    def resolve(text: str) -> str:
        calls.append(text)
        return text.upper()

    data = loader._fast_path().load("[a, b, a, 'a', {a: a}]", resolve, 64, 100)
    assert data == ["A", "B", "A", "a", {"a": "A"}] and calls == ["a", "b"]
    assert data[0] is data[2] is data[4]["a"]


def nested(levels: int) -> str:
    return "k: " + "[" * levels + "]" * levels + "\n"


@pytest.mark.parametrize("text", [
    pytest.param("", id="empty"),
    pytest.param("# a comment alone\n", id="no-document"),
    pytest.param("a: 1\n---\nb: 2\n", id="two-documents"),
    pytest.param("a: [1, 2\n", id="syntax-error"),
    pytest.param("a:\n  - x\n - y\n", id="bad-indentation"),
    pytest.param("a: &x [1]\nb: *x\n", id="anchor-and-alias"),
    pytest.param("a: &x 1\n", id="anchor"),
    pytest.param("a: !!str 1\n", id="yaml-tag"),
    pytest.param("a: !custom x\n", id="custom-tag"),
    pytest.param("a: ! x\n", id="non-specific-tag"),
    pytest.param("<<: {a: 1}\n", id="merge-key"),
    pytest.param("b: &b {x: 1}\nc:\n  <<: *b\n", id="merge-key-of-an-alias"),
    pytest.param("a: 1\na: 2\n", id="duplicate-key"),
    pytest.param("? [a, b]\n: 1\n", id="sequence-key"),
    pytest.param("{{a: 1}: 2}\n", id="mapping-key"),
    pytest.param(nested(loader.MAX_DEPTH + 1), id="too-deep"),
    pytest.param("k: 017\n", id="leading-zero-int"),
    pytest.param("k: .inf\n", id="infinity"),
    pytest.param("k: ._5\n", id="float-without-digits-before-the-point"),
    pytest.param("addresses: [10.0.0.1/24, fd00::1/64]\n", id="colon-in-a-flow-list"),
    pytest.param("a: {b:c}\n", id="colon-in-a-flow-mapping"),
    pytest.param("a: [x?y]\n", id="question-mark-in-a-flow-list"),
])
def test_what_the_fast_path_leaves_to_the_ruamel_path(text: str) -> None:
    assert fast(text) is LEFT
    check(text)


def test_nesting_up_to_the_limit_is_read() -> None:
    assert check(nested(loader.MAX_DEPTH))


def test_too_many_values_are_left_to_the_ruamel_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "MAX_NODES", 4)
    assert check("[1, 2, 3]\n")
    assert fast("[1, 2, 3, 4]\n") is LEFT
    assert outcome(loader.load_document, "[1, 2, 3, 4]\n") == [
        f"{SOURCE}:1:11: document expands to more than 4 values (alias expansion too large; write the values out "
        "or reduce aliases)"]


@pytest.mark.parametrize("spelling, value", [("017", 17), ("08", 8), (".inf", math.inf), ("-.inf", -math.inf)])
def test_spellings_a_converter_refuses_are_read_by_ruamels_constructor(spelling: str, value: Any) -> None:
    text = f"k: {spelling}\n"
    assert fast(text) is LEFT
    assert typed(loader.load_document(text, SOURCE).data) == typed({"k": value})


def test_text_that_is_not_utf8_raises_as_on_the_ruamel_path() -> None:
    with pytest.raises(UnicodeEncodeError):
        loader.load_document("a: \udcff\n", SOURCE)


def test_positions_are_composed_only_when_asked_for() -> None:
    document = loader.load_document("a:\n  - {b: 1}\n", SOURCE)
    assert document.positions.root is None
    assert document.where(("a", 0, "b")) == f"{SOURCE}:2:9"
    assert document.where(("a", 0, "b"), key=True) == f"{SOURCE}:2:6"


def test_the_implicit_types_are_ruamels() -> None:
    """Both paths resolve plain scalars with netx's table (a valid spec is read without importing ruamel): it must
    be ruamel's safe loader's, first character by first character, pattern by pattern, in order."""
    import re

    from ruamel.yaml.cyaml import CSafeLoader

    ours = {first: [(scalars.YAML_TAG + name, pattern, flags) for name, pattern, flags in resolvers]
            for firsts, resolvers in scalars.RESOLVERS for first in firsts}
    theirs = {first: [(tag, regexp.pattern, regexp.flags & re.VERBOSE) for tag, regexp in resolvers]
              for first, resolvers in CSafeLoader.yaml_implicit_resolvers.items()}
    assert ours == theirs


@pytest.mark.parametrize("text", ["1", "-1", "+1.5", ".5", "1e3", "0x1F", "0o17", "017", "0b101", "1_000", "2001-12-14",
                                  "2001-12-14 21:59:43.10 -5", "true", "False", "~", "null", "NULL", "", "<<", "=",
                                  "!", "yes", "1:20", "10.0.0.0/24", "fd00::1", "1.2.3.4", "nan", ".NaN", "-.inf"])
def test_a_plain_scalar_has_the_tag_ruamel_gives_it(text: str) -> None:
    """One expression per first character names the type that trying ruamel's resolvers one by one names."""
    from ruamel.yaml.cyaml import CSafeLoader

    expected = next((tag for tag, regexp in CSafeLoader.yaml_implicit_resolvers.get(text[:1], [])
                     if regexp.match(text)), scalars.STR)
    assert scalars.implicit_tag(text) == expected


def test_a_valid_spec_is_read_without_importing_ruamel() -> None:
    """ruamel is imported for the ruamel path and for positions, not to read a valid spec (~8 ms at every cold
    apply)."""
    import subprocess
    import sys

    code = ("import sys; from netplanx.document import loader; "
            "data = loader.load_document('routes: [{to: 10.0.0.0/24, via: 192.0.2.1}]\\n', 'x').data; "
            "assert data == {'routes': [{'to': '10.0.0.0/24', 'via': '192.0.2.1'}]}, data; "
            "print(sorted(m for m in sys.modules if m.startswith('ruamel')))")
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert found.strip() == "[]"
