"""A plain StageContext for running one built-in stage type in a test.

Also a priced gateway and a client of it, as fixtures: a test module takes
them with `gw = fake_ctx.gw` and `llm = fake_ctx.llm`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from aicp.config import Settings
from aicp.pipeline.gateway import HttpLlm
from aicp.pipeline.model import EmbedReply, Llm, LlmReply, Ref, Stage
from aicp.testing import FakeUpstream, GatewayServer
from tests.helpers import openai_settings

MASTER = "sk-master-pipeline-builtins"
#: `chat` on the fake upstream, priced so that every call costs something.
PRICED = [
    {
        "name": "chat",
        "deployments": [
            {
                "provider": "up",
                "model": "fake-model",
                "input_cost_per_mtok": 1000.0,
                "output_cost_per_mtok": 2000.0,
            }
        ],
    },
    {
        "name": "embedder",
        "deployments": [{"provider": "up", "model": "fake-embed", "input_cost_per_mtok": 500.0}],
    },
]


class NoLlm:
    """The gateway of a stage that must not call it."""

    def chat(self, model: str, messages: list[dict[str, Any]], **params: Any) -> LlmReply:
        raise AssertionError("this stage was given no gateway")

    def embed(self, model: str, inputs: list[str]) -> EmbedReply:
        raise AssertionError("this stage was given no gateway")


@dataclass
class FakeCtx:
    stage: Stage
    llm: Llm = field(default_factory=NoLlm)
    run_id: str = "run-test"
    params: Mapping[str, Any] = field(default_factory=dict)
    services: Mapping[str, Any] = field(default_factory=dict)
    receipts: list[tuple[str | None, float]] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)

    def record_receipt(self, receipt_id: str | None, cost_usd: float) -> None:
        self.receipts.append((receipt_id, cost_usd))

    def log_metric(self, name: str, value: float) -> None:
        self.metrics[name] = value


def stage(type_: str, inputs: tuple[str, ...] = (), **options: Any) -> Stage:
    """A stage of `type_` with these options and inputs (constants: only the names matter)."""
    return Stage(
        name=f"a_{type_}",
        type=type_,
        inputs={n: Ref("value") for n in inputs},
        options=options,
    )


def priced_settings(upstream: FakeUpstream) -> Settings:
    """A gateway with a master key, whose models `chat` and `embedder` cost money."""
    return openai_settings(upstream, server={"master_key": MASTER}, models=PRICED)


@pytest.fixture(scope="module")
def gw(module_upstream: FakeUpstream) -> Iterator[GatewayServer]:
    """A gateway on the module's fake upstream, with `priced_settings`."""
    with GatewayServer(priced_settings(module_upstream)) as server:
        yield server


@pytest.fixture
def llm(gw: GatewayServer, module_upstream: FakeUpstream) -> Iterator[HttpLlm]:
    """A client of `gw` with the master key; the upstream's faults and reply reset."""
    module_upstream.clear_faults()
    module_upstream.reply = "Hello from the fake upstream"
    with HttpLlm(gw.url, MASTER) as client:
        yield client


def receipt_cost(gw: GatewayServer, receipt_id: str) -> float:
    """The USD cost the gateway's receipt `receipt_id` records."""
    resp = httpx.get(
        f"{gw.url}/v1/receipts/{receipt_id}", headers={"authorization": f"Bearer {MASTER}"}
    )
    assert resp.status_code == 200, resp.text
    micros: int = resp.json()["receipt"]["cost_micros"]
    return micros / 1_000_000
