"""JSON Schema -> the OpenAPI 3.0 subset Gemini accepts (function parameters, responseSchema)."""

from __future__ import annotations

from typing import Any

from aicp.protocol.jsonutil import Json

#: The OpenAPI 3.0 subset Gemini's `Schema` accepts; anything else is a 400.
_SCHEMA_WORDS = """
    type format title description nullable enum maxItems minItems properties required
    minProperties maxProperties minLength maxLength pattern example anyOf
    propertyOrdering default items minimum maximum
"""
_SCHEMA_KEYS = frozenset(_SCHEMA_WORDS.split())


def clean_schema(schema: Any, defs: Json | None = None, depth: int = 0) -> Any:
    """A JSON Schema cut down to the subset Gemini accepts; local $refs inlined."""
    if not isinstance(schema, dict):
        return schema
    if defs is None:
        defs = {**(schema.get("definitions") or {}), **(schema.get("$defs") or {})}
    ref = schema.get("$ref")
    if isinstance(ref, str) and depth < 16:
        target = defs.get(ref.rsplit("/", 1)[-1])
        if isinstance(target, dict):
            return clean_schema(
                {**target, **{k: v for k, v in schema.items() if k != "$ref"}}, defs, depth + 1
            )
    out: Json = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, list):
            # ["string", "null"] is how JSON Schema says nullable.
            kinds = [v for v in value if v != "null"]
            out["type"] = kinds[0] if kinds else "string"
            if "null" in value:
                out["nullable"] = True
        elif key == "properties" and isinstance(value, dict):
            out[key] = {k: clean_schema(v, defs, depth + 1) for k, v in value.items()}
        elif key == "items":
            out[key] = clean_schema(value, defs, depth + 1)
        elif key in ("anyOf", "oneOf") and isinstance(value, list):
            out["anyOf"] = [clean_schema(v, defs, depth + 1) for v in value]
        elif key == "const":
            out["enum"] = [value]
        elif key in _SCHEMA_KEYS:
            out[key] = value
    return out
