"""Benchmark: HTTP through the L7 path (eBPF redirect, nftables tproxy, HAProxy's rules, transparent upstream)
against the L4 path (eBPF policy only) to the same server, in one run.

Usage (root): python benchmarks/l7.py [--duration 5] [--rounds 3] [--connections 10]

A one-node lab applied by netx (endpoints client-a and web-a; web's ingress policy: tcp/8080 through an L7
rule ``GET /.*``, tcp/8081 plain L4 from the same peer). In web-a an HAProxy responder answers both ports
(``http-request return``: the server costs next to nothing, so the figures are the paths'). wrk in client-a,
one thread, ``--connections`` connections, in two modes: keep-alive, and a new connection per request
(``Connection: close``). Rounds alternate L4 and L7 so that the machine's load hits both alike; the median
round counts. Also: the node's HAProxy worker CPU time per L7 request (from /proc, exact whatever else runs),
and a check that L7 requests went through the proxy (its request counter) and L4 ones did not.
Everything runs in namespaces this script creates and removes; processes are stopped by PID.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from netplanx.features.policy.proxy import Proxy
from netplanx.lab.cluster import Lab, lab_spec
from netplanx.system.inotify import FolderWatch
from netplanx.system.processes import terminate

WEB, L7_PORT, L4_PORT = "10.244.1.11", 8080, 8081
POLICIES = f"""policies:
  - name: web
    selector: {{app: web}}
    ingress:
      - from: [{{labels: {{app: client}}}}]
        ports: [{{port: {L7_PORT}, rules: {{http: [{{method: GET, path: "/.*"}}]}}}}]
      - from: [{{labels: {{app: client}}}}]
        ports: [{{port: {L4_PORT}}}]
"""
RESPONDER = f"""global
    maxconn 4000
defaults
    mode http
    timeout client 30s
    timeout server 30s
    timeout connect 5s
frontend answer
    bind {WEB}:{L7_PORT}
    bind {WEB}:{L4_PORT}
    http-request return status 200 content-type text/plain string ok
"""
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(netns: str, port: int, duration: int, connections: int, close: bool) -> dict[str, float]:
    """Requests per second and latency percentiles (ms) of one wrk run."""
    command = ["nsenter", f"--net=/run/netns/{netns}", "wrk", "-t1", f"-c{connections}", f"-d{duration}s",
               "--latency", f"http://{WEB}:{port}/bench"]
    if close:
        command[-1:-1] = ["-H", "Connection: close"]
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=duration + 60).stdout
    found = {"rate": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
    for percent in ("50", "99"):
        value, unit = re.search(rf"\s{percent}%\s+([\d.]+)(us|ms|s)", out).groups()
        found[f"p{percent}"] = float(value) * UNITS[unit]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors on port {port}:\n{out}")
    found["requests"] = float(re.search(r"(\d+) requests in", out).group(1))
    return found


def worker_cpu(proxy: Proxy) -> float:
    """CPU seconds (user + system) of the proxy's current workers."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for line in proxy.master("show proc").splitlines():
        if " worker " in f" {line} ":
            fields = Path(f"/proc/{line.split()[0]}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def served(proxy: Proxy) -> int:
    return int(proxy.info().get("CumReq", "0"))


def start_responder(lab: Lab) -> subprocess.Popen:
    """HAProxy answering in web-a, once it serves (its master prints "Loading success.")."""
    config, output = lab.workdir / "responder.cfg", lab.workdir / "responder.out"
    config.write_text(RESPONDER)
    with FolderWatch(lab.workdir) as watch, open(output, "w") as sink:
        process = subprocess.Popen(["nsenter", f"--net=/run/netns/{lab.endpoint_netns('web-a')}", "haproxy", "-W",
                                    "-db", "-f", str(config)], stdout=sink, stderr=sink)
        exited = os.pidfd_open(process.pid)
        try:
            ready = watch.wait(lambda: "Loading success." in output.read_text(), time.time() + 30, also=(exited,))
        finally:
            os.close(exited)
    if not ready:
        terminate(process.pid)
        raise RuntimeError(f"the responder did not start: {output.read_text()}")
    return process


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=10)
    args = parser.parse_args()
    lab = Lab(f"bl7{uuid.uuid4().hex[:5]}", ["node-a"], Path(tempfile.mkdtemp(prefix="netx-l7-bench-")))
    responder = None
    try:
        lab.up()
        lab.apply(lab_spec(lab.name, ["node-a"], endpoints={"web-a": "node-a", "client-a": "node-a"}) + POLICIES)
        responder = start_responder(lab)
        proxy = Proxy(lab.netns("node-a"))
        client = lab.endpoint_netns("client-a")
        wrk(client, L4_PORT, 1, 2, False)  # warm up both paths
        wrk(client, L7_PORT, 1, 2, False)
        results: dict[tuple[str, str], list[dict[str, float]]] = {}
        cpu: list[float] = []
        for _round in range(args.rounds):
            for mode, close in (("keep-alive", False), ("new connection", True)):
                for path, port in (("L4", L4_PORT), ("L7", L7_PORT)):
                    before_requests, before_cpu = served(proxy), worker_cpu(proxy)
                    run = wrk(client, port, args.duration, args.connections, close)
                    through = served(proxy) - before_requests
                    if (path == "L7") != (through >= run["requests"]):
                        raise RuntimeError(f"{path} on {port}: the proxy served {through} of {run['requests']}")
                    if path == "L7":
                        cpu.append((mode, (worker_cpu(proxy) - before_cpu) / run["requests"] * 1e6))
                    results.setdefault((mode, path), []).append(run)
        print(f"wrk -t1 -c{args.connections} -d{args.duration}s, {args.rounds} rounds (median), 1 node, "
              f"load average {os.getloadavg()[0]:.1f}")
        print(f"{'mode':<16} {'path':<4} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}   L7/L4")
        for mode in ("keep-alive", "new connection"):
            median = {path: {k: statistics.median(r[k] for r in results[(mode, path)]) for k in ("rate", "p50", "p99")}
                      for path in ("L4", "L7")}
            for path in ("L4", "L7"):
                m = median[path]
                ratio = "" if path == "L4" else (f"rate x{m['rate'] / median['L4']['rate']:.2f}, "
                                                 f"p50 x{m['p50'] / median['L4']['p50']:.2f}")
                print(f"{mode:<16} {path:<4} {m['rate']:>9.0f} {m['p50']:>8.2f} {m['p99']:>8.2f}   {ratio}")
            spent = statistics.median(c for m, c in cpu if m == mode)
            print(f"{mode:<16} HAProxy worker CPU per L7 request: {spent:.0f} us")
        return 0
    finally:
        if responder is not None:
            terminate(responder.pid)
        lab.down()


if __name__ == "__main__":
    sys.exit(main())
