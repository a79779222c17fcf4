"""``netx``: choose the command, run it, and turn errors into messages and exit codes."""

from __future__ import annotations

import argparse
import atexit
import gc
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from netplanx.cli.apply import cmd_apply, cmd_confirm, cmd_rollback, cmd_watchdog
from netplanx.cli.common import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, open_session, print_json
from netplanx.cli.parser import build_parser
from netplanx.cli.pull import cmd_pull, cmd_status
from netplanx.errors import ApplyError, ConfigError, NetxError, PlanError, SpecError
from netplanx.registry import FEATURES
from netplanx.render.console import Output
from netplanx.render.human import render_live, render_plan
from netplanx.system.root import require_root


def run() -> NoReturn:
    """The ``netx`` command: ``main()``, then exit without the interpreter's teardown.

    Tearing down releases every object one by one: after a plan of 10,000 routes that is ~20 ms, a third of the
    plan's own cost. Exit handlers still run and the standard streams are flushed first; when a flush fails
    (a closed pipe), a thread is still running or a profiler or tracer is watching (it reports after ``main``),
    the process exits the ordinary way.
    """
    code = main()
    threading = sys.modules.get("threading")
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        sys.exit(code)
    if (threading is not None and threading.active_count() > 1) or sys.getprofile() or sys.gettrace():
        sys.exit(code)
    atexit._run_exitfuncs()
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    gc.disable()  # a short-lived command: reference counting frees what it drops; no cycle scans at 10k objects
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")  # netx has none: no scan of all entry points
    args = build_parser().parse_args(argv)
    out = Output(sys.stdout)
    err = Output(sys.stderr)
    handlers: dict[str, Callable[[argparse.Namespace, Output], int]] = {
        "validate": cmd_validate, "plan": cmd_plan, "apply": cmd_apply, "show": cmd_show, "schema": cmd_schema,
        "drift": cmd_drift, "history": cmd_history, "rollback": cmd_rollback, "doctor": cmd_doctor,
        "confirm": cmd_confirm, "_watchdog": cmd_watchdog, "completion": cmd_completion, "pull": cmd_pull,
        "status": cmd_status,
    }
    for feature in FEATURES:
        for command in feature.commands():
            handlers[command.name] = lambda a, o, run=command.run: run(a, o, lambda: open_session(a))
    try:
        return handlers[args.command](args, out)
    except (SpecError, PlanError) as exc:
        kind = "config" if isinstance(exc, ConfigError) else "spec" if isinstance(exc, SpecError) else "plan"
        for problem in exc.problems:
            err.print(problem if kind != "plan" else f"{err.paint('error:', '31')} {problem}")
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


def cmd_plan(args: argparse.Namespace, out: Output) -> int:
    from netplanx.spec.cache import SpecCache
    from netplanx.workflow.session import load_desired

    require_root()
    desired = load_desired(args.spec, args.node, SpecCache(args.state_dir))  # spec errors first: host not read
    session = open_session(args)
    try:
        plan = session.plan(desired)
    finally:
        session.close()
    if args.out:
        from netplanx.files import write_atomically

        write_atomically(args.out, json.dumps(plan.to_json(), indent=1))
    if args.json:
        sys.stdout.write(json.dumps(plan.to_json(display=True), indent=1) + "\n")
    else:
        render_plan(plan, sys.stdout)
        if args.out:
            out.print(f"\nSaved the plan to {args.out}; apply exactly it with: netx apply {args.out}")
    return EXIT_CHANGES if args.detailed_exitcode and not plan.empty else EXIT_OK


def cmd_show(args: argparse.Namespace, out: Output) -> int:
    views = {view.name: view for feature in FEATURES for view in feature.views()}
    if args.what in views:
        return views[args.what].run(args, out, lambda: open_session(args))
    from netplanx.spec.adopt import adopt, adoption_options, dump_spec
    from netplanx.spec.schema import schema_location
    from netplanx.workflow.history import History

    require_root()
    session = open_session(args)
    options = adoption_options() if args.output == "yaml" else {}
    for feature in FEATURES:
        options.update(feature.show_options(args))
    try:
        live = session.read_live(options=options)
    finally:
        session.close()
    if args.output == "json":
        print_json([r.to_json(display=True) for r in live])
    elif args.output == "yaml":
        adoption = adopt(live, args.node, History(args.state_dir, session.store.scope).last_applied())
        sys.stdout.write(dump_spec(adoption.spec, schema_location(), adoption.notes))
    else:
        render_live(live, sys.stdout)
    return EXIT_OK


def cmd_drift(args: argparse.Namespace, out: Output) -> int:
    import time

    from netplanx.spec.cache import SpecCache
    from netplanx.workflow.history import History
    from netplanx.workflow.metrics import drift_counts, drift_line, metrics_text, write_textfile
    from netplanx.workflow.session import load_desired

    require_root()
    started = time.perf_counter()
    desired = load_desired(args.spec, args.node, SpecCache(args.state_dir))
    session = open_session(args)
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
        print_json({"drift": not plan.empty, "resources": [{"kind": k, "class": c, "count": n}
                                                             for (k, c), n in sorted(counts.items())]})
    else:
        out.print(drift_line(counts))
        for change in plan.changes:
            out.print(f"  {change.action:<8} {change.address}")
    return EXIT_OK if plan.empty else EXIT_CHANGES


def cmd_history(args: argparse.Namespace, out: Output) -> int:
    from netplanx.workflow.history import History, as_json

    entries = History(args.state_dir, args.netns or "host").entries()
    if args.json:
        print_json(as_json(entries))
        return EXIT_OK
    out.print(f"{'#':>5}  {'time':<19}  {'user':<10} {'result':<11} {'plan':<12} {'spec':<12}  file")
    for entry in entries:
        out.print(entry.line())
    return EXIT_OK


def cmd_doctor(_args: argparse.Namespace, out: Output) -> int:
    from netplanx.workflow.doctor import checks

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
