"""Scans into the analytics aggregates (docs/analytics.md, "How a scan is counted"):
``fold`` turns scans into increments per aggregate item, ``add`` writes one
step's increments, each item at most once per step (``st``, the step's end,
guards it), and the scans the redirect parked in DynamoDB while SQS failed are
read and forgotten here. Keys: docs/data-model.md."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache, partial
from typing import Any

from botocore.exceptions import ClientError

from qrpro.data import keys as k
from qrpro.data.aws import ddb
from qrpro.data.edge import PENDING_SHARDS
from qrpro.data.table import av, batch_get, error_code, key, table
from qrpro.domain.plans import plan
from qrpro.domain.scan_codec import Scan, parse_message

log = logging.getLogger("qrpro.scans")

WRITERS = 8  # a step's item writes in parallel: a busy scope's step sets hundreds, each a round trip
GUARD = "st"  # on every aggregate item: the end of the last step added into it
BOTS = ("bots",)  # what a bot or link preview adds to its day and hour items


@lru_cache(maxsize=4096)  # a fold asks it twice per scan
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
    """The increments of one aggregate item."""

    adds: dict[str, int] = field(default_factory=dict)
    ttl: int = 0


def fold(scans: Iterable[Scan]) -> dict[tuple[str, str], Counter]:
    """Scans as increments per aggregate item (pk, sk): per code and day (and hour for plans
    with hourly analytics), per scope and day/hour (``total``, ``c_{country}``, ``d_{device}``,
    ``t_{target}``, ``o_{os}``), and per scope and code-day (``k_{code_id}``, in the scope's K#
    shards). A bot or link preview adds ``bots`` to the day and hour items, nothing else."""
    items: dict[tuple[str, str], Counter] = {}

    def bump(pk: str, sk: str, names: tuple[str, ...], ttl: int) -> None:
        c = items.get((pk, sk))
        if c is None:
            c = items[(pk, sk)] = Counter()
        adds = c.adds
        for name in names:
            adds[name] = adds.get(name, 0) + 1
        if ttl > c.ttl:
            c.ttl = ttl

    for s in scans:
        terms = plan(s.plan)
        keep = terms.retention_days * 86_400
        counters = BOTS if s.bot else ("total", f"c_{s.country}", f"d_{s.device}", f"t_{s.target}", f"o_{s.os}")
        day_ttl = bucket_end(s.day) + keep
        bump(k.pk_code_agg(s.code_id), k.sk_day(s.day), counters, day_ttl)
        bump(k.pk_scope_agg(s.scope), k.sk_day(s.day), counters, day_ttl)
        if not s.bot:
            bump(k.pk_scope_agg(s.scope), k.sk_codes_day(s.day, s.code_id, k.codes_day_shards(s.codes)),
                 (f"k_{s.code_id}",), day_ttl)
        if terms.hourly_analytics:
            hour_ttl = bucket_end(s.hour) + keep
            bump(k.pk_code_agg(s.code_id), k.sk_hour(s.hour), counters, hour_ttl)
            bump(k.pk_scope_agg(s.scope), k.sk_hour(s.hour), counters, hour_ttl)
    return items


def add_once(pk: str, sk: str, adds: dict[str, int], step: int, ttl: int = 0, sets: dict[str, Any] | None = None,
             guard: str = GUARD, returns: bool = False) -> dict[str, Any] | None:
    """ADD ``adds`` to an item unless it already holds the step ending at ``step`` (its ``guard``
    is not below it): a repeated or concurrent run of the same step adds nothing. Returns the item
    as written (``returns``), {} without, None when the step was there already."""
    names = {"#g": guard}
    values: dict[str, Any] = {":g": av(step)}
    terms = []
    for i, (name, n) in enumerate(sorted(adds.items())):
        names[f"#a{i}"], values[f":a{i}"] = name, av(n)
        terms.append(f"#a{i} :a{i}")
    sets_expr = ["#g = :g"]
    if ttl:
        names["#ttl"], values[":ttl"] = k.TTL, av(ttl)
        sets_expr.append("#ttl = :ttl")
    for i, (name, value) in enumerate(sorted((sets or {}).items())):
        names[f"#s{i}"], values[f":s{i}"] = name, av(value)
        sets_expr.append(f"#s{i} = :s{i}")
    params: dict[str, Any] = {
        "TableName": table(), "Key": key(pk, sk),
        "UpdateExpression": ("ADD " + ", ".join(terms) + " " if terms else "") + "SET " + ", ".join(sets_expr),
        "ConditionExpression": "attribute_not_exists(#g) OR #g < :g",
        "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}
    if returns:
        params["ReturnValues"] = "ALL_NEW"
    try:
        out = ddb().update_item(**params)
    except ClientError as err:
        if error_code(err) == "ConditionalCheckFailedException":
            return None
        raise
    return {name: v for name, v in out.get("Attributes", {}).items()}


def add(items: dict[tuple[str, str], Counter], step: int) -> None:
    """One step's increments, ``WRITERS`` items at a time; the first error is raised once every
    write ended (the step is run again: the items written are not added twice)."""
    writes: list[Callable[[], object]] = [partial(add_once, pk, sk, c.adds, step, c.ttl)
                                          for (pk, sk), c in sorted(items.items())]
    if len(writes) < 2:
        for write in writes:
            write()
        return
    with ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="fold") as pool:
        for future in [pool.submit(write) for write in writes]:
            future.result()


def top_up(items: dict[tuple[str, str], Counter]) -> None:
    """Raise items to ``items`` (the whole fold of a day's panes of the design before sequence
    numbers, whose compaction SET each item to the fold it had read, with ``n`` the scans in it):
    what it had not read yet is added, once (conditional on ``n`` as read)."""
    stored = {(i["pk"], i["sk"]): i for i in batch_get([key(pk, sk) for pk, sk in items], consistent=True)}
    for (pk, sk), c in sorted(items.items()):
        n = c.adds.get("total", sum(c.adds.values()))  # the scans in it (K#: the sum of its codes')
        old = stored.get((pk, sk), {})
        if int(old.get("n", 0)) >= n:
            continue
        adds = {name: v - int(old.get(name, 0)) for name, v in c.adds.items() if v > int(old.get(name, 0))}
        values = {":n": av(n), ":old": av(int(old.get("n", 0)))}
        names, terms = {"#ttl": k.TTL}, []
        for i, (name, v) in enumerate(sorted(adds.items())):
            names[f"#a{i}"], values[f":a{i}"] = name, av(v)
            terms.append(f"#a{i} :a{i}")
        values[":ttl"] = av(c.ttl)
        try:
            ddb().update_item(TableName=table(), Key=key(pk, sk),
                              UpdateExpression=("ADD " + ", ".join(terms) + " " if terms else "")
                              + "SET n = :n, #ttl = :ttl",
                              ConditionExpression="attribute_not_exists(n) OR n = :old" if "n" not in old
                              else "n = :old", ExpressionAttributeNames=names, ExpressionAttributeValues=values)
        except ClientError as err:
            if error_code(err) != "ConditionalCheckFailedException":
                raise


# -- scans the redirect parked while SQS failed -------------------------------------------------------

def parked(limit: int) -> list[Scan]:
    """Up to ``limit`` parked scans per shard, each carrying its item's key; an item that is not
    a scan of ours is deleted here."""
    out: list[Scan] = []
    for shard in range(PENDING_SHARDS):
        page = ddb().query(TableName=table(), KeyConditionExpression="pk = :pk", Limit=limit,
                           ExpressionAttributeValues={":pk": av(k.pk_pending(shard))}, ConsistentRead=True)
        for raw in page.get("Items", []):
            scan = parse_message(raw["scan"]["S"], parked=(raw["pk"]["S"], raw["sk"]["S"]))
            if scan is None:
                ddb().delete_item(TableName=table(), Key=key(raw["pk"]["S"], raw["sk"]["S"]))
            else:
                out.append(scan)
    return out


def forget(parked_keys: list[tuple[str, str]]) -> None:
    """Delete parked scans' items once their pane is written (one left behind is counted again as
    a repeated row: harmless)."""
    for pk, sk in parked_keys:
        try:
            ddb().delete_item(TableName=table(), Key=key(pk, sk))
        except ClientError as err:
            log.warning("parked scan not forgotten: %s", error_code(err))
