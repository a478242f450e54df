"""The pipelines API: definitions, runs, approvals, costs (docs/pipelines.md).

Authenticated like the admin API. Any key may start runs of pipelines made only
of built-in stages (their LLM calls go through the request path as that key)
and of pipelines an admin registered; running code the gateway imports (a
`module:function`, or a YAML stage with a `call`) needs an admin key. A key
sees its own runs, a team admin their team's, an admin all.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Self

from pydantic import Field, model_validator
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aicp.api.admin import json_response
from aicp.api.authz import caller
from aicp.api.identity_http import body_of, endpoint, state_of
from aicp.api.identity_models import Body
from aicp.errors import RequestError
from aicp.pipeline.service import PipelineService

NAME = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:/-]+$")]


class Code(Body):
    """A pipeline given whole: a YAML document or an import path (exactly one)."""

    yaml: Annotated[str, Field(max_length=200_000)] | None = None
    #: Where the YAML came from, for messages (the CLI sends the file name).
    path: Annotated[str, Field(max_length=500)] | None = None
    ref: (
        Annotated[str, Field(max_length=300, pattern=r"^[A-Za-z0-9_.]+:[A-Za-z0-9_.]+$")] | None
    ) = None

    #: The fields of which exactly one must be given.
    _ONE_OF: ClassVar[tuple[str, ...]] = ("yaml", "ref")

    @model_validator(mode="after")
    def _one(self) -> Self:
        given = [n for n in self._ONE_OF if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(self._ONE_OF)}")
        return self


class Source(Code):
    """One of: a registered pipeline's name, a YAML document, an import path."""

    pipeline: NAME | None = None
    _ONE_OF: ClassVar[tuple[str, ...]] = ("pipeline", "yaml", "ref")


class StartRun(Source):
    params: dict[str, Any] = Field(default_factory=dict)


class Define(Code):
    name: NAME | None = None


class Decision(Body):
    approve: bool
    comment: Annotated[str, Field(max_length=2000)] | None = None


def service(request: Request) -> PipelineService:
    svc = state_of(request).pipelines
    if svc is None:
        raise RequestError(
            "pipelines are switched off on this gateway (pipelines.enabled)",
            status=404,
            code="pipelines_disabled",
        )
    return svc


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit", "50")
    if not raw.isdigit() or not 1 <= int(raw) <= 500:
        raise RequestError("limit: a whole number from 1 to 500", status=422, param="limit")
    return int(raw)


@endpoint
async def list_definitions(request: Request) -> Response:
    """Registered pipelines.
    ---
    summary: Pipeline definitions
    tags: [pipelines]
    responses:
      200: {description: "{data: [{name, kind, stages, params, created_at}]}"}
    """
    await caller(request)
    return json_response({"data": await service(request).definitions()})


@endpoint
async def define(request: Request) -> Response:
    """Register (or replace) a pipeline by name, after compiling it (admin).
    ---
    summary: Register a pipeline
    tags: [pipelines]
    responses:
      201: {description: "{name, kind, stages, params}"}
      403: {description: Not an admin.}
      422: {description: "The pipeline does not compile: every problem, with stage and line."}
    """
    p = await caller(request)
    body = await body_of(request, Define)
    out = await service(request).define(p, body.name, body.yaml, body.path, body.ref)
    return json_response(out, 201)


@endpoint
async def get_definition(request: Request) -> Response:
    """One registered pipeline, stage by stage.
    ---
    summary: A pipeline definition
    tags: [pipelines]
    responses:
      200: {description: "{name, kind, stages, params}"}
      404: {description: No such pipeline.}
    """
    await caller(request)
    return json_response(await service(request).definition(request.path_params["name"]))


@endpoint
async def validate(request: Request) -> Response:
    """Compile a pipeline without running it.
    ---
    summary: Validate a pipeline
    tags: [pipelines]
    responses:
      200: {description: "{valid: true, name, stages} or {valid: false, problems: [...]}"}
      403: {description: "Code the gateway would import, without an admin key."}
    """
    p = await caller(request)
    body = await body_of(request, Source)
    return json_response(
        await service(request).validate(p, body.pipeline, body.yaml, body.path, body.ref)
    )


@endpoint
async def start_run(request: Request) -> Response:
    """Start a run.
    ---
    summary: Start a pipeline run
    tags: [pipelines]
    responses:
      202: {description: "The run: {id, pipeline, status, params, stages, cost_usd, ...}"}
      403: {description: "Code the gateway would import, without an admin key."}
      404: {description: No such registered pipeline.}
      422: {description: "It does not compile, or a parameter is missing or of the wrong type."}
    """
    p = await caller(request)
    body = await body_of(request, StartRun)
    svc = service(request)
    out = await svc.start_run(p, body.pipeline, body.yaml, body.path, body.ref, body.params)
    return json_response(out, 202)


@endpoint
async def list_runs(request: Request) -> Response:
    """Runs this key may see, newest first.
    ---
    summary: Pipeline runs
    tags: [pipelines]
    parameters:
      - {name: pipeline, in: query, schema: {type: string}}
      - {name: status, in: query, schema: {type: string}}
      - {name: limit, in: query, schema: {type: integer}}
    responses:
      200: {description: "{data: [run, ...]}"}
    """
    p = await caller(request)
    q = request.query_params
    runs = await service(request).runs(p, q.get("pipeline"), q.get("status"), _limit(request))
    return json_response({"data": runs})


@endpoint
async def get_run(request: Request) -> Response:
    """A run with every stage's result.
    ---
    summary: A pipeline run
    tags: [pipelines]
    responses:
      200: {description: "{id, pipeline, status, params, stages: {name: result}, cost_usd, ...}"}
      404: {description: No such run, or not one this key may see.}
    """
    p = await caller(request)
    return json_response(await service(request).run(p, request.path_params["id"]))


@endpoint
async def get_steps(request: Request) -> Response:
    """A run's stages, in order, with status, attempts, timings, receipts and cost.
    ---
    summary: A run's stages
    tags: [pipelines]
    responses:
      200: {description: "{data: [stage result, ...]}"}
      404: {description: No such run, or not one this key may see.}
    """
    p = await caller(request)
    run = await service(request).run(p, request.path_params["id"])
    return json_response({"data": list(run["stages"].values())})


def _control(action: str) -> Any:
    @endpoint
    async def control(request: Request) -> Response:
        p = await caller(request)
        out = await service(request).control(p, request.path_params["id"], action)
        return json_response(out)

    control.__doc__ = f"""{action.capitalize()} a run.
    ---
    summary: {action.capitalize()} a pipeline run
    tags: [pipelines]
    responses:
      200: {{description: The run after the change.}}
      404: {{description: No such run, or not one this key may see.}}
      409: {{description: "The run cannot be {action}d in its status."}}
    """
    return control


@endpoint
async def list_approvals(request: Request) -> Response:
    """Approvals waiting for a decision.
    ---
    summary: Pending approvals
    tags: [pipelines]
    parameters:
      - {name: run_id, in: query, schema: {type: string}}
    responses:
      200: {description: "{data: [{run_id, stage, message, default, deadline, ...}]}"}
    """
    p = await caller(request)
    found = await service(request).approvals(p, request.query_params.get("run_id"))
    return json_response({"data": found})


@endpoint
async def decide(request: Request) -> Response:
    """Approve or reject what a run waits for.
    ---
    summary: Decide an approval
    tags: [pipelines]
    responses:
      200: {description: "{run_id, stage, status, decided_by, ...}"}
      403: {description: "Not the run's key, its team admin or an admin."}
      404: {description: No such pending approval.}
    """
    p = await caller(request)
    body = await body_of(request, Decision)
    run_id, stage = request.path_params["run_id"], request.path_params["stage"]
    out = await service(request).decide(p, run_id, stage, body.approve, body.comment)
    return json_response(out)


@endpoint
async def costs(request: Request) -> Response:
    """What runs cost: the sum of their requests' receipts, by pipeline and by run.
    ---
    summary: Pipeline costs
    tags: [pipelines]
    parameters:
      - {name: pipeline, in: query, schema: {type: string}}
    responses:
      200: {description: "{pipelines: [{pipeline, runs, cost_usd}], runs: [{id, cost_usd}]}"}
    """
    p = await caller(request)
    svc = service(request)
    return json_response(await svc.costs(p, request.query_params.get("pipeline"), _limit(request)))


routes = [
    Route("/v1/pipelines", list_definitions, methods=["GET"]),
    Route("/v1/pipelines", define, methods=["POST"]),
    Route("/v1/pipelines/validate", validate, methods=["POST"]),
    Route("/v1/pipelines/costs", costs, methods=["GET"]),
    Route("/v1/pipelines/runs", list_runs, methods=["GET"]),
    Route("/v1/pipelines/runs", start_run, methods=["POST"]),
    Route("/v1/pipelines/runs/{id}", get_run, methods=["GET"]),
    Route("/v1/pipelines/runs/{id}/steps", get_steps, methods=["GET"]),
    *(
        Route(f"/v1/pipelines/runs/{{id}}/{a}", _control(a), methods=["POST"])
        for a in ("pause", "resume", "cancel")
    ),
    Route("/v1/pipelines/{name}", get_definition, methods=["GET"]),
    Route("/v1/approvals", list_approvals, methods=["GET"]),
    Route("/v1/approvals/{run_id}/{stage}", decide, methods=["POST"]),
]
