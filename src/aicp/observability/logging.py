"""Logs: the stdlib loggers (`logging.getLogger("aicp...")`) rendered by structlog.

One handler on the root logger formats every record, ours, uvicorn's and the
libraries', through structlog's `ProcessorFormatter`: JSON lines in production,
readable lines on a terminal. While a request runs, its id, trace id, key
prefix and route are added to every line; they are read from the Exchange at
format time (one context variable set per request, so binding costs nothing
and a route chosen mid-request shows up on the lines after it). The last step
redacts anything shaped like a credential from the rendered line: defense in
depth, since nothing should log one in the first place.

`RequestLog` is the bus subscriber that writes one line per request.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import time
from collections.abc import Callable, MutableMapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
import structlog

from aicp.config import LoggingSettings
from aicp.observability.events import Event

if TYPE_CHECKING:
    from aicp.plane.exchange import Exchange

EventDict = MutableMapping[str, Any]
Processor = Callable[[Any, str, EventDict], EventDict]

#: The request whose task is running, and its trace id when tracing is on.
_request: ContextVar[Exchange | None] = ContextVar("aicp_log_request", default=None)
_trace_id: ContextVar[str | None] = ContextVar("aicp_log_trace_id", default=None)


def bind_request(ex: Exchange) -> None:
    """Tag the log lines of the current task (one request) with `ex`'s identifiers."""
    _request.set(ex)
    _trace_id.set(None)


def bind_trace(trace_id: str) -> None:
    _trace_id.set(trace_id)


# --- redaction -------------------------------------------------------------------

_VALUE = rb"[^\s\"',;}\\]{8,}"
#: Credentials by shape, each behind the lower-case trigger that gates it: OpenAI,
#: Anthropic and aicp keys (sk-...), bearer tokens, AWS access key ids, Google API
#: keys, GitHub and Slack tokens, and the values of key-like fields. A key's display
#: form ("sk-aicp-Ab3d…x9Q0") is too short to match.
_KINDS: dict[bytes, re.Pattern[bytes]] = {
    b"be": re.compile(rb"(?i)(bearer\s+)" + _VALUE),
    b"sk": re.compile(rb"sk-[A-Za-z0-9][A-Za-z0-9_\-]{14,}"),
    b"ak": re.compile(rb"(?:AKIA|ASIA)[0-9A-Z]{16}"),
    b"ai": re.compile(rb"AIza[0-9A-Za-z_\-]{30,}"),
    b"gh": re.compile(rb"gh[pousr]_[A-Za-z0-9]{30,}"),
    b"xo": re.compile(rb"xox[abprs]-[A-Za-z0-9\-]{10,}"),
    b"kv": re.compile(
        rb"(?i)((?:secret_access_key|session_token|client_secret|secret|api[_-]?key|"
        rb"password|passwd)[\"']?\s*[:=]\s*[\"']?)" + _VALUE
    ),
}
_ALIASES = {b"as": b"ak", b"se": b"kv", b"ap": b"kv", b"pa": b"kv"}
#: One scan of the lower-cased line finds which kinds can be present (usually none,
#: or only the "sk-" of a key's display form); only those kinds' patterns then run.
_GATE = re.compile(
    rb"[sbagxp](?:k-|earer|kia|sia|iza|h[pousr]_|ox[abprs]-|ecret|ession_token|pi[_-]?key|assw)"
)
_KEEP = rb"\1[redacted]"


def redact_bytes(line: bytes) -> bytes:
    """`line` with every credential-shaped substring replaced by `[redacted]`."""
    found = _GATE.findall(line.lower())
    if not found:
        return line
    for trigger in dict.fromkeys(_ALIASES.get(t[:2], t[:2]) for t in found):
        pattern = _KINDS[trigger]
        line = pattern.sub(_KEEP if pattern.groups else b"[redacted]", line)
    return line


def redact(text: str) -> str:
    return redact_bytes(text.encode("utf-8", "surrogateescape")).decode("utf-8", "surrogateescape")


# --- processors ---------------------------------------------------------------------

#: Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "fields"}
_PLAIN = len(logging.makeLogRecord({}).__dict__)


class _Stamp:
    """The record's time, level, logger and `extra=` fields; the message becomes "msg"."""

    def __init__(self) -> None:
        # Formatting a timestamp costs more than the rest of this step: once a second.
        self._second = -1
        self._prefix = ""

    def timestamp(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            self._second = second
            self._prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._prefix}.{int((created - second) * 1000):03d}Z"

    def __call__(self, logger: Any, method: str, ed: EventDict) -> EventDict:
        record: logging.LogRecord = ed.pop("_record")
        native = ed.pop("_from_structlog", False)
        ed.pop("_logger", None)
        ed.pop("_name", None)
        ed["msg"] = ed.pop("event", "")
        ed["ts"] = self.timestamp(record.created)
        ed["level"] = record.levelname.lower()
        ed["logger"] = record.name
        if not native:
            attrs = record.__dict__
            extra = len(attrs) - _PLAIN
            fields = attrs.get("fields")
            if fields:
                ed.update(fields)
                extra -= 1
            if extra > 0:
                for name in attrs.keys() - _STANDARD:
                    if not name.startswith("_"):
                        ed.setdefault(name, attrs[name])
        return ed


def _exc_info(logger: Any, method: str, ed: EventDict) -> EventDict:
    if "exc_info" in ed or "stack_info" in ed:
        return structlog.processors.format_exc_info(logger, method, ed)
    return ed


def _add_request(logger: Any, method: str, ed: EventDict) -> EventDict:
    ex = _request.get()
    if ex is None:
        return ed
    ed.setdefault("request_id", ex.id)
    trace_id = _trace_id.get() or _traceparent_id(ex.headers.get("traceparent"))
    if trace_id:
        ed.setdefault("trace_id", trace_id)
    prefix = ex.principal.display
    if prefix:
        ed.setdefault("key_prefix", prefix)
    if ex.route is not None:
        ed.setdefault("route", ex.route.model)
    return ed


def _traceparent_id(value: str | None) -> str | None:
    """The trace id of a W3C `traceparent` (00-<32 hex>-<16 hex>-<2 hex>), if well formed."""
    if value is None or len(value) < 55 or value[2] != "-":
        return None
    trace_id = value[3:35]
    return trace_id if trace_id != "0" * 32 else None


def _json(logger: Any, method: str, ed: EventDict) -> str:
    return redact_bytes(orjson.dumps(ed, default=repr)).decode()


def _console() -> Processor:
    renderer = structlog.dev.ConsoleRenderer(
        colors=sys.stderr.isatty(),
        event_key="msg",
        timestamp_key="ts",
        # Plain tracebacks: rich's default shows local variables, which may hold secrets.
        exception_formatter=structlog.dev.plain_traceback,
    )

    def render(logger: Any, method: str, ed: EventDict) -> EventDict:
        return redact(renderer(logger, method, ed))  # type: ignore[return-value]

    return render


class _Formatter(structlog.stdlib.ProcessorFormatter):
    """structlog's ProcessorFormatter without its copy of every stdlib record.

    It copies a record because it sets the rendered line as the record's message;
    this one leaves the record as it was, so other handlers (pytest's caplog, an
    embedding application's) see it unchanged, and saves the copy (~10 us).
    """

    def format(self, record: logging.LogRecord) -> str:
        if hasattr(record, "_logger"):  # from a structlog logger: the usual way
            return super().format(record)
        ed: Any = {"event": record.getMessage(), "_record": record}
        if record.exc_info:
            ed["exc_info"] = record.exc_info
        if record.stack_info:
            ed["stack_info"] = record.stack_info
        method = record.levelname.lower()
        for processor in self.processors:
            ed = processor(None, method, ed)
        line: str = ed
        return line

    def line(
        self, logger: str, level: int, message: str, fields: dict[str, Any], *, scan: bool = True
    ) -> str:
        """What `format` makes of a record of `logger` with these `fields`, with no record.

        `scan=False`: the caller vouches that no field holds foreign text (every string
        is ours or already redacted), so a JSON line skips the scan for credentials.
        """
        stamp: _Stamp = self.processors[0]  # type: ignore[assignment]
        method = logging.getLevelName(level).lower()
        ed: Any = {"msg": message, "ts": stamp.timestamp(time.time())}
        ed["level"] = method
        ed["logger"] = logger
        ed.update(fields)
        processors = self.processors[1:]
        if not scan and processors[-1] is _json:
            for processor in processors[:-1]:
                ed = processor(None, method, ed)
            return orjson.dumps(ed, default=repr).decode()
        for processor in processors:
            ed = processor(None, method, ed)
        text: str = ed
        return text


# --- configuration --------------------------------------------------------------------


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is now (a test's capture, a redirected stream)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> Any:
        return sys.stderr


def resolve_format(settings: LoggingSettings) -> str:
    if settings.format != "auto":
        return settings.format
    return "console" if sys.stderr.isatty() else "json"


def build_handler(
    settings: LoggingSettings, handler: logging.Handler | None = None
) -> logging.Handler:
    """`handler` (default: one to stderr) with the aicp format of `settings`."""
    chain: list[Processor] = [_Stamp(), _add_request]
    if resolve_format(settings) == "json":
        chain.append(_exc_info)
        chain.append(_json)  # type: ignore[arg-type]
    else:
        chain.append(_console())
    handler = handler or _StderrHandler()
    handler.setFormatter(_Formatter(processors=chain))
    if not hasattr(handler, "_aicp"):
        handler._aicp = None  # type: ignore[attr-defined]
    return handler


def configure_logging(settings: LoggingSettings, handler: logging.Handler | None = None) -> None:
    """Install the aicp handler on the root logger; again with the same settings, nothing.

    Handlers that others installed (pytest's caplog, an embedding application's)
    are left alone; only a handler this function installed before is replaced.
    """
    fmt = resolve_format(settings)
    level = logging.getLevelName(settings.level.upper())
    if not isinstance(level, int):
        level = logging.INFO
    root = logging.getLogger()
    key = (fmt, level, id(handler) if handler is not None else None)
    for old in list(root.handlers):
        if getattr(old, "_aicp", None) == key:
            return
        if hasattr(old, "_aicp"):
            root.removeHandler(old)
    handler = build_handler(settings, handler)
    handler._aicp = key  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    if level <= logging.DEBUG:
        # aiosqlite logs every SQL statement with its parameters at DEBUG.
        logging.getLogger("aiosqlite").setLevel(logging.INFO)
    # Alembic narrates each migration context at INFO ("Context impl SQLiteImpl."...);
    # aicp.storage logs the one line that matters (from which revision to which).
    logging.getLogger("alembic").setLevel(max(level, logging.WARNING))
    # structlog's own loggers, should any module use one, go through the same handler.
    structlog.configure(
        processors=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        # Not structlog.stdlib.LoggerFactory: it swaps the logger class of the whole process.
        logger_factory=logging.getLogger,
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


# --- the request line --------------------------------------------------------------


def _sole_handler(log: logging.Logger, level: int) -> logging.StreamHandler | None:  # type: ignore[type-arg]
    """The aicp handler, when it is the only handler a record of `log` would reach."""
    if log.filters or log.disabled:
        return None
    found = None
    node: logging.Logger | None = log
    while node is not None:
        for handler in node.handlers:
            if found is not None:
                return None
            found = handler
        if not node.propagate:
            break
        node = node.parent
    if (
        isinstance(found, logging.StreamHandler)
        and hasattr(found, "_aicp")
        and isinstance(found.formatter, _Formatter)
        and not found.filters
        and level >= found.level
    ):
        return found
    return None


_REQUEST_EVENTS = {
    "llm.request.completed": "request completed",
    "llm.request.failed": "request failed",
}
#: Fields of a completed request's line that hold names a client chose.
_CLIENT_NAMED = ("route", "upstream_model")
#: Bodies in a DEBUG line are cut here: a log line is not a storage system.
BODY_LIMIT = 16 * 1024


class RequestLog:
    """Bus subscriber: one INFO line per request (WARNING for a 5xx), with its outcome."""

    #: What it subscribes to.
    types = frozenset(_REQUEST_EVENTS)

    def __init__(self, settings: LoggingSettings, logger: logging.Logger | None = None) -> None:
        self.log = logger or logging.getLogger("aicp.requests")
        self.bodies = settings.bodies
        self._body_log = logging.getLogger("aicp.bodies")
        #: Lines waiting for the end of this turn of the loop (`_write`).
        self._pending: list[str] = []

    def __call__(self, event: Event) -> None:
        message = _REQUEST_EVENTS.get(event.type)
        if message is None:
            return
        data = event.data
        status = data.get("status") or 0
        level = logging.WARNING if status >= 500 else logging.INFO
        log = self.log
        if log.isEnabledFor(level):
            fields = {**data, "request_id": event.request_id}
            handler = _sole_handler(log, level)
            if handler is not None:
                # The usual case under `aicp serve`: the aicp handler is the only one, so
                # the line is written as it would render, without a LogRecord and the
                # handler chain (about half the cost of a line).
                formatter: _Formatter = handler.formatter  # type: ignore[assignment]
                scan = "error" in fields
                if not scan:
                    # A completed request's fields are ours but for the names a client
                    # may choose (a `provider/model` route): only those are scanned.
                    for name in _CLIENT_NAMED:
                        value = fields.get(name)
                        if isinstance(value, str):
                            fields[name] = redact(value)
                text = formatter.line(log.name, level, message, fields, scan=scan) + "\n"
                self._write(handler, text, log, level, message)
            else:
                # What `log.log(level, message, extra=...)` does, without its search of
                # the stack for the caller (which would be this line).
                record = log.makeRecord(log.name, level, __file__, 0, message, (), None)
                record.fields = fields
                log.handle(record)
        if self.bodies and self._body_log.isEnabledFor(logging.DEBUG):
            self._log_bodies(event)

    def _write(
        self,
        handler: logging.StreamHandler,  # type: ignore[type-arg]
        text: str,
        log: logging.Logger,
        level: int,
        message: str,
    ) -> None:
        """Lines of one turn of the event loop go out in one write: the requests a group
        commit completes together log together, one system call instead of one each.
        Without a running loop (a test, a thread) the line is written at once."""
        pending = self._pending
        pending.append(text)
        if len(pending) > 1:
            return
        if self.bodies:  # body lines follow their request line: no reordering
            self._flush(handler, log, level, message)
            return
        try:
            asyncio.get_running_loop().call_soon(self._flush, handler, log, level, message)
        except RuntimeError:
            self._flush(handler, log, level, message)

    def _flush(
        self,
        handler: logging.StreamHandler,  # type: ignore[type-arg]
        log: logging.Logger,
        level: int,
        message: str,
    ) -> None:
        text = "".join(self._pending)
        self._pending.clear()
        try:
            with handler.lock:  # type: ignore[union-attr]
                handler.stream.write(text)
                handler.stream.flush()
        except Exception:
            # As logging.StreamHandler.emit: report it and go on, never raise.
            record = log.makeRecord(log.name, level, __file__, 0, message, (), None)
            handler.handleError(record)

    def _log_bodies(self, event: Event) -> None:
        ex = _request.get()
        if ex is None or ex.id != event.request_id:
            return
        response = ex.response_body
        if response is None and ex.reply is not None:
            response = ex.reply.raw if ex.reply.raw is not None else orjson.dumps(ex.reply.data)
        from aicp.guardrails.stages import scrubbed_request

        for name, body in (("request", scrubbed_request(ex)), ("response", response)):
            if body:
                text = body[:BODY_LIMIT].decode("utf-8", "replace")
                self._body_log.debug(f"{name} body", extra={"fields": {"body": text}})
