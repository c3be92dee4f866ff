"""Analytics reads (docs/api.md section 7): the aggregates the scan
aggregator (``qrpro.data.counting``) or the panes' compaction wrote, the days
still open folded from their panes (``qrpro.data.panes``), all folded by
``qrpro.domain.analytics``. Readers skip items past their ``ttl`` (DynamoDB
deletes them within days)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from qrpro.data import codes, groups, panes
from qrpro.data import keys as k
from qrpro.data.panes import Live
from qrpro.data.table import av, batch_get, key, or_not_found, query_items, table
from qrpro.domain import analytics
from qrpro.domain.analytics import Window
from qrpro.domain.clock import days_back
from qrpro.domain.errors import NotFound
from qrpro.domain.plans import plan


def _query(pk: str, low: str, high: str) -> Iterator[dict[str, Any]]:
    """One Query over a key range (paged; ≤ 1,095 small items fit in one or two pages)."""
    return query_items({
        "TableName": table(), "KeyConditionExpression": "pk = :pk AND sk BETWEEN :a AND :b",
        "ExpressionAttributeValues": {":pk": av(pk), ":a": av(low), ":b": av(high)}})


def _items(pk: str, low: str, high: str, live: Live, now: int) -> list[dict[str, Any]]:
    """The aggregate items of ``pk`` in [low, high], open days from their panes, unexpired."""
    return [i for i in live.merge(pk, _query(pk, low, high), low, high) if int(i.get(k.TTL) or now) >= now]


def _series(pk: str, win: Window, live: Live, now: int) -> list[tuple[str, dict[str, Any]]]:
    sk = k.sk_hour if win.hourly else k.sk_day
    return [(item["sk"][2:], item) for item in _items(pk, sk(win.buckets[0]), sk(win.buckets[-1]), live, now)]


def code_analytics(scope: str, code_id: str, plan_name: str, range_: str | None, granularity: str | None,
                   now: int) -> dict[str, Any]:
    """7.1: one Query on the code's aggregates."""
    win = analytics.window(range_, granularity, plan(plan_name), now)
    if codes.get_item(scope, code_id) is None:
        raise NotFound()
    return analytics.fold(win, _series(k.pk_code_agg(code_id), win, panes.live(scope), now))


def scope_analytics(scope: str, plan_name: str, range_: str | None, granularity: str | None,
                    now: int) -> dict[str, Any]:
    """7.2: one Query on the scope's day (or hour) aggregates, one on its
    per-code-day items, one BatchGetItem for the top codes' names."""
    win = analytics.window(range_, granularity, plan(plan_name), now)
    live = panes.live(scope)
    out = analytics.fold(win, _series(k.pk_scope_agg(scope), win, live, now))
    # Per-code counters are daily: with granularity=hour, top_codes covers the
    # same range's UTC days (docs/analytics.md).
    days = days_back(now, win.days)
    first, last = k.codes_day_range(days[0], days[-1])
    per_code = analytics.sum_codes(_items(k.pk_scope_agg(scope), first, last, live, now))
    out["top_codes"] = _top_codes(scope, per_code)
    return out


def _top_codes(scope: str, per_code: dict[str, int]) -> list[dict[str, Any]]:
    top = analytics.top_codes(per_code)
    if not top:
        return []
    named = {item["id"]: item for item in batch_get([key(scope, k.sk_code(cid)) for cid, _ in top],
                                                     projection="id, shortcode, label")}
    return [{"id": cid, "shortcode": named[cid].get("shortcode"), "label": named[cid].get("label"), "total": n}
            for cid, n in top if cid in named]


def group_analytics(scope: str, group_id: str, plan_name: str, range_: str | None, granularity: str | None,
                    now: int) -> dict[str, Any]:
    """7.3: the group's current codes, then one Query per code, in parallel."""
    win = analytics.window(range_, granularity, plan(plan_name), now)
    or_not_found(groups.get_item(scope, group_id))  # 404 for a missing or foreign group
    code_ids = groups.code_ids(scope, group_id)
    pairs: list[tuple[str, dict[str, Any]]] = []
    if code_ids:
        live = panes.live(scope)
        with ThreadPoolExecutor(max_workers=min(8, len(code_ids))) as pool:
            for series in pool.map(lambda cid: _series(k.pk_code_agg(cid), win, live, now), code_ids):
                pairs += series
    return analytics.fold(win, pairs)
