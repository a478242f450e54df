"""The durable schema: one SQLAlchemy Core MetaData for every table.

Alembic migrations (storage/migrations) create and change these tables; this
module is what the code queries against. Money is stored as integer
micro-dollars (1e-6 USD) so sums are exact in SQLite and PostgreSQL alike.
Times are UTC epoch seconds (float) so SQLite and PostgreSQL compare alike.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

#: USD -> stored integer units.
MICROS = 1_000_000

teams = Table(
    "teams",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("metadata", JSON, nullable=False, default=dict),
    Column("created_at", Float, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("email", String(320), nullable=True, unique=True),
    Column("team_id", String(64), ForeignKey("teams.id", ondelete="SET NULL"), nullable=True),
    #: "admin" (everything), "team_admin" (their team), "member"
    Column("role", String(20), nullable=False, default="member"),
    Column("metadata", JSON, nullable=False, default=dict),
    Column("created_at", Float, nullable=False),
)

projects = Table(
    "projects",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("team_id", String(64), ForeignKey("teams.id", ondelete="SET NULL"), nullable=True),
    #: Labels the trust router and policies read (e.g. {"sensitivity": "confidential"}).
    Column("labels", JSON, nullable=False, default=dict),
    Column("created_at", Float, nullable=False),
)

service_accounts = Table(
    "service_accounts",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("team_id", String(64), ForeignKey("teams.id", ondelete="SET NULL"), nullable=True),
    Column("project_id", String(64), ForeignKey("projects.id", ondelete="SET NULL"), nullable=True),
    Column("created_at", Float, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    #: HMAC-SHA256(pepper, key) in hex; the key itself is never stored.
    Column("key_hash", String(64), nullable=False, unique=True),
    #: What people see to recognise a key, e.g. "sk-aicp-Ab3d…x9Q".
    Column("display", String(40), nullable=False),
    Column("user_id", String(64), ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
    Column(
        "service_account_id",
        String(64),
        ForeignKey("service_accounts.id", ondelete="CASCADE"),
        nullable=True,
    ),
    Column("team_id", String(64), ForeignKey("teams.id", ondelete="SET NULL"), nullable=True),
    Column("project_id", String(64), ForeignKey("projects.id", ondelete="SET NULL"), nullable=True),
    #: Model names, aliases and groups this key may use; empty means all.
    Column("models", JSON, nullable=False, default=list),
    Column("rpm", Integer, nullable=True),
    Column("tpm", Integer, nullable=True),
    Column("trust_level", Integer, nullable=False, default=1),
    Column("can_force_routes", Boolean, nullable=False, default=False),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("metadata", JSON, nullable=False, default=dict),
    Column("expires_at", Float, nullable=True),
    Column("revoked_at", Float, nullable=True),
    #: Rotation: the key this one replaced; the old key stays valid until its expires_at.
    Column("rotated_from", String(64), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

budgets = Table(
    "budgets",
    metadata,
    Column("id", String(64), primary_key=True),
    #: "key" | "user" | "team" | "project"
    Column("scope", String(16), nullable=False),
    Column("scope_id", String(64), nullable=False),
    #: "daily" | "weekly" | "monthly" | "total"
    Column("period", String(16), nullable=False),
    Column("hard_limit_micros", BigInteger, nullable=True),
    Column("soft_limit_micros", BigInteger, nullable=True),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("scope", "scope_id", "period", name="uq_budgets_scope_period"),
)

#: Live budget counters, one row per (budget, period window). Reservations are
#: taken with one conditional UPDATE (spent + reserved + x <= limit), which is
#: atomic in PostgreSQL and SQLite alike.
budget_counters = Table(
    "budget_counters",
    metadata,
    Column("budget_id", String(64), ForeignKey("budgets.id", ondelete="CASCADE"), primary_key=True),
    Column("window_start", Float, primary_key=True),
    Column("spent_micros", BigInteger, nullable=False, default=0),
    Column("reserved_micros", BigInteger, nullable=False, default=0),
)

#: The spend ledger: one row per request that cost something (append-only).
spend = Table(
    "spend",
    metadata,
    #: 64-bit: one row per request outgrows 2**31 within weeks at a few thousand requests a
    #: second. SQLite keeps INTEGER, the only type it auto-increments (the rowid).
    Column(
        "id",
        BigInteger().with_variant(Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("request_id", String(128), nullable=False),
    Column("key_id", String(64), nullable=True),
    Column("user_id", String(64), nullable=True),
    Column("team_id", String(64), nullable=True),
    Column("project_id", String(64), nullable=True),
    Column("model", String(200), nullable=False),
    Column("provider", String(100), nullable=True),
    Column("prompt_tokens", Integer, nullable=False, default=0),
    Column("completion_tokens", Integer, nullable=False, default=0),
    Column("cached_tokens", Integer, nullable=False, default=0),
    Column("cost_micros", BigInteger, nullable=False, default=0),
    Column("created_at", Float, nullable=False),
    Index("ix_spend_key_time", "key_id", "created_at"),
    Index("ix_spend_team_time", "team_id", "created_at"),
    Index("ix_spend_time", "created_at"),
)

#: Version counters other processes poll to invalidate in-process caches
#: (e.g. "api_keys" bumps on every key change, so revocation spreads within a second).
state_versions = Table(
    "state_versions",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("version", BigInteger, nullable=False, default=0),
)


# --- receipts (append-only: triggers refuse UPDATE and DELETE, migration 0002) ---

#: The leaves of the Merkle log, in log order. `data` is the receipt's canonical
#: JSON (RFC 8785), the exact bytes that were hashed into `leaf_hash`.
receipts = Table(
    "receipts",
    metadata,
    Column("leaf_index", BigInteger, primary_key=True, autoincrement=False),
    Column("id", String(64), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("key_id", String(64), nullable=True),
    Column("team_id", String(64), nullable=True),
    Column("model", String(200), nullable=True),
    Column("status", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("leaf_hash", LargeBinary, nullable=False),
    Index("ix_receipts_time", "created_at"),
    Index("ix_receipts_key_time", "key_id", "created_at"),
    Index("ix_receipts_team_time", "team_id", "created_at"),
)

#: The hash of every perfect subtree of the log: 2**level leaves from leaf
#: index * 2**level. Written once, when the subtree becomes complete; proofs are
#: built from these (O(log n) rows), never by rehashing leaves.
receipt_nodes = Table(
    "receipt_nodes",
    metadata,
    Column("level", SmallInteger, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary, nullable=False),
)

#: Signed checkpoints (C2SP tlog-checkpoint notes), at most one per tree size.
receipt_checkpoints = Table(
    "receipt_checkpoints",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("root_hash", LargeBinary, nullable=False),
    Column("note", String(2000), nullable=False),
    Column("created_at", Float, nullable=False),
)

#: Request and response bodies, kept apart from the leaves so that retention may
#: delete them (the receipts commit to their hashes and stay verifiable).
receipt_bodies = Table(
    "receipt_bodies",
    metadata,
    Column("receipt_id", String(64), primary_key=True),
    #: "full" | "redacted"
    Column("kept", String(16), nullable=False),
    Column("request", LargeBinary, nullable=True),
    Column("response", LargeBinary, nullable=True),
    Column("created_at", Float, nullable=False),
    Index("ix_receipt_bodies_time", "created_at"),
)

#: The tables whose rows may never change or go (the triggers of migration 0002).
APPEND_ONLY = ("receipts", "receipt_nodes", "receipt_checkpoints")


# --- memory: caches, project memory, route memory, feedback (migration 0003) ---


def _seq() -> Column:  # type: ignore[type-arg]
    return Column(
        "seq", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )


#: Cached answers. `lookup` is the exact key (SHA-256 of the canonical request) or, for
#: the semantic cache, the fingerprint of everything but the question; `reply` is the
#: answer as an OpenAI chat completion (JSON), whatever protocol it was asked in.
cache_entries = Table(
    "cache_entries",
    metadata,
    _seq(),
    Column("id", String(40), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),  # "exact" | "semantic"
    Column("lookup", String(64), nullable=False),
    Column("model", String(200), nullable=False),
    Column("deployment", String(200), nullable=False),
    Column("sensitivity", String(16), nullable=False),
    Column("team_id", String(64), nullable=True),
    Column("user_id", String(64), nullable=True),
    Column("key_id", String(64), nullable=True),
    Column("receipt_id", String(64), nullable=False),
    Column("reply", LargeBinary, nullable=False),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("cost_micros", BigInteger, nullable=False),
    Column("vector", LargeBinary, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    #: The semantic cache's question (the last user turn), to index the entry again.
    Column("question", String, nullable=True),
    Index("ix_cache_entries_lookup", "lookup"),
    Index("ix_cache_entries_expires", "expires_at"),
)

#: What `DELETE /admin/cache/...` removed, so every process drops it from its index.
cache_invalidations = Table(
    "cache_invalidations",
    metadata,
    _seq(),
    Column("entry_id", String(40), nullable=True),
    Column("model", String(200), nullable=True),
    Column("user_id", String(64), nullable=True),
    Column("key_id", String(64), nullable=True),
    Column("created_at", Float, nullable=False),
)

#: Hits, misses and savings, one row per (gateway process, model): summed when read.
cache_stats = Table(
    "cache_stats",
    metadata,
    Column("origin", String(64), primary_key=True),
    Column("model", String(200), primary_key=True),
    Column("hits", BigInteger, nullable=False, default=0),
    Column("misses", BigInteger, nullable=False, default=0),
    Column("tokens_saved", BigInteger, nullable=False, default=0),
    Column("cost_saved_micros", BigInteger, nullable=False, default=0),
    Column("updated_at", Float, nullable=False),
)

#: Project and global memory: append-only, one row per version of an entry.
memory_entries = Table(
    "memory_entries",
    metadata,
    _seq(),
    Column("id", String(40), nullable=False),
    Column("version", Integer, nullable=False),
    Column("project_id", String(64), nullable=True),  # NULL: global memory
    Column("kind", String(32), nullable=False),
    Column("title", String(200), nullable=False),
    Column("text", String, nullable=False),
    Column("tags", JSON, nullable=False, default=list),
    Column("author", String(200), nullable=True),
    Column("retired", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("id", "version", name="uq_memory_entries_id_version"),
    Index("ix_memory_entries_project", "project_id", "created_at"),
)

#: The local embedding of each memory entry version, per embedder (its weights and dims),
#: computed once by the first process that needs it and read by the rest (migration 0006).
#: Derived data, so not append-only: vectors of an embedder no longer used may be dropped.
memory_vectors = Table(
    "memory_vectors",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("embedder", String(64), primary_key=True),
    Column("dims", Integer, nullable=False),
    #: `dims` little-endian float32s.
    Column("vector", LargeBinary, nullable=False),
    Column("created_at", Float, nullable=False),
)

#: Route memory: each process's decayed outcome sums per (task class, route), merged
#: by every process (memory/routes.py says how).
route_memory = Table(
    "route_memory",
    metadata,
    Column("origin", String(64), primary_key=True),
    Column("task_class", String(64), primary_key=True),
    Column("route", String(200), primary_key=True),
    Column("data", JSON, nullable=False),
    Column("updated_at", Float, nullable=False),
)

#: `POST /v1/feedback`: a score for the answer of one receipt (append-only).
feedback = Table(
    "feedback",
    metadata,
    _seq(),
    Column("receipt_id", String(64), nullable=False),
    Column("score", Float, nullable=False),
    Column("comment", String(2000), nullable=True),
    Column("key_id", String(64), nullable=True),
    Column("task_class", String(64), nullable=True),
    Column("route", String(200), nullable=True),
    Column("created_at", Float, nullable=False),
    Index("ix_feedback_receipt", "receipt_id"),
)

#: Tables whose rows may never change or go (triggers of migration 0003).
MEMORY_APPEND_ONLY = ("memory_entries", "feedback")

# --- pipelines (pipeline/) ---------------------------------------------------------------

#: Pipelines registered through `/v1/pipelines`: how to load each (YAML text or import path).
pipeline_definitions = Table(
    "pipeline_definitions",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("origin", JSON, nullable=False),
    Column("created_by", String(64), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

#: One row per run; the durable engine (DBOS) keeps its own checkpoints beside it.
pipeline_runs = Table(
    "pipeline_runs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("pipeline", String(200), nullable=False),
    Column("status", String(20), nullable=False),
    Column("params", JSON, nullable=False, default=dict),
    Column("origin", JSON, nullable=False),
    Column("key_id", String(64), nullable=True),
    Column("team_id", String(64), nullable=True),
    Column("mlflow_run_id", String(64), nullable=True),
    Column("error", String, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
    Column("updated_at", Float, nullable=False),
    Index("ix_pipeline_runs_pipeline", "pipeline", "created_at"),
    Index("ix_pipeline_runs_status", "status"),
)

pipeline_stages = Table(
    "pipeline_stages",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("stage", String(200), primary_key=True),
    Column("status", String(20), nullable=False),
    Column("output", JSON, nullable=True),
    Column("error", String, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("receipts", JSON, nullable=False, default=list),
    Column("cost_micros", BigInteger, nullable=False, default=0),
    Column("metrics", JSON, nullable=False, default=dict),
    Column("report", JSON, nullable=True),
    Column("started_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
)

#: Every event of a run, in order, so a late WebSocket subscriber gets the history first.
pipeline_events = Table(
    "pipeline_events",
    metadata,
    _seq(),
    Column("run_id", String(64), nullable=False),
    Column("type", String(64), nullable=False),
    Column("time", Float, nullable=False),
    Column("data", JSON, nullable=False, default=dict),
    Index("ix_pipeline_events_run", "run_id", "seq"),
)

pipeline_approvals = Table(
    "pipeline_approvals",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("stage", String(200), primary_key=True),
    #: pending, approved, rejected, timed_out
    Column("status", String(20), nullable=False),
    Column("message", String(2000), nullable=True),
    Column("default", String(20), nullable=False),
    Column("requested_at", Float, nullable=False),
    Column("deadline", Float, nullable=True),
    Column("decided_at", Float, nullable=True),
    Column("decided_by", String(64), nullable=True),
    Column("comment", String(2000), nullable=True),
)

# --- the model registry (pipeline/registry.py) -------------------------------------------

#: The gateway alias each registered model drives, and the route its production version
#: names; every gateway process applies changes within a second.
model_bindings = Table(
    "model_bindings",
    metadata,
    Column("registered_model", String(200), primary_key=True),
    Column("alias", String(200), nullable=False, unique=True),
    Column("version", String(32), nullable=True),
    #: The gateway model name the alias resolves to (a model, group or provider/model).
    Column("target", String(200), nullable=True),
    #: Request parameters the version serves with (defaults the client may override).
    Column("params", JSON, nullable=False, default=dict),
    Column("updated_at", Float, nullable=False),
    Column("updated_by", String(64), nullable=True),
)

#: Every register, promote and rollback, hash-chained (append-only).
registry_audit = Table(
    "registry_audit",
    metadata,
    _seq(),
    Column("time", Float, nullable=False),
    Column("actor", String(64), nullable=True),
    Column("action", String(20), nullable=False),
    Column("registered_model", String(200), nullable=False),
    Column("version", String(32), nullable=True),
    Column("previous_version", String(32), nullable=True),
    Column("alias", String(200), nullable=True),
    Column("data", JSON, nullable=False, default=dict),
    #: SHA-256 of the previous record's hash and this record's canonical JSON.
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_registry_audit_model", "registered_model", "seq"),
)

#: Tables whose rows may never change or go (triggers of migration 0005).
PIPELINE_APPEND_ONLY = ("pipeline_events", "registry_audit")
