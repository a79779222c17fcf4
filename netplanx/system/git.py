"""git for ``netx pull``: a bare clone that is fetched into and never checked out (no working tree a hostile
repository could fill with links or hooks), commits checked with git's own ``verify-commit`` against an
allowed-signers file, files read as blobs by object id.

Network operations (fetch, push) run in the network namespace the process started in, even after it
entered ``--netns``: the repository is reached from the host, the namespace is what netx manages.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from netplanx.errors import NetxError
from netplanx.system import netns

HARDENING = ("-c", "core.hooksPath=/dev/null", "-c", "protocol.ext.allow=never", "-c", "transfer.fsckObjects=true",
             "-c", "core.fsmonitor=false", "-c", "gpg.ssh.program=ssh-keygen")
ENVIRONMENT = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/false", "SSH_ASKPASS": "/bin/false", "LC_ALL": "C"}
SSH_SIGNATURE = b"gpgsig -----BEGIN SSH SIGNATURE-----"
GOOD = re.compile(r'Good "git" signature for (?P<principal>.+?) with (?P<key>\S+ key \S+)')
CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")


class GitError(NetxError):
    """A git command failed; the message ends with what git said (credentials in URLs masked)."""


def redact(text: str) -> str:
    """``text`` with the user and password of every URL in it masked."""
    return CREDENTIALS.sub("***@", text)


class Repository:
    """A bare repository netx owns (0700), created on first use."""

    def __init__(self, path: Path):
        self.path = path
        self._home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        if not (path / "HEAD").exists():
            os.makedirs(path.parent, mode=0o700, exist_ok=True)
            self._git("init", "--quiet", "--bare", str(path), here=False)
            os.chmod(path, 0o700)

    def close(self) -> None:
        os.close(self._home)

    def _git(self, *args: str, data: bytes | None = None, network: bool = False, here: bool = True,
             check: bool = True) -> subprocess.CompletedProcess[bytes]:
        command = ["git", *HARDENING, *(("--git-dir", str(self.path)) if here else ()), *args]
        done = subprocess.run(command, input=data, capture_output=True, check=False,
                              env={**os.environ, **ENVIRONMENT},
                              preexec_fn=(lambda: netns.set_namespace(self._home)) if network else None)
        if check and done.returncode != 0:
            said = redact(done.stderr.decode(errors="replace").strip().replace("\n", "; "))
            raise GitError(f"git {args[0]} failed: {said or f'exit {done.returncode}'}")
        return done

    def fetch(self, url: str, refspecs: Sequence[str]) -> None:
        """Fetch ``refspecs`` from ``url`` (every object's hash and format checked as it arrives)."""
        self._git("fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--prune", "--", url, *refspecs,
                  network=True)

    def push(self, url: str, refspecs: Sequence[str]) -> None:
        self._git("push", "--quiet", "--", url, *refspecs, network=True)

    def commit(self, ref: str) -> str | None:
        """The commit ``ref`` names here, or None."""
        done = self._git("rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}", check=False)
        return done.stdout.decode().strip() or None

    def set_ref(self, ref: str, oid: str) -> None:
        self._git("update-ref", ref, oid)

    def signer(self, commit: str, allowed_signers: Path) -> str:
        """Who signed ``commit`` (principal and key), when an SSH signature by a key of ``allowed_signers``
        covers it; GitError otherwise (unsigned, an OpenPGP signature, an unknown key, a bad signature)."""
        headers = self._git("cat-file", "commit", commit).stdout.split(b"\n\n", 1)[0]
        if b"\ngpgsig " not in headers:
            raise GitError(f"commit {commit[:12]} is not signed (allowed: an SSH signature by a key of "
                           f"{allowed_signers})")
        if SSH_SIGNATURE not in headers:
            raise GitError(f"commit {commit[:12]} has an OpenPGP signature (allowed: an SSH signature by a key of "
                           f"{allowed_signers})")
        done = self._git("-c", f"gpg.ssh.allowedSignersFile={allowed_signers}", "-c", "gpg.minTrustLevel=fully",
                         "verify-commit", "--", commit, check=False)
        said = done.stderr.decode(errors="replace")
        good = GOOD.search(said)
        if done.returncode != 0 or good is None:
            forged = "incorrect signature" in said or "verification failed" in said
            reason = "a signature that does not verify against" if forged else "a key that is not in"
            raise GitError(f"commit {commit[:12]} carries {reason} {allowed_signers} ({_last_line(said)})")
        return f"{good['principal']} ({good['key']})"

    def is_ancestor(self, older: str, newer: str) -> bool:
        """Whether ``older`` is ``newer`` or in its history; GitError when either is unknown."""
        done = self._git("merge-base", "--is-ancestor", older, newer, check=False)
        if done.returncode not in (0, 1):
            raise GitError(f"git merge-base failed: {_last_line(done.stderr.decode(errors='replace'))}")
        return done.returncode == 0

    def file(self, commit: str, path: str, limit: int) -> bytes:
        """The bytes of the regular file ``path`` in ``commit`` (at most ``limit``): a link, a folder or a
        submodule at ``path`` is refused."""
        listed = self._git("ls-tree", "-l", "-z", "--full-tree", commit, "--", path).stdout.split(b"\0")[0]
        if not listed:
            raise GitError(f"commit {commit[:12]} has no file {path}")
        info, _name = listed.decode().split("\t", 1)
        mode, kind, oid, size = info.split()
        if kind != "blob" or mode not in ("100644", "100755"):
            raise GitError(f"{path} in commit {commit[:12]} is not a regular file (mode {mode}, {kind})")
        if int(size) > limit:
            raise GitError(f"{path} in commit {commit[:12]} is {size} bytes (allowed: at most {limit})")
        return self._git("cat-file", "blob", oid).stdout

    def refs(self, prefix: str) -> dict[str, str]:
        """Ref name -> object id for every ref under ``prefix``."""
        listed = self._git("for-each-ref", "--format=%(refname) %(objectname)", prefix).stdout.decode()
        return dict(line.split(" ", 1) for line in listed.splitlines())

    def blobs(self, oids: Iterable[str], limit: int) -> dict[str, bytes]:
        """The content of each blob (of at most ``limit`` bytes; others are left out), in one git process."""
        wanted = list(oids)
        if not wanted:
            return {}
        out = self._git("cat-file", "--batch", data="".join(f"{o}\n" for o in wanted).encode()).stdout
        found = {}
        for oid in wanted:
            header, out = out.split(b"\n", 1)
            parts = header.split()
            if len(parts) != 3:  # "<oid> missing"
                continue
            size = int(parts[2])
            if parts[1] == b"blob" and size <= limit:
                found[oid] = out[:size]
            out = out[size + 1:]
        return found

    def write_blob(self, data: bytes) -> str:
        return self._git("hash-object", "-w", "--stdin", data=data).stdout.decode().strip()


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return redact(lines[-1].strip()) if lines else "no output"
