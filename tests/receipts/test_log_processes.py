"""The receipt log across real processes, on SQLite and PostgreSQL.

Two `aicp serve` processes append to one sequenced log: every receipt lands
exactly once, leaf indexes have no gap, and the log verifies. A gateway killed
with SIGKILL under load keeps the receipt of every response a client received
whole, the log still verifies, and a restarted gateway appends after it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from aicp.receipts.verify import verify_bundle
from aicp.storage.db import Database
from aicp.storage.schema import receipts
from aicp.testing.server import free_port

pytestmark = pytest.mark.timeout(60)

AICP = str(Path(sys.executable).with_name("aicp"))
CHAT = {"model": "mock/mock-1", "messages": [{"role": "user", "content": "a receipt, please"}]}
#: Per-request client timeout: the mock answers in a few milliseconds.
REQUEST_TIMEOUT = httpx.Timeout(10.0, connect=2.0)


def new_client() -> httpx.Client:
    # One client per thread, reused: making one costs tens of milliseconds (its TLS
    # context), which would dwarf the requests themselves.
    return httpx.Client(timeout=REQUEST_TIMEOUT)


class Incomplete(Exception):
    """The response arrived, but not as a complete successful one."""


class Gateway:
    """One `aicp serve` process. Its output goes to a file: a pipe nobody reads
    fills up and blocks the server."""

    def __init__(self, config: Path, output: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.output = output
        command = [AICP, "serve", "--config", str(config), "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--log-level", "warning"]
        with output.open("wb") as out:
            self.proc = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=_clean_env()
            )

    def logs(self) -> str:
        return self.output.read_text(errors="replace")[-4000:]

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        with new_client() as http:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    pytest.fail(f"the gateway exited with {self.proc.returncode}:\n{self.logs()}")
                try:
                    if http.get(self.url + "/ready", timeout=1.0).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
        pytest.fail(f"the gateway was not ready within {timeout} s:\n{self.logs()}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()  # SIGKILL
        self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM: a clean shutdown (the writer flushes its queue), else SIGKILL."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@contextmanager
def serving(*gateways: tuple[Path, Path]) -> Iterator[list[Gateway]]:
    """Start gateways at once (config, output file), wait until all are ready; always
    kill them on the way out."""
    started: list[Gateway] = []
    try:
        for config, output in gateways:
            started.append(Gateway(config, output))
        for gw in started:
            gw.wait_ready()
        yield started
    finally:
        for gw in started:
            gw.kill()


def _clean_env() -> dict[str, str]:
    # The gateway reads only its config file: no AICP_* of the developer's shell.
    return {k: v for k, v in os.environ.items() if not k.startswith("AICP_")}


def write_config(path: Path, database_url: str, data_dir: Path, key: Path | None) -> Path:
    data: dict[str, Any] = {
        "providers": {"mock": {"type": "mock"}},
        "storage": {"database_url": database_url, "data_dir": str(data_dir)},
    }
    if key is not None:
        data["receipts"] = {"signing_key": str(key)}
    path.write_text(yaml.safe_dump(data))
    return path


def write_signing_key(path: Path) -> Path:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.write_bytes(pem)
    return path


def configs(database_url: str, tmp_path: Path, n: int) -> list[Path]:
    """Config files of `n` gateways on one log. On SQLite they share one data directory
    (one file, and the signing key the first to start makes there), as `--workers` does;
    on PostgreSQL each has its own data directory, as separate hosts would, and all are
    given one signing key."""
    if database_url.startswith("sqlite"):
        data_dir = tmp_path / "data"
        return [write_config(tmp_path / "aicp.yaml", database_url, data_dir, None)] * n
    key = write_signing_key(tmp_path / "signing-key.pem")
    return [
        write_config(tmp_path / f"aicp{i}.yaml", database_url, tmp_path / f"host{i}", key)
        for i in range(n)
    ]


def chat(http: httpx.Client, url: str, stream: bool) -> str:
    """One chat request read to its end: the receipt id of a complete, successful response."""
    with http.stream("POST", url + "/v1/chat/completions", json={**CHAT, "stream": stream}) as r:
        if r.status_code != 200:
            raise Incomplete(f"HTTP {r.status_code}: {r.read()!r}")
        receipt_id = r.headers["x-aicp-receipt-id"]
        if stream:
            events = [line for line in r.iter_lines() if line]
            if not events or events[-1] != "data: [DONE]" or any('"error"' in e for e in events):
                raise Incomplete(f"the stream did not end with [DONE]: {events[-2:]}")
        elif not json.loads(r.read())["choices"][0]["message"]["content"]:
            raise Incomplete("a reply without content")
    return receipt_id


def aicp(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AICP, *args], capture_output=True, text=True, timeout=30, env=_clean_env(), check=False
    )


def checkpoint_and_verify(config: Path) -> tuple[int, str]:
    """`aicp receipts checkpoint`, then `aicp receipts verify` (which must pass): the
    checkpoint's size and what verify said."""
    made = aicp("receipts", "checkpoint", "--config", str(config), "--json")
    assert made.returncode == 0, made.stderr
    verified = aicp("receipts", "verify", "--config", str(config))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    return int(json.loads(made.stdout)["tree_size"]), verified.stderr


def stored_leaves(database_url: str) -> dict[str, int]:
    """Receipt id -> leaf index, read from the database with a fresh connection."""

    async def read() -> dict[str, int]:
        db = Database(database_url)
        try:
            async with db.connect() as conn:
                rows = (await conn.execute(select(receipts.c.id, receipts.c.leaf_index))).all()
        finally:
            await db.aclose()
        return {row.id: row.leaf_index for row in rows}

    return asyncio.run(read())


def fetch_verified_bundle(
    http: httpx.Client, url: str, receipt_id: str, key: str
) -> dict[str, Any]:
    response = http.get(f"{url}/v1/receipts/{receipt_id}")
    assert response.status_code == 200, response.text
    bundle: dict[str, Any] = response.json()
    report = verify_bundle(bundle, trusted_key=key)
    assert report.ok, report.problems
    assert bundle["receipt"]["id"] == receipt_id
    return bundle


# --- two processes, one log ------------------------------------------------------

THREADS = 8
PER_THREAD = 25


def test_two_gateway_processes_share_one_log_without_gaps(
    database_url: str, tmp_path: Path
) -> None:
    first, second = configs(database_url, tmp_path, 2)
    n = THREADS * PER_THREAD
    # The pool outlives the gateways: should a gateway hang, killing it first ends
    # the clients' requests at once instead of each waiting for its timeout.
    with (
        ThreadPoolExecutor(THREADS) as pool,
        serving((first, tmp_path / "gw0.log"), (second, tmp_path / "gw1.log")) as gateways,
    ):
        urls = [gw.url for gw in gateways]

        def send(thread: int) -> list[tuple[str, int]]:
            """(receipt id, which process served it) of each request, streaming or not."""
            served = []
            with new_client() as http:
                for j in range(PER_THREAD):
                    which, stream = (thread + j) % 2, (thread + j // 2) % 2 == 1
                    served.append((chat(http, urls[which], stream), which))
            return served

        served = [pair for part in pool.map(send, range(THREADS), timeout=30) for pair in part]
        assert len({receipt_id for receipt_id, _ in served}) == n

        with new_client() as http:
            made = http.post(urls[0] + "/v1/receipts/checkpoint")
            assert made.status_code == 200, made.text
            cp = made.json()
            assert cp["tree_size"] == n
            # One log and one key: the other process serves the very same checkpoint.
            assert http.get(urls[1] + "/v1/receipts/checkpoint").json() == cp

        def fetch(thread: int) -> list[tuple[int, int]]:
            """(leaf index, which process served it), each receipt read with its proof
            from the process that did not serve it."""
            found = []
            with new_client() as http:
                for receipt_id, which in served[thread::THREADS]:
                    bundle = fetch_verified_bundle(
                        http, urls[1 - which], receipt_id, cp["verifier_key"]
                    )
                    assert bundle["tree_size"] == n
                    found.append((int(bundle["leaf_index"]), which))
            return found

        leaves = sorted(
            pair for part in pool.map(fetch, range(THREADS), timeout=30) for pair in part
        )
    assert [index for index, _ in leaves] == list(range(n))
    # The writers really took turns: in leaf order the serving process changes many
    # times, so each writer found the log grown by the other and reloaded its right
    # edge (a stale edge would have broken the proofs checked above).
    turns = sum(1 for (_, a), (_, b) in itertools.pairwise(leaves) if a != b)
    print(f"\n{n} receipts from two processes, {turns} turns between the writers")
    assert turns >= 2, leaves

    stored = stored_leaves(database_url)
    assert sorted(stored.values()) == list(range(n))
    assert stored.keys() == {receipt_id for receipt_id, _ in served}
    # The checkpoint signed above, by the CLI: the whole log against it.
    verified = aicp("receipts", "verify", "--config", str(first))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"{n} receipts, 1 checkpoints" in verified.stderr


# --- SIGKILL under load ------------------------------------------------------------

CLIENTS = 12
LOAD_S = 1.5


def test_sigkill_under_load_loses_no_receipt_of_a_delivered_response(
    database_url: str, tmp_path: Path
) -> None:
    (config,) = configs(database_url, tmp_path, 1)
    delivered: list[str] = []  # list.append is atomic: the clients share it
    unexpected: list[str] = []
    killed = threading.Event()

    def load(http: httpx.Client, url: str, stream: bool) -> None:
        """Requests back to back until the gateway dies, every other one streaming."""
        with http:
            while True:
                try:
                    delivered.append(chat(http, url, stream))
                except (httpx.HTTPError, Incomplete) as exc:
                    if not killed.is_set():
                        unexpected.append(repr(exc))
                    return
                stream = not stream

    with serving((config, tmp_path / "gw.log")) as (gw,):
        clients = [
            threading.Thread(target=load, args=(new_client(), gw.url, k % 2 == 1))
            for k in range(CLIENTS)
        ]
        try:
            for t in clients:
                t.start()
            # The clock starts once responses flow (a loaded CI machine starts slowly).
            deadline = time.monotonic() + 10
            while not delivered and not unexpected and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(LOAD_S)
        finally:
            killed.set()
            gw.proc.send_signal(signal.SIGKILL)
            for t in clients:
                t.join(15)
        assert not any(t.is_alive() for t in clients), "a client hung after the kill"
        assert gw.proc.wait(10) == -signal.SIGKILL, "the gateway died before the kill"
        assert not unexpected, unexpected[:3]
    assert len(delivered) > 20, "too few requests: the kill was not under load"

    leaves = stored_leaves(database_url)
    missing = set(delivered) - leaves.keys()
    assert not missing, f"{len(missing)} of {len(delivered)} delivered responses have no receipt"
    assert sorted(leaves.values()) == list(range(len(leaves)))
    # The gateway had no time for a periodic checkpoint: sign one, then verify.
    size, said = checkpoint_and_verify(config)
    assert size == len(leaves)
    assert f"{size} receipts" in said
    print(
        f"\n{len(delivered)} responses delivered before SIGKILL; {size} receipts in the log "
        f"({size - len(delivered)} committed but not delivered)"
    )

    # A new gateway on the same log: its writer reloads the right edge from the nodes.
    with serving((config, tmp_path / "gw-again.log")) as (again,), new_client() as http:
        receipt_id = chat(http, again.url, stream=False)
        key = http.get(again.url + "/v1/receipts/checkpoint").json()["verifier_key"]
        # Asking for the bundle signs a checkpoint that covers the new receipt.
        bundle = fetch_verified_bundle(http, again.url, receipt_id, key)
        assert (bundle["leaf_index"], bundle["tree_size"]) == (size, size + 1)
    verified = aicp("receipts", "verify", "--config", str(config))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"{size + 1} receipts, 2 checkpoints" in verified.stderr
