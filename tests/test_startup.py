"""Start-up: a command imports only what its spec and its work need (what is imported, never how long it took;
the figures are in docs/benchmarks.md)."""

from __future__ import annotations

import re

HOST_SPEC = """\
apiVersion: netx/v1
interfaces:
  - {name: br0, type: bridge, addresses: [10.0.0.1/24]}
  - {name: ve0, type: veth, peer: {name: vp0}, master: br0}
routes:
  - {to: 198.51.100.0/24, via: 10.0.0.254}
sysctl:
  net.ipv4.ip_forward: 1
"""
IMPORTED = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*([\w.]+)$", re.MULTILINE)
FEATURE_LIBRARIES = ("bcc", "grpc", "google.protobuf", "pyroute2")


def imported(netx, *args: str, spec: str) -> set[str]:
    """The modules a real ``netx`` command imports (Python's -X importtime, through its environment)."""
    result = netx(*args, spec=spec, env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert result.code == 0, result.err[-2000:]
    return set(IMPORTED.findall(result.err))


def of(modules: set[str], package: str) -> set[str]:
    return {m for m in modules if m == package or m.startswith(f"{package}.")}


def test_a_plan_of_a_host_spec_imports_no_library_of_another_feature(netx):
    modules = imported(netx, "plan", spec=HOST_SPEC)
    assert "netplanx.cli.main" in modules  # the measurement sees netx's own imports
    for library in FEATURE_LIBRARIES:
        assert not of(modules, library), f"{library} imported to plan a host spec: {sorted(of(modules, library))}"


def test_a_spec_planned_again_is_not_parsed_or_validated_again(netx):
    first = imported(netx, "plan", spec=HOST_SPEC)
    assert of(first, "pydantic") and of(first, "netplanx.document._fast_yaml")  # a spec never seen: YAML, validation
    assert not of(first, "ruamel"), sorted(of(first, "ruamel"))  # a valid spec: ruamel only for positions of errors
    again = imported(netx, "plan", spec=HOST_SPEC)
    for library in ("pydantic", "netplanx.document._fast_yaml", "ruamel"):
        assert not of(again, library), sorted(of(again, library))


def test_an_apply_of_a_host_spec_imports_no_ebpf_or_bgp_library(netx):
    modules = imported(netx, "apply", "--auto-approve", spec=HOST_SPEC)
    for library in ("bcc", "grpc", "google.protobuf"):
        assert not of(modules, library), f"{library} imported to apply a host spec"


EXITING = """\
import atexit, sys
import netplanx.cli.main as cli
atexit.register(lambda: print("exit handler ran", file=sys.stderr, flush=True))
sys.argv = ["netx", *sys.argv[1:]]
cli.run()
print("not reached", file=sys.stderr)
"""


def test_netx_exits_with_its_code_its_output_flushed_and_its_exit_handlers_run(tmp_path):
    """``run`` skips the interpreter's teardown (os._exit) but not what an exit must do: the whole output
    through a pipe, the exit handlers, the command's exit code; under a profiler, the ordinary exit."""
    import subprocess
    import sys

    spec = tmp_path / "host.yaml"
    spec.write_text(HOST_SPEC)
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: netx/v1\nroutes: 3\n")
    ok = subprocess.run([sys.executable, "-c", EXITING, "validate", str(spec)], capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout == f"{spec}: valid (5 resources)\n", ok
    assert ok.stderr == "exit handler ran\n"
    failed = subprocess.run([sys.executable, "-c", EXITING, "validate", str(bad)], capture_output=True, text=True)
    assert failed.returncode == 1 and "bad.yaml:2:9" in failed.stderr and "exit handler ran" in failed.stderr
    profiled = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(tmp_path / "prof"), "-m", "netplanx",
                               "validate", str(spec)], capture_output=True, text=True)
    assert profiled.returncode == 0 and (tmp_path / "prof").stat().st_size > 0, profiled.stderr
