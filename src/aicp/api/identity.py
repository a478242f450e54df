"""The identity admin API: /admin/keys, users, teams, projects, service accounts.

JSON in and out, errors in OpenAI's format; roles in api/authz.py. The
OpenAPI schema at /openapi.json is built from the docstrings of every
Starlette route (after `---`) and the request models of identity_models
(and api/spend.py's BudgetCreate).
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.schemas import SchemaGenerator

from aicp.api import identity_models as m
from aicp.api.identity_entities import ENTITY_ROUTES
from aicp.api.identity_keys import KEY_ROUTES
from aicp.api.spend import BudgetCreate

_MODELS: tuple[type[m.Body], ...] = (
    m.KeyCreate,
    m.KeyUpdate,
    m.KeyRotate,
    m.TeamCreate,
    m.TeamUpdate,
    m.UserCreate,
    m.UserUpdate,
    m.ProjectCreate,
    m.ProjectUpdate,
    m.ServiceAccountCreate,
    m.ServiceAccountUpdate,
    BudgetCreate,
)


def _components() -> dict[str, Any]:
    return {model.__name__: model.model_json_schema() for model in _MODELS}


async def openapi(request: Request) -> Response:
    generator = SchemaGenerator(
        {
            "openapi": "3.1.0",
            "info": {"title": "aicp admin API", "version": "1"},
            "components": {
                "schemas": _components(),
                "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            },
            "security": [{"bearer": []}],
        }
    )
    schema = generator.get_schema(routes=request.app.routes)
    # YAML reads `201:` as an int; JSON wants string keys.
    body = orjson.dumps(schema, option=orjson.OPT_NON_STR_KEYS)
    return Response(body, media_type="application/json")


routes: list[Route] = [
    *KEY_ROUTES,
    *ENTITY_ROUTES,
    Route("/openapi.json", openapi, methods=["GET"], include_in_schema=False),
]
