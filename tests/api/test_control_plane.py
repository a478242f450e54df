"""The control plane end to end: guardrails, policy and modes through the real gateway,
driven by the official SDKs, with two fake upstreams (one external, one local) whose
request logs say what left the gateway."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from aicp.testing import FakeUpstream, GatewayServer
from tests.helpers import admin_client, make_key, make_settings

MASTER = "sk-master-control-plane-test"
SECRET = "sk-proj-" + "Q7x9LmP2vR8sT4wY6zA1bC3dE5fG7hJ9kL0"
LEGAL = "Please review this contract clause on indemnification and the liability cap."


def _settings(ext: FakeUpstream, loc: FakeUpstream, **extra: Any) -> Any:
    data: dict[str, Any] = {
        "server": {"master_key": MASTER},
        "providers": {
            "ext": {"type": "openai", "base_url": ext.url + "/v1", "api_key": "sk-up-ext"},
            "loc": {
                "type": "openai",
                "base_url": loc.url + "/v1",
                "api_key": "sk-up-loc",
                "local": True,
            },
        },
        "models": [
            {
                "name": "assistant",
                "deployments": [
                    {"provider": "ext", "model": "big-model", "priority": 0},
                    {"provider": "loc", "model": "small-model", "priority": 1},
                ],
            },
            {"name": "external-only", "deployments": [{"provider": "ext", "model": "big-model"}]},
        ],
        "reliability": {"backoff_base_s": 0.01, "backoff_max_s": 0.05},
        **extra,
    }
    return make_settings(data)


@pytest.fixture
def ups() -> Iterator[tuple[FakeUpstream, FakeUpstream]]:
    with FakeUpstream() as ext, FakeUpstream() as loc:
        yield ext, loc


@pytest.fixture
def gw(ups: tuple[FakeUpstream, FakeUpstream]) -> Iterator[GatewayServer]:
    with GatewayServer(_settings(*ups)) as server:
        yield server


def _oai(gw: GatewayServer, key: str = MASTER) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)


def _chat(client: openai.OpenAI, text: str, model: str = "assistant", **kw: Any) -> Any:
    return client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": text}], **kw
    )


def _receipt(gw: GatewayServer, receipt_id: str) -> dict[str, Any]:
    with admin_client(gw.url, MASTER) as admin:
        resp = admin.get(f"/v1/receipts/{receipt_id}")
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()["receipt"]
    return data


def _calls(up: FakeUpstream) -> list[Any]:
    """What the gateway sent to `up` for clients (model discovery at start-up aside)."""
    return [r for r in up.requests if r.method == "POST"]


def _sent_texts(up: FakeUpstream) -> str:
    return " ".join(str(r.body) for r in _calls(up))


# --- guardrails -----------------------------------------------------------------------


def test_a_request_with_a_secret_is_blocked_before_any_upstream_sees_it(
    gw: GatewayServer, ups: tuple[FakeUpstream, FakeUpstream]
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        _chat(_oai(gw), f"why does this key fail? {SECRET}")
    assert caught.value.status_code == 400
    assert caught.value.code == "guardrail_blocked"
    assert "secrets" in caught.value.message and SECRET not in caught.value.message
    client = anthropic.Anthropic(base_url=gw.url, api_key=MASTER, max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as second:
        client.messages.create(
            model="assistant",
            max_tokens=50,
            messages=[{"role": "user", "content": f"deploy with {SECRET}"}],
        )
    assert second.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert all(not _calls(up) for up in ups)


def test_pii_is_redacted_before_it_leaves_and_restored_for_the_caller(
    ups: tuple[FakeUpstream, FakeUpstream],
) -> None:
    ext, loc = ups
    guard = {"input": {"pii": {"action": "redact"}}}
    with GatewayServer(_settings(ext, loc, guardrails=guard)) as gw:
        ext.reply = "I will write to <EMAIL_1> about it today"
        raw = _chat(_oai(gw), "Please email jane.doe@example.com about the invoice")
        answer = raw.parse().choices[0].message.content
        assert answer == "I will write to jane.doe@example.com about it today"
        assert "jane.doe@example.com" not in _sent_texts(ext)
        assert "<EMAIL_1>" in _sent_texts(ext)
        receipt = _receipt(gw, raw.headers["x-aicp-receipt-id"])
        found = receipt["guardrails"][0]["findings"]
        assert {f["kind"] for f in found} == {"email"} and found[0]["action"] == "redact"
        assert "jane.doe" not in str(receipt)
        # Streamed: the placeholder comes back in pieces and is still restored.
        ext.reply = "Sure, <EMAIL_1> will hear from us"
        stream = _oai(gw).chat.completions.create(
            model="assistant",
            messages=[{"role": "user", "content": "write to jane.doe@example.com"}],
            stream=True,
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert text == "Sure, jane.doe@example.com will hear from us"


def test_a_secret_in_the_model_output_is_redacted(
    ups: tuple[FakeUpstream, FakeUpstream],
) -> None:
    ext, loc = ups
    guard = {"output": {"secrets": {"action": "redact"}}}
    with GatewayServer(_settings(ext, loc, guardrails=guard)) as gw:
        _output_secret_redacted(gw, ext)
    with GatewayServer(_settings(ext, loc)) as gw:  # off by default: pass-through
        answer = _chat(_oai(gw), "what is the key?").parse().choices[0].message.content
        assert answer == ext.reply


def _output_secret_redacted(gw: GatewayServer, ext: FakeUpstream) -> None:
    ext.reply = "The key is AKIAIOSFODNN7EXAMPLE and it works"
    answer = _chat(_oai(gw), "what is the key?").parse().choices[0].message.content
    assert "AKIAIOSFODNN7EXAMPLE" not in answer and "<REDACTED_SECRET_1>" in answer
    stream = _oai(gw).chat.completions.create(
        model="assistant", messages=[{"role": "user", "content": "again"}], stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert "AKIAIOSFODNN7EXAMPLE" not in text and "<REDACTED_SECRET_1>" in text


# --- policy -----------------------------------------------------------------------------


def test_legal_data_never_reaches_an_external_route(
    gw: GatewayServer, ups: tuple[FakeUpstream, FakeUpstream]
) -> None:
    ext, loc = ups
    raw = _chat(_oai(gw), LEGAL)
    assert raw.parse().choices[0].message.content
    assert not _calls(ext) and len(_calls(loc)) == 1
    receipt = _receipt(gw, raw.headers["x-aicp-receipt-id"])
    assert receipt["classification"]["task_class"] == "legal"
    policy = receipt["policy"][0]
    assert policy["forbidden"] == {"ext/big-model": ["no-external-legal"]}
    assert receipt["route"]["served"] == "loc/small-model"


def test_when_every_route_is_forbidden_the_client_gets_403_naming_the_policy(
    gw: GatewayServer, ups: tuple[FakeUpstream, FakeUpstream]
) -> None:
    with pytest.raises(openai.PermissionDeniedError) as caught:
        _chat(_oai(gw), LEGAL, model="external-only")
    assert caught.value.code == "policy_denied"
    assert "no-external-legal" in caught.value.message
    client = anthropic.Anthropic(base_url=gw.url, api_key=MASTER, max_retries=0)
    with pytest.raises(anthropic.PermissionDeniedError) as second:
        client.messages.create(
            model="external-only",
            max_tokens=20,
            messages=[{"role": "user", "content": "hello"}],
            extra_headers={"x-aicp-sensitivity": "restricted"},
        )
    assert "no-external-restricted" in str(second.value)
    assert all(not _calls(up) for up in ups)


def test_an_admin_may_force_a_forbidden_route_and_the_override_is_recorded(
    gw: GatewayServer, ups: tuple[FakeUpstream, FakeUpstream]
) -> None:
    ext, _ = ups
    raw = _chat(_oai(gw), LEGAL, extra_headers={"x-aicp-route": "ext/big-model"})
    assert raw.parse().choices[0].message.content and len(_calls(ext)) == 1
    receipt = _receipt(gw, raw.headers["x-aicp-receipt-id"])
    assert receipt["policy"][0]["override"] == "forced route"
    metrics = httpx.get(gw.url + "/metrics").text
    assert 'aicp_policy_overrides_total{route="assistant"} 1.0' in metrics


def test_bypassing_a_policy_needs_an_admin_key(
    gw: GatewayServer, ups: tuple[FakeUpstream, FakeUpstream]
) -> None:
    with admin_client(gw.url, MASTER) as admin:
        key = make_key(admin)["key"]
    with pytest.raises(openai.PermissionDeniedError) as caught:
        _chat(_oai(gw, key), "hi", extra_headers={"x-aicp-policy-bypass": "no-external-legal"})
    assert caught.value.code == "policy_bypass_denied"
    # An admin's bypass lets the legal request use the external route it prefers.
    raw = _chat(_oai(gw), LEGAL, extra_headers={"x-aicp-policy-bypass": "no-external-legal"})
    receipt = _receipt(gw, raw.headers["x-aicp-receipt-id"])
    assert receipt["policy"][0]["bypassed"] == ["no-external-legal"]
    assert receipt["route"]["served"] == "ext/big-model"


# --- modes ------------------------------------------------------------------------------


def test_simulate_mode_never_calls_the_upstream(
    gw: GatewayServer, ups: tuple[FakeUpstream, FakeUpstream]
) -> None:
    body = {"model": "assistant", "messages": [{"role": "user", "content": LEGAL}]}
    headers = {"authorization": f"Bearer {MASTER}"}
    by_endpoint = httpx.post(gw.url + "/v1/route/simulate", json=body, headers=headers)
    by_header = httpx.post(
        gw.url + "/v1/chat/completions",
        json={**body, "stream": True},
        headers={**headers, "x-aicp-mode": "simulate"},
    )
    messages = httpx.post(
        gw.url + "/v1/messages",
        json={**body, "max_tokens": 100},
        headers={"x-api-key": MASTER, "x-aicp-mode": "simulate"},
    )
    for resp in (by_endpoint, by_header, messages):
        assert resp.status_code == 200, resp.text
        record = resp.json()
        assert record["object"] == "aicp.simulation"
        assert record["classification"]["task_class"] == "legal"
        assert record["policy"]["forbidden"] == {"ext/big-model": ["no-external-legal"]}
        assert record["route"]["chosen"] == "loc/small-model"
        assert record["estimate"]["prompt_tokens"] > 0
        assert record["outcome"] == {"status": 200, "error": None}
    assert messages.json()["estimate"]["max_output_tokens"] == 100
    denied = httpx.post(
        gw.url + "/v1/route/simulate", json={**body, "model": "external-only"}, headers=headers
    ).json()
    assert denied["outcome"]["status"] == 403
    assert denied["outcome"]["error"]["code"] == "policy_denied"
    assert denied["route"] == {"chosen": None, "fallbacks": [], "forced": False}
    assert all(not _calls(up) for up in ups)
    receipt = _receipt(gw, by_endpoint.json()["receipt_id"])
    assert receipt["mode"] == "simulate"


def test_a_bad_mode_header_is_a_400_in_the_clients_format(gw: GatewayServer) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        _chat(_oai(gw), "hi", extra_headers={"x-aicp-mode": "dry-run"})
    assert caught.value.code == "invalid_mode"


def test_offline_mode_never_calls_an_external_route(
    ups: tuple[FakeUpstream, FakeUpstream],
) -> None:
    ext, loc = ups
    with GatewayServer(_settings(ext, loc)) as gw:
        raw = _chat(_oai(gw), "hello there", extra_headers={"x-aicp-mode": "offline"})
        assert raw.parse().choices[0].message.content and len(_calls(loc)) == 1
        assert _receipt(gw, raw.headers["x-aicp-receipt-id"])["mode"] == "offline"
    with GatewayServer(_settings(ext, loc, mode="offline")) as gw:
        _chat(_oai(gw), "hello again")
        with pytest.raises(openai.PermissionDeniedError) as caught:
            _chat(_oai(gw), "hello", model="external-only")
        assert "offline-local-only" in caught.value.message
        # Not even an admin's forced route leaves the machine in offline mode.
        with pytest.raises(openai.PermissionDeniedError):
            _chat(_oai(gw), "hi", extra_headers={"x-aicp-route": "ext/big-model"})
    assert not _calls(ext) and len(_calls(loc)) == 2


def test_a_production_tool_needs_an_admin_override(
    ups: tuple[FakeUpstream, FakeUpstream],
) -> None:
    ext, loc = ups
    tools = [{"type": "function", "function": {"name": "deploy_prod", "parameters": {}}}]
    with GatewayServer(_settings(ext, loc, policy={"production_tools": ["deploy_prod"]})) as gw:
        with admin_client(gw.url, MASTER) as admin:
            key = make_key(admin)["key"]
        with pytest.raises(openai.PermissionDeniedError) as caught:
            _chat(_oai(gw, key), "ship it", tools=tools)
        assert "production-tools-need-override" in caught.value.message
        with pytest.raises(openai.PermissionDeniedError):  # the master key alone is not enough
            _chat(_oai(gw), "ship it", tools=tools)
        raw = _chat(_oai(gw), "ship it", tools=tools, extra_headers={"x-aicp-override": "true"})
        assert raw.http_response.status_code == 200
        other = [{"type": "function", "function": {"name": "lookup", "parameters": {}}}]
        assert _chat(_oai(gw, key), "look it up", tools=other).http_response.status_code == 200
    assert len(_calls(ext)) == 2


def test_a_failing_route_is_avoided_while_another_serves_and_used_when_none_does(
    ups: tuple[FakeUpstream, FakeUpstream],
) -> None:
    ext, loc = ups
    reliability = {"max_retries": 0, "backoff_base_s": 0.01}
    with GatewayServer(_settings(ext, loc, reliability=reliability)) as gw:
        ext.fault(status=500, times=1)
        outcomes = []
        for _ in range(10):
            try:
                _chat(_oai(gw), "hello", model="external-only")
                outcomes.append("ok")
            except openai.InternalServerError:
                outcomes.append("failed")
        assert outcomes.count("failed") == 1  # 10% over the breaker's window: above 5%
        raw = _chat(_oai(gw), "hello")  # ext is forbidden while loc can serve
        receipt = _receipt(gw, raw.headers["x-aicp-receipt-id"])
        assert receipt["policy"][0]["forbidden"] == {"ext/big-model": ["error-rate"]}
        assert receipt["route"]["served"] == "loc/small-model"
        # The only route of a model: the soft policy gives way instead of failing the model.
        raw = _chat(_oai(gw), "hello", model="external-only")
        receipt = _receipt(gw, raw.headers["x-aicp-receipt-id"])
        assert receipt["policy"][0]["relaxed"] == ["error-rate"]
        assert receipt["route"]["served"] == "ext/big-model"


def test_policy_files_reload_and_a_bad_change_keeps_the_previous_set(
    ups: tuple[FakeUpstream, FakeUpstream], tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import time

    ext, loc = ups
    rules = tmp_path / "rules.cedar"
    rules.write_text(
        '@id("no-small") forbid (principal, action == Aicp::Action::"route", resource)\n'
        'when { resource.model == "small-model" };\n'
    )
    policy = {"dir": str(tmp_path), "reload_s": 0.05}
    with GatewayServer(_settings(ext, loc, policy=policy)) as gw:

        def served(text: str = "hello") -> str:
            raw = _chat(_oai(gw), text, extra_headers={"x-aicp-route": "loc/small-model"})
            return str(_receipt(gw, raw.headers["x-aicp-receipt-id"])["policy"][0])

        assert "no-small" in served()  # forced by the master key over the forbid
        rules.write_text('@id("broken") forbid (principal, action, resource) when { nope };\n')
        deadline = time.monotonic() + 5
        while "previous set stays active" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "rules.cedar" in caplog.text and "previous set stays active" in caplog.text
        assert "no-small" in served()  # the old set still decides
        rules.write_text(
            '@id("no-big") forbid (principal, action == Aicp::Action::"route", resource)\n'
            'when { resource.model == "big-model" };\n'
        )
        while "reloaded" not in caplog.text and time.monotonic() < deadline + 5:
            time.sleep(0.05)
        raw = _chat(_oai(gw), "hello")
        receipt = _receipt(gw, raw.headers["x-aicp-receipt-id"])
        assert receipt["policy"][0]["forbidden"] == {"ext/big-model": ["no-big"]}
