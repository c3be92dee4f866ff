"""Webhooks and their deliveries (docs/api.md section 10)."""

from __future__ import annotations

from pydantic import Field

from qrpro.api.models.base import Documented, examples
from qrpro.domain.webhooks import DeliveryEventType, EventType

WEBHOOK_EXAMPLE = {
    "id": "7f3e9b1c-2d4a-4e8f-a6b5-c0d1e2f3a4b5", "url": "https://hooks.example.com/qr",
    "events": ["code.created", "code.updated"], "description": "CRM sync", "active": True,
    "created_at": 1713288000, "updated_at": 1713288000, "failure_count": 0,
}
DELIVERY_EXAMPLE = {
    "id": "c2a1e4f0-9b8d-4c7e-a6f5-1d2e3f4a5b6c", "event_id": "e1d2c3b4-a5f6-4e7d-8c9b-0a1b2c3d4e5f",
    "event_type": "code.updated", "attempt": 1, "status_code": 200, "error": None, "duration_ms": 184,
    "at": 1713370001, "next_retry_at": None,
}


class Webhook(Documented):
    model_config = examples(WEBHOOK_EXAMPLE)

    id: str
    url: str
    events: list[EventType]
    description: str
    active: bool
    created_at: int
    updated_at: int
    failure_count: int = Field(description="events failed in a row; 20 disable the webhook")


class WebhookCreated(Webhook):
    """The new webhook with its signing secret, shown only this once."""

    model_config = examples({**WEBHOOK_EXAMPLE, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})

    secret: str = Field(description="`whsec_...`: verifies the `webhook-signature` header (Standard Webhooks)")


class WebhookDeleted(Documented):
    model_config = examples({"id": WEBHOOK_EXAMPLE["id"], "deleted": True})

    id: str
    deleted: bool


class WebhookList(Documented):
    webhooks: list[Webhook]


class Delivery(Documented):
    """One delivery attempt."""

    model_config = examples(DELIVERY_EXAMPLE)

    id: str
    event_id: str
    event_type: DeliveryEventType
    attempt: int
    status_code: int | None = Field(description="the target's answer; null when none came (timeout, refused)")
    error: str | None
    duration_ms: int | None
    at: int
    next_retry_at: int | None = Field(description="when the next attempt is due; null when done")


class DeliveryList(Documented):
    deliveries: list[Delivery]


class Secret(Documented):
    model_config = examples({"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})

    secret: str
