"""The storage layer on SQLite and PostgreSQL: migrations, the CLI, WAL, the gateway on top."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, select, text
from sqlalchemy.engine import Connection
from typer.testing import CliRunner

from aicp.cli.db import db_app
from aicp.config import StorageSettings
from aicp.errors import AicpError, ConfigError
from aicp.storage import migrate
from aicp.storage.db import Database, database_url
from aicp.storage.redis import connect_redis
from aicp.storage.schema import metadata, teams
from aicp.testing import GatewayServer
from tests.backends import POSTGRES_VAR, REQUIRE_VAR, service_url
from tests.helpers import gateway_settings_for

AICP = str(Path(sys.executable).with_name("aicp"))
EVERY_TABLE = {*metadata.tables, "alembic_version"}


def table_names(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def write_config(path: Path, url: str) -> Path:
    path.write_text(f"storage:\n  database_url: {url!r}\n  data_dir: {str(path.parent)!r}\n")
    return path


async def test_migrations_create_every_table(database: Database) -> None:
    async with database.connect() as conn:
        assert await conn.run_sync(table_names) == EVERY_TABLE
    assert await migrate.current(database) == migrate.head()


async def test_migrated_database_matches_the_schema_module(database: Database) -> None:
    def differences(conn: Connection) -> list[object]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    async with database.connect() as conn:
        assert await conn.run_sync(differences) == []


async def test_constraint_names_follow_the_naming_convention(database: Database) -> None:
    def names(conn: Connection) -> set[str | None]:
        insp = inspect(conn)
        found: set[str | None] = set()
        for table in metadata.tables:
            found.update(fk["name"] for fk in insp.get_foreign_keys(table))
            found.update(uq["name"] for uq in insp.get_unique_constraints(table))
        return found

    expected = {
        c.name
        for table in metadata.tables.values()
        for c in (*table.foreign_key_constraints, *table.constraints)
        if c.name and not c.name.startswith("pk_")
    }
    async with database.connect() as conn:
        assert await conn.run_sync(names) == expected


async def test_upgrading_a_database_at_head_changes_nothing(database: Database) -> None:
    async with database.begin() as conn:
        await conn.execute(teams.insert().values(id="t1", name="one", metadata={}, created_at=1.5))
    assert await migrate.upgrade(database) == migrate.head()
    assert await migrate.upgrade(database) == migrate.head()
    async with database.connect() as conn:
        assert (await conn.execute(select(teams.c.name))).scalars().all() == ["one"]
        versions = await conn.execute(text("SELECT version_num FROM alembic_version"))
        assert versions.scalars().all() == [migrate.head()]


async def test_downgrade_to_base_and_up_again(database: Database) -> None:
    def downgrade(conn: Connection) -> None:
        command.downgrade(migrate.alembic_config(conn), "base")

    async with database.begin() as conn:
        await conn.run_sync(downgrade)
        assert await conn.run_sync(table_names) == {"alembic_version"}
    assert await migrate.upgrade(database) == migrate.head()
    async with database.connect() as conn:
        assert await conn.run_sync(table_names) == EVERY_TABLE


async def test_concurrent_upgrades_do_not_fail(database_url: str) -> None:
    # Separate engines, so separate connections race as separate processes would.
    dbs = [Database(database_url) for _ in range(4)]
    try:
        revisions = await asyncio.gather(*(migrate.upgrade(db) for db in dbs))
        assert revisions == [migrate.head()] * 4
        async with dbs[0].connect() as conn:
            assert await conn.run_sync(table_names) == EVERY_TABLE
    finally:
        for db in dbs:
            await db.aclose()


async def test_two_databases_migrate_at_once_in_one_process(
    database_url: str, tmp_path: Path
) -> None:
    # Alembic's module-level state must not mix two migrations up.
    dbs = [Database(database_url), Database(f"sqlite:///{tmp_path / 'other.db'}")]
    try:
        revisions = await asyncio.gather(*(migrate.upgrade(db) for db in dbs))
        assert revisions == [migrate.head()] * 2
    finally:
        for db in dbs:
            await db.aclose()


def test_concurrent_upgrades_in_separate_processes_all_succeed(
    database_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "aicp.yaml", database_url)
    procs = [
        subprocess.Popen(
            [AICP, "db", "upgrade", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert f"at revision {migrate.head()} (head)" in out


async def test_a_database_from_a_newer_aicp_is_refused(database: Database) -> None:
    async with database.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(AicpError, match=r"revision 9999.*upgrade aicp"):
        await migrate.upgrade(database)


def test_cli_db_upgrade_migrates_and_prints_the_revision(database_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path / "aicp.yaml", database_url)
    runner = CliRunner()
    before = runner.invoke(db_app, ["current", "--config", str(config)])
    assert before.exit_code == 0, before.output
    assert "none (not migrated)" in before.output
    result = runner.invoke(db_app, ["upgrade", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert f"at revision {migrate.head()} (head)" in result.output
    again = runner.invoke(db_app, ["upgrade", "-c", str(config)])
    assert again.exit_code == 0, again.output
    after = runner.invoke(db_app, ["current", "--config", str(config)])
    assert f"at revision {migrate.head()};" in after.output

    async def tables() -> set[str]:
        db = Database(database_url)
        try:
            async with db.connect() as conn:
                return await conn.run_sync(table_names)
        finally:
            await db.aclose()

    assert asyncio.run(tables()) == EVERY_TABLE


def test_cli_db_upgrade_uses_the_data_dir_from_the_environment(tmp_path: Path) -> None:
    data_dir = tmp_path / "nested" / "data"
    env = {"AICP_DATA_DIR": str(data_dir), "AICP_DATABASE_URL": "", "AICP_CONFIG": ""}
    result = CliRunner().invoke(db_app, ["upgrade"], env=env)
    assert result.exit_code == 0, result.output
    assert (data_dir / "aicp.db").is_file()


def test_cli_db_upgrade_names_an_unreachable_database_without_its_password(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path / "aicp.yaml", "postgresql://aicp:hunter2@127.0.0.1:1/aicp")
    result = CliRunner().invoke(db_app, ["upgrade", "--config", str(config)])
    assert result.exit_code == 1
    assert "error: database" in result.output
    assert "hunter2" not in result.output


async def test_sqlite_runs_in_wal_mode_in_the_data_directory(tmp_path: Path) -> None:
    data_dir = tmp_path / "not" / "yet"
    db = Database(database_url(StorageSettings(data_dir=str(data_dir))))
    try:
        await migrate.upgrade(db)
        async with db.connect() as conn:
            pragma = conn.exec_driver_sql
            assert (await pragma("PRAGMA journal_mode")).scalar() == "wal"
            assert (await pragma("PRAGMA busy_timeout")).scalar() == 5000
            assert (await pragma("PRAGMA foreign_keys")).scalar() == 1
    finally:
        await db.aclose()
    assert (data_dir / "aicp.db").is_file()


async def test_the_spend_ledger_ids_count_up(database: Database) -> None:
    from aicp.storage.schema import spend

    row = {"request_id": "r", "model": "m", "created_at": 1.0}
    row |= {"prompt_tokens": 0, "completion_tokens": 0, "cached_tokens": 0, "cost_micros": 0}
    async with database.begin() as conn:
        await conn.execute(spend.insert(), [row, row, row])
    async with database.connect() as conn:
        ids = (await conn.execute(select(spend.c.id).order_by(spend.c.id))).scalars().all()
        assert ids == [1, 2, 3]
        assert (await conn.execute(select(func.count()).select_from(spend))).scalar() == 3


def chat(gw: GatewayServer) -> httpx.Response:
    body = {"model": "mock-1", "messages": [{"role": "user", "content": "hello storage"}]}
    return httpx.post(gw.url + "/v1/chat/completions", json=body, timeout=30)


def test_the_gateway_starts_and_answers_on_each_database(database_url: str) -> None:
    with GatewayServer(gateway_settings_for(database_url)) as gw:
        response = chat(gw)
    assert response.status_code == 200, response.text
    assert "hello storage" in response.json()["choices"][0]["message"]["content"]


def test_the_gateway_starts_on_postgres_and_redis(postgres_url: str, redis_url: str) -> None:
    with GatewayServer(gateway_settings_for(postgres_url, redis_url)) as gw:
        response = chat(gw)
    assert response.status_code == 200, response.text

    async def revision() -> str | None:
        db = Database(postgres_url)
        try:
            return await migrate.current(db)
        finally:
            await db.aclose()

    assert asyncio.run(revision()) == migrate.head()


async def test_redis_connects_when_configured(redis_url: str) -> None:
    assert await connect_redis(None) is None
    client = await connect_redis(redis_url)
    assert client is not None
    try:
        assert await client.ping()
    finally:
        await client.aclose()


async def test_an_unreachable_redis_is_named_without_its_password() -> None:
    with pytest.raises(ConfigError, match="cannot connect") as info:
        await connect_redis("redis://:hunter2@127.0.0.1:1/0")
    assert "hunter2" not in info.value.message


def test_missing_services_skip_locally_and_fail_when_required(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(POSTGRES_VAR, raising=False)
    monkeypatch.delenv(REQUIRE_VAR, raising=False)
    with pytest.raises(pytest.skip.Exception, match=POSTGRES_VAR):
        service_url(POSTGRES_VAR, "PostgreSQL")
    monkeypatch.setenv(REQUIRE_VAR, "1")
    with pytest.raises(pytest.fail.Exception, match=f"{REQUIRE_VAR}=1 but {POSTGRES_VAR}"):
        service_url(POSTGRES_VAR, "PostgreSQL")
    monkeypatch.setenv(POSTGRES_VAR, "postgresql://somewhere/db")
    assert service_url(POSTGRES_VAR, "PostgreSQL") == "postgresql://somewhere/db"
