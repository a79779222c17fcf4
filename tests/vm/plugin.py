"""Tests that need link kinds this kernel lacks run inside Debian's stock kernel in a VM (docs/testing.md).

``@pytest.mark.kernel("vlan", "bond")`` names the link kinds a test needs. Where this kernel can create
them (probed in a private namespace of a child, as netx does), the test runs here as usual. Where it
cannot, the test is replaced by a stand-in with the same nodeid, and one boot of the VM (scripts/vm.sh)
runs all of those tests in one pytest process inside it; each stand-in then passes, fails (with the guest's
report) or skips as its test did there. A VM that gave no result fails them all, with the end of its log.

The VM boots as soon as collection is over, in the background, so it runs while the host's tests do.
Under pytest-xdist every worker starts the same run; a lock in the run's folder lets one of them boot it
and the others wait for its report. There the stand-ins' nodeids end in ``@netx-vm``, and the scheduler of
tests/conftest.py gives them all to one worker: one worker waits for the VM, the others run the host's tests.

Inside the VM (NETX_IN_VM=1) nothing is replaced. NETX_VM=0 skips the stand-ins instead of booting.
NETX_VM_TIMEOUT (seconds, default 1200) bounds the VM's run: a VM that hangs fails its stand-ins in time.
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "scripts" / "vm.sh"
IN_VM = os.environ.get("NETX_IN_VM") == "1"
FOLDER = "NETX_VM_OUT"  # the run's folder, made by the controller and inherited by the xdist workers
GROUP = "@netx-vm"  # the stand-ins' nodeid suffix under xdist: the scheduler keeps them on one worker
HOST_ONLY_MARKS = {"skip", "skipif", "xfail", "usefixtures", "parametrize", "filterwarnings"}


@functools.cache
def kind_missing(kind: str) -> str | None:
    """Why this kernel cannot create ``kind`` links (None: it can), probed as netx probes it."""
    from netplanx.features.interfaces.kinds.catalog import KINDS
    from netplanx.system.probes import link_kind_error

    known = KINDS.get(kind)
    return known.missing() if known is not None else link_kind_error(kind)


def lacking(item: pytest.Item) -> list[str]:
    """The link kinds ``item`` needs that this kernel lacks."""
    kinds = {kind for mark in item.iter_markers("kernel") for kind in mark.args}
    return sorted(kind for kind in kinds if kind_missing(kind))


class VmFailure(Exception):
    """A test failed inside the VM (its report is the message)."""


class VmRun:
    """One boot of the VM for every stand-in of this pytest run."""

    def __init__(self, nodeids: list[str]):
        self.nodeids = nodeids
        self.folder = Path(os.environ.get(FOLDER) or tempfile.mkdtemp(prefix="netx-vm-"))
        self._lock = threading.Lock()
        self._results: dict[str, dict[str, Any]] | None = None
        self._problem = ""
        self._thread: threading.Thread | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Boot in the background (or wait for the worker that does)."""
        self._thread = threading.Thread(target=self.results, name="netx-vm", daemon=True)
        self._thread.start()

    def stop(self, cancel: bool) -> None:
        """At the end of the session: wait for the VM, or stop it (by its PID) when the run was cut short."""
        if cancel and self._process is not None and self._process.poll() is None:
            self._process.terminate()  # vm.sh stops qemu and removes its image
        if self._thread is not None:
            self._thread.join()

    def results(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            if self._results is None:
                self.folder.mkdir(parents=True, exist_ok=True)
                with open(self.folder / "lock", "w") as lock:
                    fcntl.flock(lock, fcntl.LOCK_EX)  # another worker may be running the VM: wait for it
                    if not (self.folder / "summary.json").exists():
                        self._boot()
                self._results = self._read()
            return self._results

    def _boot(self) -> None:
        log = self.folder / "vm.log"
        command = ["setpriv", "--pdeathsig", "TERM", "--", "bash", str(RUNNER), "--out", str(self.folder / "vm"),
                   "--timeout", os.environ.get("NETX_VM_TIMEOUT", "1200"), "--", "-q", *self.nodeids]
        start = time.monotonic()
        with open(log, "wb") as output:
            self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output,
                                             stderr=subprocess.STDOUT, cwd=ROOT)
            code = self._process.wait()
        summary = {"rc": code, "seconds": round(time.monotonic() - start, 1), "tests": len(self.nodeids)}
        (self.folder / "summary.json").write_text(json.dumps(summary))

    def _read(self) -> dict[str, dict[str, Any]]:
        summary = json.loads((self.folder / "summary.json").read_text())
        report = self.folder / "vm" / "report.json"
        results = json.loads(report.read_text()) if report.exists() else {}
        if summary["rc"] not in (0, 1) or not report.exists():  # 1: some test failed in the guest
            tail = "".join((self.folder / "vm.log").read_text(errors="replace").splitlines(True)[-60:])
            self._problem = f"the VM run failed (exit status {summary['rc']} after {summary['seconds']} s):\n{tail}"
        return results

    def result(self, nodeid: str) -> dict[str, Any]:
        results = self.results()
        if nodeid in results:
            return results[nodeid]
        collect = "".join(r["longrepr"] for key, r in results.items() if key.startswith("collect:"))
        return {"outcome": "failed", "longrepr": f"not run in the VM\n{collect}{self._problem}"}


class VmStandIn(pytest.Item):
    """Stands in on the host for a test that runs in the VM: its outcome is the guest's."""

    def __init__(self, *, run: VmRun, lacks: list[str], **kwargs: Any):
        super().__init__(**kwargs)
        self.run = run
        self.lacks = lacks
        self.guest_nodeid = self.nodeid.removesuffix(GROUP)

    def runtest(self) -> None:
        reason = skip_reason()
        if reason:
            pytest.skip(f"kernel lacks {', '.join(self.lacks)} here and {reason}")
        result = self.run.result(self.guest_nodeid)
        if result["outcome"] == "skipped":
            pytest.skip(f"in the VM: {result['longrepr']}")
        if result["outcome"] == "failed":
            raise VmFailure(result["longrepr"])

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if excinfo.errisinstance(VmFailure):
            return f"failed inside the VM:\n{excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"[vm] {self.name}"


def skip_reason() -> str:
    """Why the stand-ins skip instead of booting the VM ('' when they boot it)."""
    if os.environ.get("NETX_VM") == "0":
        return "the VM is off (NETX_VM=0)"
    if os.geteuid() != 0:
        return "the VM needs root"
    return ""


def pytest_configure(config: pytest.Config) -> None:
    if not IN_VM and not hasattr(config, "workerinput") and FOLDER not in os.environ:
        os.environ[FOLDER] = tempfile.mkdtemp(prefix="netx-vm-")
        config.stash[_made] = os.environ[FOLDER]


def pytest_unconfigure(config: pytest.Config) -> None:
    folder = config.stash.get(_made, None)
    if folder and not os.environ.get("NETX_VM_KEEP"):
        shutil.rmtree(folder, ignore_errors=True)


@pytest.hookimpl(tryfirst=True)  # before deselection
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    if IN_VM:
        return
    run: VmRun | None = None
    for position, item in enumerate(items):
        lacks = lacking(item) if item.get_closest_marker("kernel") else []
        if not lacks:
            continue
        run = run or VmRun([])
        # a child of the session, not of the module: the host must not evaluate the test's skipif or xfail
        # marks (the guest does); the same nodeid, so reports, -k and -m match it as they match the test
        nodeid = item.nodeid + (GROUP if hasattr(config, "workerinput") else "")
        stand_in = VmStandIn.from_parent(session, name=item.name, nodeid=nodeid, path=item.path, run=run,
                                         lacks=lacks)
        stand_in.own_markers.extend(m for m in item.iter_markers() if m.name not in HOST_ONLY_MARKS)
        stand_in.extra_keyword_matches.update(item.listnames())
        items[position] = stand_in
    session.stash[_run] = run


def pytest_collection_finish(session: pytest.Session) -> None:
    run = session.stash.get(_run, None)
    stand_ins = [item for item in session.items if isinstance(item, VmStandIn)]
    if run is None or not stand_ins or session.config.option.collectonly or skip_reason():
        return
    run.nodeids[:] = [item.guest_nodeid for item in stand_ins]
    run.start()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    run = session.stash.get(_run, None)
    if run is not None:
        run.stop(cancel=exitstatus == pytest.ExitCode.INTERRUPTED or bool(session.shouldstop or session.shouldfail))


_made = pytest.StashKey[str]()
_run = pytest.StashKey["VmRun | None"]()
