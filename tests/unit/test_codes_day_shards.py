"""The layout of a scope's per-code day counters (``SAGG#{scope}`` / ``K#{day}#{shard}``):
as many shards as keep each item about one write unit, from what the scan says of its
scope (docs/analytics.md, "Items")."""

from __future__ import annotations

import json
import uuid

import pytest

from qrpro.data import keys as k
from qrpro.data.counting import fold
from qrpro.domain.scan_codec import Scan, parse_message

DAY, HOUR = "2026-11-30", "2026-11-30-12"


def day_of_scans(codes: int, layout: int) -> dict[tuple[str, str], dict[str, int]]:
    """One scan of each of ``codes`` codes, scanned when the scope said it had ``layout`` codes: the K# items."""
    scans = [Scan(id=str(i), code_id=str(uuid.uuid5(uuid.NAMESPACE_URL, str(i))), scope="TEAM#t", plan="agency",
                  hour=HOUR, country="US", device="mobile", codes=layout) for i in range(codes)]
    return {key: c.adds for key, c in fold(scans).items() if key[1].startswith("K#")}


def size(pk: str, sk: str, counters: dict[str, int]) -> int:
    """DynamoDB's item size (names plus values) of a K# item with these counters and its ttl."""
    return len("pk") + len(pk) + len("sk") + len(sk) + len("ttl") + 6 + sum(len(n) + 2 for n in counters)


@pytest.mark.parametrize(("codes", "shards"), [(0, 8), (1, 1), (16, 1), (17, 2), (25, 2), (100, 8), (500, 32),
                                               (2_500, 256), (10_000, 1_024), (10**6, 1_024)])
def test_shards_by_the_scopes_codes(codes: int, shards: int) -> None:
    assert k.codes_day_shards(codes) == shards


def test_a_busy_agency_day_stays_within_a_write_unit_per_item() -> None:
    items = day_of_scans(10_000, 10_000)
    assert len(items) == 1_024
    assert max(size(pk, sk, c) for (pk, sk), c in items.items()) < 1_024
    # the layout it replaces: 8 shards of ~50 KB, each update billed ~50 write units (twice: a transaction)
    assert min(size(pk, sk, c) for (pk, sk), c in day_of_scans(10_000, 0).items()) > 45_000


def test_the_layout_comes_from_the_message() -> None:
    body = {"id": "a", "code_id": "c", "scope": "TEAM#t", "plan": "team", "hour": HOUR, "country": "US",
            "device": "mobile", "n": 2_500}
    scan = parse_message(json.dumps(body))
    assert scan is not None and scan.codes == 2_500
    (sk,) = [sk for (_, sk) in fold([scan]) if sk.startswith("K#")]
    assert sk == k.sk_codes_day(DAY, "c", 256)
    for bad in (None, -1, 0, "2500", True, 10**8):  # old messages without it, or nonsense: the default layout
        again = parse_message(json.dumps({**body, "n": bad}))
        assert again is not None and again.codes == 0


def test_a_code_counted_under_two_layouts_in_one_day_is_summed_by_readers() -> None:
    """The scope grew past a power of two during the day: the code's counter sits in two
    items, and readers add up every shard of the day."""
    from qrpro.domain.analytics import sum_codes

    before, after = day_of_scans(3, 16), day_of_scans(3, 10_000)
    assert set(before).isdisjoint(after)
    totals = sum_codes([*before.values(), *after.values()])
    assert sorted(totals.values()) == [2, 2, 2]
