"""Recording stages while a @pipeline function runs: the trace and its handles.

While `.compile()` calls a pipeline function, a `Trace` is current: stage calls
add to it and get back a `Handle` (a stage's output or a parameter, by name)
instead of a value.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from aicp.pipeline.draft import DraftStage
from aicp.pipeline.model import Ref, RefKind


class Trace:
    """The stages recorded while one pipeline function runs."""

    def __init__(self, pipeline: str) -> None:
        self.pipeline = pipeline
        self.stages: list[DraftStage] = []
        self.problems: list[str] = []
        #: Stage names each enclosing `with after(...)` adds to new stages' depends_on.
        self.after: list[list[str]] = []

    def free_name(self, base: str) -> str:
        taken = {d.name for d in self.stages}
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}_{n}"
        return name

    def ref(self, value: Any, d: DraftStage, arg: str) -> Ref:
        if isinstance(value, Handle):
            if value._trace is self:
                return Ref(value.kind, value.name)
            self.problems.append(
                f"{d.where()}: input {arg!r} is {value!r}, a handle of another pipeline"
            )
        elif holds_handle(value):
            self.problems.append(
                f"{d.where()}: input {arg!r} holds a stage output or parameter inside a"
                " container; pass each one as its own input (or combine them in a stage)"
            )
        # After a problem the value stays as given: the compiler checks no non-scalar constant.
        return Ref("value", value=value)

    def stage_names(self, handles: Iterable[object], what: str) -> list[str]:
        names = []
        for h in handles:
            if isinstance(h, Handle) and h.kind == "stage" and h._trace is self:
                names.append(h.name)
            else:
                self.problems.append(f"{what}: {h!r} is not a stage of pipeline {self.pipeline!r}")
        return names

    def add(self, d: DraftStage, args: Mapping[str, Any]) -> Handle:
        d.inputs = {arg: self.ref(value, d, arg) for arg, value in args.items()}
        d.depends_on = [*d.depends_on, *(n for names in self.after for n in names)]
        self.stages.append(d)
        return Handle(self, "stage", d.name)


# The only way stage calls inside a @pipeline body find their trace: set by
# `.compile()` around that one call and reset after, per thread and task.
TRACE: ContextVar[Trace | None] = ContextVar("aicp_pipeline_trace", default=None)


def holds_handle(value: Any) -> bool:
    if isinstance(value, Handle):
        return True
    if isinstance(value, Mapping):
        return any(holds_handle(k) or holds_handle(v) for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return any(holds_handle(v) for v in value)
    return False


class Handle:
    """A stage's output or a pipeline parameter while a pipeline is traced: not a value."""

    __slots__ = ("_trace", "kind", "name")

    def __init__(self, trace: Trace, kind: RefKind, name: str) -> None:
        self._trace, self.kind, self.name = trace, kind, name

    def __repr__(self) -> str:
        return f"<{self.kind} {self.name!r} of pipeline {self._trace.pipeline!r}>"

    def __bool__(self) -> bool:
        raise TypeError(
            f"{self!r} has no value while the pipeline is traced; decide inside a stage"
        )

    def __iter__(self) -> Iterator[Any]:
        raise TypeError(f"{self!r} has no value while the pipeline is traced; loop inside a stage")

    def __getattr__(self, attr: str) -> Any:
        hint = "" if attr.startswith("__") else "; read it inside a stage"
        raise AttributeError(f"{self!r} has no attribute {attr!r} while traced{hint}")


def current(what: str) -> Trace:
    trace = TRACE.get()
    if trace is None:
        raise RuntimeError(f"{what} records a stage: call it inside a @pipeline function")
    return trace


@contextmanager
def after(*handles: object) -> Iterator[None]:
    """Stages recorded inside `with after(a, b):` also wait for stages a and b."""
    trace = current("after()")
    trace.after.append(trace.stage_names(handles, f"pipeline {trace.pipeline!r}: after"))
    try:
        yield
    finally:
        trace.after.pop()
