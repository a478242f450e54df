"""Shared helpers for the test suite."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import openai
from openai.types.chat import ChatCompletionChunk

from aicp.config import Settings, load_settings
from aicp.testing import FakeUpstream


def run_cli(url: str, key: str, *args: str, code: int = 0) -> str:
    """`aicp ARGS --url URL --key KEY` through typer's test runner, its exit code checked:
    what it printed to stdout, or everything it printed when it is to fail (errors go to
    stderr)."""
    from typer.testing import CliRunner

    from aicp.cli.main import app

    result = CliRunner().invoke(app, [*args, "--url", url, "--key", key])
    assert result.exit_code == code, result.output
    return result.stdout if code == 0 else result.output


def make_settings(
    data: dict[str, Any] | None = None, env: dict[str, str] | None = None
) -> Settings:
    """Settings from a dict shaped like aicp.yaml, ignoring the real environment."""
    import tempfile

    import yaml

    data = dict(data or {})
    # Each gateway gets its own data directory (database, key pepper) unless told otherwise.
    storage = dict(data.get("storage") or {})
    storage.setdefault("data_dir", tempfile.mkdtemp(prefix="aicp-test-"))
    data["storage"] = storage
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(data, f)
    return load_settings(f.name, env=env or {})


def openai_settings(upstream: FakeUpstream, **extra: Any) -> Settings:
    """A gateway with one OpenAI-compatible provider `up` on the fake upstream."""
    data: dict[str, Any] = {
        "providers": {
            "up": {
                "type": "openai",
                "base_url": upstream.url + "/v1",
                "api_key": "sk-upstream-secret",
            }
        },
        "reliability": {"backoff_base_s": 0.01, "backoff_max_s": 0.05},
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return make_settings(data)


def gateway_settings_for(
    database_url: str | None,
    redis_url: str | None = None,
    upstream: FakeUpstream | None = None,
    **extra: Any,
) -> Settings:
    """A gateway on this database and Redis (None: SQLite in a temp dir, counters in process).

    With `upstream` its provider is `up` on the fake upstream (as `openai_settings`),
    else `mock`, which serves `mock-1` with no server at all. `extra` merges into the
    top-level sections as in `openai_settings`.
    """
    storage: dict[str, Any] = {}
    if database_url:
        storage["database_url"] = database_url
    if redis_url:
        storage["redis_url"] = redis_url
    storage.update(extra.pop("storage", {}))
    if upstream is not None:
        return openai_settings(upstream, storage=storage, **extra)
    data: dict[str, Any] = {"providers": {"mock": {"type": "mock"}}, "storage": storage}
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return make_settings(data)


def stream_hi(client: openai.OpenAI, model: str) -> tuple[list[ChatCompletionChunk], str]:
    """Stream the answer to "hi" with usage asked for: the chunks and the text they spell."""
    chunks = list(
        client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    return chunks, "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


@contextmanager
def admin_client(url: str, key: str) -> Iterator[httpx.Client]:
    """An HTTP client of the gateway at `url` that sends `key` as its bearer token."""
    with httpx.Client(base_url=url, headers={"authorization": f"Bearer {key}"}) as c:
        yield c


def make_key(admin: httpx.Client, **body: Any) -> dict[str, Any]:
    """A virtual key made through the admin API (201 asserted): its JSON, `key` included."""
    resp = admin.post("/admin/keys", json={"name": "test", **body})
    assert resp.status_code == 201, resp.text
    data: dict[str, Any] = resp.json()
    return data
