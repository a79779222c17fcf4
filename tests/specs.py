"""Helpers for tests of spec text: dedented specs, and the problems a spec is refused with."""

from __future__ import annotations

import textwrap

import pytest

from netplanx.errors import SpecError
from netplanx.spec.model import Spec
from netplanx.spec.validate import parse_spec


def spec(text: str) -> str:
    return textwrap.dedent(text)


def problems_of(text: str, source: str) -> list[str]:
    """The problems parse_spec reports for ``text`` (named ``source``); fails the test when it is valid."""
    with pytest.raises(SpecError) as caught:
        parse_spec(text, source)
    assert caught.value.problems, "a SpecError must carry at least one problem"
    assert str(caught.value) == "\n".join(caught.value.problems)
    return caught.value.problems

# The spec's top-level keys as error messages list them (each section a feature adds joins the list)
TOP_KEYS = ", ".join(field.alias or name for name, field in Spec.model_fields.items() if name != "api_version")


def one_problem(text: str, source: str, line: int, col: int) -> str:
    """The single problem parse_spec reports for ``text``, checked to be reported at ``source:line:col``."""
    problems = problems_of(text, source)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{source}:{line}:{col}: "), problems[0]
    return problems[0]
