"""The Python front end: `@stage` functions wired together in a `@pipeline` function.

`.compile()` calls the pipeline function once with a handle per parameter;
while it runs, each stage call records a stage and returns a handle for its
output instead of running. Outside that trace a stage function is a plain
function (so it can be unit-tested as one).
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, NoReturn, ParamSpec, TypeVar, cast, overload

from aicp.pipeline.compiler import compile_pipeline
from aicp.pipeline.draft import DraftParam, DraftStage, PipelineDraft
from aicp.pipeline.model import Pipeline, Unknown
from aicp.pipeline.trace import TRACE, Handle, Trace, after, current, holds_handle
from aicp.pipeline.types import CTX_ARG, normalize, signature

__all__ = [
    "Handle",
    "PipelineFunction",
    "StageFunction",
    "after",
    "approval",
    "evaluate",
    "llm",
    "pipeline",
    "stage",
    "validate",
]

P = ParamSpec("P")
R = TypeVar("R")


def _where(func: Callable[..., Any]) -> tuple[str | None, int | None]:
    code = getattr(inspect.unwrap(func), "__code__", None)
    if code is None:
        return None, None
    return inspect.getsourcefile(func) or code.co_filename, code.co_firstlineno


class StageFunction(Generic[P, R]):
    """A function that is also a pipeline stage (see `stage`)."""

    def __init__(self, func: Callable[P, R], *, name: str | None, settings: dict[str, Any]) -> None:
        functools.update_wrapper(self, func)
        self.func = func
        self.name = name or func.__name__
        self.settings = settings

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        trace = TRACE.get()
        if trace is None:
            return self.func(*args, **kwargs)
        return cast(R, self._record(trace, trace.free_name(self.name), args, kwargs))

    def named(self, name: str) -> Callable[P, R]:
        """This stage under its own name: `chunk.named("chunk_small")(docs, size=100)`."""

        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            trace = TRACE.get()
            if trace is None:
                return self.func(*args, **kwargs)
            return cast(R, self._record(trace, name, args, kwargs))

        return call

    def _record(
        self, trace: Trace, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Handle:
        source, line = _where(self.func)
        qualname = getattr(self.func, "__qualname__", "")
        call = None if "<locals>" in qualname else f"{self.func.__module__}:{qualname}"
        d = DraftStage(name=name, call=call, func=self.func, source=source, line=line)
        d.retries = self.settings["retries"]
        d.backoff_s = self.settings["backoff_s"]
        d.timeout_s = self.settings["timeout_s"]
        d.resources = dict(self.settings["resources"] or {})
        return trace.add(d, self._bind(trace, d, args, kwargs))

    def _bind(
        self, trace: Trace, d: DraftStage, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        """Arguments by name; the compiler checks them against the signature, as for YAML."""
        # `ctx` is the runner's to give, so positional arguments start after it.
        positional = [
            p.name
            for p in inspect.signature(self.func).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != CTX_ARG
        ]
        if len(args) > len(positional):
            trace.problems.append(
                f"{d.where()}: {len(args)} positional arguments given, it takes"
                f" {len(positional)}; pass the others by name"
            )
        out = dict(zip(positional, args, strict=False))
        for arg in set(out) & set(kwargs):
            trace.problems.append(f"{d.where()}: argument {arg!r} is given twice")
        return {**out, **kwargs}


@overload
def stage(func: Callable[P, R], /) -> StageFunction[P, R]: ...


@overload
def stage(
    *,
    name: str | None = None,
    retries: int = 0,
    backoff_s: float = 1.0,
    timeout_s: float | None = None,
    resources: Mapping[str, Any] | None = None,
) -> Callable[[Callable[P, R]], StageFunction[P, R]]: ...


def stage(
    func: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    retries: int = 0,
    backoff_s: float = 1.0,
    timeout_s: float | None = None,
    resources: Mapping[str, Any] | None = None,
) -> StageFunction[P, R] | Callable[[Callable[P, R]], StageFunction[P, R]]:
    """Make a function a pipeline stage: `@stage` or `@stage(retries=2, ...)`."""
    settings = {
        "retries": retries,
        "backoff_s": backoff_s,
        "timeout_s": timeout_s,
        "resources": resources,
    }

    def wrap(f: Callable[P, R]) -> StageFunction[P, R]:
        return StageFunction(f, name=name, settings=settings)

    return wrap(func) if func is not None else wrap


class BuiltinStage:
    """A builder of one built-in stage type; its keyword options become `Stage.options`."""

    def __init__(self, type_name: str, *, timeout_is_option: bool = False) -> None:
        self.type_name = type_name
        #: An approval's `timeout_s` is how long it waits (its option), not an attempt's limit.
        self.timeout_is_option = timeout_is_option

    def __repr__(self) -> str:
        return f"<built-in stage type {self.type_name!r}>"

    def __call__(
        self,
        name: str,
        *,
        inputs: Mapping[str, Any] | None = None,
        after: Iterable[object] = (),
        retries: int = 0,
        backoff_s: float = 1.0,
        timeout_s: float | None = None,
        resources: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Any:
        trace = current(f"{self.type_name}()")
        caller = sys._getframe(1)  # the line in the @pipeline function that made this stage
        d = DraftStage(name=name, type=self.type_name, options=options, retries=retries)
        d.source, d.line = caller.f_code.co_filename, caller.f_lineno
        d.backoff_s, d.timeout_s, d.resources = backoff_s, timeout_s, dict(resources or {})
        if self.timeout_is_option and timeout_s is not None:
            d.options["timeout_s"], d.timeout_s = timeout_s, None
        d.depends_on = trace.stage_names(after, f"{d.where()}: after")
        for key in (k for k, v in options.items() if holds_handle(v)):
            trace.problems.append(
                f"{d.where()}: option {key!r} is a stage output or parameter; options are"
                " constants, pass it through inputs="
            )
        return trace.add(d, dict(inputs or {}))


llm = BuiltinStage("llm")
validate = BuiltinStage("validate")
approval = BuiltinStage("approval", timeout_is_option=True)
evaluate = BuiltinStage("evaluate")


class PipelineFunction:
    """A function that describes a pipeline (see `pipeline`); `.compile()` gives it."""

    def __init__(
        self, func: Callable[..., object], *, name: str | None, concurrency: int, description: str
    ) -> None:
        functools.update_wrapper(self, func)
        self.func = func
        self.name = name or func.__name__
        self.concurrency = concurrency
        self.description = description or inspect.getdoc(func) or ""
        self._compiled: Pipeline | None = None

    def __call__(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError(
            f"pipeline {self.name!r} is not run by calling it: .compile() gives the Pipeline,"
            " which the runner runs"
        )

    def compile(self) -> Pipeline:
        """The validated pipeline (traced once, then kept); PipelineInvalid if it is wrong."""
        if self._compiled is None:
            self._compiled = compile_pipeline(self.draft())
        return self._compiled

    def draft(self) -> PipelineDraft:
        source, line = _where(self.func)
        ref = f"{self.func.__module__}:{self.func.__qualname__}"
        draft = PipelineDraft(self.name, concurrency=self.concurrency, source=source, line=line)
        draft.description, draft.origin = self.description, {"kind": "python", "ref": ref}
        trace = Trace(self.name)
        handles: dict[str, Handle] = {}
        for p in signature(self.func).parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY):
                draft.problems.append(f"{draft.where()}: parameter {p.name!r} must be named")
                continue
            draft.params.append(_param(p, source, line))
            handles[p.name] = Handle(trace, "param", p.name)
        token = TRACE.set(trace)
        try:
            self.func(**handles)
        finally:
            TRACE.reset(token)
        draft.stages, draft.problems = trace.stages, draft.problems + trace.problems
        return draft


def _param(p: inspect.Parameter, source: str | None, line: int | None) -> DraftParam:
    required = p.default is inspect.Parameter.empty
    default = None if required else p.default
    annotation = normalize(p.annotation)
    if annotation is Unknown and default is not None:
        annotation = type(default)
    return DraftParam(p.name, annotation, default, required, source, line)


@overload
def pipeline(func: Callable[..., object], /) -> PipelineFunction: ...


@overload
def pipeline(
    *, name: str | None = None, concurrency: int = 4, description: str = ""
) -> Callable[[Callable[..., object]], PipelineFunction]: ...


def pipeline(
    func: Callable[..., object] | None = None,
    /,
    *,
    name: str | None = None,
    concurrency: int = 4,
    description: str = "",
) -> PipelineFunction | Callable[[Callable[..., object]], PipelineFunction]:
    """A pipeline described by a function that calls stages: `@pipeline` or `@pipeline(...)`."""

    def wrap(f: Callable[..., object]) -> PipelineFunction:
        return PipelineFunction(f, name=name, concurrency=concurrency, description=description)

    return wrap(func) if func is not None else wrap
