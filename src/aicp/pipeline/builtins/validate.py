"""The `validate` stage type: a gate the data must pass before the run goes on.

Options (one of the two at least):

- `model`: `module:Class` of a pydantic model the value must validate as (each
  item, when the value is a list; a string is parsed as JSON);
- `checks`: a list of declared checks (pipeline/checks.py), e.g.
  `{check: min_length, path: answers.*.text, value: 3, message: "too short"}`.

The value is the input `value`, or the stage's only input. Every check runs;
when any fails the stage raises `GateFailed` whose report lists what passed
and, for each failure, the check, the concrete path, a message and what was
found there (cut short). On success the stage returns the value unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import to_jsonable_python

from aicp.pipeline.builtins.options import (
    LIST,
    STR,
    Opt,
    brief,
    entry_problems,
    import_object,
    problems,
)
from aicp.pipeline.checks import COMMON, MISSING, lookup, resolve
from aicp.pipeline.model import GateFailed, Stage, StageContext, StageFailed, Unknown

OPTIONS: Mapping[str, Opt] = {"model": Opt(STR), "checks": Opt(LIST)}
#: Failures kept in a report; the rest are only counted.
MAX_FAILURES = 50
#: Errors reported per item that fails the model.
MAX_MODEL_ERRORS = 5


def model_class(path: str) -> type[BaseModel]:
    cls = import_object(path)
    if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
        raise ValueError(f"{path!r} is not a pydantic model class")
    return cls


def check_problems(spec: Any) -> list[str]:
    """What is wrong with one declared check."""
    if not isinstance(spec, Mapping):
        return ["must be a mapping such as {check: not_empty}"]
    name = spec.get("check")
    if not isinstance(name, str):
        return ["'check' is required (a check's name or module:function)"]
    try:
        check = lookup(name)
    except ValueError as exc:
        return [str(exc)]
    return entry_problems(spec, COMMON, check.options, check.vet)


def subject(inputs: Mapping[str, Any]) -> Any:
    """The value a gate checks: the input `value`, or the only input."""
    if "value" in inputs:
        return inputs["value"]
    if len(inputs) == 1:
        return next(iter(inputs.values()))
    raise StageFailed(
        f"a validate stage checks its input 'value' (or its only input); it got "
        f"{', '.join(sorted(inputs)) or 'none'}"
    )


def _model_failures(cls: type[BaseModel], value: Any) -> list[dict[str, Any]]:
    items: list[tuple[str, Any]] = (
        [(str(i), v) for i, v in enumerate(value)] if isinstance(value, list) else [("", value)]
    )
    out: list[dict[str, Any]] = []
    for prefix, item in items:
        try:
            if isinstance(item, str | bytes):
                cls.model_validate_json(item)
            else:
                cls.model_validate(item)
        except ValidationError as exc:
            for err in exc.errors()[:MAX_MODEL_ERRORS]:
                path = ".".join(p for p in (prefix, *(str(x) for x in err["loc"])) if p)
                out.append(
                    {
                        "check": "model",
                        "path": path,
                        "message": f"{path or 'the value'}: {err['msg']} ({cls.__name__})",
                        "got": brief(err.get("input")),
                    }
                )
    return out


def _check_failures(spec: Mapping[str, Any], data: Any) -> list[dict[str, Any]]:
    check = lookup(spec["check"])
    opts = {k: v for k, v in spec.items() if k not in COMMON}
    out: list[dict[str, Any]] = []
    for where, got in resolve(data, spec.get("path", "")):
        why = "is missing" if got is MISSING else check.test(got, opts)
        if why is None:
            continue
        default = f"{where or 'the value'} {why}"
        failure = {"check": spec["check"], "path": where, "message": default, "got": brief(got)}
        if spec.get("message"):
            failure.update(message=spec["message"], detail=default)
        out.append(failure)
    return out


def gate_report(options: Mapping[str, Any], value: Any) -> dict[str, Any]:
    """Run every check of a gate on `value`: {passed, failed, checks, failed_checks}."""
    #: (the check as `passed` lists it, its failures) for each check, in order.
    results: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    if "model" in options:
        found = _model_failures(model_class(options["model"]), value)
        results.append(({"check": "model", "path": ""}, found))
    data = to_jsonable_python(value, fallback=str)  # paths reach into models too
    for spec in options.get("checks") or []:
        named = {"check": spec["check"], "path": spec.get("path", "")}
        results.append((named, _check_failures(spec, data)))
    failed = [f for _, found in results for f in found]
    report: dict[str, Any] = {
        "passed": [named for named, found in results if not found],
        "failed": failed[:MAX_FAILURES],
        "checks": len(results),
        "failed_checks": sum(1 for _, found in results if found),
    }
    if len(failed) > MAX_FAILURES:
        report["omitted"] = len(failed) - MAX_FAILURES
    return report


class ValidateType:
    def check(self, stage: Stage) -> list[str]:
        options = stage.options
        out = problems(options, OPTIONS)
        if "model" not in options and not options.get("checks"):
            out.append("option 'checks' (or 'model') is required")
        if isinstance(options.get("model"), str):
            try:
                model_class(options["model"])
            except ValueError as exc:
                out.append(f"option 'model': {exc}")
        for i, spec in enumerate(options.get("checks") or []):
            out.extend(f"checks[{i}]: {p}" for p in check_problems(spec))
        if "value" not in stage.inputs and len(stage.inputs) != 1:
            out.append("a validate stage needs an input named 'value' (or exactly one input)")
        return out

    def output_of(self, stage: Stage) -> Any:
        return Unknown

    def run(self, ctx: StageContext, inputs: Mapping[str, Any]) -> Any:
        value = subject(inputs)
        report = gate_report(ctx.stage.options, value)
        if report["failed_checks"]:
            first = report["failed"][0]["message"]
            raise GateFailed(
                f"validation gate {ctx.stage.name!r} failed: {report['failed_checks']} of "
                f"{report['checks']} checks (first: {first})",
                report=report,
            )
        return value


VALIDATE = ValidateType()
