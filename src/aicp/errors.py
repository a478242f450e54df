"""Every error aicp raises on purpose, in one tree.

    AicpError                       base; carries an HTTP status and an error kind
    +-- ConfigError                 invalid settings or YAML (file, line and key named)
    |   +-- PipelineInvalid         400 a pipeline definition is wrong (every problem listed)
    +-- RequestError (4xx)          the client's request is wrong
    |   +-- InvalidRequest          400 malformed JSON, bad UTF-8, wrong types, missing fields
    |   +-- BodyTooLarge            413 body over `server.max_body_bytes`
    |   +-- ModelNotFound           404 no model, alias or group of that name
    |   +-- AmbiguousModel          400 a bare name that several providers serve
    |   +-- AuthenticationFailed    401 missing or unknown key
    |   +-- PermissionDenied        403 e.g. forcing a route without the right to
    |   +-- RegistryError           400 a malformed registry request (bad name, target, params)
    |       +-- RegistryNotFound    404 unknown registered model, version or alias
    |       +-- RegistryConflict    409 nothing to roll back to; a gateway alias taken
    +-- DecisionError               a stage decided to stop the request
    |   +-- PolicyDenied            403
    |   +-- GuardrailBlocked        400
    |   +-- BudgetExceeded          429
    |   +-- RateLimited             429 over an RPM or TPM limit (Retry-After says when)
    +-- UpstreamError               the provider failed (status is what the client sees)
    |   +-- UpstreamStatusError     the provider answered with an error status
    |   +-- UpstreamTimeout         504 connect, first byte, idle gap or deadline
    |   +-- UpstreamUnavailable     502/503 connection refused, reset, breaker open
    +-- ReceiptNotRecorded          503 the receipt log could not commit (durable mode)
    +-- AuditChainBroken            500 the registry audit log's hash chain does not verify

One handler (`aicp.api.errors`) turns any of these into the client's own wire
format: OpenAI `{"error": {...}}` or Anthropic `{"type": "error", ...}`.
Messages never contain provider credentials: they are built from our own text
and upstream error *messages*, never from request headers.
"""

from __future__ import annotations


class AicpError(Exception):
    status: int = 500
    kind: str = "api_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.param = param
        self.headers = headers or {}


class ConfigError(AicpError):
    kind = "config_error"


class PipelineInvalid(ConfigError):
    """Each of `problems` reads `<file>:<line>: stage '<name>': what is wrong`."""

    # 400: over the API the definition is the client's; the CLI shows the message only.
    status = 400
    code = "pipeline_invalid"

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        count = f"{len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}"
        super().__init__(f"invalid pipeline ({count}):\n" + "\n".join(self.problems))


class RequestError(AicpError):
    status = 400
    kind = "invalid_request_error"


class InvalidRequest(RequestError):
    pass


class BodyTooLarge(RequestError):
    status = 413
    code = "request_too_large"


class ModelNotFound(RequestError):
    status = 404
    kind = "not_found_error"
    code = "model_not_found"


class AmbiguousModel(RequestError):
    code = "model_ambiguous"


class AuthenticationFailed(RequestError):
    status = 401
    kind = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(RequestError):
    status = 403
    kind = "permission_error"


class RegistryError(RequestError):
    code = "registry_error"


class RegistryNotFound(RegistryError):
    status = 404
    kind = "not_found_error"
    code = "registry_not_found"


class RegistryConflict(RegistryError):
    status = 409
    code = "registry_conflict"


class DecisionError(AicpError):
    status = 403
    kind = "permission_error"


class PolicyDenied(DecisionError):
    code = "policy_denied"


class GuardrailBlocked(DecisionError):
    status = 400
    kind = "invalid_request_error"
    code = "guardrail_blocked"


class BudgetExceeded(DecisionError):
    status = 429
    kind = "rate_limit_error"
    code = "budget_exceeded"


class RateLimited(DecisionError):
    status = 429
    kind = "rate_limit_error"
    code = "rate_limit_exceeded"


class UpstreamError(AicpError):
    status = 502
    kind = "api_error"

    #: Envoy's `retriable-status-codes` plus connect failures; see reliability.retry.
    retryable: bool = False


class UpstreamStatusError(UpstreamError):
    def __init__(
        self,
        message: str,
        *,
        status: int,
        body: bytes = b"",
        retry_after: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, status=status, headers=headers)
        self.body = body
        self.retry_after = retry_after
        self.retryable = status in RETRYABLE_STATUSES or status >= 500
        self.kind = _KIND_BY_STATUS.get(status, "api_error")


class UpstreamTimeout(UpstreamError):
    status = 504
    kind = "timeout_error"
    retryable = True


class UpstreamUnavailable(UpstreamError):
    status = 502
    kind = "api_error"
    retryable = True


RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})

_KIND_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


class ReceiptNotRecorded(AicpError):
    status = 503
    code = "receipt_not_recorded"


class AuditChainBroken(AicpError):
    code = "audit_chain_broken"

    def __init__(self, message: str, seq: int | None = None) -> None:
        super().__init__(message)
        #: The first record that does not verify (None: the chain as a whole).
        self.seq = seq
