"""Turn a spec file into a validated Spec, or into positioned errors (all of them at once)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from netplanx.document.loader import LoadedDocument, load_document, read_text
from netplanx.document.validation import allowed_keys, schema_problems
from netplanx.errors import SpecError
from netplanx.spec.model import Spec
from netplanx.spec.semantic import semantic_problems


def load_spec(path: Path | str) -> tuple[Any, LoadedDocument]:
    """Load, validate and semantically check one spec file; raise SpecError listing every problem."""
    path = Path(path)
    return parse_spec(read_text(path), str(path))


def parse_spec(text: str, source: str) -> tuple[Any, LoadedDocument]:
    """Validate spec text (``source`` names it in error messages)."""
    document = load_document(text, source)
    if not isinstance(document.data, dict):
        raise SpecError([f"{document.where(())}: the spec must be a mapping (allowed: apiVersion, "
                         f"{', '.join(allowed_keys(Spec))})"])
    try:
        spec = Spec.model_validate(document.data)
    except ValidationError as exc:
        raise SpecError(schema_problems(exc, document, Spec)) from None
    found = sorted((*document.positions.of(p.path, p.at_key), p.text) for p in semantic_problems(spec))
    if found:
        raise SpecError([f"{source}:{line}:{col}: {text}" for line, col, text in found])
    return spec, document
