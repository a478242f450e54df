"""The built-in stage types, found by name through a registry of import paths.

Each type is an object with:

- `check(stage) -> list[str]`: what is wrong with the stage's options (empty if
  nothing); the compiler reports these with the stage's file and line;
- `output_of(stage) -> annotation`: the type of what it returns, for the
  compiler's type check (`model.Unknown` when undeclared);
- `run(ctx, inputs) -> value`: the work, in a worker thread; raises
  `model.StageFailed` / `model.GateFailed` to stop the run, anything else to
  fail the attempt (retried when the stage allows).

`approval` is checked here but run by the runner, which waits durably for the
decision; its `decide(stage, decision)` turns a decision (or None on timeout)
into the stage's output.
"""

from __future__ import annotations

import importlib
from typing import Any

#: type name -> "module:attribute"; a type's module is imported only when used.
TYPES: dict[str, str] = {
    "python": "aicp.pipeline.builtins.python:PYTHON",
    "llm": "aicp.pipeline.builtins.llm:LLM",
    "validate": "aicp.pipeline.builtins.validate:VALIDATE",
    "approval": "aicp.pipeline.builtins.approval:APPROVAL",
    "evaluate": "aicp.pipeline.builtins.evaluate:EVALUATE",
}


def stage_type(name: str) -> Any:
    """The stage type called `name`; KeyError for an unknown one."""
    module, _, attr = TYPES[name].partition(":")
    return getattr(importlib.import_module(module), attr)
