"""Terraform-like text: ``+`` create, ``~`` update, ``-/+`` replace, ``-`` delete, with disruptions."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from netplanx.engine.plan import Change, Plan
from netplanx.engine.resource import Resource

SYMBOL = {"create": ("+", "32"), "update": ("~", "33"), "replace": ("-/+", "35"), "delete": ("-", "31")}
VERB = {"create": "will be created", "update": "will be updated in-place", "replace": "must be replaced",
        "delete": "will be destroyed"}


def _value(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return f'"{value}"'
    if kind is int:
        return str(value)
    if kind is bool or value is None:
        return "true" if value is True else "false" if value is False else "null"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, sort_keys=True, default=str)


def _nested_changes(name: str, before: Any, after: Any) -> list[tuple[str, Any, Any]]:
    """Paths inside dict/list attributes that differ, as ``name[0].via``."""
    from deepdiff import DeepDiff  # imported when needed: it costs 80 ms of start-up

    diff = DeepDiff(before, after, ignore_order=False, verbose_level=2, view="tree")
    found = []
    for level in (item for group in diff.values() for item in group):
        path = level.path(root=name)
        found.append((path.replace("['", ".").replace("']", ""), level.t1, level.t2))
    return found


def _attribute_lines(change: Change, paint: Paint) -> list[str]:
    lines = []
    if change.action in ("update", "replace") and change.before and change.after:
        for key in change.changed:
            before, after = change.before.attrs.get(key), change.after.attrs.get(key)
            if key == "owned":  # netx takes ownership: the marker is written
                before, after = change.before.owned, change.after.owned
            note = paint("  # forces replacement", "2") if key in change.forces_replacement else ""
            if isinstance(before, dict | list) and isinstance(after, dict | list):
                for path, old, new in _nested_changes(key, before, after):
                    lines.append(f"      ~ {path}: {_fmt(old)} -> {_fmt(new)}{note}")
            else:
                lines.append(f"      ~ {key}: {_value(before)} -> {_value(after)}{note}")
    elif change.action == "create" and change.after:
        lines.append(f"      {_shown_attributes(change.after.attrs)}")
    return lines


def _shown_attributes(attrs: Mapping[str, Any]) -> str:
    """``key=value`` of a created resource's attributes, all but None, [] and {} (tested by type, not by
    equality: a plan of 10,000 creates shows 110,000 attributes)."""
    return " ".join([f"{key}={_value(value)}" for key, value in attrs.items()
                     if value is not None and (type(value) not in (list, dict) or value)])


def _fmt(value: Any) -> str:
    return "(none)" if type(value).__name__ == "NotPresent" else _value(value)


Paint = Callable[[str, str], str]


def painter(stream: TextIO) -> Paint:
    """ANSI colours only on a terminal (and never with NO_COLOR set)."""
    if stream.isatty() and not os.environ.get("NO_COLOR"):
        return lambda text, code: f"\033[{code}m{text}\033[0m"
    return lambda text, _code: text


def plan_text(plan: Plan, paint: Paint) -> str:
    """A plan for a person, as Terraform shows one, with each change's disruption."""
    lines = [f"{paint('Warning:', '33')} {w}" for w in plan.warnings]
    if plan.empty:
        lines.append(f"No changes. The live state of {_where(plan)} matches the spec.")
    else:
        lines.append(f"netx will perform the following actions in {_where(plan)}:\n")
        for number, change in enumerate(_in_step_order(plan), start=1):
            symbol, colour = SYMBOL[change.action]
            reason = f", because {change.reason}" if change.reason else ""
            lines.append(paint(f"  # {number}. {change.address} {VERB[change.action]}{reason}", "2"))
            lines.append(f"{paint(f'{symbol:>3} {change.address}', colour)}  {paint(f'({change.disruption})', '1')}")
            lines += _attribute_lines(change, paint)
        summary = plan.summary()
        lines.append(f"\nPlan: {summary['add']} to add, {summary['change']} to change, "
                     f"{summary['destroy']} to destroy.")
    if plan.unmanaged:
        lines.append(paint(f"{len(plan.unmanaged)} live object(s) not managed by netx left untouched.", "2"))
    return "\n".join(lines) + "\n"


def render_plan(plan: Plan, stream: TextIO) -> None:
    stream.write(plan_text(plan, painter(stream)))


def _in_step_order(plan: Plan) -> list[Change]:
    seen: dict[str, Change] = {}
    for step in plan.steps:
        seen.setdefault(step.change.address, step.change)
    return list(seen.values())


def _where(plan: Plan) -> str:
    return f"namespace {plan.netns}" if plan.netns else "the host namespace"


def render_live(resources: Sequence[Resource], stream: TextIO) -> None:
    """A table of live objects, each marked as owned by netx or unmanaged (rich, colour on a terminal)."""
    from rich.console import Console
    from rich.markup import escape

    console = Console(file=stream, highlight=False, soft_wrap=True)
    width = max((len(r.address) for r in resources), default=10)
    console.print(f"[bold]{'ADDRESS':<{width}}  {'OWNER':<9}  ATTRIBUTES[/bold]")
    for res in sorted(resources, key=lambda r: (r.kind, r.address)):
        owner = "netx" if res.owned else "unmanaged"
        details = " ".join(f"{k}={_value(v)}" for k, v in _shown(res.attrs).items())
        if res.meta.get("status"):  # what the object reports about itself (a WireGuard peer's handshake)
            details += "  [" + " ".join(f"{k}={', '.join(map(str, v)) if isinstance(v, list) else v}"
                                        for k, v in res.meta["status"].items()) + "]"
        console.print(f"{escape(res.address):<{width}}  {owner:<9}  {escape(details)}", crop=False)


def _shown(attrs: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attrs.items() if v not in (None, [], {}, False)}
