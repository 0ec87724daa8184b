"""Request-body schemas for the OpenAPI document, self-contained.

``model_json_schema()`` puts nested models (``LoraAdapter``) under ``$defs`` and points at them
with ``#/$defs/...``; inside an OpenAPI document such a reference resolves against the document
root, where there is no ``$defs``, so a route's ``requestBody`` carries the schema with every
reference inlined instead.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from .._request import GenerateRequest

__all__ = ["body_schema", "with_files"]


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return {**_inline(defs[ref.removeprefix("#/$defs/")], defs), **rest}
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    return node


def body_schema(model: type[BaseModel] = GenerateRequest) -> dict[str, Any]:
    """``model``'s JSON schema with its ``$defs`` references inlined.

    Example:
        >>> "$defs" in body_schema()
        False
    """
    schema = model.model_json_schema()
    return dict(_inline(schema, schema.get("$defs", {})))


def _not_null(node: dict[str, Any]) -> dict[str, Any]:
    options = node.get("anyOf")
    if isinstance(options, list):
        kept = [o for o in options if o != {"type": "null"}]
        if len(kept) == 1:
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            return {**kept[0], **rest}
    return node


def with_files(schema: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """A multipart body's schema: ``names`` become file parts (``format: binary``), and no
    field is nullable (a form field is text or a file; leave a field out for "none")."""
    properties = {k: _not_null(v) for k, v in schema.get("properties", {}).items()}
    for name in names:
        if name in properties:
            described = properties[name].get("description", "")
            properties[name] = {"type": "string", "format": "binary", "description": described}
    return {**schema, "properties": properties}
