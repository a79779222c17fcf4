"""The command line: plan output for people and machines, exit codes, privileges, the demo."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from tests.conftest import ROOT

SPEC = """\
apiVersion: netx/v1
interfaces:
  - {name: br0, type: bridge, addresses: [10.0.0.1/24]}
routes:
  - {to: 198.51.100.0/24, via: 10.0.0.254}
"""


def test_human_plan_reads_like_terraform(netx):
    result = netx("plan", spec=SPEC)
    assert result.code == 0
    lines = result.out.splitlines()
    assert "  + link.br0  (hitless)" in lines
    assert "  + route.main.198.51.100.0/24  (hitless)" in lines
    assert "Plan: 3 to add, 0 to change, 0 to destroy." in lines
    assert "\x1b[" not in result.out  # colour only on a terminal
    netx.apply(SPEC)
    changed = netx("plan", spec=SPEC.replace("via: 10.0.0.254", "via: 10.0.0.253").replace("type: bridge,",
                                                                                          "type: bridge, mtu: 1400,"))
    assert "  ~ route.main.198.51.100.0/24  (hitless)" in changed.out.splitlines()
    assert '      ~ via: "10.0.0.254" -> "10.0.0.253"' in changed.out.splitlines()
    assert '      ~ mtu: 1500 -> 1400' in changed.out.splitlines()
    assert "Plan: 0 to add, 2 to change, 0 to destroy." in changed.out
    removed = netx("plan", spec="apiVersion: netx/v1\n")
    assert "  - route.main.198.51.100.0/24  (route gap)" in removed.out.splitlines()
    assert "  - address.br0.10.0.0.1/24  (address loss)" in removed.out.splitlines()
    assert "  - link.br0  (traffic loss)" in removed.out.splitlines()
    assert "Plan: 0 to add, 0 to change, 3 to destroy." in removed.out


def test_json_plan_is_versioned_and_ordered(netx):
    plan = netx.plan(SPEC)
    assert plan["format"] == "netx-plan/1" and plan["netns"] == netx.netns
    assert plan["summary"] == {"add": 3, "change": 0, "destroy": 0}
    order = [step["address"] for step in plan["steps"]]
    assert order.index("link.br0") < order.index("address.br0.10.0.0.1/24") < order.index(
        "route.main.198.51.100.0/24")
    change = next(c for c in plan["changes"] if c["address"] == "link.br0")
    assert set(change) >= {"address", "kind", "action", "changed", "forces_replacement", "disruption", "reason",
                           "before", "after"}
    netx.apply(SPEC)
    removal = netx.plan("apiVersion: netx/v1\n")
    order = [step["address"] for step in removal["steps"]]
    assert order == ["route.main.198.51.100.0/24", "address.br0.10.0.0.1/24", "link.br0"]  # reverse


def test_detailed_exitcode(netx):
    assert netx("plan", "--detailed-exitcode", spec=SPEC).code == 2
    netx.apply(SPEC)
    assert netx("plan", "--detailed-exitcode", spec=SPEC).code == 0
    assert netx("plan", "--detailed-exitcode", spec="apiVersion: netx/v2\n").code == 1


def test_unknown_namespace_is_a_clear_error(netx):
    result = netx("plan", "--netns", "netx-no-such-namespace", spec=SPEC, netns=False)
    assert result.code == 1 and "network namespace 'netx-no-such-namespace' does not exist" in result.err
    assert not os.path.exists("/run/netns/netx-no-such-namespace")


def test_non_root_fails_early(netx):
    setpriv = shutil.which("setpriv")
    assert setpriv, "util-linux setpriv is installed by scripts/install.sh"
    path = netx.write(SPEC)
    os.chmod(netx.workdir, 0o755)
    os.chmod(path, 0o644)
    result = subprocess.run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m",
                             "netplanx", "plan", str(path)], capture_output=True, text=True, cwd=ROOT,
                            env={**os.environ, "NETX_STATE_DIR": str(netx.state_dir)})
    assert result.returncode == 1 and "needs root" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_lists_examples_and_version():
    run = subprocess.run([sys.executable, "-m", "netplanx", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0 and "netx plan examples/host.yaml --netns lab" in run.stdout
    version = subprocess.run([sys.executable, "-m", "netplanx", "--version"], capture_output=True, text=True)
    assert version.stdout.startswith("netx ")


def test_readme_demo_runs(netns):
    """The README's first command ends with the demo: plan, apply, then a plan with no changes."""
    run = subprocess.run(["bash", "scripts/demo.sh"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Apply complete!" in run.stdout and "No changes." in run.stdout.split("== netx plan again")[1]
    assert "netx-demo" not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


def test_apply_on_a_terminal_asks_and_only_yes_applies(netx, netns):
    """On a terminal, apply shows the plan and applies only after 'yes' (run under script(1) for a tty)."""
    path = netx.write(SPEC)
    env = {**os.environ, "NETX_STATE_DIR": str(netx.state_dir)}
    command = f"{sys.executable} -m netplanx apply {path} --netns {netns}"
    declined = subprocess.run(["script", "-qec", command, "/dev/null"], input="no\n", capture_output=True,
                              text=True, cwd=ROOT, env=env, timeout=60)
    assert "Only 'yes' will be accepted" in declined.stdout and "Apply cancelled" in declined.stdout
    assert declined.returncode == 1 and netx.plan(SPEC)["summary"]["add"] == 3
    accepted = subprocess.run(["script", "-qec", command, "/dev/null"], input="yes\n", capture_output=True,
                              text=True, cwd=ROOT, env=env, timeout=60)
    assert accepted.returncode == 0 and "Apply complete!" in accepted.stdout
    assert "\x1b[" in accepted.stdout  # colour on a terminal
    assert netx.plan(SPEC)["changes"] == []


def test_every_command_has_help_with_examples():
    from netplanx.cli.parser import COMMAND_EXAMPLES

    for command in COMMAND_EXAMPLES:
        run = subprocess.run([sys.executable, "-m", "netplanx", command, "--help"], capture_output=True, text=True,
                             cwd=ROOT)
        assert run.returncode == 0 and "examples:" in run.stdout and f"netx {command}" in run.stdout, command


def test_bash_completion_completes_commands_and_options(tmp_path):
    script = subprocess.run([sys.executable, "-m", "netplanx", "completion", "bash"], capture_output=True, text=True,
                            cwd=ROOT).stdout
    (tmp_path / "netx.bash").write_text(script)
    probe = (f"source {tmp_path / 'netx.bash'}; COMP_WORDS=(netx ap); COMP_CWORD=1; _netx; echo ${{COMPREPLY[@]}};"
             " COMP_WORDS=(netx apply --conf); COMP_CWORD=2; _netx; echo ${COMPREPLY[@]}")
    run = subprocess.run(["bash", "-c", probe], capture_output=True, text=True)
    assert run.stdout.split("\n")[:2] == ["apply", "--confirm-timeout"], run.stdout + run.stderr


def test_quiet_apply_prints_only_the_outcome(netx):
    result = netx("apply", "--auto-approve", "--quiet", spec=SPEC)
    assert result.code == 0 and result.out.strip().startswith("Apply complete!") and "+ link" not in result.out
    again = netx("apply", "--auto-approve", "--quiet", spec=SPEC)
    assert again.out.strip() == "No changes."


def test_long_apply_shows_progress_on_a_terminal(netx, netns):
    routes = "".join(f"  - {{to: 10.{i // 256}.{i % 256}.0/24, via: 10.0.0.254}}\n" for i in range(1, 301))
    path = netx.write(SPEC + routes)
    command = f"{sys.executable} -m netplanx apply {path} --netns {netns} --auto-approve"
    run = subprocess.run(["script", "-qec", command, "/dev/null"], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "NETX_STATE_DIR": str(netx.state_dir)}, timeout=120)
    assert run.returncode == 0 and "applying: 303/303 steps" in run.stdout
