"""Codes (docs/api.md section 6, but the QR image of 6.9)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from pydantic import Field

from qrpro.api import idempotency
from qrpro.api.context import caller, mutator, now
from qrpro.api.openapi import errors
from qrpro.api.router import Router
from qrpro.domain import imports
from qrpro.domain.bodies import RequestBody
from qrpro.domain.code_bodies import CodeCreate, CodePatch
from qrpro.domain.codes import BulkAction, CodeStatus
from qrpro.domain.errors import ValidationFailed
from qrpro.services import codes

router = Router()
TAGS = ["Codes"]


class BulkRequest(RequestBody):
    ids: Annotated[list[str], Field(min_length=1, max_length=1000)]
    action: BulkAction
    group_id: str | None = None


@router.get("/api/codes", operation_id="listCodes", tags=TAGS, summary="List codes, newest first",
            responses=errors(400, ok="CodeList", ok_description="One page of codes"))
def list_codes(
    status: Annotated[CodeStatus | None, Query()] = None,
    tag: Annotated[str | None, Query(max_length=500)] = None,
    group_id: Annotated[str | None, Query(max_length=64)] = None,
    q: Annotated[str | None, Query(max_length=2048)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> dict[str, Any]:
    c = caller(router)
    found, next_cursor = codes.list_codes(c.scope, now=now(router), status=status, tag=tag, group_id=group_id,
                                          q=q, limit=limit, cursor=cursor)
    return {"codes": found, "plan": c.plan_name, "plan_limit": c.plan.codes, "scope": c.scope_json(),
            "next_cursor": next_cursor}


@router.post("/api/codes", operation_id="createCode", tags=TAGS, summary="Create a code", status_code=201,
             responses=errors(400, 409, 413, 415, ok="Code", ok_status=201, ok_description="The new code"))
def create_code(body: Annotated[CodeCreate, Body(embed=False)],
                idempotency_key: idempotency.Key = None) -> Response[dict[str, Any]]:
    c = mutator(router)
    fields = body.model_dump(exclude_unset=True)
    return idempotency.respond(router, idempotency_key, lambda: (201, codes.create(c, fields, now(router))))


@router.post("/api/codes/import", operation_id="importCodes", tags=TAGS, status_code=201,
             responses=errors(400, 409, 413, 415, ok="ImportResult", ok_status=201,
                              ok_description="The created codes, in input order"),
             summary="Bulk create: a code, an array, {codes: [...]}, or text/csv (the export's codes.csv)")
def import_codes(idempotency_key: idempotency.Key = None) -> Response[dict[str, Any]]:
    c = mutator(router)
    event = router.current_event
    ctype = (event.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    items = imports.validate(imports.items_of(event.body or "", ctype))
    checked: set[str] = set()
    for i, item in enumerate(items):
        group_id = item.get("group_id")
        if group_id and group_id not in checked:
            try:
                codes.require_group(c.scope, group_id)
            except ValidationFailed as err:
                raise ValidationFailed(f"codes[{i}].group_id", "no such group in this scope") from err
            checked.add(group_id)

    def work() -> tuple[int, dict[str, Any]]:
        created = codes.create_many(c, items, now(router))
        return 201, {"codes": created, "count": len(created)}

    return idempotency.respond(router, idempotency_key, work)


@router.post("/api/codes/bulk", operation_id="bulkCodes", tags=TAGS, summary="Pause, resume, delete or move many codes",
             responses=errors(400, 409, 413, 415, ok="BulkResult", ok_description="What was applied, what failed"))
def bulk(body: Annotated[BulkRequest, Body(embed=False)],
         idempotency_key: idempotency.Key = None) -> Response[dict[str, Any]]:
    c = mutator(router)
    if body.action == "move":
        if "group_id" not in body.model_fields_set:
            raise ValidationFailed("group_id", "move needs group_id (null to ungroup)")
        if body.group_id is not None:
            codes.require_group(c.scope, body.group_id)
    at = now(router)
    return idempotency.respond(router, idempotency_key,
                              lambda: (200, codes.bulk(c, body.ids, body.action, body.group_id, at)))


@router.get("/api/codes/<code_id>", operation_id="getCode",
            tags=TAGS, summary="One code", responses=errors(404, ok="Code"))
def get_code(code_id: str) -> dict[str, Any]:
    return codes.get(caller(router).scope, code_id, now(router))


@router.patch("/api/codes/<code_id>", operation_id="updateCode",
              tags=TAGS, summary="Change a code (url, status, fields)",
              responses=errors(400, 404, 409, 413, 415, ok="Code", ok_description="The updated code"))
def patch_code(code_id: str, body: Annotated[CodePatch, Body(embed=False)]) -> dict[str, Any]:
    c = mutator(router)
    return codes.update(c, code_id, body.model_dump(exclude_unset=True), now(router))


@router.delete("/api/codes/<code_id>", operation_id="deleteCode", tags=TAGS, summary="Soft delete: 90 days of grace",
               responses=errors(404, 409, ok="Code", ok_description="The code, now in grace"))
def delete_code(code_id: str) -> dict[str, Any]:
    c = mutator(router)
    return codes.soft_delete(c, code_id, now(router))


@router.post("/api/codes/<code_id>/reactivate", operation_id="reactivateCode",
             tags=TAGS, summary="Grace or expired back to active",
             responses=errors(404, ok="Code", ok_description="The code, active again (unchanged if it was live)"))
def reactivate(code_id: str) -> dict[str, Any]:
    c = mutator(router)
    return codes.reactivate(c, code_id, now(router))


@router.get("/api/codes/<code_id>/history", operation_id="getCodeHistory",
            tags=TAGS, summary="Destination and status changes, newest first",
            responses=errors(404, ok="History"))
def history(code_id: str) -> dict[str, Any]:
    return {"history": codes.history(caller(router).scope, code_id)}
