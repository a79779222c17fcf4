"""``netx pull``: the spec of a signed commit of a git branch, taken only forward.

The branch is fetched into a bare clone in the state directory. Before anything of the commit is parsed,
its signature must verify against the allowed signers, and it must descend from the commit applied here
last (a branch rewritten backwards is refused); the spec is then read as a blob of that very commit. What
was applied, and every refusal or failure, is recorded in the state directory (0600).

Only the tip's signature is checked: it covers the tree, so the whole spec, whoever made the commits
before it. Object ids are SHA-1 with git's collision detection (or SHA-256 in a SHA-256 repository).
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netplanx.document.loader import MAX_BYTES, decode_text, load_document
from netplanx.errors import NetxError
from netplanx.system.git import GitError, Repository
from netplanx.system.state import StateStore
from netplanx.workflow.agent import Agent
from netplanx.workflow.waves import MAX_REPORT, Report

RECORD = "pull"
SOURCE_REF = "refs/netx/source"  # the branch as last fetched
APPLIED_REF = "refs/netx/applied"  # keeps the applied commit (and its history) in the clone
STATUS_PREFIX = "refs/netx/status/"


class Refused(NetxError):
    """The fetched commit may not be applied: ``kind`` is fetch, signature, history or file."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Candidate:
    """A commit that passed every check, and its spec."""

    commit: str
    signer: str
    text: str
    label: str  # how messages and the history name the spec: PATH@COMMIT


class PullState:
    """This namespace's record of pulls: the applied commit, failures, the report published last."""

    def __init__(self, store: StateStore):
        self.store = store
        self.data: dict[str, Any] = store.load(RECORD)

    @property
    def applied(self) -> str | None:
        return self.data.get("commit")

    def save(self, **values: Any) -> None:
        self.data.update(values)
        self.store.save(RECORD, self.data)

    def failure(self, kind: str, message: str, commit: str | None = None) -> None:
        """A refusal or failure: counted by kind; ``commit`` (a commit that failed to apply) is not tried
        again until another one comes."""
        counts = dict(self.data.get("failures", {}))
        counts[kind] = counts.get(kind, 0) + 1
        failure = {"at": time.time(), "kind": kind, "message": message, "commit": commit}
        failed = {"failed_commit": commit, "failed_message": message} if commit else {}
        self.save(failures=counts, last_failure=failure, **failed)


def repository(state_dir: Path, scope: str) -> Repository:
    return Repository(state_dir / "pull" / f"{scope}.git")


def fetch(repo: Repository, agent: Agent) -> None:
    """The branch, and the status refs when the fleet rolls out in waves (one fetch when they share a
    repository)."""
    source = [f"+refs/heads/{agent.source.branch}:{SOURCE_REF}"]
    status = [f"+{STATUS_PREFIX}*:{STATUS_PREFIX}*"] if agent.rollout else []
    try:
        if agent.status_url == agent.source.url:
            repo.fetch(agent.source.url, source + status)
        else:
            repo.fetch(agent.source.url, source)
            if status:
                repo.fetch(agent.status_url, status)
    except GitError as exc:
        raise Refused("fetch", str(exc)) from None


def candidate(repo: Repository, agent: Agent, applied: str | None, offline: bool = False) -> Candidate:
    """The commit to apply (the fetched tip; ``offline``, the applied one again) once its signature and
    its history are checked, with its spec."""
    commit = repo.commit(APPLIED_REF if offline else SOURCE_REF)
    if commit is None:
        raise Refused("fetch", "no commit applied here yet: nothing to apply offline" if offline else
                      f"branch {agent.source.branch} was not fetched")
    signers = signers_file(agent.source.allowed_signers)
    try:
        signer = repo.signer(commit, signers)
    except GitError as exc:
        raise Refused("signature", f"refused: {exc}") from None
    if applied and commit != applied and not repo.is_ancestor(applied, commit):
        raise Refused("history", f"refused: commit {commit[:12]} does not descend from {applied[:12]}, the commit "
                                 f"applied here (the branch was rewritten backwards or replaced)")
    label = f"{agent.source.path}@{commit[:12]}"
    try:
        raw = repo.file(commit, agent.source.path, MAX_BYTES)
    except GitError as exc:
        raise Refused("file", f"refused: {exc}") from None
    return Candidate(commit, signer, decode_text(raw, label), label)


def signers_file(path: str) -> Path:
    """The allowed-signers file, when only its owner (root, or this user) may change it."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise Refused("signature", f"allowed signers {path}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode) or info.st_mode & 0o022 or info.st_uid not in (0, os.geteuid()):
        raise Refused("signature", f"allowed signers {path} may be changed by others than its owner, or is not a "
                                   f"regular file of root's (allowed: chmod 644 {path}, owned by root)")
    return Path(path)


def cluster_nodes(candidate: Candidate) -> list[str]:
    """The names in the spec's ``cluster.nodes``, in order ([] when it describes one host): the waves are
    cut from them. Only the YAML is read here (validation comes with the apply)."""
    data = load_document(candidate.text, candidate.label).data
    nodes = data.get("cluster", {}).get("nodes") if isinstance(data, dict) and isinstance(data.get("cluster"),
                                                                                           dict) else None
    if not isinstance(nodes, list):
        return []
    return [n["name"] for n in nodes if isinstance(n, dict) and isinstance(n.get("name"), str)]


def reports(repo: Repository) -> dict[str, Report]:
    """Every node's last report, as fetched (malformed ones left out)."""
    refs = repo.refs(STATUS_PREFIX)
    found = repo.blobs(set(refs.values()), MAX_REPORT)
    decoded = {ref.removeprefix(STATUS_PREFIX): Report.decode(found[oid]) for ref, oid in refs.items() if oid in found}
    return {node: report for node, report in decoded.items() if report is not None}


def publish(repo: Repository, agent: Agent, node: str, report: Report) -> None:
    """Push this node's report as ``refs/netx/status/NODE`` (a blob) to the status repository."""
    oid = repo.write_blob(report.encode())
    repo.push(agent.status_url, [f"+{oid}:{STATUS_PREFIX}{node}"])
    repo.set_ref(f"{STATUS_PREFIX}{node}", oid)
