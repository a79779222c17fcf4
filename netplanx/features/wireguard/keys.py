"""WireGuard keys: X25519 (RFC 7748) in pure Python, key files that only root may read, fingerprints.

A private key never leaves this module except into the driver that configures the device: plans, JSON,
logs and errors show public keys only, and those as a short fingerprint.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from pathlib import Path

from netplanx.errors import NetxError
from netplanx.files import write_atomically
from netplanx.system.secretfile import read_secret

P = 2**255 - 19
A24 = 121665


def clamped(scalar: bytes) -> bytes:
    """A private key as X25519 uses it (RFC 7748): what ``wg genkey`` writes, and what a device reports."""
    value = bytearray(scalar)
    value[0] &= 248
    value[31] &= 127
    value[31] |= 64
    return bytes(value)


def x25519(scalar: bytes, point: bytes) -> bytes:
    """The X25519 function of RFC 7748 (Montgomery ladder)."""
    k = int.from_bytes(clamped(scalar), "little")
    u = int.from_bytes(point, "little") & ((1 << 255) - 1)
    x1, x2, z2, x3, z3, swap = u, 1, 0, u, 1, 0
    for t in reversed(range(255)):
        bit = (k >> t) & 1
        swap ^= bit
        if swap:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = bit
        a, b = (x2 + z2) % P, (x2 - z2) % P
        aa, bb = a * a % P, b * b % P
        e = (aa - bb) % P
        c, d = (x3 + z3) % P, (x3 - z3) % P
        da, cb = d * a % P, c * b % P
        x3, z3 = (da + cb) ** 2 % P, x1 * (da - cb) ** 2 % P
        x2, z2 = aa * bb % P, e * (aa + A24 * e) % P
    if swap:
        x2, z2 = x3, z3
    return (x2 * pow(z2, P - 2, P) % P).to_bytes(32, "little")


def public_key(private: bytes) -> bytes:
    return x25519(private, (9).to_bytes(32, "little"))


def encode(key: bytes) -> str:
    return base64.b64encode(key).decode()


def decode(text: str) -> bytes:
    """A key in WireGuard's base64 form; ValueError when it is not 32 bytes."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except ValueError as exc:
        raise ValueError("not base64") from exc
    if len(key) != 32:
        raise ValueError(f"{len(key)} bytes, not 32")
    return key


def fingerprint(public: str) -> str:
    """How netx shows a public key: ``wg:`` and 12 characters of a digest of it."""
    return "wg:" + hashlib.sha256(public.encode()).hexdigest()[:12]


def generate(path: Path, force: bool = False) -> str:
    """Write a new private key to ``path`` (mode 0600, never over a file unless ``force``); its public key.
    The key is clamped as ``wg genkey`` writes it, so the file holds exactly the key the device reports."""
    private = clamped(secrets.token_bytes(32))
    try:
        write_atomically(path, encode(private) + "\n", replace=force)
    except FileExistsError:
        raise NetxError(f"{path} exists; not overwriting a key (use --force to replace it)") from None
    return encode(public_key(private))


def read_private(path: str) -> bytes:
    """Read a private key file, refusing symlinks, non-regular files and files group or others may read."""
    text = read_secret(path, "private key file")
    try:
        return decode(text)
    except ValueError as exc:
        raise NetxError(f"private key file {path} does not hold a WireGuard key ({exc}; allowed: the output "
                        "of netx keygen or wg genkey)") from None
