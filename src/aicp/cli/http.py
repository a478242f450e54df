"""Talking to a running gateway from the command line (stdlib HTTP: no client on import)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Annotated, Any

import typer

DEFAULT_URL = "http://127.0.0.1:4000"
UrlOpt = Annotated[str, typer.Option("--url", envvar="AICP_URL", help="The gateway's base URL.")]
KeyOpt = Annotated[
    str | None, typer.Option("--key", envvar="AICP_API_KEY", help="API key for the gateway.")
]


def _request(
    url: str, key: str | None, body: dict[str, object] | None = None
) -> urllib.request.Request:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    req.add_header("content-type", "application/json")
    if key:
        req.add_header("authorization", f"Bearer {key}")
    return req


def _fail(exc: urllib.error.URLError) -> typer.Exit:
    if isinstance(exc, urllib.error.HTTPError):
        detail = exc.read().decode("utf-8", "replace")
        typer.echo(f"error: HTTP {exc.code}: {detail}", err=True)
    else:
        typer.echo(f"error: cannot reach the gateway: {exc.reason}", err=True)
    return typer.Exit(1)


def call(
    url: str,
    key: str | None,
    method: str,
    path: str,
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> Any:
    """One API call; an HTTP error is printed with its message and exits 1."""
    from aicp.pipeline.client import ClientError, request_json

    try:
        return request_json(url, key, method, path, body, headers=headers, timeout=timeout)
    except ClientError as exc:
        if exc.status is None:
            typer.echo(f"error: {exc.message}", err=True)
        else:
            typer.echo(f"error: HTTP {exc.status}: {exc.message}", err=True)
    raise typer.Exit(1)
