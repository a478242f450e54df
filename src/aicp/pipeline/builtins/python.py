"""The `python` stage type: call a function with the stage's inputs as keyword arguments.

The function is `Stage.func` (decorated pipelines) or imported from `Stage.call`
(`module:function`, YAML), so another process finds it again. A function with
a parameter named `ctx` also gets the stage context (receipts, metrics, the
gateway).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from aicp.pipeline.model import Stage, StageContext, StageFailed
from aicp.pipeline.types import CTX_ARG, import_object


def function_of(stage: Stage) -> Callable[..., Any]:
    if stage.func is not None:
        return stage.func
    if not stage.call:
        raise StageFailed(f"{stage.where()}: a python stage needs `call` (module:function)")
    try:
        func = import_object(stage.call)
    except LookupError as exc:
        raise StageFailed(f"{stage.where()}: {exc}") from None
    if not callable(func):
        raise StageFailed(f"{stage.where()}: {stage.call} is {type(func).__name__}, not callable")
    return func  # type: ignore[no-any-return]


def takes_ctx(func: Callable[..., Any]) -> bool:
    try:
        return CTX_ARG in inspect.signature(func).parameters
    except (TypeError, ValueError):  # a builtin without a signature
        return False


class PythonStage:
    def check(self, stage: Stage) -> list[str]:
        if stage.func is None and not stage.call:
            return ["a python stage needs `call` (module:function)"]
        return []

    def output_of(self, stage: Stage) -> Any:
        return stage.output

    def run(self, ctx: StageContext, inputs: Mapping[str, Any]) -> Any:
        func = function_of(ctx.stage)
        if takes_ctx(func):
            return func(ctx=ctx, **inputs)
        return func(**inputs)


PYTHON = PythonStage()
