"""Pipelines: durable ML/LLM pipelines, tracked in MLflow, promoting what the gateway serves.

Write one with decorators (`@stage`, `@pipeline`, and the built-in `llm`,
`validate`, `approval`, `evaluate`) or in YAML; docs/pipelines.md has both.
The names are imported on first use, so `aicp.pipeline.settings` (read by the
configuration) costs nothing more.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aicp.pipeline.dsl import after, approval, evaluate, llm, pipeline, stage, validate
    from aicp.pipeline.load import from_origin, load_pipeline

_NAMES = {
    "after": "aicp.pipeline.dsl",
    "approval": "aicp.pipeline.dsl",
    "evaluate": "aicp.pipeline.dsl",
    "llm": "aicp.pipeline.dsl",
    "pipeline": "aicp.pipeline.dsl",
    "stage": "aicp.pipeline.dsl",
    "validate": "aicp.pipeline.dsl",
    "from_origin": "aicp.pipeline.load",
    "load_pipeline": "aicp.pipeline.load",
}

__all__ = [
    "after",
    "approval",
    "evaluate",
    "from_origin",
    "llm",
    "load_pipeline",
    "pipeline",
    "stage",
    "validate",
]


def __getattr__(name: str) -> Any:
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'aicp.pipeline' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
