"""Proof generation as the receipt log grows: inclusion and consistency proofs at 1M.

Builds a log of N receipts (default 1,000,000) in a fresh SQLite file (or the
PostgreSQL of --database-url), written the way the gateway writes it (leaves
plus the perfect subtrees they complete), then times what `GET
/v1/receipts/{id}` does per request: the receipt lookup, the inclusion proof
against the newest checkpoint (one query for its nodes), and a consistency
proof between two random sizes. Prints p50/p99/max in milliseconds.

    .venv/bin/python bench/receipts_proof.py [--leaves 1000000] [--proofs 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert

from aicp.config import ReceiptSettings
from aicp.receipts import merkle
from aicp.receipts.log import ReceiptLog
from aicp.receipts.signing import load_signer
from aicp.storage.db import Database
from aicp.storage.migrate import upgrade
from aicp.storage.schema import receipt_nodes, receipts

CHUNK = 20_000


async def build(db: Database, n: int) -> None:
    edge: list[tuple[int, bytes]] = []
    started = time.perf_counter()
    for start in range(0, n, CHUNK):
        leaves, nodes = [], []
        for i in range(start, min(n, start + CHUNK)):
            data = b'{"id":"rcpt_%028x","n":%d}' % (i, i)
            leaf = merkle.leaf_hash(data)
            for level, idx, digest in merkle.complete_nodes_after_append(i, leaf, edge):
                nodes.append({"level": level, "idx": idx, "hash": digest})
            leaves.append(
                {
                    "leaf_index": i,
                    "id": f"rcpt_{i:028x}",
                    "created_at": 0.0,
                    "key_id": None,
                    "team_id": None,
                    "model": "m",
                    "status": 200,
                    "data": data,
                    "leaf_hash": leaf,
                }
            )
        async with db.begin() as conn:
            await conn.execute(insert(receipts), leaves)
            await conn.execute(insert(receipt_nodes), nodes)
    print(f"built a log of {n:,} receipts in {time.perf_counter() - started:.1f} s")


def summary(name: str, samples: list[float]) -> None:
    samples.sort()
    p99 = samples[int(len(samples) * 0.99) - 1]
    print(
        f"{name:<28} p50 {statistics.median(samples):6.2f} ms   p99 {p99:6.2f} ms   "
        f"max {samples[-1]:6.2f} ms   ({len(samples)} proofs)"
    )


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--leaves", type=int, default=1_000_000)
    ap.add_argument("--proofs", type=int, default=2000)
    ap.add_argument("--database-url", help="default: SQLite in a temporary directory")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="aicp-proof-bench-"))
    db = Database(args.database_url or f"sqlite:///{tmp / 'aicp.db'}")
    await upgrade(db)
    settings = ReceiptSettings(checkpoint_interval_s=0, body_retention_days=0)
    log = ReceiptLog(db, load_signer(None, str(tmp), settings.origin), settings)
    try:
        await build(db, args.leaves)
        size = args.leaves
        cp = await log.checkpoint()
        rng = random.Random(1)
        times: dict[str, list[float]] = {"bundle": [], "inclusion": [], "consistency": []}
        for _ in range(args.proofs):
            index = rng.randrange(size)
            t = time.perf_counter()
            path = await log.inclusion(index, size)
            times["inclusion"].append((time.perf_counter() - t) * 1000)
            leaf = merkle.leaf_hash(b'{"id":"rcpt_%028x","n":%d}' % (index, index))
            assert merkle.verify_inclusion(leaf, index, size, path, cp.root)
            t = time.perf_counter()
            await log.bundle(f"rcpt_{index:028x}")
            times["bundle"].append((time.perf_counter() - t) * 1000)
            old = rng.randrange(1, size)
            t = time.perf_counter()
            await log.consistency(old, size)
            times["consistency"].append((time.perf_counter() - t) * 1000)
        summary("inclusion proof", times["inclusion"])
        summary("bundle (GET /v1/receipts/ID)", times["bundle"])
        summary("consistency proof", times["consistency"])
    finally:
        await db.aclose()


if __name__ == "__main__":
    asyncio.run(main())
