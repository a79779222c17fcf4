"""schema/netx.schema.json, generated from the same pydantic model that validates specs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from netplanx.spec.model import Spec

SCHEMA_ID = "urn:netx:spec:v1"


def json_schema() -> dict[str, Any]:
    schema = Spec.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            "title": "netx spec", **schema}


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def schema_location() -> str:
    """Where editors find the schema: the checked-in file next to this checkout, else its published id."""
    checked_in = Path(__file__).resolve().parents[2] / "schema" / "netx.schema.json"
    return str(checked_in) if checked_in.exists() else SCHEMA_ID
