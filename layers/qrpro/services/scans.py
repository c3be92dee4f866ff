"""The aggregator's use cases: count a batch exactly once, count the scans the
redirect parked, and the monthly cap rule (past the plan's cap: exactly one
``scans.cap_reached`` event and one email per scope and month; redirects go
on). Design: docs/analytics.md."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import replace

from botocore.exceptions import BotoCoreError, ClientError

from qrpro.data import caps, counting, panes
from qrpro.data.counting import LIFETIME_ONLY, Scan
from qrpro.domain.errors import ServiceUnavailable
from qrpro.domain.plans import plan

log = logging.getLogger("qrpro.scans")

EMAIL_LEASE = 300  # seconds a sender holds the cap email before another may take it over
COMPACTION_SPARE = 120  # seconds a compaction keeps in hand: it starts no day with less left

_cap_done: set[tuple[str, str]] = set()  # (scope, month) whose email went out: no more reads


def aggregate(scans: list[Scan], now: int) -> list[Scan]:
    """Count a batch exactly once: scans of days counted through panes as a pane
    (``count_in_panes``), earlier days' with markers (``count_with_markers``).
    Returns the scans to retry (their messages are reported as failed)."""
    first, _copies = counting.unique(scans)  # a copy's message is acknowledged: the first one carries the scan
    paned = [s for s in first if panes.enabled(s.day)]
    return (count_in_panes(paned, now) if paned else []) + count_with_markers(
        [s for s in first if not panes.enabled(s.day)], now)


def count_in_panes(scans: list[Scan], now: int) -> list[Scan]:
    """One pane per scope and day (the compaction counts it), then, for scans of codes
    with a ``max_scans`` rule, their lifetime count at once (marker and ``scans_total``
    in one transaction: the redirect needs it within seconds). A scan of a day past the
    panes' horizon is dropped (no fold could keep it once). Parked scans' items are
    deleted once their scans are written (a repeat is a repeated row)."""
    kept = [s for s in scans if not panes.too_late(s.day, now)]
    if len(kept) < len(scans):
        log.warning("dropped %d scans older than %d days", len(scans) - len(kept), panes.HORIZON_DAYS)
    failed = panes.put(kept, now)
    unwritten = {s.id for s in failed}
    limited = [replace(s, pending_key=None) for s in kept if s.limited and s.id not in unwritten]
    for chunk in counting.chunks(limited, LIFETIME_ONLY):
        failed += counting.commit(chunk, now, part=LIFETIME_ONLY)
    unwritten = {s.id for s in failed}
    counting.forget([s.pending_key for s in scans if s.pending_key and s.id not in unwritten], now)
    return failed


def count_with_markers(first: list[Scan], now: int) -> list[Scan]:
    """Count scans exactly once (a marker per scan, with the counters, in one transaction)
    and run the monthly cap check for their scopes. Returns the scans to retry."""
    failed: list[Scan] = []
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


def compact(now: int, time_left: Callable[[], float] | None = None) -> tuple[int, int]:
    """The schedule's compaction: each open day's panes folded into the aggregate items
    (set, not added: a repeated or crashed run writes the same values), its codes' lifetime
    counts and the month's count, then the cap check; a day that ended ``CLOSE_AFTER`` ago
    is closed unless a pane arrived meanwhile. Days in a new order each run: one that runs
    short of time (``time_left``, seconds) leaves others to the next. Returns the days folded
    and the days left to the next run."""
    buckets = panes.open_buckets()  # before the panes: their marks' v as read
    random.shuffle(buckets)
    failures: list[Exception] = []
    done = left = 0
    for i, bucket in enumerate(buckets):
        if time_left is not None and time_left() < COMPACTION_SPARE:
            left = len(buckets) - i
            log.warning("compaction out of time: %d of %d days left to the next run", left, len(buckets))
            break
        try:
            _compact(bucket, now)
            done += 1
        except (ClientError, BotoCoreError, ServiceUnavailable) as err:  # the others go on; this one, next run
            log.warning("compaction of a day failed: %s", type(err).__name__)
            failures.append(err)
    if failures:
        raise failures[0]  # the invocation fails: EventBridge retries it, the errors alarm counts it
    return done, left


def _compact(bucket: panes.Bucket, now: int) -> None:
    closing = now >= panes.day_end(bucket.day) + panes.CLOSE_AFTER
    scans = panes.read(bucket.scope, bucket.day, consistent=closing)
    if scans:
        panes.set_days(scans)
        panes.set_lifetimes(scans, bucket.day, now)
        keep = max(plan(s.plan).retention_days for s in scans) * 86_400
        panes.set_month_day(bucket.scope, bucket.day, len(scans), counting.bucket_end(bucket.day[:7]) + keep)
        check_cap(bucket.scope, bucket.day[:7], scans[-1].plan, now)
    if closing and panes.close(bucket):
        return
    if len(scans) != bucket.n:
        panes.note(bucket, len(scans))  # readers read no pane of a day past LIVE_LIMIT


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
        caps.flag_cap_reached(scope, month, caps.cap_event(scope, month, usage.used, cap, plan_name, now))
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
