"""Stage 11, record: the receipt built, appended to the log, its commit awaited later.

The stage only queues the receipt (`ex.durable` is the commit's future); the
gateway awaits it before the last byte of the response, so a client never
holds a complete response whose receipt could still be lost.
"""

from __future__ import annotations

import asyncio
import time

from aicp.config import ReceiptSettings
from aicp.guardrails.stages import scrubbed_request
from aicp.plane.exchange import Exchange
from aicp.receipts.bodies import redact
from aicp.receipts.build import Stamps, body_hash, build
from aicp.receipts.canonical import canonical
from aicp.receipts.log import ReceiptLog
from aicp.receipts.store import Pending


class RecordStage:
    name = "record"

    def __init__(self, log: ReceiptLog, settings: ReceiptSettings) -> None:
        self.log = log
        self.keep = settings.bodies
        self.stamp = Stamps()

    async def __call__(self, ex: Exchange) -> None:
        ended = time.time()
        receipt = build(ex, body_hash(ex.raw), ended, self.stamp)
        bodies: tuple[str, bytes | None, bytes | None] | None = None
        if self.keep == "full":
            bodies = ("full", scrubbed_request(ex), ex.response_body)
        elif self.keep == "redacted":
            bodies = ("redacted", redact(scrubbed_request(ex)), redact(ex.response_body))
        p = ex.principal
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.log.append(
            Pending(
                ex.receipt_id,
                ex.wall_start,
                p.key_id,
                p.team_id,
                ex.model[:200] or None,
                ex.status,
                canonical(receipt),
                bodies,
                future,
            )
        )
        ex.durable = future
