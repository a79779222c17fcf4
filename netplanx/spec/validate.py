"""Turn a spec file into a validated Spec, or into positioned errors (all of them at once).

When parts of the file fail the schema, the checks that need the whole file still run on the parts that
passed it (a problem that only follows from a failed part, such as a reference to an entry with its own
error, is not repeated).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from netplanx.document.loader import LoadedDocument, load_document, read_text
from netplanx.document.pruning import Pruned, cut_point, mentions_of, prune
from netplanx.document.validation import Positioned, allowed_keys, error_paths, schema_problems
from netplanx.errors import SpecError
from netplanx.files import display
from netplanx.spec.model import Spec, model_for
from netplanx.spec.semantic import semantic_problems

MAX_ROUNDS = 8  # cutting a failed part may make its parent fail (a list that must not be empty): cut again
FIRST_AT = re.compile(r"first at ([\w.\[\]]+)")


def load_spec(path: Path | str) -> tuple[Any, LoadedDocument]:
    """Load, validate and semantically check one spec file; raise SpecError listing every problem."""
    path = Path(path)
    return parse_spec(read_text(path), display(path))


def parse_spec(text: str, source: str) -> tuple[Any, LoadedDocument]:
    """Validate spec text (``source`` names it in error messages)."""
    document = load_document(text, source)
    if not isinstance(document.data, dict):
        raise SpecError([f"{document.where(())}: the spec must be a mapping (allowed: apiVersion, "
                         f"{', '.join(allowed_keys(Spec))})"])
    model = model_for(frozenset(document.data))
    try:
        spec = model.model_validate(document.data)
    except ValidationError as exc:
        found = schema_problems(exc, document, model) + _checks_of_the_rest(document, exc, model)
        raise SpecError([f"{source}:{line}:{col}: {text}" for line, col, text in sorted(set(found))]) from None
    found = _positioned(semantic_problems(spec), document, prune(document.data, ()))
    if found:
        raise SpecError([f"{source}:{line}:{col}: {text}" for line, col, text in sorted(found)])
    return spec, document


def _checks_of_the_rest(document: LoadedDocument, exc: ValidationError, model: Any) -> list[Positioned]:
    """The whole-file checks of the parts that passed the schema (``model``: the one that failed it)."""
    pruned = prune(document.data, ())
    for _ in range(MAX_ROUNDS):
        cuts = {cut_point(pruned.original(path)) for path in error_paths(exc, pruned.data, model)}
        if cuts <= pruned.dropped:
            return []  # no progress: the rest cannot be checked on its own
        pruned = prune(document.data, pruned.dropped | cuts)
        try:
            spec = model.model_validate(pruned.data)
        except ValidationError as again:
            exc = again
            continue
        mentions = mentions_of(document.data, pruned.dropped)
        problems = [p for p in semantic_problems(spec) if not any(m in p.text for m in mentions)]
        return _positioned(problems, document, pruned)
    return []


def _positioned(problems: Any, document: LoadedDocument, pruned: Pruned) -> list[Positioned]:
    found = []
    for problem in problems:
        text = FIRST_AT.sub(lambda m: "first at " + _dotted(pruned.original(_parse(m.group(1)))), problem.text)
        found.append((*document.positions.of(pruned.original(problem.path), problem.at_key), text))
    return found


def _parse(dotted: str) -> tuple[str | int, ...]:
    """``cluster.nodes[1].routes[0]`` -> ("cluster", "nodes", 1, "routes", 0)."""
    return tuple(int(part) if part.isdigit() else part for part in re.findall(r"[^.\[\]]+", dotted))


def _dotted(path: tuple[str | int, ...]) -> str:
    return ".".join(f"{p}" if isinstance(p, str) else f"[{p}]" for p in path).replace(".[", "[")
