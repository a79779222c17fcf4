"""What a feature gives the core: the one object each feature package exports.

A feature (``netplanx/features/NAME/feature.py``) owns a part of the spec (its top-level sections and
its keys under each cluster node), the links its sections create, the whole-file checks of that part, its
compile step, the resource types that read and write its live state, its adoption (live state back to
spec sections), its doctor checks, its ``netx show`` views, its commands and its post-conditions.
``netplanx/registry.py`` lists the features in order, as Terraform's ``Provider.Resources()`` lists
resource types; the core, the spec layer and the CLI loop over that list and never name a feature.

Every hook is optional, and a hook imports what it needs when it is called: a command that does not
touch a feature never imports its models, its BPF code or its gRPC stubs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from netplanx.document.problems import Problem
from netplanx.engine.resource import Resource, ResourceType

if TYPE_CHECKING:
    from netplanx.system.context import KernelContext


@dataclass(frozen=True)
class Section:
    """A key of the spec (top level, or under each cluster node) and its model: ``name`` is the model's
    attribute, ``key`` what the file says (the alias); ``field`` is a ``pydantic.Field``.

    A node section whose key is also a top-level key joins it in the node's view: ``merge(common, own,
    node)`` says how (by default, lists are appended and mappings updated)."""

    key: str
    name: str
    annotation: Any
    field: Any
    merge: Callable[[Any, Any, Any], Any] | None = None


@dataclass(frozen=True)
class NodeView:
    """The spec as one host sees it: what the features check and compile.

    For a cluster spec, one view per node: the common parts with the node's own merged in, ``node`` the
    node, ``index`` its position in ``cluster.nodes``. ``links`` are the links the features' sections put
    on the host besides ``interfaces`` (the cluster's on a node, a WireGuard device...), with the networks
    of the addresses they get; ``managed`` maps the ones nothing else may declare to what creates them.
    ``where`` maps a path in the view back to where it is written in the file.
    """

    spec: Any
    node: Any = None
    index: int | None = None
    links: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    managed: Mapping[str, str] = field(default_factory=dict)
    where: Callable[[tuple[str | int, ...]], tuple[str | int, ...]] = lambda path: path


@dataclass(frozen=True)
class DoctorCheck:
    """One thing ``netx doctor`` reports: present or not, and how to fix it."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = False


class Console(Protocol):
    """An output stream that paints only on a terminal (the CLI's)."""

    def print(self, text: str) -> None: ...

    def paint(self, text: str, colour: str) -> str: ...


@dataclass(frozen=True)
class Command:
    """A ``netx`` command a feature adds. ``run`` gets the parsed arguments, the console and an opener
    of the namespace's session (it enters ``--netns`` first). ``shared``: takes --netns/--node/--state-dir."""

    name: str
    summary: str
    description: str
    examples: Sequence[str]
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, Console, Callable[[], Any]], int]
    shared: bool = True


@dataclass(frozen=True)
class View:
    """``netx show NAME``: a feature's own view of the live state."""

    name: str
    help: str
    run: Callable[[argparse.Namespace, Console, Callable[[], Any]], int]


@dataclass(frozen=True)
class Postcondition:
    """A kind of entry of the spec's ``checks:`` list: its model (which turns an entry into plain data
    with a ``type``) and what runs it after an apply (the failures, in words)."""

    type: str
    model: type
    run: Callable[[Any, Mapping[str, Any]], list[str]]


@dataclass(frozen=True)
class Applied:
    """The last spec netx applied to a namespace, from its history: the file, the node it was applied as,
    and its text."""

    path: str
    node: str
    text: str


class Adoption:
    """One adoption in progress (``netx show -o yaml``): the live resources no feature has described yet,
    the spec sections written so far, and notes for the reader (written as comments at the top).

    Features adopt from the last in the registry to the first: a higher-level form (an endpoint: its
    namespace, veth, gateway addresses and routes) is written first and takes its resources out; the
    features before it describe what is left. ``node`` is the node name the command was given (``--node``),
    ``applied`` the last spec netx applied here, if its history has one.
    """

    def __init__(self, live: Iterable[Resource], node: str = "", applied: Applied | None = None):
        self.spec: dict[str, Any] = {}
        self.notes: list[str] = []
        self.node = node
        self.applied = applied
        self._live: dict[str, list[Resource]] = {}
        self._by_address: dict[str, Resource] = {}
        self._described: set[str] = set()
        for res in live:
            self._live.setdefault(res.kind, []).append(res)
            self._by_address[res.address] = res

    def live(self, kind: str) -> list[Resource]:
        """The live resources of ``kind`` that no feature has described yet."""
        return [r for r in self._live.get(kind, ()) if r.address not in self._described]

    def matching(self, wanted: Iterable[Resource]) -> list[Resource] | None:
        """The live objects (not described yet) that a section compiling to ``wanted`` would describe: one
        at each address, with every attribute it pins; None when any is missing or differs."""
        found = []
        for want in wanted:
            have = self._by_address.get(want.address)
            if have is None or have.address in self._described or any(
                    have.attrs.get(k) != v for k, v in want.attrs.items()):
                return None
            found.append(have)
        return found

    def describe(self, resources: Iterable[Resource]) -> None:
        """Mark resources as written into the spec (the features adopting after this one leave them out)."""
        self._described.update(r.address for r in resources)

    def left(self) -> list[Resource]:
        """Every live resource no feature has described."""
        return [r for group in self._live.values() for r in group if r.address not in self._described]


class Feature:
    """Base of every feature: each hook does nothing until a feature overrides it."""

    name: str = ""

    def sections(self, node_sections: Sequence[Section]) -> list[Section]:
        """Top-level keys of the spec; ``node_sections`` are every feature's keys under a cluster node
        (for the feature whose section holds the nodes)."""
        return []

    def node_sections(self) -> list[Section]:
        """Keys under each cluster node (``cluster.nodes[]``)."""
        return []

    def postconditions(self) -> list[Postcondition]:
        return []

    def links(self, view: NodeView) -> Mapping[str, str]:
        """Links this feature's sections create on the host ``view`` describes besides the cluster's (their
        names may be used as a route's dev; nothing else may declare them), each with what creates it."""
        return {}

    def node_views(self, spec: Any, node_sections: Sequence[Section]) -> list[NodeView] | None:
        """The spec split into per-node views (the feature that knows nodes; ``node_sections`` say how a
        node's own settings join the common ones); None: this feature does not split it."""
        return None

    def check_view(self, view: NodeView) -> Iterable[Problem]:
        """Problems of one host's view (reported once where the parts are shared between nodes)."""
        return ()

    def check(self, spec: Any) -> Iterable[Problem]:
        """Problems that need the whole file (references across sections, duplicates across nodes)."""
        return ()

    def compile(self, view: NodeView) -> list[Resource]:
        """The desired resources of this feature on the host ``view`` describes."""
        return []

    def types(self, ctx: KernelContext) -> list[ResourceType]:
        """The resource types of this feature, bound to one namespace (``ctx``)."""
        return []

    def adopt(self, adoption: Adoption) -> None:
        """Write the live resources this feature's sections can describe into ``adoption.spec`` and mark
        them described; what it cannot describe exactly, it leaves (or explains in a note)."""

    def adoption_options(self) -> dict[str, Any]:
        """Read options adoption needs beyond what the kinds read on their own."""
        return {}

    def show_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Options this feature adds to ``netx show``."""

    def show_options(self, args: argparse.Namespace) -> dict[str, Any]:
        """Read options from this feature's ``netx show`` options."""
        return {}

    def views(self) -> list[View]:
        return []

    def commands(self) -> list[Command]:
        return []

    def doctor(self) -> list[DoctorCheck]:
        return []
