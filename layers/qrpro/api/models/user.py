"""The user and their usage (docs/api.md section 11)."""

from __future__ import annotations

from pydantic import Field

from qrpro.api.models.base import Documented, Scope, examples
from qrpro.domain.plans import PlanName, PlanStatus


class Limits(Documented):
    codes: int
    requests_per_day: int
    scans_per_month: int
    retention_days: int
    hourly_analytics: bool


class User(Documented):
    model_config = examples({"id": "3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b9a", "email": "ana@example.com",
                              "plan": "business", "plan_status": "active", "scope": {"type": "user"},
                              "current_team_id": None,
                              "limits": {"codes": 500, "requests_per_day": 1000, "scans_per_month": 1000000,
                                         "retention_days": 730, "hourly_analytics": False}})

    id: str
    email: str
    plan: PlanName
    plan_status: PlanStatus
    scope: Scope
    current_team_id: str | None
    limits: Limits


class RequestsToday(Documented):
    used: int
    limit: int
    reset_at: int = Field(description="unix seconds of the next UTC midnight")


class CodesUsed(Documented):
    used: int = Field(description="active + paused codes")
    limit: int


class ScansThisMonth(Documented):
    used: int
    cap: int
    month: str = Field(description="YYYY-MM (UTC)")


class Usage(Documented):
    model_config = examples({"requests_today": {"used": 12, "limit": 1000, "reset_at": 1713398400},
                              "codes": {"used": 42, "limit": 500},
                              "scans_this_month": {"used": 5210, "cap": 1000000, "month": "2026-11"}})

    requests_today: RequestsToday
    codes: CodesUsed
    scans_this_month: ScansThisMonth


class ExportLink(Documented):
    """Where to download the export ZIP."""

    url: str = Field(description="presigned S3 URL of the ZIP, valid 15 minutes")
    expires_at: int = Field(description="unix seconds after which the URL no longer works")
