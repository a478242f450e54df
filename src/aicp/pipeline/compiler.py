"""Turn a draft (from a YAML file or a traced function) into a validated `Pipeline`.

Both front ends build the same neutral `draft.PipelineDraft` and call
`compile_pipeline`, which checks everything at once and raises
`PipelineInvalid` with every problem found, each starting with
`<file>:<line>: stage '<name>':`.
"""

from __future__ import annotations

import difflib
import inspect
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from aicp.errors import PipelineInvalid
from aicp.pipeline import builtins
from aicp.pipeline.draft import NAME, DraftParam, DraftStage, PipelineDraft
from aicp.pipeline.model import Param, Pipeline, Ref, Stage, Unknown
from aicp.pipeline.types import CTX_ARG, compatible, describe_callable, import_object, render

_PIPELINE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_SCALARS = (str, int, float, bool, type(None))


def compile_pipeline(draft: PipelineDraft) -> Pipeline:
    """The validated pipeline; PipelineInvalid listing every problem otherwise."""
    problems = list(draft.problems)
    problems += _check_pipeline(draft)
    if not draft.stages:
        problems.append(f"{draft.where()}: the pipeline has no stages")
    params = _params(draft.params, problems)
    drafts: dict[str, DraftStage] = {}
    for d in draft.stages:
        if d.name in drafts:
            problems.append(f"{d.where()}: a second stage of that name")
        elif not NAME.fullmatch(d.name):
            problems.append(f"{d.where()}: a stage name is letters, digits, '_' and '-'")
        else:
            drafts[d.name] = d
    stages: dict[str, Stage] = {}
    for d in drafts.values():
        problems += _check_refs(d, drafts, params)
        stage = _build_stage(d, problems)
        if stage is not None:
            stages[d.name] = stage
    order = _order(drafts, problems)
    for stage in stages.values():
        problems += _check_types(stage, drafts[stage.name], stages, params)
    if problems:
        raise PipelineInvalid(problems)
    return Pipeline(
        name=draft.name,
        stages={name: stages[name] for name in order},
        params=params,
        concurrency=draft.concurrency,
        description=draft.description,
        source=draft.source,
        origin=dict(draft.origin),
    )


def _check_pipeline(draft: PipelineDraft) -> list[str]:
    out = []
    if not isinstance(draft.name, str) or not _PIPELINE_NAME.fullmatch(draft.name):
        out.append(f"{draft.where()}: the name is letters, digits, '_', '-' and '.'")
    if not _is_int(draft.concurrency) or draft.concurrency < 1:
        out.append(f"{draft.where('concurrency')}: concurrency must be an integer >= 1")
    return out


def _params(drafts: list[DraftParam], problems: list[str]) -> dict[str, Param]:
    params: dict[str, Param] = {}
    for p in drafts:
        if not NAME.fullmatch(p.name):
            problems.append(f"{p.where()}: a parameter name is letters, digits, '_' and '-'")
        elif p.default is not None and not compatible(type(p.default), p.annotation):
            problems.append(f"{p.where()}: the default {p.default!r} is not {render(p.annotation)}")
        params[p.name] = Param(p.name, p.annotation, p.default, p.required)
    return params


def _check_refs(
    d: DraftStage, drafts: Mapping[str, DraftStage], params: Mapping[str, Param]
) -> list[str]:
    out = []
    for arg, ref in d.inputs.items():
        where = d.where(f"inputs.{arg}")
        if ref.kind == "stage" and ref.name not in drafts:
            out.append(f"{where}: input {arg!r} names unknown stage {_unknown(ref.name, drafts)}")
        elif ref.kind == "param" and ref.name not in params:
            out.append(
                f"{where}: input {arg!r} names unknown parameter {_unknown(ref.name, params)}"
            )
    for dep in d.depends_on:
        if dep not in drafts:
            out.append(
                f"{d.where('depends_on')}: depends_on names unknown stage {_unknown(dep, drafts)}"
            )
    return out


def _unknown(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name)


def _build_stage(d: DraftStage, problems: list[str]) -> Stage | None:
    problems += _check_settings(d)
    if d.type not in builtins.TYPES:
        known = ", ".join(builtins.TYPES)
        problems.append(f"{d.where('type')}: unknown stage type {d.type!r} (known: {known})")
        return None
    stage = Stage(
        name=d.name,
        type=d.type,
        call=d.call,
        func=d.func,
        inputs=dict(d.inputs),
        depends_on=tuple(dict.fromkeys(_deps(d))),
        options=dict(d.options),
        retries=d.retries,
        backoff_s=d.backoff_s,
        timeout_s=d.timeout_s,
        resources=dict(d.resources) if isinstance(d.resources, Mapping) else {},
        source=d.source,
        line=d.line,
    )
    complete = _python_stage if d.type == "python" else _builtin_stage
    return complete(stage, d, problems)


def _check_settings(d: DraftStage) -> list[str]:
    out = []
    if not _is_int(d.retries) or d.retries < 0:
        out.append(f"{d.where('retries')}: retries must be an integer >= 0")
    if not _is_number(d.backoff_s) or d.backoff_s < 0:
        out.append(f"{d.where('backoff_s')}: backoff_s must be a number >= 0")
    if d.timeout_s is not None and (not _is_number(d.timeout_s) or d.timeout_s <= 0):
        out.append(f"{d.where('timeout_s')}: timeout_s must be a number > 0")
    if not isinstance(d.resources, Mapping):
        out.append(f"{d.where('resources')}: resources must be a mapping")
    return out


def _python_stage(stage: Stage, d: DraftStage, problems: list[str]) -> Stage | None:
    func = d.func if d.func is not None else _resolve_call(d, problems)
    if func is None:
        return None
    try:
        info = describe_callable(func)
    except (TypeError, ValueError) as exc:
        problems.append(f"{d.where('call')}: cannot read the signature of {func!r}: {exc}")
        return None
    if d.options:
        problems.append(
            f"{d.where('with')}: a python stage takes no options ({', '.join(d.options)})"
        )
    for arg in d.inputs:
        if arg == CTX_ARG:
            problems.append(f"{d.where('inputs.ctx')}: 'ctx' is reserved for the stage context")
        elif arg not in info.accepts and not info.var_keyword:
            params = ", ".join(info.accepts) or "none"
            problems.append(
                f"{d.where(f'inputs.{arg}')}: input {arg!r} is not an argument of the function"
                f" (its arguments: {params})"
            )
    missing = sorted(info.required - set(d.inputs))
    if missing:
        problems.append(
            f"{d.where('inputs')}: required argument(s) without an input: {', '.join(missing)}"
        )
    return replace(stage, func=func, accepts=info.accepts, output=info.output)


def _resolve_call(d: DraftStage, problems: list[str]) -> Callable[..., Any] | None:
    if not d.call:
        problems.append(f"{d.where()}: a python stage needs `call: module:function`")
        return None
    try:
        obj = import_object(d.call)
    except LookupError as exc:
        problems.append(f"{d.where('call')}: call {d.call!r}: {exc}")
        return None
    obj = inspect.unwrap(obj) if callable(obj) else obj  # a @stage function: the function itself
    if not callable(obj):
        problems.append(f"{d.where('call')}: call {d.call!r} is not callable")
        return None
    func: Callable[..., Any] = obj
    return func


def _builtin_stage(stage: Stage, d: DraftStage, problems: list[str]) -> Stage | None:
    try:
        kind = builtins.stage_type(d.type)
    except ImportError as exc:
        problems.append(f"{d.where('type')}: stage type {d.type!r} is not available: {exc}")
        return None
    problems += [f"{d.where('with')}: {msg}" for msg in kind.check(stage)]
    return replace(stage, output=kind.output_of(stage))


def _order(drafts: Mapping[str, DraftStage], problems: list[str]) -> list[str]:
    """Stage names in dependency order, stable w.r.t. the written order; cycles reported."""
    needs = {name: [n for n in _deps(d) if n in drafts] for name, d in drafts.items()}
    cycles = _cycles(needs)
    for cycle in cycles:
        path = " -> ".join([*cycle, cycle[0]])
        problems.append(
            f"{drafts[cycle[0]].where()}: dependency cycle {path} (each needs the next)"
        )
    if cycles:
        return list(drafts)
    placed: list[str] = []
    pending = list(drafts)
    while pending:
        ready = next(n for n in pending if all(dep in placed for dep in needs[n]))
        placed.append(ready)
        pending.remove(ready)
    return placed


def _deps(d: DraftStage) -> list[str]:
    return [r.name for r in d.inputs.values() if r.kind == "stage"] + list(d.depends_on)


def _cycles(needs: Mapping[str, list[str]]) -> list[list[str]]:
    """Each cycle once, started at its earliest-written stage."""
    order = {name: i for i, name in enumerate(needs)}
    found: dict[frozenset[str], list[str]] = {}
    done: set[str] = set()

    def visit(name: str, stack: list[str]) -> None:
        if name in stack:
            cycle = stack[stack.index(name) :]
            first = min(range(len(cycle)), key=lambda i: order[cycle[i]])
            found.setdefault(frozenset(cycle), cycle[first:] + cycle[:first])
            return
        if name in done:
            return
        stack.append(name)
        for dep in needs[name]:
            visit(dep, stack)
        stack.pop()
        done.add(name)

    for name in needs:
        visit(name, [])
    return list(found.values())


def _check_types(
    stage: Stage, d: DraftStage, stages: Mapping[str, Stage], params: Mapping[str, Param]
) -> list[str]:
    out = []
    for arg, ref in stage.inputs.items():
        expected = stage.accepts.get(arg, Unknown)
        given, what = _given(ref, stages, params)
        if what and not compatible(given, expected):
            out.append(
                f"{d.where(f'inputs.{arg}')}: input {arg!r} expects {render(expected)}"
                f" but {what} {render(given)}"
            )
    return out


def _given(ref: Ref, stages: Mapping[str, Stage], params: Mapping[str, Param]) -> tuple[Any, str]:
    """The annotation of what `ref` gives and how to name it in a message ('' to skip)."""
    if ref.kind == "stage" and ref.name in stages:
        return stages[ref.name].output, f"stage {ref.name!r} returns"
    if ref.kind == "param" and ref.name in params:
        return params[ref.name].annotation, f"parameter {ref.name!r} is"
    if ref.kind == "value" and isinstance(ref.value, _SCALARS):
        # Containers are not checked: their items are not declared.
        return type(ref.value), f"the constant {ref.value!r} is"
    return Unknown, ""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
