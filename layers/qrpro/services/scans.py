"""The aggregator's use cases: count a batch exactly once, count the scans the
redirect parked, and the monthly cap rule (past the plan's cap: exactly one
``scans.cap_reached`` event and one email per scope and month; redirects go
on). Design: docs/analytics.md."""

from __future__ import annotations

import logging

from botocore.exceptions import BotoCoreError, ClientError

from qrpro.data import caps, counting
from qrpro.data.counting import Scan
from qrpro.domain.plans import plan

log = logging.getLogger("qrpro.scans")

EMAIL_LEASE = 300  # seconds a sender holds the cap email before another may take it over

_cap_done: set[tuple[str, str]] = set()  # (scope, month) whose email went out: no more reads


def aggregate(scans: list[Scan], now: int) -> list[Scan]:
    """Count a batch (exactly once) and run the monthly cap check for its scopes.
    Returns the scans to retry (their messages are reported as failed)."""
    failed: list[Scan] = []
    first, _copies = counting.unique(scans)  # a copy's message is acknowledged: the first one carries the scan
    for chunk in counting.chunks(first):
        left = counting.commit(chunk, now)
        failed += left
        if left:
            continue
        for scope, month, plan_name in sorted({(s.scope, s.month, s.plan) for s in chunk}):
            try:
                check_cap(scope, month, plan_name, now)
            except (ClientError, BotoCoreError) as err:
                # Redelivery is harmless (markers) and runs the check again.
                log.warning("cap check failed: %s", type(err).__name__)
                failed += [s for s in chunk if s.scope == scope and s.month == month]
    return failed


def drain_pending(now: int, limit: int = 100) -> int:
    """Count scans the redirect parked in DynamoDB because SQS failed. Returns
    how many were counted. Safe to run concurrently (markers + deletes in the
    same transaction)."""
    parked = counting.parked(limit)
    if not parked:
        return 0
    return len(parked) - len(aggregate(parked, now))


def check_cap(scope: str, month: str, plan_name: str, now: int) -> None:
    """Past the plan's cap: flag it with its event (once, whichever aggregator
    gets there first), then send the email unless it went out already."""
    if (scope, month) in _cap_done:
        return
    cap = plan(plan_name).scans_per_month
    usage = caps.month_usage(scope, month)
    if usage.used < cap:
        return
    email_state = usage.cap_email
    if not usage.cap_notified:
        caps.flag_cap_reached(scope, month, cap, caps.cap_event(scope, month, usage.used, cap, plan_name, now))
        email_state = "pending"  # ours or the first aggregator's: the email is still to send
    if email_state == "sent" or _send_cap_email(scope, month, usage.used, cap, plan_name, now):
        _cap_done.add((scope, month))


def cap_email(month: str, used: int, cap: int, plan_name: str) -> tuple[str, str]:
    """The cap email's subject and text."""
    return (f"QR Pro: your scans passed this month's cap ({month})",
            f"Your codes have been scanned {used:,} times in {month}, past the {cap:,} scans "
            f"a month of the {plan_name} plan.\n\nEvery code keeps redirecting and every scan "
            "is still counted. To raise the cap, move to a larger plan.\n\n- QR Pro\n")


def _send_cap_email(scope: str, month: str, used: int, cap: int, plan_name: str, now: int) -> bool:
    """Claim the email (one sender at a time), send it, mark it sent. False:
    sent already, or another aggregator is sending it."""
    if not caps.claim_email(scope, month, now, EMAIL_LEASE):
        return False
    try:
        to = caps.owner_email(scope)
        if to:
            caps.send_email(to, *cap_email(month, used, cap, plan_name))
    except (ClientError, BotoCoreError):
        caps.set_email_state(scope, month, "pending")  # a later batch (the redelivery) sends it
        raise
    caps.set_email_state(scope, month, "sent")
    return True
