"""The ``sysctl`` section: network sysctls of the namespace, by key."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import Field
from pydantic.functional_validators import AfterValidator, BeforeValidator

SYSCTL_PATTERN = r"^net(\.[A-Za-z0-9_\-]+)+$"
SYSCTL_KEY = re.compile(SYSCTL_PATTERN)


def _sysctl_key(key: str) -> str:
    if not SYSCTL_KEY.fullmatch(key) or ".." in key:
        raise ValueError(f"sysctl '{key}' is not a network sysctl (allowed: net.* keys such as net.ipv4.ip_forward)")
    return key


def _sysctl_value(value: Any) -> int | str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"sysctl value {value!r} is not an integer or text (allowed: such as 1 or \"4096 87380\")")
    if isinstance(value, str) and ("\n" in value or len(value) > 256):
        raise ValueError("sysctl value is not a single short line (allowed: one line, at most 256 characters)")
    return value


SysctlKey = Annotated[str, AfterValidator(_sysctl_key)]
SysctlValue = Annotated[int | str, BeforeValidator(_sysctl_value), Field(description="Value written to /proc/sys.")]
Sysctls = dict[SysctlKey, SysctlValue]


def sysctl_field(description: str) -> Any:
    """The field of a sysctl mapping (its keys are checked by the schema too)."""
    return Field(default_factory=dict, description=description,
                 json_schema_extra={"propertyNames": {"pattern": SYSCTL_PATTERN}})
