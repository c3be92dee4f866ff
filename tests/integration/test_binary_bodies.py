"""With binaryMediaTypes */* API Gateway hands every request body over
base64-encoded: the pipeline decodes it before validation and routing."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from lambdas.api.handler import handler
from qrpro_cli.rest_api import build_event
from qrpro_cli.runtime import FakeContext


def test_a_base64_encoded_json_body_is_decoded(make_account: Any) -> None:
    acct = make_account()
    body = json.dumps({"url": "https://example.com/b64"}).encode()
    event = build_event("POST", "/api/codes", [("Content-Type", "application/json")], b"", "r1")
    event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
    event["requestContext"]["authorizer"] = {"user_id": acct.user_id, "key_id": acct.key_id}
    out = handler(event, FakeContext("api", str(uuid.uuid4())))
    assert out["statusCode"] == 201, out["body"]
    assert json.loads(out["body"])["url"] == "https://example.com/b64"
