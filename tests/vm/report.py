"""pytest plugin inside the VM (``-p tests.vm.report``): every test's outcome as JSON, in $NETX_VM_REPORT.

``{"<nodeid>": {"outcome": "passed" | "failed" | "skipped", "longrepr": "...", "duration": seconds}}``, keyed
by pytest's own nodeids (JUnit XML mangles them), rewritten after every test: a guest that dies half-way
still reports what it finished. A module that cannot be collected is reported as ``collect:<nodeid>``.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

_results: dict[str, dict[str, Any]] = {}


def _save() -> None:
    path = os.environ.get("NETX_VM_REPORT")
    if path:
        with open(f"{path}.tmp", "w") as file:
            json.dump(_results, file)
        os.replace(f"{path}.tmp", path)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    entry = _results.setdefault(report.nodeid, {"outcome": "passed", "longrepr": "", "duration": 0.0})
    entry["duration"] += report.duration
    if report.failed:
        entry["outcome"] = "failed"
        entry["longrepr"] += f"[{report.when}] {report.longreprtext}\n"
        entry["longrepr"] += "".join(f"--- {name} ---\n{text}\n" for name, text in report.sections)
    elif report.skipped and entry["outcome"] != "failed":
        entry["outcome"] = "skipped"
        entry["longrepr"] = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longreprtext
    if report.when == "teardown":
        _save()


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:
        _results[f"collect:{report.nodeid}"] = {"outcome": "failed", "longrepr": report.longreprtext, "duration": 0.0}
        _save()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _save()
