"""The model registry: MLflow registered models whose production version a gateway alias serves.

A registered model drives one gateway alias (its tag `aicp.alias`, by default
its own name); each version is a gateway route: a target (a gateway model
name such as "openai/gpt-4o-mini", or a configured model or group) and
request parameters (registry_mlflow.py says where they live in MLflow).
MLflow's `production` alias marks the version served, `staging` a candidate.

What the gateway applies is our `model_bindings` table (alias -> target and
params), not MLflow: promote and rollback set the MLflow alias, then write the
binding and a hash-chained `registry_audit` record in one transaction of our
database, and put the MLflow alias back when that transaction fails. Writers
take turns on one lock (registry_db.py), so parallel promotes keep the chain
whole. Rollback reads the production history from the audit records
(registry_audit.py says how it walks it).

A crash between setting the MLflow alias and committing leaves MLflow ahead of
the binding; `list()` shows that as `in_sync: false`, and the next promote or
rollback sets both again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from aicp.errors import AuditChainBroken, RegistryConflict, RegistryError, RegistryNotFound
from aicp.pipeline import mlflow_env
from aicp.pipeline import registry_audit as audit
from aicp.pipeline import registry_mlflow as ml
from aicp.pipeline.registry_db import RegistryDb
from aicp.pipeline.registry_mlflow import PRODUCTION, STAGING, TAG_ALIAS
from aicp.storage.db import plain_row
from aicp.storage.schema import model_bindings

if TYPE_CHECKING:
    from mlflow.entities.model_registry import RegisteredModel

__all__ = [
    "PRODUCTION",
    "STAGING",
    "AuditChainBroken",
    "ModelRegistry",
    "RegistryConflict",
    "RegistryError",
    "RegistryNotFound",
]

Record = dict[str, Any]
Records = list[dict[str, Any]]
#: Chooses the version production moves to, given the current one, under the write lock.
Pick = Callable[[Connection, str | None], str]


class ModelRegistry:
    def __init__(
        self,
        database_url: str,
        *,
        data_dir: Path,
        tracking_uri: str | None = None,
        registry_uri: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = RegistryDb(database_url)
        self.tracking_uri = tracking_uri or mlflow_env.default_tracking_uri(data_dir)
        self.mlflow = ml.MlflowModels(self.tracking_uri, registry_uri or self.tracking_uri)
        self.clock = clock

    def close(self) -> None:
        self.db.close()

    # --- versions ------------------------------------------------------------------------

    def register(
        self,
        name: str,
        *,
        target: str,
        params: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        alias: str | None = None,
        description: str = "",
        stage: str | None = None,
        actor: str | None = None,
    ) -> Record:
        """A new version of `name` (created if needed) routing to `target` with `params`.

        `alias` is the gateway alias the model drives (fixed at its first
        registration); `stage` points that MLflow alias at the new version
        ("staging"; "production" promotes it).
        """
        ml.check_name(name)
        target, params_json = ml.check_route(target, params)
        if stage is not None:
            ml.check_mlflow_alias(stage)
        gateway_alias = self._claim_model(name, alias, description)
        mv = self.mlflow.client.create_model_version(
            name,
            source=f"aicp-route:{target}",
            run_id=run_id,
            tags={ml.TAG_TARGET: target, ml.TAG_PARAMS: params_json},
            description=description or None,
            await_creation_for=0,
        )
        version = str(mv.version)
        data = {
            "target": target,
            "params": json.loads(params_json),
            "run_id": run_id,
            "gateway_alias": gateway_alias,
        }
        try:
            if stage is not None and stage != PRODUCTION:
                self.mlflow.client.set_registered_model_alias(name, stage, version)
            with self.db.write() as conn:
                audit.append(
                    conn, self._record(actor, "register", name, version, None, stage, data)
                )
        except BaseException:
            self.mlflow.forget(name, version)
            raise
        if stage == PRODUCTION:
            self.promote(name, version, actor=actor)
        aliases = ml.aliases_of(self.mlflow.model(name))
        return ml.describe(self.mlflow.version(name, version), gateway_alias, aliases)

    def promote(
        self,
        name: str,
        version: str | None = None,
        *,
        from_alias: str | None = None,
        actor: str | None = None,
    ) -> Record:
        """Move `production` to `version`, or to the version `from_alias` points at."""
        if (version is None) == (from_alias is None):
            raise RegistryError("promote takes a version or from_alias (e.g. 'staging'): one")
        rm = self.mlflow.model(name)
        if from_alias is not None:
            version = ml.alias_of(rm, from_alias)
            if version is None:
                raise RegistryNotFound(f"registered model {name!r} has no {from_alias!r} alias")
        chosen = str(self.mlflow.version(name, str(version)).version)
        extra = {"from_alias": from_alias} if from_alias else {}
        return self._move(rm, "promote", actor, lambda _conn, _current: chosen, extra)

    def rollback(self, name: str, *, actor: str | None = None) -> Record:
        """Move `production` back to the version before the current one (registry_audit.py)."""
        rm = self.mlflow.model(name)

        def pick(conn: Connection, current: str | None) -> str:
            history = audit.Production.replay(audit.records(conn, name))
            target = history.target(current, lambda v: self.mlflow.exists(name, v))
            if target is None:
                raise RegistryConflict(
                    f"registered model {name!r}: no earlier production version to roll back to"
                )
            return target

        return self._move(rm, "rollback", actor, pick, {})

    # --- reading ---------------------------------------------------------------------------

    def history(self, name: str) -> Records:
        """The audit records of one registered model, oldest first."""
        with self.db.read() as conn:
            records = audit.records(conn, name)
        if not records:
            self.mlflow.model(name)
        return records

    def bindings(self) -> Records:
        """Every gateway alias binding (what the gateway applies)."""
        with self.db.read() as conn:
            rows = conn.execute(select(model_bindings).order_by(model_bindings.c.registered_model))
            return [plain_row(r) for r in rows]

    def check_audit(self) -> int:
        """Recompute the audit chain: how many records, or AuditChainBroken."""
        with self.db.read() as conn:
            return audit.check(conn)

    def verify_audit(self) -> bool:
        try:
            self.check_audit()
        except AuditChainBroken:
            return False
        return True

    def list(self, name: str | None = None) -> Records:
        """Registered models (those aicp manages) with versions, aliases and binding."""
        models = [self.mlflow.model(name)] if name is not None else self.mlflow.managed()
        with self.db.read() as conn:
            rows = [plain_row(r) for r in conn.execute(select(model_bindings))]
        bound = {r["registered_model"]: r for r in rows}
        return [self._summary(rm, bound.get(rm.name)) for rm in models]

    # --- the move --------------------------------------------------------------------------

    def _move(
        self, rm: RegisteredModel, action: str, actor: str | None, pick: Pick, extra: Record
    ) -> Record:
        name = rm.name
        gateway_alias = ml.gateway_alias_of(rm)
        before: list[str | None] = []
        try:
            with self.db.write() as conn:
                binding = _binding(conn, name)
                current = binding["version"] if binding else None
                version = pick(conn, current)
                mv = self.mlflow.version(name, version)
                target, params = ml.target_of(mv), ml.params_of(mv)
                before.append(self.mlflow.alias(name, PRODUCTION))
                self.mlflow.client.set_registered_model_alias(name, PRODUCTION, version)
                data = {"target": target, "params": params, "gateway_alias": gateway_alias, **extra}
                record = self._record(actor, action, name, version, current, PRODUCTION, data)
                row = {
                    "registered_model": name,
                    "alias": gateway_alias,
                    "version": version,
                    "target": target,
                    "params": params,
                    "updated_at": record["time"],
                    "updated_by": actor,
                }
                _save_binding(conn, row, exists=binding is not None)
                audit.append(conn, record)
        except BaseException as exc:
            if before:
                self.mlflow.put_back(name, PRODUCTION, before[0])
            if isinstance(exc, IntegrityError):
                raise RegistryConflict(
                    f"gateway alias {gateway_alias!r} is bound to another registered model"
                ) from None
            raise
        return {
            "name": name,
            "version": version,
            "previous_version": current,
            "alias": PRODUCTION,
            "gateway_alias": gateway_alias,
            "target": target,
            "params": params,
        }

    def _record(
        self,
        actor: str | None,
        action: str,
        name: str,
        version: str | None,
        previous: str | None,
        alias: str | None,
        data: Record,
    ) -> Record:
        return {
            "time": self.clock(),
            "actor": actor,
            "action": action,
            "registered_model": name,
            "version": version,
            "previous_version": previous,
            "alias": alias,
            "data": data,
        }

    def _claim_model(self, name: str, alias: str | None, description: str) -> str:
        """Create `name` if needed, driving `alias`; the gateway alias it drives."""
        if alias is not None:
            ml.check_gateway_alias(alias)
        existing = self.mlflow.find(name)
        bound = existing.tags.get(TAG_ALIAS) if existing is not None else None
        if bound is not None and alias is not None and alias != bound:
            raise RegistryConflict(
                f"registered model {name!r} drives gateway alias {bound!r}, not {alias!r}"
            )
        gateway_alias: str = bound or alias or name
        self._check_alias_free(gateway_alias, name)
        if existing is None:
            tags = {TAG_ALIAS: gateway_alias}
            try:
                self.mlflow.client.create_registered_model(name, tags=tags, description=description)
            except Exception as exc:
                if mlflow_env.error_code(exc) != mlflow_env.ALREADY_EXISTS:
                    raise
        elif bound is None:
            # A model created in MLflow directly: it drives its own name unless told otherwise.
            self.mlflow.client.set_registered_model_tag(name, TAG_ALIAS, gateway_alias)
        return gateway_alias

    def _check_alias_free(self, gateway_alias: str, name: str) -> None:
        with self.db.read() as conn:
            owner = conn.execute(
                select(model_bindings.c.registered_model).where(
                    model_bindings.c.alias == gateway_alias
                )
            ).scalar_one_or_none()
        if owner is not None and owner != name:
            raise RegistryConflict(
                f"gateway alias {gateway_alias!r} is bound to registered model {owner!r}"
            )

    def _summary(self, rm: RegisteredModel, binding: Record | None) -> Record:
        gateway_alias = ml.gateway_alias_of(rm)
        aliases = ml.aliases_of(rm)
        production = binding["version"] if binding else None
        versions = [ml.describe(mv, gateway_alias, aliases) for mv in self.mlflow.versions(rm.name)]
        return {
            "name": rm.name,
            "description": rm.description or "",
            "gateway_alias": gateway_alias,
            "aliases": aliases,
            "production": production,
            "in_sync": production == aliases.get(PRODUCTION),
            "binding": binding,
            "versions": versions,
        }


# --- helpers -----------------------------------------------------------------------------


def _binding(conn: Connection, name: str) -> Record | None:
    query = select(model_bindings).where(model_bindings.c.registered_model == name)
    row = conn.execute(query).first()
    return plain_row(row) if row is not None else None


def _save_binding(conn: Connection, row: Record, *, exists: bool) -> None:
    if exists:
        where = model_bindings.c.registered_model == row["registered_model"]
        conn.execute(update(model_bindings).where(where).values(**row))
    else:
        conn.execute(insert(model_bindings).values(**row))
