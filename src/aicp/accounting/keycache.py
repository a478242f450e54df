"""The in-process key cache and how it hears of changes made by other processes.

Every write to `api_keys` (or to a user a key belongs to) bumps the
`state_versions` row "api_keys" in the same transaction. Each process polls
that counter every `POLL_S` seconds, and when Redis is configured a pub/sub
message wakes the poller at once. On a change the cache reads only the
(id, updated_at) pairs, then loads the rows that are new or changed and drops
the ones that are gone; revocation therefore spreads in well under a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from aicp.accounting.ratelimit_stages import limits_from_metadata
from aicp.plane.exchange import Principal
from aicp.storage.db import Database
from aicp.storage.schema import api_keys, state_versions, teams, users

log = logging.getLogger("aicp.keys")

VERSION_NAME = "api_keys"
CHANNEL = "aicp:keys:changed"
POLL_S = 0.5


@dataclass(slots=True, frozen=True)
class KeyEntry:
    digest: str
    principal: Principal
    expires_at: float | None
    #: The models, aliases and groups the key may name; None means all.
    allowed: frozenset[str] | None

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at is not None and (now or time.time()) >= self.expires_at


async def bump(conn: AsyncConnection) -> None:
    """Mark the key table changed; call inside the transaction that changed it."""
    done = await conn.execute(
        update(state_versions)
        .where(state_versions.c.name == VERSION_NAME)
        .values(version=state_versions.c.version + 1)
    )
    if done.rowcount == 0:
        await conn.execute(state_versions.insert().values(name=VERSION_NAME, version=1))


def trust_cap(metadata: Any) -> int | None:
    """A team's or user's `max_trust_level` (metadata): no key of theirs trusts more."""
    value = metadata.get("max_trust_level") if isinstance(metadata, dict) else None
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return value if ok else None


def principal_of(row: Any) -> Principal:
    role = row.user_role or "member"
    trust = row.trust_level
    for cap in (trust_cap(row.team_meta), trust_cap(row.user_meta)):
        if cap is not None:
            trust = min(trust, cap)
    team_id = row.team_id or row.user_team
    user_rpm, user_tpm = limits_from_metadata(row.user_meta)
    team_rpm, team_tpm = limits_from_metadata(row.team_meta)
    # A team admin administers their own team, through keys of that team only.
    if role == "team_admin" and (row.user_team is None or team_id != row.user_team):
        role = "member"
    return Principal(
        key_id=row.id,
        display=row.display,
        name=row.name,
        user_id=row.user_id,
        service_account_id=row.service_account_id,
        team_id=team_id,
        project_id=row.project_id,
        models=tuple(row.models or ()),
        rpm=row.rpm,
        tpm=row.tpm,
        trust_level=trust,
        is_admin=bool(row.is_admin) or role == "admin",
        can_force_routes=bool(row.can_force_routes),
        metadata=dict(row.metadata or {}),
        user_rpm=user_rpm,
        user_tpm=user_tpm,
        team_rpm=team_rpm,
        team_tpm=team_tpm,
        role=role,
    )


def _entry(row: Any) -> KeyEntry:
    principal = principal_of(row)
    allowed = frozenset(principal.models) if principal.models else None
    return KeyEntry(row.key_hash, principal, row.expires_at, allowed)


# A key's principal also carries its user's role and team and the user's and team's
# rate limits (their metadata); changes to those touch the key rows (principals.py).
_ROWS = select(
    api_keys,
    users.c.role.label("user_role"),
    users.c.team_id.label("user_team"),
    users.c.metadata.label("user_meta"),
    teams.c.metadata.label("team_meta"),
).select_from(
    api_keys.outerjoin(users, users.c.id == api_keys.c.user_id).outerjoin(
        teams, teams.c.id == func.coalesce(api_keys.c.team_id, users.c.team_id)
    )
)


class KeyCache:
    def __init__(self, db: Database, redis: Any) -> None:
        self.db = db
        self.redis = redis
        #: HMAC digest (hex) -> entry, for keys that are not revoked.
        self.entries: dict[str, KeyEntry] = {}
        #: id -> (updated_at, digest or None when revoked), for every row.
        self.rows: dict[str, tuple[float, str | None]] = {}
        self.version: int | None = None
        self.wake = asyncio.Event()
        self.lock = asyncio.Lock()
        self.tasks: list[asyncio.Task[None]] = []

    @property
    def count(self) -> int:
        return len(self.rows)

    async def start(self) -> None:
        async with self.db.begin() as conn:
            exists = await conn.scalar(
                select(func.count()).where(state_versions.c.name == VERSION_NAME)
            )
            if not exists:
                with contextlib.suppress(IntegrityError):  # another process made it
                    async with conn.begin_nested():
                        await conn.execute(state_versions.insert().values(name=VERSION_NAME))
        await self.refresh()
        self.tasks.append(asyncio.create_task(self._poll(), name="aicp-keys-poll"))
        if self.redis is not None:
            self.tasks.append(asyncio.create_task(self._listen(), name="aicp-keys-listen"))

    async def _version(self, conn: AsyncConnection) -> int:
        value = await conn.scalar(
            select(state_versions.c.version).where(state_versions.c.name == VERSION_NAME)
        )
        return int(value or 0)

    async def refresh(self) -> None:
        """Bring the cache up to date with the database: only new and changed rows are read."""
        async with self.lock, self.db.connect() as conn:
            version = await self._version(conn)
            stamps = {
                r.id: r.updated_at
                for r in await conn.execute(select(api_keys.c.id, api_keys.c.updated_at))
            }
            known = self.rows
            stale = [i for i, at in stamps.items() if i not in known or known[i][0] != at]
            fresh = await self._load(conn, stale) if stale else []
        self._apply(stamps, fresh)
        self.version = version

    async def _load(self, conn: AsyncConnection, ids: list[str]) -> list[Any]:
        rows: list[Any] = []
        for i in range(0, len(ids), 500):  # stay under bind-parameter limits
            chunk = ids[i : i + 500]
            result = await conn.execute(_ROWS.where(api_keys.c.id.in_(chunk)))
            rows.extend(result)
        return rows

    def _apply(self, stamps: dict[str, float], fresh: Iterable[Any]) -> None:
        # Build the new maps aside and swap them in: a lookup never sees half an update.
        entries = dict(self.entries)
        rows = dict(self.rows)
        for gone in rows.keys() - stamps.keys():
            digest = rows.pop(gone)[1]
            if digest is not None:
                entries.pop(digest, None)
        for row in fresh:
            old = rows.get(row.id)
            if old is not None and old[1] is not None:
                entries.pop(old[1], None)
            if row.revoked_at is None:
                entries[row.key_hash] = _entry(row)
                rows[row.id] = (row.updated_at, row.key_hash)
            else:
                rows[row.id] = (row.updated_at, None)
        self.entries = entries
        self.rows = rows

    async def _poll(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_S):
                    await self.wake.wait()
            self.wake.clear()
            try:
                async with self.db.connect() as conn:
                    version = await self._version(conn)
                if version != self.version:
                    await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The database may be briefly away; keep serving from the cache.
                log.warning("key cache: refresh failed: %s", type(exc).__name__)

    async def _listen(self) -> None:
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(CHANNEL)
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self.wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("key cache: redis listener: %s", type(exc).__name__)
                await asyncio.sleep(1)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def notify(self) -> None:
        if self.redis is None:
            return
        try:
            await self.redis.publish(CHANNEL, b"1")
        except Exception as exc:
            # Polling still spreads the change within a second.
            log.warning("key cache: redis publish failed: %s", type(exc).__name__)

    async def aclose(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.tasks.clear()
