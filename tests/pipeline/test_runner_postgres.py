"""The runner on PostgreSQL: our tables through psycopg 3, DBOS's in the same database."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa

from aicp.pipeline.model import Stage
from aicp.pipeline.runner import PipelineEngine
from aicp.storage.db import sync_url
from tests.pipeline.runner_child import WORKDIR, migrate, pipeline, stage, started

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url(postgres_url: str) -> str:
    return migrate(postgres_url)


@pytest.fixture
def eng(pg_url: str, tmp_path: Path) -> Iterator[PipelineEngine]:
    with started(pg_url, tmp_path) as e:
        yield e


def test_a_run_with_retries_and_an_approval_on_postgres(
    eng: PipelineEngine, pg_url: str, tmp_path: Path
) -> None:
    assert eng.system_database_url.startswith("postgresql+psycopg://")
    flow = pipeline(
        "pg",
        replace(stage("f", "flaky", workdir="$workdir", failures=1), retries=1, backoff_s=0.01),
        Stage("gate", type="approval", depends_on=("f",)),
        stage("c", "echo", value="@f", after=("gate",)),
        workdir=WORKDIR,
    )
    run_id = eng.submit(flow, {"workdir": str(tmp_path)})
    assert eng.wait(run_id, 15, until=("waiting_approval",)).status == "waiting_approval"
    eng.decide(run_id, "gate", True, by="pg")
    run = eng.wait(run_id, 15)
    assert run.status == "succeeded", run.error
    assert run.stages["f"].attempts == 2 and run.stages["c"].output == 2
    assert "pipeline.stage.retry" in [e["type"] for e in eng.events(run_id)]
    probe = sa.create_engine(sync_url(pg_url))
    try:
        with probe.connect() as conn:
            query = "SELECT count(*) FROM dbos.workflow_status WHERE workflow_uuid = :id"
            assert conn.execute(sa.text(query), {"id": run_id}).scalar_one() == 1
    finally:
        probe.dispose()
