"""Bad requests get a clear error in the client's own format, and the gateway keeps serving.

OpenAI endpoints answer `{"error": {"message", "type", "param", "code"}}`; Anthropic's
`/v1/messages` answers `{"type": "error", "error": {"type", "message"}}`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from aicp.testing import GatewayServer
from tests.helpers import make_settings

LIMIT = 4096
CHAT = "/v1/chat/completions"
EMBED = "/v1/embeddings"
MESSAGES = "/v1/messages"
GOOD_CHAT: dict[str, Any] = {"model": "mock/mock-1", "messages": [{"role": "user", "content": "x"}]}
GOOD_EMBED: dict[str, Any] = {"model": "mock/mock-embed", "input": "x"}
GOOD_MESSAGES: dict[str, Any] = {**GOOD_CHAT, "max_tokens": 16}
GOOD = {CHAT: GOOD_CHAT, EMBED: GOOD_EMBED, MESSAGES: GOOD_MESSAGES}


@pytest.fixture(scope="module")
def gateway() -> Iterator[GatewayServer]:
    with GatewayServer(make_settings({"server": {"max_body_bytes": LIMIT}})) as gw:
        yield gw


@pytest.fixture
def http(gateway: GatewayServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        yield client
    # Whatever the test sent, the gateway still answers a good request afterwards.
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        assert_mock_reply(client.post(CHAT, json=GOOD_CHAT))


def assert_mock_reply(resp: httpx.Response) -> None:
    """The mock provider's answer to GOOD_CHAT, not merely a 200."""
    assert resp.status_code == 200, resp.text
    assert resp.json()["choices"][0]["message"]["content"] == "Mock reply to: x"


def openai_error(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.headers.get("x-request-id")
    body = resp.json()
    assert set(body) == {"error"}
    err: dict[str, Any] = body["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert isinstance(err["message"], str) and err["message"]
    return err


def anthropic_error(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert body["type"] == "error"
    err: dict[str, Any] = body["error"]
    assert set(err) == {"type", "message"}
    assert isinstance(err["message"], str) and err["message"]
    return err


def error_of(path: str, resp: httpx.Response, status: int) -> dict[str, Any]:
    return anthropic_error(resp, status) if path == MESSAGES else openai_error(resp, status)


ALL_PATHS = pytest.mark.parametrize("path", [CHAT, EMBED, MESSAGES])


# --- bodies that are not a JSON object -----------------------------------------------------


@ALL_PATHS
def test_malformed_json(http: httpx.Client, path: str) -> None:
    resp = http.post(path, content=b'{"model": "mock/mock-1", "messages": [', headers=_json())
    err = error_of(path, resp, 400)
    assert err["type"] == "invalid_request_error"
    assert "not valid JSON" in err["message"]


@ALL_PATHS
def test_json_array_body(http: httpx.Client, path: str) -> None:
    resp = http.post(path, content=b"[1, 2]", headers=_json())
    err = error_of(path, resp, 400)
    assert "must be a JSON object" in err["message"]


@ALL_PATHS
def test_empty_body(http: httpx.Client, path: str) -> None:
    err = error_of(path, http.post(path, content=b"", headers=_json()), 400)
    assert "empty" in err["message"]


@ALL_PATHS
def test_invalid_utf8(http: httpx.Client, path: str) -> None:
    raw = b'{"model": "mock/mock-1", "input": "\xff\xfe", "messages": []}'
    err = error_of(path, http.post(path, content=raw, headers=_json()), 400)
    assert "UTF-8" in err["message"]


def test_trailing_garbage_after_the_object(http: httpx.Client) -> None:
    raw = b'{"model": "mock/mock-1", "messages": [{"role": "user", "content": "x"}]} junk'
    err = openai_error(http.post(CHAT, content=raw, headers=_json()), 400)
    assert "not valid JSON" in err["message"]


# --- wrong types and missing fields ---------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "param", "words"),
    [
        ({"messages": "hello"}, "messages", "'messages' must be an array, not a string"),
        ({"stream": "yes"}, "stream", "'stream' must be a boolean, not a string"),
        ({"n": 0}, "n", "'n' must be at least 1"),
        ({"n": "2"}, "n", "'n' must be an integer"),
        ({"model": 42}, "model", "'model' must be a string, not an integer"),
        ({"model": ""}, "model", "'model' must not be empty"),
        ({"messages": []}, "messages", "at least one message"),
        ({"messages": ["hi"]}, "messages[0]", "messages[0] must be an object"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role", "role"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content", "content"),
        ({"temperature": "hot"}, "temperature", "'temperature' must be a number"),
        ({"max_tokens": 0}, "max_tokens", "'max_tokens' must be at least 1"),
        ({"tools": {"a": 1}}, "tools", "'tools' must be an array"),
        ({"stream_options": True}, "stream_options", "must be an object"),
        ({"tools": [1]}, "tools[0]", "tools[0] must be an object"),
        ({"tools": [{"type": "function", "function": "f"}]}, "tools[0].function", "object"),
        ({"tool_choice": 3}, "tool_choice", "'tool_choice' must be a string or an object"),
        (
            {"tool_choice": {"type": "function", "function": "f"}},
            "tool_choice.function",
            "tool_choice.function must be an object",
        ),
    ],
)
def test_chat_wrong_types(
    http: httpx.Client, change: dict[str, Any], param: str, words: str
) -> None:
    err = openai_error(http.post(CHAT, json={**GOOD_CHAT, **change}), 400)
    assert err["type"] == "invalid_request_error"
    assert err["param"] == param
    assert words in err["message"]


@pytest.mark.parametrize("missing", ["model", "messages"])
def test_chat_missing_fields(http: httpx.Client, missing: str) -> None:
    body = {k: v for k, v in GOOD_CHAT.items() if k != missing}
    err = openai_error(http.post(CHAT, json=body), 400)
    assert err["param"] == missing
    assert f"'{missing}' is a required property" in err["message"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"model": "mock/mock-embed"}, "'input' is a required property"),
        ({"input": "x"}, "'model' is a required property"),
        ({"model": "mock/mock-embed", "input": 5}, "'input' must be a string or an array"),
        ({"model": "mock/mock-embed", "input": []}, "'input' must not be empty"),
    ],
)
def test_embeddings_bad_fields(http: httpx.Client, body: dict[str, Any], words: str) -> None:
    err = openai_error(http.post(EMBED, json=body), 400)
    assert words in err["message"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"model": "mock/mock-1", "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
        ({"max_tokens": 16, "messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "mock/mock-1", "max_tokens": 16}, "messages"),
        ({**GOOD_MESSAGES, "max_tokens": "16"}, "'max_tokens' must be an integer"),
        ({**GOOD_MESSAGES, "max_tokens": 0}, "max_tokens"),
        ({**GOOD_MESSAGES, "messages": "hi"}, "'messages' must be an array"),
        ({**GOOD_MESSAGES, "messages": [{"role": "system", "content": "x"}]}, "role"),
        ({**GOOD_MESSAGES, "stream": "yes"}, "'stream' must be a boolean"),
        ({**GOOD_MESSAGES, "model": 7}, "'model' must be a string"),
    ],
)
def test_messages_bad_fields(http: httpx.Client, body: dict[str, Any], words: str) -> None:
    err = anthropic_error(http.post(MESSAGES, json=body), 400)
    assert err["type"] == "invalid_request_error"
    assert words in err["message"]


# --- unknown models, size limits, routes ------------------------------------------------------


@ALL_PATHS
def test_unknown_model_is_404(http: httpx.Client, path: str) -> None:
    resp = http.post(path, json={**GOOD[path], "model": "nobody/has-this"})
    err = error_of(path, resp, 404)
    assert "nobody/has-this" in err["message"]
    if path == MESSAGES:
        assert err["type"] == "not_found_error"
    else:
        assert err["code"] == "model_not_found"


@ALL_PATHS
def test_body_over_the_limit_with_content_length(http: httpx.Client, path: str) -> None:
    body = b'{"pad": "' + b"x" * (LIMIT + 10) + b'"}'
    resp = http.post(path, content=body, headers=_json())
    assert "content-length" in {k.lower() for k in resp.request.headers}
    err = error_of(path, resp, 413)
    assert str(LIMIT) in err["message"]
    if path == MESSAGES:
        assert err["type"] == "request_too_large"
    else:
        assert err["code"] == "request_too_large"


@ALL_PATHS
def test_body_over_the_limit_chunked(http: httpx.Client, path: str) -> None:
    def pieces() -> Iterator[bytes]:
        yield b'{"pad": "'
        for _ in range(4):
            yield b"x" * (LIMIT // 2)
        yield b'"}'

    resp = http.post(path, content=pieces(), headers=_json())
    assert resp.request.headers.get("transfer-encoding") == "chunked"
    err = error_of(path, resp, 413)
    assert str(LIMIT) in err["message"]


def test_body_just_under_the_limit_is_accepted(http: httpx.Client) -> None:
    pad = "y" * (LIMIT - 200)
    resp = http.post(CHAT, json={**GOOD_CHAT, "metadata": {"pad": pad}})
    assert_mock_reply(resp)


def test_huge_body_is_refused_and_the_connection_still_works(http: httpx.Client) -> None:
    for _ in range(2):
        err = openai_error(http.post(CHAT, content=b"x" * (4 * 1024 * 1024), headers=_json()), 413)
        assert err["code"] == "request_too_large"
        assert_mock_reply(http.post(CHAT, json=GOOD_CHAT))


@pytest.mark.parametrize("path", ["/v1/nothing-here", "/v2/chat/completions", "/"])
def test_unknown_path_is_404_json(http: httpx.Client, path: str) -> None:
    err = openai_error(http.post(path, json=GOOD_CHAT), 404)
    assert path in err["message"]
    assert err["type"] == "not_found_error"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", CHAT, "POST"),
        ("PUT", EMBED, "POST"),
        ("DELETE", "/chat/completions", "POST"),
        ("POST", "/v1/models", "GET"),
        ("GET", MESSAGES, "POST"),
    ],
)
def test_wrong_method_is_405(http: httpx.Client, method: str, path: str, allowed: str) -> None:
    resp = http.request(method, path)
    err = anthropic_error(resp, 405) if path == MESSAGES else openai_error(resp, 405)
    assert allowed in resp.headers["allow"]
    assert method in err["message"]
    assert allowed in err["message"]


def test_errors_echo_the_client_request_id(http: httpx.Client) -> None:
    resp = http.post(CHAT, content=b"nope", headers={**_json(), "x-request-id": "trace-42"})
    openai_error(resp, 400)
    assert resp.headers["x-request-id"] == "trace-42"


def test_many_bad_requests_then_good_ones(http: httpx.Client) -> None:
    bad = [b"", b"[", b"[]", b"\xff", b'{"model": 1}', b"null", b"123", b'"s"']
    for raw in bad * 5:
        err = openai_error(http.post(CHAT, content=raw, headers=_json()), 400)
        assert err["type"] == "invalid_request_error"
    for _ in range(3):
        assert_mock_reply(http.post(CHAT, json=GOOD_CHAT))


# --- the master key ---------------------------------------------------------------------------

MASTER = "sk-master-test-key"


@pytest.fixture(scope="module")
def locked() -> Iterator[GatewayServer]:
    with GatewayServer(make_settings({"server": {"master_key": MASTER}})) as gw:
        yield gw


@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": "Bearer"}, {"authorization": f"Basic {MASTER}"}],
    ids=["none", "empty-bearer", "basic-scheme"],
)
def test_no_key_is_401(locked: GatewayServer, headers: dict[str, str]) -> None:
    resp = httpx.post(locked.url + CHAT, json=GOOD_CHAT, headers=headers)
    err = openai_error(resp, 401)
    assert err["type"] == "authentication_error"
    assert "key" in err["message"]


@pytest.mark.parametrize(
    "headers",
    [
        {"authorization": "Bearer sk-wrong"},
        {"x-api-key": "sk-wrong"},
        {"api-key": MASTER + "x"},
        {"authorization": f"Bearer {MASTER[:-1]}"},
    ],
)
def test_wrong_key_is_401(locked: GatewayServer, headers: dict[str, str]) -> None:
    err = openai_error(httpx.post(locked.url + CHAT, json=GOOD_CHAT, headers=headers), 401)
    assert err["type"] == "authentication_error"
    assert MASTER not in err["message"]


def test_wrong_key_on_messages_is_anthropic_401(locked: GatewayServer) -> None:
    resp = httpx.post(locked.url + MESSAGES, json=GOOD_MESSAGES, headers={"x-api-key": "nope"})
    assert anthropic_error(resp, 401)["type"] == "authentication_error"


@pytest.mark.parametrize(
    "headers",
    [
        {"authorization": f"Bearer {MASTER}"},
        {"authorization": f"bearer {MASTER}"},
        {"x-api-key": MASTER},
        {"api-key": MASTER},
    ],
    ids=["bearer", "bearer-lowercase", "x-api-key", "api-key"],
)
def test_master_key_accepted_in_each_header(locked: GatewayServer, headers: dict[str, str]) -> None:
    assert_mock_reply(httpx.post(locked.url + CHAT, json=GOOD_CHAT, headers=headers))
    embed = httpx.post(locked.url + EMBED, json=GOOD_EMBED, headers=headers)
    assert embed.status_code == 200, embed.text
    assert [len(e["embedding"]) for e in embed.json()["data"]] == [16]
    models = httpx.get(locked.url + "/v1/models", headers=headers)
    assert models.status_code == 200, models.text
    assert "mock/mock-1" in [m["id"] for m in models.json()["data"]]


def test_model_list_needs_the_key(locked: GatewayServer) -> None:
    openai_error(httpx.get(locked.url + "/v1/models"), 401)
    # Liveness stays open for load balancers.
    assert httpx.get(locked.url + "/health").status_code == 200


def _json() -> dict[str, str]:
    return {"content-type": "application/json"}


async def test_requests_before_start_up_finished_get_503() -> None:
    from aicp.app import create_app

    # Without the lifespan having run, the app holds no providers yet.
    transport = httpx.ASGITransport(app=create_app(make_settings({})))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        chat = await client.post(CHAT, json=GOOD_CHAT)
        err = openai_error(chat, 503)
        assert "starting" in err["message"]
        assert chat.headers["retry-after"] == "1"
        messages = await client.post(MESSAGES, json=GOOD_MESSAGES)
        assert "starting" in anthropic_error(messages, 503)["message"]
