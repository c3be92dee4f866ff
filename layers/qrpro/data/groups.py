"""Groups in the single table (docs/api.md section 8, docs/data-model.md).

- group ``{scope}`` / ``GROUP#{id}``: name, description, color, code_count,
  created_at, updated_at;
- name claim ``{scope}`` / ``GROUPNAME#{lower(name)}``: group_id. Written with
  ``attribute_not_exists`` in the same transaction as the group, so two groups
  of one scope can never share a name, even when created concurrently.

``code_count`` is only ever changed with ``ADD`` in the same transaction as the
change of a code's ``group_id`` (here, and in ``qrpro.data.codes`` for creates,
patches, moves and the expiry job), so it always equals the number of codes
whose ``group_id`` names the group. The role check is the routes'
(``qrpro.api.context.mutator``), as for codes and webhooks.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from qrpro.data import codes
from qrpro.data import keys as k
from qrpro.data.codes import Cancelled, transact
from qrpro.data.table import (
    av,
    batch_get,
    found,
    get_one,
    key,
    query_items,
    table,
    to_item,
)
from qrpro.domain.codes import EDITABLE
from qrpro.domain.errors import CodeNotEditable, NotFound, ServiceUnavailable, ValidationFailed
from qrpro.domain.groups import is_id, name_key
from qrpro.domain.scope import Caller

PUBLIC_FIELDS = ("id", "name", "description", "color", "code_count", "created_at", "updated_at")
ROUNDS = 6  # optimistic retries when another writer changed the group meanwhile


def public(item: dict[str, Any]) -> dict[str, Any]:
    return {"id": item["id"], "name": item["name"], "description": item.get("description", ""),
            "color": item.get("color"), "code_count": max(0, int(item.get("code_count", 0))),
            "created_at": item["created_at"], "updated_at": item["updated_at"]}


def _duplicate() -> ValidationFailed:
    return ValidationFailed("name", "a group with this name exists already in this scope")


# -- reads --------------------------------------------------------------------------

def get_item(scope: str, group_id: str) -> dict[str, Any] | None:
    return get_one(scope, k.sk_group(group_id)) if is_id(group_id) else None


def list_groups(scope: str) -> list[dict[str, Any]]:
    """Every group of the scope, by name (case-insensitive)."""
    items = query_items({"TableName": table(), "ConsistentRead": True,
                    "KeyConditionExpression": "pk = :pk AND begins_with(sk, :p)",
                    "ExpressionAttributeValues": {":pk": av(scope), ":p": av("GROUP#")}})
    groups = [public(i) for i in items]
    return sorted(groups, key=lambda g: (name_key(g["name"]), g["id"]))


def _members(scope: str, group_id: str) -> Iterator[dict[str, Any]]:
    """The code items whose group is ``group_id`` (any status), newest first.
    Access pattern 5 with a ``group_id`` filter: strongly consistent (LSI)."""
    return query_items({"TableName": table(), "IndexName": k.LSI1, "ScanIndexForward": False,
                   "ConsistentRead": True,
                   "KeyConditionExpression": "pk = :pk AND begins_with(lsi1sk, :p)",
                   "FilterExpression": "group_id = :g",
                   "ExpressionAttributeValues": {":pk": av(scope), ":p": av("CODE#"), ":g": av(group_id)}})


def code_ids(scope: str, group_id: str) -> list[str]:
    return [i["id"] for i in _members(scope, group_id)]


def get(scope: str, group_id: str) -> dict[str, Any]:
    """The group object plus ``code_ids`` (every code in it, newest first)."""
    group = public(found(get_item(scope, group_id)))
    return {**group, "code_ids": code_ids(scope, group_id)}


def _codes_by_id(scope: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The code items of ``scope`` among ``ids``."""
    return {item["id"]: item for item in batch_get([key(scope, k.sk_code(i)) for i in ids], consistent=True)}


# -- writes -------------------------------------------------------------------------

def _claim_put(scope: str, name: str, group_id: str) -> dict[str, Any]:
    return {"Put": {"TableName": table(), "ConditionExpression": "attribute_not_exists(pk)", "Item": to_item({
        "pk": scope, "sk": k.sk_group_name(name), "type": "group_name", "group_id": group_id})}}


def _claim_delete(scope: str, name: str, group_id: str) -> dict[str, Any]:
    return {"Delete": {"TableName": table(), "Key": key(scope, k.sk_group_name(name)),
                       "ConditionExpression": "group_id = :g", "ExpressionAttributeValues": {":g": av(group_id)}}}


def create(caller: Caller, fields: dict[str, Any], now: int) -> dict[str, Any]:
    """A new group; a name already used in the scope is ``400`` on ``name``."""
    group_id = str(uuid.uuid4())
    item = {"pk": caller.scope, "sk": k.sk_group(group_id), "type": "group", "id": group_id,
            "name": fields["name"], "description": fields.get("description") or "",
            "color": fields.get("color"), "code_count": 0, "created_at": now, "updated_at": now,
            "created_by": caller.user_id}
    try:
        transact([_claim_put(caller.scope, item["name"], group_id),
                  {"Put": {"TableName": table(), "Item": to_item(item),
                           "ConditionExpression": "attribute_not_exists(pk)"}}])
    except Cancelled as cancel:
        if cancel.failed(0):
            raise _duplicate() from cancel
        raise
    return public(item)


def update(caller: Caller, group_id: str, changes: dict[str, Any], now: int) -> dict[str, Any]:
    """Rename, describe, recolour. A rename moves the name claim in the same
    transaction; ``code_count`` is never written here (only ``ADD``ed)."""
    scope = caller.scope
    for _ in range(ROUNDS):
        group = found(get_item(scope, group_id))
        if all(changes[f] == group.get(f) for f in changes):
            return public(group)
        sets, removes = ["updated_at = :now"], []
        values: dict[str, Any] = {":now": av(now), ":old": av(group["name"])}
        names = {"#name": "name"}
        for field, value in changes.items():
            if value is None:
                removes.append(f"#{field}")
            else:
                sets.append(f"#{field} = :{field}")
                values[f":{field}"] = av(value)
            names[f"#{field}"] = field
        expr = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        tx: list[dict[str, Any]] = [{"Update": {
            "TableName": table(), "Key": key(scope, k.sk_group(group_id)), "UpdateExpression": expr,
            "ConditionExpression": "attribute_exists(pk) AND #name = :old",
            "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}}]
        renamed = "name" in changes and name_key(changes["name"]) != name_key(group["name"])
        if renamed:
            tx += [_claim_put(scope, changes["name"], group_id), _claim_delete(scope, group["name"], group_id)]
        try:
            transact(tx)
        except Cancelled as cancel:
            if renamed and cancel.failed(1):
                raise _duplicate() from cancel
            continue  # renamed or deleted meanwhile: read again
        return public({**group, **changes, "updated_at": now})
    raise ServiceUnavailable("the group kept changing; retry")


def _ungroup(item: dict[str, Any], group_id: str, now: int) -> bool:
    """Take one code (any status, grace included) out of ``group_id``: the
    code's ``group_id`` goes, its version moves on (so a concurrent PATCH
    re-reads), ``code_count`` - 1 and a ``code.updated`` event, in one
    transaction. False if the code is no longer in that group."""
    scope = item["pk"]
    version = int(item.get("version", 1))
    new = {**item, "group_id": None, "updated_at": now, "version": version + 1}
    try:
        transact([
            {"Update": {"TableName": table(), "Key": key(scope, k.sk_code(item["id"])),
                        "UpdateExpression": "REMOVE group_id SET updated_at = :now, version = :v",
                        "ConditionExpression": "group_id = :g",
                        "ExpressionAttributeValues": {":now": av(now), ":v": av(version + 1), ":g": av(group_id)}}},
            {"Update": {"TableName": table(), "Key": key(scope, k.sk_group(group_id)),
                        "UpdateExpression": "ADD code_count :n", "ConditionExpression": "attribute_exists(pk)",
                        "ExpressionAttributeValues": {":n": av(-1)}}},
            codes.event_item("code.updated", scope, {"code": codes.public(new, scans=None)}, now),
        ])
    except Cancelled as cancel:
        if cancel.failed(0) or cancel.failed(1):
            return False
        raise
    return True


def delete(caller: Caller, group_id: str, now: int) -> dict[str, Any]:
    """Delete a group; its codes stay, ungrouped.

    The codes are taken out first (each in its own transaction, grace codes
    included), then the group and its name claim go in one transaction that
    requires ``code_count <= 0``. A code moved in meanwhile makes that fail, and
    the loop goes round again, so no code is ever left pointing at a deleted
    group. An interrupted delete leaves a consistent, smaller group: retry it.
    """
    scope = caller.scope
    ungrouped: list[str] = []
    for _ in range(ROUNDS):
        group = found(get_item(scope, group_id))
        for item in _members(scope, group_id):
            if _ungroup(item, group_id, now):
                ungrouped.append(item["id"])
        try:
            transact([
                {"Delete": {"TableName": table(), "Key": key(scope, k.sk_group(group_id)),
                            "ConditionExpression": "attribute_exists(pk) AND #name = :name AND "
                                                   "(attribute_not_exists(code_count) OR code_count <= :zero)",
                            "ExpressionAttributeNames": {"#name": "name"},
                            "ExpressionAttributeValues": {":zero": av(0), ":name": av(group["name"])}}},
                _claim_delete(scope, group["name"], group_id),
            ])
        except Cancelled:
            continue  # codes moved in, renamed or deleted meanwhile: read again
        return {**public({**group, "code_count": 0, "updated_at": now}), "deleted": True,
                "ungrouped_code_ids": list(dict.fromkeys(ungrouped))}
    raise ServiceUnavailable("the group kept changing; retry")


def add_codes(caller: Caller, group_id: str, ids: list[str], now: int) -> dict[str, Any]:
    """Move codes into the group, from whatever group they were in.

    All ids are checked first: one that is not a code of the caller's scope is
    ``404`` (another tenant's id is indistinguishable from a missing one), a
    code in grace or expired is ``409 code_not_editable``; either way nothing
    is moved. Then each code moves in its own transaction (``qrpro.data.codes.update``:
    the code, -1 on the old group, +1 on this one, a ``code.updated`` event).
    """
    scope = caller.scope
    found(get_item(scope, group_id))
    wanted = list(dict.fromkeys(ids))
    if not all(is_id(i) for i in wanted):
        raise NotFound()
    items = _codes_by_id(scope, wanted)
    if len(items) != len(wanted):
        raise NotFound()
    for code_id in wanted:
        if items[code_id]["status"] not in EDITABLE:
            raise CodeNotEditable(items[code_id]["status"])
    for code_id in wanted:
        if items[code_id].get("group_id") == group_id:
            continue
        try:
            codes.update(caller, code_id, {"group_id": group_id}, now, with_scans=False)
        except ValidationFailed as err:  # the group was deleted meanwhile
            raise NotFound() from err
    return get(scope, group_id)


def remove_code(caller: Caller, group_id: str, code_id: str, now: int) -> dict[str, Any]:
    """Ungroup one code (any status). ``404`` unless the code is in this group."""
    scope = caller.scope
    found(get_item(scope, group_id))
    item = codes.get_item(scope, code_id) if is_id(code_id) else None
    if item is None or item.get("group_id") != group_id:
        raise NotFound()
    if not _ungroup(item, group_id, now):
        current = codes.get_item(scope, code_id)
        if current is not None and current.get("group_id") == group_id:
            raise ServiceUnavailable("the code kept changing; retry")
    return get(scope, group_id)
