"""The Lambda REQUEST authorizer for bearer keys (API Gateway, result cache off).

- no or malformed ``Authorization`` → raise ``Unauthorized``: API Gateway
  answers 401 with the ``not_signed_in`` gateway response;
- a token that is not a live key → Deny: the ``ACCESS_DENIED`` gateway
  response is rewritten to ``401 invalid_api_key``;
- a live key → Allow, with the user and key ids as context for the function,
  and as ``usageIdentifierKey`` the key's own API Gateway key, or, until it
  has one (sync pending, failed, or past the account's 10,000 keys), the
  stack's fallback key: API Gateway never refuses a live key for want of one.
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from qrpro.config import settings
from qrpro.data import apikeys
from qrpro.domain.apikeys import bearer_token, token_hash

logger = Logger(service="qrpro-authorizer")


class Unauthorized(Exception):
    """API Gateway maps an authorizer error with this exact message to 401."""

    def __init__(self) -> None:
        super().__init__("Unauthorized")


def _header(event: dict[str, Any], name: str) -> str | None:
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name:
            return str(value)
    return None


def _policy(effect: str, resource: str, context: dict[str, str] | None = None,
            usage_key: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "principalId": (context or {}).get("user_id", "anonymous"),
        "policyDocument": {"Version": "2012-10-17", "Statement": [
            {"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}]},
    }
    if context:
        out["context"] = context
    if usage_key:
        out["usageIdentifierKey"] = usage_key
    return out


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    resource = str(event.get("methodArn", "*"))
    token = bearer_token(_header(event, "authorization"))
    if token is None:
        raise Unauthorized()
    item = apikeys.lookup(token)
    if item is None:
        logger.info("denied: not a live key")
        return _policy("Deny", resource)
    apikeys.touch(token_hash(token), item, int(time.time()))
    return _policy("Allow", resource, {"user_id": item["user_id"], "key_id": item["key_id"]},
                   item.get("usage_key") or settings().fallback_usage_key)
