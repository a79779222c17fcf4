"""Draw the cost curves of the benchmarks' JSON figures as PNG files (docs/benchmarks/).

Usage: python benchmarks/plot.py FILE.json [FILE.json ...] [--out docs/benchmarks]

Each file is what ``--json`` of routes.py, bgp.py, interfaces.py or policy.py wrote. A plot shows, against the
size (log-log axes), netx's apply and no-op plan (best of the runs, start-up included, as a user waits for
them) and the baseline that does the same work without netx (ip -batch, ip -j route show, a bare
AddPathStream...), with a dashed line of slope 1 through netx's smallest apply: a curve that stays parallel
to it grows linearly. The ratio of netx to its baseline, net of start-up, is drawn against the right axis.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

# benchmark -> (title, size label, [(key, label, style)], [(netx key, baseline key, ratio label)])
CURVES = {
    "routes": ("Routes: apply and no-op plan", "routes",
               [("apply_cold", "netx apply, spec never seen", "o-"), ("apply", "netx apply after a plan", "s-"),
                ("noop_plan", "netx no-op plan", "^-"), ("ip_batch", "ip -batch (kernel baseline)", "o--"),
                ("ip_show", "ip -j route show (kernel baseline)", "^--")],
               [("apply", "ip_batch", "apply / ip -batch"), ("noop_plan", "ip_show", "no-op plan / ip -j route show")]),
    "bgp": ("BGP: advertised prefixes", "prefixes",
            [("apply", "netx apply after a plan", "s-"), ("noop_plan", "netx no-op plan", "^-"),
             ("stream", "bare AddPathStream from Python (baseline)", "o--"),
             ("cli_list", "gobgp global rib -j (baseline)", "^--")],
            [("apply", "stream", "apply / AddPathStream"), ("noop_plan", "cli_list", "no-op plan / gobgp rib -j")]),
    "interfaces": ("Interfaces: N bridges, each with a veth pair", "bridges",
                   [("apply_cold", "netx apply, spec never seen", "o-"), ("apply", "netx apply after a plan", "s-"),
                    ("noop_plan", "netx no-op plan", "^-"), ("ip_batch", "ip -batch (kernel baseline)", "o--")],
                   [("apply", "ip_batch", "apply / ip -batch")]),
    "policy": ("Policies: map entries over 500 endpoints (in-process engine)", "policy map entries",
               [("apply", "apply", "s-"), ("plan (no changes)", "no-op plan", "^-"),
                ("plan (nothing applied yet)", "first plan", "o-")], []),
}


def best(values: list[float]) -> float:
    return min(values)


def draw(document: dict, out: Path) -> Path:
    name = document["benchmark"]
    title, unit, lines, ratios = CURVES[name]
    results = {int(size): runs for size, runs in document["results"].items()}
    sizes = sorted(results)
    figure, axis = plt.subplots(figsize=(8, 5.2))
    for key, label, style in lines:
        if all(key in results[s] for s in sizes):
            axis.plot(sizes, [best(results[s][key]) for s in sizes], style, label=label)
    anchor = next((k for k, _, _ in lines if all(k in results[s] for s in sizes)), None)
    if anchor and len(sizes) > 1:
        first = best(results[sizes[0]][anchor])
        axis.plot(sizes, [first * s / sizes[0] for s in sizes], ":", color="grey", label="linear growth")
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel(unit)
    axis.set_ylabel("seconds (best of the runs)")
    if "nmstate" in document:
        published = sorted((int(k), v) for k, v in document["nmstate"].items())
        axis.plot([k for k, _ in published], [v for _, v in published], "x-.", color="black",
                  label="nmstate, N bridges over N VLANs (published)")
    if ratios:
        right = axis.twinx()
        for netx_key, base_key, label in ratios:
            values = []
            for s in sizes:
                start = best(results[s]["startup"]) if "startup" in results[s] else 0.0
                values.append((best(results[s][netx_key]) - start) / best(results[s][base_key]))
            right.plot(sizes, values, "d-", alpha=0.45, label=f"ratio: {label} (right axis, net of start-up)")
        right.set_ylabel("ratio to the baseline")
        right.set_ylim(bottom=0)
        handles, labels = axis.get_legend_handles_labels()
        more, more_labels = right.get_legend_handles_labels()
        axis.legend(handles + more, labels + more_labels, fontsize=7, loc="upper left")
    else:
        axis.legend(fontsize=7, loc="upper left")
    load = document.get("load", [0, 0, 0])
    axis.set_title(f"{title}\n{document['date']}, {document.get('cpus', '?')} CPUs, load average {load[0]:.1f}",
                   fontsize=10)
    axis.grid(True, which="both", alpha=0.25)
    figure.tight_layout()
    path = out / f"{name}.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "benchmarks")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for file in args.files:
        print(draw(json.loads(file.read_text()), args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
