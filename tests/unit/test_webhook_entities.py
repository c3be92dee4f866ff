"""The typed webhook entities (``qrpro.data.webhooks.Webhook``, ``Delivery``) and
the webhook use cases over stubbed repositories: what the API shows (the fields
and their order), that a sealed secret never shows in a repr, and the state a
delivery attempt settles. No network, no table."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from qrpro.api.models import webhooks as models
from qrpro.data import delivery
from qrpro.data import webhooks as repo
from qrpro.data.outbox import Event
from qrpro.data.webhooks import Delivery, Message, Webhook
from qrpro.domain import webhooks as rules
from qrpro.services import webhooks

NOW = 1_790_000_000
SCOPE = "USER#0b4f7c1e-8d2a-4e5b-9c3d-1a2b3c4d5e6f"
SEALED = "sealed-current-0123456789"
PREVIOUS = "sealed-previous-9876543210"


def stored(webhook_id: str = "w1", created_at: int = NOW, **extra: Any) -> dict[str, Any]:
    """An item as the table returns it."""
    return {"pk": SCOPE, "sk": f"WEBHOOK#{webhook_id}", "type": "webhook", "id": webhook_id,
            "url": "https://hooks.example.com/qr", "events": ["code.created", "code.updated"],
            "description": "crm", "active": True, "secret_sealed": SEALED, "failure_count": 0,
            "created_at": created_at, "updated_at": created_at + 5, "created_by": "u1", **extra}


def test_public_is_the_api_webhook_object_in_its_order() -> None:
    out = Webhook.from_item(stored(failure_count=3)).public()
    assert list(out) == list(models.Webhook.model_fields)
    assert json.dumps(out) == json.dumps({
        "id": "w1", "url": "https://hooks.example.com/qr", "events": ["code.created", "code.updated"],
        "description": "crm", "active": True, "created_at": NOW, "updated_at": NOW + 5, "failure_count": 3})


def test_an_item_without_the_optional_attributes_reads_as_the_api_defaults() -> None:
    item = stored()
    for name in ("description", "failure_count", "created_by"):
        item.pop(name)
    out = Webhook.from_item({**item, "active": False}).public()
    assert out["description"] == "" and out["failure_count"] == 0 and out["active"] is False


def test_the_item_round_trips_and_names_its_key() -> None:
    item = stored(previous_secret_sealed=PREVIOUS, previous_until=NOW + 60)
    webhook = Webhook.from_item(item)
    assert webhook.item() == item and Webhook.from_item(webhook.item()) == webhook


def test_no_sealed_secret_in_a_repr() -> None:
    webhook = Webhook.from_item(stored(previous_secret_sealed=PREVIOUS, previous_until=NOW + 60))
    assert SEALED not in repr(webhook) and PREVIOUS not in repr(webhook)
    assert "secret" not in webhook.public()


def test_delivery_public_is_the_api_record_in_its_order() -> None:
    item = {"pk": "WHDLV#w1", "sk": "x", "type": "delivery", "webhook_id": "w1", "ttl": NOW, "id": "d1",
            "event_id": "e1", "event_type": "ping", "attempt": 1, "status_code": None, "error": "timeout",
            "duration_ms": 10_000, "at": NOW, "next_retry_at": None}
    out = Delivery.from_item(item).public()
    assert list(out) == list(models.Delivery.model_fields)
    assert out == {name: item[name] for name in models.Delivery.model_fields}


def test_a_fan_out_queues_one_message_per_subscriber_in_the_wire_format(monkeypatch: pytest.MonkeyPatch) -> None:
    hooks = [Webhook.from_item(stored("w1")), Webhook.from_item(stored("w2"))]
    monkeypatch.setattr(repo, "subscribers", lambda scope, event_type: hooks)
    queued: list[Message] = []
    monkeypatch.setattr(repo, "queue", queued.extend)
    event = Event("code.created", SCOPE, NOW, {"code": {"id": "c1"}}, id="e1")
    assert webhooks.fan_out(event) == 2
    body = rules.body(webhooks.event_payload(event))
    wire = [m.to_json() for m in queued]
    assert wire == [json.dumps({"webhook_id": w, "scope": SCOPE, "event_id": "e1", "event_type": "code.created",
                                "body": body}) for w in ("w1", "w2")]
    assert [Message.from_json(text) for text in wire] == queued


# -- the use cases over stubbed repositories ------------------------------------------------


def test_list_is_newest_first_then_by_id(monkeypatch: pytest.MonkeyPatch) -> None:
    hooks = [Webhook.from_item(stored(i, at)) for i, at in (("a", NOW), ("c", NOW + 1), ("b", NOW))]
    monkeypatch.setattr(repo, "items_of", lambda scope: hooks)
    assert [w["id"] for w in webhooks.list_webhooks(SCOPE)] == ["c", "b", "a"]


@pytest.mark.parametrize("change", [{"active": False}, {"events": ("code.deleted",)}])
def test_nothing_is_sent_to_a_disabled_or_unsubscribed_webhook(monkeypatch: pytest.MonkeyPatch,
                                                              change: dict[str, Any]) -> None:
    webhook = replace(Webhook.from_item(stored()), **change)
    monkeypatch.setattr(repo, "get_item", lambda scope, webhook_id: webhook)
    monkeypatch.setattr(delivery, "post", lambda *a, **kw: pytest.fail("nothing may be sent"))
    msg = Message(webhook_id="w1", scope=SCOPE, event_id="e1", event_type="code.created", body="{}")
    assert webhooks.deliver(msg, 1, schedule=(5,)) == webhooks.Outcome(None, None)


class Repo:
    """Records the state writes an attempt makes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, failures_after: int = 1) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.saved: list[tuple[str, Delivery]] = []
        monkeypatch.setattr(repo, "signing_secrets", lambda webhook, now: ["whsec_" + "A" * 44])
        monkeypatch.setattr(repo, "save_delivery", lambda webhook_id, record: self.saved.append((webhook_id, record)))
        monkeypatch.setattr(repo, "reset_failures", lambda webhook: self.calls.append(("reset", webhook.id)))
        monkeypatch.setattr(repo, "disable", lambda webhook, now: self.calls.append(("disable", webhook.id)))

        def count_failure(webhook: Webhook) -> int:
            self.calls.append(("count", webhook.id))
            return failures_after

        monkeypatch.setattr(repo, "count_failure", count_failure)


def answered(monkeypatch: pytest.MonkeyPatch, status_code: int | None) -> None:
    monkeypatch.setattr(delivery, "post", lambda *a, **kw: delivery.Attempt(status_code, None, 7))


def send(webhook: Webhook, number: int = 1, schedule: tuple[int, ...] = (5,), count: bool = True
         ) -> webhooks.Outcome:
    return webhooks.attempt(webhook, "e1", "code.created", "{}", number, schedule=schedule, now=lambda: NOW,
                            rand=lambda lo, hi: (lo + hi) / 2, count=count)


@pytest.mark.parametrize(("failure_count", "writes"), [(0, []), (4, [("reset", "w1")])])
def test_a_success_clears_the_failures_and_only_then_writes(monkeypatch: pytest.MonkeyPatch, failure_count: int,
                                                            writes: list[Any]) -> None:
    state = Repo(monkeypatch)
    answered(monkeypatch, 204)
    out = send(Webhook.from_item(stored(failure_count=failure_count)))
    assert out.retry_in is None and state.calls == writes
    assert state.saved == [("w1", out.record)]
    assert out.record is not None and out.record.public()["status_code"] == 204 and out.record.at == NOW


def test_a_failure_is_retried_then_counted_then_disables(monkeypatch: pytest.MonkeyPatch) -> None:
    state = Repo(monkeypatch, failures_after=20)
    answered(monkeypatch, 500)
    hook = Webhook.from_item(stored())
    first = send(hook, number=1)
    assert first.retry_in == 5 and first.record is not None and first.record.next_retry_at == NOW + 5
    assert state.calls == []
    last = send(hook, number=2)
    assert last.retry_in is None and state.calls == [("count", "w1"), ("disable", "w1")]


def test_a_gone_target_disables_and_a_ping_settles_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    state = Repo(monkeypatch)
    answered(monkeypatch, 410)
    send(Webhook.from_item(stored()), count=False)
    assert state.calls == []
    send(Webhook.from_item(stored()))
    assert state.calls == [("disable", "w1")]
