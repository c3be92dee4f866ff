"""What the redirect answers for a shortcode (docs/api.md section 8): one pure
decision over the code's status, its grace, and its account's plan status.

Import-light (the redirect's cold start): the standard library and
``qrpro.domain.plans`` only.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

from qrpro.domain.plans import plan_expired


class Target(NamedTuple):
    """The shortcode's projection that the redirect reads."""

    code_id: str
    scope: str
    url: str
    status: str
    grace_until: int | None


class PlanState(NamedTuple):
    """The account's plan as the redirect reads it (a missing profile is ``None``)."""

    plan: str
    plan_status: str
    plan_status_at: int


class Outcome(StrEnum):
    REDIRECT = "redirect"  # 302 to the destination (and a counted scan)
    PAUSED = "paused"  # 404, "paused by its owner"
    GONE = "gone"  # 410, expired
    NOT_FOUND = "not_found"  # 404, no code here


def outcome(target: Target | None, account: PlanState | None, now: int) -> Outcome:
    """The answer for a scan at ``now``. An expired plan (or a missing profile)
    expires every code of the account; a code past ``grace_until`` is expired
    even before the expiry job has run."""
    if target is None:
        return Outcome.NOT_FOUND
    status = target.status
    if status == "expired" or account is None or plan_expired(account.plan_status, account.plan_status_at, now):
        return Outcome.GONE
    if status == "paused":
        return Outcome.PAUSED
    if status == "grace" and (target.grace_until or 0) <= now:
        return Outcome.GONE
    if status not in ("active", "grace"):
        return Outcome.NOT_FOUND
    return Outcome.REDIRECT
