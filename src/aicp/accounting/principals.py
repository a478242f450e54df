"""Teams, users, projects and service accounts: create, read, update, delete.

Each kind is data (`KINDS`): its table and id prefix. A change that alters
what a key's principal holds (a user's role or team, a team that goes away)
touches those keys' `updated_at` and bumps the key version in the same
transaction, so every process's key cache picks it up within a second.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from aicp.accounting.keycache import bump
from aicp.errors import RequestError
from aicp.storage.db import Database, plain_row
from aicp.storage.schema import api_keys, projects, service_accounts, teams, users


@dataclass(frozen=True, slots=True)
class Kind:
    name: str  # singular, for messages
    table: Table
    prefix: str


KINDS: dict[str, Kind] = {
    "teams": Kind("team", teams, "team_"),
    "users": Kind("user", users, "user_"),
    "projects": Kind("project", projects, "proj_"),
    "service_accounts": Kind("service account", service_accounts, "sa_"),
}


def new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


def not_found(what: str, ident: str) -> RequestError:
    err = RequestError(f"no {what} with id {ident!r}", status=404, code="not_found")
    err.kind = "not_found_error"
    return err


def conflict(message: str) -> RequestError:
    err = RequestError(message, status=409, code="conflict")
    err.kind = "invalid_request_error"
    return err


def unprocessable(message: str, param: str | None = None) -> RequestError:
    return RequestError(message, status=422, code="invalid_value", param=param)


async def exists(conn: AsyncConnection, table: Table, ident: str) -> bool:
    return await conn.scalar(select(table.c.id).where(table.c.id == ident)) is not None


async def check_refs(conn: AsyncConnection, values: dict[str, Any]) -> None:
    """Every *_id in `values` names a row that exists (422 otherwise, never a 500)."""
    for field, kind in (
        ("team_id", "teams"),
        ("user_id", "users"),
        ("project_id", "projects"),
        ("service_account_id", "service_accounts"),
    ):
        ident = values.get(field)
        if ident is not None and not await exists(conn, KINDS[kind].table, ident):
            raise unprocessable(f"{field}: no {KINDS[kind].name} with id {ident!r}", field)


async def create(db: Database, kind: str, values: dict[str, Any]) -> dict[str, Any]:
    spec = KINDS[kind]
    row = {"id": new_id(spec.prefix), "created_at": time.time(), **values}
    async with db.begin() as conn:
        await check_refs(conn, values)
        try:
            async with conn.begin_nested():
                await conn.execute(spec.table.insert().values(**row))
        except IntegrityError:
            raise conflict(f"a {spec.name} with that name or email already exists") from None
        result = await conn.execute(select(spec.table).where(spec.table.c.id == row["id"]))
        return plain_row(result.one())


async def get(db: Database, kind: str, ident: str) -> dict[str, Any] | None:
    table = KINDS[kind].table
    async with db.connect() as conn:
        row = (await conn.execute(select(table).where(table.c.id == ident))).first()
    return None if row is None else plain_row(row)


async def find(
    db: Database, kind: str, filters: dict[str, str], limit: int, offset: int
) -> list[dict[str, Any]]:
    table = KINDS[kind].table
    query = select(table).order_by(table.c.created_at, table.c.id).limit(limit).offset(offset)
    for column, value in filters.items():
        query = query.where(table.c[column] == value)
    async with db.connect() as conn:
        return [plain_row(r) for r in await conn.execute(query)]


async def modify(
    db: Database, kind: str, ident: str, values: dict[str, Any]
) -> dict[str, Any] | None:
    spec = KINDS[kind]
    table = spec.table
    async with db.begin() as conn:
        if not await exists(conn, table, ident):
            return None
        await check_refs(conn, values)
        if values:
            try:
                async with conn.begin_nested():
                    await conn.execute(update(table).where(table.c.id == ident).values(**values))
            except IntegrityError:
                raise conflict(f"a {spec.name} with that name or email already exists") from None
        # What a key's principal takes from its user and team (role, team, rate limits).
        if kind == "users" and ({"role", "team_id", "metadata"} & values.keys()):
            await _touch_keys(conn, api_keys.c.user_id == ident)
        if kind == "teams" and "metadata" in values:
            await _touch_keys(conn, _team_keys(ident))
        result = await conn.execute(select(table).where(table.c.id == ident))
        return plain_row(result.one())


async def remove(db: Database, kind: str, ident: str) -> bool:
    table = KINDS[kind].table
    async with db.begin() as conn:
        if not await exists(conn, table, ident):
            return False
        # Foreign keys would null these columns without touching updated_at; do it here
        # so the key caches see it. Keys of a deleted user or service account cascade away.
        if kind == "teams":
            await _touch_keys(conn, _team_keys(ident))
            await _touch_keys(conn, api_keys.c.team_id == ident, team_id=None)
        elif kind == "projects":
            await _touch_keys(conn, api_keys.c.project_id == ident, project_id=None)
        await conn.execute(delete(table).where(table.c.id == ident))
        await bump(conn)
    return True


def _team_keys(team_id: str) -> Any:
    """Keys of the team, and keys of its users (whose principal takes the user's team)."""
    members = select(users.c.id).where(users.c.team_id == team_id)
    return (api_keys.c.team_id == team_id) | api_keys.c.user_id.in_(members)


async def _touch_keys(conn: AsyncConnection, where: Any, **values: Any) -> None:
    await conn.execute(update(api_keys).where(where).values(updated_at=time.time(), **values))
    await bump(conn)
