"""The codes repository: the code item under its scope, the shortcode
projection the redirect reads, history entries and outbox events, always
written together in one named transaction (see docs/data-model.md).

What a change means (grace, reactivation, expiry, the plan cap) is decided in
``qrpro.services.codes``; this module reads, builds transactions and writes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from qrpro.config import settings
from qrpro.data import edge, panes, secrets
from qrpro.data import keys as k
from qrpro.data.aws import ddb
from qrpro.data.outbox import Event
from qrpro.data.panes import Live
from qrpro.data.table import (
    Transaction,
    av,
    from_item,
    get_one,
    key,
    query_items,
    table,
    to_item,
    unavailable_on_throttle,
)
from qrpro.domain import cursor as cursors
from qrpro.domain.analytics import sum_codes
from qrpro.domain.clock import days_back
from qrpro.domain.codes import DEFAULTS, Status, matches, routing_object
from qrpro.domain.ids import is_id

PUBLIC_FIELDS = ("id", "shortcode", "short_url", "url", "label", "tag", "qr_type", "style_json", "logo_key",
                 "frame_style", "frame_text", "group_id", "status", "grace_until", "scans_30d", "created_at",
                 "updated_at", "routing")


def short_url(shortcode: str) -> str:
    return f"{settings().short_base_url}/{shortcode}"


def scope_json(scope: str) -> dict[str, Any]:
    kind, _, ident = scope.partition("#")
    return {"type": "team", "team_id": ident} if kind == "TEAM" else {"type": "user"}


@dataclass(frozen=True)
class Code:
    """A stored code. ``scope`` is its partition (``USER#…`` or ``TEAM#…``);
    ``lsi1sk`` (newest-first order) is drawn when the code is first written."""

    scope: str
    id: str
    shortcode: str
    url: str
    status: str
    created_at: int
    updated_at: int
    created_by: str
    version: int = 1
    label: str = DEFAULTS["label"]
    tag: str = DEFAULTS["tag"]
    qr_type: str = DEFAULTS["qr_type"]
    style_json: str | None = DEFAULTS["style_json"]
    logo_key: str | None = DEFAULTS["logo_key"]
    frame_style: str = DEFAULTS["frame_style"]
    frame_text: str = DEFAULTS["frame_text"]
    group_id: str | None = DEFAULTS["group_id"]
    grace_until: int | None = None
    routing: str | None = DEFAULTS["routing"]  # compact JSON of routing_model's stored form; None: no routing
    lsi1sk: str | None = None

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Code:
        names = {f.name for f in fields(cls)} - {"scope"}
        return cls(scope=item["pk"], **{name: item[name] for name in names if name in item})

    def item(self) -> dict[str, Any]:
        """The table item: keys, and the due-date index entry while in grace."""
        data = asdict(self)
        data.pop("scope")
        out = {"pk": self.scope, "sk": k.sk_code(self.id), "type": "code", **data,
               "lsi1sk": self.lsi1sk or k.lsi_code(max(time.time_ns(), self.created_at * 10**9), self.id)}
        if self.status == Status.GRACE and self.grace_until is not None:
            out.update({k.GSI1PK: k.GRACE_CODES, k.GSI1SK: k.due_sk(self.grace_until, self.id)})
        return out

    def public(self, scans_30d: int | None) -> dict[str, Any]:
        """The code object of docs/api.md; without ``scans_30d`` when it is None (events, bulk work)."""
        out = {name: getattr(self, name) for name in PUBLIC_FIELDS if name not in ("short_url", "scans_30d")}
        out["short_url"] = short_url(self.shortcode)
        out["routing"] = routing_object(self.routing)
        if scans_30d is not None:
            out["scans_30d"] = scans_30d
        return {name: out[name] for name in PUBLIC_FIELDS if name in out}


# -- reads --------------------------------------------------------------------

def get_item(scope: str, code_id: str) -> Code | None:
    """The code, or None (also for anything that is not a code id)."""
    item = get_one(scope, k.sk_code(code_id)) if is_id(code_id) else None
    return None if item is None else Code.from_item(item)


def scans_30d(scope: str, now: int, live: Live | None = None) -> dict[str, int]:
    """Scans per code over the last 30 UTC days: one Query of the per-code day items, whatever
    the number of codes (open days from their panes: ``live``, read here when not given)."""
    days = days_back(now, 30)
    first, last = k.codes_day_range(days[0], days[-1])
    stored = query_items({
        "TableName": table(), "KeyConditionExpression": "pk = :pk AND sk BETWEEN :a AND :b",
        "ExpressionAttributeValues": {":pk": av(k.pk_scope_agg(scope)), ":a": av(first), ":b": av(last)}})
    live = panes.live(scope) if live is None else live
    return sum_codes(live.merge(k.pk_scope_agg(scope), stored, first, last))


def lifetime(scope: str, code_id: str) -> int:
    """The code's counted scans, every day its analytics keep (what a scan limit set now starts
    from): one Query of its day items, with what the compaction has not folded yet."""
    pk, low, high = k.pk_code_agg(code_id), k.sk_day("0000-00-00"), k.sk_day("9999-99-99")
    stored = query_items({"TableName": table(), "KeyConditionExpression": "pk = :pk AND sk BETWEEN :a AND :b",
                          "ExpressionAttributeValues": {":pk": av(pk), ":a": av(low), ":b": av(high)},
                          "ProjectionExpression": "pk, sk, #t, st", "ExpressionAttributeNames": {"#t": "total"}})
    return sum(int(i.get("total", 0)) for i in panes.live(scope).merge(pk, stored, low, high))


def _newest_first(scope: str, **extra: Any) -> dict[str, Any]:
    """Access pattern 5: the codes of a scope on the LSI, newest first."""
    return {"TableName": table(), "IndexName": k.LSI1, "ScanIndexForward": False,
            "KeyConditionExpression": "pk = :pk AND begins_with(lsi1sk, :p)",
            "ExpressionAttributeValues": {":pk": av(scope), ":p": av("CODE#")}, **extra}


def page(scope: str, *, status: str | None = None, tag: str | None = None, group_id: str | None = None,
         q: str | None = None, limit: int = 1000, cursor: str | None = None) -> tuple[list[Code], str | None]:
    """Codes of a scope, newest first, filtered, one page of ``limit`` and the next page's cursor."""
    secret = secrets.cursor_secret()
    params = _newest_first(scope, ConsistentRead=True)
    filters, names = [], {}
    if status:
        filters.append("#st = :st")
        names["#st"] = "status"
        params["ExpressionAttributeValues"][":st"] = av(status)
    if group_id:
        filters.append("group_id = :g")
        params["ExpressionAttributeValues"][":g"] = av(group_id)
    if filters:
        params["FilterExpression"] = " AND ".join(filters)
    if names:
        params["ExpressionAttributeNames"] = names
    if cursor:
        pos = cursors.decode(cursor, scope, secret)
        params["ExclusiveStartKey"] = {name: av(str(pos[name])) for name in ("pk", "sk", "lsi1sk")}
    hits: list[dict[str, Any]] = []
    for item in query_items(params):
        if matches(item, status=status, tag=tag, group_id=group_id, q=q):
            hits.append(item)
            if len(hits) > limit:
                break
    next_cursor = None
    if len(hits) > limit:
        hits = hits[:limit]
        last = hits[-1]
        next_cursor = cursors.encode({"pk": last["pk"], "sk": last["sk"], "lsi1sk": last["lsi1sk"]}, scope, secret)
    return [Code.from_item(i) for i in hits], next_cursor


def all_items(scope: str) -> Iterator[Code]:
    """Every code of a scope (all statuses), newest first."""
    return (Code.from_item(i) for i in query_items(_newest_first(scope)))


def in_group(scope: str, group_id: str) -> Iterator[Code]:
    """The codes whose group is ``group_id`` (any status), newest first (strongly consistent: LSI)."""
    params = _newest_first(scope, ConsistentRead=True, FilterExpression="group_id = :g")
    params["ExpressionAttributeValues"][":g"] = av(group_id)
    return (Code.from_item(i) for i in query_items(params))


def history(code_id: str) -> list[dict[str, Any]]:
    """The history entries of a code, newest first."""
    items = query_items({
        "TableName": table(), "KeyConditionExpression": "pk = :pk", "ScanIndexForward": False,
        "ExpressionAttributeValues": {":pk": av(k.pk_history(code_id))}})

    def value(entry: dict[str, Any], side: str) -> Any:
        found = entry.get(side)
        return routing_object(found) if entry["field"] == "routing" else found  # stored as its text

    return [{"at": i["at"], "field": i["field"], "from": value(i, "from"), "to": value(i, "to"), "by": i["by"]}
            for i in items]


def group_exists(scope: str, group_id: str) -> bool:
    if not is_id(group_id):
        return False
    with unavailable_on_throttle():
        out = ddb().get_item(TableName=table(), Key=key(scope, k.sk_group(group_id)), ProjectionExpression="pk")
    return "Item" in out


def codes_used(scope: str) -> int:
    with unavailable_on_throttle():
        out = ddb().get_item(TableName=table(), Key=key(scope, k.PROFILE), ConsistentRead=True,
                             ProjectionExpression="codes_used")
    return int((from_item(out.get("Item")) or {}).get("codes_used", 0))


# -- transaction items ------------------------------------------------------------

def _put_code(code: Code, expected_version: int | None) -> dict[str, Any]:
    if expected_version is None:
        return {"Put": {"TableName": table(), "Item": to_item(code.item()),
                        "ConditionExpression": "attribute_not_exists(pk)"}}
    return {"Put": {"TableName": table(), "Item": to_item(code.item()), "ConditionExpression": "version = :v",
                    "ExpressionAttributeValues": {":v": av(expected_version)}}}


def _projection(code: Code) -> dict[str, Any]:
    return {"code_id": code.id, "scope": code.scope, "url": code.url, "status": code.status,
            "grace_until": code.grace_until, "routing": code.routing}


def _put_short(code: Code) -> dict[str, Any]:
    """A new shortcode's item (absent attributes: no grace, no routing)."""
    item = {"pk": k.pk_short(code.shortcode), "sk": "SHORT", "type": "shortcode", **_projection(code)}
    return {"Put": {"TableName": table(), "Item": to_item(item), "ConditionExpression": "attribute_not_exists(pk)"}}


def _update_short(code: Code) -> dict[str, Any]:
    """The projected fields SET (or REMOVEd when None) on the code's shortcode item, so what others
    keep there (the aggregator's ``scans_total``) stays."""
    sets, removes, names, values = [], [], {}, {":id": av(code.id)}
    for i, (name, value) in enumerate(_projection(code).items()):
        names[f"#f{i}"] = name
        if value is None:
            removes.append(f"#f{i}")
        else:
            sets.append(f"#f{i} = :f{i}")
            values[f":f{i}"] = av(value)
    expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
    return {"Update": {"TableName": table(), "Key": key(k.pk_short(code.shortcode), "SHORT"),
                       "UpdateExpression": expression, "ConditionExpression": "code_id = :id",
                       "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}}


def max_scans(code: Code) -> int | None:
    """The code's scan limit (routing ``max_scans``), or None."""
    limit = json.loads(code.routing).get("max_scans") if code.routing else None
    return None if limit is None else int(limit)


def _limit(code_id: str, start: int | None) -> dict[str, Any]:
    """The redirect's scan-limit counter of a code (``edge.claim_place``): set to ``start`` (a limit
    set on a code that was scanned before counts those scans), or removed with the limit."""
    pk = k.pk_limit(code_id)
    if start is None:
        return {"Delete": {"TableName": table(), "Key": key(pk, edge.LIMIT_SK)}}
    return {"Put": {"TableName": table(), "Item": to_item({"pk": pk, "sk": edge.LIMIT_SK, "n": start})}}


def cap_add(scope: str, n: int, limit: int | None) -> dict[str, Any]:
    """``codes_used`` + n; with a ``limit``, only if the result stays within it."""
    update: dict[str, Any] = {
        "TableName": table(), "Key": key(scope, k.PROFILE),
        "UpdateExpression": "SET codes_used = if_not_exists(codes_used, :zero) + :n",
        "ExpressionAttributeValues": {":n": av(n), ":zero": av(0)}}
    if limit is not None:
        update["ConditionExpression"] = "attribute_not_exists(codes_used) OR codes_used <= :max"
        update["ExpressionAttributeValues"][":max"] = av(limit - n)
    return {"Update": update}


def group_add(scope: str, group_id: str, n: int) -> dict[str, Any]:
    """``code_count`` + n on a group that must exist."""
    return {"Update": {"TableName": table(), "Key": key(scope, k.sk_group(group_id)),
                       "UpdateExpression": "ADD code_count :n", "ConditionExpression": "attribute_exists(pk)",
                       "ExpressionAttributeValues": {":n": av(n)}}}


def _put_history(code_id: str, version: int, field: str, old: Any, new: Any, by: str, now: int) -> dict[str, Any]:
    # The version orders changes made within the same second.
    return {"Put": {"TableName": table(), "Item": to_item({
        "pk": k.pk_history(code_id), "sk": k.sk_history(now, f"{version:09d}#{field}"), "type": "history",
        "at": now, "field": field, "from": old, "to": new, "by": by})}}


def code_event(event_type: str, code: Code, now: int) -> dict[str, Any]:
    """The outbox event (``data/outbox.py``) reporting a change of ``code``, as a transaction item."""
    return Event(event_type, code.scope, now, {"code": code.public(None)}).put()


# -- transactions ---------------------------------------------------------------------
# Item names a caller may find in ``Cancelled.failed``:
#   "code"      the code exists already (create) or its version moved on (change)
#   "short"     the shortcode is taken (create)
#   "group"     the code's new group does not exist
#   "old_group" the group the code leaves does not exist

def create_tx(code: Code, now: int) -> Transaction:
    """A new code: the code, its shortcode, +1 on its group, history and a ``code.created`` event."""
    tx = Transaction().add("code", _put_code(code, None)).add("short", _put_short(code))
    tx.add("event", code_event("code.created", code, now))
    if code.group_id:
        tx.add("group", group_add(code.scope, code.group_id, 1))
    # History ends with the creation (docs/api.md 6.8): from null to the first url.
    return tx.add("history:created", _put_history(code.id, 0, "created", None, code.url, code.created_by, now))


def change_tx(old: Code, new: Code, by: str, now: int, event: str,
              limit_start: int = 0) -> tuple[Code, Transaction]:
    """``new`` written over ``old`` (optimistic version), with its shortcode projection,
    history of url/status/routing, group counts and the outbox event; a scan limit set (its
    counter from ``limit_start``) or removed. Returns the code as stored."""
    new = replace(new, version=old.version + 1, updated_at=now)
    tx = Transaction().add("code", _put_code(new, old.version))
    if (max_scans(old) is None) != (max_scans(new) is None):
        tx.add("limit", _limit(old.id, None if max_scans(new) is None else limit_start))
    if _projection(new) != _projection(old):
        tx.add("projection", _update_short(new))
    for field in ("url", "status", "routing"):
        if getattr(new, field) != getattr(old, field):
            tx.add(f"history:{field}", _put_history(old.id, new.version, field, getattr(old, field),
                                                    getattr(new, field), by, now))
    if new.group_id != old.group_id:
        if old.group_id:
            tx.add("old_group", group_add(old.scope, old.group_id, -1))
        if new.group_id:
            tx.add("group", group_add(old.scope, new.group_id, 1))
    return new, tx.add("event", code_event(event, new, now))


def cap_tx(scope: str, n: int, limit: int | None) -> Transaction:
    return Transaction().add("cap", cap_add(scope, n, limit))
