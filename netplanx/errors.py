"""Exceptions shared by every layer; the CLI maps them to exit codes and messages."""

from __future__ import annotations


class NetxError(Exception):
    """Base class of every error netx reports to the user without a traceback."""


class SpecError(NetxError):
    """One or more positioned problems in a spec file."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


class ConfigError(SpecError):
    """Positioned problems in one of netx's own files (the agent config of ``netx pull``)."""


class PlanError(NetxError):
    """The desired state cannot be planned on this host (missing kernel feature, missing device...)."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


class StalePlanError(NetxError):
    """A saved plan no longer matches the live state it was computed from."""


class LockTimeout(NetxError):
    """Another netx holds the lock for this namespace longer than we may wait."""


class ProviderError(NetxError):
    """A provider could not carry out one operation."""


class ApplyError(NetxError):
    """Apply failed; the message says which step failed and whether the host is back where it was."""

    def __init__(self, message: str, restored: bool):
        super().__init__(message)
        self.restored = restored


class NotConfirmed(ApplyError):
    """An apply with --confirm-timeout was not confirmed in time; the watchdog restored (and recorded) it."""
