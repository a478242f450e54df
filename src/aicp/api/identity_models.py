"""Request bodies of the identity admin API: typed, bounded, unknown fields rejected.

Bounds follow the columns (so PostgreSQL never sees a value it would refuse),
and no string may hold a NUL byte (PostgreSQL text cannot).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from aicp.errors import RequestError
from aicp.protocol.jsonutil import dumps

INT32 = 2**31 - 1
METADATA_BYTES = 16 * 1024


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL bytes")
    return value


def _small_json(value: dict[str, Any]) -> dict[str, Any]:
    raw = dumps(value)
    if len(raw) > METADATA_BYTES:
        raise ValueError(f"must be at most {METADATA_BYTES} bytes of JSON")
    if b"\\u0000" in raw:
        raise ValueError("must not contain NUL bytes")
    return value


Name = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(_no_nul)]
Ident = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
Email = Annotated[
    str, StringConstraints(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$"), AfterValidator(_no_nul)
]
Meta = Annotated[dict[str, Any], AfterValidator(_small_json)]
Limit = Annotated[int, Field(gt=0, le=INT32)]
Role = Literal["admin", "team_admin", "member"]
Period = Literal["daily", "weekly", "monthly", "total"]
#: Epoch seconds or an ISO 8601 time.
When = float | datetime


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KeyFields(Body):
    name: Name | None = None
    models: Annotated[list[Name], Field(max_length=1000)] | None = None
    user_id: Ident | None = None
    service_account_id: Ident | None = None
    team_id: Ident | None = None
    project_id: Ident | None = None
    rpm: Limit | None = None
    tpm: Limit | None = None
    budget_usd: Annotated[float, Field(gt=0, le=1e9)] | None = None
    budget_period: Period | None = None
    expires_at: When | None = None
    expires_in: Annotated[float, Field(gt=0, le=10 * 365 * 86400)] | None = None
    metadata: Meta | None = None
    trust_level: Annotated[int, Field(ge=0, le=100)] | None = None
    can_force_routes: bool | None = None
    is_admin: bool | None = None

    @model_validator(mode="after")
    def _one_expiry(self) -> KeyFields:
        if self.expires_at is not None and self.expires_in is not None:
            raise ValueError("give expires_at or expires_in, not both")
        return self


class KeyCreate(KeyFields):
    """POST /admin/keys. The key belongs to `user_id` or `service_account_id` (or neither)."""


class KeyUpdate(KeyFields):
    """PATCH /admin/keys/{id}: only the fields given change; null clears a nullable one."""


class KeyRotate(Body):
    #: How long the old key stays valid after rotation.
    grace_seconds: Annotated[float, Field(ge=0, le=30 * 86400)] = 0


class TeamCreate(Body):
    name: Name
    metadata: Meta = Field(default_factory=dict)


class TeamUpdate(Body):
    name: Name | None = None
    metadata: Meta | None = None


class UserCreate(Body):
    name: Name
    email: Email | None = None
    team_id: Ident | None = None
    role: Role = "member"
    metadata: Meta = Field(default_factory=dict)


class UserUpdate(Body):
    name: Name | None = None
    email: Email | None = None
    team_id: Ident | None = None
    role: Role | None = None
    metadata: Meta | None = None


class ProjectCreate(Body):
    name: Name
    team_id: Ident | None = None
    labels: Meta = Field(default_factory=dict)


class ProjectUpdate(Body):
    name: Name | None = None
    team_id: Ident | None = None
    labels: Meta | None = None


class ServiceAccountCreate(Body):
    name: Name
    team_id: Ident | None = None
    project_id: Ident | None = None


class ServiceAccountUpdate(Body):
    name: Name | None = None
    team_id: Ident | None = None
    project_id: Ident | None = None


#: Fields that are NOT NULL in the table: null in a PATCH is refused for them.
NOT_NULL = frozenset(
    {"name", "models", "metadata", "labels", "role", "trust_level", "can_force_routes", "is_admin"}
)


def invalid(exc: ValidationError) -> RequestError:
    """422 naming the field and the problem, never echoing the value."""
    first = exc.errors(include_input=False, include_url=False)[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    return RequestError(f"{where}: {first['msg']}", status=422, code="invalid_value", param=where)


def changes(body: Body) -> dict[str, Any]:
    """The fields a PATCH sets; null for a NOT NULL column is a 422."""
    values = body.model_dump(exclude_unset=True)
    for name, value in values.items():
        if value is None and name in NOT_NULL:
            raise RequestError(f"{name}: may not be null", status=422, code="invalid_value")
    return values
