"""CPU per request in process: anonymous vs a virtual key with a budget and limits.

The end-to-end harness (`make bench BENCH_ARGS=--identity`) shows the same
difference, but on a shared machine its noise is of the size being measured;
this drives the ASGI app directly (mock provider, no sockets) and reports the
best of seven batches, which is stable to a few microseconds.

    .venv/bin/python bench/identity_cpu.py
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop
import yaml

from aicp.app import App, create_app
from aicp.config import load_settings

MASTER = "sk-bench-master-loopback-only"
BODY = json.dumps(
    {"model": "m", "messages": [{"role": "user", "content": "hello there, how are you"}]}
).encode()


async def call(app: App, path: str, body: bytes, headers: list[tuple[bytes, bytes]]) -> Any:
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [(b"content-type", b"application/json"), *headers],
        "query_string": b"",
        "http_version": "1.1",
        "scheme": "http",
        "server": ("127.0.0.1", 4000),
        "client": ("127.0.0.1", 50000),
        "root_path": "",
    }
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    out: dict[str, Any] = {"body": b""}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
        else:
            out["body"] += message.get("body", b"")

    await app(scope, receive, send)  # type: ignore[arg-type]
    return out


async def measure(with_key: bool) -> float:
    data = Path(tempfile.mkdtemp(prefix="aicp-identity-cpu-"))
    config = data / "aicp.yaml"
    deployment = {"provider": "mock", "model": "mock-1"}
    deployment |= {"input_cost_per_mtok": 0.15, "output_cost_per_mtok": 0.6}
    config.write_text(yaml.safe_dump({"models": [{"name": "m", "deployments": [deployment]}]}))
    env = {"AICP_DATA_DIR": str(data), "AICP_MASTER_KEY": MASTER}
    app = create_app(load_settings(config, env=env))
    async with app.web.router.lifespan_context(app.web):
        auth = [(b"authorization", f"Bearer {MASTER}".encode())]
        if with_key:
            spec = {"name": "bench", "rpm": 100_000_000, "tpm": 2_000_000_000}
            spec |= {"budget_usd": 1_000_000, "budget_period": "monthly"}
            made = await call(app, "/admin/keys", json.dumps(spec).encode(), auth)
            assert made["status"] == 201, made
            auth = [(b"authorization", f"Bearer {json.loads(made['body'])['key']}".encode())]
        for _ in range(2000):
            done = await call(app, "/v1/chat/completions", BODY, auth)
        assert done["status"] == 200, done
        batches = []
        for _ in range(7):
            started = time.process_time()
            for _ in range(3000):
                await call(app, "/v1/chat/completions", BODY, auth)
            batches.append((time.process_time() - started) / 3000 * 1e6)
        return min(batches)


def main() -> None:
    master = uvloop.run(measure(with_key=False))
    key = uvloop.run(measure(with_key=True))
    print(f"master key (no budget, no limits): {master:.1f} µs CPU per request")
    print(f"virtual key with budget + rpm/tpm: {key:.1f} µs CPU per request")
    print(f"identity and money add:            {key - master:.1f} µs")


if __name__ == "__main__":
    main()
