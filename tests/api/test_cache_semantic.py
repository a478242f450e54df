"""The semantic cache end to end with the local embedder: a paraphrase is answered
from the cache, a near miss (another city) is not, the evidence is in the receipt,
and a restarted gateway indexes the stored entries again."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from aicp.testing import FakeUpstream, GatewayServer
from tests.helpers import admin_client, make_settings

pytest.importorskip("numpy", reason="the semantic cache needs the `semantic` extra")
pytest.importorskip("wordllama", reason="the semantic cache needs the `semantic` extra")

MASTER = "sk-master-semantic-test"


def _settings(up: FakeUpstream, data_dir: str) -> Any:
    return make_settings(
        {
            "server": {"master_key": MASTER},
            "storage": {"data_dir": data_dir},
            "providers": {"up": {"type": "openai", "base_url": up.url + "/v1", "api_key": "sk-up"}},
            "models": [{"name": "m", "deployments": [{"provider": "up", "model": "fake-model"}]}],
            "cache": {"semantic": {"enabled": True}},
        }
    )


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream(reply="Paris.") as server:
        yield server


def _ask(gw: GatewayServer, text: str) -> tuple[str, dict[str, Any]]:
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=MASTER, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="m", messages=[{"role": "user", "content": text}]
    )
    with admin_client(gw.url, MASTER) as admin:
        receipt = admin.get(f"/v1/receipts/{raw.headers['x-aicp-receipt-id']}").json()["receipt"]
    return raw.parse().choices[0].message.content or "", receipt["cache"][0]


def _calls(up: FakeUpstream) -> int:
    return sum(1 for r in up.requests if r.method == "POST")


def test_a_paraphrase_hits_and_a_near_miss_does_not(up: FakeUpstream, tmp_path: Any) -> None:
    with GatewayServer(_settings(up, str(tmp_path))) as gw:
        answer, first = _ask(gw, "What is the capital of France?")
        assert first["result"] == "miss" and first["kind"] == "semantic"
        again, hit = _ask(gw, "what is the capital of france")
        assert (again, hit["result"], hit["kind"]) == (answer, "hit", "semantic")
        assert float(hit["semantic"]["score"]) >= 0.92
        assert _calls(up) == 1
        _, near = _ask(gw, "What is the capital of Germany?")
        assert near["result"] == "miss"
        assert _calls(up) == 2
    with GatewayServer(_settings(up, str(tmp_path))) as gw:  # a restart indexes them again
        _, after = _ask(gw, "What is the capital of France ?")
        assert after["result"] == "hit"
    assert _calls(up) == 2


def test_an_embeddings_deployment_embeds_but_never_for_confidential_requests(
    up: FakeUpstream, tmp_path: Any
) -> None:
    settings = make_settings(
        {
            "server": {"master_key": MASTER},
            "storage": {"data_dir": str(tmp_path)},
            "providers": {"up": {"type": "openai", "base_url": up.url + "/v1", "api_key": "sk-up"}},
            "models": [
                {"name": "m", "deployments": [{"provider": "up", "model": "fake-model"}]},
                {"name": "emb", "deployments": [{"provider": "up", "model": "fake-embed"}]},
            ],
            "cache": {"semantic": {"enabled": True, "embedder": "emb"}},
        }
    )

    def embeddings() -> int:
        return sum(1 for r in up.requests if r.path.endswith("/embeddings"))

    with GatewayServer(settings) as gw:
        probed = embeddings()  # start-up asks once, to learn the dimensions
        assert probed == 1
        _, first = _ask(gw, "What is the capital of Spain?")
        _, hit = _ask(gw, "what is the capital of spain")
        assert (first["result"], hit["result"]) == ("miss", "hit")
        _, near = _ask(gw, "What is the capital of Italy?")  # the guard, not the vectors
        assert near["result"] == "miss" and near["semantic"]["guard"]
        assert embeddings() == probed + 3
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key=MASTER, max_retries=0)
        client.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "What is the capital of Spain?"}],
            extra_headers={"x-aicp-sensitivity": "confidential"},
        )
        assert embeddings() == probed + 3  # a confidential question stays home
