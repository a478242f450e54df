"""Events across gateway processes over Redis: two gateways, one Redis.

An event emitted in gateway A reaches the WebSocket consumers of gateway B,
and A's own consumers get it once, not twice. When Redis goes away both keep
serving, and the fan-out comes back with Redis.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest
from websockets.sync.client import ClientConnection

from aicp.config import Settings
from aicp.testing import GatewayServer
from aicp.testing.server import free_port
from tests.helpers import make_settings
from tests.observability.wsutil import Frame, chat, drain, until, watch

MASTER = "sk-master-fanout"
STARTED = "llm.request.started"


def settings(redis_url: str) -> Settings:
    return make_settings(
        {
            "server": {"master_key": MASTER},
            "providers": {"mock": {"type": "mock"}},
            "storage": {"redis_url": redis_url},
        }
    )


def fanned_out(sender: GatewayServer, consumer: ClientConnection, timeout: float = 20) -> Frame:
    """Requests on `sender` until `consumer` hears one (the listeners subscribe in the
    background at start-up, and again after Redis comes back): the frame it heard."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rid = f"req-{uuid.uuid4().hex[:12]}"
        assert chat(sender, MASTER, **{"x-request-id": rid}).status_code == 200
        for frame in drain(consumer, wait=0.3):
            if frame["request_id"] == rid:
                return frame
    raise AssertionError(f"no event crossed over within {timeout} s")


def test_an_event_reaches_every_process_and_each_consumer_once(redis_url: str) -> None:
    with (
        GatewayServer(settings(redis_url)) as a,
        GatewayServer(settings(redis_url)) as b,
        watch(a, MASTER, type=STARTED) as on_a,
        watch(b, MASTER, type=STARTED) as on_b,
    ):
        fanned_out(a, on_b)
        drain(on_a)
        rid = f"req-{uuid.uuid4().hex[:12]}"
        assert chat(a, MASTER, **{"x-request-id": rid}).status_code == 200
        remote = until(on_b, lambda f: f["request_id"] == rid)[-1]
        local = [f for f in drain(on_a, wait=1.0) if f["request_id"] == rid]
        again = [f for f in drain(on_b, wait=0.3) if f["request_id"] == rid]
        assert a.app.state is not None and b.app.state is not None
        origin_a, origin_b = a.app.state.events.origin, b.app.state.events.origin
    assert len(local) == 1 and not again
    assert remote["origin"] == local[0]["origin"] == origin_a != origin_b
    assert remote == local[0]  # the same event, field for field


@pytest.fixture
def own_redis() -> Iterator[RedisProcess]:
    if shutil.which("redis-server") is None:
        pytest.skip("needs the redis-server binary (to stop and restart a Redis of its own)")
    server = RedisProcess(free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


class RedisProcess:
    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = ["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                subprocess.run(
                    ["redis-cli", "-p", str(self.port), "ping"], check=True, capture_output=True
                )
                return
            except (subprocess.CalledProcessError, FileNotFoundError):
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


def test_without_redis_the_gateways_keep_serving_and_the_fanout_comes_back(
    own_redis: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.INFO, logger="aicp.events"),
        GatewayServer(settings(own_redis.url)) as a,
        GatewayServer(settings(own_redis.url)) as b,
        watch(b, MASTER, type=STARTED) as on_b,
    ):
        fanned_out(a, on_b)
        own_redis.stop()
        for _ in range(20):
            started = time.monotonic()
            assert chat(a, MASTER).status_code == 200
            assert chat(b, MASTER).status_code == 200
            assert time.monotonic() - started < 2  # nobody waits for Redis
        time.sleep(1)  # long enough for the fan-out's retries to fail a few times
        own_redis.start()
        fanned_out(a, on_b, timeout=30)
    failures = [r for r in caplog.records if "event fan-out: Redis failed" in r.getMessage()]
    backs = [r for r in caplog.records if "event fan-out: Redis is back" in r.getMessage()]
    # Logged once per gateway and side (listening, publishing), not once per retry.
    assert 1 <= len(failures) <= 4
    assert backs
