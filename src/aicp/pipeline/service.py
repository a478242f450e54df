"""Pipelines inside the gateway: the durable engine, its tracking, the model registry
and the aliases it drives, behind the async API (api/pipelines.py, api/registry.py).

The engine (DBOS) starts on first use, or at start-up when runs are unfinished
so that they resume. It runs stages in worker threads; their LLM calls come
back to this event loop through the request path (pipeline/inprocess.py), and
their events are emitted on this loop's bus.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import sys
import time
from collections.abc import Collection, Coroutine, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa

from aicp.api.authz import is_admin
from aicp.errors import AicpError, PermissionDenied, RequestError
from aicp.pipeline.access import describe, may_see, yaml_imports_code
from aicp.pipeline.model import Pipeline
from aicp.pipeline.store import ACTIVE
from aicp.plane.exchange import Principal
from aicp.routing.bindings import BindingSync
from aicp.storage.db import database_url
from aicp.storage.schema import MICROS, pipeline_definitions, pipeline_runs, pipeline_stages

if TYPE_CHECKING:
    from aicp.pipeline.registry import ModelRegistry
    from aicp.pipeline.runner import PipelineEngine
    from aicp.state import AppState

log = logging.getLogger("aicp.pipeline")
T = TypeVar("T")

#: Registry changes -> the event each emits.
_REGISTRY_EVENTS = {
    "register": "registry.registered",
    "promote": "registry.promoted",
    "rollback": "registry.rolled_back",
}


class PipelineService:
    def __init__(self, state: AppState) -> None:
        self.state = state
        self.settings = state.settings.pipelines
        self.bindings = BindingSync(state.db, state.router, state.settings.registry.sync_s)
        self._engine: PipelineEngine | None = None
        self._registry: ModelRegistry | None = None
        self._lock = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.data_dir = Path(state.settings.storage.data_dir)
        self.db_url = database_url(state.settings.storage)
        for entry in reversed(self.settings.code_paths):
            path = os.path.abspath(entry)
            if path not in sys.path:
                sys.path.insert(0, path)

    # --- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self.bindings.start()
        if self.settings.enabled and await self._unfinished():
            await self.engine()  # resumes them

    async def aclose(self) -> None:
        await self.bindings.aclose()
        engine, self._engine = self._engine, None
        if engine is not None:
            await asyncio.to_thread(engine.close)
        registry, self._registry = self._registry, None
        if registry is not None:
            registry.close()

    async def _unfinished(self) -> bool:
        """Whether a run would resume: a paused one waits for `resume`, which starts the
        engine itself, so it does not launch DBOS at every start-up."""
        active = sa.exists().where(pipeline_runs.c.status.in_(ACTIVE))
        async with self.state.db.connect() as conn:
            return bool((await conn.execute(sa.select(active))).scalar_one())

    def reader(self) -> PipelineEngine:
        """The engine for what only reads and writes rows (runs, events, approvals and
        their decisions): not started, so a process that only serves the API never
        launches DBOS, and never takes over the runs another process executes."""
        if self._engine is None:
            self._engine = self._make_engine()
        return self._engine

    async def engine(self) -> PipelineEngine:
        """The engine, started (DBOS launched, this executor's unfinished runs resumed):
        for starting runs and for cancel, pause and resume."""
        engine = self.reader()
        if not engine.started:
            async with self._lock:
                if not engine.started:
                    await asyncio.to_thread(engine.start)
        return engine

    def _make_engine(self) -> PipelineEngine:
        from aicp.pipeline.runner import PipelineEngine

        return PipelineEngine(
            database_url=self.db_url,
            system_database_url=self.settings.system_database_url,
            data_dir=self.data_dir,
            llm_for=self._llm_for,
            services_for=self._services_for,
            tracker=self._tracker(),
            on_event=self._on_event,
            ray_address=self.settings.ray_address,
            executor_id=self.settings.executor_id,
        )

    def _tracker(self) -> Any:
        if not self.settings.tracking:
            return None
        if not has_mlflow():
            log.warning("pipelines are not tracked: install the `mlops` extra for MLflow")
            return None
        from aicp.pipeline.tracking import MlflowTracker

        # MLflow itself is imported by the tracker on first use, in an engine thread.
        return MlflowTracker(self.settings.tracking_uri, self.data_dir)

    def _llm_for(self, run_id: str, stage: str, key_id: str | None) -> Any:
        from aicp.pipeline.inprocess import GatewayLlm

        assert self._loop is not None
        labels = {"pipeline_run": run_id, "pipeline_stage": stage}
        return GatewayLlm(self.state, self._loop, key_id, labels)

    def _services_for(self, run_id: str, stage: str, key_id: str | None) -> dict[str, Any]:
        return {"registry": RunRegistry(self, key_id)}

    def on_loop(self, coro: Coroutine[Any, Any, T], timeout_s: float = 60.0) -> T:
        """From an engine thread: run `coro` on the gateway's loop and wait for it."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    def _on_event(self, type: str, data: dict[str, Any]) -> None:
        """From the engine's threads: emitted on the bus on this loop."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(self._emit, type, data)

    def _emit(self, type: str, data: dict[str, Any]) -> None:
        events = self.state.events
        if events.wants(type):
            events.emit(type, data, key_id=data.get("key_id"), team_id=data.get("team_id"))

    # --- compiling --------------------------------------------------------------------

    async def compile(
        self, p: Principal, yaml: str | None, path: str | None, ref: str | None
    ) -> tuple[Pipeline, dict[str, str]]:
        """Compile a pipeline sent by `p`. Compiling imports what the pipeline names, so a
        pipeline that runs imported code is refused before it, unless `p` is an admin."""
        from aicp.pipeline.load import from_origin

        if not is_admin(p) and (ref is not None or yaml_imports_code(yaml or "")):
            raise PermissionDenied(
                "this pipeline runs code the gateway imports (python stages or import "
                "paths): an admin must run it or register it with POST /v1/pipelines",
                code="admin_required",
            )

        origin = (
            {"kind": "yaml", "text": yaml, "path": path or "<request>"}
            if yaml is not None
            else {"kind": "python", "ref": ref or ""}
        )
        pipeline = await asyncio.to_thread(from_origin, origin)
        return pipeline, origin

    async def validate(
        self, p: Principal, name: str | None, yaml: str | None, path: str | None, ref: str | None
    ) -> dict[str, Any]:
        try:
            if name is not None:
                pipeline = (await self._definition(name))[0]
            else:
                pipeline = (await self.compile(p, yaml, path, ref))[0]
        except AicpError as err:
            if err.status >= 500 or err.status in (403, 404):
                raise
            return {"valid": False, "problems": list(getattr(err, "problems", [err.message]))}
        return {"valid": True, **describe(pipeline)}

    # --- definitions ------------------------------------------------------------------

    async def define(
        self, p: Principal, name: str | None, yaml: str | None, path: str | None, ref: str | None
    ) -> dict[str, Any]:
        if not is_admin(p):
            raise PermissionDenied(
                "registering a pipeline needs an admin key", code="admin_required"
            )
        pipeline, origin = await self.compile(p, yaml, path, ref)
        name = name or pipeline.name
        now = time.time()
        async with self.state.db.begin() as conn:
            await conn.execute(
                pipeline_definitions.delete().where(pipeline_definitions.c.name == name)
            )
            await conn.execute(
                pipeline_definitions.insert().values(
                    name=name, origin=origin, created_by=p.key_id, created_at=now, updated_at=now
                )
            )
        return {"name": name, **describe(pipeline)}

    async def definitions(self) -> list[dict[str, Any]]:
        query = sa.select(pipeline_definitions).order_by(pipeline_definitions.c.name)
        async with self.state.db.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [
            {
                "name": r["name"],
                "kind": r["origin"].get("kind"),
                "created_by": r["created_by"],
                "updated_at": r["updated_at"],
            }
            for r in rows
        ]

    async def definition(self, name: str) -> dict[str, Any]:
        pipeline, origin = await self._definition(name)
        return {"name": name, "kind": origin.get("kind"), **describe(pipeline)}

    async def _definition(self, name: str) -> tuple[Pipeline, dict[str, str]]:
        from aicp.pipeline.load import from_origin

        query = sa.select(pipeline_definitions.c.origin).where(pipeline_definitions.c.name == name)
        async with self.state.db.connect() as conn:
            origin = (await conn.execute(query)).scalar_one_or_none()
        if origin is None:
            raise RequestError(f"no pipeline {name!r}", status=404, code="not_found")
        return await asyncio.to_thread(from_origin, origin), dict(origin)

    # --- runs -------------------------------------------------------------------------

    async def start_run(
        self,
        p: Principal,
        name: str | None,
        yaml: str | None,
        path: str | None,
        ref: str | None,
        params: Mapping[str, Any],
    ) -> dict[str, Any]:
        if not self.settings.enabled:
            raise RequestError("pipelines are switched off", status=404, code="pipelines_disabled")
        if name is not None:
            pipeline = (await self._definition(name))[0]
        else:
            pipeline = (await self.compile(p, yaml, path, ref))[0]
        engine = await self.engine()
        run_id = await asyncio.to_thread(
            engine.submit, pipeline, dict(params), key_id=p.key_id, team_id=p.team_id
        )
        return await self.run(p, run_id)

    async def _owners(self, run_ids: Collection[str]) -> dict[str, tuple[str | None, str | None]]:
        """run id -> (key id, team id) of who started it."""
        if not run_ids:
            return {}
        c = pipeline_runs.c
        query = sa.select(c.id, c.key_id, c.team_id).where(c.id.in_(run_ids))
        async with self.state.db.connect() as conn:
            return {r.id: (r.key_id, r.team_id) for r in await conn.execute(query)}

    async def _visible(self, p: Principal, run_id: str) -> None:
        owner = (await self._owners([run_id])).get(run_id)
        if owner is None or not may_see(p, *owner):
            raise RequestError(f"no pipeline run {run_id!r}", status=404, code="not_found")

    async def run(self, p: Principal, run_id: str) -> dict[str, Any]:
        await self._visible(p, run_id)
        run = await asyncio.to_thread(self.reader().get, run_id)
        if run is None:
            raise RequestError(f"no pipeline run {run_id!r}", status=404, code="not_found")
        return run.as_dict()

    async def runs(
        self, p: Principal, pipeline: str | None, status: str | None, limit: int
    ) -> list[dict[str, Any]]:
        found = await asyncio.to_thread(
            self.reader().list, pipeline=pipeline, status=status, limit=500
        )
        seen = [r for r in found if may_see(p, r.key_id, r.team_id)]
        return [r.as_dict() for r in seen[:limit]]

    async def control(self, p: Principal, run_id: str, action: str) -> dict[str, Any]:
        await self._visible(p, run_id)
        engine = await self.engine()
        run = await asyncio.to_thread(getattr(engine, action), run_id)
        out: dict[str, Any] = run.as_dict()
        return out

    async def approvals(self, p: Principal, run_id: str | None) -> list[dict[str, Any]]:
        if run_id is not None:
            await self._visible(p, run_id)
        found = await asyncio.to_thread(self.reader().pending_approvals, run_id)
        owners = await self._owners({a["run_id"] for a in found})
        return [a for a in found if may_see(p, *owners.get(a["run_id"], (None, None)))]

    async def decide(
        self, p: Principal, run_id: str, stage: str, approve: bool, comment: str | None
    ) -> dict[str, Any]:
        await self._visible(p, run_id)
        by = p.key_id or p.name or "local"
        out: dict[str, Any] = await asyncio.to_thread(
            self.reader().decide, run_id, stage, approve, by=by, comment=comment
        )
        return out

    async def events(self, p: Principal, run_id: str, after: int = 0) -> list[dict[str, Any]]:
        await self._visible(p, run_id)
        return await self.new_events(run_id, after)

    async def new_events(self, run_id: str, after: int) -> list[dict[str, Any]]:
        """A run's events after `after`, for a caller whose sight of the run was checked
        already (the WebSocket checks once, at its handshake, then polls this)."""
        found: list[dict[str, Any]] = await asyncio.to_thread(self.reader().events, run_id, after)
        return found

    async def costs(self, p: Principal, pipeline: str | None, limit: int) -> dict[str, Any]:
        """Per run and per pipeline: the sum of the receipts the run's stages recorded."""
        query = (
            sa.select(
                pipeline_runs.c.id,
                pipeline_runs.c.pipeline,
                pipeline_runs.c.key_id,
                pipeline_runs.c.team_id,
                pipeline_runs.c.status,
                pipeline_runs.c.created_at,
                sa.func.coalesce(sa.func.sum(pipeline_stages.c.cost_micros), 0).label("micros"),
            )
            .select_from(
                pipeline_runs.outerjoin(
                    pipeline_stages, pipeline_stages.c.run_id == pipeline_runs.c.id
                )
            )
            .group_by(pipeline_runs.c.id)
            .order_by(pipeline_runs.c.created_at.desc())
        )
        if pipeline is not None:
            query = query.where(pipeline_runs.c.pipeline == pipeline)
        async with self.state.db.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        rows = [r for r in rows if may_see(p, r["key_id"], r["team_id"])]
        by: dict[str, dict[str, Any]] = {}
        for r in rows:
            agg = by.setdefault(r["pipeline"], {"pipeline": r["pipeline"], "runs": 0, "micros": 0})
            agg["runs"] += 1
            agg["micros"] += r["micros"]
        return {
            "pipelines": [
                {"pipeline": a["pipeline"], "runs": a["runs"], "cost_usd": a["micros"] / MICROS}
                for a in sorted(by.values(), key=lambda a: -a["micros"])
            ],
            "runs": [
                {
                    "id": r["id"],
                    "pipeline": r["pipeline"],
                    "status": r["status"],
                    "created_at": r["created_at"],
                    "cost_usd": r["micros"] / MICROS,
                }
                for r in rows[:limit]
            ],
        }

    # --- registry ---------------------------------------------------------------------

    def registry(self) -> ModelRegistry:
        if self._registry is None:
            if not has_mlflow():
                raise RequestError(
                    "the model registry needs MLflow: pip install 'aicp[mlops]'",
                    status=501,
                    code="mlops_not_installed",
                )
            from aicp.pipeline.registry import ModelRegistry

            self._registry = ModelRegistry(
                self.db_url, data_dir=self.data_dir, tracking_uri=self.settings.tracking_uri
            )
        return self._registry

    async def registry_call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        registry = self.registry()
        out = await asyncio.to_thread(getattr(registry, method), *args, **kwargs)
        kind = _REGISTRY_EVENTS.get(method)
        if kind is not None and self.state.events.wants(kind):
            fields = ("name", "version", "previous_version", "gateway_alias", "target")
            data = {f: out.get(f) for f in fields if f in out}
            actor = kwargs.get("actor")
            self.state.events.emit(kind, {**data, "actor": actor}, key_id=actor)
        return out

    def check_target(self, target: str) -> None:
        try:
            self.state.router.resolve(target)
        except AicpError as err:
            raise RequestError(
                f"target {target!r} is not a model this gateway routes: {err.message}",
                status=409,
                code="unknown_target",
            ) from None

    async def apply_bindings(self) -> None:
        await self.bindings.sync()


class RunRegistry:
    """The model registry as a stage sees it (`ctx.services["registry"]`): acting as the
    key that started the run, which must be an admin's, as through the API."""

    def __init__(self, svc: PipelineService, key_id: str | None) -> None:
        self.svc = svc
        self.key_id = key_id

    async def _admin(self) -> Principal:
        from aicp.api.authz import BOOTSTRAP, authenticator

        if self.key_id is None:  # started by the local bootstrap caller of an open gateway
            return BOOTSTRAP
        principal = authenticator(self.svc.state).resolve_id(self.key_id)[0]
        if not is_admin(principal):
            raise PermissionDenied(
                "changing the model registry needs an admin key", code="admin_required"
            )
        return principal

    def _act(self, method: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        async def act() -> dict[str, Any]:
            await self._admin()
            if "target" in kwargs:
                self.svc.check_target(kwargs["target"])
            out: dict[str, Any] = await self.svc.registry_call(
                method, *args, actor=self.key_id, **kwargs
            )
            if method in ("promote", "rollback"):
                await self.svc.apply_bindings()
            return out

        return self.svc.on_loop(act())

    def register(self, name: str, **fields: Any) -> dict[str, Any]:
        return self._act("register", name, **fields)

    def promote(
        self, name: str, version: str | None = None, *, from_alias: str | None = None
    ) -> dict[str, Any]:
        return self._act("promote", name, version, from_alias=from_alias)

    def rollback(self, name: str) -> dict[str, Any]:
        return self._act("rollback", name)

    def list(self, name: str | None = None) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.svc.on_loop(self.svc.registry_call("list", name))
        return found


def has_mlflow() -> bool:
    """Is the `mlops` extra installed? (Without importing MLflow, which takes ~1.4 s.)"""
    return importlib.util.find_spec("mlflow") is not None
