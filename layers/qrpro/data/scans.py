"""Scans: what the redirect reads and enqueues, how the aggregator folds a
batch of scans into a few atomic counter updates, and the analytics reads.
Design and failure modes: docs/analytics.md.

The redirect function imports this module on its hot path, so it imports
only the standard library, boto3 and import-light parts of ``qrpro`` at module
level; what only the aggregator or the analytics need (``qrpro.data.codes``,
which pulls pydantic, and ``qrpro.domain.analytics``) is imported inside the
functions that use it.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from qrpro.config import settings
from qrpro.data import keys as k
from qrpro.data.aws import client, ddb
from qrpro.data.table import (
    THROTTLING,
    av,
    batch_get,
    cancel_reasons,
    error_code,
    from_item,
    key,
    or_not_found,
    query_items,
    table,
)
from qrpro.domain.devices import DEVICES, country
from qrpro.domain.errors import NotFound
from qrpro.domain.plans import PLAN_GRACE_SECONDS, plan

if TYPE_CHECKING:
    from qrpro.domain.analytics import Window

log = logging.getLogger("qrpro.scans")

# -- keys of this module (docs/data-model.md, "scan markers" and "pending scans") ----------

MARKER_SK, PENDING_SHARDS = "SCAN", 10
MARKER_TTL = 15 * 86_400  # longer than SQS retention (4 d) + DLQ retention (14 d) allows a redrive


pk_scan_marker, pk_pending = k.pk_scan_marker, k.pk_pending


# -- clients for the redirect: short timeouts, it must never wait long on counting -----------

_FAST = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=0.25, read_timeout=0.5,
               max_pool_connections=10)


@cache
def _fast_client(service: str, endpoint: str | None) -> Any:
    return boto3.client(service, config=_FAST)  # type: ignore[call-overload]


def fast(service: str) -> Any:
    """A client with tight timeouts (keyed on the endpoint, which tests change)."""
    return _fast_client(service, os.environ.get(f"AWS_ENDPOINT_URL_{service.upper()}"))


# -- redirect reads -------------------------------------------------------------------

def _s(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name)
    return value.get("S") if value else None


def _n(item: dict[str, Any], name: str) -> int | None:
    value = item.get(name)
    return int(value["N"]) if value and "N" in value else None


def lookup_short(shortcode: str) -> dict[str, Any] | None:
    """The shortcode projection: code_id, scope, url, status, grace_until (or None)."""
    out = fast("dynamodb").get_item(
        TableName=table(), Key=key(k.pk_short(shortcode), "SHORT"), ConsistentRead=True,
        ProjectionExpression="code_id, #sc, #u, #st, grace_until",
        ExpressionAttributeNames={"#sc": "scope", "#u": "url", "#st": "status"})
    item = out.get("Item")
    if not item:
        return None
    return {"code_id": _s(item, "code_id"), "scope": _s(item, "scope"), "url": _s(item, "url"),
            "status": _s(item, "status"), "grace_until": _n(item, "grace_until")}


def lookup_plan(scope: str) -> dict[str, Any] | None:
    """The scope's plan and plan status (or None if the profile is gone)."""
    out = fast("dynamodb").get_item(
        TableName=table(), Key=key(scope, k.PROFILE), ConsistentRead=True,
        ProjectionExpression="#p, plan_status, plan_status_at", ExpressionAttributeNames={"#p": "plan"})
    item = out.get("Item")
    if not item:
        return None
    return {"plan": _s(item, "plan") or "solo", "plan_status": _s(item, "plan_status") or "active",
            "plan_status_at": _n(item, "plan_status_at") or 0}


def plan_expired(profile: dict[str, Any] | None, now: int) -> bool:
    """Expired, or in plan grace past the 90 days (before the job has run)."""
    if profile is None:
        return True
    status = profile["plan_status"]
    return status == "expired" or (status == "grace" and profile["plan_status_at"] + PLAN_GRACE_SECONDS <= now)


# -- enqueue (the redirect) ---------------------------------------------------------------

def scan_message(code_id: str, scope: str, plan_name: str, now: int, country_code: str, device: str) -> str:
    """One scan as a queue message: a random id (for exactly-once counting) and
    what docs/api.md allows a scan to keep, the time cut to the hour."""
    hour = time.strftime("%Y-%m-%d-%H", time.gmtime(now))
    return json.dumps({"id": uuid.uuid4().hex, "code_id": code_id, "scope": scope, "plan": plan_name,
                       "hour": hour, "country": country_code, "device": device}, separators=(",", ":"))


_unsent: list[str] = []  # scans neither SQS nor DynamoDB accepted: retried with the next scan
MAX_UNSENT = 10_000
BREAKER_SECONDS = 5.0  # after a failure, skip that service for this long: one visitor waits, not all
_down_until: dict[str, float] = {"sqs": 0.0, "dynamodb": 0.0}


def _send(bodies: list[str]) -> list[str]:
    """Send ≤ 10 messages in one call; returns those not accepted."""
    sqs, url = fast("sqs"), settings().scans_queue_url
    if len(bodies) == 1:
        sqs.send_message(QueueUrl=url, MessageBody=bodies[0])
        return []
    out = sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies)])
    return [bodies[int(f["Id"])] for f in out.get("Failed", [])]


def _save_pending(body: str) -> None:
    scan_id = json.loads(body)["id"]
    fast("dynamodb").put_item(TableName=table(), Item={
        "pk": {"S": pk_pending(random.randrange(PENDING_SHARDS))}, "sk": {"S": scan_id},
        "scan": {"S": body}})


def _try(service: str, call: Any, *args: Any) -> Any:
    """``call(*args)``, or None when it failed or the service is in its breaker window."""
    clock = time.monotonic()
    if _down_until[service] > clock:
        return None
    try:
        result = call(*args)
    except (ClientError, BotoCoreError):
        _down_until[service] = time.monotonic() + BREAKER_SECONDS
        return None
    return True if result is None else result


def enqueue(body: str) -> str:
    """Hand one scan to the aggregator without ever raising: SQS (one call,
    carrying up to 9 earlier unsent scans along); if SQS fails, a pending-scan
    item in DynamoDB that the aggregator drains; if that fails too, an
    in-memory buffer retried with the next scan of this container.
    Returns ``queued``, ``pending`` or ``buffered``."""
    earlier = _unsent[:9]
    del _unsent[:9]
    bodies = [body, *earlier]
    sent = _try("sqs", _send, bodies)
    failed = bodies if sent is None else ([] if sent is True else list(sent))
    if not failed:
        return "queued"
    status = "queued"
    for b in failed:
        if b is body:
            status = "pending" if _try("dynamodb", _save_pending, b) else "buffered"
            if status == "pending":
                continue
        if len(_unsent) < MAX_UNSENT:
            _unsent.append(b)
        else:
            log.error("scan buffer full: a scan could not be recorded")
    return status


# -- the aggregator -------------------------------------------------------------------

class Scan:
    """One scan as the aggregator sees it (a plain slotted class: the redirect
    imports this module, and dataclass creation costs import time)."""

    __slots__ = ("code_id", "country", "device", "hour", "id", "message_id", "pending_key", "plan", "scope")

    def __init__(self, id: str, code_id: str, scope: str, plan: str, hour: str, country: str, device: str,
                 message_id: str = "", pending_key: tuple[str, str] | None = None) -> None:
        self.id, self.code_id, self.scope, self.plan = id, code_id, scope, plan
        self.hour, self.country, self.device = hour, country, device
        self.message_id, self.pending_key = message_id, pending_key

    def __repr__(self) -> str:
        return f"Scan({self.id}, {self.code_id}, {self.hour}, {self.country}, {self.device})"

    @property
    def day(self) -> str:
        return self.hour[:10]

    @property
    def month(self) -> str:
        return self.hour[:7]

    @property
    def hourly(self) -> bool:
        return plan(self.plan).hourly_analytics


def parse(body: str, message_id: str = "", pending_key: tuple[str, str] | None = None) -> Scan | None:
    """A queue message as a Scan, or None if it is not one of ours."""
    try:
        data = json.loads(body)
        hour = str(data["hour"])
        datetime.strptime(hour, "%Y-%m-%d-%H")
        scan = Scan(id=str(data["id"]), code_id=str(data["code_id"]), scope=str(data["scope"]),
                    plan=str(data["plan"]), hour=hour, country=country(data.get("country")),
                    device=data["device"] if data.get("device") in DEVICES else "unknown",
                    message_id=message_id, pending_key=pending_key)
    except (ValueError, KeyError, TypeError):
        return None
    if not scan.id or not scan.code_id or not scan.scope.startswith(("USER#", "TEAM#")):
        return None
    return scan


def _epoch(bucket: str) -> int:
    """Start of a day (YYYY-MM-DD), hour (YYYY-MM-DD-HH) or month (YYYY-MM) bucket."""
    fmt = {10: "%Y-%m-%d", 13: "%Y-%m-%d-%H", 7: "%Y-%m"}[len(bucket)]
    return int(datetime.strptime(bucket, fmt).replace(tzinfo=UTC).timestamp())


def _bucket_end(bucket: str) -> int:
    start = datetime.fromtimestamp(_epoch(bucket), UTC)
    if len(bucket) == 7:
        end = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    elif len(bucket) == 13:
        end = start + timedelta(hours=1)
    else:
        end = start + timedelta(days=1)
    return int(end.timestamp())


class _Counter:
    """The increments of one aggregate item in one transaction."""

    __slots__ = ("adds", "ttl")

    def __init__(self) -> None:
        self.adds: dict[str, int] = {}
        self.ttl = 0

    def add(self, name: str, n: int = 1) -> None:
        self.adds[name] = self.adds.get(name, 0) + n


def fold(scans: Iterable[Scan]) -> dict[tuple[str, str], _Counter]:
    """A batch of scans as increments per aggregate item (pk, sk): per code and
    day (and hour for team/agency), per scope and day/hour, per scope and
    code-day (``k_{code_id}``), per scope and month (``used``)."""
    items: dict[tuple[str, str], _Counter] = {}

    def bump(pk: str, sk: str, names: tuple[str, ...], ttl: int) -> None:
        c = items.setdefault((pk, sk), _Counter())
        for name in names:
            c.add(name)
        c.ttl = max(c.ttl, ttl)

    for s in scans:
        keep = plan(s.plan).retention_days * 86_400
        counters = ("total", f"c_{s.country}", f"d_{s.device}")
        day_ttl = _bucket_end(s.day) + keep
        bump(k.pk_code_agg(s.code_id), k.sk_day(s.day), counters, day_ttl)
        bump(k.pk_scope_agg(s.scope), k.sk_day(s.day), counters, day_ttl)
        bump(k.pk_scope_agg(s.scope), k.sk_codes_day(s.day, s.code_id), (f"k_{s.code_id}",), day_ttl)
        bump(k.pk_scope_agg(s.scope), k.sk_month(s.month), ("used",), _bucket_end(s.month) + keep)
        if s.hourly:
            hour_ttl = _bucket_end(s.hour) + keep
            bump(k.pk_code_agg(s.code_id), k.sk_hour(s.hour), counters, hour_ttl)
            bump(k.pk_scope_agg(s.scope), k.sk_hour(s.hour), counters, hour_ttl)
    return items


def _update(pk: str, sk: str, counter: _Counter) -> dict[str, Any]:
    names = {"#ttl": k.TTL}
    values: dict[str, Any] = {":ttl": av(counter.ttl)}
    adds = []
    for i, (name, n) in enumerate(sorted(counter.adds.items())):
        names[f"#a{i}"] = name
        values[f":a{i}"] = av(n)
        adds.append(f"#a{i} :a{i}")
    return {"Update": {"TableName": table(), "Key": key(pk, sk),
                       "UpdateExpression": f"ADD {', '.join(adds)} SET #ttl = :ttl",
                       "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}}


def _marker(scan: Scan, now: int) -> dict[str, Any]:
    ttl = now - now % 3600 + MARKER_TTL
    return {"Put": {"TableName": table(), "Item": {"pk": {"S": pk_scan_marker(scan.id)}, "sk": {"S": MARKER_SK},
                                                   k.TTL: {"N": str(ttl)}},
                    "ConditionExpression": "attribute_not_exists(pk)"}}


def transaction(scans: list[Scan], now: int, deletes: Iterable[tuple[str, str]] = ()) -> list[dict[str, Any]]:
    """Markers first (index i = scans[i]), then pending-item deletes, then the counters."""
    tx = [_marker(s, now) for s in scans]
    tx += [{"Delete": {"TableName": table(), "Key": key(*pk_sk)}} for pk_sk in deletes]
    tx += [_update(pk, sk, c) for (pk, sk), c in sorted(fold(scans).items())]
    return tx


MAX_TX_ITEMS = 100


def _keys(scan: Scan) -> set[tuple[str, str]]:
    return set(fold([scan]))


def chunks(scans: list[Scan]) -> list[list[Scan]]:
    """Split a batch into transactions of at most 100 items (a marker per scan,
    a delete per drained pending scan, the counter items), keeping scans of a
    code together so that they share counter items."""
    out: list[list[Scan]] = []
    current: list[Scan] = []
    counters: set[tuple[str, str]] = set()
    for s in sorted(scans, key=lambda s: (s.scope, s.code_id, s.hour)):
        mine = _keys(s)
        size = (len(current) + 1 + sum(1 for x in (*current, s) if x.pending_key) + len(counters | mine))
        if current and size > MAX_TX_ITEMS:
            out.append(current)
            current, counters = [], set()
        current.append(s)
        counters |= mine
    if current:
        out.append(current)
    return out


def unique(scans: Iterable[Scan]) -> tuple[list[Scan], list[Scan]]:
    """First occurrence of each scan id, and the duplicates (one transaction
    cannot write the same marker twice; the copies are counted with the first)."""
    seen: set[str] = set()
    first: list[Scan] = []
    dupes: list[Scan] = []
    for s in scans:
        (dupes if s.id in seen else first).append(s)
        seen.add(s.id)
    return first, dupes


RETRYABLE_CANCEL = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})


def commit(scans: list[Scan], now: int, attempts: int = 4, sleep: Any = time.sleep) -> list[Scan]:
    """Count ``scans`` exactly once in one transaction. Scans whose marker exists
    (a redelivery) are dropped; throttling and conflicts are retried with backoff
    a few times. Returns the scans NOT counted (to be redelivered), possibly []."""
    remaining = list(scans)
    deletes = [s.pending_key for s in scans if s.pending_key]  # kept even for dropped duplicates
    tries = 0
    while remaining:
        try:
            ddb().transact_write_items(TransactItems=transaction(remaining, now, deletes))
            return []
        except ClientError as err:
            code = error_code(err)
            if code == "TransactionCanceledException":
                reasons = cancel_reasons(err)
                seen = {i for i, r in enumerate(reasons[:len(remaining)]) if r == "ConditionalCheckFailed"}
                if seen:
                    remaining = [s for i, s in enumerate(remaining) if i not in seen]
                    continue  # progress: counted before, drop them
                if not set(reasons) & RETRYABLE_CANCEL:
                    log.error("scan transaction cancelled: %s", ",".join(reasons))
                    return remaining
            elif code not in THROTTLING:
                log.error("scan transaction failed: %s", code)
                return remaining
        except BotoCoreError as err:
            log.warning("scan transaction did not answer: %s", type(err).__name__)
        tries += 1
        if tries >= attempts:
            return remaining
        sleep(random.uniform(0, 0.05 * 2 ** tries))
    if deletes:
        with suppress(ClientError, BotoCoreError):  # else drained again later; the markers drop them again
            ddb().transact_write_items(TransactItems=transaction([], now, deletes))
    return []


def aggregate(scans: list[Scan], now: int) -> list[Scan]:
    """Count a batch (exactly once) and run the monthly cap check for its scopes.
    Returns the scans to retry (their messages are reported as failed)."""
    failed: list[Scan] = []
    first, _copies = unique(scans)  # a copy's message is acknowledged: the first one carries the scan
    for chunk in chunks(first):
        left = commit(chunk, now)
        failed += left
        if left:
            continue
        for scope, month, plan_name in sorted({(s.scope, s.month, s.plan) for s in chunk}):
            try:
                check_cap(scope, month, plan_name, now)
            except (ClientError, BotoCoreError) as err:
                # Redelivery is harmless (markers) and runs the check again.
                log.warning("cap check failed: %s", type(err).__name__)
                failed += [s for s in chunk if s.scope == scope and s.month == month]
    return failed


def drain_pending(now: int, limit: int = 100) -> int:
    """Count scans the redirect parked in DynamoDB because SQS failed. Returns
    how many were counted. Safe to run concurrently (markers + deletes in the
    same transaction)."""
    found: list[Scan] = []
    for shard in range(PENDING_SHARDS):
        out = ddb().query(TableName=table(), KeyConditionExpression="pk = :pk", Limit=limit,
                          ExpressionAttributeValues={":pk": av(pk_pending(shard))}, ConsistentRead=True)
        for raw in out.get("Items", []):
            scan = parse(raw["scan"]["S"], pending_key=(raw["pk"]["S"], raw["sk"]["S"]))
            if scan is None:
                ddb().delete_item(TableName=table(), Key=key(raw["pk"]["S"], raw["sk"]["S"]))
            else:
                found.append(scan)
    if not found:
        return 0
    failed = aggregate(found, now)
    return len(found) - len(failed)


# -- monthly scan cap -------------------------------------------------------------------

_cap_done: set[tuple[str, str]] = set()  # (scope, month) whose email went out: no more reads


def check_cap(scope: str, month: str, plan_name: str, now: int) -> None:
    """Past the plan's cap: exactly one ``scans.cap_reached`` event (with the
    flag, in one transaction) and one email per scope and month. Redirects go on."""
    if (scope, month) in _cap_done:
        return
    cap = plan(plan_name).scans_per_month
    item_key = key(k.pk_scope_agg(scope), k.sk_month(month))
    out = ddb().get_item(TableName=table(), Key=item_key, ConsistentRead=True,
                         ProjectionExpression="used, cap_notified, cap_email")
    item = from_item(out.get("Item")) or {}
    used = int(item.get("used", 0))
    if used < cap:
        return
    if not item.get("cap_notified"):
        from qrpro.data.codes import event_item  # import-light module: see the docstring

        try:
            ddb().transact_write_items(TransactItems=[
                {"Update": {"TableName": table(), "Key": item_key,
                            "UpdateExpression": "SET cap_notified = :t, cap_email = :pending",
                            "ConditionExpression": "used >= :cap AND attribute_not_exists(cap_notified)",
                            "ExpressionAttributeValues": {":t": av(True), ":pending": av("pending"),
                                                          ":cap": av(cap)}}},
                event_item("scans.cap_reached", scope, {"month": month, "used": used, "cap": cap,
                                                        "plan": plan_name}, now),
            ])
        except ClientError as err:
            if error_code(err) != "TransactionCanceledException":
                raise
            if "ConditionalCheckFailed" not in cancel_reasons(err):
                raise
            # another aggregator set the flag first: it fired the event
        item["cap_email"] = "pending"
    if item.get("cap_email") == "sent":
        _cap_done.add((scope, month))
        return
    if _send_cap_email(scope, month, used, cap, plan_name, now):
        _cap_done.add((scope, month))


EMAIL_LEASE = 300


def _send_cap_email(scope: str, month: str, used: int, cap: int, plan_name: str, now: int) -> bool:
    """Claim the email (one sender at a time), send it through SES, mark it sent."""
    item_key = key(k.pk_scope_agg(scope), k.sk_month(month))
    try:
        ddb().update_item(
            TableName=table(), Key=item_key, UpdateExpression="SET cap_email = :sending, cap_email_at = :now",
            ConditionExpression="cap_email = :pending OR (cap_email = :sending AND cap_email_at < :stale)",
            ExpressionAttributeValues={":sending": av("sending"), ":pending": av("pending"), ":now": av(now),
                                       ":stale": av(now - EMAIL_LEASE)})
    except ClientError as err:
        if error_code(err) == "ConditionalCheckFailedException":
            return False  # sent already, or another aggregator is sending it
        raise
    try:
        to = owner_email(scope)
        if to:
            client("ses").send_email(
                Source=settings().ses_sender, Destination={"ToAddresses": [to]},
                Message={"Subject": {"Data": f"QR Pro: your scans passed this month's cap ({month})"},
                         "Body": {"Text": {"Data": (
                             f"Your codes have been scanned {used:,} times in {month}, past the {cap:,} scans "
                             f"a month of the {plan_name} plan.\n\nEvery code keeps redirecting and every scan "
                             "is still counted. To raise the cap, move to a larger plan.\n\n- QR Pro\n")}}})
    except (ClientError, BotoCoreError):
        ddb().update_item(TableName=table(), Key=item_key, UpdateExpression="SET cap_email = :pending",
                          ExpressionAttributeValues={":pending": av("pending")})
        raise
    ddb().update_item(TableName=table(), Key=item_key, UpdateExpression="SET cap_email = :sent",
                      ExpressionAttributeValues={":sent": av("sent")})
    return True


def owner_email(scope: str) -> str | None:
    """The account owner's email: the user's, or the team owner's."""
    profile = from_item(ddb().get_item(TableName=table(), Key=key(scope, k.PROFILE), ConsistentRead=True)
                        .get("Item")) or {}
    if scope.startswith("TEAM#") and profile.get("owner_id"):
        profile = from_item(ddb().get_item(TableName=table(), Key=key(k.pk_user(profile["owner_id"]), k.PROFILE),
                                           ConsistentRead=True).get("Item")) or {}
    email = profile.get("email")
    return str(email) if email else None


# -- analytics reads ----------------------------------------------------------------------

def _query(pk: str, low: str, high: str) -> Iterator[dict[str, Any]]:
    """One Query over a key range (paged; ≤ 1,095 small items fit in one or two pages)."""
    return query_items({
        "TableName": table(), "KeyConditionExpression": "pk = :pk AND sk BETWEEN :a AND :b",
        "ExpressionAttributeValues": {":pk": av(pk), ":a": av(low), ":b": av(high)}})


def _series(pk: str, win: Window, now: int) -> list[tuple[str, dict[str, Any]]]:
    sk = k.sk_hour if win.hourly else k.sk_day
    return [(item["sk"][2:], item) for item in _query(pk, sk(win.buckets[0]), sk(win.buckets[-1]))
            if int(item.get(k.TTL) or now) >= now]


def code_analytics(scope: str, code_id: str, plan_name: str, range_: str | None, granularity: str | None,
                   now: int) -> dict[str, Any]:
    """7.1: one Query on the code's aggregates."""
    from qrpro.data import codes
    from qrpro.domain import analytics

    win = analytics.window(range_, granularity, plan(plan_name), now)
    if codes.get_item(scope, code_id) is None:
        raise NotFound()
    return analytics.fold(win, _series(k.pk_code_agg(code_id), win, now))


def scope_analytics(scope: str, plan_name: str, range_: str | None, granularity: str | None,
                    now: int) -> dict[str, Any]:
    """7.2: one Query on the scope's day (or hour) aggregates, one on its
    per-code-day items, one BatchGetItem for the top codes' names."""
    from qrpro.domain import analytics
    from qrpro.domain.clock import days_back

    win = analytics.window(range_, granularity, plan(plan_name), now)
    out = analytics.fold(win, _series(k.pk_scope_agg(scope), win, now))
    # Per-code counters are daily: with granularity=hour, top_codes covers the
    # same range's UTC days (docs/analytics.md).
    days = days_back(now, win.days)
    first, last = k.codes_day_range(days[0], days[-1])
    per_code = analytics.sum_codes(i for i in _query(k.pk_scope_agg(scope), first, last)
                                   if int(i.get(k.TTL) or now) >= now)
    out["top_codes"] = _top_codes(scope, per_code)
    return out


def _top_codes(scope: str, per_code: dict[str, int]) -> list[dict[str, Any]]:
    from qrpro.domain import analytics

    top = analytics.top_codes(per_code)
    if not top:
        return []
    found = {item["id"]: item for item in batch_get([key(scope, k.sk_code(cid)) for cid, _ in top],
                                                     projection="id, shortcode, label")}
    return [{"id": cid, "shortcode": found[cid].get("shortcode"), "label": found[cid].get("label"), "total": n}
            for cid, n in top if cid in found]


def group_analytics(scope: str, group_id: str, plan_name: str, range_: str | None, granularity: str | None,
                    now: int) -> dict[str, Any]:
    """7.3: the group's current codes, then one Query per code, in parallel."""
    from concurrent.futures import ThreadPoolExecutor

    from qrpro.data import groups
    from qrpro.domain import analytics

    win = analytics.window(range_, granularity, plan(plan_name), now)
    or_not_found(groups.get_item(scope, group_id))  # 404 for a missing or foreign group
    code_ids = groups.code_ids(scope, group_id)
    pairs: list[tuple[str, dict[str, Any]]] = []
    if code_ids:
        with ThreadPoolExecutor(max_workers=min(8, len(code_ids))) as pool:
            for series in pool.map(lambda cid: _series(k.pk_code_agg(cid), win, now), code_ids):
                pairs += series
    return analytics.fold(win, pairs)

