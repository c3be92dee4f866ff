"""The scheduled expiry job (docs/api.md sections 3 and 6.5; access patterns 32 and 33).

- Codes in ``grace`` whose ``grace_until`` has passed become ``expired``
  (the redirect answers 410): found on the due-date index (``qrpro.data.due``),
  each one through ``qrpro.services.codes.expire``, a conditional transaction
  (status still grace, version unchanged) with its history entry and exactly
  one ``code.expired`` outbox event. A code reactivated meanwhile is left alone.
- Accounts and teams whose plan has been in ``grace`` for 90 days become
  ``expired``: one conditional update per profile (still grace, entered grace
  at least 90 days ago) that also takes it off the index.

Idempotent and safe to run twice at once (every write is conditional: the
loser of a race finds nothing to do), and safe to resume after a crash (no
state of its own: what is still due is still on the index). Work per run is
bounded by ``max_items`` and an optional deadline; ``remaining: true`` says
the next run has more to do, and it simply picks that up.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from qrpro.data import due
from qrpro.domain.plans import PLAN_GRACE_SECONDS
from qrpro.services import codes

WORKERS = 8  # transitions written in parallel


def expire_plan(scope: str, now: int) -> bool:
    """``grace`` → ``expired`` for a user or team profile that entered grace 90 days ago or more.
    False when there is nothing to do (back to active meanwhile, not due yet, already expired)."""
    return due.expire_plan(scope, now, in_grace_since=now - PLAN_GRACE_SECONDS)


def _expire_code(entry: tuple[str, str], now: int) -> bool:
    scope, sk = entry
    return codes.expire(scope, sk.removeprefix("CODE#"), now)


def _expire_plan(entry: tuple[str, str], now: int) -> bool:
    return expire_plan(entry[0], now)


def _run_phase(pool: ThreadPoolExecutor, partition: str, apply: Callable[[tuple[str, str], int], bool], now: int,
               limit: int, deadline: float | None) -> tuple[int, int, int, bool]:
    """(done, skipped, looked at, more left) for the due entries of one partition."""
    done = skipped = seen = 0
    batch: list[tuple[str, str]] = []

    def flush() -> None:
        nonlocal done, skipped
        for changed in pool.map(lambda entry: apply(entry, now), batch):
            done, skipped = done + changed, skipped + (not changed)
        batch.clear()

    entries = due.Due(partition, now, limit, deadline)
    for entry in entries:
        seen += 1
        batch.append(entry)
        if len(batch) >= due.PAGE:
            flush()
    flush()
    return done, skipped, seen, entries.more()


def run(now: int, max_items: int = 1000, deadline: float | None = None) -> dict[str, Any]:
    """One run of the job as of ``now`` (unix seconds). Looks at no more than ``max_items`` due entries
    (plans first, with at most half of the budget, then codes) and starts no new page of work after
    ``deadline`` (a ``time.monotonic()`` value). Returns a JSON summary; ``remaining`` is true when
    due entries were left for the next run."""
    max_items = max(2, max_items)
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="expiry") as pool:
        plans_done, plans_skipped, plans_seen, plans_more = _run_phase(
            pool, due.PLANS, _expire_plan, now, max_items // 2, deadline)
        codes_done, codes_skipped, _, codes_more = _run_phase(
            pool, due.CODES, _expire_code, now, max_items - plans_seen, deadline)
    return {"now": now, "codes_expired": codes_done, "plans_expired": plans_done,
            "codes_skipped": codes_skipped, "plans_skipped": plans_skipped, "remaining": plans_more or codes_more}
