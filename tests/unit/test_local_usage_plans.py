"""The local stack's API Gateway usage plans: the IAM model of API Gateway calls
(verb + path), the usagekeys consumer's least-privilege role from the
template, and the local API port applying usage plans (key, throttle, quota)
before the function runs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from qrpro_cli import iam
from qrpro_cli.provision import Provisioned
from qrpro_cli.rest_api import RestApi
from qrpro_cli.template import Route, Template
from qrpro_cli.usage import Counters, UsagePlans, period

GW = "arn:aws:apigateway:us-east-1::"


@pytest.fixture(scope="module")
def template() -> Template:
    return Template.load()


def test_api_gateway_calls_map_to_the_verb_and_the_path_aws_checks() -> None:
    calls = iam.Calls({})

    def check(operation: str, **params: Any) -> tuple[str, str]:
        c = next(calls.checks("apigateway", operation, params))
        return c.action, c.resource

    assert check("CreateApiKey", name="n", enabled=True) == ("apigateway:POST", f"{GW}/apikeys")
    assert check("GetApiKeys", nameQuery="qrpro/") == ("apigateway:GET", f"{GW}/apikeys")
    assert check("DeleteApiKey", apiKey="k1") == ("apigateway:DELETE", f"{GW}/apikeys/k1")
    assert check("CreateUsagePlanKey", usagePlanId="p1", keyId="k1", keyType="API_KEY") == (
        "apigateway:POST", f"{GW}/usageplans/p1/keys")
    assert check("DeleteUsagePlanKey", usagePlanId="p1", keyId="k1") == (
        "apigateway:DELETE", f"{GW}/usageplans/p1/keys/k1")
    assert check("UpdateUsagePlan", usagePlanId="p1") == ("apigateway:PATCH", f"{GW}/usageplans/p1")


def _consumer_policy(template: Template) -> tuple[iam.Policy, dict[str, str]]:
    fn = template.function_by_name("usagekeys")
    prov = Provisioned(template, None)
    plans = {lid: f"id-{lid[-6:]}" for lid, _ in template.of_type("AWS::ApiGateway::UsagePlan")}
    prov.attrs.update({(lid, None): plan_id for lid, plan_id in plans.items()})
    prov.attrs.update({(lid, "StreamArn"): f"{iam.table_arn(lid)}/stream/x"
                       for lid, _ in template.of_type("AWS::DynamoDB::Table")})
    tiers = {tier: str(prov.resolve(fn.environment[f"USAGE_PLAN_{tier.upper()}"]))
             for tier in ("business", "team", "agency")}
    fallback = next(plans[lid] for lid in plans if "Fallback" in lid)
    return iam.Policy(prov.resolve(template.role_policies(fn.role))), {**tiers, "fallback": fallback}


def test_the_consumer_role_allows_exactly_its_api_gateway_calls(template: Template) -> None:
    policy, plans = _consumer_policy(template)
    calls = iam.Calls({})

    def allowed(operation: str, **params: Any) -> bool:
        return all(policy.allows(c) for c in calls.checks("apigateway", operation, params))

    assert allowed("CreateApiKey", name="n", enabled=True) and allowed("GetApiKeys", nameQuery="q")
    assert allowed("DeleteApiKey", apiKey="k1")
    for tier in ("business", "team", "agency"):
        assert allowed("CreateUsagePlanKey", usagePlanId=plans[tier], keyId="k1", keyType="API_KEY")
        assert allowed("DeleteUsagePlanKey", usagePlanId=plans[tier], keyId="k1")
    # Never the fallback plan, never a change to a plan or a key, nothing else.
    assert not allowed("DeleteUsagePlanKey", usagePlanId=plans["fallback"], keyId="k1")
    assert not allowed("CreateUsagePlanKey", usagePlanId=plans["fallback"], keyId="k1", keyType="API_KEY")
    assert not allowed("UpdateUsagePlan", usagePlanId=plans["business"])
    assert not allowed("UpdateApiKey", apiKey="k1")
    assert not allowed("GetApiKey", apiKey="k1")
    assert not allowed("DeleteUsagePlan", usagePlanId=plans["business"])


def test_the_api_function_has_no_api_gateway_permission(template: Template) -> None:
    for name in ("api", "authorizer", "export"):
        fn = template.function_by_name(name)
        prov = Provisioned(template, None)
        policy = iam.Policy(prov.resolve(template.role_policies(fn.role)))
        for op, params in (("CreateApiKey", {}), ("DeleteApiKey", {"apiKey": "k"}), ("GetApiKeys", {})):
            assert not policy.allows(next(iam.Calls({}).checks("apigateway", op, params))), (name, op)


def test_quota_per_key_per_utc_day_and_a_token_bucket_throttle() -> None:
    counters = Counters()
    plan = {"quota": {"limit": 2, "period": "DAY"}}
    day = 1_796_083_200.0  # a UTC midnight
    assert [counters.admit("k1", plan, day + i) for i in range(3)] == [None, None, "QUOTA_EXCEEDED"]
    assert counters.admit("k2", plan, day + 5) is None  # per key
    assert counters.admit("k1", plan, day + 86_400) is None  # the next UTC day
    assert period("DAY", day - 1) != period("DAY", day)

    throttled = {"throttle": {"rateLimit": 1.0, "burstLimit": 2}}
    assert [counters.admit("t", throttled, 100.0) for _ in range(3)] == [None, None, "THROTTLED"]
    assert counters.admit("t", throttled, 101.0) is None  # one token back after a second
    # A throttled request does not count against the quota.
    both = {"throttle": {"rateLimit": 0.0, "burstLimit": 1}, "quota": {"limit": 1, "period": "DAY"}}
    assert [counters.admit("b", both, day) for _ in range(2)] == [None, "THROTTLED"]


class FakeApigw:
    """moto's answers for one key on one plan of the stage (a paginator over one page)."""

    def __init__(self, keys: list[dict[str, Any]], plans: dict[str, list[dict[str, Any]]]) -> None:
        self.keys, self.plans = keys, plans

    def get_paginator(self, name: str) -> Any:
        outer = self

        class Pages:
            def paginate(self, **kw: Any) -> list[dict[str, Any]]:
                if name == "get_api_keys":
                    return [{"items": outer.keys}]
                return [{"items": outer.plans.get(kw["keyId"], [])}]

        return Pages()


class FakeRuntime:
    def __init__(self, usage_key: str | None) -> None:
        self.usage_key = usage_key
        self.invoked: list[str] = []

    def invoke(self, name: str, event: dict[str, Any], kind: str, request_id: str = "") -> dict[str, Any]:
        self.invoked.append(name)
        if name == "authorizer":
            result: dict[str, Any] = {"principalId": "u", "context": {"user_id": "u"}, "policyDocument": {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": event["methodArn"]}]}}
            if self.usage_key:
                result["usageIdentifierKey"] = self.usage_key
            return {"ok": True, "result": result}
        return {"ok": True, "result": {"statusCode": 200, "body": "{}"}}


def _api(template: Template, usage_key: str | None, keys: list[dict[str, Any]],
         plans: dict[str, list[dict[str, Any]]]) -> tuple[RestApi, FakeRuntime]:
    runtime = FakeRuntime(usage_key)
    routes = [Route("/api/{proxy+}", "ANY", "ApiFn", True, True)]
    usage = UsagePlans("local", "prod", FakeApigw(keys, plans), clock=lambda: 1_796_083_200.0)
    api = RestApi(runtime, routes, {"ApiFn": "api"}, "authorizer", template.gateway_responses(), "prod", usage)
    return api, runtime  # type: ignore[arg-type]


STAGE = [{"apiId": "local", "stage": "prod"}]


def test_the_api_port_refuses_before_the_function_runs(template: Template) -> None:
    responses = template.gateway_responses()
    key = {"id": "k1", "value": "v" * 20, "enabled": True}
    on_plan = {"k1": [{"id": "p1", "apiStages": STAGE, "quota": {"limit": 1, "period": "DAY"}}]}

    api, runtime = _api(template, "v" * 20, [key], on_plan)
    first = api.handle("GET", "/api/user", [("Authorization", "Bearer x")], b"")
    second = api.handle("GET", "/api/user", [("Authorization", "Bearer x")], b"")
    assert first[0] == 200 and runtime.invoked == ["authorizer", "api", "authorizer"]
    quota_status, quota_body = responses["QUOTA_EXCEEDED"]
    assert second[0] == quota_status == 429 and json.loads(second[2]) == json.loads(quota_body)

    invalid_status, invalid_body = responses["INVALID_API_KEY"]
    for usage_key, keys, plans in ((None, [key], on_plan),  # the authorizer returned none
                                   ("unknown" * 3, [key], on_plan),  # no such key
                                   ("v" * 20, [{**key, "enabled": False}], on_plan),  # disabled
                                   ("v" * 20, [key], {"k1": [{"id": "p2", "apiStages": [
                                       {"apiId": "other", "stage": "prod"}]}]})):  # not on this stage
        api, runtime = _api(template, usage_key, keys, plans)
        status, _, body = api.handle("GET", "/api/user", [("Authorization", "Bearer x")], b"")
        assert (status, json.loads(body)) == (invalid_status, json.loads(invalid_body))
        assert runtime.invoked == ["authorizer"]
