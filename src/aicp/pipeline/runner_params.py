"""A run's parameters: checked against the pipeline's `Param`s when it is submitted.

Values are coerced to each parameter's annotation (pydantic, lax: "3" for an
int is 3), stored as JSON, and typed again when a run (or its resumption)
hands them to stages.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from aicp.errors import InvalidRequest
from aicp.pipeline import values
from aicp.pipeline.model import Pipeline


def check_params(pipeline: Pipeline, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The run's parameters as JSON: defaults filled, values coerced; InvalidRequest if wrong."""
    given = dict(given or {})
    problems: list[str] = []
    unknown = sorted(set(given) - set(pipeline.params))
    if unknown:
        known = ", ".join(sorted(pipeline.params)) or "none"
        names = ", ".join(repr(n) for n in unknown)
        problems.append(
            f"unknown parameter{'s' if len(unknown) > 1 else ''} {names} (known: {known})"
        )
    out: dict[str, Any] = {}
    for name, param in pipeline.params.items():
        if name not in given:
            if param.required:
                problems.append(f"parameter {name!r} is required")
            elif param.default is None:
                out[name] = None
            else:
                out[name] = values.encode(param.annotation, param.default)
            continue
        try:
            typed = values.decode(param.annotation, given[name])
            out[name] = values.encode(param.annotation, typed)
        except (ValidationError, values.NotSerializable) as exc:
            problems.append(f"parameter {name!r}: {_first_error(exc)}")
    if problems:
        first = unknown[0] if unknown else None
        raise InvalidRequest(
            f"pipeline {pipeline.name!r}: " + "; ".join(problems),
            param=first,
            code="invalid_params",
        )
    return out


def typed_params(pipeline: Pipeline, stored: Mapping[str, Any]) -> dict[str, Any]:
    """Stored (JSON) parameters as their annotations say, for the stages."""
    out = dict(stored)
    for name, param in pipeline.params.items():
        if name in out and out[name] is not None:
            out[name] = values.decode(param.annotation, out[name])
    return out


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        errors = exc.errors(include_url=False)
        if errors:
            err = errors[0]
            where = ".".join(str(p) for p in err.get("loc", ()))
            return f"{err['msg']}" + (f" (at {where})" if where else "")
    return str(exc)
