"""What every command shares: exit codes, JSON output and the namespace session."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from netplanx.workflow.session import Session

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2
EXIT_PENDING = -1  # internal: applied, waiting for a confirmation


def open_session(args: argparse.Namespace) -> Session:
    """Enter ``--netns`` (for good: this process works there from now on) and open its session."""
    from netplanx.system import netns
    from netplanx.workflow.session import Session

    if args.netns:
        netns.enter(args.netns)
    return Session(args.netns, args.state_dir)


def print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=1) + "\n")
