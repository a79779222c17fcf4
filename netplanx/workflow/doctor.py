"""``netx doctor``: what this host offers netx, each missing piece with what to do about it."""

from __future__ import annotations

import os
import shutil

from netplanx.engine.feature import DoctorCheck
from netplanx.registry import FEATURES


def checks() -> list[DoctorCheck]:
    """netx's own needs, then every feature's (a check two features share is listed once)."""
    ip = shutil.which("ip")
    found = [DoctorCheck("running as root", os.geteuid() == 0, f"uid {os.geteuid()}", "run netx with sudo", True),
             DoctorCheck("ip (namespaces, lab)", ip is not None, ip or "not installed", "apt-get install iproute2",
                         True)]
    names = {check.name for check in found}
    for feature in FEATURES:
        for check in feature.doctor():
            if check.name not in names:
                names.add(check.name)
                found.append(check)
    return found
