"""The gateway as pipeline stages call it: HTTP to a running aicp, one receipt per call.

Errors, all `GatewayError` (with `.status`, `.message`, `.retryable`):

- `GatewayUnavailable`: a 408/425/429/5xx answer, or no answer at all (connection
  refused, timeout); an ordinary exception, so the runner's retries apply;
- `GatewayRejected`: any other 4xx (bad request, unknown model, no budget, bad key);
  also a `StageFailed`, since sending the same request again cannot help.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

import httpx

from aicp.pipeline.model import EmbedReply, LlmReply, StageFailed

log = logging.getLogger("aicp.pipeline")

#: `aicp serve`'s default address (config.ServerSettings).
DEFAULT_BASE_URL = "http://127.0.0.1:4000"
_RETRYABLE = frozenset({408, 425, 429})


class GatewayError(Exception):
    retryable = False

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        where = f"HTTP {status}" if status is not None else "no answer"
        super().__init__(f"gateway: {where}: {message}")
        self.status = status
        self.message = message
        self.code = code


class GatewayUnavailable(GatewayError):
    retryable = True


class GatewayRejected(GatewayError, StageFailed):
    pass


class HttpLlm:
    """`model.Llm` over HTTP: chat completions and embeddings through the gateway."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        timeout: float = 120.0,
        headers: Mapping[str, str] | None = None,
        receipt_wait_s: float = 5.0,
    ) -> None:
        base = base_url.rstrip("/")
        # An OpenAI SDK habit: a base URL that ends in /v1; the paths here carry it.
        base = base.removesuffix("/v1")
        sent = dict(headers or {})
        if api_key:
            sent["authorization"] = f"Bearer {api_key}"
        self.base_url = base
        self._key = api_key
        self._receipt_wait_s = receipt_wait_s
        self._client = httpx.Client(base_url=base, headers=sent, timeout=timeout)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **kwargs: Any) -> HttpLlm:
        """AICP_BASE_URL (or the CLI's AICP_URL; default 127.0.0.1:4000) and AICP_API_KEY."""
        env = os.environ if env is None else env
        url = env.get("AICP_BASE_URL") or env.get("AICP_URL") or DEFAULT_BASE_URL
        return cls(url, env.get("AICP_API_KEY") or None, **kwargs)

    def chat(self, model: str, messages: list[dict[str, Any]], **params: Any) -> LlmReply:
        body = {**params, "model": model, "messages": messages, "stream": False}
        resp = self._post("/v1/chat/completions", body)
        receipt_id = resp.headers.get("x-aicp-receipt-id")
        return chat_reply(
            self._json(resp), resp.status_code, receipt_id, self.cost_of(receipt_id), model
        )

    def embed(self, model: str, inputs: list[str]) -> EmbedReply:
        resp = self._post("/v1/embeddings", {"model": model, "input": inputs})
        receipt_id = resp.headers.get("x-aicp-receipt-id")
        return embed_reply(self._json(resp), resp.status_code, receipt_id, self.cost_of(receipt_id))

    def cost_of(self, receipt_id: str | None) -> float:
        """The cost (USD) a receipt records; 0 when it cannot be read in time.

        The receipt may be written a moment after the reply, so a 404 is asked again.
        """
        if receipt_id is None:
            return 0.0
        deadline = time.monotonic() + self._receipt_wait_s
        pause = 0.05
        while True:
            try:
                resp = self._client.get(f"/v1/receipts/{receipt_id}")
            except httpx.HTTPError as exc:
                log.warning("receipt %s: cannot read its cost: %s", receipt_id, exc)
                return 0.0
            if resp.status_code == 200:
                try:
                    return float(resp.json()["receipt"]["cost_micros"]) / 1_000_000
                except (ValueError, KeyError, TypeError):
                    log.warning("receipt %s: its bundle has no receipt.cost_micros", receipt_id)
                    return 0.0
            if resp.status_code != 404 or time.monotonic() + pause > deadline:
                log.warning(
                    "receipt %s: cost unknown (HTTP %s), counted as 0",
                    receipt_id,
                    resp.status_code,
                )
                return 0.0
            time.sleep(pause)
            pause = min(pause * 2, 0.5)

    # --- plumbing ------------------------------------------------------------

    def _post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        try:
            resp = self._client.post(path, json=body)
        except httpx.TimeoutException:
            raise GatewayUnavailable(f"{path}: timed out") from None
        except httpx.TransportError as exc:
            raise GatewayUnavailable(
                f"{path}: {self._scrub(str(exc)) or type(exc).__name__}"
            ) from None
        if resp.status_code >= 400:
            raise self._error(resp)
        return resp

    def _json(self, resp: httpx.Response) -> dict[str, Any]:
        try:
            data = resp.json()
        except ValueError:
            raise GatewayUnavailable("the answer is not JSON", resp.status_code) from None
        if not isinstance(data, dict):
            raise GatewayUnavailable("the answer is not a JSON object", resp.status_code)
        return data

    def _error(self, resp: httpx.Response) -> GatewayError:
        try:
            data = resp.json()
        except ValueError:
            data = None
        fallback = resp.text[:500] or resp.reason_phrase
        return gateway_error(resp.status_code, data, fallback, scrub=self._scrub)

    def _scrub(self, text: str) -> str:
        """`text` without the API key, should a message ever quote it."""
        return text.replace(self._key, "***") if self._key else text

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpLlm:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# --- what a gateway answer means, for any client of it (also pipeline/inprocess.py) ---------


def chat_reply(
    data: dict[str, Any], status: int, receipt_id: str | None, cost_usd: float, model: str
) -> LlmReply:
    """A chat completion's answer as a stage sees it."""
    try:
        content = data["choices"][0]["message"].get("content")
    except (KeyError, IndexError, TypeError, AttributeError):
        raise GatewayUnavailable("the answer has no choices[0].message", status) from None
    return LlmReply(
        text=content if isinstance(content, str) else "",
        receipt_id=receipt_id,
        cost_usd=cost_usd,
        model=str(data.get("model") or model),
        raw=data,
    )


def embed_reply(
    data: dict[str, Any], status: int, receipt_id: str | None, cost_usd: float
) -> EmbedReply:
    """An embeddings answer's vectors, in input order."""
    try:
        items = sorted(data["data"], key=lambda d: d.get("index", 0))
        vectors = [[float(x) for x in item["embedding"]] for item in items]
    except (KeyError, TypeError, ValueError, AttributeError):
        raise GatewayUnavailable("the answer has no data[].embedding", status) from None
    return EmbedReply(vectors=vectors, receipt_id=receipt_id, cost_usd=cost_usd)


def gateway_error(
    status: int,
    data: Any,
    fallback: str = "the gateway failed",
    scrub: Callable[[str], str] = str,
) -> GatewayError:
    """An error answer (OpenAI's format) as the exception a stage raises: retryable
    (`GatewayUnavailable`) for 408, 425, 429 and 5xx, final (`GatewayRejected`) else."""
    error = data.get("error") if isinstance(data, dict) else None
    message, code = fallback, None
    if isinstance(error, dict):
        message = str(error.get("message") or fallback)
        code = error.get("code") or error.get("type")
    kind = GatewayUnavailable if status in _RETRYABLE or status >= 500 else GatewayRejected
    return kind(scrub(message), status, None if code is None else str(code))
