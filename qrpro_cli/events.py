"""The events the local stack hands functions, checked against Powertools'
parser models of the real AWS events: a local event that AWS would never
send fails here, loudly, instead of passing a test that AWS would fail."""

from __future__ import annotations

from functools import cache
from typing import Any

KINDS: dict[str, str | None] = {
    "apigateway": "APIGatewayProxyEventModel",  # REST API proxy integration
    "authorizer": "ApiGatewayAuthorizerRequest",  # REST API REQUEST authorizer
    "function-url": "LambdaFunctionUrlModel",  # CloudFront -> function URL (payload 2.0)
    "sqs": "SqsModel",
    "dynamodb-stream": "DynamoDBStreamModel",
    "schedule": "EventBridgeModel",
    "schedule-input": None,  # a schedule target's constant Input: any JSON the template set
}


class InvalidEvent(Exception):
    """The local stack built an event that does not have the shape AWS sends."""


@cache
def _model(kind: str) -> Any:
    from aws_lambda_powertools.utilities.parser import models

    return getattr(models, str(KINDS[kind]))


def validate(kind: str, event: dict[str, Any]) -> None:
    from pydantic import ValidationError

    if KINDS[kind] is None:
        return
    try:
        _model(kind).model_validate(event)
    except ValidationError as err:
        raise InvalidEvent(f"local {kind} event does not match {KINDS[kind]}: {err}") from err
