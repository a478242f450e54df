"""Gateway CPU per request in process, for comparing two versions of aicp.

Drives the ASGI app directly (mock provider, no sockets), sequentially (c=1:
every receipt is its own commit, the worst case for group commit) and ten
at a time (c=10), for chat and streaming chat; reports the best of seven
batches of process CPU time (all threads: aiosqlite's included) per request.

    .venv/bin/python bench/path_cpu.py                       # this checkout
    PYTHONPATH=/tmp/old/src .venv/bin/python bench/path_cpu.py  # another one

`make bench BENCH_ARGS=--baseline REF` does the same end to end over HTTP.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import uvloop
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from identity_cpu import call

from aicp.app import create_app
from aicp.config import load_settings

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hello there, how are you"}]}
BODIES = {
    "chat": json.dumps(CHAT).encode(),
    "stream": json.dumps({**CHAT, "stream": True}).encode(),
}
N = 2000


async def measure() -> dict[str, float]:
    data = Path(tempfile.mkdtemp(prefix="aicp-path-cpu-"))
    config = data / "aicp.yaml"
    deployment = {"provider": "mock", "model": "mock-1"}
    config.write_text(yaml.safe_dump({"models": [{"name": "m", "deployments": [deployment]}]}))
    app = create_app(load_settings(config, env={"AICP_DATA_DIR": str(data)}))
    results: dict[str, float] = {}
    async with app.web.router.lifespan_context(app.web):
        for kind, body in BODIES.items():
            for concurrency in (1, 10):
                for _ in range(300):
                    await call(app, "/v1/chat/completions", body, [])
                batches = []
                for _ in range(7):
                    started = time.process_time()
                    for _ in range(N // concurrency):
                        await asyncio.gather(
                            *(
                                call(app, "/v1/chat/completions", body, [])
                                for _ in range(concurrency)
                            )
                        )
                    batches.append((time.process_time() - started) / N * 1e6)
                results[f"{kind} c={concurrency}"] = min(batches)
    return results


def main() -> None:
    for name, us in uvloop.run(measure()).items():
        print(f"{name:<12} {us:7.1f} µs CPU per request")


if __name__ == "__main__":
    main()
