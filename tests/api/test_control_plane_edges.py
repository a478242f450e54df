"""The control plane's edges, each a way around a policy or a guard that must stay shut."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from aicp.testing import FakeUpstream, GatewayServer
from tests.api.test_control_plane import (
    LEGAL,
    MASTER,
    SECRET,
    _calls,
    _chat,
    _oai,
    _receipt,
    _sent_texts,
    _settings,
)
from tests.helpers import admin_client, make_key

BOTH = {
    "name": "both",
    "deployments": [
        {"provider": "ext", "model": "big-model"},
        {"provider": "loc", "model": "small-model"},
    ],
}


@pytest.fixture
def ups() -> Iterator[tuple[FakeUpstream, FakeUpstream]]:
    with FakeUpstream() as ext, FakeUpstream() as loc:
        yield ext, loc


def _with_both(ext: FakeUpstream, loc: FakeUpstream, **extra: Any) -> Any:
    settings = _settings(ext, loc, **extra)
    return settings.model_copy(
        update={"models": [*settings.models, type(settings.models[0])(**BOTH)]}
    )


def test_a_forced_name_with_several_deployments_never_escapes_offline_or_policy(
    ups: tuple[FakeUpstream, FakeUpstream],
) -> None:
    ext, loc = ups
    with GatewayServer(_with_both(ext, loc, mode="offline")) as gw:
        served = set()
        for _ in range(12):  # the forced name picks one deployment: the external one is refused
            try:
                raw = _chat(_oai(gw), "hi", extra_headers={"x-aicp-route": "both"})
            except openai.PermissionDeniedError as err:
                assert "offline-local-only" in err.message
                continue
            served.add(_receipt(gw, raw.headers["x-aicp-receipt-id"])["route"]["served"])
        assert served <= {"loc/small-model"}
    # No master key, forcing allowed for everyone: the anonymous caller is no admin.
    with GatewayServer(_with_both(ext, loc, server={"allow_forced_routes": True})) as gw:
        for _ in range(12):
            try:
                raw = _chat(_oai(gw, "unused"), LEGAL, extra_headers={"x-aicp-route": "both"})
            except openai.PermissionDeniedError as err:
                assert "no-external-legal" in err.message
                continue
            assert raw.http_response.status_code == 200
    assert not _calls(ext)


def test_a_task_class_hint_cannot_talk_legal_text_out_of_the_legal_policies(
    ups: tuple[FakeUpstream, FakeUpstream],
) -> None:
    ext, loc = ups
    with GatewayServer(_settings(ext, loc)) as gw:
        with admin_client(gw.url, MASTER) as admin:
            key = make_key(admin)["key"]
        raw = _chat(_oai(gw, key), LEGAL, extra_headers={"x-aicp-task-class": "general"})
        receipt = _receipt(gw, raw.headers["x-aicp-receipt-id"])
        assert receipt["classification"]["task_class"] == "legal"
        assert receipt["route"]["served"] == "loc/small-model"
        # On text the classifier has no opinion about, the hint names the class.
        raw = _chat(_oai(gw, key), "hello", extra_headers={"x-aicp-task-class": "legal"})
        receipt = _receipt(gw, raw.headers["x-aicp-receipt-id"])
        assert receipt["classification"]["task_class"] == "legal"
    assert not _calls(ext)


def test_count_tokens_and_legacy_functions_go_through_the_guards_and_policies(
    ups: tuple[FakeUpstream, FakeUpstream],
) -> None:
    ext, loc = ups
    policy = {"production_tools": ["deploy_prod"]}
    with GatewayServer(_settings(ext, loc, policy=policy)) as gw:
        client = anthropic.Anthropic(base_url=gw.url, api_key=MASTER, max_retries=0)
        with pytest.raises(anthropic.BadRequestError):
            client.messages.count_tokens(
                model="assistant", messages=[{"role": "user", "content": f"key {SECRET}"}]
            )
        with pytest.raises(openai.PermissionDeniedError) as caught:
            _chat(_oai(gw), "ship", functions=[{"name": "deploy_prod", "parameters": {}}])
        assert "production-tools-need-override" in caught.value.message
    assert not _calls(ext) and not _calls(loc)


def test_redacted_secrets_are_not_findings_for_the_block_secrets_policy(
    ups: tuple[FakeUpstream, FakeUpstream],
) -> None:
    ext, loc = ups
    guard = {"input": {"secrets": {"action": "redact"}}}
    with GatewayServer(_settings(ext, loc, guardrails=guard)) as gw:
        raw = _chat(_oai(gw), f"why is {SECRET} rejected?")
        assert raw.http_response.status_code == 200
    assert SECRET not in _sent_texts(ext) and "<SECRET_1>" in _sent_texts(ext)


def test_the_models_own_pii_is_redacted_and_never_turned_into_the_callers(
    ups: tuple[FakeUpstream, FakeUpstream],
) -> None:
    ext, loc = ups
    guard = {"input": {"pii": {"action": "redact"}}, "output": {"pii": {"action": "redact"}}}
    with GatewayServer(_settings(ext, loc, guardrails=guard)) as gw:
        ext.reply = "Write to <EMAIL_1> or to bob@corp.example.com"
        answer = _chat(_oai(gw), "I am jane@example.com").parse().choices[0].message.content
    assert answer == "Write to jane@example.com or to <REDACTED_EMAIL_1>"


def test_out_of_range_hints_are_ignored_not_a_500(gw_plain: GatewayServer) -> None:
    for value in ("99999999999999999999", "9999999999999999999", "-5", "soon"):
        raw = _chat(_oai(gw_plain), "hi", extra_headers={"x-aicp-latency-sla-ms": value})
        assert raw.http_response.status_code == 200


@pytest.fixture
def gw_plain(ups: tuple[FakeUpstream, FakeUpstream]) -> Iterator[GatewayServer]:
    with GatewayServer(_settings(*ups)) as server:
        yield server


def test_kept_bodies_never_hold_what_a_guard_found_and_hints_never_reach_providers(
    ups: tuple[FakeUpstream, FakeUpstream],
) -> None:
    ext, loc = ups
    with GatewayServer(_settings(ext, loc, receipts={"bodies": "full"})) as gw:
        with pytest.raises(openai.BadRequestError) as caught:
            _chat(_oai(gw), f"deploy with {SECRET}")
        receipt_id = caught.value.response.headers["x-aicp-receipt-id"]
        with admin_client(gw.url, MASTER) as admin:
            body = admin.get(f"/v1/receipts/{receipt_id}/body")
        assert body.status_code == 200 and SECRET not in body.text and "SECRET_1" in body.text
        _chat(_oai(gw), "hello", metadata={"aicp_task_class": "legal", "team": "a"})
    sent = [r.body for r in _calls(loc)]
    assert sent and sent[0]["metadata"] == {"team": "a"}


def test_a_replayed_offline_request_is_simulated_offline(
    ups: tuple[FakeUpstream, FakeUpstream],
) -> None:
    import httpx

    ext, loc = ups
    with GatewayServer(_settings(ext, loc, receipts={"bodies": "full"})) as gw:
        raw = _chat(_oai(gw), "hello", extra_headers={"x-aicp-mode": "offline"})
        resp = httpx.post(
            f"{gw.url}/admin/replay",
            json={"receipt_id": raw.headers["x-aicp-receipt-id"]},
            headers={"authorization": f"Bearer {MASTER}"},
        )
        assert resp.status_code == 200, resp.text
        after = resp.json()["replay"]
        assert after["served"] == "loc/small-model"
        policy = dict(after["decisions"])["policy"]
        assert policy["forbidden"] == {"ext/big-model": ["offline-local-only"]}
    assert not _calls(ext)


def test_a_replay_asks_with_the_originals_hints(
    ups: tuple[FakeUpstream, FakeUpstream],
) -> None:
    import httpx

    ext, loc = ups
    with GatewayServer(_settings(ext, loc, receipts={"bodies": "full"})) as gw:
        raw = _chat(_oai(gw), "hello", extra_headers={"x-aicp-sensitivity": "restricted"})
        receipt = _receipt(gw, raw.headers["x-aicp-receipt-id"])
        assert receipt["hints"] == {"x-aicp-sensitivity": "restricted"}
        resp = httpx.post(
            f"{gw.url}/admin/replay",
            json={"receipt_id": raw.headers["x-aicp-receipt-id"]},
            headers={"authorization": f"Bearer {MASTER}"},
        )
        assert resp.status_code == 200, resp.text
        policy = dict(resp.json()["replay"]["decisions"])["policy"]
        assert policy["forbidden"] == {"ext/big-model": ["no-external-restricted"]}


def test_a_secret_inside_an_anthropic_tool_call_input_is_blocked(
    ups: tuple[FakeUpstream, FakeUpstream],
) -> None:
    ext, loc = ups
    with GatewayServer(_settings(ext, loc)) as gw:
        client = anthropic.Anthropic(base_url=gw.url, api_key=MASTER, max_retries=0)
        call = {"type": "tool_use", "id": "t1", "name": "login", "input": {"token": SECRET}}
        result = {"type": "tool_result", "tool_use_id": "t1", "content": "ok"}
        with pytest.raises(anthropic.BadRequestError):
            client.messages.create(
                model="assistant",
                max_tokens=20,
                messages=[
                    {"role": "user", "content": "log in"},
                    {"role": "assistant", "content": [call]},  # type: ignore[list-item]
                    {"role": "user", "content": [result]},  # type: ignore[list-item]
                ],
            )
    assert not _calls(ext) and not _calls(loc)


def test_a_streamed_secret_is_in_the_receipt_and_a_block_cuts_the_stream(
    ups: tuple[FakeUpstream, FakeUpstream],
) -> None:
    ext, loc = ups
    key = "AKIAIOSFODNN7EXAMPLE"
    ext.reply = f"Here it is: {key} and then more words after it"
    guard = {"output": {"secrets": {"action": "redact"}}}
    with GatewayServer(_settings(ext, loc, guardrails=guard)) as gw:
        with _oai(gw).chat.completions.with_streaming_response.create(
            model="assistant", messages=[{"role": "user", "content": "key?"}], stream=True
        ) as resp:
            receipt_id = resp.headers["x-aicp-receipt-id"]
            text = "".join(c.choices[0].delta.content or "" for c in resp.parse() if c.choices)
        assert key not in text and text.endswith("more words after it")
        receipt = _receipt(gw, receipt_id)
        record = receipt["guardrails"][-1]  # after the input guard's
        assert record["result"] == "redacted" and record["stream"] is True
        assert [(f["kind"], f["action"]) for f in record["findings"]] == [
            ("aws_access_key", "redact")
        ]
        assert key not in str(receipt)
    guard = {"output": {"secrets": {"action": "block"}}}
    with GatewayServer(_settings(ext, loc, guardrails=guard)) as gw:
        stream = _oai(gw).chat.completions.create(
            model="assistant", messages=[{"role": "user", "content": "key?"}], stream=True
        )
        seen = ""
        with pytest.raises(openai.APIError) as caught:
            for chunk in stream:
                seen += "".join(c.delta.content or "" for c in chunk.choices)
        assert "secrets output guardrail" in caught.value.message
        assert key not in seen and "more words" not in seen
        receipt_id = stream.response.headers["x-aicp-receipt-id"]
        receipt = _receipt(gw, receipt_id)
        assert receipt["error"]["code"] == "guardrail_blocked"
        assert receipt["guardrails"][-1]["result"] == "blocked"
        with admin_client(gw.url, MASTER) as admin:
            view = admin.get("/v1/providers/health").json()["deployments"]["ext/big-model"]
    # A guardrail's cut is not the upstream's failure.
    assert view["window_failures"] == 0 and view["window_requests"] == 1


def test_a_teams_trust_cap_lowers_its_keys_trust_at_once(gw_plain: GatewayServer) -> None:
    with admin_client(gw_plain.url, MASTER) as admin:
        team = admin.post("/admin/teams", json={"name": "contractors"}).json()
        key = make_key(admin, team_id=team["id"], trust_level=3)["key"]
        first = _chat(_oai(gw_plain, key), "hello")
        trust = _receipt(gw_plain, first.headers["x-aicp-receipt-id"])["classification"]["trust"]
        assert trust == 3
        resp = admin.patch(f"/admin/teams/{team['id']}", json={"metadata": {"max_trust_level": 1}})
        assert resp.status_code == 200, resp.text
        second = _chat(_oai(gw_plain, key), "hello")
    receipt = _receipt(gw_plain, second.headers["x-aicp-receipt-id"])
    assert receipt["classification"]["trust"] == 1 and receipt["principal"]["trust_level"] == 1


def test_a_policys_redact_names_a_kind_and_only_that_kind_is_redacted(
    ups: tuple[FakeUpstream, FakeUpstream], tmp_path: Any
) -> None:
    ext, loc = ups
    (tmp_path / "redact.cedar").write_text(
        '@id("mask-email")\n@redact("email")\n'
        'permit(principal, action == Aicp::Action::"route", resource);\n'
    )
    guard = {"input": {"pii": {"action": "flag"}}}
    settings = _settings(ext, loc, guardrails=guard, policy={"dir": str(tmp_path)})
    with GatewayServer(settings) as gw:
        raw = _chat(_oai(gw), "Mail jane.doe@example.com or call +1 415 555 0134 today")
        assert raw.http_response.status_code == 200
    sent = _sent_texts(ext) + _sent_texts(loc)
    assert "jane.doe@example.com" not in sent and "<EMAIL_1>" in sent
    assert "+1 415 555 0134" in sent  # flagged only: no policy asked for phones
