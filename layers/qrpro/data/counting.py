"""The aggregator's repository: a batch of scans folded into a few atomic
counter updates and written exactly once (a marker per scan in the same
transaction), and the scans the redirect parked in DynamoDB. Design and
failure modes: docs/analytics.md; keys: docs/data-model.md."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from botocore.exceptions import ClientError

from qrpro.data import keys as k
from qrpro.data.aws import ddb
from qrpro.data.edge import PENDING_SHARDS
from qrpro.data.table import Cancelled, Retry, Transaction, av, error_code, key, retrying, table
from qrpro.domain.devices import DEVICES, country
from qrpro.domain.errors import ServiceUnavailable
from qrpro.domain.plans import plan
from qrpro.domain.shortcodes import is_shortcode

log = logging.getLogger("qrpro.scans")

MARKER_SK = "SCAN"
MARKER_TTL = 15 * 86_400  # longer than SQS retention (4 d) + DLQ retention (14 d) allows a redrive
MAX_TX_ITEMS = 100
MARKER = "marker:"  # the transaction item name of a scan's exactly-once marker
LIFETIME = "lifetime:"  # the transaction item name of a code's scans_total increment (its SHORT# item)
SHORT_SK = "SHORT"
DEFAULT_TARGET = "default"
_TARGET = re.compile(r"^(?:default|fallback|(?:rule|split):\d{1,2})$")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # a scan or code id: no separator a pane's rows use


@dataclass(slots=True)
class Scan:
    """One scan as the aggregator sees it."""

    id: str
    code_id: str
    scope: str
    plan: str
    hour: str
    country: str
    device: str
    target: str = DEFAULT_TARGET  # routing target (docs/analytics.md); old messages without one: default
    shortcode: str = ""  # whose SHORT# item keeps scans_total; old messages without one: not counted there
    codes: int = 0  # the scope's codes when scanned (the layout of its K# shards); old messages: 0, the default
    limited: bool = False  # the code had a max_scans rule when scanned: its lifetime count is kept exact at once
    message_id: str = field(default="", repr=False)
    pending_key: tuple[str, str] | None = field(default=None, repr=False)

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
    """A queue message (``edge.scan_message``) as a Scan, or None if it is not one of ours."""
    try:
        data = json.loads(body)
        hour = str(data["hour"])
        datetime.strptime(hour, "%Y-%m-%d-%H")
        scan = Scan(id=str(data["id"]), code_id=str(data["code_id"]), scope=str(data["scope"]),
                    plan=str(data["plan"]), hour=hour, country=country(data.get("country")),
                    device=data["device"] if data.get("device") in DEVICES else "unknown",
                    target=_target(data.get("t")), shortcode=_shortcode(data.get("s")), codes=_codes(data.get("n")),
                    limited=data.get("m") == 1, message_id=message_id, pending_key=pending_key)
    except (ValueError, KeyError, TypeError):
        return None
    if not _TOKEN.match(scan.id) or not _TOKEN.match(scan.code_id) or not scan.scope.startswith(("USER#", "TEAM#")):
        return None
    return scan


def _target(value: Any) -> str:
    return value if isinstance(value, str) and _TARGET.match(value) else DEFAULT_TARGET


def _codes(value: Any) -> int:
    return value if type(value) is int and 0 < value <= 10**7 else 0


def _shortcode(value: Any) -> str:
    return value if isinstance(value, str) and is_shortcode(value) else ""


# -- folding ----------------------------------------------------------------------------------

@lru_cache(maxsize=4096)  # a fold asks it twice per scan; strptime was most of a large fold's time
def bucket_end(bucket: str) -> int:
    """End of a day (YYYY-MM-DD), hour (YYYY-MM-DD-HH) or month (YYYY-MM) bucket."""
    fmt = {10: "%Y-%m-%d", 13: "%Y-%m-%d-%H", 7: "%Y-%m"}[len(bucket)]
    start = datetime.strptime(bucket, fmt).replace(tzinfo=UTC)
    if len(bucket) == 7:
        end = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    elif len(bucket) == 13:
        end = start + timedelta(hours=1)
    else:
        end = start + timedelta(days=1)
    return int(end.timestamp())


@dataclass(slots=True)
class Counter:
    """The increments of one aggregate item in one transaction."""

    adds: dict[str, int] = field(default_factory=dict)
    ttl: int = 0  # 0: no ttl (the SHORT# item lives as long as its code)
    guard: str = ""  # the code id the item must still belong to (SHORT#: a deleted or reused shortcode)


ALL, LIFETIME_ONLY, DAYS = "all", "lifetime", "days"  # what ``fold`` folds


def fold(scans: Iterable[Scan], skip: frozenset[str] = frozenset(), part: str = ALL) -> dict[tuple[str, str], Counter]:
    """A batch of scans as increments per aggregate item (pk, sk): per code and
    day (and hour for team/agency), per scope and day/hour (``total``, ``c_{country}``,
    ``d_{device}``, ``t_{target}``), per scope and code-day (``k_{code_id}``), per
    scope and month (``used``), and the code's lifetime ``scans_total`` on its
    SHORT# item (unless its shortcode is in ``skip``: deleted or reused).
    ``part``: ``lifetime`` folds only the SHORT# items; ``days`` only the day and hour
    items, each with ``n``, the number of scans folded into it (the compaction's)."""
    items: dict[tuple[str, str], Counter] = {}
    days = part == DAYS
    n = ("n",) if days else ()

    def bump(pk: str, sk: str, names: tuple[str, ...], ttl: int) -> Counter:
        c = items.get((pk, sk))
        if c is None:
            c = items[(pk, sk)] = Counter()
        adds = c.adds
        for name in names:
            adds[name] = adds.get(name, 0) + 1
        if ttl > c.ttl:
            c.ttl = ttl
        return c

    for s in scans:
        keep = plan(s.plan).retention_days * 86_400
        counters = ("total", f"c_{s.country}", f"d_{s.device}", f"t_{s.target}", *n)
        if s.shortcode and s.shortcode not in skip and not days:
            bump(k.pk_short(s.shortcode), SHORT_SK, ("scans_total",), 0).guard = s.code_id
        if part == LIFETIME_ONLY:
            continue
        day_ttl = bucket_end(s.day) + keep
        bump(k.pk_code_agg(s.code_id), k.sk_day(s.day), counters, day_ttl)
        bump(k.pk_scope_agg(s.scope), k.sk_day(s.day), counters, day_ttl)
        bump(k.pk_scope_agg(s.scope), k.sk_codes_day(s.day, s.code_id, k.codes_day_shards(s.codes)),
             (f"k_{s.code_id}", *n), day_ttl)
        if not days:
            bump(k.pk_scope_agg(s.scope), k.sk_month(s.month), ("used",), bucket_end(s.month) + keep)
        if s.hourly:
            hour_ttl = bucket_end(s.hour) + keep
            bump(k.pk_code_agg(s.code_id), k.sk_hour(s.hour), counters, hour_ttl)
            bump(k.pk_scope_agg(s.scope), k.sk_hour(s.hour), counters, hour_ttl)
    return items


# -- the transaction -------------------------------------------------------------------------------

def _update(pk: str, sk: str, counter: Counter) -> dict[str, Any]:
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    adds = []
    for i, (name, n) in enumerate(sorted(counter.adds.items())):
        names[f"#a{i}"] = name
        values[f":a{i}"] = av(n)
        adds.append(f"#a{i} :a{i}")
    update: dict[str, Any] = {"TableName": table(), "Key": key(pk, sk), "UpdateExpression": f"ADD {', '.join(adds)}",
                              "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}
    if counter.ttl:
        names["#ttl"], values[":ttl"] = k.TTL, av(counter.ttl)
        update["UpdateExpression"] += " SET #ttl = :ttl"
    if counter.guard:
        names["#cid"], values[":cid"] = "code_id", av(counter.guard)
        update["ConditionExpression"] = "#cid = :cid"
    return {"Update": update}


def _marker(scan: Scan, now: int) -> dict[str, Any]:
    ttl = now - now % 3600 + MARKER_TTL
    return {"Put": {"TableName": table(), "Item": {"pk": {"S": k.pk_scan_marker(scan.id)}, "sk": {"S": MARKER_SK},
                                                   k.TTL: {"N": str(ttl)}},
                    "ConditionExpression": "attribute_not_exists(pk)"}}


def transaction(scans: list[Scan], now: int, deletes: Iterable[tuple[str, str]] = (),
                skip: frozenset[str] = frozenset(), part: str = ALL) -> Transaction:
    """Each scan's marker (named ``marker:<scan id>``), the pending-item deletes, the counters
    (a SHORT# item's named ``lifetime:<shortcode>``)."""
    tx = Transaction()
    for scan in scans:
        tx.add(MARKER + scan.id, _marker(scan, now))
    for pk, sk in deletes:
        tx.add(f"delete:{pk}:{sk}", {"Delete": {"TableName": table(), "Key": key(pk, sk)}})
    for (pk, sk), counter in sorted(fold(scans, skip, part).items()):
        name = LIFETIME + pk.removeprefix(k.pk_short("")) if counter.guard else f"count:{pk}:{sk}"
        tx.add(name, _update(pk, sk, counter))
    return tx


def chunks(scans: list[Scan], part: str = ALL) -> list[list[Scan]]:
    """Split a batch into transactions of at most 100 items (a marker per scan,
    a delete per drained pending scan, the counter items), keeping scans of a
    code together so that they share counter items."""
    out: list[list[Scan]] = []
    current: list[Scan] = []
    counters: set[tuple[str, str]] = set()
    for s in sorted(scans, key=lambda s: (s.scope, s.code_id, s.hour)):
        mine = set(fold([s], part=part))
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


def commit(scans: list[Scan], now: int, attempts: int = 4, part: str = ALL) -> list[Scan]:
    """Count ``scans`` exactly once in one transaction. Scans whose marker exists
    (a redelivery) are dropped; throttling and conflicts are retried (``table.retrying``,
    a small budget: SQS redelivers what is left). Returns the scans NOT counted (to be
    redelivered), possibly []."""
    deletes = [s.pending_key for s in scans if s.pending_key]  # kept even for dropped duplicates
    remaining = list(scans)
    skip: frozenset[str] = frozenset()

    def attempt() -> list[Scan]:
        nonlocal remaining, skip
        while remaining:
            try:
                transaction(remaining, now, deletes, skip, part).attempt()
                return []
            except Cancelled as cancel:
                counted = {name for name in cancel.failed if name.startswith(MARKER)}
                orphans = {name[len(LIFETIME):] for name in cancel.failed if name.startswith(LIFETIME)}
                if not (counted or orphans):
                    log.error("scan transaction cancelled: %s", cancel)
                    return remaining
                # progress: scans counted before are dropped; a shortcode deleted (or now another
                # code's) keeps no scans_total for the code that had it
                remaining = [s for s in remaining if MARKER + s.id not in counted]
                skip |= orphans
            except ServiceUnavailable as err:  # throttled or no answer: like a conflict, run it again
                raise Retry() from err
            except ClientError as err:
                log.error("scan transaction failed: %s", error_code(err))
                return remaining
        forget(deletes, now)  # else drained again later, and the markers drop them again
        return []

    try:
        return retrying(attempt, attempts=attempts)
    except ServiceUnavailable:
        return remaining


# -- scans the redirect parked while SQS failed -------------------------------------------------------

def forget(deletes: list[tuple[str, str]], now: int) -> None:
    """Delete parked scans' items once they are counted (best effort: one left is drained
    again, and counted once all the same)."""
    for start in range(0, len(deletes), MAX_TX_ITEMS):
        with suppress(ClientError, Cancelled, Retry, ServiceUnavailable):
            transaction([], now, deletes[start:start + MAX_TX_ITEMS]).attempt()


def parked(limit: int) -> list[Scan]:
    """Up to ``limit`` parked scans per shard, each carrying its item's key (the
    commit deletes it); an item that is not a scan of ours is deleted here."""
    out: list[Scan] = []
    for shard in range(PENDING_SHARDS):
        page = ddb().query(TableName=table(), KeyConditionExpression="pk = :pk", Limit=limit,
                           ExpressionAttributeValues={":pk": av(k.pk_pending(shard))}, ConsistentRead=True)
        for raw in page.get("Items", []):
            scan = parse(raw["scan"]["S"], pending_key=(raw["pk"]["S"], raw["sk"]["S"]))
            if scan is None:
                ddb().delete_item(TableName=table(), Key=key(raw["pk"]["S"], raw["sk"]["S"]))
            else:
                out.append(scan)
    return out
