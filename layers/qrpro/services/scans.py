"""How a scan is counted, as use cases (docs/analytics.md, "How a scan is counted"):

1. ``aggregate``: the scans aggregator writes each SQS batch as panes (one per
   scope, day and plan), the redirect's parked scans too (``drain_pending``);
2. ``sweep``: every minute the fan-out records a fence and queues one fold job
   per open day;
3. ``fold``: the compaction folds a day's panes from its checkpoint to the
   job's fence, a bounded step at a time, each scan once, into the aggregates
   and the month's count (the cap flag and its event in the same write), then
   closes a day that ended and has nothing left;
4. ``send_cap_email``: the mail function sends the cap email, once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from qrpro.data import caps, counting, panes
from qrpro.data.counting import bucket_end
from qrpro.domain.plans import plan
from qrpro.domain.scan_codec import Job, Pane, Scan

log = logging.getLogger("qrpro.scans")

STEP_SCANS = 50_000  # the most scans one step folds: a worker's memory follows this, not the day
# A day is folded once its oldest unfolded pane is this old, or once it has EAGER_PANES of them (a busy
# day, every minute): a quiet day's items are written every few minutes, not every minute (their cost),
# and no pane waits more than this plus a fan-out period and a fence's settling (docs/analytics.md).
FOLD_AFTER = 120
EAGER_PANES = 200
EMAIL_LEASE = 300  # seconds a sender holds the cap email before another may take it over
FOLD_SPARE = 20  # seconds a fold keeps in hand: it starts no step with less left


# -- 1. the aggregator -------------------------------------------------------------------------

def aggregate(scans: list[Scan], now: int) -> list[Scan]:
    """Write a batch as panes (a copy of a scan already in the batch rides on its first copy;
    a scan of a day past the horizon is dropped: no fold could keep it once). Parked scans'
    items are deleted once their pane is written. Returns the scans to retry."""
    first = panes.first_copies(scans, ())
    kept = [s for s in first if not panes.too_late(s.day, now)]
    if len(kept) < len(first):
        log.warning("dropped %d scans older than %d days", len(first) - len(kept), panes.HORIZON_DAYS)
    failed = panes.put(kept, now)
    unwritten = {s.id for s in failed}
    counting.forget([s.parked for s in scans if s.parked and s.id not in unwritten])
    return [s for s in scans if s.id in unwritten]


def drain_pending(now: int, limit: int = 100) -> int:
    """Count scans the redirect parked in DynamoDB because SQS failed. Returns how many were
    written."""
    parked = counting.parked(limit)
    return len(parked) - len(aggregate(parked, now)) if parked else 0


# -- 2. the fan-out ------------------------------------------------------------------------------

def sweep(now: int) -> int:
    """Record a fence, then queue a fold job up to the newest settled fence for every open day.
    Returns the jobs queued."""
    history = panes.record_fence(now)
    fence = panes.settled(history, now)
    if fence is None:
        return 0  # the first minute of a stack: nothing is settled yet
    jobs = [Job(m.scope, m.day, fence.seq, fence.at) for m in panes.open_marks()]
    panes.enqueue(jobs)
    return len(jobs)


# -- 3. the compaction ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Folded:
    scans: int  # scans added to the aggregates
    steps: int
    closed: bool
    caught_up: bool  # False: out of time before the fence (the next job goes on)


def fold(job: Job, now: int, time_left: Callable[[], float] | None = None, *, eager: bool = False) -> Folded:
    """Fold the job's day up to its fence once it is due (``_due``; ``eager``: at once), in steps of
    at most ``STEP_SCANS`` scans; close the day when it ended ``CLOSE_AFTER`` ago and nothing is
    left. Safe to run twice at once: a step is announced (``panes.begin``) before its writes, and
    each item takes a step once."""
    mark = panes.mark(job.scope, job.day)  # before the panes: its v as read (closing)
    cp = panes.checkpoint(job.scope, job.day)
    if not cp.exists:
        _take_over(job.scope, job.day)
    closing = mark is not None and now >= panes.day_end(job.day) + panes.CLOSE_AFTER
    if cp.stage is None and not closing and not eager and not _due(job, cp.ck, now):
        return Folded(0, 0, closed=False, caught_up=True)
    scans = steps = 0
    while True:
        cp = panes.checkpoint(job.scope, job.day)
        if cp.stage is not None:  # a step announced and not finished (crashed, or running): finish it
            scans += _step(job.scope, job.day, cp.ck, cp.stage, now)
            panes.finish(job.scope, job.day, cp.stage)
            steps += 1
            continue
        if cp.ck >= job.fence:
            break
        if time_left is not None and time_left() < FOLD_SPARE:
            return Folded(scans, steps, closed=False, caught_up=False)
        to = _step_end(job.scope, job.day, cp.ck, job.fence)
        if to is None:
            panes.skip_to(job.scope, job.day, cp.ck, job.fence)
            continue
        if panes.begin(job.scope, job.day, cp.ck, to):
            scans += _step(job.scope, job.day, cp.ck, to, now)
            panes.finish(job.scope, job.day, to)
            steps += 1
    # Closed once ended and with no pane from the checkpoint on: a pane written after this look
    # moved v (its mark follows its put), so the close fails.
    closed = closing and mark is not None and not panes.any_pane_from(job.scope, job.day, cp.ck) and panes.close(mark)
    return Folded(scans, steps, closed, caught_up=True)


def _due(job: Job, ck: int, now: int) -> bool:
    """Whether the day has panes to fold that waited ``FOLD_AFTER`` (their numbers are below a
    fence read that long ago), or ``EAGER_PANES`` of them."""
    waiting = panes.count_panes(job.scope, job.day, ck, job.fence, EAGER_PANES)
    if waiting == 0:
        return False
    if waiting >= EAGER_PANES:
        return True
    old = [f.seq for f in panes.fences() if f.at <= now - FOLD_AFTER]
    return bool(old) and panes.any_pane_from(job.scope, job.day, ck, below=old[-1])


def _step_end(scope: str, day: str, ck: int, fence: int) -> int | None:
    """Where the next step ends: after the pane that brings it to ``STEP_SCANS`` scans, else at
    the fence; None when no pane lies in [ck, fence)."""
    seen, last = 0, None
    for p in panes.panes(scope, day, ck, fence):
        seen, last = seen + len(p.scans), p.seq
        if seen >= STEP_SCANS:
            return p.seq + 1
    return None if last is None else fence


def _step(scope: str, day: str, ck: int, to: int, now: int) -> int:
    """One step: the panes in [ck, to), each scan once (checked against the earlier panes its
    copies may be in), added into the aggregates and the month. Deterministic, so a step run
    again or twice at once writes the same increments, and each item takes them once."""
    new: list[Pane] = list(panes.panes(scope, day, ck, to))
    if not new:
        return 0
    window = min(p.window for p in new)
    counted = panes.first_copies((s for p in new for s in p.scans), panes.ids(scope, day, window, ck))
    if not counted:
        return 0
    counting.add(counting.fold(counted), to)
    plan_name = counted[-1].plan
    ttl = bucket_end(day[:7]) + plan(plan_name).retention_days * 86_400
    scans = sum(1 for s in counted if not s.bot)  # bots count apart, never toward the cap
    if scans:
        caps.add_day(scope, day, scans, to, ttl, plan_name, now)
    return scans


def _take_over(scope: str, day: str) -> None:
    """The first step of a day whose panes the design before sequence numbers wrote: its
    compaction set the aggregate items to the fold of the panes it read (``n``, and the month's
    ``u_{dd}``); what it had not read yet is added here, once (each item's ``n`` guards it)."""
    legacy = panes.legacy_scans(scope, day)
    if legacy:
        counting.top_up(counting.fold(legacy))
        caps.set_day_floor(scope, day, len(legacy))
    panes.create_checkpoint(scope, day)


# -- 4. the cap email ------------------------------------------------------------------------------

def cap_email(month: str, used: int, cap: int, plan_name: str) -> tuple[str, str]:
    """The cap email's subject and text."""
    return (f"QR Pro: your scans passed this month's cap ({month})",
            f"Your codes have been scanned {used:,} times in {month}, past the {cap:,} scans "
            f"a month of the {plan_name} plan.\n\nEvery code keeps redirecting and every scan "
            "is still counted. To raise the cap, move to a larger plan.\n\n- QR Pro\n")


def send_cap_email(scope: str, month: str, plan_name: str, now: int) -> bool:
    """Claim the month's email (one sender at a time), send it to the owner, mark it sent.
    False: sent already, or another sender holds it. An SES failure gives the claim back and
    raises (the message comes back)."""
    if not caps.claim_email(scope, month, now, EMAIL_LEASE):
        return False
    cap = plan(plan_name).scans_per_month
    try:
        to = caps.owner_email(scope)
        if to:
            caps.send_email(to, *cap_email(month, caps.month_usage(scope, month).used, cap, plan_name))
    except (ClientError, BotoCoreError):
        caps.set_email_state(scope, month, "pending")
        raise
    caps.set_email_state(scope, month, "sent")
    return True
