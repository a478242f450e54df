"""The receipts API: receipts with their proofs, checkpoints, consistency proofs.

A key reads its own receipts, a team admin those of their team, an admin all.
Checkpoints and consistency proofs say nothing about any one request, so any
authenticated caller may read them (they are meant to be published).
"""

from __future__ import annotations

import base64
import re
from typing import Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aicp.accounting.principals import not_found
from aicp.api.admin import json_response
from aicp.api.authz import caller, is_admin, is_team_admin, require_admin
from aicp.api.identity_http import endpoint, state_of
from aicp.api.spend import parse_time
from aicp.errors import PermissionDenied, RequestError
from aicp.plane.exchange import Principal
from aicp.receipts.log import ReceiptNotFound
from aicp.storage.db import plain_row
from aicp.storage.schema import receipts

RECEIPT_ID = re.compile(r"rcpt_[0-9a-f]{28}")


def _may_read(p: Principal, key_id: str | None, team_id: str | None) -> bool:
    if is_admin(p):
        return True
    if key_id is not None and key_id == p.key_id:
        return True
    return team_id is not None and is_team_admin(p, team_id)


async def _readable(request: Request) -> Any:
    """The receipt row of the path's {id}; 404 for a receipt the caller may not see,
    so that ids of others' receipts cannot be probed."""
    p = await caller(request)
    rid = request.path_params["id"]
    if not RECEIPT_ID.fullmatch(rid):
        raise not_found("receipt", rid[:64])
    try:
        row = await state_of(request).receipts.get(rid)
    except ReceiptNotFound:
        raise not_found("receipt", rid[:64]) from None
    if not _may_read(p, row.key_id, row.team_id):
        raise not_found("receipt", rid[:64])
    return row


@endpoint
async def get_receipt(request: Request) -> Response:
    """One receipt with its inclusion proof and the signed checkpoint it is proved against.
    ---
    summary: A receipt and its proof
    tags: [receipts]
    responses:
      200:
        description: >-
          {receipt, leaf_index, leaf_hash, tree_size, root_hash, audit_path, checkpoint,
          verifier_key}: save it and `aicp receipts verify-bundle FILE` checks it offline.
      404: {description: No such receipt, or not one this key may read.}
    """
    row = await _readable(request)
    return json_response(await state_of(request).receipts.bundle(row.id))


@endpoint
async def get_body(request: Request) -> Response:
    """The request and response bodies kept for a receipt (receipts.bodies).
    ---
    summary: A receipt's bodies
    tags: [receipts]
    responses:
      200: {description: "{receipt_id, kept, request, response}; bodies as text or base64."}
      404: {description: No such receipt, or its bodies were not kept or are past retention.}
    """
    row = await _readable(request)
    bodies = await state_of(request).receipts.bodies(row.id)
    if bodies is None:
        raise not_found("body (not kept, or deleted by retention) for the receipt", row.id)
    return json_response(
        {
            "receipt_id": row.id,
            "kept": bodies.kept,
            "request": _text(bodies.request),
            "response": _text(bodies.response),
        }
    )


def _text(data: bytes | None) -> dict[str, str] | None:
    if data is None:
        return None
    try:
        return {"text": bytes(data).decode("utf-8")}
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(bytes(data)).decode()}


@endpoint
async def get_checkpoint(request: Request) -> Response:
    """The newest signed checkpoint of the receipt log.
    ---
    summary: The latest checkpoint
    tags: [receipts]
    responses:
      200: {description: "{origin, tree_size, root_hash, note, verifier_key}"}
    """
    await caller(request)
    log = state_of(request).receipts
    cp = await log.latest_checkpoint() or await log.checkpoint()
    return json_response({**cp.as_dict(), "verifier_key": log.signer.verifier_key})


@endpoint
async def issue_checkpoint(request: Request) -> Response:
    """Sign a checkpoint of the log as it is now.
    ---
    summary: Issue a checkpoint (admin)
    tags: [receipts]
    responses:
      200: {description: "{origin, tree_size, root_hash, note, verifier_key}"}
      403: {description: Not an admin key.}
    """
    require_admin(await caller(request))
    log = state_of(request).receipts
    cp = await log.checkpoint()
    return json_response({**cp.as_dict(), "verifier_key": log.signer.verifier_key})


@endpoint
async def get_consistency(request: Request) -> Response:
    """A consistency proof between two tree sizes (RFC 9162 section 2.1.4).
    ---
    summary: A consistency proof
    tags: [receipts]
    parameters:
      - {name: from, in: query, required: true, schema: {type: integer, minimum: 1}}
      - {name: to, in: query, required: true, schema: {type: integer, minimum: 1}}
    responses:
      200: {description: "{from, to, from_root, to_root, proof}; hashes in hex."}
      422: {description: "Sizes that are not 1 <= from <= to <= the log's size."}
    """
    await caller(request)
    log = state_of(request).receipts
    old, new = _size_param(request, "from"), _size_param(request, "to")
    size = await log.size()
    if not 1 <= old <= new <= size:
        raise RequestError(
            f"need 1 <= from <= to <= {size} (the log's size); got from={old}, to={new}",
            status=422,
        )
    proof = await log.consistency(old, new)
    return json_response(
        {
            "from": old,
            "to": new,
            "from_root": (await log.root_at(old)).hex(),
            "to_root": (await log.root_at(new)).hex(),
            "proof": [h.hex() for h in proof],
        }
    )


def _size_param(request: Request, name: str) -> int:
    value = request.query_params.get(name)
    if value is None or not value.isdigit() or len(value) > 18:
        raise RequestError(f"{name}: a tree size (a positive integer) is required", status=422)
    return int(value)


@endpoint
async def list_receipts(request: Request) -> Response:
    """Receipts, newest first, by key, team, model, status and time.
    ---
    summary: List receipts
    tags: [receipts]
    parameters:
      - {name: key, in: query, schema: {type: string}}
      - {name: team, in: query, schema: {type: string}}
      - {name: model, in: query, schema: {type: string}}
      - {name: status, in: query, schema: {type: integer}}
      - {name: since, in: query, schema: {type: string}, description: epoch seconds or ISO}
      - {name: until, in: query, schema: {type: string}}
      - {name: limit, in: query, schema: {type: integer, default: 100, maximum: 1000}}
    responses:
      200: {description: "{object: list, data: [{id, leaf_index, created_at, key_id, ...}]}"}
    """
    p = await caller(request)
    q = request.query_params
    c = receipts.c
    stmt = select(c.id, c.leaf_index, c.created_at, c.key_id, c.team_id, c.model, c.status)
    key, team = q.get("key"), q.get("team")
    if not is_admin(p):
        if team is not None:
            if not is_team_admin(p, team):
                raise PermissionDenied("only a team admin of that team may list its receipts")
        elif p.key_id is None or key not in (None, p.key_id):
            raise PermissionDenied("this key may only list its own receipts")
        else:
            key = p.key_id
    if key is not None:
        stmt = stmt.where(c.key_id == key)
    if team is not None:
        stmt = stmt.where(c.team_id == team)
    if (model := q.get("model")) is not None:
        stmt = stmt.where(c.model == model)
    if (status := q.get("status")) is not None:
        if not status.isdigit() or len(status) > 3:
            raise RequestError("status: an HTTP status such as 200 or 429", status=422)
        stmt = stmt.where(c.status == int(status))
    if (since := parse_time(q.get("since"), "since")) is not None:
        stmt = stmt.where(c.created_at >= since)
    if (until := parse_time(q.get("until"), "until")) is not None:
        stmt = stmt.where(c.created_at < until)
    limit = q.get("limit", "100")
    if not limit.isdigit() or not 1 <= int(limit) <= 1000:
        raise RequestError("limit must be 1..1000", status=422)
    stmt = stmt.order_by(c.leaf_index.desc()).limit(int(limit))
    async with state_of(request).db.connect() as conn:
        rows = (await conn.execute(stmt)).all()
    data = [plain_row(r) for r in rows]
    return json_response({"object": "list", "data": data})


routes: list[Route] = [
    Route("/v1/receipts", list_receipts, methods=["GET"]),
    Route("/v1/receipts/checkpoint", get_checkpoint, methods=["GET"]),
    Route("/v1/receipts/checkpoint", issue_checkpoint, methods=["POST"]),
    Route("/v1/receipts/consistency", get_consistency, methods=["GET"]),
    Route("/v1/receipts/{id}", get_receipt, methods=["GET"]),
    Route("/v1/receipts/{id}/body", get_body, methods=["GET"]),
]
