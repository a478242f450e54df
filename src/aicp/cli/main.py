"""The `aicp` command line."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Annotated, Any

import typer

from aicp.cli.cache import cache_app, routes_app
from aicp.cli.db import db_app
from aicp.cli.http import DEFAULT_URL, KeyOpt, UrlOpt, _fail, _request
from aicp.cli.keys import keys_app, teams_app
from aicp.cli.memory import memory_app
from aicp.cli.pipeline import pipeline_app
from aicp.cli.policy import policy_app
from aicp.cli.receipts import receipts_app
from aicp.cli.registry import registry_app
from aicp.cli.route import route_app
from aicp.cli.spend import spend
from aicp.cli.trace import replay, trace
from aicp.errors import AicpError, ConfigError

app = typer.Typer(no_args_is_help=True, add_completion=False, help="aicp: the AI control plane.")
config_app = typer.Typer(no_args_is_help=True, help="Work with aicp.yaml files.")
app.add_typer(config_app, name="config")
app.add_typer(keys_app, name="keys")
app.add_typer(teams_app, name="teams")
app.add_typer(db_app, name="db")
app.add_typer(receipts_app, name="receipts")
app.command(name="spend")(spend)
app.command(name="trace")(trace)
app.command(name="replay")(replay)

app.add_typer(route_app, name="route")
app.add_typer(policy_app, name="policy")
app.add_typer(memory_app, name="memory")
app.add_typer(cache_app, name="cache")
app.add_typer(routes_app, name="routes")
app.add_typer(pipeline_app, name="pipeline")
app.add_typer(registry_app, name="registry")


@app.command()
def serve(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="aicp.yaml")] = None,
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 4000).")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
    log_level: Annotated[
        str,
        typer.Option(help="uvicorn's log level; aicp's is observability.logging.level."),
    ] = "info",
) -> None:
    """Start the gateway."""
    import uvicorn

    from aicp.accounting.auth import check_exposure
    from aicp.app import create_app
    from aicp.config import load_settings

    if config is not None:
        os.environ["AICP_CONFIG"] = str(config)
    try:
        settings = load_settings(config, host=host, port=port, workers=workers)
        check_exposure(settings)
    except ConfigError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None
    from aicp.observability.logging import configure_logging

    # uvicorn's loggers propagate to the root logger, so its lines share aicp's format.
    configure_logging(settings.observability.logging)
    server = settings.server
    options: dict[str, Any] = {
        "log_config": None,
        "host": server.host,
        "port": server.port,
        "loop": "uvloop" if sys.platform != "win32" else "asyncio",
        "http": "httptools",
        "access_log": False,
        "log_level": log_level,
        "lifespan": "on",
    }
    if server.workers > 1:
        # Workers build their own app from the same environment and file.
        if settings.observability.metrics:
            from aicp.observability.metrics import prepare_multiprocess

            # Before the workers start: they choose prometheus_client's mode on import.
            prepare_multiprocess(settings.storage.data_dir)
        uvicorn.run("aicp.app:factory", factory=True, workers=server.workers, **options)
    else:
        uvicorn.run(create_app(settings), **options)


@app.command()
def chat(
    prompt: str,
    model: Annotated[str, typer.Option("--model", "-m")] = "mock/mock-1",
    stream: Annotated[bool, typer.Option("--stream")] = False,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
) -> None:
    """Send one prompt through a running gateway and print the answer."""
    body: dict[str, object] = {"model": model, "messages": [{"role": "user", "content": prompt}]}
    if stream:
        body["stream"] = True
    req = _request(url.rstrip("/") + "/v1/chat/completions", key, body)
    try:
        with urllib.request.urlopen(req, timeout=600) as resp:
            if not stream:
                data = json.loads(resp.read())
                typer.echo(
                    data["choices"][0]["message"].get("content")
                    or json.dumps(data["choices"][0]["message"].get("tool_calls"))
                )
                return
            for raw in resp:
                line = raw.decode("utf-8").strip()
                if not line.startswith("data:") or line == "data: [DONE]":
                    continue
                event = json.loads(line[5:])
                if "error" in event:
                    typer.echo(f"\nerror: {event['error'].get('message')}", err=True)
                    raise typer.Exit(1)
                for choice in event.get("choices", []):
                    sys.stdout.write(choice.get("delta", {}).get("content") or "")
                    sys.stdout.flush()
            sys.stdout.write("\n")
    except urllib.error.URLError as exc:
        raise _fail(exc) from None


@app.command()
def models(url: UrlOpt = DEFAULT_URL, key: KeyOpt = None) -> None:
    """List the models a running gateway serves."""
    try:
        with urllib.request.urlopen(_request(url.rstrip("/") + "/v1/models", key), timeout=30) as r:
            data = json.loads(r.read())
    except urllib.error.URLError as exc:
        raise _fail(exc) from None
    for item in data.get("data", []):
        typer.echo(item["id"])


@config_app.command("validate")
def config_validate(file: Path) -> None:
    """Check an aicp.yaml file: keys, types, providers, models, aliases, groups."""
    import asyncio

    from aicp.config import load_settings
    from aicp.guardrails.output import output_checks
    from aicp.guardrails.stages import input_checks
    from aicp.policy.policyset import PolicySet
    from aicp.providers import registry
    from aicp.providers.http import HttpClient
    from aicp.routing.router import Router

    async def check() -> str:
        settings = load_settings(file)
        http = HttpClient()
        try:
            providers = {n: registry.create(n, p, http) for n, p in settings.providers.items()}
            catalog = {n: list(p.models) for n, p in settings.providers.items()}
            router = Router(settings, providers, catalog)
        finally:
            await http.aclose()
        # What the gateway builds at start-up from the rest of the file: detector kinds,
        # the policy set (the pack and `policy.dir`, against the schema).
        input_checks(settings.guardrails)
        output_checks(settings.guardrails)
        policies = ""
        if settings.policy.enabled:
            loaded = PolicySet.load(
                Path(settings.policy.dir) if settings.policy.dir else None,
                pack=settings.policy.pack,
            )
            policies = f", {len(loaded.ids)} policies"
        return (
            f"{file}: ok ({len(settings.providers)} providers, {len(settings.models)} models, "
            f"{len(settings.aliases)} aliases, {len(settings.groups)} groups; "
            f"{len(router.model_names())} names served{policies})"
        )

    try:
        typer.echo(asyncio.run(check()))
    except AicpError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None


if __name__ == "__main__":
    app()
