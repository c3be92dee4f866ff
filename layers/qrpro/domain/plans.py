"""Plans and their limits (docs/api.md section 3)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from typing_extensions import TypeAliasType

# Named schemas of the OpenAPI document.
PlanName = TypeAliasType("PlanName", Literal["solo", "business", "team", "agency"])


class PlanStatus(StrEnum):
    ACTIVE = "active"
    GRACE = "grace"
    EXPIRED = "expired"


@dataclass(frozen=True)
class Plan:
    name: str
    api: bool
    requests_per_day: int
    codes: int
    scans_per_month: int
    retention_days: int
    hourly_analytics: bool

    def limits(self) -> dict[str, int | bool]:
        return {
            "codes": self.codes,
            "requests_per_day": self.requests_per_day,
            "scans_per_month": self.scans_per_month,
            "retention_days": self.retention_days,
            "hourly_analytics": self.hourly_analytics,
        }


PLANS: dict[str, Plan] = {
    "solo": Plan("solo", False, 0, 25, 100_000, 365, False),
    "business": Plan("business", True, 1_000, 500, 1_000_000, 730, False),
    "team": Plan("team", True, 10_000, 2_500, 10_000_000, 1_095, True),
    "agency": Plan("agency", True, 50_000, 10_000, 30_000_000, 1_095, True),
}

PLAN_NAMES = tuple(PLANS)
# A plan in `grace` keeps working this long after it entered grace, then expires.
PLAN_GRACE_SECONDS = 90 * 86_400


def plan(name: str) -> Plan:
    return PLANS.get(name, PLANS["solo"])


def plan_expired(plan_status: str, plan_status_at: int, now: int) -> bool:
    """Expired, or in plan grace past the 90 days (before the expiry job has run)."""
    return plan_status == PlanStatus.EXPIRED or (
        plan_status == PlanStatus.GRACE and plan_status_at + PLAN_GRACE_SECONDS <= now)
