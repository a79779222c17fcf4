"""Pydantic's validation errors as positioned messages: ``FILE:LINE:COL: what is wrong (allowed: ...)``.

Generic over the model: the location pydantic reports (with union tags and validator names) is mapped
onto a path in the data, whose position the loader recorded; the message says what the model allows.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from netplanx.document.loader import LoadedDocument

Positioned = tuple[int, int, str]  # line, column, text


def schema_problems(exc: ValidationError, document: LoadedDocument, root: type[BaseModel]) -> list[Positioned]:
    """Every error pydantic found validating ``document`` against ``root``, as (line, col, text)."""
    found: set[Positioned] = set()
    for error in exc.errors(include_url=False):
        path, owner, model = _data_path(document.data, error["loc"], root)
        at_key = error["type"] == "extra_forbidden" or "[key]" in error["loc"]
        line, col = document.positions.of(path, key=at_key)
        found.add((line, col, _describe(error, path, owner, model)))
    return sorted(found)


def error_paths(exc: ValidationError, data: Any, root: type[BaseModel]) -> list[tuple[Any, ...]]:
    """The data path of each error pydantic found in ``data``."""
    return [_data_path(data, error["loc"], root)[0] for error in exc.errors(include_url=False)]


def _data_path(data: Any, loc: tuple[Any, ...], root: type[BaseModel]) -> tuple[tuple[Any, ...], type[BaseModel] | None,
                                                                                 Any]:
    """Map a pydantic location (with union tags and validator names) onto a path in the data.

    Also returns the model owning the last key on the path (for "allowed keys" hints) and the
    annotation of the value at the path (for "must be a mapping" hints).
    """
    path: list[Any] = []
    node = data
    model: Any = root
    owner: Any = root
    for part in loc:
        if isinstance(node, dict) and part in node:
            owner = _single_model(model)
            model = _field_model(owner, part)
            path.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            path.append(part)
            node = node[part]
            model = _item_model(model, node)
        elif isinstance(node, dict) and isinstance(part, str) and part not in node and part == loc[-1]:
            owner = _single_model(model)
            path.append(part)  # a missing key: position of its parent mapping
    return tuple(path), owner, model


def _single_model(annotation: Any) -> type[BaseModel] | None:
    models = [m for m in _unwrap(annotation) if isinstance(m, type) and issubclass(m, BaseModel)]
    return models[0] if len(models) == 1 else None


def _unwrap(annotation: Any) -> list[Any]:
    """Concrete classes an annotation may hold (through Optional, Annotated, Union, list, dict)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [c for arg in typing.get_args(annotation) for c in _unwrap(arg)]
    return [annotation]


def _field_model(model: type[BaseModel] | None, key: str) -> Any:
    if model is None:
        return None
    for name, field in model.model_fields.items():
        if key in (name, field.alias):
            return field.annotation
    return None


def _item_model(container: Any, item: Any) -> Any:
    for candidate in _unwrap(container):
        if typing.get_origin(candidate) is list:
            members = _unwrap(typing.get_args(candidate)[0])
            models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
            if len(models) == 1:
                return models[0]
            kind = item.get("type") if isinstance(item, dict) else None
            for member in models:
                literal = member.model_fields.get("type")
                if literal is not None and kind in typing.get_args(literal.annotation):
                    return member
            return None
    return None


def allowed_keys(model: type[BaseModel]) -> list[str]:
    """The keys a mapping of ``model`` may have, as the file writes them (the version key aside)."""
    return [field.alias or name for name, field in model.model_fields.items() if name != "api_version"]


def _describe(error: dict[str, Any], path: tuple[Any, ...], owner: type[BaseModel] | None, value_model: Any) -> str:
    kind = error["type"]
    ctx = error.get("ctx", {})
    value = error.get("input")
    key = _label(path)
    if kind == "extra_forbidden":
        allowed = ", ".join(allowed_keys(owner)) if owner else "see the schema"
        return f"unknown key '{key}' (allowed: {allowed})"
    if kind == "missing":
        required = [f.alias or n for n, f in owner.model_fields.items() if f.is_required()] if owner else []
        return f"missing required key '{error['loc'][-1]}' (allowed: this object needs {', '.join(required)})"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        container = _field_model(owner, path[-2]) if len(path) > 1 and isinstance(path[-1], int) else value_model
        expected = ctx.get("expected_tags") or ", ".join(f"'{t}'" for t in _tags(container))
        if kind == "union_tag_not_found":
            return f"missing key 'type' (allowed: {expected})"
        return f"unknown type '{ctx.get('tag')}' (allowed: {expected})"
    if kind == "literal_error":
        return f"'{value}' is not allowed for {key} (allowed: {ctx.get('expected')})"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind in ("greater_than_equal", "greater_than"):
        return f"{key} {value} is too small (allowed: {'at least' if kind.endswith('equal') else 'more than'} " \
               f"{ctx.get('ge', ctx.get('gt'))})"
    if kind in ("less_than_equal", "less_than"):
        return f"{key} {value} is too large (allowed: {'at most' if kind.endswith('equal') else 'less than'} " \
               f"{ctx.get('le', ctx.get('lt'))})"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"{key} must be an integer, got {value!r} (allowed: a whole number)"
    if kind in ("bool_parsing", "bool_type"):
        return f"{key} must be true or false, got {value!r} (allowed: true, false)"
    if kind in ("string_type",):
        return f"{key} must be text, got {type(value).__name__} {value!r} (allowed: a string)"
    if kind in ("list_type",):
        return f"{key} must be a list, got {type(value).__name__} (allowed: a YAML sequence)"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        target = _single_model(value_model)
        allowed = f"a mapping with {', '.join(allowed_keys(target))}" if target else "a mapping"
        return f"{key} must be a mapping, got {type(value).__name__} (allowed: {allowed})"
    return f"{key}: {error['msg']} (got {value!r})"


def _tags(annotation: Any) -> list[str]:
    """The ``type`` values of the models a discriminated union holds (for "missing key 'type'")."""
    members = [m for c in _unwrap(annotation) if typing.get_origin(c) is list
               for m in _unwrap(typing.get_args(c)[0])] or _unwrap(annotation)
    return [tag for m in members if isinstance(m, type) and issubclass(m, BaseModel) and "type" in m.model_fields
            for tag in typing.get_args(m.model_fields["type"].annotation)]


def _label(path: tuple[Any, ...]) -> str:
    """How a message names the value at ``path``: its key, or ``routes[0]`` for a list item."""
    if not path:
        return "spec"
    if isinstance(path[-1], int):
        return f"{path[-2]}[{path[-1]}]" if len(path) > 1 else f"[{path[-1]}]"
    return str(path[-1])
