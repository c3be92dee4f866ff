"""Counting through panes (docs/analytics.md, "Counting through panes"): the
aggregator writes each batch as one small item per scope and UTC day, a pane,
with no marker and no transaction; a scheduled compaction folds a day's panes
into the aggregate items readers read, by setting (never adding) their values;
readers fold the panes of the days still open themselves, unless a day holds
more than ``LIVE_LIMIT`` scans (then they read its aggregate items, at most one
run behind). A scan delivered twice is a repeated row with the same id, and
every fold keeps one row per id.

Items: ``PANE#{scope}#{day}`` / a random sort key (``p`` the plan, ``c`` the
batch's codes, ``s`` one row per scan), and the day's open mark
``OPEN#{shard}`` / ``{scope}#{day}`` (``v``, a fresh value per pane written
after the day ended; ``n``, the scans the last compaction counted). Keys:
docs/data-model.md.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from itertools import islice
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from qrpro.config import settings
from qrpro.data import keys as k
from qrpro.data.aws import ddb
from qrpro.data.counting import DAYS, Scan, fold, unique
from qrpro.data.table import av, batch_get, error_code, key, query_items, table
from qrpro.domain.plans import plan

log = logging.getLogger("qrpro.scans")

HORIZON_DAYS = 16  # a scan of a day that ended longer ago is not counted (SQS keeps 4 d, the DLQ 14 d at most)
CLOSE_AFTER = 900  # seconds after its day ended that a bucket, unchanged since the last run, is closed
# Readers fold a day's panes themselves up to this many scans; past it they read its aggregate items
# (one compaction behind at most), and skip the day's panes once a compaction counted more.
LIVE_LIMIT = 20_000
WRITERS = 8  # the compaction's item writes in parallel: a busy day sets thousands, each a round trip
_marked: set[tuple[str, str]] = set()  # (scope, day) this container marked open while the day ran


def enabled(day: str) -> bool:
    """Whether scans of ``day`` are counted through panes (``PANES_FROM``: the first such UTC day)."""
    first = settings().panes_from
    return bool(first) and day >= first


def day_end(day: str) -> int:
    return int(datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()) + 86_400


def too_late(day: str, now: int) -> bool:
    return now >= day_end(day) + HORIZON_DAYS * 86_400


# -- the encoding ---------------------------------------------------------------------------

def encode(scans: list[Scan]) -> dict[str, Any]:
    """One pane: scans of one scope, day and plan. Rows: id, code row, country, device, target,
    hour (``-`` where the plan keeps no hourly aggregates), ``m`` (1: a max_scans code)."""
    first = scans[0]
    codes = sorted({(s.code_id, s.shortcode, s.codes) for s in scans})
    row = {c: i for i, c in enumerate(codes)}
    hourly = plan(first.plan).hourly_analytics
    rows = [" ".join((s.id, str(row[(s.code_id, s.shortcode, s.codes)]), s.country, s.device, s.target,
                      s.hour[11:] if hourly else "-", "1" if s.limited else "0")) for s in scans]
    return {"pk": av(k.pk_pane(first.scope, first.day)), "sk": av(uuid.uuid4().hex), "p": av(first.plan),
            "c": av("\n".join(f"{cid} {sc or '-'} {n}" for cid, sc, n in codes)), "s": av("\n".join(rows)),
            k.TTL: av(day_end(first.day) + (HORIZON_DAYS + 1) * 86_400)}


def decode(scope: str, day: str, item: dict[str, Any]) -> list[Scan]:
    codes = [line.split(" ") for line in str(item["c"]).split("\n")]
    out = []
    for line in str(item["s"]).split("\n"):
        scan_id, i, country, device, target, hh, m = line.split(" ")
        code_id, shortcode, n = codes[int(i)]
        out.append(Scan(id=scan_id, code_id=code_id, scope=scope, plan=str(item["p"]),
                        hour=f"{day}-{'00' if hh == '-' else hh}", country=country, device=device, target=target,
                        shortcode="" if shortcode == "-" else shortcode, codes=int(n), limited=m == "1"))
    return out


# -- the aggregator's writes ------------------------------------------------------------------

def put(scans: list[Scan], now: int) -> list[Scan]:
    """Write ``scans`` (each id once) as one pane per scope, day and plan, and mark their
    days open. Returns the scans not written (their messages are redelivered)."""
    groups: dict[tuple[str, str, str], list[Scan]] = {}
    for s in scans:
        groups.setdefault((s.scope, s.day, s.plan), []).append(s)
    failed: list[Scan] = []
    for (scope, day, _plan), group in sorted(groups.items()):
        try:
            ddb().put_item(TableName=table(), Item=encode(group))
            mark_open(scope, day, now)
        except (ClientError, BotoCoreError) as err:
            log.warning("pane not written: %s", error_code(err) if isinstance(err, ClientError) else type(err).__name__)
            failed += group
    return failed


def mark_open(scope: str, day: str, now: int) -> None:
    """After the pane's put: a day still running is marked once per container (the compaction
    does not close it before it ends); a pane of an ended day moves ``v``, so that a compaction
    that read the panes before it cannot close the day."""
    ended = now >= day_end(day)
    if not ended and (scope, day) in _marked:
        return
    ddb().update_item(TableName=table(), Key=key(k.pk_open(scope), k.sk_open(scope, day)),
                      UpdateExpression="SET v = :v, #ttl = :ttl", ExpressionAttributeNames={"#ttl": k.TTL},
                      ExpressionAttributeValues={":v": av(uuid.uuid4().hex),
                                                 ":ttl": av(day_end(day) + (HORIZON_DAYS + 1) * 86_400)})
    if not ended:
        _marked.add((scope, day))


# -- reads -------------------------------------------------------------------------------------

def _rows(scope: str, day: str, consistent: bool) -> Iterator[Scan]:
    for item in query_items({"TableName": table(), "KeyConditionExpression": "pk = :pk", "ConsistentRead": consistent,
                             "ExpressionAttributeValues": {":pk": av(k.pk_pane(scope, day))}}):
        yield from decode(scope, day, item)


def read(scope: str, day: str, consistent: bool = False) -> list[Scan]:
    """Every scan of a scope's day, once each. Eventually consistent (half the read units) unless
    asked: a pane written in the last second may be missing, and is read next time; the run that
    may close the day reads consistently (a pane it missed would never be folded)."""
    return unique(_rows(scope, day, consistent))[0]


@dataclass(frozen=True, slots=True)
class Bucket:
    scope: str
    day: str
    v: str
    n: int = -1  # the scans its last compaction counted (-1: none yet)


def open_buckets() -> list[Bucket]:
    """Every open (scope, day), with its mark's ``v`` as read."""
    out = []
    for shard in range(k.OPEN_SHARDS):
        for item in query_items({"TableName": table(), "KeyConditionExpression": "pk = :pk", "ConsistentRead": True,
                                 "ExpressionAttributeValues": {":pk": av(f"OPEN#{shard}")}}):
            scope, _, day = str(item["sk"]).rpartition("#")
            out.append(Bucket(scope, day, str(item.get("v", "")), int(item.get("n", -1))))
    return out


def live_days(scope: str) -> list[str]:
    """The scope's open days but those a compaction found past ``LIVE_LIMIT``."""
    items = query_items({"TableName": table(), "ConsistentRead": True,
                         "KeyConditionExpression": "pk = :pk AND begins_with(sk, :s)",
                         "ExpressionAttributeValues": {":pk": av(k.pk_open(scope)), ":s": av(f"{scope}#")}})
    return [str(i["sk"]).rpartition("#")[2] for i in items if int(i.get("n", -1)) <= LIVE_LIMIT]


def note(bucket: Bucket, scans: int) -> None:
    """Record on the day's open mark the scans the compaction just counted (not on a mark
    closed meanwhile)."""
    try:
        ddb().update_item(TableName=table(), Key=key(k.pk_open(bucket.scope), k.sk_open(bucket.scope, bucket.day)),
                          UpdateExpression="SET n = :n", ConditionExpression="attribute_exists(v)",
                          ExpressionAttributeValues={":n": av(scans)})
    except ClientError as err:
        if error_code(err) != "ConditionalCheckFailedException":
            raise


def close(bucket: Bucket) -> bool:
    """Remove the day's open mark unless a pane moved ``v`` since it was read."""
    try:
        ddb().delete_item(TableName=table(), Key=key(k.pk_open(bucket.scope), k.sk_open(bucket.scope, bucket.day)),
                          ConditionExpression="v = :v", ExpressionAttributeValues={":v": av(bucket.v)})
    except ClientError as err:
        if error_code(err) == "ConditionalCheckFailedException":
            return False
        raise
    return True


@dataclass(frozen=True, slots=True)
class Live:
    """A scope's open days folded from their panes: what readers put in place of the stored
    aggregate items of those days (the compaction's, up to one run behind). ``days``: the
    days folded (a busy day is not: ``LIVE_LIMIT``)."""

    days: frozenset[str] = frozenset()
    items: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)

    def merge(self, pk: str, stored: Iterable[dict[str, Any]], low: str, high: str) -> list[dict[str, Any]]:
        """The stored items of ``pk`` in [low, high] (as a Query returned them), those of open
        days replaced by their live folds."""
        out = [i for i in stored if k.day_of(str(i["sk"])) not in self.days]
        out += [{"pk": p, "sk": sk, **attrs} for (p, sk), attrs in self.items.items()
                if p == pk and low <= sk <= high]
        return sorted(out, key=lambda i: str(i["sk"]))

    def day_totals(self) -> dict[str, int]:
        """Scans per open day (the month's ``used``)."""
        return {sk[2:]: attrs["total"] for (pk, sk), attrs in self.items.items()
                if pk.startswith("SAGG#") and sk.startswith("D#")}


def live(scope: str) -> Live:
    """The scope's open days folded, but those past ``LIVE_LIMIT`` scans (read from their
    aggregates; nothing to read while panes are off)."""
    if not settings().panes_from:
        return Live()
    days, scans = set(), []
    for day in live_days(scope):
        rows = list(islice(_rows(scope, day, False), LIVE_LIMIT + 1))  # no more pages past the limit
        if len(rows) <= LIVE_LIMIT:
            days.add(day)
            scans += unique(rows)[0]
    items = {key_: {**counter.adds, k.TTL: counter.ttl} for key_, counter in fold(scans, part=DAYS).items()}
    return Live(frozenset(days), items)


# -- the compaction's writes ----------------------------------------------------------------------

def _set(pk: str, sk: str, values: dict[str, int], ttl: int, guard: str, guard_value: int,
         condition: str = "", names: dict[str, str] | None = None,
         extra_values: dict[str, Any] | None = None, tail: str = "") -> None:
    """SET ``values`` on an item unless its ``guard`` attribute is larger (a slower run folded
    fewer scans: the newer value stays)."""
    names = {**(names or {}), "#g": guard}
    expr_values = {":g": av(guard_value), **(extra_values or {})}
    sets = []
    for i, (name, value) in enumerate(sorted(values.items())):
        names[f"#a{i}"], expr_values[f":a{i}"] = name, av(value)
        sets.append(f"#a{i} = :a{i}")
    if ttl:
        names["#ttl"], expr_values[":ttl"] = k.TTL, av(ttl)
        sets.append("#ttl = :ttl")
    try:
        ddb().update_item(TableName=table(), Key=key(pk, sk), UpdateExpression="SET " + ", ".join(sets) + tail,
                          ConditionExpression=f"(attribute_not_exists(#g) OR #g <= :g){condition}",
                          ExpressionAttributeNames=names, ExpressionAttributeValues=expr_values)
    except ClientError as err:
        if error_code(err) != "ConditionalCheckFailedException":
            raise


def _each(writes: list[Callable[[], None]]) -> None:
    """Run independent writes, ``WRITERS`` at a time; the first error is raised once all ended."""
    if len(writes) < 2 or WRITERS < 2:
        for write in writes:
            write()
        return
    with ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="compaction") as pool:
        for future in [pool.submit(write) for write in writes]:
            future.result()


def set_days(scans: list[Scan]) -> None:
    """Set the day and hour items of these scans (one scope and day, each once) to their
    fold; items already holding it are not written."""
    items = fold(scans, part=DAYS)
    stored = {(i["pk"], i["sk"]): int(i.get("n", 0)) for i in batch_get(
        [key(pk, sk) for pk, sk in items], consistent=True, projection="pk, sk, n")}
    _each([partial(_set, pk, sk, c.adds, c.ttl, "n", c.adds["n"])
           for (pk, sk), c in sorted(items.items()) if stored.get((pk, sk)) != c.adds["n"]])


def lifetime_attr(day: str) -> str:
    """A code's scans of one day on its SHORT# item, as the compaction last counted them."""
    return "ld_" + day.replace("-", "")


def set_lifetimes(scans: list[Scan], day: str, now: int) -> None:
    """Each code's scans of ``day`` (but those counted at once: ``limited``) as ``ld_{day}`` on
    its SHORT# item; a code's ``ld_`` of days past the panes' horizon are added into its
    ``scans_total`` in the same update (no fold can change them any more)."""
    per_code: dict[tuple[str, str], int] = {}
    for s in scans:
        if s.shortcode and not s.limited:
            per_code[(s.shortcode, s.code_id)] = per_code.get((s.shortcode, s.code_id), 0) + 1
    if not per_code:
        return
    items = {str(i["pk"]): i for i in batch_get([key(k.pk_short(sc), "SHORT") for sc, _ in per_code],
                                                 consistent=True)}
    attr = lifetime_attr(day)
    oldest = lifetime_attr(datetime.fromtimestamp(now - (HORIZON_DAYS + 2) * 86_400, UTC).strftime("%Y-%m-%d"))
    writes: list[Callable[[], None]] = []
    for (shortcode, code_id), count in sorted(per_code.items()):
        item = items.get(k.pk_short(shortcode))
        if item is None or item.get("code_id") != code_id:
            continue  # not this code's shortcode (any more)
        old = {name: int(v) for name, v in item.items() if name.startswith("ld_") and name < oldest and name != attr}
        if int(item.get(attr, -1)) != count or old:
            writes.append(partial(_set_lifetime, shortcode, code_id, attr, count, old))
    _each(writes)


def _set_lifetime(shortcode: str, code_id: str, attr: str, count: int, old: dict[str, int]) -> None:
    """``attr`` = ``count`` on the code's SHORT# item, and its ``old`` ``ld_`` moved into ``scans_total``."""
    names = {"#cid": "code_id"}
    values: dict[str, Any] = {":cid": av(code_id)}
    condition, tail = " AND #cid = :cid", ""
    if old:  # unchanged since read, added once
        names["#st"], values[":old"] = "scans_total", av(sum(old.values()))
        for i, (name, v) in enumerate(sorted(old.items())):
            names[f"#o{i}"], values[f":o{i}"] = name, av(v)
            condition += f" AND #o{i} = :o{i}"
        tail = " ADD #st :old REMOVE " + ", ".join(f"#o{i}" for i in range(len(old)))
    _set(k.pk_short(shortcode), "SHORT", {attr: count}, 0, attr, count, condition, names, values, tail)


def set_month_day(scope: str, day: str, total: int, ttl: int) -> None:
    """The scope's scans of ``day`` as ``u_{dd}`` on its month item (the month's ``used`` is
    the legacy ``used`` plus every ``u_``: ``caps``)."""
    attr = "u_" + day[8:10]
    out = ddb().get_item(TableName=table(), Key=key(k.pk_scope_agg(scope), k.sk_month(day[:7])),
                         ConsistentRead=True, ProjectionExpression="#a", ExpressionAttributeNames={"#a": attr})
    if int(out.get("Item", {}).get(attr, {}).get("N", -1)) != total:
        _set(k.pk_scope_agg(scope), k.sk_month(day[:7]), {attr: total}, ttl, attr, total)
