"""The checks a `validate` stage can declare, and the paths that point them into a value.

A check is `{check: NAME, path: ..., message: ..., <its own options>}`. NAME is
one of `CHECKS` or `module:function` (a function `(value, options) -> bool`).
`path` is dotted (`answers.0.text`); `*` stands for every item of a list (or
every value of a mapping), so `answers.*.text` checks each answer's text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sized
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

# No type stubs for jsonschema are installed (types-jsonschema): it is used in two
# functions here only, which metrics.py shares.
import jsonschema

from aicp.pipeline.builtins.options import (
    ANY,
    BOOL,
    COUNT,
    LIST,
    MAPPING,
    NUMBER,
    STR,
    Opt,
    brief,
    hint,
    import_function,
)
from aicp.pipeline.model import StageFailed

#: A check's test: the value at the path and the check's options -> why it fails, or None.
Test = Callable[[Any, Mapping[str, Any]], str | None]


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()

#: Keys every check may have.
COMMON: Mapping[str, Opt] = {
    "check": Opt(STR, required=True),
    "path": Opt(STR),
    "message": Opt(STR),
}


@dataclass(frozen=True, slots=True)
class Check:
    test: Test
    #: Its own options; None: any (a custom check gets whatever the stage gives it).
    options: Mapping[str, Opt] | None = field(default_factory=dict)
    #: Further problems with the options, found before the run (a bad regex...).
    vet: Callable[[Mapping[str, Any]], list[str]] | None = None


# --- paths -----------------------------------------------------------------------------


def _step(path: str, value: Any, part: str) -> list[tuple[str, Any]]:
    def at(key: object) -> str:
        return f"{path}.{key}" if path else str(key)

    if part == "*":
        if isinstance(value, list | tuple):
            return [(at(i), v) for i, v in enumerate(value)]
        if isinstance(value, Mapping):
            return [(at(k), v) for k, v in value.items()]
        return [(at(part), MISSING)]
    if isinstance(value, Mapping):
        return [(at(part), value.get(part, MISSING))]
    if isinstance(value, list | tuple) and re.fullmatch(r"-?\d+", part):
        i = int(part)
        return [(at(part), value[i] if -len(value) <= i < len(value) else MISSING)]
    return [(at(part), MISSING)]


def resolve(value: Any, path: str) -> list[tuple[str, Any]]:
    """(concrete path, value) for each place `path` names; MISSING where there is none."""
    found: list[tuple[str, Any]] = [("", value)]
    for part in path.split(".") if path else []:
        nxt: list[tuple[str, Any]] = []
        for here, v in found:
            if v is MISSING:
                nxt.append((f"{here}.{part}" if here else part, MISSING))
            else:
                nxt.extend(_step(here, v, part))
        found = nxt
    return found


# --- the built-in checks ---------------------------------------------------------------


def _kind(value: Any) -> str:
    return type(value).__name__


def _not_empty(got: Any, _: Mapping[str, Any]) -> str | None:
    if got is None:
        return "is null"
    if isinstance(got, str) and not got.strip():
        return "is empty (or only whitespace)"
    if isinstance(got, Sized) and len(got) == 0:
        return "is empty"
    return None


def _length(limit: str, ok: Callable[[int, int], bool]) -> Test:
    def test(got: Any, opts: Mapping[str, Any]) -> str | None:
        if not isinstance(got, Sized):
            return f"has no length (it is a {_kind(got)})"
        n, bound = len(got), opts["value"]
        return None if ok(n, bound) else f"has length {n}; the {limit} is {bound}"

    return test


def _equals(got: Any, opts: Mapping[str, Any]) -> str | None:
    return None if got == opts["value"] else f"is not equal to {brief(opts['value'], 80)}"


def _holds(container: Any, item: Any) -> bool | None:
    """Whether `container` contains `item`; None when it is not a container."""
    if isinstance(container, str):
        return isinstance(item, str) and item in container
    if isinstance(container, list | tuple | Mapping | set):
        return item in container
    return None


def _contains(got: Any, opts: Mapping[str, Any]) -> str | None:
    held = _holds(got, opts["value"])
    if held is None:
        return f"cannot contain anything (it is a {_kind(got)})"
    return None if held else f"does not contain {brief(opts['value'], 80)}"


def _matches(got: Any, opts: Mapping[str, Any]) -> str | None:
    if not isinstance(got, str):
        return f"is not a string (it is a {_kind(got)})"
    flags = re.IGNORECASE if opts.get("ignore_case") else 0
    if re.search(opts["pattern"], got, flags):
        return None
    return f"does not match /{opts['pattern']}/"


def _vet_pattern(opts: Mapping[str, Any]) -> list[str]:
    try:
        re.compile(str(opts.get("pattern", "")))
    except re.error as exc:
        return [f"'pattern' is not a valid regular expression: {exc}"]
    return []


def schema_error(schema: Mapping[str, Any], value: Any) -> str | None:
    """Why `value` does not match the JSON schema, or None when it does."""
    validator = jsonschema.validators.validator_for(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path)
    return f"does not match the schema{' at ' + where if where else ''}: {error.message[:200]}"


def vet_schema(opts: Mapping[str, Any]) -> list[str]:
    """Problems with the option `schema`, a JSON schema."""
    schema = opts.get("schema")
    if not isinstance(schema, Mapping):
        return []
    try:
        jsonschema.validators.validator_for(schema).check_schema(dict(schema))
    except jsonschema.exceptions.SchemaError as exc:
        return [f"'schema' is not a valid JSON schema: {exc.message}"]
    return []


def _json_schema(got: Any, opts: Mapping[str, Any]) -> str | None:
    return schema_error(opts["schema"], got)


def _every_item_contains(got: Any, opts: Mapping[str, Any]) -> str | None:
    if not isinstance(got, list | tuple):
        return f"is not a list (it is a {_kind(got)})"
    key, value = opts.get("field"), opts.get("value", MISSING)
    bad: list[int] = []
    for i, item in enumerate(got):
        target = item
        if key is not None:
            target = item.get(key, MISSING) if isinstance(item, Mapping) else MISSING
        if target is MISSING or (value is not MISSING and not _holds(target, value)):
            bad.append(i)
    if not bad:
        return None
    if key is None:
        what = f"that do not contain {brief(value, 80)}"
    elif value is MISSING:
        what = f"that lack a field {key!r}"
    else:
        what = f"that lack a field {key!r} containing {brief(value, 80)}"
    shown = ", ".join(str(i) for i in bad[:10]) + (", ..." if len(bad) > 10 else "")
    return f"has {len(bad)} of {len(got)} items {what} (items {shown})"


def _vet_every_item(opts: Mapping[str, Any]) -> list[str]:
    if "field" not in opts and "value" not in opts:
        return ["every_item_contains needs 'field', 'value' or both"]
    return []


def _one_of(got: Any, opts: Mapping[str, Any]) -> str | None:
    return None if got in opts["values"] else f"is not one of {brief(opts['values'], 120)}"


def _range(got: Any, opts: Mapping[str, Any]) -> str | None:
    if isinstance(got, bool) or not isinstance(got, int | float):
        return f"is not a number (it is a {_kind(got)})"
    low, high = opts.get("min"), opts.get("max")
    if low is not None and got < low:
        return f"is below the minimum {low}"
    if high is not None and got > high:
        return f"is above the maximum {high}"
    return None


def _vet_range(opts: Mapping[str, Any]) -> list[str]:
    return [] if "min" in opts or "max" in opts else ["range needs 'min', 'max' or both"]


CHECKS: Mapping[str, Check] = MappingProxyType(
    {
        "not_empty": Check(_not_empty),
        "min_length": Check(
            _length("minimum", lambda n, b: n >= b), {"value": Opt(COUNT, required=True)}
        ),
        "max_length": Check(
            _length("maximum", lambda n, b: n <= b), {"value": Opt(COUNT, required=True)}
        ),
        "equals": Check(_equals, {"value": Opt(ANY, required=True)}),
        "contains": Check(_contains, {"value": Opt(ANY, required=True)}),
        "matches": Check(
            _matches,
            {"pattern": Opt(STR, required=True), "ignore_case": Opt(BOOL)},
            _vet_pattern,
        ),
        "json_schema": Check(_json_schema, {"schema": Opt(MAPPING, required=True)}, vet_schema),
        "every_item_contains": Check(
            _every_item_contains, {"field": Opt(STR), "value": Opt(ANY)}, _vet_every_item
        ),
        "one_of": Check(_one_of, {"values": Opt(LIST, required=True)}),
        "range": Check(_range, {"min": Opt(NUMBER), "max": Opt(NUMBER)}, _vet_range),
    }
)


# --- custom checks ---------------------------------------------------------------------


def custom(path: str) -> Check:
    """The check at `module:function`; ValueError when there is none."""
    func = import_function(path)

    def test(got: Any, opts: Mapping[str, Any]) -> str | None:
        try:
            result = func(got, dict(opts))
        except Exception as exc:  # the user's check failing is the check failing
            return f"{path}: {type(exc).__name__}: {exc}"[:300]
        if not isinstance(result, bool):
            raise StageFailed(f"check {path!r} returned a {_kind(result)}, not true or false")
        return None if result else f"fails {path}"

    return Check(test, options=None)


def lookup(name: str) -> Check:
    """The check called `name` (built-in or `module:function`); ValueError for none."""
    if ":" in name:
        return custom(name)
    found = CHECKS.get(name)
    if found is None:
        raise ValueError(f"unknown check {name!r} ({hint(name, CHECKS)})")
    return found
