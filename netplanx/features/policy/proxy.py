"""The node's HAProxy: started, reloaded and stopped by netx, by its recorded PID, in the namespace netx is in.

Master-worker mode in the foreground (``-W -db``), so the PID netx records is the master's; the PID is
checked against /proc (the command line must be this folder's HAProxy) before it is signalled. Its folder,
``/run/netx/l7/SCOPE`` (0700, files 0600), holds the configuration (``haproxy.cfg``, the maps, one file per
scope under ``scopes/``), the master CLI and stats sockets, the recorded PID and what HAProxy prints.

A reload goes through the master CLI: the master passes its listening sockets to the new worker, the old
worker finishes its connections (an idle keep-alive connection gets one more request, then is closed;
``hard-stop-after`` bounds the rest). HAProxy prints ``Loading success.`` or ``Loading failure!`` when a
start or reload is done: netx waits for that line (inotify on the folder), then checks ``show proc`` (the
master's count of failed reloads must not grow) and the digest ``show info`` reports. The master executes
itself again to reload, and its CLI refuses (or resets) connections for a few milliseconds around that
(nothing on the file system changes meanwhile): only those are retried, until a deadline.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from contextlib import suppress
from pathlib import Path

from netplanx.engine.feature import DoctorCheck
from netplanx.errors import ProviderError
from netplanx.features.policy.haproxy import DESCRIPTION, MAIN, SCOPES
from netplanx.files import write_atomically
from netplanx.system.inotify import FolderWatch
from netplanx.system.polling import growing_pauses
from netplanx.system.processes import command_line, kill, terminate

RUN_ROOT = Path("/run/netx/l7")
BINARY = "haproxy"
READY, FAILED = "Loading success.", "Loading failure!"
TIMEOUT = 30.0


def installed_version() -> str | None:
    """The version of the haproxy command (``2.6.12-1+deb12u4``), None when it is not installed."""
    try:
        done = subprocess.run([BINARY, "-v"], capture_output=True, text=True, timeout=10)
    except (FileNotFoundError, PermissionError):
        return None
    words = done.stdout.split()
    return words[2] if done.returncode == 0 and words[:2] == ["HAProxy", "version"] else None


def haproxy_check() -> DoctorCheck:
    version = installed_version()
    return DoctorCheck("HAProxy (L7 policy rules)", version is not None,
                       f"haproxy {version}" if version else "the haproxy command is missing", "apt-get install haproxy")


class Proxy:
    """The HAProxy of one namespace (``scope``: netx's name for it)."""

    def __init__(self, scope: str):
        self.folder = RUN_ROOT / scope
        self.config = self.folder / MAIN
        self.scopes = self.folder / SCOPES
        self.master_socket = self.folder / "master.sock"
        self.stats_socket = self.folder / "stats.sock"
        self.log_socket = self.folder / "log.sock"
        self.pidfile = self.folder / "proxy.pid"
        self.output = self.folder / "haproxy.out"

    def pid(self) -> int | None:
        """The master's PID, if the recorded process is still this folder's HAProxy."""
        try:
            pid = int(self.pidfile.read_text())
        except (OSError, ValueError):
            return None
        command = command_line(pid)
        return pid if command and command[0].endswith(b"haproxy") and str(self.config).encode() in command else None

    def prepare(self) -> None:
        """The folders, private to root."""
        self.scopes.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)

    def start(self) -> None:
        """Start HAProxy and wait until its worker serves (or it failed: ProviderError with its alerts)."""
        for stale in (self.master_socket, self.stats_socket, self.pidfile):
            stale.unlink(missing_ok=True)
        command = [BINARY, "-W", "-db", "-f", str(self.config), "-f", str(self.scopes),
                   "-S", f"{self.master_socket},mode,600"]
        with FolderWatch(self.folder) as watch, open(self.output, "w") as output:
            os.chmod(self.output, 0o600)
            try:
                process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=output,
                                           start_new_session=True)
            except OSError as exc:
                raise ProviderError(f"cannot start {BINARY}: {exc.strerror}") from None
            exited = os.pidfd_open(process.pid)
            try:
                watch.wait(lambda: self._loaded(0) is not None, time.time() + TIMEOUT, also=(exited,))
            finally:
                os.close(exited)
        if self._loaded(0) is not True or process.poll() is not None:
            if process.poll() is None:
                terminate(process.pid, on_timeout=kill)
            raise ProviderError(f"HAProxy did not start (exit status {process.poll()}): {self._alerts(0)}")
        write_atomically(self.pidfile, f"{process.pid}\n")

    def reload(self) -> None:
        """Reload through the master CLI; ProviderError when the new configuration did not load (the old
        worker keeps serving then)."""
        mark = len(self._printed())
        failed = self._failed_reloads()
        with FolderWatch(self.folder) as watch:
            with suppress(ConnectionResetError):  # the master may execute itself before it answers
                _talk(self.master_socket, "reload")
            watch.wait(lambda: self._loaded(mark) is not None, time.time() + TIMEOUT)
        if self._loaded(mark) is not True or self._failed_reloads() != failed:
            raise ProviderError(f"HAProxy did not reload: {self._alerts(mark)}")

    def stop(self) -> None:
        """Stop the master (its workers go with it) by its recorded PID, and wait until it is gone."""
        pid = self.pid()
        if pid is not None:
            terminate(pid, on_timeout=kill)
        for path in (self.master_socket, self.stats_socket, self.pidfile, self.output):
            path.unlink(missing_ok=True)

    def remove_folder(self) -> None:
        """The folder, once nothing netx wrote is left in it (a log socket of a running ``netx flows`` may be)."""
        with suppress(OSError):
            self.scopes.rmdir()
        with suppress(OSError):
            self.folder.rmdir()

    def info(self) -> dict[str, str]:
        """``show info`` of the serving worker, as ``Key -> value``."""
        found = {}
        for line in self.ask(self.stats_socket, "show info").splitlines():
            key, colon, value = line.partition(":")
            if colon:
                found[key.strip()] = value.strip()
        return found

    def running_digest(self, info: dict[str, str]) -> str:
        """The configuration digest the worker was started with (its ``description``)."""
        return info.get("description", "").removeprefix(DESCRIPTION)

    def await_digest(self, digest: str) -> str:
        """The digest of the worker that answers, once it is ``digest`` or the deadline passed.

        Just after a reload the old worker may still hold the stats socket's listener until it has stopped
        listening (the master tells it to once the new worker is ready): nothing on the file system marks that
        moment, so the question is asked again, with growing pauses, until the new worker answers.
        """
        running = ""
        for _ in growing_pauses(TIMEOUT, 0.005, 0.2):
            running = self.running_digest(self.info())
            if running == digest:
                break
        return running

    def ask(self, path: Path, command: str) -> str:
        """One command on a CLI socket; the whole answer."""
        try:
            return _talk(path, command)
        except OSError as exc:
            raise ProviderError(f"HAProxy does not answer on {path} ({exc.strerror or exc})") from None

    def master(self, command: str) -> str:
        """One command on the master CLI, while it may be executing itself again (a reload)."""
        for _ in growing_pauses(TIMEOUT, 0.01, 0.01):
            try:
                return _talk(self.master_socket, command)
            except (ConnectionRefusedError, ConnectionResetError):
                continue
            except OSError as exc:
                raise ProviderError(f"HAProxy does not answer on {self.master_socket} ({exc.strerror})") from None
        raise ProviderError(f"HAProxy's master does not answer on {self.master_socket}")

    def _printed(self) -> list[str]:
        try:
            return self.output.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []

    def _loaded(self, after: int) -> bool | None:
        """True or False once HAProxy printed that a start or reload succeeded or failed (after line ``after``)."""
        for line in self._printed()[after:]:
            if line.endswith(READY):
                return True
            if line.endswith(FAILED):
                return False
        return None

    def _alerts(self, after: int) -> str:
        lines = [line.split(":", 1)[-1].strip() for line in self._printed()[after:] if "[ALERT]" in line]
        return "; ".join(lines) or "no message (see " + str(self.output) + ")"

    def _failed_reloads(self) -> int:
        """The master's count of failed reloads (``show proc``: ``master 3 [failed: 0]``)."""
        for line in self.master("show proc").splitlines():
            if " master " in f" {line} " and "[failed:" in line:
                return int(line.split("[failed:")[1].split("]")[0])
        raise ProviderError(f"HAProxy's master did not list itself in show proc ({self.master_socket})")

    def wipe(self) -> None:
        """Everything in the folder (the lab's clean-up, after ``stop``)."""
        shutil.rmtree(self.folder, ignore_errors=True)


def _talk(path: Path, command: str) -> str:
    """Send a command, close our side (the master answers only then), read the answer to its end."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(path))
        sock.sendall(f"{command}\n".encode())
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")
