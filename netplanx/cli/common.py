"""What every command shares: exit codes, the output streams, root and the namespace session."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, TextIO

from netplanx.errors import NetxError
from netplanx.render.human import painter

if TYPE_CHECKING:
    from netplanx.workflow import Session

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2
EXIT_PENDING = -1  # internal: applied, waiting for a confirmation


class Output:
    """A stream plus colour that is only used on a terminal."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.paint = painter(stream)

    def print(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()


def require_root() -> None:
    if os.geteuid() != 0:
        raise NetxError("netx needs root (CAP_NET_ADMIN) to read and change network state; run it with sudo")


def open_session(args: argparse.Namespace) -> Session:
    from netplanx.providers.kernel import netns
    from netplanx.workflow import Session

    if args.netns:
        netns.enter(args.netns)
    return Session(args.netns, args.state_dir)


def print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=1) + "\n")
