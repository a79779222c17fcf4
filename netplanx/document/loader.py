"""Load a YAML document into plain Python data, remembering where every value came from.

A plain document (mappings, lists and scalars: no anchors, aliases, tags or merge keys, each key once; the exact
subset is in _fast_yaml.c) is read straight from libyaml's events by the C extension _fast_yaml, built at install:
about 3.5x faster for a large spec. Every other document, and every one where the extension was not built, takes
ruamel.yaml's C composer (libyaml), which builds the node tree quickly; we construct the data ourselves so that
duplicate keys, alias bombs, deep nesting and exotic tags become positioned errors instead of surprises. Both paths
give the same data: plain scalars are typed by one table (scalars.py), so a valid spec never imports ruamel.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from netplanx.document.scalars import MERGE, YAML_TAG, implicit_tag, scalar_value
from netplanx.errors import SpecError
from netplanx.files import InputError, display, read_bounded

if TYPE_CHECKING:  # ruamel.yaml is imported to parse (a cached spec is only read as text)
    from ruamel.yaml.cyaml import CSafeLoader
    from ruamel.yaml.nodes import Node

MAX_BYTES = 16 * 1024 * 1024
MAX_NODES = 2_000_000
MAX_DEPTH = 64
Path_ = tuple[str | int, ...]


@dataclass
class Positions:
    """Line and column (1-based) of every value and every mapping key, by data path: looked up in the node
    tree when a message needs one (building a table of every position would cost more than the parse). The fast
    path builds no tree: it gives the ``text``, which ruamel composes when the first position is asked for."""

    root: Node | None = None
    text: str | None = None

    def of(self, path: Path_, key: bool = False) -> tuple[int, int]:
        """Position of the value at ``path`` (of its key with ``key``), else of its deepest known parent."""
        if self.text is not None:
            self.root, self.text = _loader_class()(self.text).get_single_node(), None
        node, key_node = self.root, None
        if node is None:
            return (1, 1)
        for part in path:
            child, key_node = _child(node, part)
            if child is None:
                return _at(node)
            node = child
        return _at(key_node if key and key_node is not None else node)


def _child(node: Node, part: str | int) -> tuple[Node | None, Node | None]:
    """The value node (and key node) at ``part`` of a mapping or list node, as the builder takes it: the
    first of duplicate keys, no merge keys."""
    if node.id == "mapping" and isinstance(part, str):
        for key_node, value_node in node.value:
            if key_node.id == "scalar" and key_node.tag != MERGE and str(key_node.value) == part:
                return value_node, key_node
    elif node.id == "sequence" and isinstance(part, int) and 0 <= part < len(node.value):
        return node.value[part], None
    return None, None


def _at(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


@dataclass
class LoadedDocument:
    """A parsed spec: its data, the positions of its parts, and where it came from."""

    source: str
    data: Any
    positions: Positions

    def where(self, path: Path_, key: bool = False) -> str:
        line, col = self.positions.of(path, key)
        return f"{self.source}:{line}:{col}"


class _Builder:
    def __init__(self, source: str, loader: CSafeLoader):
        self.source = source
        self.loader = loader
        self.problems: list[str] = []
        self.nodes = 0

    def problem(self, node: Node, text: str) -> None:
        line, col = _at(node)
        self.problems.append(f"{self.source}:{line}:{col}: {text}")

    def build(self, node: Node, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _Abort(node, f"document expands to more than {MAX_NODES} values "
                               "(alias expansion too large; write the values out or reduce aliases)")
        if depth > MAX_DEPTH:
            raise _Abort(node, f"nesting deeper than {MAX_DEPTH} levels (allowed: at most {MAX_DEPTH})")
        kind = node.id
        if kind == "mapping":
            return self.mapping(node, depth)
        if kind == "sequence":
            return [self.build(item, depth + 1) for item in node.value]
        return self.scalar(node)

    def mapping(self, node: Node, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first: dict[str, Node] = {}
        for key_node, value_node in node.value:
            if key_node.tag == MERGE:
                self.problem(key_node, "merge keys (<<) are not supported (allowed: plain keys; "
                                       "anchors and aliases on values are fine)")
                continue
            if key_node.id != "scalar":
                self.problem(key_node, "a mapping key must be a plain scalar (allowed: text keys)")
                continue
            key = str(key_node.value)
            if key in result:
                line, col = _at(first[key])
                self.problem(key_node, f"duplicate key '{key}' (first given at line {line}, "
                                       f"column {col}; allowed: each key once)")
                continue
            first[key] = key_node
            result[key] = self.build(value_node, depth + 1)
        return result

    def scalar(self, node: Node) -> Any:
        if not node.tag.startswith(YAML_TAG):
            self.problem(node, f"unsupported tag {node.tag} (allowed: plain YAML values)")
            return None
        try:
            return scalar_value(node.tag, node.value)
        except ValueError:
            return self.loader.construct_object(node, deep=True)  # rare spellings: ruamel knows them


class _Abort(Exception):
    def __init__(self, node: Node, text: str):
        super().__init__(text)
        self.node = node
        self.text = text


def _check_expansion(root: Node) -> None:
    """Refuse a document whose aliases expand past MAX_NODES, before expanding anything.

    Aliases share node objects, so sizes are computed once per distinct node (linear in the file).
    The error points at the innermost mapping or list whose own entries add up past the limit.
    """
    sizes: dict[int, int] = {}

    def size(node: Node, depth: int) -> int:
        if id(node) not in sizes:
            if depth > MAX_DEPTH:
                raise _Abort(node, f"nesting deeper than {MAX_DEPTH} levels (allowed: at most {MAX_DEPTH})")
            sizes[id(node)] = 1 + sum(size(child, depth + 1) for child in _children(node))
        return sizes[id(node)]

    if size(root, 0) <= MAX_NODES:
        return
    node = root
    while True:
        bigger = next((child for child in _children(node) if sizes[id(child)] > MAX_NODES), None)
        if bigger is None:
            raise _Abort(node, f"document expands to more than {MAX_NODES} values (alias expansion too large; "
                               "allowed: write the values out or use fewer nested aliases)")
        node = bigger


def _children(node: Node) -> list[Node]:
    if node.id == "mapping":
        return [part for pair in node.value for part in pair]
    if node.id == "sequence":
        return list(node.value)
    return []


def read_text(path: Path) -> str:
    """Read a spec as UTF-8 (``-``: standard input): a regular file of at most MAX_BYTES, bad bytes
    reported with their position."""
    name = display(path)
    try:
        raw = read_bounded(path, MAX_BYTES, stdin=True, what="the spec")
    except InputError as exc:
        raise SpecError([f"{name}:1:1: {exc.strerror}"]) from None
    return decode_text(raw, name)


def decode_text(raw: bytes, name: str) -> str:
    """Spec bytes as UTF-8 text; a bad byte is a SpecError at its position in the file ``name``."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        col = len(raw[line_start:exc.start].decode("utf-8", errors="replace")) + 1  # characters, as YAML counts
        raise SpecError([f"{name}:{line}:{col}: invalid UTF-8 byte 0x{raw[exc.start]:02x} "
                         "(allowed: UTF-8 text)"]) from exc


@functools.cache
def _loader_class() -> type[CSafeLoader]:
    """ruamel.yaml's C composer resolving plain scalars with scalars.implicit_tag, the table both paths use
    (ruamel's own resolver reaches its regular expressions through lazy proxies and builds a new tag object each
    time it is called back, once a node); no path resolvers."""
    from ruamel.yaml.cyaml import CSafeLoader
    from ruamel.yaml.nodes import ScalarNode, SequenceNode
    from ruamel.yaml.tag import Tag

    tags: dict[str, Tag] = {}  # tag text -> ruamel's tag object, made once

    def tag_of(value: str) -> Tag:
        text = implicit_tag(value)
        tag = tags.get(text)
        if tag is None:
            tag = tags[text] = Tag(suffix=text)
        return tag

    class Loader(CSafeLoader):
        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self.plain: dict[str, Any] = {}  # plain scalar -> its tag: keys and many values repeat

        def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
            if kind is ScalarNode:
                if implicit[0]:
                    tag = self.plain.get(value)
                    if tag is None:
                        tag = self.plain[value] = tag_of(value)
                    return tag
                return self.DEFAULT_SCALAR_TAG
            return self.DEFAULT_SEQUENCE_TAG if kind is SequenceNode else self.DEFAULT_MAPPING_TAG

        def descend_resolver(self, current_node: Any, current_index: Any) -> None:
            pass

        def ascend_resolver(self) -> None:
            pass

    return Loader


@functools.cache
def _fast_path() -> ModuleType | None:
    """The C extension _fast_yaml, imported on first use (a cached spec loads no YAML); None where it was not built
    (no C compiler or no libyaml headers at install)."""
    try:
        from netplanx.document import _fast_yaml
    except ImportError:
        return None
    return _fast_yaml


def _plain_value(text: str) -> Any:
    """A plain scalar's value for the fast path, as _Builder.scalar makes it; _fast_yaml.Unsupported where the
    converter refuses the spelling (ruamel's constructor reads it on the ruamel path)."""
    try:
        return scalar_value(implicit_tag(text), text)
    except ValueError:
        raise _fast_path().Unsupported(f"the plain scalar {text!r}") from None


def load_document(text: str, source: str) -> LoadedDocument:
    """Parse one YAML document; every problem found is raised together as a SpecError."""
    fast = _fast_path()
    if fast is not None:
        try:
            data = fast.load(text, _plain_value, MAX_DEPTH, MAX_NODES)
        except fast.Unsupported:
            pass  # the ruamel path loads it, or says at which position what is wrong
        else:
            return LoadedDocument(source, data, Positions(text=text))
    return _load_composed(text, source)


def _load_composed(text: str, source: str) -> LoadedDocument:
    """load_document with ruamel.yaml's composer and _Builder."""
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    loader = _loader_class()(text)
    try:
        node = loader.get_single_node()
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = exc.problem or exc.context or "invalid YAML"
        allowed = "one YAML document"
        if "':'" in what:
            allowed = "quote values that contain ':' inside [ ] or { }, such as \"fd00::1/64\""
        raise SpecError([f"{source}:{line}:{col}: YAML syntax error: {what} (allowed: {allowed})"]) from exc
    except YAMLError as exc:
        raise SpecError([f"{source}:1:1: YAML error: {exc} (allowed: one YAML document)"]) from exc
    if node is None:
        return LoadedDocument(source, {}, Positions())
    builder = _Builder(source, loader)
    try:
        if "*" in text:  # an alias is written with '*': without one every node is built once
            _check_expansion(node)
        data = builder.build(node, 0)
    except _Abort as exc:
        builder.problem(exc.node, exc.text)
        data = None
    except RecursionError:
        builder.problem(node, f"nesting too deep (allowed: at most {MAX_DEPTH} levels)")
        data = None
    if builder.problems:
        raise SpecError(builder.problems)
    return LoadedDocument(source, data, Positions(node))
