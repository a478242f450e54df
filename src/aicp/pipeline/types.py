"""Annotations of stage inputs and outputs: are two compatible, how to print one.

The check is deliberately lenient where it cannot be sure (undeclared types,
bare generics, protocols, callables): it exists to catch a stage wired to the
wrong producer, not to be a type checker.
"""

from __future__ import annotations

import collections.abc
import importlib
import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aicp.pipeline.model import Unknown

#: The argument through which the runner hands a python stage its StageContext.
CTX_ARG = "ctx"

_UNIONS: tuple[Any, ...] = (typing.Union, types.UnionType)
_WIDENS: dict[type, tuple[type, ...]] = {int: (float, complex), float: (complex,)}


def normalize(tp: Any) -> Any:
    """`Unknown` for an undeclared or unresolvable annotation; aliases and wrappers peeled off."""
    if tp is inspect.Parameter.empty or isinstance(tp, str | typing.ForwardRef):
        return Unknown
    if tp is None:
        return type(None)
    if typing.get_origin(tp) is typing.Annotated:
        return normalize(typing.get_args(tp)[0])
    if isinstance(tp, typing.NewType):
        return normalize(tp.__supertype__)
    if isinstance(tp, typing.TypeVar):
        return normalize(tp.__bound__) if tp.__bound__ is not None else Unknown
    return tp


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in _UNIONS


def _origin_class(tp: Any) -> type | None:
    origin = typing.get_origin(tp) or tp
    return origin if isinstance(origin, type) else None


def compatible(produced: Any, expected: Any) -> bool:
    """Can a value declared as `produced` be passed where `expected` is declared?"""
    p, e = normalize(produced), normalize(expected)
    if Unknown in (p, e) or Any in (p, e) or e is object or p == e:
        return True
    if _is_union(p):
        return all(compatible(m, e) for m in typing.get_args(p))
    if _is_union(e):
        return any(compatible(p, m) for m in typing.get_args(e))
    if typing.get_origin(p) is typing.Literal:
        return all(compatible(type(v), e) for v in typing.get_args(p))
    if typing.get_origin(e) is typing.Literal:
        # A wider producer may still give one of the allowed values: not provably wrong.
        return any(compatible(p, type(v)) for v in typing.get_args(e))
    if p in _WIDENS and e in _WIDENS[p]:
        return True
    po, eo = _origin_class(p), _origin_class(e)
    if po is None or eo is None:
        return True
    try:
        if not issubclass(po, eo):
            return False
    except TypeError:  # e.g. a protocol that is not runtime-checkable
        return True
    return _args_compatible(typing.get_args(p), typing.get_args(e), eo)


def _args_compatible(pa: tuple[Any, ...], ea: tuple[Any, ...], origin: Any) -> bool:
    if not pa or not ea or origin is collections.abc.Callable:
        return True
    if origin is tuple:
        return _tuple_compatible(pa, ea)
    if len(pa) != len(ea):
        return True
    return all(compatible(a, b) for a, b in zip(pa, ea, strict=True))


def _tuple_compatible(pa: tuple[Any, ...], ea: tuple[Any, ...]) -> bool:
    p_var, e_var = pa[-1] is Ellipsis, ea[-1] is Ellipsis
    if e_var:
        return all(compatible(a, ea[0]) for a in pa if a is not Ellipsis)
    if p_var:
        return all(compatible(pa[0], b) for b in ea)
    return len(pa) == len(ea) and all(compatible(a, b) for a, b in zip(pa, ea, strict=True))


def render(tp: Any) -> str:
    """An annotation as a person writes it: `list[str]`, `int | None`, `Document`."""
    if tp is Unknown:
        return "unknown"
    if tp is Any:
        return "Any"
    if tp is None or tp is type(None):
        return "None"
    if tp is Ellipsis:
        return "..."
    if isinstance(tp, list):
        return "[" + ", ".join(render(a) for a in tp) + "]"
    if _is_union(tp):
        return " | ".join(render(a) for a in typing.get_args(tp))
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return "Literal[" + ", ".join(repr(a) for a in args) + "]"
    if origin is not None and args:
        return f"{render(origin)}[{', '.join(render(a) for a in args)}]"
    if isinstance(tp, type):
        return tp.__qualname__
    return str(tp).replace("typing.", "")


def import_object(ref: str) -> Any:
    """The object `module:attribute` names (the attribute may be dotted); LookupError if none."""
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise LookupError(f"{ref!r} is not of the form module:attribute")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise LookupError(f"cannot import module {module_name!r}: {exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise LookupError(f"module {module_name!r} has no attribute {attr!r}") from None
    return obj


@dataclass(frozen=True, slots=True)
class CallableInfo:
    """What a python stage's callable takes and gives, by its signature."""

    #: Argument name -> annotation (Unknown when unannotated); `ctx` excluded.
    accepts: dict[str, Any]
    #: Arguments without a default.
    required: frozenset[str]
    #: It takes `**kwargs`, so any input name is accepted.
    var_keyword: bool
    output: Any


def signature(func: Callable[..., Any]) -> inspect.Signature:
    """`func`'s signature with its annotations evaluated, when they all resolve."""
    try:
        return inspect.signature(func, eval_str=True)
    except NameError:  # a forward reference that does not resolve: keep it undeclared
        return inspect.signature(func)


def describe_callable(func: Callable[..., Any]) -> CallableInfo:
    """Read `func`'s signature; TypeError/ValueError when it has none."""
    sig = signature(func)
    accepts: dict[str, Any] = {}
    required: set[str] = set()
    var_keyword = False
    for name, param in sig.parameters.items():
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            var_keyword = True
            continue
        if param.kind is inspect.Parameter.VAR_POSITIONAL or name == CTX_ARG:
            continue
        accepts[name] = normalize(param.annotation)
        if param.default is inspect.Parameter.empty:
            required.add(name)
    output = normalize(sig.return_annotation)
    return CallableInfo(accepts, frozenset(required), var_keyword, output)
