"""`aicp trace ID` and `aicp replay ID`: one request's timeline, and that request again.

`trace` reads the receipt from the configured database directly (it is for the
operator of the gateway's host, like `aicp db`); `replay` asks a running
gateway (POST /admin/replay) and shows the original and the replay side by
side, the fields that differ highlighted. docs/replay.md shows both.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from aicp.cli.db import run_database_job
from aicp.cli.http import DEFAULT_URL, UrlOpt, call
from aicp.cli.keys import JsonOpt, KeyOpt

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="aicp.yaml (else AICP_CONFIG and the environment)."),
]
#: Columns of a stage's bar at the request's full length.
BAR = 40


def trace(
    receipt_id: Annotated[str, typer.Argument(help="A receipt id (x-aicp-receipt-id).")],
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the receipt as JSON.")] = False,
) -> None:
    """One request as a timeline: who, which route, each stage, each attempt, the bodies."""
    receipt, kept = _load(config, receipt_id)
    if as_json:
        typer.echo(json.dumps(receipt, indent=2, sort_keys=True))
        return
    console = Console()
    for i, part in enumerate(timeline(receipt, kept)):
        if i:
            console.print()
        console.print(part)


def _load(config: Path | None, receipt_id: str) -> tuple[dict[str, Any], str]:
    """(the receipt, what is kept of its bodies) from the configured database."""
    from sqlalchemy import select

    from aicp.config import load_settings
    from aicp.storage.db import Database, database_url
    from aicp.storage.schema import receipt_bodies, receipts

    async def main() -> tuple[dict[str, Any], str] | None:
        settings = load_settings(config)
        db = Database(database_url(settings.storage))
        try:
            async with db.connect() as conn:
                row = (
                    await conn.execute(select(receipts.c.data).where(receipts.c.id == receipt_id))
                ).first()
                if row is None:
                    return None
                b = receipt_bodies.c
                found = (
                    await conn.execute(
                        select(b.kept, b.created_at).where(b.receipt_id == receipt_id)
                    )
                ).first()
        finally:
            await db.aclose()
        rs = settings.receipts
        if found is None:
            kept = f"not kept (receipts.bodies: {rs.bodies}, or deleted by retention)"
        elif rs.body_retention_days and found.created_at < time.time() - (
            rs.body_retention_days * 86400
        ):
            kept = f"{found.kept}, past retention ({rs.body_retention_days:g} days): deleted soon"
        else:
            kept = found.kept
        return json.loads(row.data), kept

    loaded = run_database_job(main)
    if loaded is None:
        typer.echo(f"error: no receipt {receipt_id} in this database", err=True)
        raise typer.Exit(1)
    return loaded


# --- the timeline ------------------------------------------------------------------


def _ms(us: int | None) -> str:
    return "-" if us is None else f"{us / 1000:.2f} ms"


def _usd(micros: int) -> str:
    return f"${micros / 1_000_000:.6f}"


def timeline(r: dict[str, Any], kept: str) -> list[Any]:
    """The renderables of `aicp trace`, top to bottom."""
    return [
        _header(r),
        _stages(r),
        _attempts(r),
        _decisions(r),
        _footer(r, kept),
    ]


def _header(r: dict[str, Any]) -> Table:
    p = r.get("principal") or {}
    route = r.get("route") or {}
    usage = r.get("usage") or {}
    lat = r.get("latency_us") or {}
    ep = r.get("endpoint") or {}
    err = r.get("error")
    who = p.get("key_prefix") or p.get("key_id") or "anonymous"
    if p.get("key_prefix") and p.get("key_id"):
        who += f" ({p['key_id']})"
    for name in ("user_id", "team_id", "project_id"):
        if p.get(name):
            who += f"  {name[:-3]} {p[name]}"
    served = route.get("served") or "-"
    chain = " > ".join(route.get("chain") or []) or "-"
    forced = "  (forced)" if route.get("forced") else ""
    status = str(r.get("status"))
    if err:
        status += f"  {err.get('kind')} {err.get('code') or ''}".rstrip()
    tokens = f"{usage.get('prompt_tokens', 0)} in"
    if usage.get("cached_tokens"):
        tokens += f" ({usage['cached_tokens']} cached)"
    tokens += f" / {usage.get('completion_tokens', 0)} out"
    stream = " stream" if ep.get("stream") else ""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("receipt", Text(f"{r.get('id')}  {r.get('mode')}", style="bold cyan"))
    grid.add_row("time", f"{r.get('started_at')} -> {r.get('ended_at')}")
    grid.add_row("endpoint", f"{ep.get('protocol')} {ep.get('operation')}{stream}")
    grid.add_row("principal", who)
    grid.add_row("model", f"{r.get('model')} -> {served}   chain {chain}{forced}")
    grid.add_row("status", Text(status, style="green" if r.get("status") == 200 else "red"))
    grid.add_row("cost", _usd(r.get("cost_micros") or 0))
    grid.add_row("tokens", tokens)
    grid.add_row(
        "latency",
        f"total {_ms(lat.get('total'))}   provider {_ms(lat.get('provider'))}   "
        f"ttft {_ms(lat.get('ttft'))}",
    )
    if r.get("labels"):
        grid.add_row("labels", "  ".join(f"{k} {v}" for k, v in r["labels"].items()))
    return grid


def bar(offset: int, duration: int, total: int, width: int = BAR) -> Text:
    """A stage as a bar on the request's timeline: blank up to its start, then its span."""
    total = max(total, 1)
    start = min(width - 1, offset * width // total)
    length = duration * width / total
    text = Text(" " * start)
    if length < 1:
        text.append("▏", style="dim")
    else:
        text.append("█" * round(length), style="magenta")
    return text


def _stages(r: dict[str, Any]) -> Table:
    stages = r.get("stages") or []
    total = (r.get("latency_us") or {}).get("total") or 0
    total = max([total, *(off + dur for _, off, dur in stages)])
    table = Table(title="stages", title_justify="left", box=None, pad_edge=False)
    table.add_column("stage")
    table.add_column("start", justify="right")
    table.add_column("took", justify="right")
    table.add_column(f"0 .. {_ms(total)}", no_wrap=True)
    for name, offset, duration in stages:
        table.add_row(name, _ms(offset), _ms(duration), bar(offset, duration, total))
    return table


def _attempts(r: dict[str, Any]) -> Table | Text:
    attempts = r.get("attempts") or []
    if not attempts:
        return Text("attempts: none (nothing was sent upstream)", style="dim")
    table = Table(title="upstream attempts", title_justify="left", box=None, pad_edge=False)
    for column in ("#", "deployment", "status", "error", "latency"):
        table.add_column(column)
    for i, a in enumerate(attempts, 1):
        ok = a.get("status") == 200
        table.add_row(
            str(i),
            a.get("deployment") or "-",
            Text(str(a.get("status") or "-"), style="green" if ok else "red"),
            a.get("error") or "-",
            _ms(a.get("latency_us")),
        )
    return table


def _decisions(r: dict[str, Any]) -> Table:
    table = Table(title="decisions", title_justify="left", box=None, pad_edge=False)
    table.add_column("stage")
    table.add_column("decision", overflow="fold")
    for stage, decision in r.get("decisions") or []:
        table.add_row(stage, json.dumps(decision, sort_keys=True))
    return table


def _footer(r: dict[str, Any], kept: str) -> Table:
    bodies = r.get("bodies") or {}
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    grid.add_row("request", str(bodies.get("request") or "-"))
    grid.add_row("response", str(bodies.get("response") or "-"))
    replayable = kept == "full"
    note = "  (aicp replay can re-run it)" if replayable else "  (cannot be replayed)"
    grid.add_row("bodies", Text(kept + note, style="green" if replayable else "yellow"))
    return grid


# --- replay --------------------------------------------------------------------------


def replay(
    receipt_id: Annotated[str, typer.Argument(help="The receipt of the request to re-run.")],
    route: Annotated[
        str | None, typer.Option("--route", "-r", help="Force this route (provider/model).")
    ] = None,
    mode: Annotated[
        str,
        typer.Option("--mode", "-m", help="simulate: decide, send nothing; live: send it again."),
    ] = "simulate",
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-run a stored request through a running gateway's path today, and compare."""
    if mode not in ("simulate", "live"):
        raise typer.BadParameter("simulate or live", param_hint="--mode")
    body: dict[str, Any] = {"receipt_id": receipt_id, "mode": mode}
    if route:
        body["route"] = route
    data = call(url, key, "POST", "/admin/replay", body)
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    console = Console()
    console.print(side_by_side(data, mode))
    for line in budget_lines(data["replay"].get("budget")):
        console.print(line)


def _cell(field: str, value: Any) -> str:
    if value is None:
        return "-"
    if field == "cost_usd":
        return f"${value:.6f}"
    if field == "latency_ms":
        return f"{value:.2f} ms"
    if isinstance(value, list):
        return " > ".join(map(str, value)) or "-"
    if isinstance(value, dict):  # an error
        return " ".join(str(value[k]) for k in ("code", "message") if value.get(k))
    return str(value)


ROWS = ("receipt_id", "route", "served", "status", "error", "cost_usd", "latency_ms", "output")


def side_by_side(data: dict[str, Any], mode: str) -> Table:
    before, after = data["original"], data["replay"]
    changed = {d["field"] for d in data.get("differences") or []}
    estimated = set(after.get("estimated") or [])
    table = Table(title=f"replay of {data['receipt_id']} ({mode})", title_justify="left")
    table.add_column("")
    table.add_column("original", overflow="fold")
    table.add_column("replay", overflow="fold")
    for field in ROWS:
        style = "bold yellow" if field in changed else None
        mark = " *" if field in changed else ""
        again = _cell(field, after.get(field))
        if field in estimated:
            again += " (estimate)"
        table.add_row(
            Text(field + mark, style=style or ""),
            Text(_cell(field, before.get(field)), style=style or ""),
            Text(again, style=style or ""),
        )
    if mode == "simulate":
        table.caption = "simulated: nothing was sent upstream"
    if changed:
        table.caption = (table.caption or "") + f"   * differs ({len(changed)})"
    else:
        table.caption = (table.caption or "") + "   no differences"
    return table


def budget_lines(budget: dict[str, Any] | None) -> list[Text]:
    """A simulation's budget check: the worst case against each budget's room."""
    if not budget:
        return []
    lines = [Text(f"budget: this request may cost up to ${budget['worst_case_usd']:.6f}")]
    for b in budget["budgets"]:
        room = b["remaining_usd"]
        left = "no hard limit" if room is None else f"${room:.6f} left"
        verdict, style = ("fits", "green") if b["fits"] else ("would be refused", "red")
        lines.append(Text(f"  {b['id']} ({b['scope']}): {left}, {verdict}", style=style))
    return lines
