"""API Gateway usage plans on the local stack, as the template wires them: the
usagekeys stream consumer keeps each key's gateway key in moto's API Gateway,
and the API port refuses a key over its usage plan's quota before the api
function runs, while a key without its own gateway key is served through the
stack's fallback key."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from qrpro.domain.clock import day_bucket
from tests.e2e.conftest import Stack, resource, running_stack, template_without


def moto(stack: Stack, service: str) -> Any:
    info = json.loads((stack.data_dir / "local.json").read_text())
    endpoint = info["endpoints"]["dynamodb" if service == "dynamodb" else "moto"]
    return boto3.client(service, endpoint_url=endpoint, region_name=info["region"], aws_access_key_id="local",
                        aws_secret_access_key="local"), info


def gateway_plans(stack: Stack, key_id: str) -> list[str] | None:
    """The usage plans (names) the customer key's gateway key is on; None when it has none."""
    apigw, _ = moto(stack, "apigateway")
    keys = [k for k in apigw.get_api_keys()["items"] if str(k["name"]).endswith(f"/{key_id}")]
    if not keys:
        return None
    return sorted(p["name"] for p in apigw.get_usage_plans(keyId=keys[0]["id"])["items"])


def eventually(probe: Callable[[], Any], expected: Any, within: float = 30.0) -> None:
    """Wait for the stream consumer (asynchronous by design); fail with the last value seen."""
    deadline = time.monotonic() + within
    seen = probe()
    while seen != expected and time.monotonic() < deadline:
        time.sleep(0.3)
        seen = probe()
    assert seen == expected


def test_gateway_keys_follow_the_table_create_plan_change_revoke(stack: Stack) -> None:
    acct = stack.account("business")
    eventually(lambda: gateway_plans(stack, acct["key_id"]), ["qrpro-business"])
    assert stack.api("GET", "/api/user", acct["api_key"]).status == 200

    stack.admin("set-plan", "--user-id", acct["user_id"], "--plan", "agency")
    eventually(lambda: gateway_plans(stack, acct["key_id"]), ["qrpro-agency"])

    spare = stack.admin("create-key", "--user-id", acct["user_id"], "--label", "spare")
    eventually(lambda: gateway_plans(stack, spare["key_id"]), ["qrpro-agency"])
    assert stack.api("DELETE", f"/api/keys/{spare['key_id']}", acct["api_key"]).json()["revoked"] is True
    eventually(lambda: gateway_plans(stack, spare["key_id"]), None)
    assert gateway_plans(stack, acct["key_id"]) == ["qrpro-agency"]


def _no_consumer_and_a_small_quota(resources: dict[str, Any]) -> None:
    """No usagekeys mapping (no gateway key is ever made by the stream) and a business quota of 3."""
    consumer = next(lid for lid, r in resources.items()
                    if r["Type"] == "AWS::Lambda::EventSourceMapping" and "Usagekeys" in lid)
    del resources[consumer]
    resource(resources, "AWS::ApiGateway::UsagePlan", "UsagePlanBusiness")["Quota"]["Limit"] = 3


@pytest.fixture(scope="module")
def small_quota(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = tmp_path_factory.mktemp("usage")
    template = template_without(Path(path) / "template.json", _no_consumer_and_a_small_quota)
    with running_stack(path / "data", "--in-memory", "--template", str(template)) as s:
        yield s


def rate_used(stack: Stack, key_id: str) -> int:
    ddb, info = moto(stack, "dynamodb")
    item = ddb.get_item(TableName=info["table"], ConsistentRead=True,
                        Key={"pk": {"S": f"RATE#{key_id}#{day_bucket(int(time.time()))}"}, "sk": {"S": "RATE"}})
    return int(item.get("Item", {}).get("used", {}).get("N", 0))


def test_a_key_without_its_own_gateway_key_rides_the_fallback_and_a_key_over_its_plan_quota_is_refused(
        small_quota: Stack) -> None:
    stack = small_quota
    acct = stack.account("business")
    # No gateway key of its own: served through the fallback key, which has no quota.
    for _ in range(5):
        reply = stack.api("GET", "/api/user", acct["api_key"])
        assert reply.status == 200 and reply.json()["id"] == acct["user_id"]
    assert gateway_plans(stack, acct["key_id"]) is None

    # The repair tool gives it its own key on the business plan (quota 3 in this template).
    repaired = stack.admin("sync-usage-keys")
    assert repaired["changed"] == [{"key_id": acct["key_id"], "usage_plan": "business", "change": "created"}]
    assert gateway_plans(stack, acct["key_id"]) == ["qrpro-business"]
    for _ in range(3):
        assert stack.api("GET", "/api/user", acct["api_key"]).status == 200
    refused = stack.api("GET", "/api/user", acct["api_key"])
    assert refused.status == 429
    assert refused.json()["error"] == "rate_limited" and refused.json()["window"] == "day"
    assert "spent its daily request budget" in refused.json()["message"]  # the gateway response's body
    assert "X-RateLimit-Limit" not in refused.headers  # the api function (which sets it) never ran
    assert rate_used(stack, acct["key_id"]) == 8  # its exact counter saw only the 8 admitted requests
