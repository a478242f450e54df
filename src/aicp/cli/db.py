"""`aicp db ...`: the database's schema revision, and migrations on demand.

The gateway migrates at start-up anyway; `aicp db upgrade` is for deployments
that migrate in a separate step (a release job, an init container) and for
checking which revision a database is at.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from aicp.errors import AicpError, ConfigError

if TYPE_CHECKING:
    from aicp.storage.db import Database

T = TypeVar("T")

db_app = typer.Typer(no_args_is_help=True, help="The database: schema revision and migrations.")

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="aicp.yaml (else AICP_CONFIG and the environment)."),
]


@db_app.command("upgrade")
def upgrade(config: ConfigOpt = None) -> None:
    """Apply every pending migration and print the revision the database is at."""
    from aicp.storage import migrate

    url, revision = _with_database(config, migrate.upgrade)
    typer.echo(f"{url}: at revision {revision} (head)")


@db_app.command("current")
def current(config: ConfigOpt = None) -> None:
    """Print the revision the database is at and the newest this aicp knows."""
    from aicp.storage import migrate

    async def revision(db: Database) -> str:
        return await migrate.current(db) or "none (not migrated)"

    url, found = _with_database(config, revision)
    typer.echo(f"{url}: at revision {found}; head is {migrate.head()}")


def _with_database(
    config: Path | None, work: Callable[[Database], Awaitable[str]]
) -> tuple[str, str]:
    """Run `work` on the configured database: (its redacted URL, what `work` returned)."""
    from aicp.config import load_settings
    from aicp.storage.db import Database, database_url, redacted

    async def main() -> tuple[str, str]:
        settings = load_settings(config)
        url = database_url(settings.storage)
        db = Database(url)
        try:
            return redacted(url), await work(db)
        finally:
            await db.aclose()

    return run_database_job(main)


def run_database_job(main: Callable[[], Awaitable[T]]) -> T:
    """asyncio.run(main()) with config, aicp and database errors printed plainly (exit 1/2)."""
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    try:
        return asyncio.run(main())  # type: ignore[arg-type]
    except ConfigError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None
    except AicpError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    except (OSError, SQLAlchemyError) as exc:
        # The driver's own message, without SQLAlchemy's statement dump and links.
        detail = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
        typer.echo(f"error: database: {detail}", err=True)
        raise typer.Exit(1) from None
