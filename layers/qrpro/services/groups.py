"""Groups: the use cases of docs/api.md section 8.

A group's name is unique in its scope (``400`` on ``name``); deleting a group
ungroups its codes (they stay); moving codes in needs every id to be a live
code of the scope. The role check is the routes' (``qrpro.api.context.mutator``).
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from qrpro.data import codes as code_repo
from qrpro.data import groups as repo
from qrpro.data.codes import Code
from qrpro.data.groups import Group
from qrpro.data.table import Cancelled, Retry, or_not_found, retrying
from qrpro.domain.codes import EDITABLE
from qrpro.domain.errors import CodeNotEditable, NotFound, ServiceUnavailable, ValidationFailed
from qrpro.domain.groups import name_key
from qrpro.domain.ids import is_id
from qrpro.domain.scope import Caller
from qrpro.services import codes

ROUNDS = 6  # re-reads when another writer changed the group meanwhile
BUSY = "the group kept changing; retry"


def _duplicate() -> ValidationFailed:
    return ValidationFailed("name", "a group with this name exists already in this scope")


def list_groups(scope: str) -> list[dict[str, Any]]:
    """Every group of the scope, by name (case-insensitive)."""
    groups = [g.public() for g in repo.list_items(scope)]
    return sorted(groups, key=lambda g: (name_key(g["name"]), g["id"]))


def get(scope: str, group_id: str) -> dict[str, Any]:
    """The group object plus ``code_ids`` (every code in it, newest first)."""
    group = or_not_found(repo.get_item(scope, group_id)).public()
    return {**group, "code_ids": repo.code_ids(scope, group_id)}


def create(caller: Caller, fields: dict[str, Any], now: int) -> dict[str, Any]:
    """A new group; a name already used in the scope is ``400`` on ``name``."""
    group = Group(scope=caller.scope, id=str(uuid.uuid4()), name=fields["name"],
                  description=fields.get("description") or "", color=fields.get("color"), created_at=now,
                  updated_at=now, created_by=caller.user_id)
    try:
        repo.create_tx(group).run()
    except Cancelled as cancel:
        if "name" in cancel.failed:
            raise _duplicate() from cancel
        raise
    return group.public()


def update(caller: Caller, group_id: str, changes: dict[str, Any], now: int) -> dict[str, Any]:
    """Rename, describe, recolour."""
    def attempt() -> dict[str, Any]:
        group = or_not_found(repo.get_item(caller.scope, group_id))
        if all(changes[f] == getattr(group, f) for f in changes):
            return group.public()
        try:
            repo.update_tx(group, changes, now).run()
        except Cancelled as cancel:
            if "name" in cancel.failed:
                raise _duplicate() from cancel
            raise Retry() from cancel  # renamed or deleted meanwhile: read again
        return replace(group, **changes, updated_at=now).public()

    return retrying(attempt, attempts=ROUNDS, busy=BUSY)


def _ungroup(code: Code, group_id: str, now: int) -> bool:
    """Take one code out of ``group_id`` (one transaction); False if it is no longer in that group."""
    try:
        repo.ungroup_tx(code, group_id, now).run()
    except Cancelled as cancel:
        if cancel.failed & {"code", "group"}:
            return False
        raise
    return True


def delete(caller: Caller, group_id: str, now: int) -> dict[str, Any]:
    """Delete a group; its codes stay, ungrouped.

    The codes are taken out first (each in its own transaction, grace codes
    included), then the group and its name claim go in one transaction that
    requires ``code_count <= 0``. A code moved in meanwhile makes that fail, and
    the attempt runs again, so no code is ever left pointing at a deleted
    group. An interrupted delete leaves a consistent, smaller group: retry it.
    """
    scope = caller.scope
    ungrouped: list[str] = []

    def attempt() -> dict[str, Any]:
        group = or_not_found(repo.get_item(scope, group_id))
        ungrouped.extend(c.id for c in code_repo.in_group(scope, group_id) if _ungroup(c, group_id, now))
        try:
            repo.delete_tx(group).run()
        except Cancelled as cancel:
            raise Retry() from cancel  # codes moved in, renamed or deleted meanwhile: read again
        return {**replace(group, code_count=0, updated_at=now).public(), "deleted": True,
                "ungrouped_code_ids": list(dict.fromkeys(ungrouped))}

    return retrying(attempt, attempts=ROUNDS, busy=BUSY)


def add_codes(caller: Caller, group_id: str, ids: list[str], now: int) -> dict[str, Any]:
    """Move codes into the group, from whatever group they were in.

    All ids are checked first: one that is not a code of the caller's scope is
    ``404`` (another tenant's id is indistinguishable from a missing one), a
    code in grace or expired is ``409 code_not_editable``; either way nothing
    is moved. Then each code moves in its own transaction (``services.codes.update``:
    the code, -1 on the old group, +1 on this one, a ``code.updated`` event).
    """
    scope = caller.scope
    or_not_found(repo.get_item(scope, group_id))
    wanted = list(dict.fromkeys(ids))
    if not all(is_id(i) for i in wanted):
        raise NotFound()
    members = repo.codes_by_id(scope, wanted)
    if len(members) != len(wanted):
        raise NotFound()
    for code_id in wanted:
        if members[code_id].status not in EDITABLE:
            raise CodeNotEditable(members[code_id].status)
    for code_id in wanted:
        if members[code_id].group_id == group_id:
            continue
        try:
            codes.update(caller, code_id, {"group_id": group_id}, now, with_scans=False)
        except ValidationFailed as err:  # the group was deleted meanwhile
            raise NotFound() from err
    return get(scope, group_id)


def remove_code(caller: Caller, group_id: str, code_id: str, now: int) -> dict[str, Any]:
    """Ungroup one code (any status). ``404`` unless the code is in this group."""
    scope = caller.scope
    or_not_found(repo.get_item(scope, group_id))
    code = code_repo.get_item(scope, code_id)
    if code is None or code.group_id != group_id:
        raise NotFound()
    if not _ungroup(code, group_id, now):
        current = code_repo.get_item(scope, code_id)
        if current is not None and current.group_id == group_id:
            raise ServiceUnavailable("the code kept changing; retry")
    return get(scope, group_id)
