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
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url.rstrip("/") + path, data=data, method=method)
    req.add_header("content-type", "application/json")
    if key:
        req.add_header("authorization", f"Bearer {key}")
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        raw = exc.read().decode("utf-8", "replace")
        try:
            message = json.loads(raw)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = raw
        typer.echo(f"error: HTTP {exc.code}: {message}", err=True)
    except urllib.error.URLError as exc:
        typer.echo(f"error: cannot reach the gateway: {exc.reason}", err=True)
    raise typer.Exit(1)
