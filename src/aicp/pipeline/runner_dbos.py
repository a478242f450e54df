"""The engine's few calls into DBOS, each imported when first made (never at `import aicp`).

Every call runs outside any DBOS context: a stage may call the engine from
inside its step, and DBOS would otherwise take a control call for a step of
that workflow.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from aicp.storage.db import prepare_sqlite_file

if TYPE_CHECKING:
    from aicp.pipeline.runner_exec import Runtime

T = TypeVar("T")

#: How often a process looks for runs to start (DBOS's queue polling).
QUEUE_POLL_S = 0.1


def _log_through_aicp() -> None:
    """DBOS logs through the app's logging (one format, one stream): with a handler of
    its own already there, DBOS adds no console handler (which would hold whatever
    sys.stderr was at launch) and its records propagate to aicp's."""
    dbos_log = logging.getLogger("dbos")
    if not dbos_log.handlers:
        dbos_log.addHandler(logging.NullHandler())


def launch(
    rt: Runtime, *, system_database_url: str, app_name: str, executor_id: str, log_level: str
) -> None:
    """Configure and launch DBOS for `rt`; pending workflows of `executor_id` are recovered."""
    from dbos import DBOS, DBOSConfig

    from aicp.pipeline import runner_workflow as wf

    wf.activate(rt)
    try:
        _refuse_foreign_dbos()
    except RuntimeError:
        wf.deactivate(rt)
        raise
    _log_through_aicp()
    try:
        # DBOS leaves the journal mode alone: WAL up front, as for our own file.
        prepare_sqlite_file(system_database_url)
        config: DBOSConfig = {
            "name": app_name,
            "system_database_url": system_database_url,
            "application_version": wf.APP_VERSION,
            "executor_id": executor_id,
            "log_level": log_level,
            "enable_otlp": False,
        }
        DBOS(config=config)
        DBOS.launch()
        DBOS.register_queue(wf.QUEUE, polling_interval_sec=QUEUE_POLL_S)
    except BaseException:
        DBOS.destroy()
        wf.deactivate(rt)
        raise


def destroy(rt: Runtime) -> None:
    from dbos import DBOS

    from aicp.pipeline import runner_workflow as wf

    try:
        DBOS.destroy()
    finally:
        wf.deactivate(rt)


def enqueue(run_id: str) -> None:
    """Start the run's workflow (its id the run id) through the runs queue."""
    from dbos import DBOS, SetWorkflowID

    from aicp.pipeline import runner_workflow as wf

    def go() -> None:
        with SetWorkflowID(run_id):
            DBOS.enqueue_workflow(wf.QUEUE, wf.run_pipeline, run_id)

    _outside_dbos(go)


def cancel(run_id: str) -> None:
    from dbos import DBOS

    _outside_dbos(DBOS.cancel_workflow, run_id)


def resume(run_id: str) -> None:
    from dbos import DBOS

    _outside_dbos(DBOS.resume_workflow, run_id)


def status(run_id: str) -> str | None:
    """DBOS's status of the run's workflow (PENDING, CANCELLED, ERROR...), None if unknown."""
    from dbos import DBOS

    found = _outside_dbos(DBOS.get_workflow_status, run_id)
    return None if found is None else str(found.status)


def _outside_dbos(func: Callable[..., T], *args: Any) -> T:
    return contextvars.Context().run(func, *args)


def _refuse_foreign_dbos() -> None:
    from dbos import _dbos

    if getattr(_dbos, "_dbos_global_instance", None) is not None:
        raise RuntimeError(
            "DBOS is already in use in this process by something else than a pipeline engine"
        )
