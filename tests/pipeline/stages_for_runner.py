"""Stage functions the runner's tests import by path (`Stage.call`), also in child processes."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from aicp.pipeline.model import StageContext, StageFailed


class Point(BaseModel):
    x: int
    y: int


def append_line(workdir: str, name: str) -> str:
    """Appends `name` to workdir/<name>.txt: a side effect that shows how often it ran."""
    with open(Path(workdir) / f"{name}.txt", "a") as f:
        f.write(f"{name}\n")
    return name


def wait_for_file(workdir: str, name: str, timeout_s: float = 20.0) -> str:
    """Marks workdir/<name>.started, then waits until workdir/<name>.go exists."""
    append_line(workdir, name)
    (Path(workdir) / f"{name}.started").touch()
    deadline = time.monotonic() + timeout_s
    while not (Path(workdir) / f"{name}.go").exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name}.go never appeared")
        time.sleep(0.02)
    return name


def make_point(x: int, y: int) -> Point:
    return Point(x=x, y=y)


def add_point(p: Point) -> int:
    if not isinstance(p, Point):
        raise TypeError(f"expected a Point, got {type(p).__name__}")
    return p.x + p.y


def interval(name: str, seconds: float) -> dict[str, Any]:
    """Sleeps; returns when it ran, to compare stages' intervals."""
    start = time.time()
    time.sleep(seconds)
    return {"name": name, "start": start, "end": time.time()}


def meet(barrier: threading.Barrier, name: str) -> str:
    """Passes only when another stage is at the barrier at the same time."""
    barrier.wait()
    return name


def flaky(workdir: str, failures: int) -> int:
    """Fails `failures` times (counted in a file), then returns the attempt number."""
    counter = Path(workdir) / "flaky.count"
    seen = int(counter.read_text()) if counter.exists() else 0
    counter.write_text(str(seen + 1))
    if seen < failures:
        raise ValueError(f"boom {seen + 1}")
    return seen + 1


def gate(workdir: str) -> None:
    counter = Path(workdir) / "gate.count"
    counter.write_text(str(int(counter.read_text()) + 1 if counter.exists() else 1))
    raise StageFailed("the gate is closed", report={"checks": ["closed"]})


def sleepy(seconds: float) -> str:
    time.sleep(seconds)
    return "woke"


def with_ctx(ctx: StageContext, n: int) -> dict[str, Any]:
    ctx.record_receipt("rcpt_1", 0.25)
    ctx.record_receipt("rcpt_2", 0.5)
    ctx.log_metric("accuracy", 0.9)
    return {"run_id": ctx.run_id, "stage": ctx.stage.name, "n": n, "params": dict(ctx.params)}


def ask_llm(ctx: StageContext) -> str:
    reply = ctx.llm.chat("m", [{"role": "user", "content": "hi"}])
    ctx.record_receipt(reply.receipt_id, reply.cost_usd)
    return reply.text


def pid(ctx: StageContext) -> dict[str, Any]:
    ctx.log_metric("remote", 1.0)
    return {"pid": os.getpid()}


def echo(value: Any) -> Any:
    return value
