"""The type of a plain YAML scalar (``1`` is a number, ``true`` a boolean, ``10.0.0.0/24`` text) and its value.

The implicit types are ruamel.yaml's safe loader's (its YAML 1.2 resolver, with YAML 1.1's ``0b``, ``0o`` and
``_`` in numbers), written out here so that both loaders resolve with one table and a valid spec is read without
importing ruamel (~8 ms); tests/test_loader_fast_path.py holds the table against ruamel's own. The resolvers of a
first character are one regular expression, a group per type in their order: the first group that matches names
the type, as trying them one by one does, in one call (a network, which none matches, is tried once, not thrice).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

YAML_TAG = "tag:yaml.org,2002:"
STR, MERGE = YAML_TAG + "str", YAML_TAG + "merge"

BOOL = r"^(?:true|True|TRUE|false|False|FALSE)$"
FLOAT = r"""^(?:
         [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$"""
INT = r"""^(?:[-+]?0b[0-1_]+
        |[-+]?0o?[0-7_]+
        |[-+]?[0-9_]+
        |[-+]?0x[0-9a-fA-F_]+)$"""
TIMESTAMP = r"""^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
        |[0-9][0-9][0-9][0-9] -[0-9][0-9]? -[0-9][0-9]?
        (?:[Tt]|[ \t]+)[0-9][0-9]?
        :[0-9][0-9] :[0-9][0-9] (?:\.[0-9]*)?
        (?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$"""
NULL = r"""^(?: ~
        |null|Null|NULL
        | )$"""

Resolver = tuple[str, str, int]  # type, pattern, flags (re.VERBOSE or 0)

# (first characters, the resolvers tried in order); "" is the first character of the empty scalar (null)
RESOLVERS: list[tuple[tuple[str, ...], list[Resolver]]] = [
    (tuple("tTfF"), [("bool", BOOL, re.X)]),
    (tuple("-+"), [("float", FLOAT, re.X), ("int", INT, re.X)]),
    (tuple("0123456789"), [("float", FLOAT, re.X), ("int", INT, re.X), ("timestamp", TIMESTAMP, re.X)]),
    (tuple("."), [("float", FLOAT, re.X)]),
    (tuple("<"), [("merge", r"^(?:<<)$", 0)]),
    ((*"~nN", ""), [("null", NULL, re.X)]),
    (tuple("="), [("value", r"^(?:=)$", 0)]),
    (tuple("!&*"), [("yaml", r"^(?:!|&|\*)$", 0)]),
]

CONVERTERS: dict[str, Callable[[str], Any]] = {
    STR: str,
    YAML_TAG + "int": lambda text: int(text.replace("_", ""), 0),
    YAML_TAG + "float": float,
    YAML_TAG + "bool": lambda text: text.lower() in ("true", "yes", "on"),
    YAML_TAG + "null": lambda _text: None,
}


def _expression(resolvers: list[Resolver]) -> tuple[Callable[[str], re.Match[str] | None], list[str]]:
    groups = "|".join(f"((?x:{pattern}))" if flags & re.X else f"({pattern})" for _name, pattern, flags in resolvers)
    return re.compile(groups).match, [YAML_TAG + name for name, _pattern, _flags in resolvers]


@functools.cache
def _by_first() -> dict[str, tuple[Callable[[str], re.Match[str] | None], list[str]]]:
    """The expressions by first character, compiled when the first scalar is typed (~1 ms: not at every start)."""
    return {first: _expression(resolvers) for firsts, resolvers in RESOLVERS for first in firsts}


def implicit_tag(text: str) -> str:
    """The tag of a plain scalar (``tag:yaml.org,2002:str`` when no implicit type matches it)."""
    expression = _by_first().get(text[:1])
    found = expression[0](text) if expression else None
    return STR if found is None else expression[1][found.lastindex - 1]  # type: ignore[index,operator]


def scalar_value(tag: str, text: str) -> Any:
    """The value of a scalar with a ``tag:yaml.org,2002:`` tag; ValueError for a spelling its converter refuses
    (timestamps and the other types without a converter stay text)."""
    convert = CONVERTERS.get(tag)
    return text if convert is None else convert(text)
