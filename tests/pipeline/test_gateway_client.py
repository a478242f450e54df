"""HttpLlm against a real gateway on a fake upstream: replies, receipts, costs, errors."""

from __future__ import annotations

import logging

import pytest

from aicp.pipeline.gateway import (
    DEFAULT_BASE_URL,
    GatewayRejected,
    GatewayUnavailable,
    HttpLlm,
)
from aicp.pipeline.model import StageFailed
from aicp.testing import FakeUpstream, GatewayServer
from aicp.testing.server import free_port
from tests.pipeline import fake_ctx
from tests.pipeline.fake_ctx import MASTER, receipt_cost

HI = [{"role": "user", "content": "hi"}]


gw = fake_ctx.gw
llm = fake_ctx.llm


def test_chat_returns_the_text_its_receipt_and_the_receipts_cost(
    llm: HttpLlm, gw: GatewayServer, module_upstream: FakeUpstream
) -> None:
    module_upstream.reply = "Paris is the capital of France."
    reply = llm.chat("chat", HI, temperature=0.2, max_tokens=20)
    assert reply.text == "Paris is the capital of France."
    assert reply.receipt_id is not None and reply.receipt_id.startswith("rcpt_")
    assert reply.cost_usd > 0
    assert reply.cost_usd == pytest.approx(receipt_cost(gw, reply.receipt_id))
    assert reply.raw["choices"][0]["message"]["content"] == reply.text
    sent = module_upstream.requests[-1].body
    assert sent["temperature"] == 0.2 and sent["max_tokens"] == 20
    assert sent["messages"] == HI


def test_embed_returns_one_vector_per_text_and_its_cost(llm: HttpLlm, gw: GatewayServer) -> None:
    reply = llm.embed("embedder", ["one", "two", "three"])
    assert len(reply.vectors) == 3 and all(len(v) == 8 for v in reply.vectors)
    assert reply.vectors[0] != reply.vectors[1]
    assert reply.receipt_id is not None
    assert reply.cost_usd > 0
    assert reply.cost_usd == pytest.approx(receipt_cost(gw, reply.receipt_id))


def test_an_unknown_model_is_a_final_error_with_the_gateways_message(llm: HttpLlm) -> None:
    with pytest.raises(GatewayRejected) as caught:
        llm.chat("no-such-model", HI)
    err = caught.value
    assert err.status == 404 and not err.retryable
    assert isinstance(err, StageFailed)  # the runner does not retry it
    assert "no-such-model" in err.message


def test_a_wrong_key_is_rejected_without_quoting_the_key(gw: GatewayServer) -> None:
    secret = "sk-not-a-real-key-0123456789"
    with HttpLlm(gw.url, secret) as bad, pytest.raises(GatewayRejected) as caught:
        bad.chat("chat", HI)
    assert caught.value.status == 401
    assert secret not in str(caught.value) and secret not in caught.value.message


def test_an_upstream_that_keeps_failing_is_a_retryable_error(
    llm: HttpLlm, module_upstream: FakeUpstream
) -> None:
    module_upstream.fault(status=503, times=10, message="upstream overloaded")
    with pytest.raises(GatewayUnavailable) as caught:
        llm.chat("chat", HI)
    assert caught.value.retryable and caught.value.status is not None
    assert caught.value.status >= 500
    assert not isinstance(caught.value, StageFailed)


def test_a_gateway_that_is_not_there_is_a_retryable_error() -> None:
    nowhere = HttpLlm(f"http://127.0.0.1:{free_port()}", "sk-x", timeout=2)
    with nowhere, pytest.raises(GatewayUnavailable) as caught:
        nowhere.chat("chat", HI)
    assert caught.value.retryable and caught.value.status is None


def test_a_receipt_that_never_appears_costs_zero_with_a_warning(
    llm: HttpLlm, gw: GatewayServer, caplog: pytest.LogCaptureFixture
) -> None:
    quick = HttpLlm(gw.url, MASTER, receipt_wait_s=0.3)
    with quick, caplog.at_level(logging.WARNING, logger="aicp.pipeline"):
        assert quick.cost_of("rcpt_" + "0" * 28) == 0.0
    assert any("rcpt_" + "0" * 28 in r.getMessage() for r in caplog.records)


def test_from_env_reads_the_url_and_key_and_accepts_a_v1_suffix(gw: GatewayServer) -> None:
    env = {"AICP_BASE_URL": gw.url + "/v1/", "AICP_API_KEY": MASTER}
    with HttpLlm.from_env(env) as client:
        assert client.chat("chat", HI).cost_usd > 0
    with HttpLlm.from_env({}) as default:
        assert default.base_url == DEFAULT_BASE_URL == "http://127.0.0.1:4000"
