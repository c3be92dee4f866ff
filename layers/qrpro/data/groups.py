"""The groups repository (docs/api.md section 8, docs/data-model.md).

- group ``{scope}`` / ``GROUP#{id}``: name, description, color, code_count,
  created_at, updated_at;
- name claim ``{scope}`` / ``GROUPNAME#{lower(name)}``: group_id. Written with
  ``attribute_not_exists`` in the same transaction as the group, so two groups
  of one scope can never share a name, even when created concurrently.

``code_count`` is only ever changed with ``ADD`` in the same transaction as the
change of a code's ``group_id`` (here, and in ``qrpro.data.codes``), so it
always equals the number of codes whose ``group_id`` names the group. The
rules are ``qrpro.services.groups``'.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from qrpro.data import codes
from qrpro.data import keys as k
from qrpro.data.codes import Code
from qrpro.data.table import Transaction, av, batch_get, get_one, key, query_items, table, to_item
from qrpro.domain.groups import name_key
from qrpro.domain.ids import is_id

PUBLIC_FIELDS = ("id", "name", "description", "color", "code_count", "created_at", "updated_at")


@dataclass(frozen=True)
class Group:
    """A stored group; ``scope`` is its partition."""

    scope: str
    id: str
    name: str
    created_at: int = 0
    updated_at: int = 0
    description: str = ""
    color: str | None = None
    code_count: int = 0
    created_by: str | None = None

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Group:
        names = {f.name for f in fields(cls)} - {"scope"}
        return cls(scope=item["pk"], **{name: item[name] for name in names if name in item})

    def item(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("scope")
        return {"pk": self.scope, "sk": k.sk_group(self.id), "type": "group", **data}

    def public(self) -> dict[str, Any]:
        """The group object of docs/api.md (a count briefly below zero during a race reads 0)."""
        out = {name: getattr(self, name) for name in PUBLIC_FIELDS}
        out["code_count"] = max(0, int(self.code_count))
        return out


# -- reads --------------------------------------------------------------------------

def get_item(scope: str, group_id: str) -> Group | None:
    item = get_one(scope, k.sk_group(group_id)) if is_id(group_id) else None
    return None if item is None else Group.from_item(item)


def list_items(scope: str) -> list[Group]:
    return [Group.from_item(i) for i in query_items({
        "TableName": table(), "ConsistentRead": True, "KeyConditionExpression": "pk = :pk AND begins_with(sk, :p)",
        "ExpressionAttributeValues": {":pk": av(scope), ":p": av("GROUP#")}})]


def code_ids(scope: str, group_id: str) -> list[str]:
    return [c.id for c in codes.in_group(scope, group_id)]


def codes_by_id(scope: str, ids: list[str]) -> dict[str, Code]:
    """The codes of ``scope`` among ``ids``."""
    items = batch_get([key(scope, k.sk_code(i)) for i in ids], consistent=True)
    return {item["id"]: Code.from_item(item) for item in items}


# -- transactions -------------------------------------------------------------------
# Item names a caller may find in ``Cancelled.failed``:
#   "name"    another group of the scope holds the (new) name
#   "group"   the group is gone, renamed meanwhile, or (delete) still counts codes
#   "code"    (ungroup) the code is no longer in the group

def _claim_put(scope: str, name: str, group_id: str) -> dict[str, Any]:
    return {"Put": {"TableName": table(), "ConditionExpression": "attribute_not_exists(pk)", "Item": to_item({
        "pk": scope, "sk": k.sk_group_name(name), "type": "group_name", "group_id": group_id})}}


def _claim_delete(scope: str, name: str, group_id: str) -> dict[str, Any]:
    return {"Delete": {"TableName": table(), "Key": key(scope, k.sk_group_name(name)),
                       "ConditionExpression": "group_id = :g", "ExpressionAttributeValues": {":g": av(group_id)}}}


def create_tx(group: Group) -> Transaction:
    return (Transaction().add("name", _claim_put(group.scope, group.name, group.id))
            .add("group", {"Put": {"TableName": table(), "Item": to_item(group.item()),
                                   "ConditionExpression": "attribute_not_exists(pk)"}}))


def update_tx(group: Group, changes: dict[str, Any], now: int) -> Transaction:
    """Set ``changes`` (None removes) if the group still has its name; a rename moves the name claim.
    ``code_count`` is never written here (only ``ADD``ed)."""
    scope, group_id = group.scope, group.id
    sets, removes = ["updated_at = :now"], []
    values: dict[str, Any] = {":now": av(now), ":old": av(group.name)}
    names = {"#name": "name"}
    for field, value in changes.items():
        if value is None:
            removes.append(f"#{field}")
        else:
            sets.append(f"#{field} = :{field}")
            values[f":{field}"] = av(value)
        names[f"#{field}"] = field
    expr = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
    tx = Transaction().add("group", {"Update": {
        "TableName": table(), "Key": key(scope, k.sk_group(group_id)), "UpdateExpression": expr,
        "ConditionExpression": "attribute_exists(pk) AND #name = :old",
        "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}})
    if "name" in changes and name_key(changes["name"]) != name_key(group.name):
        tx.add("name", _claim_put(scope, changes["name"], group_id))
        tx.add("old_name", _claim_delete(scope, group.name, group_id))
    return tx


def ungroup_tx(code: Code, group_id: str, now: int) -> Transaction:
    """Take one code (any status) out of ``group_id``: the code's ``group_id`` goes, its version moves on
    (so a concurrent PATCH re-reads), ``code_count`` - 1 and a ``code.updated`` event."""
    new = replace(code, group_id=None, updated_at=now, version=code.version + 1)
    return (Transaction()
            .add("code", {"Update": {
                "TableName": table(), "Key": key(code.scope, k.sk_code(code.id)),
                "UpdateExpression": "REMOVE group_id SET updated_at = :now, version = :v",
                "ConditionExpression": "group_id = :g",
                "ExpressionAttributeValues": {":now": av(now), ":v": av(new.version), ":g": av(group_id)}}})
            .add("group", codes.group_add(code.scope, group_id, -1))
            .add("event", codes.code_event("code.updated", new, now)))


def delete_tx(group: Group) -> Transaction:
    """The group and its name claim, if it still has its name and counts no code."""
    scope, group_id = group.scope, group.id
    return (Transaction()
            .add("group", {"Delete": {
                "TableName": table(), "Key": key(scope, k.sk_group(group_id)),
                "ConditionExpression": "attribute_exists(pk) AND #name = :name AND "
                                       "(attribute_not_exists(code_count) OR code_count <= :zero)",
                "ExpressionAttributeNames": {"#name": "name"},
                "ExpressionAttributeValues": {":zero": av(0), ":name": av(group.name)}}})
            .add("old_name", _claim_delete(scope, group.name, group_id)))
