"""Engines and pipelines for the runner's tests, and a child process that runs one.

python -m tests.pipeline.runner_child run DATABASE_URL DATA_DIR RUN_ID WORKDIR
    starts an engine, submits `durable()` as RUN_ID, then waits to be killed;
python -m tests.pipeline.runner_child decide DATABASE_URL DATA_DIR RUN_ID STAGE yes|no
    decides an approval from another process (no DBOS in it).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from aicp.pipeline.model import Param, Pipeline, Ref, Stage
from aicp.pipeline.runner import PipelineEngine
from aicp.pipeline.types import import_object
from aicp.storage.db import Database
from aicp.storage.migrate import upgrade

STAGES = "tests.pipeline.stages_for_runner"
#: The command that runs this module as a child process.
CHILD = (sys.executable, "-m", "tests.pipeline.runner_child")
#: The parameter most test pipelines take: where their stages leave traces.
WORKDIR = Param("workdir", str, required=True)


def migrate(url: str) -> str:
    """The database at `url` brought to head: its URL."""

    async def run() -> None:
        db = Database(url)
        try:
            await upgrade(db)
        finally:
            await db.aclose()

    asyncio.run(run())
    return url


@contextlib.contextmanager
def started(url: str, directory: Path, **kwargs: Any) -> Iterator[PipelineEngine]:
    """`engine(...)`, started, and closed after the block (the tests' `eng` fixtures)."""
    e = engine(url, directory, **kwargs)
    e.start()
    try:
        yield e
    finally:
        e.close()


def migrated_database(directory: Path) -> str:
    """A SQLite aicp database at head, in `directory`: its URL."""
    return migrate(f"sqlite:///{directory / 'aicp.db'}")


def resolve(origin: Mapping[str, str]) -> Pipeline:
    """Origins of kind `python` name a function that builds the pipeline."""
    built = import_object(origin["ref"])()
    assert isinstance(built, Pipeline)
    return built


def engine(database_url: str, data_dir: Path, **kwargs: Any) -> PipelineEngine:
    kwargs.setdefault("poll_interval_s", 0.05)
    return PipelineEngine(database_url=database_url, data_dir=data_dir, resolve=resolve, **kwargs)


def stage(
    name: str,
    func: str | Callable[..., Any],
    /,
    *,
    after: tuple[str, ...] = (),
    **inputs: Any,
) -> Stage:
    """A python stage; `inputs` values: Ref, or "@stage", "$param", or a constant."""
    refs = {arg: _ref(v) for arg, v in inputs.items()}
    deps = tuple(after) + tuple(r.name for r in refs.values() if r.kind == "stage")
    if isinstance(func, str):
        return Stage(name, call=f"{STAGES}:{func}", inputs=refs, depends_on=deps)
    return Stage(name, func=func, inputs=refs, depends_on=deps)


def _ref(value: Any) -> Ref:
    if isinstance(value, Ref):
        return value
    if isinstance(value, str) and value.startswith("@"):
        return Ref("stage", value[1:])
    if isinstance(value, str) and value.startswith("$"):
        return Ref("param", value[1:])
    return Ref("value", value=value)


def pipeline(name: str, *stages: Stage, concurrency: int = 4, **params: Param) -> Pipeline:
    return Pipeline(
        name,
        {s.name: s for s in stages},
        params=params,
        concurrency=concurrency,
    )


def durable() -> Pipeline:
    """a (a side effect) -> b (waits for b.go) -> c: for the kill -9 test."""
    built = pipeline(
        "durable",
        stage("a", "append_line", workdir="$workdir", name="a"),
        stage("b", "wait_for_file", workdir="$workdir", name="b", after=("a",)),
        stage("c", "append_line", workdir="$workdir", name="c", after=("b",)),
        workdir=WORKDIR,
    )
    return replace(built, origin={"kind": "python", "ref": "tests.pipeline.runner_child:durable"})


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until `check()` holds (things the runner does right after a status change)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {timeout} s")
        time.sleep(0.02)


def main(argv: list[str]) -> int:
    command, database_url, data_dir = argv[:3]
    eng = engine(database_url, Path(data_dir))
    if command == "decide":
        run_id, stage_name, answer = argv[3:6]
        print(eng.decide(run_id, stage_name, answer == "yes", by="child"), flush=True)
        eng.close()
        return 0
    run_id, workdir = argv[3:5]
    if len(argv) > 5:
        eng.executor_id = argv[5]
    eng.start()
    eng.submit(durable(), {"workdir": workdir}, run_id=run_id)
    print("submitted", run_id, flush=True)
    while True:  # until killed
        time.sleep(1)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
