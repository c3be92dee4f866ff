"""API Gateway usage keys kept on the right usage plan by `qrpro admin --stack`
(the edge backstop of docs/deploy.md), against DynamoDB Local and moto's
API Gateway and CloudFormation: the stack's outputs name the table and the
three usage plans, as `cdk deploy` leaves them."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from lambdas.authorizer import handler as authorizer
from qrpro.data import apikeys
from qrpro.data import keys as k
from qrpro.data.table import get_one
from qrpro.domain.apikeys import token_hash
from qrpro_cli.main import main
from qrpro_cli.runtime import FakeContext

TIERS = ("business", "team", "agency")


@pytest.fixture
def deployed(table: str, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    for service in ("API_GATEWAY", "CLOUDFORMATION"):  # boto3 service ids, spaces as _
        monkeypatch.setenv(f"AWS_ENDPOINT_URL_{service}", moto_endpoint)
    apigw = boto3.client("apigateway")
    plans = {tier: apigw.create_usage_plan(name=f"{table}-{tier}")["id"] for tier in TIERS}
    stack = f"qrpro-{uuid.uuid4().hex[:8]}"
    outputs = {"TableName": {"Value": table}} | {f"UsagePlan{t.title()}Id": {"Value": plans[t]} for t in TIERS}
    boto3.client("cloudformation").create_stack(StackName=stack, TemplateBody=json.dumps({
        "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}}, "Outputs": outputs}))
    return {"stack": stack, "plans": plans, "apigw": apigw}


def admin(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["admin", *args]) == 0, capsys.readouterr().err
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


def plan_of(deployed: dict[str, Any], usage_key_id: str) -> list[str]:
    """The usage plans an API Gateway key is attached to."""
    return [tier for tier, plan_id in deployed["plans"].items()
            if any(item["id"] == usage_key_id
                   for item in deployed["apigw"].get_usage_plan_keys(usagePlanId=plan_id)["items"])]


def auth_item(token: str) -> dict[str, Any]:
    item = get_one(k.pk_apikey(token_hash(token)), "APIKEY")
    assert item is not None
    return item


def test_a_new_key_gets_a_usage_key_that_the_authorizer_returns(
        deployed: dict[str, Any], capsys: pytest.CaptureFixture[str], table: str) -> None:
    acct = admin(capsys, "create-account", "--stack", deployed["stack"], "--email", "u@example.com",
                 "--plan", "business")
    assert acct["usage_keys"] == [{"key_id": acct["key_id"], "usage_plan": "business"}]
    item = auth_item(acct["api_key"])
    gateway_key = deployed["apigw"].get_api_key(apiKey=item["usage_key_id"], includeValue=True)
    assert gateway_key["value"] == item["usage_key"] and gateway_key["name"] == f"qrpro/{table}/{acct['key_id']}"
    assert gateway_key["enabled"] is True and acct["api_key"] not in json.dumps(gateway_key, default=str)
    assert plan_of(deployed, item["usage_key_id"]) == ["business"]

    event = {"type": "REQUEST", "methodArn": "arn:aws:execute-api:us-east-1:1:api/prod/GET/api/user",
             "headers": {"Authorization": f"Bearer {acct['api_key']}"}}
    policy = authorizer.handler(event, FakeContext("authorizer", "r1"))
    assert policy["usageIdentifierKey"] == item["usage_key"]

    more = admin(capsys, "create-key", "--stack", deployed["stack"], "--user-id", acct["user_id"], "--label", "ci")
    assert {r["key_id"]: r["usage_plan"] for r in more["usage_keys"]} == {
        acct["key_id"]: "business", more["key_id"]: "business"}
    # The first key kept its gateway key: two in all.
    assert len(deployed["apigw"].get_api_keys(nameQuery=f"qrpro/{table}/")["items"]) == 2


def test_keys_follow_the_highest_plan_across_teams_and_plan_changes(
        deployed: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    stack = deployed["stack"]
    owner = admin(capsys, "create-account", "--stack", stack, "--email", "o@example.com", "--plan", "business")
    member = admin(capsys, "create-account", "--stack", stack, "--email", "m@example.com", "--plan", "solo")
    assert member["usage_keys"] == [{"key_id": member["key_id"], "usage_plan": None}]  # solo: no API access
    assert "usage_key" not in auth_item(member["api_key"])

    team = admin(capsys, "create-team", "--stack", stack, "--owner-id", owner["user_id"], "--name", "T",
                 "--plan", "agency")
    admin(capsys, "add-member", "--stack", stack, "--team-id", team["team_id"], "--user-id", member["user_id"],
          "--role", "member")
    assert plan_of(deployed, auth_item(member["api_key"])["usage_key_id"]) == ["agency"]

    # create-team does not sync; sync-usage-keys catches the owner up (and is idempotent).
    first = admin(capsys, "sync-usage-keys", "--stack", stack)
    assert first == {"users": 2, "keys": 2, "pruned": []}
    assert plan_of(deployed, auth_item(owner["api_key"])["usage_key_id"]) == ["agency"]
    assert admin(capsys, "sync-usage-keys", "--stack", stack) == first

    admin(capsys, "set-plan", "--stack", stack, "--team-id", team["team_id"], "--plan", "team")
    assert plan_of(deployed, auth_item(owner["api_key"])["usage_key_id"]) == ["team"]
    assert plan_of(deployed, auth_item(member["api_key"])["usage_key_id"]) == ["team"]
    member_usage_key = auth_item(member["api_key"])["usage_key_id"]
    admin(capsys, "set-plan", "--stack", stack, "--team-id", team["team_id"], "--plan", "solo")
    assert plan_of(deployed, auth_item(owner["api_key"])["usage_key_id"]) == ["business"]
    assert {"usage_key", "usage_key_id", "usage_plan"}.isdisjoint(auth_item(member["api_key"]))
    with pytest.raises(ClientError, match="NotFound"):  # no API access left: the gateway key is gone
        deployed["apigw"].get_api_key(apiKey=member_usage_key)


def test_revoked_keys_lose_their_usage_key_on_sync(
        deployed: dict[str, Any], capsys: pytest.CaptureFixture[str], table: str) -> None:
    acct = admin(capsys, "create-account", "--stack", deployed["stack"], "--email", "r@example.com",
                 "--plan", "team")
    apikeys.revoke(acct["user_id"], acct["key_id"])  # what DELETE /api/keys/{id} does
    out = admin(capsys, "sync-usage-keys", "--stack", deployed["stack"])
    assert out["pruned"] == [acct["key_id"]]
    assert deployed["apigw"].get_api_keys(nameQuery=f"qrpro/{table}/")["items"] == []


def test_sync_without_a_stack_and_an_unknown_stack_are_one_line_errors(
        deployed: dict[str, Any], capsys: pytest.CaptureFixture[str], table: str) -> None:
    with pytest.raises(SystemExit, match="needs --stack"):
        main(["admin", "sync-usage-keys", "--table", table])
    assert main(["admin", "sync-usage-keys", "--stack", "no-such-stack"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("qrpro: no stack 'no-such-stack'") and err.count("\n") == 1
    other = f"other-{uuid.uuid4().hex[:8]}"
    boto3.client("cloudformation").create_stack(StackName=other, TemplateBody=json.dumps({
        "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}}, "Outputs": {"TableName": {"Value": table}}}))
    assert main(["admin", "create-key", "--stack", other, "--user-id", "u"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"qrpro: stack '{other}' has no output UsagePlanBusinessId") and err.count("\n") == 1
