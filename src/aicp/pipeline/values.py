"""Values between stages: JSON when checkpointed, typed again when a stage takes them.

A stage's return value is dumped by the annotation it declared (`Stage.output`),
or by its runtime type when it declared none, and loaded into the annotation the
consuming stage asks for (`Stage.accepts[arg]`). So a pydantic model one stage
returns reaches the next as that model, whether it comes from this process or
from a checkpoint read after a restart.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import TypeAdapter

from aicp.pipeline.model import Unknown


class NotSerializable(TypeError):
    """A stage returned something that cannot be checkpointed as JSON."""


def encode(annotation: Any, value: Any) -> Any:
    """`value` as JSON-compatible data, by `annotation` (Unknown: by what it is)."""
    try:
        return _adapter(annotation).dump_python(value, mode="json")
    except Exception as exc:
        raise NotSerializable(
            f"the value ({type(value).__name__}) cannot be checkpointed as JSON: {exc}"
        ) from None


def decode(annotation: Any, data: Any) -> Any:
    """Checkpointed `data` as `annotation` asks (Unknown: as it is)."""
    if annotation is Unknown or annotation is Any:
        return data
    return _adapter(annotation).validate_python(data)


def _adapter(annotation: Any) -> TypeAdapter[Any]:
    if annotation is Unknown:
        annotation = Any
    try:
        return _cached_adapter(annotation)
    except TypeError:  # an unhashable annotation (Annotated with a dict, say)
        return TypeAdapter(annotation)


@lru_cache(maxsize=512)
def _cached_adapter(annotation: Any) -> TypeAdapter[Any]:
    return TypeAdapter(annotation)
