"""The local stack's reading of the synthesized template: IAM evaluation (and
the gaps it fills in moto's evaluator), events shaped as AWS sends them, REST
routing, and event source mapping semantics."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import botocore.client
import pytest
from botocore.exceptions import ClientError
from moto.iam.access_control import IAMPolicy, PermissionResult

from qrpro_cli import events, iam
from qrpro_cli.function_url import FunctionUrlEdge
from qrpro_cli.provision import Provisioned
from qrpro_cli.rest_api import Match, authorizer_event, build_event, match
from qrpro_cli.template import Route, Template
from qrpro_cli.triggers import failed_items, matches, schedule_seconds, scheduled_event, sqs_event, stream_record

PARK = {"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": iam.table_arn("t"),
        "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["SCANPENDING#*"]}}}


def put(pk: str) -> iam.Check:
    return next(iam.Calls({"t": "pk"}).checks("dynamodb", "PutItem", {"TableName": "t", "Item": {"pk": {"S": pk}}}))


@pytest.fixture(scope="module")
def template() -> Template:
    return Template.load()


def test_leading_keys_conditions_are_evaluated_where_moto_alone_would_allow() -> None:
    doc = {"Version": "2012-10-17", "Statement": [PARK]}
    # The gap: moto ignores operators other than StringEquals, so any key would pass.
    assert IAMPolicy(json.dumps(doc)).is_action_permitted("dynamodb:PutItem", iam.table_arn("t")) == \
        PermissionResult.PERMITTED
    policy = iam.Policy([doc])
    assert policy.allows(put("SCANPENDING#2026-11-30#abc"))
    assert not policy.allows(put("CODE#abc"))
    assert not policy.allows(iam.Check("dynamodb:GetItem", iam.table_arn("t")))


def test_an_explicit_deny_wins_and_unknown_operators_fail_loudly() -> None:
    allow_all = {"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}
    deny = {"Effect": "Deny", "Action": "dynamodb:PutItem", "Resource": "*",
            "Condition": {"StringLike": {"dynamodb:LeadingKeys": "CODE#*"}}}
    policy = iam.Policy([{"Statement": [allow_all, deny]}])
    assert not policy.allows(put("CODE#1")) and policy.allows(put("USER#1"))
    odd = iam.Policy([{"Statement": [{**allow_all, "Condition": {"NumericLessThan": {"x": "1"}}}]}])
    with pytest.raises(ValueError, match="NumericLessThan"):
        odd.allows(put("USER#1"))


def test_each_api_call_maps_to_the_checks_aws_makes() -> None:
    calls = iam.Calls({"t": "pk"})
    transact = list(calls.checks("dynamodb", "TransactWriteItems", {"TransactItems": [
        {"Put": {"TableName": "t", "Item": {"pk": {"S": "A"}}}},
        {"ConditionCheck": {"TableName": "t", "Key": {"pk": {"S": "B"}}}}]}))
    assert [(c.action, dict(c.context)["dynamodb:LeadingKeys"]) for c in transact] == [
        ("dynamodb:PutItem", ("A",)), ("dynamodb:ConditionCheckItem", ("B",))]
    query = next(calls.checks("dynamodb", "Query", {
        "TableName": "t", "KeyConditionExpression": "#p = :p AND begins_with(sk, :s)",
        "ExpressionAttributeNames": {"#p": "pk"}, "ExpressionAttributeValues": {":p": {"S": "CODE#1"}, ":s": {}}}))
    assert dict(query.context)["dynamodb:LeadingKeys"] == ("CODE#1",)
    index = next(calls.checks("dynamodb", "Query", {"TableName": "t", "IndexName": "gsi1"}))
    assert index.resource == iam.table_arn("t") + "/index/gsi1"
    part = next(calls.checks("s3", "UploadPart", {"Bucket": "b", "Key": "k/x.zip"}))
    assert (part.action, part.resource) == ("s3:PutObject", "arn:aws:s3:::b/k/x.zip")
    batch = next(calls.checks("sqs", "SendMessageBatch", {"QueueUrl": "http://127.0.0.1:1/123456789012/q"}))
    assert (batch.action, batch.resource) == ("sqs:SendMessage", iam.queue_arn("q"))


def test_a_call_outside_the_role_fails_as_in_aws(monkeypatch: pytest.MonkeyPatch, template: Template) -> None:
    """The redirect's role from the template: its parking write is allowed, any other write refused."""
    sent: list[str] = []
    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call",
                        lambda client, op, params: sent.append(op) or {})
    redirect = template.function_by_name("redirect")
    prov = Provisioned(template, None)
    table = next(lid for lid, _ in template.of_type("AWS::DynamoDB::Table") if "Idempotency" not in lid)
    name = prov.attr(table, None)
    prov.attrs.update({(table, None): name, (table, "Arn"): iam.table_arn(name)})
    iam.enforce(iam.Policy(prov.resolve(template.role_policies(redirect.role))), iam.Calls({name: "pk"}),
                "RedirectRole", "redirect")
    ddb = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    ddb.put_item(TableName=name, Item={"pk": {"S": "SCANPENDING#1"}, "sk": {"S": "x"}})
    with pytest.raises(ClientError) as refused:
        ddb.put_item(TableName=name, Item={"pk": {"S": "CODE#1"}, "sk": {"S": "x"}})
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "dynamodb:PutItem" in refused.value.response["Error"]["Message"]
    with pytest.raises(ClientError):
        ddb.update_item(TableName=name, Key={"pk": {"S": "SCANPENDING#1"}, "sk": {"S": "x"}})
    assert sent == ["PutItem"]


def test_every_event_kind_validates_against_the_parser_models() -> None:
    rest = build_event("POST", "/api/codes?x=1", [("Content-Type", "application/json")], b"{}", "r1",
                       resource="/api/{proxy+}", path_parameters={"proxy": "codes"})
    events.validate("apigateway", rest)
    events.validate("authorizer", authorizer_event(rest, "arn:aws:execute-api:us-east-1:1:local/prod/POST/api"))
    edge = FunctionUrlEdge(None, "redirect", ["User-Agent", "CloudFront-Viewer-Country"], ["GET", "HEAD"])  # type: ignore[arg-type]
    url = edge.event("GET", "/Abc1234?utm=1", [("User-Agent", "x"), ("Host", "a"), ("Cookie", "c=1")], b"", "r2")
    events.validate("function-url", url)
    assert url["headers"] == {"user-agent": "x"} and url["rawQueryString"] == ""  # only the policy's headers
    events.validate("sqs", sqs_event([{"MessageId": "m", "ReceiptHandle": "h", "Body": "{}", "MD5OfBody": "x",
                                       "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1",
                                                      "SenderId": "s", "ApproximateFirstReceiveTimestamp": "1"}}],
                                     iam.queue_arn("q")))
    record = stream_record({"eventID": "e", "eventName": "INSERT", "dynamodb": {
        "ApproximateCreationDateTime": datetime.now(UTC), "Keys": {"pk": {"S": "EVENT#1"}},
        "NewImage": {"pk": {"S": "EVENT#1"}}, "SequenceNumber": "1", "SizeBytes": 10,
        "StreamViewType": "NEW_IMAGE"}}, "arn:aws:dynamodb:us-east-1:1:table/t/stream/x")
    events.validate("dynamodb-stream", {"Records": [record]})
    events.validate("schedule", scheduled_event("arn:aws:events:us-east-1:1:rule/r"))
    with pytest.raises(events.InvalidEvent):
        events.validate("apigateway", {**rest, "requestContext": {}})


def test_rest_routing_prefers_exact_parts_and_the_method_over_any() -> None:
    routes = [Route("/api", "ANY", "Api", True, False), Route("/api/{proxy+}", "ANY", "Api", True, False),
              Route("/api/user/export", "GET", "Export", True, False),
              Route("/api/user/export", "ANY", "Api", True, False),
              Route("/docs/openapi.json", "GET", "Api", False, False)]
    found = match(routes, "GET", "/api/user/export/")
    assert isinstance(found, Match) and found.route.function == "Export"
    found = match(routes, "DELETE", "/api/user/export")
    assert isinstance(found, Match) and found.route.function == "Api"
    found = match(routes, "GET", "/api/codes/1")
    assert isinstance(found, Match) and found.path_parameters == {"proxy": "codes/1"}
    assert match(routes, "POST", "/docs/openapi.json") is False
    assert match(routes, "GET", "/elsewhere") is None


def test_the_routes_follow_the_template(template: Template) -> None:
    doc = json.loads(json.dumps(template.doc))
    method = next(r for r in doc["Resources"].values() if r["Type"] == "AWS::ApiGateway::Method"
                  and r["Properties"]["HttpMethod"] == "GET" and "Export" in json.dumps(r["Properties"]))
    method["Properties"]["HttpMethod"] = "POST"
    before = {(r.path, r.method) for r in template.routes()}
    after = {(r.path, r.method) for r in Template(doc).routes()}
    assert before - after == {("/api/user/export", "GET")} and after - before == {("/api/user/export", "POST")}


def test_a_schedule_sends_its_targets_input_instead_of_the_event(template: Template) -> None:
    """EventBridge: with a target's Input, "nothing from the event itself is passed to the target"."""
    from qrpro_cli.triggers import ScheduleTrigger

    doc = json.loads(json.dumps(template.doc))
    rule = next(r for r in doc["Resources"].values() if r["Type"] == "AWS::Events::Rule"
                and "Fanout" in json.dumps(r["Properties"]["Targets"]))
    rule["Properties"]["Targets"][0]["Input"] = '{"job":"compact"}'
    assert [s.input for s in Template(doc).schedules() if s.input] == ['{"job":"compact"}']
    sent: list[Any] = []

    class Runtime:
        def invoke(self, function: str, event: Any, kind: str) -> dict[str, Any]:
            events.validate(kind, event)  # as the real runtime does before any invocation
            sent.append(event)
            return {"ok": True}

    for constant in ('{"job":"compact"}', None):
        trigger = ScheduleTrigger(Runtime(), "scans", "arn:aws:events:us-east-1:1:rule/r", 0, constant)  # type: ignore[arg-type]
        trigger.poll()
    assert sent[0] == {"job": "compact"} and sent[1]["source"] == "aws.events"


def test_mapping_answers_are_read_as_lambda_reads_them() -> None:
    ok: dict[str, Any] = {"ok": True, "result": {"batchItemFailures": [{"itemIdentifier": "2"}]}}
    assert failed_items(ok, ["1", "2"], report_failures=True) == ["2"]
    assert failed_items(ok, ["1", "2"], report_failures=False) == []  # ignored without the flag
    assert failed_items({"ok": True, "result": {"batchItemFailures": [{"itemIdentifier": ""}]}}, ["1"], True) is None
    assert failed_items({"ok": False}, ["1"], True) is None
    pattern = {"eventName": ["INSERT"], "dynamodb": {"Keys": {"pk": {"S": [{"prefix": "EVENT#"}]}}}}
    assert matches(pattern, {"eventName": "INSERT", "dynamodb": {"Keys": {"pk": {"S": "EVENT#1"}}}})
    assert not matches(pattern, {"eventName": "MODIFY", "dynamodb": {"Keys": {"pk": {"S": "EVENT#1"}}}})
    assert not matches(pattern, {"eventName": "INSERT", "dynamodb": {"Keys": {"pk": {"S": "CODE#1"}}}})
    assert schedule_seconds("rate(5 minutes)") == 300 and schedule_seconds("rate(1 hour)") == 3600


def test_a_stale_stream_iterator_is_renewed_from_the_checkpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB Local refuses an iterator taken on a then-empty shard once records arrive
    (TrimmedDataAccessException); the runner takes a new one from its checkpoint and loses nothing."""
    from qrpro_cli import triggers

    class Streams:
        def __init__(self) -> None:
            self.iterator_calls: list[dict[str, Any]] = []
            self.stale = True

        def get_shard_iterator(self, **kw: Any) -> dict[str, str]:
            self.iterator_calls.append(kw)
            return {"ShardIterator": f"it{len(self.iterator_calls)}"}

        def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:
            if self.stale:
                self.stale = False
                raise ClientError({"Error": {"Code": "TrimmedDataAccessException", "Message": "x"}}, "GetRecords")
            return {"Records": [{"eventID": "e", "eventName": "INSERT", "dynamodb": {
                "ApproximateCreationDateTime": 1, "Keys": {"pk": {"S": "EVENT#1"}}, "SequenceNumber": "7",
                "SizeBytes": 1, "StreamViewType": "NEW_IMAGE"}}], "NextShardIterator": "next"}

        def describe_stream(self, StreamArn: str) -> dict[str, Any]:
            return {"StreamDescription": {"Shards": [{"ShardId": "s1"}]}}

    class Ddb:
        def describe_table(self, TableName: str) -> dict[str, Any]:
            return {"Table": {"LatestStreamArn": "arn:aws:dynamodb:us-east-1:1:table/t/stream/x"}}

    streams = Streams()
    monkeypatch.setattr(triggers.boto3, "client", lambda name: streams if name == "dynamodbstreams" else Ddb())
    seen: list[list[str]] = []

    class Runtime:
        def invoke(self, name: str, event: dict[str, Any], kind: str) -> dict[str, Any]:
            seen.append([r["dynamodb"]["SequenceNumber"] for r in event["Records"]])
            return {"ok": True, "result": {"batchItemFailures": []}}

    trigger = triggers.StreamTrigger(Runtime(), "events", "arn:fn", "t", {}, None, None)  # type: ignore[arg-type]
    trigger.positions["s1"] = "5"
    trigger.poll()  # the stale iterator: dropped
    trigger.poll()  # a new one, after the checkpoint
    assert seen == [["7"]] and trigger.positions["s1"] == "7"
    assert [c.get("SequenceNumber") for c in streams.iterator_calls] == ["5", "5"]


class FailingRuntime:
    """A function that fails its first ``failures`` invocations (what the local runtime answers)."""

    def __init__(self, failures: int) -> None:
        self.failures, self.calls = failures, 0

    def invoke(self, function: str, event: Any, kind: str) -> dict[str, Any]:
        events.validate(kind, event)
        self.calls += 1
        if self.calls <= self.failures:
            return {"ok": False, "type": "RuntimeError", "message": "table unreachable",
                    "trace": "Traceback (most recent call last):\nRuntimeError: table unreachable"}
        return {"ok": True, "result": None}


@pytest.mark.parametrize(("failures", "retries", "max_age", "calls", "condition"), [
    (5, 1, 3600, 2, "RetriesExhausted"),  # 1 retry: two attempts, then the destination
    (1, 2, 3600, 2, None),  # the retry succeeds: nothing lands anywhere
    (5, 2, 0.01, 1, "EventAgeExceeded"),  # the retry would run an event older than the maximum age
])
def test_a_scheduled_invocation_is_retried_then_lands_in_its_destination(
        failures: int, retries: int, max_age: float, calls: int, condition: str | None) -> None:
    """Lambda's asynchronous invocation as AWS documents it: MaximumRetryAttempts retries while the
    event is younger than MaximumEventAgeInSeconds, then the invocation record goes to the on-failure
    destination (requestContext.condition, approximateInvokeCount, requestPayload, responsePayload)."""
    from moto import mock_aws

    from qrpro_cli.triggers import AsyncInvoke, ScheduleTrigger

    with mock_aws():
        sqs = boto3.client("sqs")
        url = sqs.create_queue(QueueName="scheduled-failures")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        runtime = FailingRuntime(failures)
        fn_arn = "arn:aws:lambda:us-east-1:123456789012:function:qrpro-ExpiryFnFunction"
        trigger = ScheduleTrigger(runtime, "expiry", "arn:aws:events:us-east-1:123456789012:rule/r", 0,  # type: ignore[arg-type]
                                  function_arn=fn_arn, config=AsyncInvoke(retries, max_age, arn),
                                  retry_delays=(0.05, 0.05))
        trigger.poll()
        assert runtime.calls == calls
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    if condition is None:
        assert messages == []
        return
    (message,) = messages
    record = json.loads(message["Body"])
    assert record["version"] == "1.0" and record["timestamp"].endswith("Z")
    assert record["requestContext"]["condition"] == condition
    assert record["requestContext"]["approximateInvokeCount"] == calls
    assert record["requestContext"]["functionArn"] == f"{fn_arn}:$LATEST"
    assert record["requestPayload"]["source"] == "aws.events"  # the scheduled event itself
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    assert record["responsePayload"]["errorType"] == "RuntimeError"
    assert record["responsePayload"]["errorMessage"] == "table unreachable"


def test_every_schedule_runs_with_its_functions_async_invoke_config(template: Template) -> None:
    """What the local scheduler reads from the template: each scheduled function's EventInvokeConfig."""
    from qrpro_cli.triggers import AsyncInvoke

    configs = template.async_configs()
    functions = template.functions()
    scheduled = {functions[s.function].name: configs.get(s.function) for s in template.schedules()}
    assert set(scheduled) == {"expiry", "scans", "fanout"}
    for name, config in scheduled.items():
        assert config is not None, f"{name} is scheduled without an EventInvokeConfig"
        parsed = AsyncInvoke.from_config(config, "arn:aws:sqs:us-east-1:123456789012:q")
        assert (parsed.retries, parsed.max_age) == (0, {"scans": 300, "expiry": 900, "fanout": 60}[name])
    assert AsyncInvoke.from_config({}, None) == AsyncInvoke(2, 6 * 3600, None)  # AWS's defaults


def test_a_container_that_outgrows_its_memory_size_is_killed_as_lambda_kills_it() -> None:
    """Lambda stops a function whose memory passes its MemorySize (Runtime.ExitError, "signal:
    killed"); the local runtime does too, so a fold that outgrows its function fails here first."""
    from qrpro_cli.runtime import FunctionSpec, Runtime

    runtime = Runtime({"hog": FunctionSpec(name="hog", handler="tests.helpers.memory_hog.handler", env={},
                                           memory=256)}, workers=1)
    try:
        assert runtime.invoke("hog", {"mb": 100}, "schedule-input") == {"ok": True, "result": 100}
        out = runtime.invoke("hog", {"mb": 400}, "schedule-input")
        assert (out["ok"], out["type"]) == (False, "Runtime.ExitError") and "killed" in out["message"]
        assert runtime.invoke("hog", {"mb": 50}, "schedule-input")["ok"]  # a new container takes the next event
    finally:
        runtime.close()
