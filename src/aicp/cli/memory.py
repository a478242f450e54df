"""`aicp memory add|search|show|history`: project and global memory of a running gateway."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Annotated, Any

import typer

from aicp.cli.http import DEFAULT_URL, KeyOpt, UrlOpt, call

memory_app = typer.Typer(help="Project and global memory (docs/memory.md).", no_args_is_help=True)


def _call(url: str, key: str | None, path: str, body: dict[str, Any] | None = None) -> Any:
    return call(url, key, "GET" if body is None else "POST", path, body)


def _line(e: dict[str, Any]) -> str:
    project = e.get("project_id") or "global"
    tags = f" [{', '.join(e['tags'])}]" if e.get("tags") else ""
    return f"{e['id']} v{e['version']} {e['kind']:<8} {project:<16} {e['title']}{tags}"


@memory_app.command("add")
def add(
    title: Annotated[str, typer.Argument(help="A short title.")],
    text: Annotated[str, typer.Argument(help="The entry; '-' reads it from stdin.")],
    kind: Annotated[
        str, typer.Option(help="decision, context, handoff, runbook or note.")
    ] = "note",
    project: Annotated[str | None, typer.Option(help="Project id (default: the key's).")] = None,
    is_global: Annotated[bool, typer.Option("--global", help="Global memory (admin).")] = False,
    tag: Annotated[list[str] | None, typer.Option(help="A tag (repeatable).")] = None,
    update: Annotated[str | None, typer.Option(help="Add a new version of this entry id.")] = None,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
) -> None:
    """Store an entry (or, with --update ID, its next version)."""
    if text == "-":
        import sys

        text = sys.stdin.read()
    body: dict[str, Any] = {"title": title, "text": text, "kind": kind, "tags": tag or []}
    if project:
        body["project_id"] = project
    if is_global:
        body["global"] = True
    path = "/v1/memory" if update is None else f"/v1/memory/{urllib.parse.quote(update)}"
    typer.echo(_line(_call(url, key, path, body)))


@memory_app.command("search")
def search(
    query: Annotated[str, typer.Argument(help="Words to look for.")] = "",
    project: Annotated[str | None, typer.Option(help="Project id (default: the key's).")] = None,
    limit: int = 10,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
) -> None:
    """The best entries for QUERY in a project and global memory."""
    params: dict[str, Any] = {"q": query, "limit": limit}
    if project:
        params["project_id"] = project
    found = _call(url, key, "/v1/memory?" + urllib.parse.urlencode(params))["data"]
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    for e in found:
        typer.echo(f"{e['score']:7.3f}  {_line(e)}")


@memory_app.command("show")
def show(entry: str, url: UrlOpt = DEFAULT_URL, key: KeyOpt = None) -> None:
    """An entry's latest version, in full."""
    e = _call(url, key, f"/v1/memory/{urllib.parse.quote(entry)}")
    typer.echo(_line(e))
    typer.echo(f"by {e.get('author') or '-'}{' (retired)' if e.get('retired') else ''}\n")
    typer.echo(e["text"])


@memory_app.command("history")
def history(entry: str, url: UrlOpt = DEFAULT_URL, key: KeyOpt = None) -> None:
    """Every version of an entry, oldest first."""
    for e in _call(url, key, f"/v1/memory/{urllib.parse.quote(entry)}/history")["data"]:
        typer.echo(_line(e))
        typer.echo("    " + e["text"].replace("\n", "\n    "))
