"""Drift as Prometheus metrics for node_exporter's textfile collector."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from netplanx.engine.plan import Plan
from netplanx.files import write_atomically
from netplanx.workflow.history import Entry

CLASSES = {"create": "missing", "update": "changed", "replace": "changed", "delete": "extra"}


def drift_counts(plan: Plan) -> Counter[tuple[str, str]]:
    """(kind, class) -> count: changed by someone else, missing, extra (netx's, no longer in the spec),
    unmanaged (live, not netx's, not in the spec)."""
    counts: Counter[tuple[str, str]] = Counter((c.kind, CLASSES[c.action]) for c in plan.changes)
    counts.update((address.split(".", 1)[0], "unmanaged") for address in plan.unmanaged)
    return counts


def metrics_text(plan: Plan, duration: float, last: Entry | None, last_success: Entry | None) -> str:
    lines = ["# HELP netx_drift Whether the live state differs from the spec (1) or not (0).",
             "# TYPE netx_drift gauge", f"netx_drift {0 if plan.empty else 1}",
             "# HELP netx_drift_resources Resources that differ from the spec, by kind and class.",
             "# TYPE netx_drift_resources gauge"]
    for (kind, klass), count in sorted(drift_counts(plan).items()):
        lines.append(f'netx_drift_resources{{kind="{kind}",class="{klass}"}} {count}')
    lines += ["# HELP netx_plan_duration_seconds How long the drift check's plan took.",
              "# TYPE netx_plan_duration_seconds gauge", f"netx_plan_duration_seconds {duration:.6f}"]
    if last_success is not None:
        lines += ["# HELP netx_last_apply_success_timestamp_seconds When the last successful apply ended.",
                  "# TYPE netx_last_apply_success_timestamp_seconds gauge",
                  f"netx_last_apply_success_timestamp_seconds {last_success.time:.3f}"]
    if last is not None:
        lines += ["# HELP netx_last_apply_success Whether the last apply succeeded (1) or failed (0).",
                  "# TYPE netx_last_apply_success gauge",
                  f"netx_last_apply_success {1 if last.result in ('applied', 'no-changes') else 0}"]
    return "\n".join(lines) + "\n"


def write_textfile(path: Path, text: str) -> None:
    """Atomically, as the textfile collector wants; 0644: node_exporter reads it, and it holds counts only."""
    write_atomically(path, text, mode=0o644)


FAILURE_KINDS = ("fetch", "signature", "history", "file", "spec", "apply", "publish", "other")


def pull_metrics_text(record: Mapping[str, Any], branch: str) -> str:
    """``netx pull``'s record as metrics: the applied commit (a label of an info metric), when it was applied,
    refusals and failures by kind, when the last one happened, and whether a newer commit waits here."""
    lines = []
    if record.get("commit"):
        lines += ["# HELP netx_applied_commit_info The commit netx pull applied here last (value always 1).",
                  "# TYPE netx_applied_commit_info gauge",
                  f'netx_applied_commit_info{{commit="{record["commit"]}",branch="{branch}"}} 1',
                  "# HELP netx_applied_commit_timestamp_seconds When that commit was applied.",
                  "# TYPE netx_applied_commit_timestamp_seconds gauge",
                  f"netx_applied_commit_timestamp_seconds {record.get('applied_at', 0):.3f}"]
    counts = record.get("failures", {})
    lines += ["# HELP netx_pull_failures_total Pulls refused or failed, by kind.",
              "# TYPE netx_pull_failures_total counter"]
    lines += [f'netx_pull_failures_total{{kind="{kind}"}} {counts.get(kind, 0)}' for kind in FAILURE_KINDS]
    if record.get("last_failure"):
        lines += ["# HELP netx_pull_last_failure_timestamp_seconds When a pull was last refused or failed.",
                  "# TYPE netx_pull_last_failure_timestamp_seconds gauge",
                  f"netx_pull_last_failure_timestamp_seconds {record['last_failure']['at']:.3f}"]
    lines += ["# HELP netx_pull_waiting Whether a newer commit waits here for earlier waves or is stopped (1).",
              "# TYPE netx_pull_waiting gauge", f"netx_pull_waiting {1 if record.get('waiting') else 0}",
              "# HELP netx_pull_last_run_timestamp_seconds When netx pull last ran.",
              "# TYPE netx_pull_last_run_timestamp_seconds gauge",
              f"netx_pull_last_run_timestamp_seconds {record.get('last_run', 0):.3f}"]
    return "\n".join(lines) + "\n"


def drift_line(counts: Counter[tuple[str, str]]) -> str:
    """``drift: N changed, N missing, N extra, N unmanaged``."""
    by_class: Counter[str] = Counter()
    for (_kind, klass), count in counts.items():
        by_class[klass] += count
    return "drift: " + ", ".join(f"{by_class[k]} {k}" for k in ("changed", "missing", "extra", "unmanaged"))
