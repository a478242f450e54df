"""`aicp pipeline validate|run|status|list|cancel|pause|resume|approve` (docs/pipelines.md).

`validate` compiles a file here, with no gateway. Everything else talks to a
running gateway, which runs the pipelines: `run` sends a YAML file's text, a
`module:function` (imported by the gateway: admin keys only) or the name of a
pipeline registered with `POST /v1/pipelines`.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from pathlib import Path
from typing import Annotated, Any

import typer

from aicp.cli.http import DEFAULT_URL, KeyOpt, UrlOpt, call

pipeline_app = typer.Typer(help="Durable pipelines (docs/pipelines.md).", no_args_is_help=True)

FINAL = frozenset({"succeeded", "failed", "cancelled"})
#: How often --watch asks for the run's state.
POLL_S = 0.5


def target_body(target: str) -> dict[str, Any]:
    """What POST /v1/pipelines/runs is told to run: a YAML file's text, an import path
    (a `path/to/file.py:function` becomes `path.to.file:function`), or a registered name."""
    if target.endswith((".yaml", ".yml")):
        path = Path(target)
        try:
            return {"yaml": path.read_text(encoding="utf-8"), "path": str(path)}
        except OSError as exc:
            typer.echo(f"error: cannot read {target}: {exc}", err=True)
            raise typer.Exit(2) from None
    module, colon, function = target.rpartition(":")
    if colon and module.endswith(".py"):
        module = module[: -len(".py")].replace("/", ".").strip(".")
    if colon:
        return {"ref": f"{module}:{function}"}
    return {"pipeline": target}


def parse_params(items: list[str] | None) -> dict[str, Any]:
    """`k=v` pairs; a value that parses as JSON is that value (numbers, lists...)."""
    out: dict[str, Any] = {}
    for item in items or []:
        name, eq, raw = item.partition("=")
        if not eq or not name:
            typer.echo(f"error: --param {item!r}: expected NAME=VALUE", err=True)
            raise typer.Exit(2)
        try:
            out[name] = json.loads(raw)
        except ValueError:
            out[name] = raw
    return out


@pipeline_app.command("validate")
def validate(
    target: Annotated[str, typer.Argument(help="A YAML file or module:function.")],
) -> None:
    """Compile a pipeline and report every problem with its stage and line."""
    from aicp.errors import AicpError
    from aicp.pipeline.load import load_pipeline

    _importable_here()
    try:
        pipeline = load_pipeline(target)
    except AicpError as err:
        typer.echo(f"error: {err.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{pipeline.name}: valid, {len(pipeline.stages)} stages")
    for stage in pipeline.stages.values():
        after = f" after {', '.join(stage.depends_on)}" if stage.depends_on else ""
        typer.echo(f"  {stage.name} ({stage.type}){after}")


@pipeline_app.command("run")
def run(
    target: Annotated[str, typer.Argument(help="FILE.yaml, module:function or a registered name.")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="NAME=VALUE.")] = None,
    watch: Annotated[bool, typer.Option(help="Follow the run until it ends.")] = False,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
) -> None:
    """Start a run on the gateway; with --watch, show its stages live until it ends."""
    body = {**target_body(target), "params": parse_params(param)}
    started = call(url, key, "POST", "/v1/pipelines/runs", body)
    typer.echo(f"run {started['id']} of {started['pipeline']}: {started['status']}")
    if watch:
        final = follow(url, key, started["id"])
        raise typer.Exit(0 if final["status"] == "succeeded" else 1)


def follow(url: str, key: str | None, run_id: str) -> dict[str, Any]:
    """Redraw the run's stages until it ends (or waits for an approval: say how)."""
    from rich.console import Console
    from rich.live import Live

    console = Console()
    told: set[str] = set()
    with Live(console=console, refresh_per_second=4, transient=False) as live:
        while True:
            got = call(url, key, "GET", f"/v1/pipelines/runs/{_q(run_id)}")
            live.update(progress_table(got))
            if got["status"] == "waiting_approval":
                for stage in waiting_for(url, key, run_id):
                    if stage not in told:
                        told.add(stage)
                        console.print(f"waiting: aicp pipeline approve {run_id} {stage}")
            if got["status"] in FINAL:
                break
            time.sleep(POLL_S)
    if got.get("error"):
        console.print(f"[red]{got['error']}[/red]")
    console.print(f"{got['status']}: cost ${got.get('cost_usd', 0):.6f}")
    return dict(got)


def waiting_for(url: str, key: str | None, run_id: str) -> list[str]:
    pending = call(url, key, "GET", f"/v1/approvals?run_id={_q(run_id)}")["data"]
    return [p["stage"] for p in pending]


def progress_table(run: dict[str, Any]) -> Any:
    from rich.table import Table

    table = Table(title=f"{run['pipeline']} {run['id']}: {run['status']}")
    for column in ("stage", "status", "attempts", "seconds", "cost $"):
        table.add_column(column)
    for s in run.get("stages", {}).values():
        took = ""
        if s.get("started_at") and s.get("finished_at"):
            took = f"{s['finished_at'] - s['started_at']:.2f}"
        table.add_row(
            s["stage"], s["status"], str(s.get("attempts", 0)), took, f"{s.get('cost_usd', 0):.6f}"
        )
    return table


@pipeline_app.command("status")
def status(
    run_id: str,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
) -> None:
    """A run's state, stage by stage."""
    got = call(url, key, "GET", f"/v1/pipelines/runs/{_q(run_id)}")
    if as_json:
        typer.echo(json.dumps(got, indent=2))
        return
    from rich.console import Console

    Console().print(progress_table(got))
    if got.get("error"):
        typer.echo(f"error: {got['error']}")


@pipeline_app.command("list")
def list_runs(
    pipeline: Annotated[str | None, typer.Option(help="Only runs of this pipeline.")] = None,
    run_status: Annotated[str | None, typer.Option("--status", help="Only in this status.")] = None,
    limit: int = 20,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
) -> None:
    """Recent runs, newest first."""
    params = {"limit": limit, "pipeline": pipeline, "status": run_status}
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    for r in call(url, key, "GET", f"/v1/pipelines/runs?{query}")["data"]:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["created_at"]))
        cost = r.get("cost_usd", 0)
        typer.echo(f"{r['id']}  {r['pipeline']:<24} {r['status']:<17} {created}  ${cost:.6f}")


def _control(action: str) -> Any:
    def command(run_id: str, url: UrlOpt = DEFAULT_URL, key: KeyOpt = None) -> None:
        got = call(url, key, "POST", f"/v1/pipelines/runs/{_q(run_id)}/{action}", {})
        typer.echo(f"run {got['id']}: {got['status']}")

    command.__doc__ = {
        "cancel": "Cancel a run (it never resumes).",
        "pause": "Pause a run: running stages finish, no new one starts.",
        "resume": "Resume a paused run from its checkpoints.",
    }[action]
    return command


for _action in ("cancel", "pause", "resume"):
    pipeline_app.command(_action)(_control(_action))


@pipeline_app.command("approve")
def approve(
    run_id: str,
    stage: Annotated[
        str | None, typer.Argument(help="The approval stage (default: the one waiting).")
    ] = None,
    reject: Annotated[bool, typer.Option("--reject", help="Reject instead.")] = False,
    comment: Annotated[str | None, typer.Option(help="Why.")] = None,
    url: UrlOpt = DEFAULT_URL,
    key: KeyOpt = None,
) -> None:
    """Decide an approval a run waits for."""
    if stage is None:
        pending = waiting_for(url, key, run_id)
        if len(pending) != 1:
            names = ", ".join(pending) or "none"
            typer.echo(f"error: name the stage: the run waits for {names}", err=True)
            raise typer.Exit(2)
        stage = pending[0]
    body = {"approve": not reject, "comment": comment}
    got = call(url, key, "POST", f"/v1/approvals/{_q(run_id)}/{_q(stage)}", body)
    typer.echo(f"{got['stage']} of run {got['run_id']}: {got['status']}")


def _importable_here() -> None:
    """Modules are found from the working directory, as the gateway finds them."""
    import os
    import sys

    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")
