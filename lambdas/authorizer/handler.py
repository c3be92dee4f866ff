"""The Lambda REQUEST authorizer for bearer keys (API Gateway, result cache off).

- no or malformed ``Authorization`` → raise ``Unauthorized``: API Gateway
  answers 401 with the ``not_signed_in`` gateway response;
- a token that is not a live key → Deny: the ``ACCESS_DENIED`` gateway
  response is rewritten to ``401 invalid_api_key``;
- a live key → Allow (every route of the stage: the same answer would hold
  for any of them), with the user and key ids as context for the function,
  and as ``usageIdentifierKey`` the key's own API Gateway key, or, until it
  has one (sync pending, failed, or past the account's 10,000 keys), the
  stack's fallback key: API Gateway never refuses a live key for want of one.
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import event_source
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerRequestEvent,
    APIGatewayAuthorizerResponse,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from qrpro.config import settings
from qrpro.domain.apikeys import bearer_token
from qrpro.services import keys

logger = Logger(service="qrpro-authorizer")


class Unauthorized(Exception):
    """API Gateway maps an authorizer error with this exact message to 401."""

    def __init__(self) -> None:
        super().__init__("Unauthorized")


@logger.inject_lambda_context(log_event=False)
@event_source(data_class=APIGatewayAuthorizerRequestEvent)
def handler(event: APIGatewayAuthorizerRequestEvent, context: LambdaContext) -> dict[str, Any]:
    token = bearer_token(event.headers.get("authorization"))
    if token is None:
        raise Unauthorized()
    api_key = keys.authenticate(token, int(time.time()))
    if api_key is None:
        logger.info("denied: not a live key")
        denied = APIGatewayAuthorizerResponse.from_route_arn(event.method_arn, principal_id="anonymous")
        denied.deny_all_routes()
        return denied.asdict()
    allowed = APIGatewayAuthorizerResponse.from_route_arn(
        event.method_arn, principal_id=api_key.user_id,
        context={"user_id": api_key.user_id, "key_id": api_key.id},
        usage_identifier_key=api_key.usage_key or settings().fallback_usage_key)
    allowed.allow_all_routes()
    return allowed.asdict()
