"""``netx validate | plan | apply | show | schema``: argument parsing, exit codes, and output choice."""

from __future__ import annotations

import argparse
import gc
import json
import os
import socket
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from netplanx import __version__
from netplanx.engine.plan import Plan
from netplanx.engine.state import DEFAULT_STATE_DIR
from netplanx.errors import ApplyError, NetxError, NotConfirmed, PlanError, SpecError
from netplanx.render.human import painter, render_live, render_plan

if TYPE_CHECKING:
    from netplanx.history import History
    from netplanx.workflow import Desired, Session

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2
EXIT_PENDING = -1  # internal: applied, waiting for a confirmation
EXAMPLES = """examples:
  netx validate examples/host.yaml
  netx plan examples/host.yaml --netns lab
  netx plan examples/host.yaml -o plan.json && netx apply plan.json
  netx apply examples/host.yaml --auto-approve
  netx plan examples/host.yaml --detailed-exitcode   # 0 no changes, 1 error, 2 changes
  netx apply examples/cluster/cluster.yaml --node node-b --netns node-b
  netx show -o yaml > adopted.yaml
"""


COMMAND_EXAMPLES = {
    "validate": ["netx validate examples/host.yaml", "netx validate examples/cluster/cluster.yaml"],
    "plan": ["netx plan examples/host.yaml --netns lab", "netx plan spec.yaml --json",
             "netx plan spec.yaml -o plan.json   # then: netx apply plan.json",
             "netx plan spec.yaml --detailed-exitcode   # 0 no changes, 1 error, 2 changes",
             "netx plan examples/cluster/cluster.yaml --node node-b"],
    "apply": ["netx apply spec.yaml", "netx apply spec.yaml --auto-approve --lock-timeout 30",
              "netx apply plan.json   # exactly a saved plan, refused if stale",
              "netx apply spec.yaml --confirm-timeout 120   # then Enter or 'netx confirm', else reverted",
              "netx apply spec.yaml --auto-approve --quiet"],
    "confirm": ["netx confirm", "netx confirm --netns lab"],
    "show": ["netx show", "netx show -o json", "netx show -o yaml > adopted.yaml   # adoption"],
    "schema": ["netx schema > schema/netx.schema.json"],
    "drift": ["netx drift /etc/netx/netx.yaml",
              "netx drift spec.yaml --textfile /var/lib/prometheus/node-exporter/netx.prom"],
    "history": ["netx history", "netx history --json --netns lab"],
    "rollback": ["netx rollback", "netx rollback --auto-approve --netns lab"],
    "doctor": ["netx doctor"],
    "keygen": ["netx keygen /etc/netx/wg.key", "netx keygen /etc/netx/wg.key --force   # key rotation"],
    "completion": ["netx completion bash > /etc/bash_completion.d/netx"],
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="netx", description="Declarative host networking: plan, then apply.",
                                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"netx {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--netns", metavar="NAME", help="operate inside network namespace NAME (/run/netns/NAME)")
    common.add_argument("--node", default=socket.gethostname(),
                        help="which node of a cluster spec this is (default: the host name)")
    common.add_argument("--state-dir", type=Path, default=Path(os.environ.get("NETX_STATE_DIR", DEFAULT_STATE_DIR)),
                        help="where netx keeps its records (default /var/lib/netx, or $NETX_STATE_DIR)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str, description: str = "", shared: bool = True) -> argparse.ArgumentParser:
        examples = "examples:\n" + "\n".join(f"  {e}" for e in COMMAND_EXAMPLES[name])
        return commands.add_parser(name, parents=[common] if shared else [], help=summary,
                                   description=description or summary[:1].upper() + summary[1:] + ".",
                                   epilog=examples, formatter_class=argparse.RawDescriptionHelpFormatter)

    validate = command("validate", "check a spec without touching the host",
                       "Check a spec (every node of a cluster spec); every problem is reported as FILE:LINE:COL.")
    validate.add_argument("spec", type=Path)

    plan = command("plan", "show what apply would change")
    plan.add_argument("spec", type=Path)
    plan.add_argument("--json", action="store_true", help="print the plan as JSON (format netx-plan/1)")
    plan.add_argument("-o", "--out", type=Path, metavar="FILE", help="save the plan for 'netx apply FILE'")
    plan.add_argument("--detailed-exitcode", action="store_true", help="exit 0: no changes, 1: error, 2: changes")

    apply = command("apply", "make the live state match a spec or saved plan")
    apply.add_argument("spec", type=Path, help="a spec file, or a plan saved with 'netx plan -o'")
    apply.add_argument("--auto-approve", action="store_true", help="do not ask for confirmation")
    apply.add_argument("--lock-timeout", type=float, default=60.0, metavar="SECONDS",
                       help="how long to wait for another netx on this namespace (default 60)")
    output = apply.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the plan and the result as JSON")
    output.add_argument("-q", "--quiet", action="store_true", help="print only the outcome (and errors)")
    apply.add_argument("--confirm-timeout", type=float, metavar="SECONDS",
                       help="keep the change only if confirmed (Enter, or 'netx confirm') or the spec's checks "
                            "pass within SECONDS; else a detached watchdog restores the previous state")

    command("confirm", "keep a change applied with --confirm-timeout")
    commands.add_parser("_watchdog", parents=[common])  # the detached process behind --confirm-timeout

    show = command("show", "list live objects and who owns them")
    show.add_argument("-o", "--output", choices=("table", "json", "yaml"), default="table",
                      help="yaml writes the live state as a spec (adoption)")

    command("schema", "print the JSON schema of the spec", shared=False)

    drift = command("drift", "plan for drift: exit 0 none, 2 drift, 1 error",
                    "Compare the live state with a spec, classify the differences (changed, missing, extra, "
                    "unmanaged) and optionally write them as Prometheus metrics for node_exporter's textfile "
                    "collector.")
    drift.add_argument("spec", type=Path)
    drift.add_argument("--textfile", type=Path, metavar="PATH", help="write metrics here (atomically)")
    drift.add_argument("--json", action="store_true", help="print the counts as JSON")

    history = command("history", "list the applies recorded on this namespace")
    history.add_argument("--json", action="store_true")

    rollback = command("rollback", "apply the previous recorded spec again")
    rollback.add_argument("--auto-approve", action="store_true", help="do not ask for confirmation")
    rollback.add_argument("--lock-timeout", type=float, default=60.0, metavar="SECONDS")
    rollback.add_argument("--json", action="store_true")

    command("doctor", "check what this host offers netx, and what to fix", shared=False)

    keygen = command("keygen", "write a WireGuard private key file (0600), print its public key",
                     "Write a new WireGuard private key to FILE with mode 0600 and print the public key to put in "
                     "the cluster spec.", shared=False)
    keygen.add_argument("file", type=Path)
    keygen.add_argument("--force", action="store_true", help="replace an existing key file (key rotation)")

    completion = command("completion", "print a shell completion script", shared=False)
    completion.add_argument("shell", choices=("bash",))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    gc.disable()  # a short-lived command: reference counting frees what it drops; no cycle scans at 10k objects
    args = build_parser().parse_args(argv)
    out = Output(sys.stdout)
    err = Output(sys.stderr)
    handlers: dict[str, Callable[[argparse.Namespace, Output], int]] = {
        "validate": cmd_validate, "plan": cmd_plan, "apply": cmd_apply, "show": cmd_show, "schema": cmd_schema,
        "keygen": cmd_keygen, "drift": cmd_drift, "history": cmd_history, "rollback": cmd_rollback,
        "doctor": cmd_doctor, "confirm": cmd_confirm, "_watchdog": cmd_watchdog, "completion": cmd_completion,
    }
    try:
        return handlers[args.command](args, out)
    except (SpecError, PlanError) as exc:
        kind = "spec" if isinstance(exc, SpecError) else "plan"
        for problem in exc.problems:
            err.print(problem if kind == "spec" else f"{err.paint('error:', '31')} {problem}")
        err.print(f"{len(exc.problems)} {kind} error(s); nothing was changed.")
        return EXIT_ERROR
    except ApplyError as exc:
        err.print(str(exc))
        return EXIT_ERROR
    except NetxError as exc:
        err.print(f"{err.paint('error:', '31')} {exc}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        err.print("interrupted")
        return EXIT_ERROR


class Output:
    """A stream plus colour that is only used on a terminal."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.paint = painter(stream)

    def print(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()


def cmd_validate(args: argparse.Namespace, out: Output) -> int:

    from netplanx.spec.compile import compile_spec
    from netplanx.spec.validate import load_spec

    spec, _document = load_spec(args.spec)
    if spec.cluster is None:
        out.print(f"{args.spec}: valid ({len(compile_spec(spec))} resources)")
    else:
        counts = ", ".join(f"{n.name}: {len(compile_spec(spec, n.name))}" for n in spec.cluster.nodes)
        out.print(f"{args.spec}: valid (cluster {spec.cluster.name}; resources per node: {counts})")
    return EXIT_OK


def cmd_schema(_args: argparse.Namespace, out: Output) -> int:
    from netplanx.spec.schema import schema_text

    sys.stdout.write(schema_text())
    return EXIT_OK


def cmd_drift(args: argparse.Namespace, out: Output) -> int:
    import time

    from netplanx.history import History
    from netplanx.render.metrics import drift_counts, metrics_text, write_textfile
    from netplanx.spec.cache import SpecCache
    from netplanx.workflow import load_desired

    _require_root()
    started = time.perf_counter()
    desired = load_desired(args.spec, args.node, SpecCache(args.state_dir))
    session = _session(args)
    try:
        plan = session.plan(desired)
        entries = History(args.state_dir, session.store.scope).entries()
    finally:
        session.close()
    duration = time.perf_counter() - started
    counts = drift_counts(plan)
    if args.textfile:
        last_success = next((e for e in reversed(entries) if e.result in ("applied", "no-changes")), None)
        write_textfile(args.textfile, metrics_text(plan, duration, entries[-1] if entries else None, last_success))
    if args.json:
        _print_json({"drift": not plan.empty, "resources": [{"kind": k, "class": c, "count": n}
                                                             for (k, c), n in sorted(counts.items())]})
    else:
        by_class: dict[str, int] = {}
        for (_kind, klass), count in counts.items():
            by_class[klass] = by_class.get(klass, 0) + count
        out.print("drift: " + ", ".join(f"{by_class.get(k, 0)} {k}" for k in ("changed", "missing", "extra",
                                                                              "unmanaged")))
        for change in plan.changes:
            out.print(f"  {change.action:<8} {change.address}")
    return EXIT_OK if plan.empty else EXIT_CHANGES


def cmd_history(args: argparse.Namespace, out: Output) -> int:
    from netplanx.history import History, as_json

    entries = History(args.state_dir, args.netns or "host").entries()
    if args.json:
        _print_json(as_json(entries))
        return EXIT_OK
    out.print(f"{'#':>5}  {'time':<19}  {'user':<10} {'result':<11} {'plan':<12} {'spec':<12}  file")
    for entry in entries:
        out.print(entry.line())
    return EXIT_OK


def cmd_rollback(args: argparse.Namespace, out: Output) -> int:
    from netplanx.history import History
    from netplanx.workflow import desired_from_text

    _require_root()
    history = History(args.state_dir, args.netns or "host")
    previous = history.previous_spec()
    text = history.spec_text(previous.spec_digest) if previous else None
    if previous is None or text is None:
        raise NetxError("no earlier spec to roll back to: the history holds fewer than two applied specs")
    args.node = previous.node
    args.spec = Path(f"history #{previous.number} ({previous.spec_path})")
    if not args.json:
        out.print(f"Rolling back to the spec applied in #{previous.number} ({previous.spec_path}, "
                  f"{previous.spec_digest[:12]}).")
    return _apply(args, out, desired_from_text(text, str(args.spec), previous.node))


def cmd_doctor(_args: argparse.Namespace, out: Output) -> int:
    from netplanx.doctor import checks

    failed = 0
    for check in checks():
        mark = out.paint("ok", "32") if check.ok else out.paint("missing" if check.required else "absent", "31"
                                                                 if check.required else "33")
        out.print(f"  {check.name:<34} {mark:<8} {check.detail}")
        if not check.ok and check.fix:
            out.print(f"  {'':<34} fix: {check.fix}")
        failed += int(check.required and not check.ok)
    out.print("netx can run here." if not failed else f"{failed} required piece(s) missing.")
    return EXIT_OK if not failed else EXIT_ERROR


def cmd_completion(_args: argparse.Namespace, out: Output) -> int:
    """Bash completion built from this very parser: commands, their options, and files for arguments."""
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    cases = []
    for name, sub in subparsers.choices.items():
        if name.startswith("_"):
            continue
        options = " ".join(o for a in sub._actions for o in a.option_strings)
        cases.append(f'        {name}) opts="{options}" ;;')
    names = " ".join(n for n in subparsers.choices if not n.startswith("_"))
    out.print("\n".join([
        "# bash completion for netx: netx completion bash > /etc/bash_completion.d/netx",
        "_netx() {",
        "    local cur=${COMP_WORDS[COMP_CWORD]} opts",
        "    if [ \"$COMP_CWORD\" -eq 1 ]; then",
        f"        COMPREPLY=($(compgen -W \"{names} --help --version\" -- \"$cur\")); return",
        "    fi",
        "    case ${COMP_WORDS[1]} in",
        *cases,
        "    esac",
        "    case $cur in",
        "        -*) COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\")) ;;",
        "        *) COMPREPLY=($(compgen -f -- \"$cur\")) ;;",
        "    esac",
        "}",
        "complete -o filenames -F _netx netx",
    ]))
    return EXIT_OK


def cmd_keygen(args: argparse.Namespace, out: Output) -> int:
    from netplanx.providers.wireguard.keys import generate

    out.print(generate(args.file, force=args.force))
    return EXIT_OK


def _require_root() -> None:
    if os.geteuid() != 0:
        raise NetxError("netx needs root (CAP_NET_ADMIN) to read and change network state; run it with sudo")


def _session(args: argparse.Namespace) -> Session:
    from netplanx.providers.kernel import netns
    from netplanx.workflow import Session

    if args.netns:
        netns.enter(args.netns)
    return Session(args.netns, args.state_dir)


def cmd_plan(args: argparse.Namespace, out: Output) -> int:
    from netplanx.spec.cache import SpecCache
    from netplanx.workflow import load_desired

    _require_root()
    desired = load_desired(args.spec, args.node, SpecCache(args.state_dir))  # spec errors first: host not read
    session = _session(args)
    try:
        plan = session.plan(desired)
    finally:
        session.close()
    if args.out:
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(plan.to_json(), handle, indent=1)
    if args.json:
        sys.stdout.write(json.dumps(plan.to_json(display=True), indent=1) + "\n")
    else:
        render_plan(plan, sys.stdout)
        if args.out:
            out.print(f"\nSaved the plan to {args.out}; apply exactly it with: netx apply {args.out}")
    return EXIT_CHANGES if args.detailed_exitcode and not plan.empty else EXIT_OK


def cmd_apply(args: argparse.Namespace, out: Output) -> int:
    from netplanx.spec.cache import SpecCache
    from netplanx.workflow import is_saved_plan, load_desired

    _require_root()
    saved = is_saved_plan(args.spec)
    desired = None if saved else load_desired(args.spec, args.node, SpecCache(args.state_dir))
    return _apply(args, out, desired)


def _apply(args: argparse.Namespace, out: Output, desired: Desired | None) -> int:
    """Plan (or load the saved plan) under the lock, then execute it; every outcome goes to the history."""
    from netplanx.history import History
    from netplanx.workflow import load_saved_plan

    session = _session(args)
    history = History(args.state_dir, session.store.scope)
    plan: Plan | None = None
    try:
        with session.lock(args.lock_timeout) as waited:
            if waited and not args.json:
                out.print("Waited for another netx to finish on this namespace.")
            warning = session.interrupted_apply()
            if warning and not args.json:
                out.print(f"{out.paint('Warning:', '33')} {warning}")
            if desired is None:
                plan = load_saved_plan(args.spec)
                session.check_fresh(plan)
            else:
                plan = session.plan(desired)
            try:
                code = _execute(args, out, session, plan, desired.checks if desired else [])
            except ApplyError as exc:
                _remember(history, args, desired, plan, "rolled-back" if exc.restored else "failed", str(exc))
                raise
        if code == EXIT_PENDING:  # outside the lock: the watchdog needs it to revert
            code = _await_confirmation(args, out, session)  # NotConfirmed: the watchdog recorded the revert
        if code == EXIT_OK:
            _remember(history, args, desired, plan, "no-changes" if plan.empty else "applied")
        return code
    finally:
        session.close()


def _remember(history: History, args: argparse.Namespace, desired: Desired | None, plan: Plan, result: str,
              message: str = "") -> None:
    history.record(netns=args.netns, node=args.node, spec_path=str(args.spec),
                   spec_digest=desired.digest if desired else plan.spec_digest,
                   spec_text=desired.text if desired else None, summary=plan.summary(), result=result,
                   message=message.splitlines()[0] if message else "")


def _execute(args: argparse.Namespace, out: Output, session: Session, plan: Plan,
             checks: list[dict[str, Any]]) -> int:
    quiet = getattr(args, "quiet", False)
    if plan.empty:
        session.forget_interrupted()
        if args.json:
            _print_json({"result": "no-changes", "writes": session.writes, "plan": plan.to_json(display=True)})
        elif quiet:
            out.print("No changes.")
        else:
            render_plan(plan, sys.stdout)
        return EXIT_OK
    if not args.json and not quiet:
        render_plan(plan, sys.stdout)
    if not args.auto_approve and not _confirmed(out):
        out.print("Apply cancelled; nothing was changed.")
        return EXIT_ERROR
    timeout = getattr(args, "confirm_timeout", None)
    if timeout:
        return _try(args, out, session, plan, checks, timeout)
    steps = session.apply(plan, checks, _progress(args))
    summary = plan.summary()
    if args.json:
        _print_json({"result": "applied", "steps": steps, "writes": session.writes,
                     "plan": plan.to_json(display=True)})
    else:
        out.print(f"\nApply complete! Resources: {summary['add']} added, {summary['change']} changed, "
                  f"{summary['destroy']} destroyed ({steps} steps, verified).")
    return EXIT_OK


def _progress(args: argparse.Namespace) -> Callable[[int, int], None] | None:
    """A step counter on the terminal for applies long enough to want one."""
    if args.json or getattr(args, "quiet", False) or not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        if total >= 100:
            sys.stderr.write(f"\r  applying: {done}/{total} steps" + ("\n" if done == total else ""))
            sys.stderr.flush()
    return show


def _try(args: argparse.Namespace, out: Output, session: Session, plan: Plan, checks: list[dict[str, Any]],
         timeout: float) -> int:
    """Apply, then keep the change only if it is confirmed in time (or the post-conditions pass)."""
    from netplanx import confirm

    confirm.arm(session.store, plan, timeout, args.netns)
    try:
        session.apply(plan, checks, _progress(args))
    except ApplyError:
        confirm.settle(session.store, confirm.CANCELLED)
        raise
    if checks:
        confirm.settle(session.store, confirm.CONFIRMED)
        out.print("Applied; the post-conditions hold: confirmed.")
        return EXIT_OK
    return EXIT_PENDING


def _await_confirmation(args: argparse.Namespace, out: Output, session: Session) -> int:
    from netplanx import confirm

    timeout = args.confirm_timeout
    deadline = confirm.start_clock(session.store)
    where = f" --netns {args.netns}" if args.netns else ""
    out.print(f"Applied. Keep it: press Enter, or run 'netx confirm{where}' within {timeout:g}s; otherwise the "
              "previous state is restored.")
    decision = confirm.wait_for_decision(session.store, deadline, sys.stdin.fileno() if sys.stdin.isatty() else None)
    if decision == confirm.CONFIRMED:
        out.print("Confirmed: the change is kept.")
        return EXIT_OK
    record = confirm.pending(session.store)
    if decision == confirm.REVERTED:
        raise NotConfirmed(f"not confirmed within {timeout:g}s: reverted, the host is back where it was "
                           "(verified).", restored=True)
    raise NotConfirmed(f"not confirmed within {timeout:g}s and the revert is INCOMPLETE: "
                     f"{', '.join(record.get('leftover', [])) or decision}", restored=False)


def cmd_confirm(args: argparse.Namespace, out: Output) -> int:
    from netplanx import confirm
    from netplanx.engine.state import StateStore

    _require_root()
    out.print(confirm.confirm(StateStore(args.state_dir, args.netns)))
    return EXIT_OK


def cmd_watchdog(args: argparse.Namespace, _out: Output) -> int:
    """The detached process behind --confirm-timeout (not for people)."""
    from netplanx import confirm
    from netplanx.engine.plan import Plan
    from netplanx.engine.state import StateStore
    from netplanx.history import History

    store = StateStore(args.state_dir, args.netns)
    result = confirm.watchdog(store, lambda: _session(args))
    if result in (confirm.REVERTED, confirm.REVERT_FAILED):
        plan = Plan.from_json(confirm.pending(store)["plan"])
        History(args.state_dir, store.scope).record(
            netns=args.netns, node=args.node, spec_path="(not confirmed)", spec_digest=plan.spec_digest,
            spec_text=None, summary=plan.summary(), result="rolled-back" if result == confirm.REVERTED else "failed",
            message=f"not confirmed in time: {result}")
    return EXIT_OK


def _confirmed(out: Output) -> bool:
    if not sys.stdin.isatty():
        raise NetxError("refusing to apply without confirmation: stdin is not a terminal (use --auto-approve)")
    out.print("\nDo you want to perform these actions? Only 'yes' will be accepted.")
    return input("  Enter a value: ").strip() == "yes"


def _print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=1) + "\n")


def cmd_show(args: argparse.Namespace, out: Output) -> int:
    from netplanx.spec.adopt import adoption_interest, dump_spec, live_to_spec
    from netplanx.spec.schema import schema_location

    _require_root()
    session = _session(args)
    try:
        live = session.read_live(adoption_interest() if args.output == "yaml" else ())
    finally:
        session.close()
    if args.output == "json":
        _print_json([r.to_json(display=True) for r in live])
    elif args.output == "yaml":
        sys.stdout.write(dump_spec(live_to_spec(live), schema_location()))
    else:
        render_live(live, sys.stdout)
    return EXIT_OK
