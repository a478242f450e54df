"""The eval through the gateway: real requests, fake upstreams whose faults are the fleet.

Each route of the fleet is an `openai` provider on its own `FakeUpstream` over
loopback, priced with `input_cost_per_mtok` / `output_cost_per_mtok` so that a
request costs what the fleet says, behind one `strategy: learned` model. Every
request that reaches an upstream gets a fault drawn by the upstream's `chaos`
hook from the route's truth at the current request (`SimulatedFleet.outcome`):
a 503 at the route's error rate, and a delay of the drawn latency scaled down by
`Pace.latency_scale`, so the change at `change_at` happens in the faults alone.

Requests go through the whole request path of an app driven in process (httpx's
`ASGITransport`, no socket on the gateway's side) and arrive open loop, one every
`Pace.step_s` seconds whatever is still in flight, the way traffic does. Route
memory decays in wall time, so its half-life is set to the eval's half-life in
requests times the step. A success is scored by the fleet's users as in the
simulation, through `POST /v1/feedback`. Which route each request went to first
is read from its receipt (`attempts[0]`) after the run.

The gateway falls back to the next route when the first fails, and route memory
hears that attempt too, so the fallbacks learn a little faster than in the
simulation; only the first route counts for the score.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml
from sqlalchemy import select

from aicp.app import App, create_app
from aicp.config import Settings, load_settings
from aicp.routing.learned import LearnedSettings
from aicp.routing.learned_eval.fleet import SimRoute, SimulatedFleet, degrading_fleet
from aicp.routing.learned_eval.runner import Result, score
from aicp.storage.schema import receipts
from aicp.testing import FakeUpstream, Fault
from aicp.testing.upstream import Recorded

MODEL = "fleet"
#: Tokens in each fake answer's usage (fake_openai: 11 prompt, 7 completion).
TOKENS = 18
PROMPT = "summarise the attached quarterly report in three bullet points"


@dataclass(frozen=True, slots=True)
class Pace:
    """How the eval's requests map onto wall time."""

    #: Seconds between the starts of two requests. The path costs about 4 ms of CPU per
    #: request here (gateway, upstreams and client in one process): more than 6 ms
    #: keeps the loop from queueing, which would add to the latencies measured.
    step_s: float = 0.006
    #: A route's delay is its latency in the fleet divided by this.
    latency_scale: float = 20.0


def gateway_routes(change_at: int) -> list[SimRoute]:
    """The degrading fleet, keyed as the gateway keys its deployments (provider/model)."""
    return [replace(r, key=f"{r.key.split('/')[-1]}/{MODEL}") for r in degrading_fleet(change_at)]


class Clock:
    """The number of the request last sent: the fleet's time, which the upstreams read."""

    __slots__ = ("t",)

    def __init__(self) -> None:
        self.t = 1


def chaos(
    fleet: SimulatedFleet, key: str, clock: Clock, pace: Pace
) -> Callable[[Recorded], Fault | None]:
    """A `FakeUpstream.chaos` hook: the route's outcome at the current request, as a fault."""

    def draw(request: Recorded) -> Fault | None:
        if not request.path.endswith("/chat/completions"):
            return None
        outcome = fleet.outcome(key, clock.t)
        delay = (outcome.latency_ms or 0.0) / pace.latency_scale / 1000.0
        return Fault(status=None if outcome.ok else 503, delay_s=delay)

    return draw


def gateway_settings(
    upstreams: dict[str, FakeUpstream],
    routes: Sequence[SimRoute],
    half_life_s: float,
    data_dir: Path,
) -> Settings:
    """Settings of a gateway whose one learned model has a deployment per upstream."""
    providers: dict[str, Any] = {}
    deployments = []
    for route in routes:
        name, model = route.key.split("/")
        providers[name] = {
            "type": "openai",
            "base_url": upstreams[route.key].url + "/v1",
            "api_key": "sk-fake-upstream",
            "models": [model],
            "discover_models": False,
        }
        # Equal rates on both sides: a request costs route.cost whatever its split.
        per_mtok = route.cost * 1e6 / TOKENS
        deployments.append(
            {
                "provider": name,
                "model": model,
                "input_cost_per_mtok": per_mtok,
                "output_cost_per_mtok": per_mtok,
            }
        )
    data = {
        "storage": {"data_dir": str(data_dir)},
        "providers": providers,
        "models": [{"name": MODEL, "strategy": "learned", "deployments": deployments}],
        # The strategy alone picks among all four routes. The pack's `error-rate` policy
        # (a soft forbid above 5% errors) and the breaker count over windows of wall
        # seconds, which here span the whole compressed run: on, they drop a route from
        # the chain for good after one unlucky failure among its first ten requests.
        "policy": {"enabled": False},
        # One attempt per route: the eval measures the strategy's first choice.
        "reliability": {
            "max_retries": 0,
            "backoff_base_s": 0.001,
            "backoff_max_s": 0.002,
            "breaker": {"failure_rate": 1.0, "min_requests": 1_000_000},
        },
        "learning": {"half_life_s": half_life_s, "sync_s": 1.0},
        "observability": {"logging": {"level": "WARNING", "requests": False}},
    }
    path = data_dir / "aicp.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_settings(path, env={})


@dataclass(frozen=True, slots=True)
class Sent:
    receipt_id: str
    status: int


async def ask(
    client: httpx.AsyncClient, fleet: SimulatedFleet, t: int, feedback: list[asyncio.Task[int]]
) -> Sent:
    body = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}]}
    resp = await client.post("/v1/chat/completions", json=body)
    receipt_id = resp.headers.get("x-aicp-receipt-id")
    if receipt_id is None:
        raise RuntimeError(f"request {t}: no receipt ({resp.status_code}): {resp.text[:200]}")
    if resp.status_code == 200:
        # Each upstream answers with its route's key.
        served = resp.json()["choices"][0]["message"]["content"]
        given = fleet.feedback(served, t)
        if given is not None:
            scored = {"receipt_id": receipt_id, "score": given}
            feedback.append(asyncio.create_task(_post(client, "/v1/feedback", scored)))
    return Sent(receipt_id, resp.status_code)


async def _post(client: httpx.AsyncClient, path: str, body: Any) -> int:
    resp = await client.post(path, json=body)
    if resp.status_code != 201:
        raise RuntimeError(f"{path}: {resp.status_code} {resp.text[:200]}")
    return resp.status_code


async def first_routes(app: App, sent: Sequence[Sent]) -> list[str]:
    """The deployment each request tried first, from the receipts in the database."""
    assert app.state is not None
    async with app.state.db.connect() as conn:
        rows = (await conn.execute(select(receipts.c.id, receipts.c.data))).all()
    first = {row.id: orjson.loads(row.data)["attempts"][0]["deployment"] for row in rows}
    return [first[s.receipt_id] for s in sent]


async def drive(
    fleet: SimulatedFleet, requests: int, half_life: float, pace: Pace
) -> tuple[list[str], float]:
    """Send the requests through a gateway in front of the fleet's upstreams: the route
    each went to first, and the wall seconds the requests took."""
    clock = Clock()
    routes = fleet.routes()
    upstreams = {r.key: FakeUpstream(reply=r.key) for r in routes}
    for key, up in upstreams.items():
        up.chaos = chaos(fleet, key, clock, pace)
        await up.start()
    try:
        with tempfile.TemporaryDirectory(prefix="aicp-routing-eval-") as tmp:
            settings = gateway_settings(upstreams, routes, half_life * pace.step_s, Path(tmp))
            app = create_app(settings)
            async with app.web.router.lifespan_context(app.web):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://aicp") as c:
                    sent, took = await _send_all(c, fleet, clock, requests, pace.step_s)
                return await first_routes(app, sent), took
    finally:
        for up in upstreams.values():
            await up.stop()


async def _send_all(
    client: httpx.AsyncClient, fleet: SimulatedFleet, clock: Clock, requests: int, step: float
) -> tuple[list[Sent], float]:
    loop = asyncio.get_running_loop()
    feedback: list[asyncio.Task[int]] = []
    tasks: list[asyncio.Task[Sent]] = []
    started = loop.time()
    for t in range(1, requests + 1):
        wait = started + (t - 1) * step - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        clock.t = t
        tasks.append(asyncio.create_task(ask(client, fleet, t, feedback)))
    sent = await asyncio.gather(*tasks)
    took = loop.time() - started
    await asyncio.gather(*feedback)
    return list(sent), took


def evaluate(
    seed: int,
    requests: int = 1200,
    change_at: int = 600,
    settle: int = 500,
    half_life: float = 400.0,
    pace: Pace | None = None,
) -> Result:
    """One seeded run through a gateway (`half_life` in requests), scored as the simulation's."""
    pace = pace or Pace()
    fleet = SimulatedFleet(gateway_routes(change_at), seed=seed)
    picks, took = asyncio.run(drive(fleet, requests, half_life, pace))
    planned = requests * pace.step_s
    if took > 1.25 * planned:
        print(
            f"seed {seed}: the requests took {took:.1f} s, not {planned:.1f} s: the machine "
            "did not keep the pace, so route memory's half-life spanned fewer requests",
            file=sys.stderr,
        )
    us = took / requests * 1e6
    # The gateway's weights are the defaults (no `learning.weights` in its settings).
    return score(fleet, picks, LearnedSettings(), change_at, settle, seed, us)
