"""schema/netx.schema.json, generated from the same pydantic model that validates specs."""

from __future__ import annotations

import json
from typing import Any

from netplanx.spec.model import Spec

SCHEMA_ID = "https://github.com/netx/netx/schema/netx.schema.json"


def json_schema() -> dict[str, Any]:
    schema = Spec.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            "title": "netx spec", **schema}


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
