"""`aicp cache warmup|stats|clear` and `aicp routes memory`, against a running gateway."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any

import typer

from aicp.cli.http import DEFAULT_URL, KeyOpt, UrlOpt, call

cache_app = typer.Typer(help="The answer cache (docs/caching.md).", no_args_is_help=True)
routes_app = typer.Typer(help="Route memory and learned routing (docs/routing.md).")


def _warm_request(line: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(path, body) of one line: a chat body, or `{"model", "question"}`; with
    `"protocol": "anthropic"` a Messages body."""
    line = dict(line)
    protocol = line.pop("protocol", "openai")
    if "question" in line:
        question = line.pop("question")
        line["messages"] = [{"role": "user", "content": question}]
    if protocol == "anthropic":
        line.setdefault("max_tokens", 1024)
        return "/v1/messages", line
    return "/v1/chat/completions", line


@cache_app.command("warmup")
def warmup(
    file: Annotated[Path, typer.Argument(help="JSON lines: chat bodies or {model, question}.")],
    concurrency: Annotated[int, typer.Option(min=1, max=32)] = 4,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
) -> None:
    """Send each request through the gateway to fill the cache (`x-aicp-cache: write`):
    the answers come from the providers, under the usual keys, policies and budgets."""
    try:
        lines = [json.loads(t) for t in file.read_text().splitlines() if t.strip()]
    except (OSError, ValueError) as exc:
        typer.echo(f"error: {file}: {exc}", err=True)
        raise typer.Exit(2) from None
    bad = [
        i + 1 for i, line in enumerate(lines) if not isinstance(line, dict) or "model" not in line
    ]
    if bad:
        typer.echo(f"error: {file}: lines {bad[:10]} are not objects with a model", err=True)
        raise typer.Exit(2)

    def one(line: dict[str, Any]) -> None:
        path, body = _warm_request(line)
        call(url, key, "POST", path, body, headers={"x-aicp-cache": "write"}, timeout=120)

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, lines))
    typer.echo(f"{len(lines)} requests sent; their answers are cached")


@cache_app.command("stats")
def stats(url: UrlOpt = DEFAULT_URL, key: KeyOpt = None) -> None:
    """Hits, misses and savings (admin key)."""
    typer.echo(json.dumps(call(url, key, "GET", "/admin/cache/stats"), indent=2))


@cache_app.command("clear")
def clear(
    model: str | None = None,
    user: Annotated[str | None, typer.Option(help="A user id.")] = None,
    key_id: Annotated[str | None, typer.Option(help="A key id.")] = None,
    everything: Annotated[bool, typer.Option("--all", help="Empty the whole cache.")] = False,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
) -> None:
    """Invalidate entries by model, user and/or key (admin key)."""
    params = {
        "model": model,
        "user_id": user,
        "key_id": key_id,
        "all": "true" if everything else None,
    }
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    done = call(url, key, "DELETE", f"/admin/cache?{query}")
    typer.echo(f"{done['deleted']} entries removed")


@routes_app.command("memory")
def routes_memory(
    task_class: Annotated[str | None, typer.Option("--task-class")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
) -> None:
    """What route memory knows per (task class, route) (admin key)."""
    query = "?" + urllib.parse.urlencode({"task_class": task_class}) if task_class else ""
    rows = call(url, key, "GET", f"/admin/routes/memory{query}")["data"]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    typer.echo(
        f"{'task class':<12} {'route':<36} {'n':>7} {'success':>8} {'p50 ms':>8} {'feedback':>8}"
    )
    for r in rows:
        rate = "-" if r["success_rate"] is None else f"{r['success_rate']:.1%}"
        lat = "-" if r["latency_ms"] is None else f"{r['latency_ms']:.0f}"
        fb = "-" if r["feedback"] is None else f"{r['feedback']:.2f}"
        typer.echo(
            f"{r['task_class']:<12} {r['route']:<36} {r['n']:>7.1f} {rate:>8} {lat:>8} {fb:>8}"
        )
