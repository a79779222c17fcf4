"""``python -m netplanx ARGS`` in a fork of the test process, for the tests that run inside the VM.

Under emulation a new interpreter that imports netx, pydantic and pyroute2 costs seconds (docs/testing.md); a fork
of the test process, which imported them once (and probed the kernel's link kinds once), costs a fraction of
that. The child gets the command's arguments, environment, working folder and standard input, writes to its
own standard output and error, and exits with the command's status, as the subprocess would.
"""

from __future__ import annotations

import functools
import io
import os
import select
import signal
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path


@functools.cache
def _warm() -> None:
    """What every command needs, imported and built once in this process: the children inherit it."""
    import netplanx.cli.main
    import netplanx.system.pyroute  # noqa: F401
    from netplanx.features.interfaces.kinds.catalog import KINDS
    from netplanx.spec.validate import parse_spec

    parse_spec("apiVersion: netx/v1\n", "warm.yaml")
    for kind in KINDS.values():
        if kind.created:
            kind.missing()


def run(args: Sequence[str], env: Mapping[str, str], cwd: Path, stdin: str | None = None,
        timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run the netx command line ``args`` in a forked child; its outcome as subprocess.run gives it. The
    timeout is generous: an emulated guest on a busy host is starved (the VM's own timeout bounds the run)."""
    _warm()
    with tempfile.TemporaryFile() as given, tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        given.write((stdin or "").encode())
        given.seek(0)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            _child(args, env, cwd, given.fileno(), out.fileno(), err.fileno())
        code = _wait(pid, timeout)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(["netx", *args], code, out.read().decode(errors="replace"),
                                           err.read().decode(errors="replace"))


def _child(args: Sequence[str], env: Mapping[str, str], cwd: Path, stdin: int, stdout: int, stderr: int) -> None:
    code = 1
    try:
        for source, target in ((stdin, 0), (stdout, 1), (stderr, 2)):
            os.dup2(source, target)
        sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), write_through=True)
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), write_through=True)
        os.environ.clear()
        os.environ.update(env)
        os.chdir(cwd)
        from netplanx.cli.main import main

        code = main(list(args))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _wait(pid: int, timeout: float) -> int:
    """The child's exit status (negative: the signal that killed it); killed after ``timeout`` seconds."""
    handle = os.pidfd_open(pid)
    try:
        if not select.select([handle], [], [], timeout)[0]:
            os.kill(pid, signal.SIGKILL)
    finally:
        os.close(handle)
    _pid, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)
