"""`aicp spend`: the spend report of a running gateway, as a table."""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from aicp.cli.http import DEFAULT_URL, UrlOpt, call
from aicp.cli.keys import JsonOpt, KeyOpt, duration

GROUPS = ("key", "user", "team", "project", "model", "day")


def since_value(text: str) -> str:
    """'7d', '12h' (that long ago), an ISO date/time, or epoch seconds -> the query value."""
    if re.fullmatch(r"\s*\d+(\.\d+)?\s*[smhd]\s*", text):
        return str(int(time.time() - duration(text)))
    return text.strip()


def spend(
    by: Annotated[
        str, typer.Option("--by", help="key, user, team, project, model or day.")
    ] = "key",
    since: Annotated[
        str | None, typer.Option(help="From: 7d, 12h, 2025-03-01 or epoch seconds.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Until (exclusive), same forms.")] = None,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Spend from the ledger, grouped (a key sees only its own)."""
    if by not in GROUPS:
        raise typer.BadParameter(f"--by must be one of {', '.join(GROUPS)}")
    params = {"by": by}
    if since:
        params["since"] = since_value(since)
    if until:
        params["until"] = since_value(until)
    report = call(url, key, "GET", "/admin/spend?" + urllib.parse.urlencode(params))
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    Console().print(table(report))


def table(report: dict[str, Any]) -> Table:
    by = report["by"]
    t = Table(title=f"spend by {by}", show_footer=True)
    rows = report.get("data") or []
    t.add_column(by, footer="total")
    t.add_column("requests", justify="right", footer=str(sum(r["requests"] for r in rows)))
    t.add_column("prompt tokens", justify="right")
    t.add_column("completion tokens", justify="right")
    t.add_column("cost (USD)", justify="right", footer=_usd(report.get("total_usd", 0)))
    for r in rows:
        t.add_row(
            str(r.get(by) if r.get(by) is not None else "-"),
            str(r["requests"]),
            f"{r['prompt_tokens']:,}",
            f"{r['completion_tokens']:,}",
            _usd(r["cost_usd"]),
        )
    return t


def _usd(value: float) -> str:
    return f"${value:,.6f}".rstrip("0").rstrip(".") if value else "$0"
