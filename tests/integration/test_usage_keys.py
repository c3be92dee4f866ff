"""Gateway keys follow the table: the ``usagekeys`` stream consumer and the
authorizer against DynamoDB Local (its real stream, filtered by the
template's filter criteria) and moto's API Gateway; and the repair tool
``qrpro admin sync-usage-keys --stack NAME`` against moto's CloudFormation
outputs, as `cdk deploy` leaves them.

API Gateway's 10,000-keys quota and CreateApiKey's throttling cannot be
reached in moto: they are injected by making ``create_api_key`` raise the
errors AWS answers (``LimitExceededException``, ``TooManyRequestsException``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from lambdas.authorizer import handler as authorizer
from lambdas.usagekeys import handler as consumer
from qrpro.data import accounts, usage_keys
from qrpro.data import keys as k
from qrpro.data.table import get_one
from qrpro.domain.apikeys import token_hash
from qrpro.services import keys as key_service
from qrpro_cli.main import main
from qrpro_cli.runtime import FakeContext
from qrpro_cli.template import Template
from qrpro_cli.triggers import matches, stream_record
from tests.conftest import reset_caches

TIERS = ("business", "team", "agency")
FALLBACK = "qrpro-fallback-integration-test-0001"  # (set per test: not the suite default)


class Stream:
    """The table's DynamoDB Local stream, read from where the last call stopped, and handed to the
    consumer through the filter criteria of the template's mapping (as Lambda does)."""

    def __init__(self, table: str) -> None:
        self.arn = boto3.client("dynamodb").describe_table(TableName=table)["Table"]["LatestStreamArn"]
        self.client = boto3.client("dynamodbstreams")
        self.iterators: dict[str, str] = {}
        mapping = next(m for m in Template.load().mappings() if "Usagekeys" in m.function)
        self.filters = [json.loads(f["Pattern"]) for f in mapping.props["FilterCriteria"]["Filters"]]
        self.handed: list[dict[str, Any]] = []

    def deliver(self, lose: bool = False) -> dict[str, Any]:
        """Hand the new records to the consumer (``lose``: read past them, as if they were lost)."""
        records = []
        for shard in self.client.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"]:
            sid = shard["ShardId"]
            if sid not in self.iterators:
                self.iterators[sid] = self.client.get_shard_iterator(
                    StreamArn=self.arn, ShardId=sid, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            out = self.client.get_records(ShardIterator=self.iterators[sid])
            self.iterators[sid] = out.get("NextShardIterator", self.iterators[sid])
            records += [stream_record(r, self.arn) for r in out.get("Records", [])]
        wanted = [r for r in records if any(matches(f, r) for f in self.filters) and not lose]
        self.handed += wanted
        if not wanted:
            return {"batchItemFailures": []}
        result: dict[str, Any] = consumer.handler({"Records": wanted}, FakeContext("usagekeys", str(uuid.uuid4())))
        return result


@pytest.fixture
def gateway(table: str, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    for service in ("API_GATEWAY", "CLOUDFORMATION"):  # boto3 service ids, spaces as _
        monkeypatch.setenv(f"AWS_ENDPOINT_URL_{service}", moto_endpoint)
    apigw = boto3.client("apigateway")
    plans = {tier: apigw.create_usage_plan(name=f"{table}-{tier}")["id"] for tier in TIERS}
    for tier, plan_id in plans.items():
        monkeypatch.setenv(f"USAGE_PLAN_{tier.upper()}", plan_id)
    monkeypatch.setenv("FALLBACK_USAGE_KEY", FALLBACK)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "QRPro")
    reset_caches()
    yield {"plans": plans, "apigw": apigw, "stream": Stream(table)}
    for item in apigw.get_api_keys(nameQuery=f"qrpro/{table}/")["items"]:
        apigw.delete_api_key(apiKey=item["id"])


def plan_of(gateway: dict[str, Any], usage_key_id: str) -> list[str]:
    """The usage plans an API Gateway key is attached to."""
    return [tier for tier, plan_id in gateway["plans"].items()
            if any(item["id"] == usage_key_id
                   for item in gateway["apigw"].get_usage_plan_keys(usagePlanId=plan_id)["items"])]


def auth_item(token: str) -> dict[str, Any]:
    item = get_one(k.pk_apikey(token_hash(token)), "APIKEY")
    assert item is not None
    return item


def usage_identifier(token: str) -> str:
    event = {"type": "REQUEST", "methodArn": "arn:aws:execute-api:us-east-1:1:api/prod/GET/api/user",
             "headers": {"Authorization": f"Bearer {token}"}}
    policy = authorizer.handler(event, FakeContext("authorizer", "r1"))
    assert policy["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    return str(policy["usageIdentifierKey"])


def account(plan: str) -> tuple[str, str, str]:
    user_id = accounts.create_account(f"{uuid.uuid4().hex[:8]}@example.com", plan, 1_000)
    key_id, token = key_service.create(user_id, "default", 1_000)
    return user_id, key_id, token


def test_a_new_key_rides_on_the_fallback_until_the_stream_gives_it_its_own_gateway_key(
        gateway: dict[str, Any], table: str) -> None:
    _user_id, key_id, token = account("business")
    assert usage_identifier(token) == FALLBACK  # created, not synced yet: never refused

    assert gateway["stream"].deliver() == {"batchItemFailures": []}
    item = auth_item(token)
    gateway_key = gateway["apigw"].get_api_key(apiKey=item["usage_key_id"], includeValue=True)
    assert gateway_key["value"] == item["usage_key"] and gateway_key["name"] == f"qrpro/{table}/{key_id}"
    assert gateway_key["enabled"] is True and token not in json.dumps(gateway_key, default=str)
    assert plan_of(gateway, item["usage_key_id"]) == ["business"]
    assert usage_identifier(token) == item["usage_key"]
    # Only the key listing reached the consumer: not the profile's insert, the email item or the auth item.
    assert [(r["eventName"], r["dynamodb"]["Keys"]["sk"]["S"]) for r in gateway["stream"].handed] == [
        ("INSERT", k.sk_key(key_id))]


def test_revoking_a_key_deletes_its_gateway_key(gateway: dict[str, Any], table: str) -> None:
    user_id, key_id, token = account("team")
    gateway["stream"].deliver()
    usage_key_id = auth_item(token)["usage_key_id"]

    key_service.revoke(user_id, key_id)  # what DELETE /api/keys/{id} does
    assert gateway["stream"].deliver() == {"batchItemFailures": []}
    with pytest.raises(ClientError, match="NotFound"):
        gateway["apigw"].get_api_key(apiKey=usage_key_id)
    assert gateway["apigw"].get_api_keys(nameQuery=f"qrpro/{table}/")["items"] == []


def test_plan_and_membership_changes_move_the_keys_and_other_profile_changes_cost_nothing(
        gateway: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    owner_id, _, owner_token = account("business")
    member_id, _, member_token = account("solo")
    gateway["stream"].deliver()
    assert plan_of(gateway, auth_item(owner_token)["usage_key_id"]) == ["business"]
    assert "usage_key" not in auth_item(member_token)  # solo: no API access, no gateway key

    accounts.set_plan(k.pk_user(owner_id), "team", None, 2_000)
    gateway["stream"].deliver()
    assert plan_of(gateway, auth_item(owner_token)["usage_key_id"]) == ["team"]
    assert get_one(k.pk_user(owner_id), k.PROFILE)["synced_plan"] == "team"  # type: ignore[index]

    team_id = accounts.create_team(owner_id, "T", "agency", 2_000)
    accounts.add_member(team_id, member_id, "member", 2_000)
    gateway["stream"].deliver()
    assert plan_of(gateway, auth_item(owner_token)["usage_key_id"]) == ["agency"]
    assert plan_of(gateway, auth_item(member_token)["usage_key_id"]) == ["agency"]

    accounts.set_plan(k.pk_team(team_id), "solo", None, 3_000)  # every member moves back
    gateway["stream"].deliver()
    assert plan_of(gateway, auth_item(owner_token)["usage_key_id"]) == ["team"]
    assert {"usage_key", "usage_key_id", "usage_plan"}.isdisjoint(auth_item(member_token))
    assert usage_identifier(member_token) == FALLBACK

    # A profile change that is not a plan change (codes_used, ...) reads and calls nothing.
    monkeypatch.setattr(usage_keys, "sync_user", lambda *a: pytest.fail("synced on a non-plan change"))
    accounts.use_team(owner_id, team_id)
    assert gateway["stream"].deliver() == {"batchItemFailures": []}


def _failing_create(gateway: dict[str, Any], code: str, monkeypatch: pytest.MonkeyPatch) -> None:
    class Apigw:
        def __getattr__(self, name: str) -> Any:
            return getattr(gateway["apigw"], name)

        def create_api_key(self, **kw: Any) -> Any:
            raise ClientError({"Error": {"Code": code, "Message": "injected"}}, "CreateApiKey")

    monkeypatch.setattr(usage_keys, "_apigw", Apigw)


def test_past_the_account_key_quota_a_key_stays_on_the_fallback_without_failing(
        gateway: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    _failing_create(gateway, "LimitExceededException", monkeypatch)
    _, _key_id, token = account("agency")
    assert gateway["stream"].deliver() == {"batchItemFailures": []}  # not retried: nothing to wait for
    assert "usage_key" not in auth_item(token)
    assert usage_identifier(token) == FALLBACK
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [m["UsageKeysOnFallback"] for m in emitted if "UsageKeysOnFallback" in m] in ([1.0], [[1.0]])


def test_a_throttled_create_is_retried_by_the_mapping(
        gateway: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    _failing_create(gateway, "TooManyRequestsException", monkeypatch)
    _, _key_id, token = account("business")
    out = gateway["stream"].deliver()
    assert [f["itemIdentifier"] for f in out["batchItemFailures"]] == [
        gateway["stream"].handed[0]["dynamodb"]["SequenceNumber"]]
    assert usage_identifier(token) == FALLBACK


# --- the repair tool -------------------------------------------------------------------------

@pytest.fixture
def deployed(gateway: dict[str, Any], table: str) -> dict[str, Any]:
    stack = f"qrpro-{uuid.uuid4().hex[:8]}"
    outputs = {"TableName": {"Value": table}} | {
        f"UsagePlan{t.title()}Id": {"Value": gateway["plans"][t]} for t in TIERS}
    boto3.client("cloudformation").create_stack(StackName=stack, TemplateBody=json.dumps({
        "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}}, "Outputs": outputs}))
    return {**gateway, "stack": stack}


def admin(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["admin", *args]) == 0, capsys.readouterr().err
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


def test_sync_usage_keys_repairs_what_the_stream_missed_reports_it_and_is_idempotent(
        deployed: dict[str, Any], capsys: pytest.CaptureFixture[str], table: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    stack, original = deployed["stack"], usage_keys._apigw
    _user_id, _key_id, token = account("business")
    revoked_user, revoked_key, _ = account("team")
    deployed["stream"].deliver()
    key_service.revoke(revoked_user, revoked_key)
    deployed["stream"].deliver(lose=True)  # its REMOVE record is lost
    _failing_create(deployed, "LimitExceededException", monkeypatch)
    _late_user, late_key, _ = account("agency")
    deployed["stream"].deliver()  # the quota: left on the fallback
    monkeypatch.setattr(usage_keys, "_apigw", original)

    first = admin(capsys, "sync-usage-keys", "--stack", stack)
    assert first == {"users": 3, "keys": 2, "on_fallback": [], "pruned": [revoked_key],
                     "changed": [{"key_id": late_key, "usage_plan": "agency", "change": "created"}]}
    assert admin(capsys, "sync-usage-keys", "--stack", stack) == {
        "users": 3, "keys": 2, "changed": [], "on_fallback": [], "pruned": []}
    assert plan_of(deployed, auth_item(token)["usage_key_id"]) == ["business"]


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
    assert main(["admin", "sync-usage-keys", "--stack", other]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"qrpro: stack '{other}' has no output UsagePlanBusinessId") and err.count("\n") == 1
