"""Checking a stage's options against a small declared schema, with messages for users.

A type declares its options as `name -> Opt`; `problems()` returns what is
wrong (missing, unknown, of the wrong kind, out of range) phrased as the
compiler shows it next to the stage's file and line.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aicp.pipeline import types

#: What an option's value may be: a description for messages and a test.
Kind = tuple[str, Callable[[Any], bool]]


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


STR: Kind = ("a string", lambda v: isinstance(v, str))
BOOL: Kind = ("true or false", lambda v: isinstance(v, bool))
NUMBER: Kind = ("a number", _is_number)
POSITIVE: Kind = ("a number > 0", lambda v: _is_number(v) and v > 0)
POSITIVE_INT: Kind = (
    "a whole number > 0",
    lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0,
)
COUNT: Kind = (
    "a whole number >= 0",
    lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
)
MAPPING: Kind = ("a mapping", lambda v: isinstance(v, Mapping))
LIST: Kind = ("a list", lambda v: isinstance(v, list))
ANY: Kind = ("anything", lambda v: True)
STR_OR_STRS: Kind = (
    "a string or a list of strings",
    lambda v: isinstance(v, str) or (isinstance(v, list) and all(isinstance(s, str) for s in v)),
)


@dataclass(frozen=True, slots=True)
class Opt:
    kind: Kind = ANY
    required: bool = False
    #: The allowed values, when the option is one of a few words.
    choices: tuple[str, ...] = ()


def problems(
    options: Mapping[str, Any], spec: Mapping[str, Opt], what: str = "option"
) -> list[str]:
    """Missing, unknown and ill-typed entries of `options`."""
    out: list[str] = []
    for name, opt in spec.items():
        if opt.required and name not in options:
            out.append(f"{what} {name!r} is required")
    for name, value in options.items():
        found = spec.get(name)
        if found is None:
            out.append(f"unknown {what} {name!r} ({hint(name, spec)})")
        elif found.choices and value not in found.choices:
            out.append(f"{what} {name!r} must be one of {', '.join(found.choices)}; got {value!r}")
        elif not found.kind[1](value):
            out.append(f"{what} {name!r} must be {found.kind[0]}, not {type(value).__name__}")
    return out


def entry_problems(
    entry: Mapping[str, Any],
    common: Mapping[str, Opt],
    own: Mapping[str, Opt] | None,
    vet: Callable[[Mapping[str, Any]], list[str]] | None,
) -> list[str]:
    """The problems of one declared check or metric: its `common` keys and its `own`.

    `own` None: it takes any keys (a custom one gets whatever is given), so only the
    common ones are checked. `vet` runs only when the keys are right.
    """
    given = entry if own is not None else {k: v for k, v in entry.items() if k in common}
    out = problems(given, {**common, **(own or {})}, what="key")
    if not out and vet is not None:
        out.extend(vet(entry))
    return out


def hint(name: str, known: Iterable[str]) -> str:
    """ "did you mean 'x'?" for a near miss of `known`, else the list of them."""
    names = sorted(known)
    close = difflib.get_close_matches(name, names, n=1)
    return f"did you mean {close[0]!r}?" if close else f"known: {', '.join(names) or 'none'}"


def import_object(path: str) -> Any:
    """The object at `module:attribute`, as `types.import_object` finds it.

    Raises ValueError (what option checks catch) with a message for users.
    """
    # Options are often a bare name by mistake (`model: Answer`): say what is expected.
    if ":" not in path:
        raise ValueError(f"{path!r} is not an import path of the form 'module:name'")
    try:
        return types.import_object(path)
    except LookupError as exc:
        raise ValueError(str(exc)) from None


def import_function(path: str) -> Callable[..., Any]:
    """The callable at `module:function`; ValueError when there is none."""
    func = import_object(path)
    if not callable(func):
        raise ValueError(f"{path!r} is not a function")
    return func  # type: ignore[no-any-return]


def brief(value: Any, limit: int = 200) -> str:
    """A short text of `value` for a report: JSON where it can be, cut to `limit`."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, default=str, ensure_ascii=False)
        except (TypeError, ValueError):
            text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
