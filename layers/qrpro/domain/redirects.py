"""What the redirect answers for a shortcode (docs/api.md sections 8 and 14): one
pure decision over the code's status, its grace, its account's plan status and
the code's routing (``qrpro.domain.routing``: where this scan goes).

Import-light (the redirect's cold start): the standard library,
``qrpro.domain.plans`` and ``qrpro.domain.routing`` only.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any, NamedTuple

from qrpro.domain.plans import plan_expired
from qrpro.domain.routing import REDIRECT, route
from qrpro.domain.statuses import Status


class Target(NamedTuple):
    """The shortcode's projection that the redirect reads."""

    code_id: str
    scope: str
    url: str
    status: str
    grace_until: int | None
    routing: dict[str, Any] | None = None  # the stored form of routing_model, parsed once per cache fill
    scans_total: int = 0  # what earlier designs counted on the item: a new scan-limit counter starts there


class PlanState(NamedTuple):
    """The account's plan as the redirect reads it (a missing profile is ``None``)."""

    plan: str
    plan_status: str
    plan_status_at: int
    codes: int = 0  # the scope's active and paused codes (its scans' per-code counters are laid out by it)


class Outcome(StrEnum):
    REDIRECT = "redirect"  # 302 to the destination (and a counted scan)
    PAUSED = "paused"  # 404, "paused by its owner"
    GONE = "gone"  # 410, expired
    NOT_FOUND = "not_found"  # 404, no code here
    NOT_YET = "not_yet"  # 404, routing's starts_at is in the future (not counted)
    ENDED = "ended"  # 410, routing's expires_at or max_scans passed with no fallback_url (not counted)


def outcome(target: Target | None, account: PlanState | None, now: int) -> Outcome:
    """The answer for a scan at ``now``. An expired plan (or a missing profile)
    expires every code of the account; a code past ``grace_until`` is expired
    even before the expiry job has run."""
    if target is None:
        return Outcome.NOT_FOUND
    status = target.status
    if status == Status.EXPIRED or account is None or plan_expired(account.plan_status, account.plan_status_at, now):
        return Outcome.GONE
    if status == Status.PAUSED:
        return Outcome.PAUSED
    if status == Status.GRACE and (target.grace_until or 0) <= now:
        return Outcome.GONE
    if status not in (Status.ACTIVE, Status.GRACE):
        return Outcome.NOT_FOUND
    return Outcome.REDIRECT


class Answer(NamedTuple):
    """The redirect's answer: a page (``location`` None) or a 302 to ``location``,
    counted under ``target`` (``default``, ``rule:<i>``, ``split:<i>``, ``fallback``)."""

    outcome: Outcome
    location: str | None = None
    target: str | None = None


_ROUTED = {404: Outcome.NOT_YET, 410: Outcome.ENDED}


def answer(target: Target | None, account: PlanState | None, now: int, country: str, device: str, os: str,
           draw: float, place: Callable[[int], bool] | None = None) -> Answer:
    """``outcome``, then, for a code that redirects, where this scan goes (section 14):
    ``country``, ``device`` and ``os`` are the visitor's classes, ``draw`` a uniform
    random number in [0, 1) for a split, ``place`` the scan limit's answer (``route``)."""
    state = outcome(target, account, now)
    if state is not Outcome.REDIRECT or target is None:
        return Answer(state)
    status, location, where = route(target.routing, target.url, now, country, device, os, draw, place)
    if status != REDIRECT:
        return Answer(_ROUTED[status])
    return Answer(Outcome.REDIRECT, location, where)
