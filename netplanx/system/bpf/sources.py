"""Where netx's eBPF C sources are (a module of its own: the spec cache stats them without importing the loader)."""

from __future__ import annotations

import os
from pathlib import Path

BPF_DIR_VARIABLE = "NETX_BPF_DIR"  # another folder of C sources (tests of program upgrades)
BPF_DIR = Path(os.environ.get(BPF_DIR_VARIABLE) or Path(__file__).resolve().parents[3] / "bpf")
