"""The monthly scan cap's state on the scope's month aggregate (``used`` and
its flags ``cap_notified`` and ``cap_email``: pending → sending → sent), the
owner's address and the email itself; ``scans_used`` is the same counter as
``GET /api/user/usage`` shows it. The rule (when to flag, when to send) is
``qrpro.services.scans``; docs/analytics.md, "the monthly cap"."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from qrpro.config import settings
from qrpro.data import keys as k
from qrpro.data import panes
from qrpro.data.aws import client, ddb
from qrpro.data.outbox import Event
from qrpro.data.table import av, cancel_reasons, error_code, from_item, key, table, unavailable_on_throttle


@dataclass(frozen=True, slots=True)
class MonthUsage:
    used: int
    cap_notified: bool
    cap_email: str | None  # None, "pending", "sending" or "sent"


def _key(scope: str, month: str) -> dict[str, Any]:
    return key(k.pk_scope_agg(scope), k.sk_month(month))


def _days_used(item: dict[str, Any]) -> dict[str, int]:
    """The compaction's per-day counts on a month item (``u_{dd}``), by day of the month."""
    return {name[2:]: int(value) for name, value in item.items() if name.startswith("u_")}


def month_usage(scope: str, month: str) -> MonthUsage:
    """The month's count as the aggregator and the compaction wrote it: ``used`` (days
    counted with markers) plus each day counted through panes."""
    out = ddb().get_item(TableName=table(), Key=_key(scope, month), ConsistentRead=True)
    item = from_item(out.get("Item")) or {}
    email = item.get("cap_email")
    return MonthUsage(used=int(item.get("used", 0)) + sum(_days_used(item).values()),
                      cap_notified=bool(item.get("cap_notified")), cap_email=str(email) if email else None)


def scans_used(scope: str, month: str) -> int:
    """The scans counted for the scope in ``month`` (0 before the first): what
    ``GET /api/user/usage`` shows, read on a request path (throttling: 503). Days still
    open are counted from their panes."""
    with unavailable_on_throttle():
        out = ddb().get_item(TableName=table(), Key=_key(scope, month), ConsistentRead=True)
        live = panes.live(scope)
    item = from_item(out.get("Item")) or {}
    days = _days_used(item)
    for day, total in live.day_totals().items():
        if day[:7] == month:
            days[day[8:10]] = total
    return int(item.get("used", 0)) + sum(days.values())


def flag_cap_reached(scope: str, month: str, event: dict[str, Any]) -> bool:
    """Set ``cap_notified`` (and ``cap_email = pending``) with the outbox
    ``event`` in one transaction, once the caller read the month past its cap
    (a month's count only grows). False: another aggregator set it first (and
    wrote its event)."""
    try:
        ddb().transact_write_items(TransactItems=[
            {"Update": {"TableName": table(), "Key": _key(scope, month),
                        "UpdateExpression": "SET cap_notified = :t, cap_email = :pending",
                        "ConditionExpression": "attribute_not_exists(cap_notified)",
                        "ExpressionAttributeValues": {":t": av(True), ":pending": av("pending")}}},
            event,
        ])
    except ClientError as err:
        if error_code(err) != "TransactionCanceledException" or "ConditionalCheckFailed" not in cancel_reasons(err):
            raise
        return False
    return True


def cap_event(scope: str, month: str, used: int, cap: int, plan_name: str, now: int) -> dict[str, Any]:
    """The ``scans.cap_reached`` outbox item."""
    return Event("scans.cap_reached", scope, now, {"month": month, "used": used, "cap": cap, "plan": plan_name}).put()


def claim_email(scope: str, month: str, now: int, lease: int) -> bool:
    """Take the email (one sender at a time; a sender silent for ``lease``
    seconds loses it). False: sent already, or another aggregator is sending."""
    try:
        ddb().update_item(
            TableName=table(), Key=_key(scope, month),
            UpdateExpression="SET cap_email = :sending, cap_email_at = :now",
            ConditionExpression="cap_email = :pending OR (cap_email = :sending AND cap_email_at < :stale)",
            ExpressionAttributeValues={":sending": av("sending"), ":pending": av("pending"), ":now": av(now),
                                       ":stale": av(now - lease)})
    except ClientError as err:
        if error_code(err) == "ConditionalCheckFailedException":
            return False
        raise
    return True


def set_email_state(scope: str, month: str, state: str) -> None:
    """``pending`` (give the claim back: a later batch sends) or ``sent``."""
    ddb().update_item(TableName=table(), Key=_key(scope, month), UpdateExpression="SET cap_email = :s",
                      ExpressionAttributeValues={":s": av(state)})


def owner_email(scope: str) -> str | None:
    """The account owner's email: the user's, or the team owner's."""
    profile = from_item(ddb().get_item(TableName=table(), Key=key(scope, k.PROFILE), ConsistentRead=True)
                        .get("Item")) or {}
    if scope.startswith("TEAM#") and profile.get("owner_id"):
        profile = from_item(ddb().get_item(TableName=table(), Key=key(k.pk_user(profile["owner_id"]), k.PROFILE),
                                           ConsistentRead=True).get("Item")) or {}
    email = profile.get("email")
    return str(email) if email else None


def send_email(to: str, subject: str, text: str) -> None:
    client("ses").send_email(Source=settings().ses_sender, Destination={"ToAddresses": [to]},
                             Message={"Subject": {"Data": subject}, "Body": {"Text": {"Data": text}}})
