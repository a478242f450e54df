"""The model registry drives live gateway aliases: asserted through real requests."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator

import httpx
import openai
import pytest
from typer.testing import CliRunner

from aicp.cli.main import app
from aicp.config import Settings
from aicp.testing import FakeUpstream, GatewayServer
from tests.helpers import make_key, openai_settings
from tests.pipeline.fake_ctx import MASTER, PRICED

pytest.importorskip("mlflow", reason="the model registry needs the `mlops` extra (MLflow)")


@pytest.fixture
def data_dir() -> str:
    return tempfile.mkdtemp(prefix="aicp-registry-")


def settings(upstream: FakeUpstream, data_dir: str) -> Settings:
    return openai_settings(
        upstream, server={"master_key": MASTER}, models=PRICED, storage={"data_dir": data_dir}
    )


@pytest.fixture
def gateways(upstream: FakeUpstream, data_dir: str) -> Iterator[tuple[GatewayServer, ...]]:
    """Two gateway processes' worth of gateways on one database."""
    with (
        GatewayServer(settings(upstream, data_dir)) as one,
        GatewayServer(settings(upstream, data_dir)) as two,
    ):
        yield one, two


def admin_client(url: str, key: str) -> httpx.Client:
    # MLflow's first use (import, then creating its database) takes seconds.
    return httpx.Client(base_url=url, headers={"authorization": f"Bearer {key}"}, timeout=60)


def served(upstream: FakeUpstream, gw: GatewayServer) -> str:
    """The upstream model that answered a request for the alias `assistant`."""
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=MASTER, max_retries=0)
    before = len(upstream.requests)
    client.chat.completions.create(model="assistant", messages=[{"role": "user", "content": "hi"}])
    body = upstream.requests[before].body
    return str(body["model"])


def eventually(check: Callable[[], str], expected: str, within_s: float = 1.0) -> float:
    """Seconds until `check()` returns `expected` (fails after `within_s`)."""
    started = time.monotonic()
    while True:
        try:
            got = check()
        except openai.NotFoundError:
            got = "<no such model yet>"
        if got == expected:
            return time.monotonic() - started
        assert time.monotonic() - started < within_s, f"still {got!r}, wanted {expected!r}"
        time.sleep(0.05)


def test_promotion_moves_the_live_alias_and_rollback_moves_it_back(
    gateways: tuple[GatewayServer, GatewayServer], upstream: FakeUpstream
) -> None:
    one, two = gateways
    assert one.app.state is not None
    heard: list[tuple[str, dict[str, object]]] = []
    one.app.state.events.subscribe(
        lambda e: heard.append((e.type, e.data)),
        types=["registry.registered", "registry.promoted", "registry.rolled_back"],
    )
    with admin_client(one.url, MASTER) as admin:
        v1 = admin.post("/v1/registry/models/assistant/versions", json={"target": "up/fake-model"})
        assert v1.status_code == 201, v1.text
        v2 = admin.post(
            "/v1/registry/models/assistant/versions",
            json={"target": "up/fake-model-2", "params": {"temperature": 0.1}},
        )
        assert (v1.json()["version"], v2.json()["version"]) == ("1", "2")
        # Nothing is bound before a promotion: the alias does not exist yet.
        client = openai.OpenAI(base_url=one.url + "/v1", api_key=MASTER, max_retries=0)
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(
                model="assistant", messages=[{"role": "user", "content": "x"}]
            )

        assert (
            admin.post("/v1/registry/models/assistant/promote", json={"version": "1"}).status_code
            == 200
        )
        assert served(upstream, one) == "fake-model"  # the promoting process: at once
        eventually(lambda: served(upstream, two), "fake-model")  # another: within a second

        moved = admin.post("/v1/registry/models/assistant/promote", json={"version": "2"}).json()
        assert (moved["version"], moved["previous_version"]) == ("2", "1")
        assert served(upstream, one) == "fake-model-2"
        # The version's parameters are defaults the client did not set.
        assert upstream.requests[-1].body["temperature"] == 0.1
        eventually(lambda: served(upstream, two), "fake-model-2")

        back = admin.post("/v1/registry/models/assistant/rollback").json()
        assert (back["version"], back["previous_version"]) == ("1", "2")
        assert served(upstream, one) == "fake-model"
        eventually(lambda: served(upstream, two), "fake-model")

        history = admin.get("/v1/registry/models/assistant/history").json()["data"]
        assert [h["action"] for h in history] == [
            "register",
            "register",
            "promote",
            "promote",
            "rollback",
        ]
        listed = admin.get("/v1/registry/models/assistant").json()
        assert listed["production"] == "1"
    assert [t for t, _ in heard] == [
        "registry.registered",
        "registry.registered",
        "registry.promoted",
        "registry.promoted",
        "registry.rolled_back",
    ]
    assert heard[-1][1]["version"] == "1" and heard[-1][1]["previous_version"] == "2"


def test_the_receipt_names_the_registered_version(
    gateways: tuple[GatewayServer, GatewayServer], upstream: FakeUpstream
) -> None:
    one, _ = gateways
    with admin_client(one.url, MASTER) as admin:
        admin.post("/v1/registry/models/assistant/versions", json={"target": "up/fake-model"})
        admin.post("/v1/registry/models/assistant/promote", json={"version": "1"})
        resp = admin.post(
            "/v1/chat/completions",
            json={"model": "assistant", "messages": [{"role": "user", "content": "hi"}]},
        )
        receipt_id = resp.headers["x-aicp-receipt-id"]
        receipt = admin.get(f"/v1/receipts/{receipt_id}").json()["receipt"]
        assert receipt["labels"]["registry"] == "assistant@1"


def test_changing_the_registry_needs_an_admin_and_a_routable_target(
    gateways: tuple[GatewayServer, GatewayServer],
) -> None:
    one, _ = gateways
    with admin_client(one.url, MASTER) as admin:
        member_key = make_key(admin, name="registry member")["key"]
        unknown = admin.post("/v1/registry/models/assistant/versions", json={"target": "nowhere"})
        assert unknown.status_code == 409 and "nowhere" in unknown.json()["error"]["message"]
        nothing = admin.post("/v1/registry/models/assistant/rollback")
        assert nothing.status_code == 404
    with admin_client(one.url, member_key) as member:
        refused = member.post(
            "/v1/registry/models/assistant/versions", json={"target": "up/fake-model"}
        )
        assert refused.status_code == 403
        assert member.get("/v1/registry/models").status_code == 200


def test_the_registry_cli(
    gateways: tuple[GatewayServer, GatewayServer],
    upstream: FakeUpstream,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    one, _ = gateways
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(app, ["registry", *args, "--url", one.url, "--key", MASTER])
        assert result.exit_code == 0, result.output
        return result.output

    assert "v1 -> up/fake-model" in run("register", "assistant", "--target", "up/fake-model")
    assert "production v1" in run("promote", "assistant", "1")
    run("register", "assistant", "--target", "up/fake-model-2", "--staging")
    assert "production v2" in run("promote", "assistant", "--from", "staging")
    assert served(upstream, one) == "fake-model-2"
    assert "production v1" in run("rollback", "assistant")
    listing = run("list")
    assert "assistant" in listing and "production v1" in listing
    assert "rollback" in run("history", "assistant")
    with httpx.Client(base_url=one.url) as anon:
        assert anon.get("/v1/registry/models").status_code == 401


def test_a_promotion_that_changes_only_parameters_does_not_serve_the_old_answers(
    upstream: FakeUpstream, data_dir: str
) -> None:
    cached = openai_settings(
        upstream,
        server={"master_key": MASTER},
        models=PRICED,
        storage={"data_dir": data_dir},
        cache={"exact": {"enabled": True}, "semantic": {"enabled": True}},
    )
    ask = {"model": "assistant", "messages": [{"role": "user", "content": "Name one colour."}]}
    with GatewayServer(cached) as gw, admin_client(gw.url, MASTER) as admin:
        for params in ({"temperature": 0.1}, {"temperature": 0.9}):
            made = admin.post(
                "/v1/registry/models/assistant/versions",
                json={"target": "up/fake-model", "params": params},
            )
            assert made.status_code == 201, made.text
        admin.post("/v1/registry/models/assistant/promote", json={"version": "1"})
        before = len(upstream.requests)
        for _ in range(2):
            assert admin.post("/v1/chat/completions", json=ask).status_code == 200
        assert len(upstream.requests) == before + 1  # the second from the cache
        admin.post("/v1/registry/models/assistant/promote", json={"version": "2"})
        assert admin.post("/v1/chat/completions", json=ask).status_code == 200
        # Same target, other parameters: neither cache answers for version 2.
        assert len(upstream.requests) == before + 2
        assert upstream.requests[-1].body["temperature"] == 0.9
        hit = admin.post("/v1/chat/completions", json=ask)
        assert len(upstream.requests) == before + 2  # and version 2's answer is cached
        receipt = admin.get(f"/v1/receipts/{hit.headers['x-aicp-receipt-id']}").json()["receipt"]
        assert receipt["labels"]["registry"] == "assistant@2"
