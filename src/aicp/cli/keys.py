"""`aicp keys ...` and `aicp teams ...`: the admin API of a running gateway, as tables."""

from __future__ import annotations

import json
import re
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from aicp.cli.http import DEFAULT_URL, UrlOpt, call

keys_app = typer.Typer(no_args_is_help=True, help="Create, list, rotate and revoke virtual keys.")
teams_app = typer.Typer(no_args_is_help=True, help="Create and list teams.")

#: Admin commands: the key they need is an admin's.
KeyOpt = Annotated[
    str | None,
    typer.Option("--key", envvar="AICP_API_KEY", help="An admin key (or the master key)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> float:
    """'90', '90s', '15m', '12h', '30d' -> seconds."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not found:
        raise typer.BadParameter(f"{text!r} is not a duration such as 90s, 15m, 12h or 30d")
    return float(found.group(1)) * _UNITS[found.group(2) or "s"]


def _when(value: Any) -> str:
    if not isinstance(value, int | float):
        return "-"
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(value))


def _table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def _key_rows(keys: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            k["id"],
            k["name"],
            k["display"],
            k.get("user_id") or k.get("service_account_id") or "-",
            k.get("team_id") or "-",
            ", ".join(k.get("models") or []) or "all",
            str(k.get("rpm") or "-"),
            str(k.get("tpm") or "-"),
            k.get("status", "?"),
            _when(k.get("expires_at")),
        ]
        for k in keys
    ]


KEY_COLUMNS = ["id", "name", "key", "owner", "team", "models", "rpm", "tpm", "status", "expires"]


def _show_new(record: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(record, indent=2))
        return
    _table("new key", KEY_COLUMNS, _key_rows([record]))
    typer.echo("\nThe key (shown once; store it now):\n")
    typer.echo(record["key"])


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option("--name", "-n", help="A name to recognise the key.")],
    models: Annotated[
        list[str] | None, typer.Option("--model", "-m", help="Allowed model (repeat).")
    ] = None,
    user: Annotated[str | None, typer.Option("--user", help="Owning user id.")] = None,
    service_account: Annotated[
        str | None, typer.Option("--service-account", help="Owning service account id.")
    ] = None,
    team: Annotated[str | None, typer.Option("--team", help="Team id.")] = None,
    project: Annotated[str | None, typer.Option("--project", help="Project id.")] = None,
    rpm: Annotated[int | None, typer.Option(help="Requests per minute.")] = None,
    tpm: Annotated[int | None, typer.Option(help="Tokens per minute.")] = None,
    budget_usd: Annotated[float | None, typer.Option("--budget-usd", help="Hard budget.")] = None,
    budget_period: Annotated[
        str, typer.Option("--budget-period", help="daily, weekly, monthly or total.")
    ] = "monthly",
    expires_in: Annotated[
        str | None, typer.Option("--expires-in", help="e.g. 30d, 12h, 3600.")
    ] = None,
    admin: Annotated[bool, typer.Option("--admin", help="May use the admin API.")] = False,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a key and print it (once)."""
    body: dict[str, Any] = {"name": name, "is_admin": admin}
    for field, value in (
        ("models", models),
        ("user_id", user),
        ("service_account_id", service_account),
        ("team_id", team),
        ("project_id", project),
        ("rpm", rpm),
        ("tpm", tpm),
        ("budget_usd", budget_usd),
    ):
        if value is not None:
            body[field] = value
    if budget_usd is not None:
        body["budget_period"] = budget_period
    if expires_in is not None:
        body["expires_in"] = duration(expires_in)
    _show_new(call(url, key, "POST", "/admin/keys", body), as_json)


@keys_app.command("list")
def keys_list(
    team: Annotated[str | None, typer.Option("--team", help="Only this team's keys.")] = None,
    user: Annotated[str | None, typer.Option("--user", help="Only this user's keys.")] = None,
    revoked: Annotated[bool, typer.Option("--revoked", help="Include revoked keys.")] = False,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List keys (their display form, never the keys)."""
    params = [f"{n}={v}" for n, v in (("team_id", team), ("user_id", user)) if v]
    if revoked:
        params.append("include_revoked=true")
    path = "/admin/keys" + ("?" + "&".join(params) if params else "")
    data = call(url, key, "GET", path)["data"]
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    _table("keys", KEY_COLUMNS, _key_rows(data))


@keys_app.command("revoke")
def keys_revoke(key_id: str, url: UrlOpt = DEFAULT_URL, key: KeyOpt = None) -> None:
    """Revoke a key by id; every gateway process refuses it within a second."""
    record = call(url, key, "POST", f"/admin/keys/{key_id}/revoke")
    typer.echo(f"revoked {record['id']} ({record['display']})")


@keys_app.command("rotate")
def keys_rotate(
    key_id: str,
    grace: Annotated[
        str, typer.Option("--grace", help="How long the old key stays valid, e.g. 1h.")
    ] = "0",
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Replace a key with a new one with the same settings and print the new key (once)."""
    body = {"grace_seconds": duration(grace)}
    _show_new(call(url, key, "POST", f"/admin/keys/{key_id}/rotate", body), as_json)


@teams_app.command("create")
def teams_create(
    name: str, url: UrlOpt = DEFAULT_URL, key: KeyOpt = None, as_json: JsonOpt = False
) -> None:
    """Create a team."""
    team = call(url, key, "POST", "/admin/teams", {"name": name})
    if as_json:
        typer.echo(json.dumps(team, indent=2))
        return
    _table("new team", ["id", "name"], [[team["id"], team["name"]]])


@teams_app.command("list")
def teams_list(url: UrlOpt = DEFAULT_URL, key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """List teams."""
    data = call(url, key, "GET", "/admin/teams")["data"]
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    _table(
        "teams",
        ["id", "name", "created"],
        [[t["id"], t["name"], _when(t["created_at"])] for t in data],
    )
