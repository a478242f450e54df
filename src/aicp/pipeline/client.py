"""A small client of a gateway's pipeline and registry API, for scripts and examples.

    client = PipelineClient.from_env()          # AICP_BASE_URL, AICP_API_KEY
    run = client.start(ref="examples.rag_pipeline:rag", params={"k": 2})
    run = client.wait(run["id"])

Standard library only; errors are `ClientError` with the gateway's status and
message (the API key never appears in them).
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

DEFAULT_BASE_URL = "http://127.0.0.1:4000"
FINAL = frozenset({"succeeded", "failed", "cancelled"})


class ClientError(Exception):
    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}" if status else message)
        self.status = status
        self.message = message


def request_json(
    base_url: str,
    key: str | None,
    method: str,
    path: str,
    body: Any = None,
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> Any:
    """One call of a gateway's JSON API; an error answer is a `ClientError` with the
    message of its OpenAI-format body. (The CLI's calls go through here too.)"""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base_url.rstrip("/") + path, data=data, method=method)
    req.add_header("content-type", "application/json")
    if key:
        req.add_header("authorization", f"Bearer {key}")
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        raw = exc.read().decode("utf-8", "replace")
        try:
            message = json.loads(raw)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = raw[:500]
        raise ClientError(exc.code, message) from None
    except urllib.error.URLError as exc:
        raise ClientError(None, f"cannot reach the gateway: {exc.reason}") from None


class PipelineClient:
    def __init__(self, base_url: str, api_key: str | None, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        self.api_key = api_key
        self.timeout = timeout

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PipelineClient:
        env = os.environ if env is None else env
        url = env.get("AICP_BASE_URL") or env.get("AICP_URL") or DEFAULT_BASE_URL
        return cls(url, env.get("AICP_API_KEY") or None)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        return request_json(self.base_url, self.api_key, method, path, body, timeout=self.timeout)

    # --- pipelines ------------------------------------------------------------------

    def start(
        self,
        *,
        ref: str | None = None,
        yaml: str | None = None,
        pipeline: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Start a run of an import path, a YAML document or a registered pipeline."""
        body: dict[str, Any] = {"params": dict(params or {})}
        for name, value in (("ref", ref), ("yaml", yaml), ("pipeline", pipeline)):
            if value is not None:
                body[name] = value
        out: dict[str, Any] = self.call("POST", "/v1/pipelines/runs", body)
        return out

    def run(self, run_id: str) -> dict[str, Any]:
        out: dict[str, Any] = self.call("GET", f"/v1/pipelines/runs/{_q(run_id)}")
        return out

    def wait(
        self, run_id: str, timeout: float = 300.0, *, until: frozenset[str] = FINAL
    ) -> dict[str, Any]:
        """Poll until the run's status is in `until` (default: it ended)."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.run(run_id)
            if got["status"] in until:
                return got
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} is still {got['status']} after {timeout:g} s")
            time.sleep(0.2)

    def approvals(self, run_id: str | None = None) -> list[dict[str, Any]]:
        query = "" if run_id is None else f"?run_id={_q(run_id)}"
        out: list[dict[str, Any]] = self.call("GET", f"/v1/approvals{query}")["data"]
        return out

    def decide(
        self, run_id: str, stage: str, approve: bool = True, comment: str | None = None
    ) -> dict[str, Any]:
        body = {"approve": approve, "comment": comment}
        out: dict[str, Any] = self.call("POST", f"/v1/approvals/{_q(run_id)}/{_q(stage)}", body)
        return out

    # --- registry -------------------------------------------------------------------

    def register(self, name: str, target: str, **fields: Any) -> dict[str, Any]:
        body = {"target": target, **fields}
        out: dict[str, Any] = self.call("POST", f"/v1/registry/models/{_q(name)}/versions", body)
        return out

    def promote(self, name: str, version: str | None = None, **fields: Any) -> dict[str, Any]:
        body = {**({"version": version} if version else {}), **fields}
        out: dict[str, Any] = self.call("POST", f"/v1/registry/models/{_q(name)}/promote", body)
        return out

    def rollback(self, name: str) -> dict[str, Any]:
        out: dict[str, Any] = self.call("POST", f"/v1/registry/models/{_q(name)}/rollback", {})
        return out


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")
