"""Simulate mode: the request path with everything but execute.

The request stages decide as they would for live traffic (who, which route,
which limits, which budget), nothing is sent upstream, and then the response
stages run as after any request that got no answer: settle releases a budget
reservation whole (nothing was served, nothing is billed), meter gives the
token allowance back, record writes a receipt marked `mode: simulate`. A stage
that skips work in simulate mode (the budget stage reserves nothing) reads
`ex.mode`. Because these are the live stages, a simulation cannot drift from
what live traffic does (DESIGN.md).
"""

from __future__ import annotations

import logging

from aicp.errors import AicpError, ReceiptNotRecorded
from aicp.plane.exchange import Exchange
from aicp.plane.path import Path

log = logging.getLogger("aicp.simulate")

#: The one stage a simulation leaves out.
EXECUTE = "execute"


def dry(path: Path) -> Path:
    """`path` without execute."""
    return Path([s for s in path.request if s.name != EXECUTE], path.response)


async def simulate(path: Path, ex: Exchange) -> None:
    """Run `ex` through `path` without execute; a stage's refusal lands in `ex.error`.

    An exchange that already failed (its body did not pass the checks) only gets
    the response stages, as the gateway gives it.
    """
    ex.mode = "simulate"
    stages = dry(path)
    if ex.error is None:
        try:
            await stages.run(ex)
        except AicpError as err:
            ex.error, ex.status = err, err.status
        except Exception:
            log.exception("simulation %s failed inside the gateway", ex.id)
            internal = AicpError("internal error in the gateway")
            ex.error, ex.status = internal, internal.status
    await stages.finish(ex)
    if ex.durable is not None:
        try:
            await ex.durable
        except Exception:
            raise ReceiptNotRecorded("the simulation's receipt could not be recorded") from None
