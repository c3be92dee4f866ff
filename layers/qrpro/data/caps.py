"""The scope's month item (``SAGG#{scope}`` / ``M#{month}``): its scans, one ``u_{dd}``
per day (guarded by ``s_{dd}``, the last step added into it; ``used`` is what the
design before panes counted), the cap flag ``cap_notified`` written with its
``scans.cap_reached`` event, and the cap email's state (``cap_email``: pending →
sending → sent), which the mail function drives from its own queue. The rule
(when to flag, when to send) is ``qrpro.services.scans``; docs/analytics.md,
"The monthly cap"."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from qrpro.config import settings
from qrpro.data import counting, panes
from qrpro.data import keys as k
from qrpro.data.aws import client, ddb
from qrpro.data.outbox import Event
from qrpro.data.table import Cancelled, Transaction, av, error_code, from_item, key, table, unavailable_on_throttle
from qrpro.domain.plans import plan


@dataclass(frozen=True, slots=True)
class MonthUsage:
    used: int
    cap_notified: bool
    cap_email: str | None  # None, "pending", "sending" or "sent"


def _key(scope: str, month: str) -> dict[str, Any]:
    return key(k.pk_scope_agg(scope), k.sk_month(month))


def _usage(item: dict[str, Any]) -> MonthUsage:
    email = item.get("cap_email")
    used = int(item.get("used", 0)) + sum(int(v) for name, v in item.items() if name.startswith("u_"))
    return MonthUsage(used=used, cap_notified=bool(item.get("cap_notified")), cap_email=str(email) if email else None)


def month_item(scope: str, month: str) -> dict[str, Any]:
    out = ddb().get_item(TableName=table(), Key=_key(scope, month), ConsistentRead=True)
    return from_item(out.get("Item")) or {}


def month_usage(scope: str, month: str) -> MonthUsage:
    """The month's scans as the compaction has folded them."""
    return _usage(month_item(scope, month))


def scans_used(scope: str, month: str, now: int | None = None) -> int:
    """The scans of the scope in ``month`` (0 before the first): what ``GET /api/user/usage``
    shows, read on a request path (throttling: 503). What no step has folded yet is read from the
    panes."""
    with unavailable_on_throttle():
        item = month_item(scope, month)
        live = panes.live(scope, now)
    unfolded = sum(live.unfolded(day, int(item.get(f"s_{day[8:10]}", 0))) for day in live.days if day[:7] == month)
    return _usage(item).used + unfolded


def add_day(scope: str, day: str, n: int, step: int, ttl: int, plan_name: str, now: int) -> MonthUsage:
    """``n`` scans of ``day`` (the step ending at ``step``) into the month item, once. When they
    take the month past the plan's cap, the flag and its ``scans.cap_reached`` event are written
    in the same transaction (the flag only ever once a month). Returns the month after."""
    month, dd = day[:7], day[8:10]
    cap = plan(plan_name).scans_per_month
    before = month_item(scope, month)
    done = int(before.get(f"s_{dd}", -1)) >= step
    if not done and not before.get("cap_notified") and _usage(before).used + n >= cap:
        tx = Transaction().add("month", {"Update": {
            "TableName": table(), "Key": _key(scope, month),
            "UpdateExpression": "ADD #u :n SET #s = :step, #ttl = :ttl, cap_notified = :t, cap_email = :pending",
            "ConditionExpression": "(attribute_not_exists(#s) OR #s < :step) AND attribute_not_exists(cap_notified)",
            "ExpressionAttributeNames": {"#u": f"u_{dd}", "#s": f"s_{dd}", "#ttl": k.TTL},
            "ExpressionAttributeValues": {":n": av(n), ":step": av(step), ":ttl": av(ttl), ":t": av(True),
                                          ":pending": av("pending")}}})
        try:
            tx.add("event", cap_event(scope, month, _usage(before).used + n, cap, plan_name, now).put()).run()
            return month_usage(scope, month)
        except Cancelled:
            pass  # another step flagged the month (or added this one) meanwhile: the plain path below
    if not done:
        counting.add_once(k.pk_scope_agg(scope), k.sk_month(month), {f"u_{dd}": n}, step, ttl, guard=f"s_{dd}")
    after = month_usage(scope, month)
    if after.used >= cap and not after.cap_notified:  # passed by several steps at once, or a crash in between
        flag_cap_reached(scope, month, cap_event(scope, month, after.used, cap, plan_name, now).put())
    return after


def set_day_floor(scope: str, day: str, total: int) -> None:
    """The day's ``u_{dd}`` raised to ``total`` if it is below (taking over from the design before
    sequence numbers, whose compaction set it to the scans it had read)."""
    try:
        ddb().update_item(TableName=table(), Key=_key(scope, day[:7]), UpdateExpression="SET #u = :n",
                          ConditionExpression="attribute_not_exists(#u) OR #u < :n",
                          ExpressionAttributeNames={"#u": f"u_{day[8:10]}"},
                          ExpressionAttributeValues={":n": av(total)})
    except ClientError as err:
        if error_code(err) != "ConditionalCheckFailedException":
            raise


def flag_cap_reached(scope: str, month: str, event: dict[str, Any]) -> bool:
    """Set ``cap_notified`` (and ``cap_email = pending``) with the outbox ``event`` in one
    transaction. False: it was set already (with its event)."""
    try:
        Transaction().add("flag", {"Update": {
            "TableName": table(), "Key": _key(scope, month),
            "UpdateExpression": "SET cap_notified = :t, cap_email = :pending",
            "ConditionExpression": "attribute_not_exists(cap_notified)",
            "ExpressionAttributeValues": {":t": av(True), ":pending": av("pending")}}}).add("event", event).run()
    except Cancelled:
        return False
    return True


def cap_event(scope: str, month: str, used: int, cap: int, plan_name: str, now: int) -> Event:
    """The ``scans.cap_reached`` outbox event."""
    return Event("scans.cap_reached", scope, now, {"month": month, "used": used, "cap": cap, "plan": plan_name})


# -- the cap email (the mail function) ---------------------------------------------------------------

def queue_cap_email(event: Event) -> None:
    """Hand a ``scans.cap_reached`` event to the mail function's queue."""
    client("sqs").send_message(QueueUrl=settings().mail_queue_url, MessageBody=json.dumps(
        {"scope": event.scope, **event.data}, separators=(",", ":")))


def claim_email(scope: str, month: str, now: int, lease: int) -> bool:
    """Take the email (one sender at a time; a sender silent for ``lease`` seconds loses it).
    False: sent already, or another sender has it."""
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
    """``pending`` (give the claim back: the message is delivered again) or ``sent``."""
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
