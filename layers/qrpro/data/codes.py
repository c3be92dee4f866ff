"""Codes in the single table: the code item under its scope, the shortcode
projection the redirect reads, history entries and outbox events, always
written together in one transaction (see docs/data-model.md)."""

from __future__ import annotations

import random
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from qrpro.config import settings
from qrpro.data import keys as k
from qrpro.data import secrets
from qrpro.data.aws import ddb
from qrpro.data.table import (
    av,
    cancel_reasons,
    error_code,
    found,
    from_item,
    get_one,
    key,
    query_items,
    table,
    to_item,
    unavailable_on_throttle,
)
from qrpro.domain import cursor as cursors
from qrpro.domain.clock import days_back
from qrpro.domain.codes import DEFAULTS, EDITABLE, GRACE_SECONDS, Status, matches, new_shortcode, normalise
from qrpro.domain.errors import CodeNotEditable, PlanLimitReached, ValidationFailed
from qrpro.domain.scope import Caller

EVENT_TTL = 7 * 86_400
PUBLIC_FIELDS = ("id", "shortcode", "short_url", "url", "label", "tag", "qr_type", "style_json", "logo_key",
                 "frame_style", "frame_text", "group_id", "status", "grace_until", "scans_30d", "created_at",
                 "updated_at")
SYSTEM = "system"
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class Cancelled(Exception):
    def __init__(self, reasons: list[str]) -> None:
        super().__init__(",".join(reasons))
        self.reasons = reasons

    def failed(self, index: int) -> bool:
        return index < len(self.reasons) and self.reasons[index] == "ConditionalCheckFailed"


def transact(items: list[dict[str, Any]], attempts: int = 12) -> None:
    """TransactWriteItems, retrying transaction conflicts with jittered backoff.
    A failed condition raises ``Cancelled`` with the per-item reasons."""
    for attempt in range(attempts):
        try:
            with unavailable_on_throttle():
                ddb().transact_write_items(TransactItems=items)
            return
        except ClientError as err:
            if error_code(err) != "TransactionCanceledException":
                raise
            reasons = cancel_reasons(err)
            if "ConditionalCheckFailed" in reasons or attempt == attempts - 1:
                raise Cancelled(reasons) from err
            time.sleep(random.uniform(0, 0.01 * 2**min(attempt, 5)))


def short_url(shortcode: str) -> str:
    return f"{settings().short_base_url}/{shortcode}"


def public(item: dict[str, Any], scans: int | None = 0) -> dict[str, Any]:
    out = {name: item.get(name, DEFAULTS.get(name)) for name in PUBLIC_FIELDS}
    out["short_url"] = short_url(item["shortcode"])
    out["grace_until"] = item.get("grace_until")
    if scans is None:
        out.pop("scans_30d")
    else:
        out["scans_30d"] = scans
    return out


def scope_json(scope: str) -> dict[str, Any]:
    kind, _, ident = scope.partition("#")
    return {"type": "team", "team_id": ident} if kind == "TEAM" else {"type": "user"}


# -- reads --------------------------------------------------------------------

def get_item(scope: str, code_id: str) -> dict[str, Any] | None:
    """The raw code item, or None (also for anything that is not a code id)."""
    return get_one(scope, k.sk_code(code_id)) if UUID_RE.match(code_id or "") else None


def scans_30d(scope: str, now: int) -> dict[str, int]:
    """Scans per code over the last 30 UTC days: one Query of ≤ 30 items, whatever the number of codes."""
    days = days_back(now, 30)
    first, last = k.codes_day_range(days[0], days[-1])
    totals: dict[str, int] = {}
    for item in query_items({
            "TableName": table(), "KeyConditionExpression": "pk = :pk AND sk BETWEEN :a AND :b",
            "ExpressionAttributeValues": {":pk": av(k.pk_scope_agg(scope)), ":a": av(first), ":b": av(last)}}):
        for name, value in item.items():
            if name.startswith("k_"):
                totals[name[2:]] = totals.get(name[2:], 0) + int(value)
    return totals


def present(item: dict[str, Any], now: int) -> dict[str, Any]:
    """The code object with its current ``scans_30d``."""
    return public(item, scans_30d(item["pk"], now).get(item["id"], 0))


def load(scope: str, code_id: str) -> dict[str, Any]:
    """The code object without ``scans_30d`` (one GetItem), or NotFound."""
    return public(found(get_item(scope, code_id)), None)


def get(scope: str, code_id: str, now: int | None = None) -> dict[str, Any]:
    return present(found(get_item(scope, code_id)), now or int(time.time()))


def list_codes(scope: str, *, now: int, status: str | None = None, tag: str | None = None,
               group_id: str | None = None, q: str | None = None, limit: int = 1000,
               cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """Codes of a scope, newest first, filtered, one page of ``limit``."""
    secret = secrets.cursor_secret()
    params: dict[str, Any] = {
        "TableName": table(), "IndexName": k.LSI1, "ScanIndexForward": False, "ConsistentRead": True,
        "KeyConditionExpression": "pk = :pk AND begins_with(lsi1sk, :p)",
        "ExpressionAttributeValues": {":pk": av(scope), ":p": av("CODE#")},
    }
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
    found: list[dict[str, Any]] = []
    for item in query_items(params):
        if matches(item, status=status, tag=tag, group_id=group_id, q=q):
            found.append(item)
            if len(found) > limit:
                break
    next_cursor = None
    if len(found) > limit:
        found = found[:limit]
        last = found[-1]
        next_cursor = cursors.encode({"pk": last["pk"], "sk": last["sk"], "lsi1sk": last["lsi1sk"]}, scope, secret)
    scans = scans_30d(scope, now) if found else {}
    return [public(i, scans.get(i["id"], 0)) for i in found], next_cursor


def all_items(scope: str) -> Iterator[dict[str, Any]]:
    """Every code item of a scope (all statuses), newest first."""
    return query_items({
        "TableName": table(), "IndexName": k.LSI1, "ScanIndexForward": False,
        "KeyConditionExpression": "pk = :pk AND begins_with(lsi1sk, :p)",
        "ExpressionAttributeValues": {":pk": av(scope), ":p": av("CODE#")}})


def history(scope: str, code_id: str) -> list[dict[str, Any]]:
    found(get_item(scope, code_id))
    items = query_items({
        "TableName": table(), "KeyConditionExpression": "pk = :pk", "ScanIndexForward": False,
        "ExpressionAttributeValues": {":pk": av(k.pk_history(code_id))}})
    return [{"at": i["at"], "field": i["field"], "from": i.get("from"), "to": i.get("to"), "by": i["by"]}
            for i in items]


def require_group(scope: str, group_id: str) -> None:
    """A group id given in a body must name a group of the caller's scope."""
    found = UUID_RE.match(group_id) and ddb().get_item(
        TableName=table(), Key=key(scope, k.sk_group(group_id)), ProjectionExpression="pk").get("Item")
    if not found:
        raise ValidationFailed("group_id", "no such group in this scope")


def codes_used(scope: str) -> int:
    with unavailable_on_throttle():
        out = ddb().get_item(TableName=table(), Key=key(scope, k.PROFILE), ConsistentRead=True,
                             ProjectionExpression="codes_used")
    return int((from_item(out.get("Item")) or {}).get("codes_used", 0))


# -- transaction items ------------------------------------------------------------

def _put_code(item: dict[str, Any], expected_version: int | None) -> dict[str, Any]:
    if expected_version is None:
        return {"Put": {"TableName": table(), "Item": to_item(item), "ConditionExpression": "attribute_not_exists(pk)"}}
    return {"Put": {"TableName": table(), "Item": to_item(item), "ConditionExpression": "version = :v",
                    "ExpressionAttributeValues": {":v": av(expected_version)}}}


def _put_short(item: dict[str, Any], new: bool) -> dict[str, Any]:
    projection = {"pk": k.pk_short(item["shortcode"]), "sk": "SHORT", "type": "shortcode", "code_id": item["id"],
                  "scope": item["pk"], "url": item["url"], "status": item["status"],
                  "grace_until": item.get("grace_until")}
    if new:
        return {"Put": {"TableName": table(), "Item": to_item(projection),
                        "ConditionExpression": "attribute_not_exists(pk)"}}
    return {"Put": {"TableName": table(), "Item": to_item(projection), "ConditionExpression": "code_id = :id",
                    "ExpressionAttributeValues": {":id": av(item["id"])}}}


def _cap_add(scope: str, n: int, limit: int | None) -> dict[str, Any]:
    update: dict[str, Any] = {
        "TableName": table(), "Key": key(scope, k.PROFILE),
        "UpdateExpression": "SET codes_used = if_not_exists(codes_used, :zero) + :n",
        "ExpressionAttributeValues": {":n": av(n), ":zero": av(0)}}
    if limit is not None:
        update["ConditionExpression"] = "attribute_not_exists(codes_used) OR codes_used <= :max"
        update["ExpressionAttributeValues"][":max"] = av(limit - n)
    return {"Update": update}


def _group_add(scope: str, group_id: str, n: int) -> dict[str, Any]:
    return {"Update": {"TableName": table(), "Key": key(scope, k.sk_group(group_id)),
                       "UpdateExpression": "ADD code_count :n", "ConditionExpression": "attribute_exists(pk)",
                       "ExpressionAttributeValues": {":n": av(n)}}}


def _put_history(code_id: str, version: int, field: str, old: Any, new: Any, by: str, now: int) -> dict[str, Any]:
    # The version orders changes made within the same second.
    return {"Put": {"TableName": table(), "Item": to_item({
        "pk": k.pk_history(code_id), "sk": k.sk_history(now, f"{version:09d}#{field}"), "type": "history",
        "at": now, "field": field, "from": old, "to": new, "by": by})}}


def event_item(event_type: str, scope: str, data: dict[str, Any], now: int) -> dict[str, Any]:
    """An outbox event: written in the transaction of the change it reports;
    the table's stream hands it to the webhook fan-out."""
    event_id = str(uuid.uuid4())
    return {"Put": {"TableName": table(), "Item": to_item({
        "pk": k.pk_event(event_id), "sk": "EVENT", "type": "event", "id": event_id, "event_type": event_type,
        "scope": scope, "created_at": now, "data": data, k.TTL: now + EVENT_TTL})}}


def _code_event(event_type: str, item: dict[str, Any], now: int) -> dict[str, Any]:
    return event_item(event_type, item["pk"], {"code": public(item, scans=None)}, now)


def _group_error(cancel: Cancelled, indexes: list[int]) -> None:
    if any(cancel.failed(i) for i in indexes):
        raise ValidationFailed("group_id", "no such group in this scope") from cancel


# -- writes -----------------------------------------------------------------------------

def new_item(caller: Caller, fields: dict[str, Any], now: int) -> dict[str, Any]:
    code_id = str(uuid.uuid4())
    item = {**DEFAULTS, **normalise(fields)}
    item.update({"pk": caller.scope, "sk": k.sk_code(code_id), "type": "code", "id": code_id,
                 "shortcode": new_shortcode(), "status": Status.ACTIVE.value, "grace_until": None,
                 "created_at": now, "updated_at": now, "created_by": caller.user_id, "version": 1,
                 "lsi1sk": k.lsi_code(max(time.time_ns(), now * 10**9), code_id)})
    return item


def _create_items(item: dict[str, Any], now: int) -> list[dict[str, Any]]:
    tx = [_put_code(item, None), _put_short(item, new=True), _code_event("code.created", item, now)]
    if item.get("group_id"):
        tx.append(_group_add(item["pk"], item["group_id"], 1))
    # History ends with the creation (docs/api.md 6.8): from null to the first url.
    tx.append(_put_history(item["id"], 0, "created", None, item["url"], item["created_by"], now))
    return tx


def create(caller: Caller, fields: dict[str, Any], now: int) -> dict[str, Any]:
    """One code, within the plan cap. Retries with a fresh shortcode on a collision."""
    limit = caller.plan.codes
    for _ in range(8):
        item = new_item(caller, fields, now)
        tx = [*_create_items(item, now), _cap_add(caller.scope, 1, limit)]
        try:
            transact(tx)
        except Cancelled as cancel:
            if cancel.failed(1):
                continue  # shortcode taken: draw another
            if cancel.failed(len(tx) - 1):
                raise PlanLimitReached(caller.plan_name, limit, codes_used(caller.scope)) from cancel
            _group_error(cancel, [3])
            raise
        return public(item)
    raise RuntimeError("could not draw a free shortcode in 8 attempts")


def create_many(caller: Caller, batch: list[dict[str, Any]], now: int) -> list[dict[str, Any]]:
    """An import: the cap is reserved once for the whole batch (all or nothing),
    then the codes are written; whatever could not be written is given back."""
    n, limit = len(batch), caller.plan.codes
    if n == 0:
        return []
    try:
        transact([_cap_add(caller.scope, n, limit)])
    except Cancelled as cancel:
        raise PlanLimitReached(caller.plan_name, limit, codes_used(caller.scope)) from cancel
    created: list[dict[str, Any]] = []
    try:
        for fields in batch:
            for _ in range(8):
                item = new_item(caller, fields, now)
                try:
                    transact(_create_items(item, now))
                except Cancelled as cancel:
                    if cancel.failed(1):
                        continue
                    _group_error(cancel, [3])
                    raise
                created.append(public(item))
                break
            else:
                raise RuntimeError("could not draw a free shortcode in 8 attempts")
    finally:
        if len(created) < n:
            transact([_cap_add(caller.scope, -(n - len(created)), None)])
    return created


def _change(caller_id: str, item: dict[str, Any], new: dict[str, Any], now: int, event: str,
            extra: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Write ``new`` over ``item`` (optimistic version), with its shortcode projection,
    history of url/status, group counts and the outbox event, in one transaction."""
    new = {**new, "version": int(item.get("version", 1)) + 1, "updated_at": now}
    tx = [_put_code(new, int(item.get("version", 1)))]
    if any(new.get(f) != item.get(f) for f in ("url", "status", "grace_until")):
        tx.append(_put_short(new, new=False))
    for field in ("url", "status"):
        if new.get(field) != item.get(field):
            tx.append(_put_history(item["id"], new["version"], field, item.get(field), new.get(field), caller_id, now))
    group_indexes = []
    if new.get("group_id") != item.get("group_id"):
        if item.get("group_id"):
            tx.append(_group_add(item["pk"], item["group_id"], -1))
        if new.get("group_id"):
            group_indexes.append(len(tx))
            tx.append(_group_add(item["pk"], new["group_id"], 1))
    tx += extra or []
    tx.append(_code_event(event, new, now))
    try:
        transact(tx)
    except Cancelled as cancel:
        _group_error(cancel, group_indexes)
        raise
    return new


def _with_retry(scope: str, code_id: str, apply: Any) -> dict[str, Any]:
    """Re-read and re-apply when another writer changed the code meanwhile."""
    for _ in range(6):
        item = found(get_item(scope, code_id))
        try:
            result: dict[str, Any] = apply(item)
            return result
        except Cancelled as cancel:
            if cancel.failed(0):
                continue  # version moved on: read again
            raise
    raise Cancelled(["ConditionalCheckFailed"])


def _result(item: dict[str, Any], now: int, with_scans: bool) -> dict[str, Any]:
    return present(item, now) if with_scans else public(item, None)


def update(caller: Caller, code_id: str, changes: dict[str, Any], now: int, *,
           with_scans: bool = True) -> dict[str, Any]:
    """PATCH semantics; ``with_scans=False`` skips the scans_30d read (bulk work)."""
    changes = normalise(changes)

    def apply(item: dict[str, Any]) -> dict[str, Any]:
        if item["status"] not in EDITABLE:
            raise CodeNotEditable(item["status"])
        new = {**item, **changes}
        if all(new.get(f) == item.get(f) for f in changes):
            return item
        return _change(caller.user_id, item, new, now, "code.updated")

    return _result(_with_retry(caller.scope, code_id, apply), now, with_scans)


def soft_delete(caller: Caller, code_id: str, now: int, *, with_scans: bool = True) -> dict[str, Any]:
    def apply(item: dict[str, Any]) -> dict[str, Any]:
        if item["status"] not in EDITABLE:
            raise CodeNotEditable(item["status"])
        grace_until = now + GRACE_SECONDS
        new = {**item, "status": Status.GRACE.value, "grace_until": grace_until,
               k.GSI1PK: k.GRACE_CODES, k.GSI1SK: k.due_sk(grace_until, item["id"])}
        return _change(caller.user_id, item, new, now, "code.deleted", [_cap_add(item["pk"], -1, None)])

    return _result(_with_retry(caller.scope, code_id, apply), now, with_scans)


def reactivate(caller: Caller, code_id: str, now: int, *, with_scans: bool = True) -> dict[str, Any]:
    limit = caller.plan.codes

    def apply(item: dict[str, Any]) -> dict[str, Any]:
        if item["status"] in EDITABLE:
            return item  # already live: a no-op
        new = {key_: v for key_, v in item.items() if key_ not in (k.GSI1PK, k.GSI1SK)}
        new.update({"status": Status.ACTIVE.value, "grace_until": None})
        try:
            return _change(caller.user_id, item, new, now, "code.reactivated", [_cap_add(item["pk"], 1, limit)])
        except Cancelled as cancel:
            if cancel.failed(len(cancel.reasons) - 2):
                raise PlanLimitReached(caller.plan_name, limit, codes_used(item["pk"])) from cancel
            raise

    return _result(_with_retry(caller.scope, code_id, apply), now, with_scans)


def expire(scope: str, code_id: str, now: int) -> bool:
    """Grace → expired once ``grace_until`` has passed (the scheduled job).
    Returns False when there is nothing to do (reactivated meanwhile, not due, gone).
    The code leaves its group."""
    for _ in range(6):
        item = get_item(scope, code_id)
        if item is None or item["status"] != Status.GRACE or int(item.get("grace_until") or 0) > now:
            return False
        new = {key_: v for key_, v in item.items() if key_ not in (k.GSI1PK, k.GSI1SK)}
        new.update({"status": Status.EXPIRED.value, "group_id": None})
        try:
            _change(SYSTEM, item, new, now, "code.expired")
            return True
        except Cancelled as cancel:
            if cancel.failed(0):
                continue
            raise
    return False
