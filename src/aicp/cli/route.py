"""`aicp route simulate` and `aicp route compare`: ask a running gateway what it would
do with a prompt, or run the same prompt on several routes side by side."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from aicp.cli.http import DEFAULT_URL, KeyOpt, UrlOpt, _fail, _request

route_app = typer.Typer(no_args_is_help=True, help="What the gateway decides for a request.")

ModelOpt = Annotated[str, typer.Option("--model", "-m", help="The model, alias or group.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the raw JSON.")]


def _body(prompt: str, model: str, max_tokens: int | None) -> dict[str, object]:
    body: dict[str, object] = {"model": model, "messages": [{"role": "user", "content": prompt}]}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    return body


@route_app.command()
def simulate(
    prompt: str,
    model: ModelOpt = "default",
    max_tokens: Annotated[int | None, typer.Option("--max-tokens")] = None,
    offline: Annotated[bool, typer.Option("--offline", help="As in offline mode.")] = False,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every decision for PROMPT (class, sensitivity, findings, allowed and forbidden routes
    with the policies that decided, the route and its fallbacks, the estimate); nothing is
    sent to any provider."""
    req = _request(url.rstrip("/") + "/v1/route/simulate", key, _body(prompt, model, max_tokens))
    if offline:
        req.add_header("x-aicp-mode", "simulate, offline")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            record = json.loads(resp.read())
    except urllib.error.URLError as exc:
        raise _fail(exc) from None
    if as_json:
        typer.echo(json.dumps(record, indent=2))
        return
    _print_record(record)


def _print_record(r: dict[str, Any]) -> None:
    console = Console()
    c = r["classification"]
    console.print(
        f"[bold]{r['model']}[/]  class {c['task_class']}  sensitivity {c['sensitivity']}  "
        f"trust {c['trust']}{'  offline' if r.get('offline') else ''}"
    )
    for f in r.get("findings") or ():
        console.print(f"  finding: {f['detector']}/{f['kind']} -> {f['action']}")
    policy = r.get("policy")
    if policy is not None:
        table = Table("route", "verdict", "policies")
        for route in policy["allowed"]:
            ids = policy["permitted_by"].get(route, [])
            mark = " (preferred)" if route in policy["preferred"] else ""
            table.add_row(route, "allowed" + mark, ", ".join(ids))
        for route, ids in policy["forbidden"].items():
            table.add_row(route, "[red]forbidden[/]", ", ".join(ids) or "no permit")
        console.print(table)
    route = r["route"]
    console.print(f"chosen: {route['chosen']}  fallbacks: {', '.join(route['fallbacks']) or '-'}")
    est = r["estimate"]
    cost = est.get("cost_usd_max")
    console.print(
        f"estimate: {est['prompt_tokens']} prompt tokens, up to {est['max_output_tokens']} out"
        + (f", at most ${cost:.6f}" if cost is not None else "")
    )
    outcome = r["outcome"]
    if outcome["error"] is not None:
        err = outcome["error"]
        failing = f"would fail: {outcome['status']} {err['code']}: {err['message']}"
        console.print(Text(failing, style="red"))


def _cost(url: str, key: str | None, receipt_id: str | None) -> float | None:
    """The request's cost from its receipt (a key reads its own receipts)."""
    if not receipt_id:
        return None
    req = _request(f"{url.rstrip('/')}/v1/receipts/{receipt_id}", key)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            micros = json.loads(resp.read())["receipt"]["cost_micros"]
    except (urllib.error.URLError, KeyError, ValueError):
        return None
    return int(micros) / 1_000_000


@route_app.command()
def compare(
    prompt: str,
    routes: Annotated[str, typer.Option("--routes", help="Comma-separated provider/model list.")],
    max_tokens: Annotated[int | None, typer.Option("--max-tokens")] = None,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run PROMPT on each route (live: every run is billed and has its receipt) and show
    the outputs, latencies and costs side by side. Forcing routes needs a key allowed to."""
    names = [r.strip() for r in routes.split(",") if r.strip()]
    if not names:
        raise typer.BadParameter("name at least one route", param_hint="--routes")
    base = url.rstrip("/") + "/v1/chat/completions"

    def one(route: str) -> dict[str, Any]:
        req = _request(base, key, _body(prompt, route, max_tokens))
        req.add_header("x-aicp-route", route)
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(req, timeout=600) as resp:
                data = json.loads(resp.read())
                receipt = resp.headers.get("x-aicp-receipt-id")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:300]
            return {"route": route, "error": f"HTTP {exc.code}: {detail}"}
        except urllib.error.URLError as exc:
            raise _fail(exc) from None
        message = data["choices"][0]["message"]
        return {
            "route": route,
            "output": message.get("content") or json.dumps(message.get("tool_calls")),
            "latency_ms": round((time.perf_counter() - started) * 1000, 1),
            "usage": data.get("usage"),
            "cost_usd": _cost(url, key, receipt),
            "receipt_id": receipt,
        }

    with ThreadPoolExecutor(max_workers=min(8, len(names))) as pool:
        results = list(pool.map(one, names))
    if as_json:
        typer.echo(json.dumps(results, indent=2))
        return
    table = Table("route", "latency ms", "tokens in/out", "cost $", "output", show_lines=True)
    for r in results:
        if "error" in r:
            table.add_row(r["route"], "-", "-", "-", Text(r["error"], style="red"))
            continue
        u = r["usage"] or {}
        tokens = f"{u.get('prompt_tokens', '?')}/{u.get('completion_tokens', '?')}"
        cost = "-" if r["cost_usd"] is None else f"{r['cost_usd']:.6f}"
        table.add_row(r["route"], str(r["latency_ms"]), tokens, cost, Text(r["output"] or ""))
    Console().print(table)
