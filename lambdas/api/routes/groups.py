"""Groups (docs/api.md section 8). Every mutation starts with ``mutator(router)``,
the role check shared with codes and webhooks."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from qrpro.api import idempotency
from qrpro.api.context import caller, mutator, now
from qrpro.api.openapi import errors
from qrpro.api.router import Router
from qrpro.domain.groups import GroupCodes, GroupCreate, GroupPatch, changes_of
from qrpro.services import groups

router = Router()
TAGS = ["Groups"]


@router.get("/api/groups", operation_id="listGroups", tags=TAGS, summary="Every group of the scope, by name",
            responses=errors(ok="GroupList"))
def list_groups() -> dict[str, Any]:
    return {"groups": groups.list_groups(caller(router).scope)}


@router.post("/api/groups", operation_id="createGroup",
             tags=TAGS, summary="Create a group (name unique in the scope)", status_code=201,
             responses=errors(400, 409, 413, 415, ok="Group", ok_status=201, ok_description="The new group"))
def create_group(body: Annotated[GroupCreate, Body(embed=False)],
                 idempotency_key: idempotency.Key = None) -> Response[dict[str, Any]]:
    c = mutator(router)
    fields = changes_of(body)
    return idempotency.respond(router, idempotency_key, lambda: (201, groups.create(c, fields, now(router))))


@router.get("/api/groups/<group_id>", operation_id="getGroup",
            tags=TAGS, summary="One group, with the ids of its codes",
            responses=errors(404, ok="GroupDetail"))
def get_group(group_id: str) -> dict[str, Any]:
    return groups.get(caller(router).scope, group_id)


@router.patch("/api/groups/<group_id>", operation_id="updateGroup",
              tags=TAGS, summary="Rename, describe or recolour a group",
              responses=errors(400, 404, 413, 415, ok="Group", ok_description="The updated group"))
def patch_group(group_id: str, body: Annotated[GroupPatch, Body(embed=False)]) -> dict[str, Any]:
    return groups.update(mutator(router), group_id, changes_of(body), now(router))


@router.delete("/api/groups/<group_id>", operation_id="deleteGroup",
               tags=TAGS, summary="Delete a group; its codes stay, ungrouped",
               responses=errors(404, ok="GroupDeleted", ok_description="The deleted group and the codes it ungrouped"))
def delete_group(group_id: str) -> dict[str, Any]:
    return groups.delete(mutator(router), group_id, now(router))


@router.post("/api/groups/<group_id>/codes", operation_id="addGroupCodes",
             tags=TAGS, summary="Move codes into the group",
             responses=errors(400, 404, 409, 413, 415, ok="GroupDetail", ok_description="The group, with its codes"))
def add_codes(group_id: str, body: Annotated[GroupCodes, Body(embed=False)]) -> dict[str, Any]:
    return groups.add_codes(mutator(router), group_id, body.code_ids, now(router))


@router.delete("/api/groups/<group_id>/codes/<code_id>", operation_id="removeGroupCode",
               tags=TAGS, summary="Take one code out of the group",
               responses=errors(404, ok="GroupDetail", ok_description="The group, with its remaining codes"))
def remove_code(group_id: str, code_id: str) -> dict[str, Any]:
    return groups.remove_code(mutator(router), group_id, code_id, now(router))
