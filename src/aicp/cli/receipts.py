"""`aicp receipts ...`: verify the log, export and verify one receipt, list and show.

`verify`, `export`, `list`, `show` and `checkpoint` read the configured
database directly (they are for the operator of the gateway's host);
`verify-bundle` needs nothing but the exported file (and, to trust it, the
log's published verifier key).
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from aicp.cli.db import run_database_job
from aicp.errors import AicpError

if TYPE_CHECKING:
    from aicp.config import Settings
    from aicp.receipts.log import ReceiptLog
    from aicp.receipts.verify import Leaf, Report
    from aicp.storage.db import Database

receipts_app = typer.Typer(
    no_args_is_help=True, help="The verifiable receipt log: verify, export, list, show."
)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="aicp.yaml (else AICP_CONFIG and the environment)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
T = TypeVar("T")


def _run(config: Path | None, work: Callable[[Settings, Database, ReceiptLog], Awaitable[T]]) -> T:

    from aicp.config import load_settings
    from aicp.receipts.log import ReceiptLog
    from aicp.receipts.signing import load_signer
    from aicp.storage.db import Database, database_url
    from aicp.storage.migrate import upgrade

    async def main() -> T:
        settings = load_settings(config)
        db = Database(database_url(settings.storage))
        try:
            await upgrade(db)
            rs = settings.receipts
            signer = load_signer(rs.signing_key, settings.storage.data_dir, rs.origin)
            return await work(settings, db, ReceiptLog(db, signer, rs))
        finally:
            await db.aclose()

    return run_database_job(main)


def _print_report(report: Report, what: str) -> None:
    for note in report.notes:
        typer.echo(f"note: {note}", err=True)
    for problem in report.problems:
        typer.echo(f"FAIL: {problem}", err=True)
    if not report.ok:
        raise typer.Exit(1)
    typer.echo(f"OK: {what}")


@receipts_app.command("verify")
def verify(
    config: ConfigOpt = None,
    against: Annotated[
        list[Path] | None,
        typer.Option(
            "--against",
            help="A checkpoint published earlier (a note file, or JSON with `note`); repeatable.",
        ),
    ] = None,
    key: Annotated[
        str | None, typer.Option("--key", help="The log's verifier key (default: this host's).")
    ] = None,
) -> None:
    """Recompute every leaf and the root at every checkpoint; check their signatures."""
    from sqlalchemy import select

    from aicp.receipts.signing import Verifier
    from aicp.receipts.verify import Leaf, verify_log
    from aicp.storage.schema import receipt_checkpoints, receipts

    published = [_note_of(path) for path in against or []]

    async def work(settings: Settings, db: Database, log: ReceiptLog) -> Report:
        verifier = Verifier.parse(key or log.signer.verifier_key)
        async with db.connect() as conn:
            notes = (await conn.execute(select(receipt_checkpoints.c.note))).scalars().all()

        async def leaves() -> AsyncIterator[Leaf]:
            c = receipts.c
            async with db.connect() as conn:
                stmt = select(c.leaf_index, c.id, c.data, c.leaf_hash).order_by(c.leaf_index)
                result = await conn.stream(stmt.execution_options(yield_per=2000))
                async for row in result:
                    yield Leaf(row.leaf_index, row.id, bytes(row.data), bytes(row.leaf_hash))

        return await verify_log(leaves(), list(notes), verifier, published)

    report = _run(config, work)
    _print_report(report, "the receipt log verifies against its checkpoints")


def _note_of(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("{"):
        return str(json.loads(text)["note"])
    return text


@receipts_app.command("verify-bundle")
def verify_bundle(
    file: Annotated[Path, typer.Argument(help="A bundle from `aicp receipts export` or the API.")],
    key: Annotated[
        str | None,
        typer.Option("--key", help="The log's published verifier key (recommended)."),
    ] = None,
    request: Annotated[
        Path | None, typer.Option("--request", help="Check this file against the request hash.")
    ] = None,
    response: Annotated[
        Path | None, typer.Option("--response", help="Check this file against the response hash.")
    ] = None,
) -> None:
    """Verify one exported receipt offline: no database, no gateway."""
    from aicp.receipts.verify import verify_body
    from aicp.receipts.verify import verify_bundle as check

    try:
        bundle = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        typer.echo(f"error: cannot read the bundle {file}: {exc}", err=True)
        raise typer.Exit(2) from None
    if not isinstance(bundle, dict):
        typer.echo("error: a bundle is a JSON object", err=True)
        raise typer.Exit(2)
    report = check(bundle, key)
    receipt = bundle.get("receipt") or {}
    for which, path in (("request", request), ("response", response)):
        if path is not None and not verify_body(receipt, which, path.read_bytes()):
            report.fail(f"{path} is not the {which} body this receipt commits to")
    _print_report(
        report,
        f"receipt {receipt.get('id')} is leaf {bundle.get('leaf_index')} of the log "
        f"{_origin(bundle)} at size {bundle.get('tree_size')}",
    )


def _origin(bundle: dict[str, Any]) -> str:
    note = bundle.get("checkpoint")
    return note.split("\n", 1)[0] if isinstance(note, str) else "?"


@receipts_app.command("export")
def export(
    receipt_id: Annotated[str, typer.Argument(metavar="ID")],
    config: ConfigOpt = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here.")] = None,
) -> None:
    """A receipt with its inclusion proof and signed checkpoint, as one JSON file."""
    from aicp.receipts.log import ReceiptNotFound

    async def work(settings: Settings, db: Database, log: ReceiptLog) -> dict[str, Any]:
        try:
            return await log.bundle(receipt_id)
        except ReceiptNotFound:
            raise AicpError(f"no receipt {receipt_id!r} in this log") from None

    text = json.dumps(_run(config, work), indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}", err=True)


@receipts_app.command("checkpoint")
def checkpoint(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Sign a checkpoint of the log as it is now and print it (a note to publish)."""

    async def work(settings: Settings, db: Database, log: ReceiptLog) -> dict[str, Any]:
        cp = await log.checkpoint()
        return {**cp.as_dict(), "verifier_key": log.signer.verifier_key}

    found = _run(config, work)
    if as_json:
        typer.echo(json.dumps(found, indent=2))
    else:
        sys.stdout.write(str(found["note"]))
        typer.echo(f"verifier key: {found['verifier_key']}", err=True)


@receipts_app.command("list")
def list_receipts(
    config: ConfigOpt = None,
    key: Annotated[str | None, typer.Option("--key", help="A key id.")] = None,
    team: Annotated[str | None, typer.Option("--team", help="A team id.")] = None,
    model: Annotated[str | None, typer.Option("--model")] = None,
    status: Annotated[int | None, typer.Option("--status", help="An HTTP status.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="ISO time or epoch s.")] = None,
    until: Annotated[str | None, typer.Option("--until")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000)] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Receipts, newest first, filtered by key, team, model, status and time."""
    from sqlalchemy import select

    from aicp.storage.db import plain_row
    from aicp.storage.schema import receipts

    start, end = _when(since, "--since"), _when(until, "--until")

    async def work(settings: Settings, db: Database, log: ReceiptLog) -> list[dict[str, Any]]:
        c = receipts.c
        stmt = select(c.leaf_index, c.id, c.created_at, c.key_id, c.team_id, c.model, c.status)
        for column, value in ((c.key_id, key), (c.team_id, team), (c.model, model)):
            if value is not None:
                stmt = stmt.where(column == value)
        if status is not None:
            stmt = stmt.where(c.status == status)
        if start is not None:
            stmt = stmt.where(c.created_at >= start)
        if end is not None:
            stmt = stmt.where(c.created_at < end)
        stmt = stmt.order_by(c.leaf_index.desc()).limit(limit)
        async with db.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [plain_row(r) for r in rows]

    rows = _run(config, work)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from aicp.receipts.build import rfc3339

    table = Table("leaf", "id", "time (UTC)", "key", "team", "model", "status")
    for r in rows:
        table.add_row(
            str(r["leaf_index"]),
            r["id"],
            rfc3339(r["created_at"])[:23],
            r["key_id"] or "-",
            r["team_id"] or "-",
            r["model"] or "-",
            str(r["status"]),
        )
    Console().print(table)


def _when(value: str | None, name: str) -> float | None:
    if value is None:
        return None
    from aicp.api.spend import parse_time

    try:
        return parse_time(value, name)
    except AicpError as exc:
        raise typer.BadParameter(exc.message) from None


@receipts_app.command("show")
def show(
    receipt_id: Annotated[str, typer.Argument(metavar="ID")],
    config: ConfigOpt = None,
) -> None:
    """One receipt as stored (its canonical JSON, pretty-printed), with its leaf index."""
    from aicp.receipts.log import ReceiptNotFound

    async def work(settings: Settings, db: Database, log: ReceiptLog) -> dict[str, Any]:
        try:
            row = await log.get(receipt_id)
        except ReceiptNotFound:
            raise AicpError(f"no receipt {receipt_id!r} in this log") from None
        return {
            "leaf_index": row.leaf_index,
            "leaf_hash": bytes(row.leaf_hash).hex(),
            "receipt": json.loads(bytes(row.data)),
        }

    typer.echo(json.dumps(_run(config, work), indent=2, ensure_ascii=False))
