"""The redirect's answer (domain/redirects.py), the plan-expiry rule and the
shortcode check, table-driven: no AWS, no handler."""

from __future__ import annotations

import pytest

from qrpro.domain.codes import new_shortcode
from qrpro.domain.plans import PLAN_GRACE_SECONDS, plan_expired
from qrpro.domain.redirects import Answer, Outcome, PlanState, Target, answer, outcome
from qrpro.domain.shortcodes import BASE58, SHORTCODE_LEN, is_shortcode

NOW = 1_800_000_000
DAY = 86_400
GRACE_START = NOW - 10 * DAY  # a plan that entered grace 10 days ago: still working


def target(status: str, grace_until: int | None = None) -> Target:
    return Target(code_id="c", scope="USER#u", url="https://example.com", status=status, grace_until=grace_until)


ACTIVE_PLAN = PlanState("business", "active", 0)
GRACE_PLAN = PlanState("business", "grace", GRACE_START)
LAPSED_PLAN = PlanState("business", "grace", NOW - PLAN_GRACE_SECONDS)  # 90 days up, job not run yet
EXPIRED_PLAN = PlanState("business", "expired", NOW - DAY)


@pytest.mark.parametrize(("code", "account", "expected"), [
    (None, ACTIVE_PLAN, Outcome.NOT_FOUND),
    (target("active"), ACTIVE_PLAN, Outcome.REDIRECT),
    (target("active"), GRACE_PLAN, Outcome.REDIRECT),
    (target("grace", NOW + DAY), ACTIVE_PLAN, Outcome.REDIRECT),
    (target("grace", NOW + 1), GRACE_PLAN, Outcome.REDIRECT),
    (target("grace", NOW), ACTIVE_PLAN, Outcome.GONE),  # grace_until reached: expired before the job runs
    (target("grace", NOW - DAY), ACTIVE_PLAN, Outcome.GONE),
    (target("grace", None), ACTIVE_PLAN, Outcome.GONE),
    (target("paused"), ACTIVE_PLAN, Outcome.PAUSED),
    (target("paused"), GRACE_PLAN, Outcome.PAUSED),
    (target("expired"), ACTIVE_PLAN, Outcome.GONE),
    # an expired plan (or a lapsed grace, or no profile at all) expires every code of the account
    (target("active"), EXPIRED_PLAN, Outcome.GONE),
    (target("paused"), EXPIRED_PLAN, Outcome.GONE),
    (target("grace", NOW + DAY), EXPIRED_PLAN, Outcome.GONE),
    (target("active"), LAPSED_PLAN, Outcome.GONE),
    (target("paused"), LAPSED_PLAN, Outcome.GONE),
    (target("active"), None, Outcome.GONE),
    (target("deleted"), ACTIVE_PLAN, Outcome.NOT_FOUND),  # a status the contract does not know
    (target(""), ACTIVE_PLAN, Outcome.NOT_FOUND),
])
def test_outcome(code: Target | None, account: PlanState | None, expected: Outcome) -> None:
    assert outcome(code, account, NOW) is expected


@pytest.mark.parametrize(("status", "since", "expired"), [
    ("active", 0, False),
    ("active", NOW - 10 * PLAN_GRACE_SECONDS, False),
    ("grace", NOW, False),
    ("grace", NOW - PLAN_GRACE_SECONDS + 1, False),  # one second of grace left
    ("grace", NOW - PLAN_GRACE_SECONDS, True),
    ("expired", NOW, True),
])
def test_plan_expired(status: str, since: int, expired: bool) -> None:
    assert plan_expired(status, since, NOW) is expired


@pytest.mark.parametrize(("text", "ok"), [
    ("aBc123x", True), ("zzzzzzz", True), ("abc", False), ("aBc123xy", False), ("", False),
    ("0OIl000", False), ("aBc123/", False), ("favicon.ico", False), ("aBc 23x", False), ("äBc123x", False),
])
def test_is_shortcode(text: str, ok: bool) -> None:
    assert is_shortcode(text) is ok


def test_generated_shortcodes_pass_the_redirects_check() -> None:
    assert len(set(BASE58)) == 58 and SHORTCODE_LEN == 7
    assert all(is_shortcode(new_shortcode()) for _ in range(200))


ROUTING = {"starts_at": NOW - DAY, "expires_at": NOW + DAY, "max_scans": 100,
           "fallback_url": "https://example.com/ended",
           "rules": [{"if": {"country": ["DE"]}, "url": "https://example.de/"},
                     {"if": {"os": ["ios"]}, "url": "https://apps.apple.com/app/id1"}],
           "split": [{"url": "https://example.com/a", "weight": 1}, {"url": "https://example.com/b", "weight": 3}],
           "utm": {"source": "qr"}}


def routed(routing: dict[str, object] | None, scans: int = 0, status: str = "active") -> tuple[Target, int]:
    """A code and the count of its scan-limit counter."""
    return Target(code_id="c", scope="USER#u", url="https://example.com/", status=status, grace_until=None,
                  routing=routing), scans


@pytest.mark.parametrize(("code", "country", "os", "draw", "expected"), [
    (routed(None), "DE", "ios", 0.0, Answer(Outcome.REDIRECT, "https://example.com/", "default")),
    (routed(ROUTING), "DE", "ios", 0.0, Answer(Outcome.REDIRECT, "https://example.de/?utm_source=qr", "rule:0")),
    (routed(ROUTING), "US", "ios", 0.0,
     Answer(Outcome.REDIRECT, "https://apps.apple.com/app/id1?utm_source=qr", "rule:1")),
    (routed(ROUTING), "US", "android", 0.1, Answer(Outcome.REDIRECT, "https://example.com/a?utm_source=qr", "split:0")),
    (routed(ROUTING), "XX", "other", 0.9, Answer(Outcome.REDIRECT, "https://example.com/b?utm_source=qr", "split:1")),
    # max_scans reached (the scan-limit counter has no place left): the fallback, counted as such
    (routed(ROUTING, scans=100), "DE", "ios", 0.0,
     Answer(Outcome.REDIRECT, "https://example.com/ended?utm_source=qr", "fallback")),
    (routed({**ROUTING, "starts_at": NOW + 1}), "DE", "ios", 0.0, Answer(Outcome.NOT_YET)),
    (routed({**ROUTING, "expires_at": NOW, "fallback_url": None}), "DE", "ios", 0.0, Answer(Outcome.ENDED)),
    (routed({"max_scans": 5}, scans=5), "DE", "ios", 0.0, Answer(Outcome.ENDED)),
    # the code's own status comes first: a paused code is paused whatever its routing
    (routed({**ROUTING, "starts_at": NOW + 1}, status="paused"), "DE", "ios", 0.0, Answer(Outcome.PAUSED)),
    ((None, 0), "DE", "ios", 0.0, Answer(Outcome.NOT_FOUND)),
])
def test_answer_routes_a_redirecting_code(code: tuple[Target | None, int], country: str, os: str, draw: float,
                                          expected: Answer) -> None:
    target, count = code
    asked: list[int] = []

    def place(max_scans: int) -> bool:
        asked.append(max_scans)
        return count < max_scans

    assert answer(target, ACTIVE_PLAN, NOW, country, "mobile", os, draw, place) == expected
    # the limit is asked only for a code that has one and that the clock let through
    routing = target.routing if target else None
    limited = bool(routing and routing.get("max_scans") is not None and target is not None
                   and target.status == "active" and routing.get("starts_at", 0) <= NOW  # type: ignore[operator]
                   and routing.get("expires_at", NOW + 1) > NOW)  # type: ignore[operator]
    assert asked == ([routing["max_scans"]] if limited and routing else [])
