"""A fleet for ``netx pull``: a lab's nodes following a local bare repository of SSH-signed specs.

Used by the fleet tests and ``benchmarks/fleet.py``. The repository is what an operator pushes to; every
node runs ``netx pull`` with the same agent config (its node and namespace on the command line), as the
systemd timer would. A round runs every node's pull at once and waits for all of them: a fleet
converges in as many rounds as the rollout has waves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from netplanx.lab.cluster import Lab

GIT_ENV = {"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "netx lab",
           "GIT_AUTHOR_EMAIL": "ops@netx.test", "GIT_COMMITTER_NAME": "netx lab",
           "GIT_COMMITTER_EMAIL": "ops@netx.test"}


def git(cwd: Path, *args: str, data: str | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, input=data, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV})
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {done.stderr}")
    return done.stdout.strip()


@dataclass(frozen=True)
class Signer:
    """An ed25519 key pair made with ssh-keygen (private key 0600) that signs commits."""

    key: Path
    principal: str

    @classmethod
    def make(cls, folder: Path, name: str) -> Signer:
        key = folder / f"{name}.key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True)
        return cls(key, f"{name}@netx.test")

    def allowed(self) -> str:
        """This key's line in an allowed-signers file."""
        return f"{self.principal} {Path(f'{self.key}.pub').read_text().strip()}\n"


class SpecRepository:
    """``origin.git`` (bare: what the nodes fetch) and ``work`` (where the operator commits)."""

    def __init__(self, folder: Path, path: str = "cluster.yaml"):
        self.origin, self.work, self.path = folder / "origin.git", folder / "work", path
        git(folder, "init", "--quiet", "--bare", "--initial-branch=main", str(self.origin))
        git(folder, "init", "--quiet", "--initial-branch=main", str(self.work))

    @property
    def url(self) -> str:
        return str(self.origin)

    def commit(self, spec: str, message: str, signer: Signer | None, force_from: str | None = None) -> str:
        """Commit ``spec`` (signed by ``signer``, unsigned when None) and push it to main; ``force_from``
        rewrites the branch: the new commit's parent is that commit, and the push is forced."""
        if force_from:
            git(self.work, "reset", "--quiet", "--soft", force_from)
        (self.work / self.path).write_text(spec)
        git(self.work, "add", self.path)
        sign = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={signer.key}", "commit", "-S"] if signer else \
            ["commit", "--no-gpg-sign"]
        git(self.work, *sign, "--quiet", "--allow-empty", "-m", message)
        git(self.work, "push", "--quiet", *(["--force"] if force_from else []), str(self.origin), "HEAD:main")
        return self.tip()

    def tip(self) -> str:
        return git(self.origin, "rev-parse", "refs/heads/main")

    def rewind(self, commit: str) -> None:
        """Point main at ``commit`` again, in origin and in the work tree (as a forced push would)."""
        git(self.origin, "update-ref", "refs/heads/main", commit)
        git(self.work, "reset", "--quiet", "--hard", commit)

    def forge(self, spec: str) -> str:
        """Main's next commit made on the server without the key: ``spec`` under the signature copied from
        the tip (the commit a tampered object would be); main points at it."""
        blob = git(self.origin, "hash-object", "-w", "--stdin", data=spec)
        tree = git(self.origin, "mktree", data=f"100644 blob {blob}\t{self.path}\n")
        tip = self.tip()
        signed = subprocess.run(["git", "cat-file", "commit", tip], cwd=self.origin, capture_output=True,
                                text=True, check=True).stdout
        headers, message = signed.split("\n\n", 1)
        kept = [line for line in headers.split("\n") if not line.startswith(("tree ", "parent "))]
        forged = "\n".join([f"tree {tree}", f"parent {tip}", *kept]) + "\n\n" + message
        commit = git(self.origin, "hash-object", "-t", "commit", "-w", "--stdin", data=forged)
        git(self.origin, "update-ref", "refs/heads/main", commit)
        return commit

    def corrupt(self, commit: str) -> tuple[Path, bytes]:
        """Overwrite the stored spec of ``commit`` in origin with other bytes under the same object id (a
        disk or a server altering an object); returns the object file and its bytes, to put them back."""
        blob = git(self.origin, "rev-parse", f"{commit}:{self.path}")
        path = self.origin / "objects" / blob[:2] / blob[2:]
        original = path.read_bytes()
        path.chmod(0o644)
        path.write_bytes(zlib.compress(b"blob 20\0apiVersion: netx/v1\n"))
        return path, original


def agent_config(folder: Path, repo: SpecRepository, signers: Sequence[Signer],
                 waves: Sequence[int | str] | None = (1, "25%", "100%")) -> Path:
    """The agent config every node of the fleet uses, with the allowed-signers file (0644) it names."""
    allowed = folder / "allowed_signers"
    allowed.write_text("".join(s.allowed() for s in signers))
    allowed.chmod(0o644)
    lines = ["source:", f"  url: {repo.url}", "  branch: main", f"  path: {repo.path}",
             f"  allowedSigners: {allowed}"]
    if waves is not None:
        lines += ["rollout:", f"  waves: {json.dumps(list(waves))}"]
    path = folder / "agent.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Round:
    """One pull on every node at once: how long until the last one ended, and each node's outcome."""

    seconds: float
    outcomes: dict[str, dict]

    def nodes(self, *results: str) -> list[str]:
        return sorted(n for n, o in self.outcomes.items() if o.get("result") in results)


class Fleet:
    """The lab's nodes pulling from ``config``."""

    def __init__(self, lab: Lab, config: Path):
        self.lab, self.config = lab, config

    def pull(self, nodes: Sequence[str] | None = None, *extra: str) -> Round:
        """``netx pull --json`` on ``nodes`` (default all), all at once; returns when every one has ended."""
        env = {**os.environ, "NETX_STATE_DIR": str(self.lab.state_dir)}
        started = time.perf_counter()
        running = {node: subprocess.Popen(
            [sys.executable, "-m", "netplanx", "pull", "--config", str(self.config), "--json", "--node", node,
             "--netns", self.lab.netns(node), *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=env) for node in (nodes or self.lab.nodes)}
        outcomes = {}
        for node, process in running.items():
            out, err = process.communicate(timeout=300)
            try:
                outcomes[node] = {**json.loads(out), "exit": process.returncode}
            except ValueError:
                outcomes[node] = {"result": "crashed", "exit": process.returncode, "message": err + out}
        return Round(time.perf_counter() - started, outcomes)

    def converge(self, commit: str, members: Sequence[str], max_rounds: int = 6) -> list[Round]:
        """Pull rounds until every node of ``members`` has applied ``commit``, or a round changes nothing
        more (the rollout stopped, or a node failed)."""
        rounds: list[Round] = []
        done: set[str] = set()
        while len(rounds) < max_rounds:
            rounds.append(self.pull())
            now = {n for n, o in rounds[-1].outcomes.items()
                   if o.get("commit") == commit and o.get("result") in ("applied", "no-changes")}
            if set(members) <= now or now <= done:
                return rounds
            done = now
        return rounds
