"""Routes of the keys area (placeholder: filled by its issue)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayRouter

router = APIGatewayRouter()
