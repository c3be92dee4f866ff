"""Codes: the use cases of docs/api.md section 6 and the status machine.

- create: a new code is ``active``, within the plan cap (``402 plan_limit``),
  with a fresh shortcode (a taken one is drawn again);
- update (PATCH, bulk pause/resume/move): only ``active`` and ``paused`` codes
  (``409 code_not_editable``);
- soft delete: ``grace`` for 90 days, which frees a place under the cap;
- reactivate: ``grace`` or ``expired`` back to ``active``, within the cap;
- expire (the scheduled job): ``grace`` past ``grace_until`` becomes
  ``expired`` and leaves its group.

Every write is one transaction of ``qrpro.data.codes``; a cancellation names
the conditions that failed, mapped to errors here (``_refused``). A code
changed by another writer meanwhile is read again (``retrying``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any, NoReturn

from qrpro.data import codes as repo
from qrpro.data.codes import Code
from qrpro.data.table import Cancelled, Retry, or_not_found, retrying
from qrpro.domain.codes import EDITABLE, GRACE_SECONDS, Status, new_shortcode, normalise
from qrpro.domain.errors import CodeNotEditable, DomainError, PlanLimitReached, ValidationFailed
from qrpro.domain.scope import Caller

SYSTEM = "system"  # the author of the expiry job's changes in history
DRAWS = 8  # shortcodes drawn before giving up (503)
ROUNDS = 6  # re-reads when another writer changed the code meanwhile


def _no_group() -> ValidationFailed:
    return ValidationFailed("group_id", "no such group in this scope")


def _refused(cancel: Cancelled, caller: Caller | None) -> NoReturn:
    """What a cancelled code transaction means for the client."""
    if "group" in cancel.failed:
        raise _no_group() from cancel
    if "cap" in cancel.failed and caller is not None:
        raise PlanLimitReached(caller.plan_name, caller.plan.codes, repo.codes_used(caller.scope)) from cancel
    if cancel.failed & {"code", "short"}:
        raise Retry() from cancel  # version moved on (read again) or shortcode taken (draw again)
    raise cancel


# -- reads ----------------------------------------------------------------------------

def get(scope: str, code_id: str, now: int | None = None, *, with_scans: bool = True) -> dict[str, Any]:
    """The code object (``404`` unless it is a code of ``scope``); ``with_scans=False``
    leaves out ``scans_30d`` and its read."""
    return _present(or_not_found(repo.get_item(scope, code_id)), now or int(time.time()), with_scans)


def _present(code: Code, now: int, with_scans: bool) -> dict[str, Any]:
    return code.public(repo.scans_30d(code.scope, now).get(code.id, 0) if with_scans else None)


def list_codes(scope: str, *, now: int, **filters: Any) -> tuple[list[dict[str, Any]], str | None]:
    """One page of codes (filters: status, tag, group_id, q, limit, cursor) with their ``scans_30d``."""
    found, next_cursor = repo.page(scope, **filters)
    scans = repo.scans_30d(scope, now) if found else {}
    return [c.public(scans.get(c.id, 0)) for c in found], next_cursor


def history(scope: str, code_id: str) -> list[dict[str, Any]]:
    or_not_found(repo.get_item(scope, code_id))
    return repo.history(code_id)


def require_group(scope: str, group_id: str) -> None:
    """A group id given in a body must name a group of the caller's scope."""
    if not repo.group_exists(scope, group_id):
        raise _no_group()


# -- creation ---------------------------------------------------------------------------

def _new(caller: Caller, fields: dict[str, Any], now: int) -> Code:
    return Code(scope=caller.scope, id=str(uuid.uuid4()), shortcode=new_shortcode(), status=Status.ACTIVE.value,
                created_at=now, updated_at=now, created_by=caller.user_id, **normalise(fields))


def _insert(caller: Caller, fields: dict[str, Any], now: int, *, reserve: bool) -> Code:
    """Write one new code; ``reserve``: take its place under the cap in the same transaction."""
    def attempt() -> Code:
        code = _new(caller, fields, now)
        tx = repo.create_tx(code, now)
        if reserve:
            tx.add("cap", repo.cap_add(caller.scope, 1, caller.plan.codes))
        try:
            tx.run()
        except Cancelled as cancel:
            _refused(cancel, caller)
        return code

    return retrying(attempt, attempts=DRAWS, busy="could not draw a free shortcode; retry")


def create(caller: Caller, fields: dict[str, Any], now: int) -> dict[str, Any]:
    """One code, within the plan cap."""
    return _insert(caller, fields, now, reserve=True).public(0)


def create_many(caller: Caller, batch: list[dict[str, Any]], now: int) -> list[dict[str, Any]]:
    """An import: the cap is reserved once for the whole batch (all or nothing),
    then the codes are written; whatever could not be written is given back."""
    n, limit = len(batch), caller.plan.codes
    if n == 0:
        return []
    try:
        repo.cap_tx(caller.scope, n, limit).run()
    except Cancelled as cancel:
        raise PlanLimitReached(caller.plan_name, limit, repo.codes_used(caller.scope)) from cancel
    created: list[Code] = []
    try:
        for fields in batch:
            created.append(_insert(caller, fields, now, reserve=False))
    finally:
        if len(created) < n:
            repo.cap_tx(caller.scope, -(n - len(created)), None).run()
    return [c.public(0) for c in created]


# -- transitions ------------------------------------------------------------------------

def _write(caller: Caller | None, old: Code, new: Code, now: int, event: str, cap: int = 0) -> Code:
    """One change of a code as one transaction; ``cap``: +1 takes a place under the plan cap, -1 frees one.
    A scan limit set on a code counts the scans it had (docs/api.md section 14: lifetime counted scans)."""
    start = repo.lifetime(old.scope, old.id) if repo.max_scans(old) is None and repo.max_scans(new) else 0
    stored, tx = repo.change_tx(old, new, caller.user_id if caller else SYSTEM, now, event, start)
    if cap and caller is not None:
        tx.add("cap", repo.cap_add(old.scope, cap, caller.plan.codes if cap > 0 else None))
    try:
        tx.run()
    except Cancelled as cancel:
        _refused(cancel, caller)
    return stored


def _reapplied(scope: str, code_id: str, apply: Callable[[Code], Code]) -> Code:
    """``apply`` to the current code, read again while another writer gets in between."""
    return retrying(lambda: apply(or_not_found(repo.get_item(scope, code_id))), attempts=ROUNDS,
                    busy="the code kept changing; retry")


def _editable(code: Code) -> None:
    if code.status not in EDITABLE:
        raise CodeNotEditable(code.status)


def update(caller: Caller, code_id: str, changes: dict[str, Any], now: int, *,
           with_scans: bool = True) -> dict[str, Any]:
    """PATCH semantics; ``with_scans=False`` skips the scans_30d read (bulk work)."""
    changes = normalise(changes)

    def apply(code: Code) -> Code:
        _editable(code)
        new = replace(code, **changes)
        return code if new == code else _write(caller, code, new, now, "code.updated")

    return _present(_reapplied(caller.scope, code_id, apply), now, with_scans)


def soft_delete(caller: Caller, code_id: str, now: int, *, with_scans: bool = True) -> dict[str, Any]:
    """Into grace for 90 days (the redirect still answers); frees a place under the cap."""
    def apply(code: Code) -> Code:
        _editable(code)
        new = replace(code, status=Status.GRACE.value, grace_until=now + GRACE_SECONDS)
        return _write(caller, code, new, now, "code.deleted", cap=-1)

    return _present(_reapplied(caller.scope, code_id, apply), now, with_scans)


def reactivate(caller: Caller, code_id: str, now: int, *, with_scans: bool = True) -> dict[str, Any]:
    """Grace or expired back to active, within the cap; a live code is left as it is."""
    def apply(code: Code) -> Code:
        if code.status in EDITABLE:
            return code
        new = replace(code, status=Status.ACTIVE.value, grace_until=None)
        return _write(caller, code, new, now, "code.reactivated", cap=1)

    return _present(_reapplied(caller.scope, code_id, apply), now, with_scans)


def expire(scope: str, code_id: str, now: int) -> bool:
    """Grace → expired once ``grace_until`` has passed (the scheduled job); the code leaves its group.
    False when there is nothing to do (reactivated meanwhile, not due, gone)."""
    def attempt() -> bool:
        code = repo.get_item(scope, code_id)
        if code is None or code.status != Status.GRACE or (code.grace_until or 0) > now:
            return False
        _write(None, code, replace(code, status=Status.EXPIRED.value, group_id=None), now, "code.expired")
        return True

    return retrying(attempt, attempts=ROUNDS, busy="the code kept changing; retry")


# -- bulk -------------------------------------------------------------------------------

def bulk(caller: Caller, ids: list[str], action: str, group_id: str | None, now: int) -> dict[str, Any]:
    """Pause, resume, delete or move each id once, in the given order; one failure does not stop the rest.
    ``group_id`` (move) must have been checked with ``require_group``."""
    updated: list[str] = []
    failed: list[dict[str, str]] = []
    for code_id in dict.fromkeys(ids):
        try:
            if action == "delete":
                soft_delete(caller, code_id, now, with_scans=False)
            elif action == "move":
                update(caller, code_id, {"group_id": group_id}, now, with_scans=False)
            else:
                status = Status.PAUSED if action == "pause" else Status.ACTIVE
                update(caller, code_id, {"status": status.value}, now, with_scans=False)
            updated.append(code_id)
        except DomainError as err:
            failed.append({"id": code_id, "error": err.code})
    return {"updated": updated, "failed": failed}
