"""deploy/: the Grafana dashboard and the Prometheus alerts use only metrics that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import openai
import yaml

from aicp.testing import GatewayServer
from tests.observability.promutil import Scrape, scrape

DEPLOY = Path(__file__).parents[2] / "deploy"
METRIC = re.compile(r"\baicp_[a-z0-9_]+")
REQUIRED_ALERTS = {
    "AicpHighErrorRate",
    "AicpHighLatencyP95",
    "AicpBudgetExhausted",
    "AicpBreakerOpen",
}


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    return data


def alert_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((DEPLOY / "prometheus-alerts.yaml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    exprs = [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in dashboard()["templating"]["list"] if "definition" in v]
    return exprs


def exposed(m: Scrape, name: str) -> bool:
    """Whether `name` (a sample name, as PromQL sees it) belongs to an exposed family."""
    base = re.sub(r"_(bucket|sum|count)$", "", name)
    if m.types.get(base) == "histogram" or name in m.types:
        return True
    return name.endswith("_total") and m.types.get(name[: -len("_total")]) == "counter"


def test_every_metric_in_the_dashboard_and_alerts_is_exposed(gateway: GatewayServer) -> None:
    c = openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-x", max_retries=0)
    c.chat.completions.create(model="up/fake-model", messages=[{"role": "user", "content": "hi"}])
    m = scrape(gateway)
    exprs = [*dashboard_exprs(), *(r["expr"] for r in alert_rules())]
    referenced = {name for expr in exprs for name in METRIC.findall(expr)}
    assert len(referenced) >= 15
    assert not exposed(m, "aicp_no_such_metric_total")  # the check can fail
    missing = sorted(name for name in referenced if not exposed(m, name))
    assert missing == []


def test_the_dashboard_covers_what_operators_look_at() -> None:
    exprs = " ".join(dashboard_exprs())
    for metric in (
        "aicp_requests_total",
        "aicp_request_duration_seconds_bucket",
        "aicp_time_to_first_token_seconds_bucket",
        "aicp_tokens_total",
        "aicp_cost_usd_total",
        "aicp_breaker_state",
        "aicp_budget_rejections_total",
        "aicp_ratelimit_rejections_total",
    ):
        assert metric in exprs, metric
    panels = dashboard()["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for p in panels:
        if p["type"] != "row":
            assert p["targets"] and p["datasource"]["uid"] == "${datasource}", p["title"]


def test_the_alerts_are_complete_rules() -> None:
    rules = alert_rules()
    assert {r["alert"] for r in rules} >= REQUIRED_ALERTS
    for rule in rules:
        assert rule["expr"].strip() and "for" in rule, rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]
