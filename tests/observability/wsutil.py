"""Watching a gateway's /v1/events from a test: connect, collect, expect nothing more."""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

import httpx
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from aicp.config import Settings
from aicp.testing import GatewayServer

Frame = dict[str, Any]


def events_url(gw: GatewayServer, **params: str) -> str:
    query = f"?{urlencode(params)}" if params else ""
    return f"ws://127.0.0.1:{gw.port}/v1/events{query}"


@contextmanager
def watch(gw: GatewayServer, key: str | None, **params: str) -> Iterator[ClientConnection]:
    """A WebSocket on /v1/events with `key` as Bearer (None: no credential)."""
    headers = {"authorization": f"Bearer {key}"} if key else {}
    with connect(events_url(gw, **params), additional_headers=headers, open_timeout=10) as ws:
        yield ws


def until(ws: ClientConnection, done: Callable[[Frame], bool], timeout: float = 10) -> list[Frame]:
    """Every frame up to and including the first for which `done` is true."""
    frames: list[Frame] = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            seen = [f["type"] for f in frames]
            raise AssertionError(f"no matching event within {timeout} s; saw {seen}")
        try:
            raw = ws.recv(timeout=left)
        except TimeoutError:
            continue
        frame: Frame = json.loads(raw)
        frames.append(frame)
        if done(frame):
            return frames


def of_type(name: str, **fields: Any) -> Callable[[Frame], bool]:
    """A predicate: the frame is a `name` event whose data has these `fields`."""

    def match(frame: Frame) -> bool:
        data = frame["data"]
        return frame["type"] == name and all(data.get(k) == v for k, v in fields.items())

    return match


def drain(ws: ClientConnection, wait: float = 0.5) -> list[Frame]:
    """Every frame that arrives within `wait` seconds of quiet."""
    frames: list[Frame] = []
    while True:
        try:
            frames.append(json.loads(ws.recv(timeout=wait)))
        except (TimeoutError, ConnectionClosed):
            return frames


# --- a world of keys --------------------------------------------------------------------


def admin(gw: GatewayServer, master: str) -> httpx.Client:
    return httpx.Client(base_url=gw.url, headers={"authorization": f"Bearer {master}"}, timeout=30)


def post(client: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = client.post(path, json=body)
    assert resp.status_code == 201, resp.text
    data: dict[str, Any] = resp.json()
    return data


def new_team(client: httpx.Client) -> str:
    return str(post(client, "/admin/teams", {"name": f"team-{uuid.uuid4().hex[:8]}"})["id"])


def new_key(client: httpx.Client, team: str, role: str = "member") -> tuple[str, str]:
    """(key id, key) of a new user with `role` in `team`."""
    user = post(client, "/admin/users", {"name": role, "team_id": team, "role": role})
    made = post(client, "/admin/keys", {"name": role, "user_id": user["id"]})
    return str(made["id"]), str(made["key"])


def chat(gw: GatewayServer, key: str, model: str = "mock/mock-1", **headers: str) -> httpx.Response:
    """One chat completion with `key`; the response (not checked)."""
    return httpx.post(
        f"{gw.url}/v1/chat/completions",
        headers={"authorization": f"Bearer {key}", **headers},
        json={"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5},
        timeout=30,
    )


# --- a client that never reads ------------------------------------------------------------


def stalled(gw: GatewayServer, key: str) -> socket.socket:
    """A WebSocket on /v1/events, handshake done, that reads nothing more until told to.

    Its receive buffer is small so that the server soon finds it cannot send.
    """
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", gw.port))
    nonce = base64.b64encode(os.urandom(16)).decode()
    request = (
        "GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {nonce}\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: Bearer {key}\r\n\r\n"
    )
    sock.sendall(request.encode())
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def read_frames(sock: socket.socket, timeout: float = 15) -> list[tuple[int, bytes]]:
    """Everything the server sent until it closed: (opcode, payload) per frame."""
    sock.settimeout(timeout)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
        frames = _frames(data)
        if frames and frames[-1][0] == CLOSE:
            return frames
    return _frames(data)


CLOSE = 0x8


def _frames(data: bytes) -> list[tuple[int, bytes]]:
    """Unmasked server frames (RFC 6455 section 5.2); a partial last frame is left out."""
    out: list[tuple[int, bytes]] = []
    i = 0
    while i + 2 <= len(data):
        opcode, size = data[i] & 0x0F, data[i + 1] & 0x7F
        i += 2
        extended = {126: 2, 127: 8}.get(size, 0)
        if i + extended > len(data):
            break
        if extended:
            size = int.from_bytes(data[i : i + extended], "big")
            i += extended
        if i + size > len(data):
            break
        out.append((opcode, data[i : i + size]))
        i += size
    return out


class SmallBufferGateway(GatewayServer):
    """A gateway whose connections have small kernel send buffers, so that a consumer that
    does not read is found out after tens of kilobytes instead of megabytes."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(128)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, name="aicp-gateway", daemon=True
        )
