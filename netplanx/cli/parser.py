"""The ``netx`` command line: commands, options, and an example for each."""

from __future__ import annotations

import argparse
import os
import socket
from collections.abc import Sequence
from pathlib import Path

from netplanx import __version__
from netplanx.registry import FEATURES
from netplanx.system.state import DEFAULT_STATE_DIR

DEFAULT_CONFIG = Path("/etc/netx/agent.yaml")  # netx pull's agent config

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
    "show": ["netx show", "netx show -o json", "netx show -o yaml > adopted.yaml   # adoption",
             "netx show -o yaml --bgp-api 127.0.0.1:50051   # adoption of gobgpd's peers and paths too",
             "netx show services --netns NS",
             "netx show policies --netns node-a   # policy entries and per-rule counters"],
    "schema": ["netx schema > schema/netx.schema.json"],
    "drift": ["netx drift /etc/netx/netx.yaml",
              "netx drift spec.yaml --textfile /var/lib/prometheus/node-exporter/netx.prom"],
    "history": ["netx history", "netx history --json --netns lab"],
    "rollback": ["netx rollback", "netx rollback --auto-approve --netns lab"],
    "doctor": ["netx doctor"],
    "pull": ["netx pull   # /etc/netx/agent.yaml: fetch, verify the signature, wait for earlier waves, apply",
             "netx pull --config agent.yaml --node node-b --netns node-b --json",
             "netx pull --textfile /var/lib/prometheus/node-exporter/netx-pull.prom",
             "netx pull --offline   # re-apply the commit applied last, from the local clone (at boot)"],
    "status": ["netx status", "netx status --json --config agent.yaml --netns node-b"],
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

    def command(name: str, summary: str, description: str = "", shared: bool = True,
                examples: Sequence[str] = ()) -> argparse.ArgumentParser:
        listed = "examples:\n" + "\n".join(f"  {e}" for e in (examples or COMMAND_EXAMPLES[name]))
        return commands.add_parser(name, parents=[common] if shared else [], help=summary,
                                   description=description or summary[:1].upper() + summary[1:] + ".",
                                   epilog=listed, formatter_class=argparse.RawDescriptionHelpFormatter)

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

    views = [view for feature in FEATURES for view in feature.views()]
    show = command("show", "list live objects and who owns them")
    show.add_argument("what", nargs="?", choices=[view.name for view in views],
                      help="; ".join(f"{view.name}: {view.help}" for view in views))
    show.add_argument("-o", "--output", choices=("table", "json", "yaml"), default="table",
                      help="yaml writes the live state as a spec (adoption)")
    for feature in FEATURES:
        feature.show_arguments(show)

    for feature in FEATURES:
        for extra in feature.commands():
            extra.arguments(command(extra.name, extra.summary, extra.description, extra.shared, extra.examples))

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

    pull = command("pull", "apply the signed tip of a git branch (GitOps), in waves across a fleet",
                   "Fetch the branch named in the agent config into a bare clone, refuse a commit that is not "
                   "signed by an allowed signer or does not descend from the commit applied here, wait until "
                   "every node of the earlier waves reports it healthy, then apply this node's view of its spec "
                   "(verified, post-conditions, reverted by a watchdog if netx dies) and publish the result.")
    pull.add_argument("--config", type=Path, default=DEFAULT_CONFIG, metavar="FILE",
                      help=f"the agent config (default {DEFAULT_CONFIG})")
    pull.add_argument("--json", action="store_true", help="print the outcome as JSON")
    pull.add_argument("--textfile", type=Path, metavar="PATH", help="write pull metrics here (atomically)")
    pull.add_argument("--retry", action="store_true", help="try again a commit that failed here")
    pull.add_argument("--offline", action="store_true",
                      help="do not fetch: apply the commit applied last again (its signature checked again)")
    pull.add_argument("--lock-timeout", type=float, default=60.0, metavar="SECONDS",
                      help="how long to wait for another netx on this namespace (default 60)")
    pull.add_argument("--confirm-timeout", type=float, default=120.0, metavar="SECONDS",
                      help="a watchdog reverts the change unless it is verified and its post-conditions pass "
                           "within SECONDS (default 120; 0: no watchdog)")

    status = command("status", "the commit applied by netx pull, when, the drift from it, the fleet's reports",
                     "Show the commit netx pull applied here, when and who signed it, the drift of the live state "
                     "from its spec (exit 2 when there is drift), the last failure and every node's last report.")
    status.add_argument("--config", type=Path, default=DEFAULT_CONFIG, metavar="FILE",
                        help=f"the agent config (default {DEFAULT_CONFIG})")
    status.add_argument("--json", action="store_true")

    command("doctor", "check what this host offers netx, and what to fix", shared=False)

    completion = command("completion", "print a shell completion script", shared=False)
    completion.add_argument("shell", choices=("bash",))
    return parser
