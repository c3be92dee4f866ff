"""Analytics folding: windows, retention cap, zero-fill, noise floor, top codes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from qrpro.domain import analytics
from qrpro.domain.errors import InsufficientPlan, ValidationFailed
from qrpro.domain.plans import plan

NOW = int(datetime(2026, 4, 10, 15, 30, tzinfo=UTC).timestamp())


def test_default_window_is_30_days_ending_today() -> None:
    win = analytics.window(None, None, plan("business"), NOW)
    assert (win.range, win.days, win.granularity) == ("30d", 30, "day")
    assert len(win.buckets) == 30
    assert win.buckets[0] == "2026-03-12" and win.buckets[-1] == "2026-04-10"


@pytest.mark.parametrize(("plan_name", "range_", "days"), [
    ("solo", "3y", 365), ("solo", "1y", 365), ("business", "3y", 730), ("business", "1y", 365),
    ("team", "3y", 1095), ("agency", "3y", 1095), ("business", "7d", 7), ("business", "90d", 90),
])
def test_range_is_capped_to_retention(plan_name: str, range_: str, days: int) -> None:
    win = analytics.window(range_, "day", plan(plan_name), NOW)
    assert (win.range, win.days, len(win.buckets)) == (range_, days, days)
    assert win.buckets[-1] == "2026-04-10"


def test_hourly_window_is_168_hours_ending_this_hour() -> None:
    win = analytics.window("7d", "hour", plan("team"), NOW)
    assert (win.days, win.granularity, len(win.buckets)) == (7, "hour", 168)
    assert win.buckets[-1] == "2026-04-10-15" and win.buckets[0] == "2026-04-03-16"


def test_hourly_needs_team_or_agency() -> None:
    with pytest.raises(InsufficientPlan) as err:
        analytics.window("7d", "hour", plan("business"), NOW)
    assert err.value.body() == {"error": "insufficient_plan", "plan": "business", "required": "team",
                                "message": InsufficientPlan.default_message}


def test_hourly_needs_range_7d() -> None:
    with pytest.raises(ValidationFailed) as err:
        analytics.window("30d", "hour", plan("agency"), NOW)
    assert err.value.extra["field"] == "granularity"
    with pytest.raises(ValidationFailed):
        analytics.window(None, "hour", plan("agency"), NOW)  # default range is 30d


@pytest.mark.parametrize(("range_", "granularity", "field"), [
    ("2d", None, "range"), ("", None, "range"), ("30D", None, "range"), (None, "week", "granularity"),
    (None, "", "granularity"),
])
def test_bad_query_values(range_: str | None, granularity: str | None, field: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        analytics.window(range_, granularity, plan("team"), NOW)
    assert err.value.extra["field"] == field


def test_fold_zero_fills_sums_and_folds_small_countries() -> None:
    win = analytics.window("7d", "day", plan("business"), NOW)
    items = [
        ("2026-04-04", {"pk": "AGG#c", "sk": "D#2026-04-04", "total": 10, "c_US": 6, "c_CA": 4, "d_mobile": 7,
                        "d_desktop": 3, "ttl": 9}),
        ("2026-04-10", {"total": 9, "c_US": 3, "c_DE": 2, "c_XX": 2, "c_FR": 2, "d_mobile": 5, "d_tablet": 4}),
        ("2026-04-10", {"total": 1, "c_CA": 1, "d_unknown": 1}),  # another code, same day
        ("2026-03-01", {"total": 100, "c_US": 100, "d_mobile": 100}),  # outside the window: ignored
    ]
    out = analytics.fold(win, items)
    assert out == {
        "range": "7d", "days": 7, "granularity": "day", "total": 20,
        "timeseries": [{"bucket": "2026-04-04", "scans": 10}, {"bucket": "2026-04-05", "scans": 0},
                       {"bucket": "2026-04-06", "scans": 0}, {"bucket": "2026-04-07", "scans": 0},
                       {"bucket": "2026-04-08", "scans": 0}, {"bucket": "2026-04-09", "scans": 0},
                       {"bucket": "2026-04-10", "scans": 10}],
        # US 9 and CA 5 stay; DE 2, FR 2 (under 5) and unknown XX 2 are Other, last
        "by_country": [{"key": "US", "total": 9}, {"key": "CA", "total": 5}, {"key": "Other", "total": 6}],
        "by_device": [{"key": "mobile", "total": 12}, {"key": "tablet", "total": 4},
                      {"key": "desktop", "total": 3}, {"key": "unknown", "total": 1}],
        "by_os": [{"key": "other", "total": 20}],  # written before OS classes
        "by_target": [{"key": "default", "total": 20}],  # written before routing: every scan went to url
        "bots": 0,
    }
    assert sum(p["scans"] for p in out["timeseries"]) == out["total"]
    assert sum(p["total"] for p in out["by_country"]) == out["total"]
    assert sum(p["total"] for p in out["by_device"]) == out["total"]


def test_by_os_sums_to_total_under_the_floor_and_bots_count_apart() -> None:
    win = analytics.window("7d", "day", plan("business"), NOW)
    items = [("2026-04-10", {"total": 20, "o_ios": 9, "o_android": 6, "o_windows": 3, "o_linux": 1, "bots": 4}),
             ("2026-04-09", {"total": 2, "bots": 1})]  # counted before OS classes: other
    out = analytics.fold(win, items)
    assert out["by_os"] == [{"key": "ios", "total": 9}, {"key": "android", "total": 6},
                            {"key": "other", "total": 7}]  # windows 3 and linux 1 under the floor, 2 unclassed
    assert sum(p["total"] for p in out["by_os"]) == out["total"] == 22
    assert out["bots"] == 5


def test_fold_of_nothing_is_all_zero_without_other() -> None:
    win = analytics.window("30d", None, plan("business"), NOW)
    out = analytics.fold(win, [])
    assert out["total"] == 0 and out["by_country"] == [] and out["by_device"] == [] and out["by_target"] == []
    assert [p["scans"] for p in out["timeseries"]] == [0] * 30


def test_country_exactly_at_the_floor_is_kept_and_ties_sort_by_key() -> None:
    assert analytics.by_country({"NL": 5, "BE": 5, "LU": 4}) == [
        {"key": "BE", "total": 5}, {"key": "NL", "total": 5}, {"key": "Other", "total": 4}]
    assert analytics.by_country({"NL": 4}) == [{"key": "Other", "total": 4}]


def test_top_codes_are_the_ten_largest() -> None:
    per_code = {f"c{i:02d}": i for i in range(15)}
    top = analytics.top_codes(per_code)
    assert [cid for cid, _ in top] == [f"c{i:02d}" for i in range(14, 4, -1)]
    assert analytics.top_codes({"b": 3, "a": 3, "z": 0}) == [("a", 3), ("b", 3)]


def test_sum_codes_reads_k_counters() -> None:
    items = [{"pk": "SAGG#x", "sk": "K#2026-04-09", "k_a": 2, "k_b": 1, "ttl": 5}, {"k_a": 3}]
    assert analytics.sum_codes(items) == {"a": 5, "b": 1}


def test_by_device_counts_names_it_does_not_know_as_unknown() -> None:
    assert analytics.by_device({"mobile": 2, "watch": 1, "unknown": 1, "tablet": 0}) == [
        {"key": "mobile", "total": 2}, {"key": "unknown", "total": 2}]
    assert analytics.fold_devices({"desktop": 1, "mobile": 3}) == [("mobile", 3), ("desktop", 1)]
    assert analytics.fold_countries({"US": 5, "XX": 9, "FR": 4}) == [("US", 5), ("Other", 13)]


def test_fold_counts_targets_under_the_noise_floor_as_other() -> None:
    win = analytics.window("7d", "day", plan("business"), NOW)
    items = [
        ("2026-04-09", {"total": 12, "t_rule:0": 6, "t_split:1": 3, "t_fallback": 3}),
        ("2026-04-10", {"total": 7, "t_rule:0": 2, "t_split:1": 3, "t_default": 1, "t_rule:3": 1}),
        ("2026-04-10", {"total": 4}),  # a bucket counted before routing: 4 more to default
    ]
    out = analytics.fold(win, items)
    # rule:0 8 and split:1 6 stay; default 5 is at the floor; fallback 3 and rule:3 1 fold into other
    assert out["by_target"] == [{"key": "rule:0", "total": 8}, {"key": "split:1", "total": 6},
                                {"key": "default", "total": 5}, {"key": "other", "total": 4}]
    assert sum(p["total"] for p in out["by_target"]) == out["total"] == 23
    assert analytics.fold_targets({"rule:0": 4}) == [("other", 4)]
