"""What the identity admin handlers share: error mapping, bodies, ids, paging."""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from aicp.accounting.principals import not_found
from aicp.api import identity_models as m
from aicp.api.admin import error_response, json_response
from aicp.errors import AicpError, RequestError
from aicp.protocol.validate import parse_json

if TYPE_CHECKING:
    from aicp.state import AppState

Endpoint = Callable[[Request], Awaitable[Response]]
BodyT = TypeVar("BodyT", bound=m.Body)

MAX_BODY = 256 * 1024
_IDENT = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def endpoint(fn: Endpoint) -> Endpoint:
    """Typed errors and validation errors -> their JSON error response."""

    @functools.wraps(fn)
    async def run(request: Request) -> Response:
        try:
            return await fn(request)
        except ValidationError as exc:
            return error_response(m.invalid(exc))
        except AicpError as err:
            return error_response(err)

    return run


def state_of(request: Request) -> AppState:
    state: AppState = request.app.state.aicp
    return state


async def body_of(request: Request, model: type[BodyT]) -> BodyT:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise RequestError(f"the body is over {MAX_BODY} bytes", status=413)
    if not raw and not _required(model):
        return model()
    return model.model_validate(parse_json(raw))


def _required(model: type[m.Body]) -> bool:
    return any(f.is_required() for f in model.model_fields.values())


def path_id(request: Request) -> str:
    """The {id} of the path; anything that cannot be an id is simply not found."""
    ident: str = request.path_params["id"]
    if not _IDENT.fullmatch(ident):
        raise not_found("object", ident[:64])
    return ident


def id_param(request: Request, name: str) -> str | None:
    """An id from the query string, or None; malformed -> 422."""
    value = request.query_params.get(name)
    if value is not None and not _IDENT.fullmatch(value):
        raise RequestError(f"{name}: not a valid id", status=422, param=name)
    return value


def query(request: Request, *names: str) -> tuple[dict[str, str], int, int]:
    """Filters (ids), limit and offset from the query string; malformed -> 422."""
    params = request.query_params
    filters = {}
    for name in names:
        value = id_param(request, name)
        if value is not None:
            filters[name] = value
    try:
        limit = int(params.get("limit", "100"))
        offset = int(params.get("offset", "0"))
    except ValueError:
        raise RequestError("limit and offset must be integers", status=422) from None
    if not (1 <= limit <= 1000 and 0 <= offset <= 2**31):
        raise RequestError("limit must be 1..1000 and offset >= 0", status=422)
    return filters, limit, offset


def listing(data: list[dict[str, Any]]) -> Response:
    return json_response({"object": "list", "data": data})
