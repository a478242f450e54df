"""Writes and reads of `api_keys`: create, update, rotate, revoke.

Every write bumps the key version in its own transaction (keycache.bump);
callers then call `KeyService.changed()` so this process reloads at once and
the others are woken. Rows leave this module without `key_hash`.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from aicp.accounting.keycache import bump
from aicp.accounting.keys import display_of, hash_key, new_key
from aicp.accounting.principals import check_refs, new_id, unprocessable
from aicp.storage.db import Database, plain_row
from aicp.storage.schema import api_keys, service_accounts, users

#: Columns copied from a key to its replacement on rotation.
SETTINGS = (
    "name",
    "user_id",
    "service_account_id",
    "team_id",
    "project_id",
    "models",
    "rpm",
    "tpm",
    "trust_level",
    "can_force_routes",
    "is_admin",
    "metadata",
    "expires_at",
)

_PUBLIC = [c for c in api_keys.c if c.name != "key_hash"]


def public(row: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """A key as the API shows it: never the key or its hash; with its status."""
    out = {k: v for k, v in row.items() if k != "key_hash"}
    now = now or time.time()
    if out.get("revoked_at") is not None:
        out["status"] = "revoked"
    elif out.get("expires_at") is not None and out["expires_at"] <= now:
        out["status"] = "expired"
    else:
        out["status"] = "active"
    return out


async def _owner_defaults(conn: AsyncConnection, values: dict[str, Any]) -> None:
    """A key's team (and project) default to its owner's."""
    if values.get("user_id") and values.get("service_account_id"):
        raise unprocessable("a key belongs to a user or a service account, not both", "user_id")
    if values.get("user_id") and values.get("team_id") is None:
        team = await conn.scalar(select(users.c.team_id).where(users.c.id == values["user_id"]))
        values["team_id"] = team
    sa_id = values.get("service_account_id")
    if sa_id:
        row = (
            await conn.execute(
                select(service_accounts.c.team_id, service_accounts.c.project_id).where(
                    service_accounts.c.id == sa_id
                )
            )
        ).first()
        if row is not None:
            if values.get("team_id") is None:
                values["team_id"] = row.team_id
            if values.get("project_id") is None:
                values["project_id"] = row.project_id


async def _insert(conn: AsyncConnection, pepper: bytes, values: dict[str, Any]) -> tuple[str, str]:
    key = new_key()
    now = time.time()
    ident = new_id("key_")
    row = {
        "id": ident,
        "key_hash": hash_key(pepper, key),
        "display": display_of(key),
        "created_at": now,
        "updated_at": now,
        "models": [],
        "metadata": {},
        **values,
    }
    await conn.execute(api_keys.insert().values(**row))
    await bump(conn)
    return ident, key


async def _read(conn: AsyncConnection, ident: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(*_PUBLIC).where(api_keys.c.id == ident))).first()
    return None if row is None else public(plain_row(row))


async def create_key(
    db: Database, pepper: bytes, values: dict[str, Any]
) -> tuple[dict[str, Any], str]:
    """The new key's row and the key itself (shown once)."""
    async with db.begin() as conn:
        await check_refs(conn, values)
        await _owner_defaults(conn, values)
        ident, key = await _insert(conn, pepper, values)
        row = await _read(conn, ident)
    assert row is not None
    return row, key


async def get_key(db: Database, ident: str) -> dict[str, Any] | None:
    async with db.connect() as conn:
        return await _read(conn, ident)


async def find_keys(
    db: Database, filters: dict[str, Any], include_revoked: bool, limit: int, offset: int
) -> list[dict[str, Any]]:
    query = select(*_PUBLIC).order_by(api_keys.c.created_at, api_keys.c.id)
    for column, value in filters.items():
        query = query.where(api_keys.c[column] == value)
    if not include_revoked:
        query = query.where(api_keys.c.revoked_at.is_(None))
    async with db.connect() as conn:
        rows = await conn.execute(query.limit(limit).offset(offset))
        now = time.time()
        return [public(plain_row(r), now) for r in rows]


async def update_key(db: Database, ident: str, values: dict[str, Any]) -> dict[str, Any] | None:
    async with db.begin() as conn:
        if await _read(conn, ident) is None:
            return None
        await check_refs(conn, values)
        if values.get("user_id") or values.get("service_account_id"):
            current = await _read(conn, ident)
            assert current is not None
            merged = {
                "user_id": values.get("user_id", current["user_id"]),
                "service_account_id": values.get(
                    "service_account_id", current["service_account_id"]
                ),
            }
            await _owner_defaults(conn, merged)
        await conn.execute(
            update(api_keys).where(api_keys.c.id == ident).values(updated_at=time.time(), **values)
        )
        await bump(conn)
        return await _read(conn, ident)


async def revoke_key(db: Database, ident: str) -> dict[str, Any] | None:
    now = time.time()
    async with db.begin() as conn:
        current = await _read(conn, ident)
        if current is None:
            return None
        if current["revoked_at"] is None:
            await conn.execute(
                update(api_keys)
                .where(api_keys.c.id == ident)
                .values(revoked_at=now, updated_at=now)
            )
            await bump(conn)
        return await _read(conn, ident)


async def rotate_key(
    db: Database, pepper: bytes, ident: str, grace_s: float
) -> tuple[dict[str, Any], str] | None:
    """A new key with the old one's settings; the old one expires after `grace_s` seconds."""
    now = time.time()
    async with db.begin() as conn:
        old = await _read(conn, ident)
        if old is None:
            return None
        if old["revoked_at"] is not None:
            raise unprocessable("a revoked key cannot be rotated")
        values = {name: old[name] for name in SETTINGS}
        new_id_, key = await _insert(conn, pepper, {**values, "rotated_from": ident})
        ends = now + grace_s
        if old["expires_at"] is not None:
            ends = min(ends, old["expires_at"])
        await conn.execute(
            update(api_keys).where(api_keys.c.id == ident).values(expires_at=ends, updated_at=now)
        )
        row = await _read(conn, new_id_)
    assert row is not None
    return row, key
