"""``netx pull`` (apply the signed tip of a git branch, in waves across a fleet) and ``netx status``."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from netplanx.cli.apply import apply_desired
from netplanx.cli.common import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, open_session, print_json
from netplanx.errors import ApplyError, NetxError, PlanError, SpecError
from netplanx.render.console import Output
from netplanx.system.root import require_root

if TYPE_CHECKING:
    from netplanx.system.git import Repository
    from netplanx.workflow.agent import Agent
    from netplanx.workflow.pull import Candidate, PullState
    from netplanx.workflow.session import Desired
    from netplanx.workflow.waves import Report


def cmd_pull(args: argparse.Namespace, out: Output) -> int:
    from netplanx.system.lock import exclusive
    from netplanx.system.state import StateStore
    from netplanx.workflow.agent import load_agent
    from netplanx.workflow.metrics import pull_metrics_text, write_textfile
    from netplanx.workflow.pull import PullState, repository

    require_root()
    agent = load_agent(args.config)
    args.node = agent.node or args.node
    store = StateStore(args.state_dir, args.netns)
    repo = repository(args.state_dir, store.scope)
    try:
        with exclusive(args.state_dir / "pull" / f"{store.scope}.lock", args.lock_timeout):
            state = PullState(store)
            code, outcome = _pull(args, agent, state, repo)
            state.save(last_run=time.time())
    finally:
        repo.close()
    if args.textfile:
        write_textfile(args.textfile, pull_metrics_text(state.data, agent.source.branch))
    if args.json:
        print_json(outcome)
    elif code == EXIT_OK:
        out.print(outcome["message"])
    else:
        err = Output(sys.stderr)
        err.print(f"{err.paint('error:', '31')} {outcome['message']}")
    return code


def _pull(args: argparse.Namespace, agent: Agent, state: PullState, repo: Repository) -> tuple[int, dict[str, Any]]:
    """Fetch, check, wait for the earlier waves, apply, report: the exit code and the outcome."""
    from netplanx.workflow import pull, waves

    applied = state.applied
    outcome: dict[str, Any] = {"node": args.node, "previous": applied}
    try:
        if not args.offline:
            pull.fetch(repo, agent)
        found = pull.candidate(repo, agent, applied, args.offline)
    except pull.Refused as exc:
        state.failure(exc.kind, str(exc))
        return EXIT_ERROR, {**outcome, "result": "refused", "kind": exc.kind,
                            "message": f"{exc}; nothing was changed"}
    commit, new = found.commit, found.commit != applied
    outcome.update(commit=commit, signer=found.signer)
    try:
        nodes = pull.cluster_nodes(found)
    except SpecError as exc:
        return _failed(args, agent, state, repo, [], found, "spec", exc, outcome)
    if nodes and args.node not in nodes:
        return EXIT_OK, {**outcome, "result": "not-a-member", "message": f"{args.node} is not a node of the "
                         f"cluster at {commit[:12]}: nothing to apply here"}
    published = _publisher(args, agent, state, repo, nodes)
    if new and commit == state.data.get("failed_commit") and not args.retry:
        published(waves.Report(commit, waves.FAILED, message=state.data.get("failed_message", "")[:200]))
        return EXIT_ERROR, {**outcome, "result": "skipped", "message": f"{commit[:12]} failed here before "
                            "(see 'netx status'): not tried again until a new commit comes (--retry tries now)"}
    if agent.rollout and nodes and new and not args.offline:
        gate = waves.decide(nodes, agent.rollout.waves, args.node, commit, pull.reports(repo))
        outcome.update(wave=gate.wave + 1, waves=gate.waves)
        if not gate.open:
            state.save(waiting=True)
            return EXIT_OK, {**outcome, "result": "stopped" if gate.failed else "waiting",
                             "waiting_for": gate.waiting, "message": gate.reason(commit)}
    state.save(waiting=False)
    try:
        desired = _desired(args, found)
        _code, report, plan = apply_desired(_unattended(args, found.label), Output(sys.stderr), desired)  # raises
        broken = _checks(args, desired) if new and report["result"] == "no-changes" else []
        if broken:
            raise ApplyError(f"{commit[:12]} changes nothing here but its post-conditions fail: "
                             + "; ".join(broken), restored=True)
    except (SpecError, PlanError, ApplyError) as exc:  # the commit's fault: reported, not tried again
        return _failed(args, agent, state, repo, nodes, found, "spec" if isinstance(exc, SpecError) else "apply",
                       exc, outcome)
    except NetxError as exc:  # this host's moment (a lock held, a namespace missing): tried again next time
        state.failure("other", str(exc))
        return EXIT_ERROR, {**outcome, "result": "failed", "kind": "other", "message": str(exc)}
    if new:
        state.save(commit=commit, applied_at=time.time(), signer=found.signer, path=agent.source.path,
                   branch=agent.source.branch, failed_commit=None)
        repo.set_ref(pull.APPLIED_REF, commit)
    outcome.update(result=report["result"], writes=report["writes"], summary=plan.summary(),
                   message=_applied_message(found, report, plan.summary(), new))
    if not published(waves.Report(commit, waves.HEALTHY)):
        return EXIT_ERROR, {**outcome, "message": outcome["message"] + f"; publishing its status failed: "
                            f"{state.data['last_failure']['message']}"}
    return EXIT_OK, outcome


def _desired(args: argparse.Namespace, found: Candidate) -> Desired:
    from netplanx.spec.cache import SpecCache
    from netplanx.workflow.session import desired_from_text

    return desired_from_text(found.text, found.label, args.node, SpecCache(args.state_dir))


def _unattended(args: argparse.Namespace, label: str) -> argparse.Namespace:
    """The arguments of the apply a pull makes: nobody approves or confirms it (so it returns only when the
    change is kept, and raises otherwise); what it says goes to standard error, the pull's outcome to
    standard output."""
    return argparse.Namespace(**{**vars(args), "spec": label, "auto_approve": True, "quiet": True,
                                 "unattended": True})


def _checks(args: argparse.Namespace, desired: Desired) -> list[str]:
    """A new commit that changes nothing here is healthy here only if its post-conditions hold."""
    from netplanx.workflow.postconditions import run_checks

    if not desired.checks:
        return []
    session = open_session(args)
    try:
        return run_checks(session, desired.checks)
    finally:
        session.close()


def _failed(args: argparse.Namespace, agent: Agent, state: PullState, repo: Repository, nodes: list[str],
            found: Candidate, kind: str, exc: NetxError, outcome: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """The commit could not be applied here (nothing changed, or it was rolled back): recorded, reported to
    the fleet, and not tried again until another commit comes."""
    from netplanx.workflow.waves import FAILED, Report

    message = str(exc).strip().splitlines()
    summary = message[0] if message else kind
    state.failure(kind, summary, found.commit)
    _publisher(args, agent, state, repo, nodes)(Report(found.commit, FAILED, message=summary[:200]))
    return EXIT_ERROR, {**outcome, "result": "failed", "kind": kind, "message": "\n".join(message)}


def _publisher(args: argparse.Namespace, agent: Agent, state: PullState, repo: Repository,
               nodes: list[str]) -> Callable[[Report], bool]:
    """A function that publishes this node's report when the fleet rolls out in waves and the status
    location does not hold it yet; it returns False when the push failed (recorded)."""
    from netplanx.system.git import GitError
    from netplanx.workflow.pull import publish, reports

    def report(new: Report) -> bool:
        if not agent.rollout or not nodes or args.offline:
            return True
        known = reports(repo).get(args.node)
        if known is not None and (known.commit, known.result) == (new.commit, new.result):
            return True
        try:
            publish(repo, agent, args.node, new)
        except GitError as exc:
            state.failure("publish", str(exc))
            return False
        return True
    return report


def _applied_message(found: Candidate, report: dict[str, Any], summary: dict[str, int], new: bool) -> str:
    if report["result"] == "no-changes":
        return f"{found.label}: no changes" + (" here (a new commit; its post-conditions hold)" if new else "")
    return (f"Applied {found.label} (signed by {found.signer}): {summary['add']} added, {summary['change']} "
            f"changed, {summary['destroy']} destroyed, {report['writes']} writes.")


def cmd_status(args: argparse.Namespace, out: Output) -> int:
    """The commit applied here, when, by whom it was signed, the drift from its spec, the last failure, and
    what every node of the fleet reported last."""
    from dataclasses import asdict

    from netplanx.system.git import redact
    from netplanx.system.state import StateStore
    from netplanx.workflow.agent import load_agent
    from netplanx.workflow.pull import PullState, reports, repository

    require_root()
    agent = load_agent(args.config)
    node = agent.node or args.node
    store = StateStore(args.state_dir, args.netns)
    record = PullState(store).data
    status: dict[str, Any] = {
        "node": node, "source": {"url": redact(agent.source.url), "branch": agent.source.branch,
                                 "path": agent.source.path},
        **{key: record.get(key) for key in ("commit", "applied_at", "signer", "last_failure", "waiting")},
        "failures": record.get("failures", {})}
    repo = repository(args.state_dir, store.scope)
    try:
        if agent.rollout:
            status["fleet"] = {n: asdict(r) for n, r in sorted(reports(repo).items())}
        counts = _drift(args, node, repo, record) if record.get("commit") else None
    finally:
        repo.close()
    drifted = counts is not None and any(klass != "unmanaged" for _kind, klass in counts)
    if counts is not None:
        status["drift"] = drifted
        status["resources"] = [{"kind": k, "class": c, "count": n} for (k, c), n in sorted(counts.items())]
    if args.json:
        print_json(status)
    else:
        _print_status(out, status, counts)
    return EXIT_CHANGES if drifted else EXIT_OK


def _drift(args: argparse.Namespace, node: str, repo: Repository, record: dict[str, Any]) -> Any:
    """The drift from the applied commit's spec (read from the clone: it was verified when it was applied)."""
    from netplanx.document.loader import MAX_BYTES, decode_text
    from netplanx.spec.cache import SpecCache
    from netplanx.workflow.metrics import drift_counts
    from netplanx.workflow.session import desired_from_text

    commit, path = record["commit"], record["path"]
    label = f"{path}@{commit[:12]}"
    desired = desired_from_text(decode_text(repo.file(commit, path, MAX_BYTES), label), label, node,
                                SpecCache(args.state_dir))
    session = open_session(args)
    try:
        return drift_counts(session.plan(desired))
    finally:
        session.close()


def _print_status(out: Output, status: dict[str, Any], counts: Any) -> None:
    from netplanx.workflow.metrics import drift_line

    source = status["source"]
    out.print(f"node:     {status['node']}")
    out.print(f"source:   {source['url']} {source['branch']} {source['path']}")
    if status["commit"]:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(status["applied_at"]))
        out.print(f"commit:   {status['commit']} (applied {when}, signed by {status['signer']})")
        out.print(f"          {drift_line(counts)}")
    else:
        out.print("commit:   none applied yet")
    if status["waiting"]:
        out.print("waiting:  a newer commit waits for earlier waves, or its rollout is stopped")
    failure = status["last_failure"]
    if failure:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(failure["at"]))
        total = sum(status["failures"].values())
        out.print(f"failures: {total}; last {when} ({failure['kind']}): {failure['message']}")
    for name, report in status.get("fleet", {}).items():
        out.print(f"  {name:<16} {report['result']:<8} {report['commit'][:12]}  {report['message']}")
