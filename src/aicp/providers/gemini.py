"""Google Gemini on AI Studio (generativelanguage.googleapis.com).

Never pass-through: every body is translated from the canonical form and
every answer back to it. The key travels in `x-goog-api-key`, never in the
URL, because URLs end up in logs. Vertex AI reuses this class (vertex.py)
through the URL and header hooks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from aicp.errors import ConfigError
from aicp.protocol.gemini import (
    StreamTranslator,
    chat_to_gemini,
    gemini_to_completion,
    raise_for_error,
)
from aicp.protocol.gemini_embed import embeddings_to_gemini, gemini_to_embeddings
from aicp.protocol.jsonutil import Json, dumps
from aicp.providers.base import OPENAI, Call, Reply, Stream, usage_from_openai
from aicp.providers.http import DISCOVERY_TIMEOUTS, ByteStream, HttpClient, TranslatedStream

if TYPE_CHECKING:
    from aicp.config import ProviderSettings

GEMINI = "gemini"
DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"
#: A guard against a pagination loop, not a limit anyone should meet.
_MAX_PAGES = 20


class GeminiProvider:
    native = GEMINI
    local = False

    def __init__(self, name: str, settings: ProviderSettings, http: HttpClient) -> None:
        self.name = name
        self.settings = settings
        self.http = http
        self.headers = {"content-type": "application/json", **settings.headers}
        self.base_url = self.resolve_base_url(name, settings).rstrip("/")

    # --- hooks (VertexProvider overrides these) -----------------------------

    def resolve_base_url(self, name: str, settings: ProviderSettings) -> str:
        if not settings.api_key:
            raise ConfigError(f"provider {name!r}: api_key is required (GEMINI_API_KEY)")
        return settings.base_url or DEFAULT_BASE_URL

    def model_url(self, model: str, method: str) -> str:
        # Google's own name for a model is "models/x"; both spellings work here.
        return f"{self.base_url}/models/{quote(model.removeprefix('models/'), safe='')}:{method}"

    async def auth_headers(self) -> dict[str, str]:
        assert self.settings.api_key is not None
        return {"x-goog-api-key": self.settings.api_key}

    async def request_headers(self, call: Call | None) -> dict[str, str]:
        headers = {**self.headers, **await self.auth_headers()}
        if call is not None and "traceparent" in call.headers:
            headers["traceparent"] = call.headers["traceparent"]
        return headers

    # --- the Provider protocol ----------------------------------------------

    async def complete(self, call: Call) -> Reply:
        _, data = await self.http.post_json(
            self.model_url(call.model, "generateContent"),
            chat_to_gemini(call.openai(), call.model),
            await self.request_headers(call),
            call.timeouts,
        )
        raise_for_error(data)
        out = gemini_to_completion(data, call.model)
        return Reply(OPENAI, out, usage_from_openai(out["usage"]))

    async def stream(self, call: Call) -> Stream | TranslatedStream:
        resp = await self.http.request(
            "POST",
            self.model_url(call.model, "streamGenerateContent") + "?alt=sse",
            body=dumps(chat_to_gemini(call.openai(), call.model)),
            headers=await self.request_headers(call),
            timeouts=call.timeouts,
        )
        inner = ByteStream(resp, GEMINI, call.timeouts.idle)
        return TranslatedStream(inner, StreamTranslator(call.model))

    async def embed(self, call: Call) -> Reply:
        _, data = await self.http.post_json(
            self.model_url(call.model, "batchEmbedContents"),
            embeddings_to_gemini(call.body, call.model),
            await self.request_headers(call),
            call.timeouts,
        )
        out = gemini_to_embeddings(data, call.body, call.model)
        return Reply(OPENAI, out, usage_from_openai(out["usage"]))

    async def count_tokens(self, call: Call) -> int | None:
        # Only Anthropic clients ask, and some ask before every turn; a Google
        # round trip each time would cost latency and quota for a number the
        # gateway's estimate gives closely enough for budgeting.
        return None

    async def list_models(self) -> list[str]:
        if self.settings.models or not self.settings.discover_models:
            return list(self.settings.models)
        headers = await self.request_headers(None)
        models: list[str] = []
        token = ""
        for _ in range(_MAX_PAGES):
            url = f"{self.base_url}/models?pageSize=1000"
            if token:
                url += "&pageToken=" + quote(token, safe="")
            page = await self.http.get_json(url, headers, DISCOVERY_TIMEOUTS)
            models.extend(_generative_models(page))
            token = str(page.get("nextPageToken") or "")
            if not token:
                break
        return models

    async def aclose(self) -> None:
        return None


def _generative_models(page: Json) -> list[str]:
    names = []
    for m in page.get("models") or []:
        if not isinstance(m, dict) or "generateContent" not in (
            m.get("supportedGenerationMethods") or []
        ):
            continue
        names.append(str(m.get("name", "")).removeprefix("models/"))
    return [n for n in names if n]
