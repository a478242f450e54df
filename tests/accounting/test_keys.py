"""Virtual keys: the key material, the pepper, and the key cache on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import os
import stat
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from aicp.accounting import keystore, principals
from aicp.accounting.keycache import POLL_S
from aicp.accounting.keys import PREFIX, KeyService, display_of, hash_key, load_pepper, new_key
from aicp.config import StorageSettings
from aicp.storage.db import Database
from aicp.storage.redis import connect_redis
from aicp.storage.schema import api_keys, state_versions

PEPPER = b"test-pepper"


def test_a_key_has_the_prefix_and_32_random_bytes() -> None:
    key = new_key()
    assert key.startswith(PREFIX)
    body = key[len(PREFIX) :]
    assert len(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))) >= 32
    assert new_key() != key


def test_the_display_form_shows_only_eight_characters_of_the_key() -> None:
    key = new_key()
    shown = display_of(key)
    assert shown.startswith(PREFIX) and "…" in shown
    assert len(shown) <= 40
    assert key not in shown and shown.count(key[len(PREFIX) + 4 : -4]) == 0


def test_the_hash_is_an_hmac_under_the_pepper() -> None:
    key = new_key()
    assert hash_key(PEPPER, key) != hash_key(b"other", key)
    assert len(hash_key(PEPPER, key)) == 64
    assert key not in hash_key(PEPPER, key)


def test_pepper_comes_from_the_environment_setting(tmp_path: Path) -> None:
    storage = StorageSettings(data_dir=str(tmp_path), key_pepper="from-env")
    assert load_pepper(storage) == b"from-env"
    assert not (tmp_path / "key_pepper").exists()


def test_a_generated_pepper_is_kept_with_mode_0600(tmp_path: Path) -> None:
    storage = StorageSettings(data_dir=str(tmp_path / "data"))
    first = load_pepper(storage)
    path = tmp_path / "data" / "key_pepper"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_pepper(storage) == first and len(first) >= 32


async def _service(db: Database, redis: object = None) -> KeyService:
    service = KeyService(db, redis, PEPPER)
    await service.start()
    return service


async def test_lookup_finds_a_new_key_and_stores_only_its_hmac(database: Database) -> None:
    keys = await _service(database)
    try:
        assert keys.lookup("sk-aicp-nothing") is None and not keys.has_keys
        row, key = await keystore.create_key(
            database, PEPPER, {"name": "k", "models": ["m1"], "rpm": 5}
        )
        await keys.changed()
        principal = keys.lookup(key)
        assert principal is not None
        assert (principal.key_id, principal.models, principal.rpm) == (row["id"], ("m1",), 5)
        assert keys.lookup(key + "x") is None and keys.has_keys
        async with database.connect() as conn:
            stored = (await conn.execute(select(api_keys))).one()
        assert stored.key_hash == hash_key(PEPPER, key)
        assert key not in str(tuple(stored))
    finally:
        await keys.aclose()


async def test_every_key_change_bumps_the_version(database: Database) -> None:
    keys = await _service(database)
    try:

        async def version() -> int:
            async with database.connect() as conn:
                value = await conn.scalar(select(state_versions.c.version))
            return int(value)

        before = await version()
        row, _ = await keystore.create_key(database, PEPPER, {"name": "k"})
        await keystore.update_key(database, row["id"], {"rpm": 3})
        await keystore.revoke_key(database, row["id"])
        assert await version() == before + 3
    finally:
        await keys.aclose()


async def test_revocation_reaches_another_process_cache_within_a_second(
    database: Database,
) -> None:
    # Two services on one database stand for two gateway processes.
    a, b = await _service(database), await _service(database)
    try:
        row, key = await keystore.create_key(database, PEPPER, {"name": "k"})
        await a.changed()
        await asyncio.sleep(POLL_S * 2.5)
        assert b.lookup(key) is not None
        await keystore.revoke_key(database, row["id"])
        await a.changed()
        assert a.lookup(key) is None
        started = time.monotonic()
        while b.lookup(key) is not None:
            assert time.monotonic() - started < 1.0, "revocation took over a second"
            await asyncio.sleep(0.02)
    finally:
        await a.aclose()
        await b.aclose()


@pytest.mark.redis
async def test_redis_pub_sub_wakes_the_other_cache_at_once(
    database: Database, redis_url: str
) -> None:
    ra, rb = await connect_redis(redis_url), await connect_redis(redis_url)
    a, b = await _service(database, ra), await _service(database, rb)
    try:
        await asyncio.sleep(0.1)  # the listener subscribes
        _, key = await keystore.create_key(database, PEPPER, {"name": "k"})
        await a.changed()
        started = time.monotonic()
        while b.lookup(key) is None:  # noqa: ASYNC110 - polling another object's cache
            await asyncio.sleep(0.005)
        # Well under the polling interval: the message woke it.
        assert time.monotonic() - started < POLL_S * 0.8
    finally:
        await a.aclose()
        await b.aclose()
        await ra.aclose()
        await rb.aclose()


async def test_an_expired_key_is_found_but_not_looked_up(database: Database) -> None:
    keys = await _service(database)
    try:
        _, key = await keystore.create_key(
            database, PEPPER, {"name": "k", "expires_at": time.time() - 1}
        )
        await keys.changed()
        entry = keys.find(key)
        assert entry is not None and entry.expired()
        assert keys.lookup(key) is None
    finally:
        await keys.aclose()


async def test_rotation_keeps_the_settings_and_the_old_key_for_the_grace(
    database: Database,
) -> None:
    keys = await _service(database)
    try:
        old, old_key = await keystore.create_key(
            database, PEPPER, {"name": "k", "models": ["a"], "tpm": 9, "metadata": {"x": 1}}
        )
        done = await keystore.rotate_key(database, PEPPER, old["id"], 0.6)
        assert done is not None
        new, new_key_ = done
        await keys.changed()
        assert new["rotated_from"] == old["id"] and new_key_ != old_key
        p_new, p_old = keys.lookup(new_key_), keys.lookup(old_key)
        assert p_new is not None and p_old is not None
        assert (p_new.models, p_new.tpm, p_new.metadata) == (("a",), 9, {"x": 1})
        await asyncio.sleep(0.7)
        assert keys.lookup(old_key) is None and keys.lookup(new_key_) is not None
    finally:
        await keys.aclose()


async def test_a_user_role_change_reaches_the_principal(database: Database) -> None:
    keys = await _service(database)
    try:
        team = await principals.create(database, "teams", {"name": "t"})
        user = await principals.create(
            database, "users", {"name": "u", "team_id": team["id"], "metadata": {"rpm": 7}}
        )
        _, key = await keystore.create_key(database, PEPPER, {"name": "k", "user_id": user["id"]})
        await keys.changed()
        p = keys.lookup(key)
        assert p is not None
        assert (p.role, p.team_id, p.user_rpm) == ("member", team["id"], 7)
        await principals.modify(database, "users", user["id"], {"role": "team_admin"})
        await keys.changed()
        p = keys.lookup(key)
        assert p is not None and p.role == "team_admin"
        await principals.remove(database, "users", user["id"])
        await keys.changed()
        assert keys.lookup(key) is None
    finally:
        await keys.aclose()
