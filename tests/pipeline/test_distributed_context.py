"""What a stage sees on a Ray worker: the StageContext protocol, whole."""

from __future__ import annotations

import pytest

from aicp.pipeline.distributed import RemoteContext
from aicp.pipeline.model import Stage, StageContext, StageFailed


def test_a_remote_context_has_every_member_a_stage_may_read() -> None:
    ctx = RemoteContext("run_1", Stage("s"), {"x": 1})
    members = set(StageContext.__annotations__) | {
        n for n in vars(StageContext) if not n.startswith("_")
    }
    assert members >= {"llm", "services", "record_receipt"}
    assert [m for m in sorted(members) if not hasattr(ctx, m)] == []
    assert ctx.services == {}  # the registry lives in the gateway process
    with pytest.raises(StageFailed, match="distributed stage has no gateway"):
        ctx.llm.chat("m", [{"role": "user", "content": "hi"}])
    ctx.record_receipt("rcpt_1", 0.25)
    ctx.log_metric("score", 1)
    assert (ctx.receipts, ctx.cost_usd, ctx.metrics) == (["rcpt_1"], 0.25, {"score": 1.0})
