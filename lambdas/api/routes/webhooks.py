"""Webhooks (docs/api.md section 10): the eight operations."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from qrpro.api import idempotency
from qrpro.api.context import caller, mutator, now
from qrpro.api.openapi import errors
from qrpro.api.router import Router
from qrpro.domain.webhooks import WebhookCreate, WebhookPatch
from qrpro.services import webhooks

router = Router()
TAGS = ["Webhooks"]


@router.get("/api/webhooks", operation_id="listWebhooks", tags=TAGS, summary="The scope's webhooks, newest first",
            responses=errors(ok="WebhookList"))
def list_webhooks() -> dict[str, Any]:
    return {"webhooks": webhooks.list_webhooks(caller(router).scope)}


@router.post("/api/webhooks", operation_id="createWebhook", tags=TAGS, status_code=201,
             responses=errors(400, 409, 413, 415, ok="WebhookCreated", ok_status=201,
                              ok_description="The new webhook, with its secret (shown only this once)"),
             summary="Create a webhook; the answer carries its signing secret, shown only this once")
def create_webhook(body: Annotated[WebhookCreate, Body(embed=False)],
                   idempotency_key: idempotency.Key = None) -> Response[dict[str, Any]]:
    c = mutator(router)
    return idempotency.respond(router, idempotency_key, lambda: (
        201, webhooks.create(c, body.url, list(body.events), body.description, now(router))))


@router.get("/api/webhooks/<webhook_id>", operation_id="getWebhook",
            tags=TAGS, summary="One webhook", responses=errors(404, ok="Webhook"))
def get_webhook(webhook_id: str) -> dict[str, Any]:
    return webhooks.get(caller(router).scope, webhook_id)


@router.patch("/api/webhooks/<webhook_id>", operation_id="updateWebhook", tags=TAGS,
              responses=errors(400, 404, 413, 415, ok="Webhook", ok_description="The updated webhook"),
              summary="Change url, events, description or active (re-enabling resets failure_count)")
def patch_webhook(webhook_id: str, body: Annotated[WebhookPatch, Body(embed=False)]) -> dict[str, Any]:
    c = mutator(router)
    return webhooks.update(c.scope, webhook_id, body.model_dump(exclude_unset=True), now(router))


@router.delete("/api/webhooks/<webhook_id>", operation_id="deleteWebhook", tags=TAGS, summary="Delete a webhook",
               responses=errors(404, ok="WebhookDeleted"))
def delete_webhook(webhook_id: str) -> dict[str, Any]:
    c = mutator(router)
    return webhooks.delete(c.scope, webhook_id)


@router.post("/api/webhooks/<webhook_id>/test", operation_id="testWebhook", tags=TAGS,
             responses=errors(404, ok="Delivery", ok_description="The delivery record of the ping"),
             summary="Deliver a signed `ping` now (one attempt); the delivery record")
def test_webhook(webhook_id: str) -> dict[str, Any]:
    c = mutator(router)
    return webhooks.ping(c.scope, webhook_id, now(router))


@router.get("/api/webhooks/<webhook_id>/deliveries", operation_id="listWebhookDeliveries",
            tags=TAGS, responses=errors(404, ok="DeliveryList"),
            summary="The last 100 delivery attempts, newest first")
def list_deliveries(webhook_id: str) -> dict[str, Any]:
    return {"deliveries": webhooks.deliveries(caller(router).scope, webhook_id, now(router))}


@router.post("/api/webhooks/<webhook_id>/rotate-secret", operation_id="rotateWebhookSecret", tags=TAGS,
             responses=errors(404, ok="Secret", ok_description="The new secret (shown only this once)"),
             summary="A new signing secret; the old one also signs for 24 h")
def rotate_secret(webhook_id: str) -> dict[str, Any]:
    c = mutator(router)
    return webhooks.rotate_secret(c.scope, webhook_id, now(router))
