"""`aicp registry list|register|promote|rollback|history`: the model registry of a running
gateway (MLflow registered models whose production version drives a gateway alias)."""

from __future__ import annotations

import json
import urllib.parse
from typing import Annotated, Any

import typer

from aicp.cli.http import DEFAULT_URL, KeyOpt, UrlOpt, call

registry_app = typer.Typer(
    help="The model registry: versions, promotion, rollback (docs/pipelines.md).",
    no_args_is_help=True,
)


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


@registry_app.command("list")
def list_models(
    name: Annotated[str | None, typer.Argument(help="One registered model.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
) -> None:
    """Registered models, their versions and which one is in production."""
    path = "/v1/registry/models" if name is None else f"/v1/registry/models/{_q(name)}"
    got = call(url, key, "GET", path)
    models = got["data"] if name is None else [got]
    if as_json:
        typer.echo(json.dumps(models, indent=2))
        return
    for m in models:
        prod = m.get("production") or "-"
        typer.echo(f"{m['name']}  alias {m.get('gateway_alias')}  production v{prod}")
        for v in m.get("versions", []):
            aliases = f" [{', '.join(v['aliases'])}]" if v.get("aliases") else ""
            typer.echo(f"  v{v['version']}  {v.get('target')}{aliases}")


@registry_app.command("register")
def register(
    name: str,
    target: Annotated[str, typer.Option(help="The gateway model it serves, e.g. openai/gpt-4o.")],
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="A request parameter NAME=VALUE.")
    ] = None,
    alias: Annotated[str | None, typer.Option(help="The gateway alias it drives.")] = None,
    run_id: Annotated[str | None, typer.Option(help="The MLflow run that produced it.")] = None,
    staging: Annotated[bool, typer.Option(help="Point the staging alias at it.")] = False,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
) -> None:
    """Register a new version of NAME that points to a gateway route."""
    from aicp.cli.pipeline import parse_params

    body: dict[str, Any] = {"target": target, "params": parse_params(param)}
    if alias:
        body["alias"] = alias
    if run_id:
        body["run_id"] = run_id
    if staging:
        body["stage"] = "staging"
    got = call(url, key, "POST", f"/v1/registry/models/{_q(name)}/versions", body)
    typer.echo(f"{got['name']} v{got['version']} -> {got['target']}")


@registry_app.command("promote")
def promote(
    name: str,
    version: Annotated[str | None, typer.Argument(help="The version (or use --from).")] = None,
    from_alias: Annotated[str | None, typer.Option("--from", help="e.g. staging.")] = None,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
) -> None:
    """Make a version production: the gateway alias serves it within a second."""
    body: dict[str, Any] = {}
    if version:
        body["version"] = version
    if from_alias:
        body["from"] = from_alias
    got = call(url, key, "POST", f"/v1/registry/models/{_q(name)}/promote", body)
    was = got.get("previous_version") or "none"
    moved = f"{got['gateway_alias']} -> {got['target']}"
    typer.echo(f"{got['name']}: production v{got['version']} (was {was}); {moved}")


@registry_app.command("rollback")
def rollback(name: str, url: UrlOpt = DEFAULT_URL, key: KeyOpt = None) -> None:
    """Move production back to the version before the current one."""
    got = call(url, key, "POST", f"/v1/registry/models/{_q(name)}/rollback", {})
    typer.echo(f"{got['name']}: production v{got['version']} (was {got.get('previous_version')})")


@registry_app.command("history")
def history(name: str, url: UrlOpt = DEFAULT_URL, key: KeyOpt = None) -> None:
    """Every register, promote and rollback of NAME, oldest first."""
    for r in call(url, key, "GET", f"/v1/registry/models/{_q(name)}/history")["data"]:
        typer.echo(
            f"{r['seq']:>5} {r['action']:<10} v{r.get('version')} "
            f"(was {r.get('previous_version') or '-'}) by {r.get('actor') or '-'}"
        )
