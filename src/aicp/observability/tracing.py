"""Traces: OpenTelemetry spans that follow the GenAI semantic conventions.

A request is one SERVER span named `{gen_ai.operation.name} {gen_ai.request.model}`,
with one INTERNAL span per stage of the path under it and one CLIENT span per
upstream attempt under the execute stage's; the attempt's context goes upstream
as the W3C `traceparent` header, and a client's own `traceparent` becomes the
request span's parent. Spans go to the app's own TracerProvider, never the
global one, through OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set (the
exporter reads the other OTEL_EXPORTER_OTLP_* variables itself).

Without an endpoint `create_tracing` returns None and nothing of OpenTelemetry
is imported: the path then runs its untraced loop and pays nothing.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aicp
from aicp.config import Settings
from aicp.errors import AicpError, ConfigError
from aicp.observability.logging import bind_trace

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span

    from aicp.plane.exchange import Attempt, Exchange
    from aicp.routing.router import Deployment

#: Provider type -> `gen_ai.provider.name` (the semconv's well-known values).
GENAI_PROVIDERS = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "vertex": "gcp.vertex_ai",
    "bedrock": "aws.bedrock",
    "groq": "groq",
    "deepseek": "deepseek",
    "mistral": "mistral_ai",
    "xai": "x_ai",
}
#: Request fields copied to the attempt span: body key -> attribute.
_REQUEST_ATTRIBUTES = {
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "top_k": "gen_ai.request.top_k",
    "seed": "gen_ai.request.seed",
}


def create_tracing(
    settings: Settings,
    exporter: SpanExporter | None = None,
    env: Mapping[str, str] | None = None,
) -> Tracing | None:
    """The app's tracing: to `exporter` (tests), to OTLP when the endpoint is set, else None."""
    env = os.environ if env is None else env
    endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    )
    if exporter is None and not endpoint:
        return None
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME") or "aicp"})
        provider = TracerProvider(resource=resource)
        if exporter is not None:
            # Synchronous: a test sees a span as soon as it ends.
            provider.add_span_processor(SimpleSpanProcessor(exporter))
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            traces = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or (
                str(endpoint).rstrip("/") + "/v1/traces"
            )
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=traces)))
    except ImportError as exc:
        raise ConfigError(
            f"OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry's SDK is missing ({exc}); "
            "install aicp[otel] or unset it"
        ) from exc
    names = {n: GENAI_PROVIDERS.get(p.type, p.type) for n, p in settings.providers.items()}
    return Tracing(provider, names)


class _Request:
    """The spans of the request whose task is running."""

    __slots__ = ("ex", "recording", "root", "root_ctx", "stage_ctx", "stream_span")

    def __init__(self, ex: Exchange, root: Span, root_ctx: Context) -> None:
        self.ex = ex
        self.root = root
        #: False when the sampler dropped this trace: no child spans are made at all,
        #: the upstream still gets the trace's id (with the sampled flag off).
        self.recording = root.is_recording()
        self.root_ctx = root_ctx
        self.stage_ctx = root_ctx
        self.stream_span: Span | None = None


_current: ContextVar[_Request | None] = ContextVar("aicp_trace_request", default=None)


class Tracing:
    def __init__(self, provider: TracerProvider, provider_names: Mapping[str, str]) -> None:
        from opentelemetry import trace
        from opentelemetry.trace import SpanKind, StatusCode
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.provider = provider
        self.tracer = provider.get_tracer("aicp", aicp.__version__)
        self.provider_names = dict(provider_names)
        self._propagator = TraceContextTextMapPropagator()
        self._in_context = trace.set_span_in_context
        self._server, self._client = SpanKind.SERVER, SpanKind.CLIENT
        self._error = StatusCode.ERROR
        self._servers: dict[str, tuple[str, int] | None] = {}

    # --- the request ---------------------------------------------------------------

    def start_request(self, ex: Exchange) -> None:
        current = _current.get()
        if current is not None and current.ex is ex:
            return
        parent = self._propagator.extract(ex.headers) if "traceparent" in ex.headers else None
        model = ex.model
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": ex.operation,
            "aicp.request_id": ex.id,
            "aicp.receipt_id": ex.receipt_id,
            "aicp.protocol": ex.protocol,
            "aicp.mode": ex.mode,
        }
        if model:
            attributes["gen_ai.request.model"] = model
        root = self.tracer.start_span(
            f"{ex.operation} {model}".rstrip(),
            context=parent,
            kind=self._server,
            start_time=int(ex.wall_start * 1e9),
            attributes=attributes,
        )
        _current.set(_Request(ex, root, self._in_context(root)))
        bind_trace(format(root.get_span_context().trace_id, "032x"))

    def end_request(self, ex: Exchange) -> None:
        current = _current.get()
        if current is None or current.ex is not ex:
            return
        _current.set(None)
        if current.stream_span is not None:
            self._end_attempt_span(current.stream_span, ex, ex.usage)
        root = current.root
        if not current.recording:
            root.end()
            return
        usage = ex.usage
        attributes: dict[str, Any] = {
            "http.response.status_code": ex.status,
            "gen_ai.usage.input_tokens": usage.prompt_tokens,
            "gen_ai.usage.output_tokens": usage.completion_tokens,
            "aicp.cost_usd": ex.cost,
            "aicp.attempts": len(ex.attempts),
        }
        if ex.route is not None:
            attributes["aicp.route"] = ex.route.model
        if ex.principal.display:
            attributes["aicp.key_prefix"] = ex.principal.display
        served = ex.served
        if served is not None:
            attributes["aicp.deployment"] = served.key
            attributes["gen_ai.response.model"] = served.model
            attributes["gen_ai.provider.name"] = self._provider_name(served.provider.name)
        if ex.ttft_ms is not None:
            attributes["gen_ai.response.time_to_first_chunk"] = ex.ttft_ms / 1000
        if usage.cached_tokens:
            attributes["gen_ai.usage.cache_read.input_tokens"] = usage.cached_tokens
        root.set_attributes(attributes)
        err = ex.error
        if err is not None:
            root.set_attribute("error.type", err.kind)
            if err.status >= 500:
                root.set_status(self._error, err.message[:200])
        elif ex.status >= 500:
            root.set_attribute("error.type", str(ex.status))
            root.set_status(self._error)
        root.end()

    # --- stages ----------------------------------------------------------------------

    def start_stage(self, name: str) -> Span | None:
        current = _current.get()
        if current is None or not current.recording:
            return None
        span = self.tracer.start_span(name, context=current.root_ctx)
        current.stage_ctx = self._in_context(span)
        return span

    def end_stage(self, span: Span | None, error: BaseException | None) -> None:
        if span is None:
            return
        if error is not None:
            kind = error.kind if isinstance(error, AicpError) else type(error).__qualname__
            span.set_attribute("error.type", kind)
            span.set_status(self._error, str(error)[:200])
        span.end()
        current = _current.get()
        if current is not None:
            current.stage_ctx = current.root_ctx

    # --- upstream attempts -----------------------------------------------------------------

    def start_attempt(self, ex: Exchange, dep: Deployment) -> tuple[Span | None, dict[str, str]]:
        """The attempt's span, and the headers for its call (with its `traceparent`)."""
        current = _current.get()
        if current is not None and not current.recording:
            headers = dict(ex.headers)
            headers.pop("tracestate", None)
            self._propagator.inject(headers, context=current.root_ctx)
            return None, headers
        provider = dep.provider.name
        genai = self._provider_name(provider)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": ex.operation,
            "gen_ai.provider.name": genai,
            # The name before semconv 1.37, still the one many backends read.
            "gen_ai.system": genai,
            "gen_ai.request.model": dep.model,
            "aicp.deployment": dep.key,
            "aicp.attempt": len(ex.attempts) + 1,
        }
        if ex.stream:
            attributes["gen_ai.request.stream"] = True
        body = ex.body
        for field, attribute in _REQUEST_ATTRIBUTES.items():
            value = body.get(field)
            if isinstance(value, int | float) and not isinstance(value, bool):
                attributes[attribute] = value
        server = self._server_of(dep)
        if server is not None:
            attributes["server.address"], attributes["server.port"] = server
        span = self.tracer.start_span(
            f"{ex.operation} {dep.model}",
            context=None if current is None else current.stage_ctx,
            kind=self._client,
            attributes=attributes,
        )
        headers = dict(ex.headers)
        headers.pop("tracestate", None)
        self._propagator.inject(headers, context=self._in_context(span))
        return span, headers

    def end_attempt(self, span: Span, ex: Exchange, attempt: Attempt, ok: bool) -> None:
        if attempt.status is not None:
            span.set_attribute("http.response.status_code", attempt.status)
        if ok and ex.upstream is not None:
            # A stream's attempt lasts until its last chunk: it ends with the request.
            current = _current.get()
            if current is not None and current.ex is ex:
                current.stream_span = span
                return
        if not ok:
            error = attempt.error or "error"
            span.set_attribute(
                "error.type", str(attempt.status) if attempt.status else error.split(":")[0]
            )
            span.set_status(self._error, error[:200])
            span.end()
            return
        reply = ex.reply
        if reply is not None:
            data = reply.data
            if isinstance(data.get("model"), str):
                span.set_attribute("gen_ai.response.model", data["model"])
            if isinstance(data.get("id"), str):
                span.set_attribute("gen_ai.response.id", data["id"])
            reasons = _finish_reasons(data)
            if reasons:
                span.set_attribute("gen_ai.response.finish_reasons", reasons)
        self._end_attempt_span(span, ex, reply.usage if reply is not None else ex.usage)

    def _end_attempt_span(self, span: Span, ex: Exchange, usage: Any) -> None:
        span.set_attribute("gen_ai.usage.input_tokens", usage.prompt_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", usage.completion_tokens)
        if usage.cached_tokens:
            span.set_attribute("gen_ai.usage.cache_read.input_tokens", usage.cached_tokens)
        if ex.served is not None and ex.stream and ex.ttft_ms is not None:
            span.set_attribute("gen_ai.response.time_to_first_chunk", ex.ttft_ms / 1000)
        span.end()

    # --- helpers ----------------------------------------------------------------------

    def _provider_name(self, provider: str) -> str:
        return self.provider_names.get(provider, provider)

    def _server_of(self, dep: Deployment) -> tuple[str, int] | None:
        name = dep.provider.name
        if name not in self._servers:
            url = getattr(dep.provider, "base_url", None)
            server = None
            if isinstance(url, str) and url:
                parts = urlsplit(url)
                if parts.hostname:
                    port = parts.port or (443 if parts.scheme == "https" else 80)
                    server = (parts.hostname, port)
            self._servers[name] = server
        return self._servers[name]

    async def aclose(self) -> None:
        # Flushes the batch of spans not yet exported; the exporter may block on the network.
        await asyncio.to_thread(self.provider.shutdown)


def _finish_reasons(data: Mapping[str, Any]) -> list[str]:
    choices = data.get("choices")
    if isinstance(choices, list):
        return [
            str(c["finish_reason"])
            for c in choices
            if isinstance(c, dict) and c.get("finish_reason")
        ]
    reason = data.get("stop_reason")  # Anthropic
    return [str(reason)] if reason else []
