"""The agent config of ``netx pull`` (default ``/etc/netx/agent.yaml``): which git branch holds the spec,
who may sign it, which node this is and how a change rolls out across the fleet. Checked as specs are:
every problem with its position, ``FILE:LINE:COL: what is wrong (allowed: ...)``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError
from pydantic.functional_validators import BeforeValidator

from netplanx.document.fields import Name, SpecModel
from netplanx.document.loader import load_document, read_text
from netplanx.document.validation import allowed_keys, schema_problems
from netplanx.errors import ConfigError, SpecError
from netplanx.files import display

DEFAULT_WAVES = (1, "25%", "100%")
URL_FORMS = "https://, ssh://, git:// or file:// URLs, user@host:path, or an absolute path"


def _url(value: Any) -> str:
    text = value if isinstance(value, str) else ""
    if not (re.match(r"(https?|ssh|git|file)://[^\s]+$", text) or re.fullmatch(r"/[^\s]*", text)
            or re.fullmatch(r"[\w.-]+@[\w.-]+:[^\s]+", text)):
        raise ValueError(f"{value!r} is not a git URL netx fetches from (allowed: {URL_FORMS})")
    return text


def _branch(value: Any) -> str:
    text = value if isinstance(value, str) else ""
    if not re.fullmatch(r"[A-Za-z0-9._][A-Za-z0-9._/-]*", text) or ".." in text or "//" in text \
            or text.endswith(("/", ".lock", ".")):
        raise ValueError(f"{value!r} is not a branch name (allowed: letters, digits, '.', '_', '-' and '/', "
                         "such as main or release/2")
    return text


def _repo_path(value: Any) -> str:
    text = value if isinstance(value, str) else ""
    parts = text.split("/")
    if not text or text.startswith("/") or any(p in ("", ".", "..") for p in parts) or re.search(r"[\0\n]", text):
        raise ValueError(f"{value!r} is not a path inside the repository (allowed: a relative path without '.' "
                         "or '..', such as clusters/prod.yaml)")
    return text


def _absolute(value: Any) -> str:
    text = value if isinstance(value, str) else ""
    if not text.startswith("/") or "/../" in f"{text}/" or "\0" in text:
        raise ValueError(f"{value!r} is not an absolute path without '..' (allowed: such as /etc/netx/allowed_signers)")
    return text


def _wave(value: Any) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{1,3}%", value) and 1 <= int(value[:-1]) <= 100:
        return value
    raise ValueError(f"wave size {value!r} is not valid (allowed: a number of nodes, at least 1, or a percentage "
                     "of the nodes such as \"25%\", as Ansible's serial)")


Url = Annotated[str, BeforeValidator(_url), Field(description=f"A git repository ({URL_FORMS}).")]
WaveSize = Annotated[int | str, BeforeValidator(_wave)]


class Source(SpecModel):
    """Where the spec comes from, and who may sign it."""

    url: Url
    branch: Annotated[str, BeforeValidator(_branch)] = Field("main", description="The branch to follow.")
    path: Annotated[str, BeforeValidator(_repo_path)] = Field(description="The spec file in the repository.")
    allowed_signers: Annotated[str, BeforeValidator(_absolute)] = Field(
        alias="allowedSigners", description="git's allowed-signers file: the SSH keys whose signed commits are "
                                            "applied (one 'PRINCIPAL KEY' a line; see ssh-keygen(1)).")


class Rollout(SpecModel):
    """Waves: the nodes of the spec's cluster, in their order, in batches as Ansible's serial."""

    waves: list[WaveSize] = Field(default_factory=lambda: list(DEFAULT_WAVES), min_length=1,
                                  description="Batch sizes (numbers or percentages of the nodes); the last repeats.")
    status: Url | None = Field(None, description="Where nodes publish their status as refs/netx/status/NODE "
                                                 "(default: the source repository).")


class Agent(SpecModel):
    """netx pull's settings."""

    source: Source
    node: Name | None = Field(None, description="This node's name in the cluster spec (default: --node).")
    rollout: Rollout | None = Field(None, description="Roll changes out in waves (unset: apply as soon as seen).")

    @property
    def status_url(self) -> str:
        return (self.rollout.status if self.rollout else None) or self.source.url


def load_agent(path: Path) -> Agent:
    """The agent config at ``path``; ConfigError lists every problem with its position."""
    try:
        document = load_document(read_text(path), display(path))
    except SpecError as exc:
        raise ConfigError(exc.problems) from None
    if not isinstance(document.data, dict):
        raise ConfigError([f"{document.where(())}: the agent config must be a mapping (allowed: "
                           f"{', '.join(allowed_keys(Agent))})"])
    try:
        return Agent.model_validate(document.data)
    except ValidationError as exc:
        raise ConfigError([f"{document.source}:{line}:{col}: {text}"
                           for line, col, text in schema_problems(exc, document, Agent)]) from None
