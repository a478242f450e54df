"""Prompt templates: `str.format` fields filled from a stage's inputs.

`{question}` is the input `question`; `{doc.title}`, `{doc[title]}` and
`{rows.0}` reach into it (a key of a mapping, an attribute of an object, an
item of a list). A value that is not a string is written as JSON (a pydantic
model, a list, a number), unless the field gives a format spec (`{score:.2f}`).
Literal braces are doubled, as in `str.format`: `{{` and `}}`.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic_core import to_jsonable_python

from aicp.pipeline.model import StageFailed

_ROOT = re.compile(r"[^.\[]*")
_PART = re.compile(r"\.([^.\[]+)|\[([^\]]+)\]")


class MissingField(StageFailed):
    """A template names a field that its values do not have."""


class _Unfilled(LookupError):
    def __init__(self, field: str, why: str) -> None:
        super().__init__(field, why)
        self.field, self.why = field, why


def as_json(value: Any) -> str:
    return json.dumps(to_jsonable_python(value, fallback=str), ensure_ascii=False)


def _step(obj: Any, key: str) -> Any:
    if isinstance(obj, Mapping):
        return obj[key]
    if isinstance(obj, list | tuple) and re.fullmatch(r"-?\d+", key):
        return obj[int(key)]
    return getattr(obj, key)


class _Formatter(string.Formatter):
    def get_field(self, field_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        root = _ROOT.match(field_name)
        name = root.group(0) if root else ""
        if name not in kwargs:
            raise _Unfilled(field_name, f"there is no input {name!r}")
        obj, pos = kwargs[name], len(name)
        while pos < len(field_name):
            part = _PART.match(field_name, pos)
            if part is None:
                raise _Unfilled(field_name, "it is not a name, .key or [key] after the input")
            key = part.group(1) or part.group(2)
            try:
                obj = _step(obj, key)
            except (LookupError, AttributeError):
                where = field_name[: part.start()]
                raise _Unfilled(field_name, f"{where} has no {key!r}") from None
            pos = part.end()
        return obj, name

    def format_field(self, value: Any, format_spec: str) -> str:
        if isinstance(value, str) or format_spec:
            return str(super().format_field(value, format_spec))
        return as_json(value)


def fields(template: str) -> list[str]:
    """The input names a template uses, in order; ValueError for a malformed one."""
    out: list[str] = []
    for _, name, spec, _ in string.Formatter().parse(template):
        if name is None:
            continue
        root = _ROOT.match(name)
        key = root.group(0) if root else ""
        if not key or key.isdigit():
            raise ValueError(
                f"field {{{name}}} has no name; write the input's name, e.g. {{question}}"
            )
        if key not in out:
            out.append(key)
        if spec:
            out.extend(f for f in fields(spec) if f not in out)
    return out


def render(template: str, values: Mapping[str, Any], where: str = "prompt") -> str:
    """`template` with its fields filled from `values`; MissingField names what is missing."""
    try:
        return _Formatter().vformat(template, (), values)
    except _Unfilled as exc:
        known = ", ".join(sorted(values)) or "none"
        raise MissingField(
            f"{where}: the template's field {{{exc.field}}} cannot be filled: {exc.why} "
            f"(inputs: {known})"
        ) from None
    except (TypeError, ValueError) as exc:
        raise StageFailed(f"{where}: cannot fill the template: {exc}") from None
