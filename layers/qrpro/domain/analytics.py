"""Analytics folding (docs/api.md section 7): the window a request covers after
the plan's retention cap, zero-filled timeseries, the noise floor that folds
small countries into ``Other``, device totals and top codes. Pure functions:
the data layer hands in aggregate items, this module shapes the answer."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from typing_extensions import TypeAliasType

from qrpro.domain.clock import days_back, hours_back
from qrpro.domain.devices import DEVICES, UNKNOWN, UNKNOWN_COUNTRY
from qrpro.domain.errors import InsufficientPlan, ValidationFailed
from qrpro.domain.plans import Plan

RANGES: dict[str, int] = {"7d": 7, "30d": 30, "90d": 90, "1y": 365, "3y": 1095}
GRANULARITIES = ("day", "hour")
# The named schemas of the OpenAPI document (the tuples above are their values; a unit test holds them equal).
AnalyticsRange = TypeAliasType("AnalyticsRange", Literal["7d", "30d", "90d", "1y", "3y"])
Granularity = TypeAliasType("Granularity", Literal["day", "hour"])
Device = TypeAliasType("Device", Literal["mobile", "tablet", "desktop", "unknown"])  # devices.DEVICES
OsFamily = TypeAliasType("OsFamily", Literal["ios", "android", "windows", "macos", "linux", "other"])  # OS_FAMILIES
DEFAULT_RANGE, DEFAULT_GRANULARITY = "30d", "day"
HOURLY_RANGE = "7d"
DEFAULT_TARGET = "default"
NOISE_FLOOR = 5  # countries with fewer scans in the window are folded into "Other"
OTHER = "Other"
_FOLDED = frozenset({UNKNOWN_COUNTRY, OTHER})  # always in Other, whatever their count
_DEVICE_SET = frozenset(DEVICES)
TOP_CODES = 10
TARGET_OTHER = "other"  # routing targets under the noise floor (docs/api.md section 14)
COUNTRY_PREFIX, DEVICE_PREFIX, TARGET_PREFIX, OS_PREFIX, TOTAL, BOTS = "c_", "d_", "t_", "o_", "total", "bots"
OS_OTHER = "other"  # OS families under the noise floor, and scans counted before OS classes (section 16.3)


@dataclass(frozen=True)
class Window:
    """What one request covers: ``buckets`` oldest first, ending with the current one."""

    range: str
    days: int
    granularity: str
    buckets: tuple[str, ...]

    @property
    def hourly(self) -> bool:
        return self.granularity == "hour"


def window(range_: str | None, granularity: str | None, plan: Plan, now: int) -> Window:
    """Validate the query and cap it to the plan's retention (capped, not an error)."""
    range_ = DEFAULT_RANGE if range_ is None else range_
    granularity = DEFAULT_GRANULARITY if granularity is None else granularity
    if range_ not in RANGES:
        raise ValidationFailed("range", f"must be one of {', '.join(RANGES)}")
    if granularity not in GRANULARITIES:
        raise ValidationFailed("granularity", "must be day or hour")
    days = min(RANGES[range_], plan.retention_days)
    if granularity == "hour":
        if not plan.hourly_analytics:
            raise InsufficientPlan(plan=plan.name, required="team")
        if range_ != HOURLY_RANGE:
            raise ValidationFailed("granularity", f"hourly analytics need range={HOURLY_RANGE}")
        return Window(range_, days, granularity, tuple(hours_back(now, days * 24)))
    return Window(range_, days, granularity, tuple(days_back(now, days)))


def _largest_first(kv: tuple[str, int]) -> tuple[int, str]:
    return -kv[1], kv[0]


def _ranked(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    return sorted([kv for kv in counts.items() if kv[1] > 0], key=_largest_first)


def _listed(pairs: list[tuple[str, int]]) -> list[dict[str, Any]]:
    return [{"key": k, "total": v} for k, v in pairs]


def fold(win: Window, items: Iterable[tuple[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """The response of 7.1/7.2/7.3 from ``(bucket, counters)`` pairs.

    Counters are aggregate items (``total``, ``c_{CC}``, ``d_{device}``, ``t_{target}``,
    ``o_{os}``, ``bots``); several pairs may share a bucket (a group's codes); pairs outside the
    window are ignored, so every number comes from the same items and ``total`` equals the
    sum of the timeseries, of ``by_country``, of ``by_device``, of ``by_os`` and of
    ``by_target`` (items written before routing have no ``t_`` counter: their scans went to
    ``default``; before OS classes, no ``o_``: ``other``). ``bots`` is counted apart.
    """
    series = dict.fromkeys(win.buckets, 0)
    countries: dict[str, int] = {}
    devices: dict[str, int] = {}
    targets: dict[str, int] = {}
    oses: dict[str, int] = {}
    bots = 0
    for bucket, counters in items:
        if bucket not in series:
            continue
        untargeted = unclassed = 0
        for name, value in counters.items():
            if name == TOTAL:
                series[bucket] += int(value)
                untargeted += int(value)
                unclassed += int(value)
            elif name == BOTS:
                bots += int(value)
            elif name.startswith(TARGET_PREFIX):
                target = name[len(TARGET_PREFIX):]
                targets[target] = targets.get(target, 0) + int(value)
                untargeted -= int(value)
            elif name.startswith(OS_PREFIX):
                family = name[len(OS_PREFIX):]
                oses[family] = oses.get(family, 0) + int(value)
                unclassed -= int(value)
            elif name.startswith(COUNTRY_PREFIX):
                cc = name[len(COUNTRY_PREFIX):]
                countries[cc] = countries.get(cc, 0) + int(value)
            elif name.startswith(DEVICE_PREFIX):
                dev = name[len(DEVICE_PREFIX):]
                devices[dev] = devices.get(dev, 0) + int(value)
        if untargeted > 0:
            targets[DEFAULT_TARGET] = targets.get(DEFAULT_TARGET, 0) + untargeted
        if unclassed > 0:
            oses[OS_OTHER] = oses.get(OS_OTHER, 0) + unclassed
    return {
        "range": win.range, "days": win.days, "granularity": win.granularity,
        "total": sum(series.values()),
        "timeseries": [{"bucket": b, "scans": n} for b, n in series.items()],
        "by_country": by_country(countries),
        "by_device": by_device(devices),
        "by_os": _listed(fold_oses(oses)),
        "by_target": _listed(fold_targets(targets)),
        "bots": bots,
    }


def by_country(counts: Mapping[str, int]) -> list[dict[str, Any]]:
    """Largest first; countries under the noise floor and unknown ones folded
    into ``Other``, listed last and only when non-zero."""
    return _listed(fold_countries(counts))


def fold_countries(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    """The noise floor: ``by_country`` as ``(key, total)`` pairs. The export folds
    each code-day's countries with this same function (docs/export.md), so it is
    kept cheap: it runs for every code-day of an export."""
    return _floored(counts, OTHER, _FOLDED)


def fold_targets(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    """``by_target`` as ``(key, total)`` pairs: largest first, targets under the noise
    floor folded into ``other`` (listed last, only when non-zero), so that a rule per
    country cannot name a country the floor hides (the export folds each code-day alike)."""
    return _floored(counts, TARGET_OTHER)


def fold_oses(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    """``by_os`` as ``(key, total)`` pairs: largest first, families under the noise floor folded
    into ``other`` (listed last, only when non-zero; the export folds each code-day alike)."""
    plain = {OS_OTHER: 0, **counts}
    other = plain.pop(OS_OTHER)
    out = _floored(plain, OS_OTHER)
    if other:
        if out and out[-1][0] == OS_OTHER:
            out[-1] = (OS_OTHER, out[-1][1] + other)
        else:
            out.append((OS_OTHER, other))
    return out


def with_other_os(total: int, oses: Mapping[str, int]) -> Mapping[str, int]:
    """A bucket's OS counters completed to its ``total``: scans counted before OS classes are ``other``."""
    unclassed = total - sum(oses.values())
    return oses if unclassed <= 0 else {**oses, OS_OTHER: oses.get(OS_OTHER, 0) + unclassed}


def with_default_target(total: int, targets: Mapping[str, int]) -> Mapping[str, int]:
    """A bucket's target counters completed to its ``total``: scans counted before routing (no
    ``t_`` counter) went to ``default``."""
    untargeted = total - sum(targets.values())
    if untargeted <= 0:
        return targets
    return {**targets, DEFAULT_TARGET: targets.get(DEFAULT_TARGET, 0) + untargeted}


def _floored(counts: Mapping[str, int], other_key: str, folded: frozenset[str] = frozenset()) -> list[tuple[str, int]]:
    """Largest first; keys under the noise floor (and ``folded`` ones) summed into ``other_key``, last."""
    kept: dict[str, int] = {}
    other = 0
    for name, n in counts.items():
        if n < NOISE_FLOOR or name in folded:
            other += n
        else:
            kept[name] = n
    out = _ranked(kept)
    if other > 0:
        out.append((other_key, other))
    return out


def by_device(counts: Mapping[str, int]) -> list[dict[str, Any]]:
    """Largest first, non-zero only; a device name the API does not know counts as ``unknown``."""
    return _listed(fold_devices(counts))


def fold_devices(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    """``by_device`` as ``(key, total)`` pairs (the export's per code-day folding)."""
    if all(dev in _DEVICE_SET for dev in counts):
        return _ranked(counts)
    known: dict[str, int] = {}
    for dev, n in counts.items():
        dev = dev if dev in _DEVICE_SET else UNKNOWN
        known[dev] = known.get(dev, 0) + n
    return _ranked(known)


def top_codes(per_code: Mapping[str, int], limit: int = TOP_CODES) -> list[tuple[str, int]]:
    """The ``limit`` codes with most scans (ties by id, for a stable order)."""
    ranked = sorted(((cid, n) for cid, n in per_code.items() if n > 0), key=lambda kv: (-kv[1], kv[0]))
    return ranked[:limit]


def sum_codes(items: Iterable[Mapping[str, Any]], prefix: str = "k_") -> dict[str, int]:
    """Per-code totals from scope per-code-day items (``k_{code_id}`` counters)."""
    totals: dict[str, int] = {}
    for item in items:
        for name, value in item.items():
            if name.startswith(prefix):
                cid = name[len(prefix):]
                totals[cid] = totals.get(cid, 0) + int(value)
    return totals
