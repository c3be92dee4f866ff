"""Assertions on the synthesized QR Pro stack (one synth per session, see conftest)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from infra_synth_helpers import Synth, synth

import qrpro.data.schema

FUNCTIONS = ("api", "authorizer", "redirect", "scans", "compaction", "fanout", "mail", "events", "webhooks", "export",
             "expiry", "usagekeys")
COMMON_ENV = {"TABLE_NAME", "IDEMPOTENCY_TABLE_NAME", "SHORT_BASE_URL", "API_BASE_URL", "CURSOR_SECRET_ARN",
              "SCANS_QUEUE_URL", "COMPACTION_QUEUE_URL", "MAIL_QUEUE_URL", "WEBHOOKS_QUEUE_URL", "EXPORT_BUCKET",
              "SES_SENDER"}
CACHING_DISABLED_ID = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # AWS managed policy


def of_type(template: dict[str, Any], rtype: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == rtype}


def one(template: dict[str, Any], rtype: str, pred: Any = lambda r: True) -> tuple[str, dict[str, Any]]:
    found = [(k, r) for k, r in of_type(template, rtype).items() if pred(r)]
    assert len(found) == 1, f"expected one {rtype}, found {[k for k, _ in found]}"
    return found[0]


def functions(template: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    out = {}
    for key, res in of_type(template, "AWS::Lambda::Function").items():
        match = re.fullmatch(r"lambdas\.(\w+)\.handler\.handler", res["Properties"]["Handler"])
        assert match, res["Properties"]["Handler"]
        out[match.group(1)] = (key, res)
    return out


def role_statements(template: dict[str, Any], fn: str) -> list[dict[str, Any]]:
    role_ref = functions(template)[fn][1]["Properties"]["Role"]["Fn::GetAtt"][0]
    stmts: list[dict[str, Any]] = []
    for policy in of_type(template, "AWS::IAM::Policy").values():
        if {"Ref": role_ref} in policy["Properties"]["Roles"]:
            stmts.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return stmts


def actions_of(stmts: list[dict[str, Any]]) -> set[str]:
    out: set[str] = set()
    for s in stmts:
        acts = s["Action"]
        out.update([acts] if isinstance(acts, str) else acts)
    return out


def export_bucket(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return one(template, "AWS::S3::Bucket", lambda r: r["Properties"]["LifecycleConfiguration"]["Rules"][0]
               .get("ExpirationInDays") == 1)


def failed_events_bucket(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return one(template, "AWS::S3::Bucket", lambda r: "MetricsConfigurations" in r["Properties"])


def main_table(template: dict[str, Any]) -> dict[str, Any]:
    return one(template, "AWS::DynamoDB::Table", lambda r: "LocalSecondaryIndexes" in r["Properties"])[1]


def idempotency_table(template: dict[str, Any]) -> dict[str, Any]:
    return one(template, "AWS::DynamoDB::Table",
               lambda r: r["Properties"]["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}])[1]


# --- tables ---------------------------------------------------------------------------------

def test_main_table_matches_schema_py(template: dict[str, Any]) -> None:
    spec = qrpro.data.schema.MAIN_TABLE
    props = main_table(template)["Properties"]
    key = lambda d: d["AttributeName"]  # noqa: E731
    assert sorted(props["AttributeDefinitions"], key=key) == sorted(spec["AttributeDefinitions"], key=key)
    assert props["KeySchema"] == spec["KeySchema"]
    assert props["LocalSecondaryIndexes"] == spec["LocalSecondaryIndexes"]
    assert props["GlobalSecondaryIndexes"] == spec["GlobalSecondaryIndexes"]
    assert props["BillingMode"] == spec["BillingMode"] == "PAY_PER_REQUEST"
    assert props["StreamSpecification"] == {"StreamViewType": spec["StreamSpecification"]["StreamViewType"]}
    assert props["StreamSpecification"]["StreamViewType"] == "NEW_IMAGE"
    assert props["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}


def test_main_table_is_protected(template: dict[str, Any]) -> None:
    table = main_table(template)
    assert table["Properties"]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["Properties"]["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"


def test_idempotency_table(template: dict[str, Any]) -> None:
    spec = qrpro.data.schema.IDEMPOTENCY_TABLE
    props = idempotency_table(template)["Properties"]
    assert props["KeySchema"] == spec["KeySchema"]
    assert props["AttributeDefinitions"] == spec["AttributeDefinitions"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


# --- functions ------------------------------------------------------------------------------

def test_every_function_runtime_tracing_logs_env(template: dict[str, Any]) -> None:
    fns = functions(template)
    assert set(fns) == set(FUNCTIONS)
    log_groups = of_type(template, "AWS::Logs::LogGroup")
    roles = set()
    for name, (_, res) in fns.items():
        props = res["Properties"]
        assert props["Runtime"] == "python3.13"
        assert props["Architectures"] == ["arm64"]
        # the redirect records no trace of its own: a trace per scan is a cost line (docs/performance.md)
        assert props["TracingConfig"] == {"Mode": "PassThrough" if name == "redirect" else "Active"}, name
        assert len(props["Layers"]) == 1
        log_group = props["LoggingConfig"]["LogGroup"]["Ref"]
        assert log_groups[log_group]["Properties"]["RetentionInDays"] == 30
        env = props["Environment"]["Variables"]
        expected = COMMON_ENV - ({"SHORT_BASE_URL"} if name == "redirect" else set())
        assert expected <= set(env), f"{name}: missing {expected - set(env)}"
        assert env["POWERTOOLS_SERVICE_NAME"] == f"qrpro-{name}"
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == "QRPro"
        assert env["POWERTOOLS_LOG_LEVEL"] == "INFO"
        roles.add(props["Role"]["Fn::GetAtt"][0])
    assert len(roles) == len(FUNCTIONS), "one role per function"
    # The redirect runs once per scan: no START/END/REPORT lines (docs/performance.md, "What a scan costs");
    # its warnings and errors still reach its log group.
    for name, (_, res) in fns.items():
        config = res["Properties"]["LoggingConfig"]
        if name == "redirect":
            assert config["LogFormat"] == "JSON" and config["SystemLogLevel"] == "WARN", config
        else:
            assert "SystemLogLevel" not in config, name
    # Only one layer, shared.
    assert len(of_type(template, "AWS::Lambda::LayerVersion")) == 1


def test_no_function_allows_loopback_webhooks(template: dict[str, Any]) -> None:
    for name, (_, res) in functions(template).items():
        env = res["Properties"].get("Environment", {}).get("Variables", {})
        assert "ALLOW_LOOPBACK_WEBHOOKS" not in env, name
        assert "QRPRO_WEBHOOK_BACKOFF" not in env, name  # tests-only shortened retry schedule


def test_roles_have_no_managed_policies(template: dict[str, Any]) -> None:
    """Only API Gateway's account-level logging role uses AWS's managed policy (see its test)."""
    _, account = one(template, "AWS::ApiGateway::Account")
    cloudwatch_role = account["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]
    for key, role in of_type(template, "AWS::IAM::Role").items():
        assert key == cloudwatch_role or "ManagedPolicyArns" not in role["Properties"], key


def test_no_wildcard_actions_in_any_policy(template: dict[str, Any]) -> None:
    docs = [p["Properties"]["PolicyDocument"] for p in of_type(template, "AWS::IAM::Policy").values()]
    for role in of_type(template, "AWS::IAM::Role").values():
        docs += [p["PolicyDocument"] for p in role["Properties"].get("Policies", [])]
    assert docs
    for doc in docs:
        for action in actions_of(doc["Statement"]):
            assert "*" not in action, action


def test_secrets_are_readable_only_by_the_functions_that_use_them(template: dict[str, Any]) -> None:
    secrets = of_type(template, "AWS::SecretsManager::Secret")
    readers: dict[str, set[str]] = {}
    for name in functions(template):
        for stmt in role_statements(template, name):
            if "secretsmanager:GetSecretValue" in actions_of([stmt]):
                for logical in secrets:
                    if logical in json.dumps(stmt["Resource"]):
                        readers.setdefault(logical, set()).add(name)
    cursor = next(key for key in secrets if key.startswith("StorageCursorSecret"))
    webhook_key = next(key for key in secrets if key.startswith("StorageWebhookKey"))
    assert readers == {cursor: {"api", "export"}, webhook_key: {"api", "webhooks"}}
    assert secrets[webhook_key]["DeletionPolicy"] == "Retain"  # the sealed secrets outlive the stack
    env = functions(template)["webhooks"][1]["Properties"]["Environment"]["Variables"]
    assert env["WEBHOOK_KEY_ARN"] == {"Ref": webhook_key}


def test_authorizer_only_gets_and_updates_the_table(template: dict[str, Any]) -> None:
    stmts = role_statements(template, "authorizer")
    dynamo = {a for a in actions_of(stmts) if a.startswith("dynamodb:")}
    assert dynamo == {"dynamodb:GetItem", "dynamodb:UpdateItem"}
    assert not any(a.startswith(("sqs:", "s3:", "secretsmanager:", "ses:")) for a in actions_of(stmts))


def test_redirect_permissions(template: dict[str, Any]) -> None:
    acts = actions_of(role_statements(template, "redirect"))
    stmts = role_statements(template, "redirect")
    assert {a for a in acts if a.startswith("dynamodb:")} == {"dynamodb:GetItem", "dynamodb:PutItem",
                                                              "dynamodb:UpdateItem"}
    assert {a for a in acts if a.startswith("sqs:")} == {"sqs:SendMessage"}
    # It parks scans during an SQS outage, and may write nothing else...
    (put,) = [s for s in stmts if "dynamodb:PutItem" in actions_of([s])]
    assert actions_of([put]) == {"dynamodb:PutItem"}
    assert put["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["SCANPENDING#*"]}}
    # ... but the scan-limit counters of codes with a max_scans rule.
    (update,) = [s for s in stmts if "dynamodb:UpdateItem" in actions_of([s])]
    assert actions_of([update]) == {"dynamodb:UpdateItem"}
    assert update["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["LIMIT#*"]}}


def test_ses_only_for_the_cap_email_and_only_the_sender_identity(template: dict[str, Any]) -> None:
    for name in FUNCTIONS:
        stmts = [s for s in role_statements(template, name) if "ses:SendEmail" in actions_of([s])]
        if name != "mail":  # counting never waits on SES
            assert not stmts, name
            continue
        assert len(stmts) == 1
        assert actions_of(stmts) == {"ses:SendEmail"}
        assert "identity/aqr.net" in json.dumps(stmts[0]["Resource"])


def test_export_can_write_and_presign_in_its_bucket_only(template: dict[str, Any]) -> None:
    stmts = role_statements(template, "export")
    s3 = [s for s in stmts if any(a.startswith("s3:") for a in actions_of([s]))]
    assert actions_of(s3) == {"s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"}
    bucket_key = export_bucket(template)[0]
    assert all(bucket_key in json.dumps(s["Resource"]) for s in s3)
    writes = [s for s in stmts if "dynamodb:UpdateItem" in actions_of([s])]
    assert writes and all(s["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["RATE#*"]}}
                          for s in writes)


def test_webhooks_can_back_off_on_its_own_queue(template: dict[str, Any]) -> None:
    acts = actions_of(role_statements(template, "webhooks"))
    assert {"sqs:SendMessage", "sqs:ChangeMessageVisibility"} <= acts


def test_event_sources(template: dict[str, Any]) -> None:
    fns = {key: name for name, (key, _) in functions(template).items()}
    mappings = {fns[m["Properties"]["FunctionName"]["Ref"]]: m["Properties"]
                for m in of_type(template, "AWS::Lambda::EventSourceMapping").values()}
    assert set(mappings) == {"scans", "compaction", "mail", "events", "webhooks", "usagekeys"}
    for name in ("scans", "compaction", "mail", "webhooks"):
        assert mappings[name]["FunctionResponseTypes"] == ["ReportBatchItemFailures"], name
    # the compaction scales out by workers, up to a bound the lag model is made for
    assert mappings["compaction"]["ScalingConfig"] == {"MaximumConcurrency": 18}
    assert mappings["scans"]["MaximumBatchingWindowInSeconds"] == 2
    assert (mappings["scans"]["BatchSize"], mappings["scans"]["ScalingConfig"]) == (100, {"MaximumConcurrency": 10})
    assert mappings["webhooks"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mappings["webhooks"]["ScalingConfig"] == {"MaximumConcurrency": 20}  # a backlog is capped
    events = mappings["events"]
    assert events["EventSourceArn"]["Fn::GetAtt"][1] == "StreamArn"
    assert events["BisectBatchOnFunctionError"] is True
    # Without it Lambda ignores the handler's batchItemFailures: a failed fan-out would be lost.
    assert events["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert events["MaximumRetryAttempts"] == 10 and events["MaximumRecordAgeInSeconds"] == 24 * 3600
    pattern = json.loads(events["FilterCriteria"]["Filters"][0]["Pattern"])
    assert pattern["dynamodb"]["Keys"]["pk"] == {"S": [{"prefix": "EVENT#"}]}


def test_schedules_the_fanout_every_minute_expiry_every_15_and_the_scan_drain_every_5(
        template: dict[str, Any]) -> None:
    rules = [rule["Properties"] for rule in of_type(template, "AWS::Events::Rule").values()]
    schedules = sorted((p["Targets"][0]["Arn"]["Fn::GetAtt"][0], p["ScheduleExpression"], p["Targets"][0].get("Input"))
                       for p in rules)
    fns = functions(template)
    assert schedules == sorted([(fns["expiry"][0], "rate(15 minutes)", None),
                                (fns["scans"][0], "rate(5 minutes)", None),
                                (fns["fanout"][0], "rate(1 minute)", None)])
    invokers = {p["Properties"]["FunctionName"]["Fn::GetAtt"][0]
                for p in of_type(template, "AWS::Lambda::Permission").values()
                if p["Properties"]["Principal"] == "events.amazonaws.com"}
    assert invokers == {fns["expiry"][0], fns["scans"][0], fns["fanout"][0]}
    # a fold step holds at most 50,000 scans: its memory does not grow with the day
    props = fns["compaction"][1]["Properties"]
    assert (props["MemorySize"], props["Timeout"]) == (512, 300)
    queues = of_type(template, "AWS::SQS::Queue")
    (compaction_queue,) = [q for q in queues.values() if q["Properties"].get("VisibilityTimeout") == 1800]
    assert compaction_queue["Properties"]["RedrivePolicy"]["maxReceiveCount"] == 5


def test_failed_stream_batches_are_kept_whole_in_s3(template: dict[str, Any]) -> None:
    """An SQS destination keeps only shard positions (gone with the stream's 24 h retention);
    S3 keeps the whole failed records. The events role may write there, not read or delete."""
    events_key = functions(template)["events"][0]
    (mapping,) = [m["Properties"] for m in of_type(template, "AWS::Lambda::EventSourceMapping").values()
                  if m["Properties"]["FunctionName"] == {"Ref": events_key}]
    bucket_key, bucket = failed_events_bucket(template)
    assert mapping["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": [bucket_key, "Arn"]}}}
    props = bucket["Properties"]
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    assert all(props["PublicAccessBlockConfiguration"].values())
    # Versioned: an object replayed, overwritten or deleted by hand stays recoverable for 30 days.
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["LifecycleConfiguration"]["Rules"] == [
        {"ExpirationInDays": 90, "Id": "expire-failed-events", "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
         "Status": "Enabled"}]
    assert bucket["DeletionPolicy"] == "Retain"
    (policy,) = [p for p in of_type(template, "AWS::S3::BucketPolicy").values()
                 if p["Properties"]["Bucket"] == {"Ref": bucket_key}]
    _assert_denies_insecure_transport(policy["Properties"]["PolicyDocument"])
    s3 = {a: s["Resource"] for s in role_statements(template, "events") for a in actions_of([s])
          if a.startswith("s3:")}
    assert s3 == {"s3:PutObject": {"Fn::Join": ["", [{"Fn::GetAtt": [bucket_key, "Arn"]}, "/*"]]},
                  "s3:ListBucket": {"Fn::GetAtt": [bucket_key, "Arn"]}}
    for name in set(FUNCTIONS) - {"events"}:
        assert bucket_key not in json.dumps(role_statements(template, name)), name


# --- API Gateway ----------------------------------------------------------------------------

def test_rest_api_settings(template: dict[str, Any]) -> None:
    _, api = one(template, "AWS::ApiGateway::RestApi")
    assert api["Properties"]["ApiKeySourceType"] == "AUTHORIZER"
    assert api["Properties"]["BinaryMediaTypes"] == ["*/*"]
    _, stage = one(template, "AWS::ApiGateway::Stage")
    assert stage["Properties"]["TracingEnabled"] is True


def test_fresh_account_gets_the_api_gateway_cloudwatch_role(template: dict[str, Any]) -> None:
    """Stage logging fails in an account without the account-level CloudWatch role ARN:
    the stack sets it (AWS::ApiGateway::Account), retained on delete, before the stage deploys."""
    account_key, account = one(template, "AWS::ApiGateway::Account")
    role_key = account["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]
    role = template["Resources"][role_key]
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "apigateway.amazonaws.com"}
    assert json.dumps(role["Properties"]["ManagedPolicyArns"]).count("AmazonAPIGatewayPushToCloudWatchLogs") == 1
    for res in (account, role):
        assert res["DeletionPolicy"] == "Retain" and res["UpdateReplacePolicy"] == "Retain"
    _, stage = one(template, "AWS::ApiGateway::Stage")
    assert "AccessLogSetting" in stage["Properties"]
    assert account_key in stage.get("DependsOn", []), "the stage must wait for the account setting"


def test_authorizer_has_no_result_cache(template: dict[str, Any]) -> None:
    _, auth = one(template, "AWS::ApiGateway::Authorizer")
    assert auth["Properties"]["Type"] == "REQUEST"
    assert auth["Properties"]["AuthorizerResultTtlInSeconds"] == 0
    assert auth["Properties"]["IdentitySource"] == "method.request.header.Authorization"


def test_usage_plan_quotas_per_day(template: dict[str, Any]) -> None:
    plans = of_type(template, "AWS::ApiGateway::UsagePlan").values()
    quotas = {p["Properties"]["UsagePlanName"]: p["Properties"].get("Quota") for p in plans}
    assert quotas == {
        "qrpro-business": {"Limit": 1000, "Period": "DAY"},
        "qrpro-team": {"Limit": 10000, "Period": "DAY"},
        "qrpro-agency": {"Limit": 50000, "Period": "DAY"},
        "qrpro-fallback": None,  # shared by every key without its own: a quota would lock them all out
    }
    for plan in plans:
        assert len(plan["Properties"]["ApiStages"]) == 1


def test_every_api_method_requires_a_usage_key_by_default(template: dict[str, Any]) -> None:
    paths = _resource_paths(template)
    methods = of_type(template, "AWS::ApiGateway::Method").values()
    api = [m["Properties"] for m in methods
           if paths.get(m["Properties"]["ResourceId"].get("Ref", ""), "/").startswith("/api")]
    assert len(api) == 6  # /api, /api/{proxy+}, /api/user, its {proxy+}, GET and ANY /api/user/export
    assert all(m["ApiKeyRequired"] is True and m["AuthorizationType"] == "CUSTOM" for m in api)
    public = [m["Properties"] for m in methods if m["Properties"] not in api]
    assert public and not any(m.get("ApiKeyRequired") for m in public)
    _, rest_api = one(template, "AWS::ApiGateway::RestApi")
    assert rest_api["Properties"]["ApiKeySourceType"] == "AUTHORIZER"


def test_the_fallback_key_sits_on_a_throttled_plan_without_quota(template: dict[str, Any]) -> None:
    plan_id, plan = one(template, "AWS::ApiGateway::UsagePlan",
                        lambda r: r["Properties"]["UsagePlanName"] == "qrpro-fallback")
    _, stage = one(template, "AWS::ApiGateway::Stage")
    stage_throttle = stage["Properties"]["MethodSettings"][0]
    assert "Quota" not in plan["Properties"]
    assert plan["Properties"]["Throttle"] == {"RateLimit": stage_throttle["ThrottlingRateLimit"],
                                              "BurstLimit": stage_throttle["ThrottlingBurstLimit"]}
    key_id, key = one(template, "AWS::ApiGateway::ApiKey")
    _, plan_key = one(template, "AWS::ApiGateway::UsagePlanKey")
    assert plan_key["Properties"] == {"KeyId": {"Ref": key_id}, "KeyType": "API_KEY", "UsagePlanId": {"Ref": plan_id}}
    assert key["Properties"]["Enabled"] is True
    # The authorizer returns the very value the key has (unique per stack, no reference: no cycle).
    _, authorizer = functions(template)["authorizer"]
    assert authorizer["Properties"]["Environment"]["Variables"]["FALLBACK_USAGE_KEY"] == key["Properties"]["Value"]
    assert "AWS::StackId" in json.dumps(key["Properties"]["Value"])


def test_the_usage_keys_consumer_reads_the_stream_with_retries_bisect_and_an_alarmed_dlq(
        template: dict[str, Any]) -> None:
    fn_key, fn = functions(template)["usagekeys"]
    _, mapping = one(template, "AWS::Lambda::EventSourceMapping",
                     lambda r: r["Properties"]["FunctionName"] == {"Ref": fn_key})
    props = mapping["Properties"]
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BisectBatchOnFunctionError"] is True and props["MaximumRetryAttempts"] == 5
    assert "StreamArn" in json.dumps(props["EventSourceArn"])
    patterns = [json.loads(f["Pattern"]) for f in props["FilterCriteria"]["Filters"]]
    assert patterns == [
        {"eventName": ["INSERT", "REMOVE"], "dynamodb": {"Keys": {"pk": {"S": [{"prefix": "USER#"}]},
                                                                  "sk": {"S": [{"prefix": "KEY#"}]}}}},
        {"eventName": ["MODIFY"], "dynamodb": {"Keys": {"sk": {"S": ["PROFILE"]}}}},
        {"eventName": ["INSERT", "REMOVE"], "dynamodb": {"Keys": {"pk": {"S": [{"prefix": "TEAM#"}]},
                                                                  "sk": {"S": [{"prefix": "MEMBER#"}]}}}},
    ]
    dlq = props["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
    assert of_type(template, "AWS::SQS::Queue")[dlq]
    alarms = [a["Properties"] for a in of_type(template, "AWS::CloudWatch::Alarm").values()
              if a["Properties"].get("Dimensions") == [{"Name": "QueueName",
                                                        "Value": {"Fn::GetAtt": [dlq, "QueueName"]}}]]
    assert len(alarms) == 1 and alarms[0]["AlarmActions"]
    assert any(a["Properties"].get("MetricName") == "UsageKeysOnFallback"
               for a in of_type(template, "AWS::CloudWatch::Alarm").values())
    from lambdas.compaction.handler import LAG, metrics
    [lag] = [a["Properties"] for a in of_type(template, "AWS::CloudWatch::Alarm").values()
             if a["Properties"].get("MetricName") == LAG]  # the name and service the function prints
    assert lag["Dimensions"] == [{"Name": "service", "Value": metrics.service}] and lag["AlarmActions"]
    assert (lag["Threshold"], lag["Statistic"]) == (300, "Maximum")
    env = fn["Properties"]["Environment"]["Variables"]
    plans = {lid for lid, p in of_type(template, "AWS::ApiGateway::UsagePlan").items()
             if p["Properties"]["UsagePlanName"] != "qrpro-fallback"}
    assert {env[f"USAGE_PLAN_{t}"]["Ref"] for t in ("BUSINESS", "TEAM", "AGENCY")} == plans


def test_only_the_usage_keys_consumer_may_call_api_gateway(template: dict[str, Any]) -> None:
    for name in FUNCTIONS:
        gateway = {a for a in actions_of(role_statements(template, name)) if a.startswith("apigateway:")}
        assert gateway == ({"apigateway:GET", "apigateway:POST", "apigateway:DELETE"}
                           if name == "usagekeys" else set()), name
    statements = [s for s in role_statements(template, "usagekeys")
                  if any(a.startswith("apigateway:") for a in actions_of([s]))]
    fallback = one(template, "AWS::ApiGateway::UsagePlan",
                   lambda r: r["Properties"]["UsagePlanName"] == "qrpro-fallback")[0]
    text = json.dumps(statements)
    assert fallback not in text and '"Resource": "*"' not in text
    writes = [s for s in role_statements(template, "usagekeys") if "dynamodb:UpdateItem" in actions_of([s])]
    assert writes and all(s["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
                          == ["APIKEY#*", "USER#*", "TEAM#*"] for s in writes)


def test_require_usage_key_false_switches_the_backstop_off() -> None:
    template = synth({"qrpro:requireUsageKey": "false"}, nag=False).template
    methods = of_type(template, "AWS::ApiGateway::Method").values()
    assert not any(m["Properties"].get("ApiKeyRequired") for m in methods)


def _resource_paths(template: dict[str, Any]) -> dict[str, str]:
    resources = of_type(template, "AWS::ApiGateway::Resource")
    paths: dict[str, str] = {}

    def path(key: str) -> str:
        props = resources[key]["Properties"]
        parent = props["ParentId"]
        prefix = path(parent["Ref"]) if "Ref" in parent else ""
        return f"{prefix}/{props['PathPart']}"

    for key in resources:
        paths[key] = path(key)
    return paths


def test_routes_and_authorization(template: dict[str, Any]) -> None:
    paths = _resource_paths(template)
    fns = {key: name for name, (key, _) in functions(template).items()}
    routes = {}
    for method in of_type(template, "AWS::ApiGateway::Method").values():
        props = method["Properties"]
        uri = json.dumps(props["Integration"]["Uri"])
        target = next(name for key, name in fns.items() if key in uri)
        path = paths[props["ResourceId"]["Ref"]] if "Ref" in props["ResourceId"] else "/"  # GetAtt: the root
        routes[(path, props["HttpMethod"])] = (target, props["AuthorizationType"])
        assert props["Integration"]["Type"] == "AWS_PROXY"
    assert routes[("/docs/openapi.json", "GET")] == ("api", "NONE")
    assert routes[("/api/user/export", "GET")] == ("export", "CUSTOM")
    assert routes[("/api", "ANY")] == ("api", "CUSTOM")
    assert routes[("/api/{proxy+}", "ANY")] == ("api", "CUSTOM")
    assert routes[("/api/user", "ANY")] == ("api", "CUSTOM")
    assert routes[("/api/user/{proxy+}", "ANY")] == ("api", "CUSTOM")
    # Only the reference is public: GET /, /docs, its assets and the OpenAPI document.
    public = {("/", "GET"), ("/docs", "GET"), ("/docs/openapi.json", "GET"), ("/docs/init.js", "GET"),
              ("/docs/swagger-ui.css", "GET"), ("/docs/swagger-ui-bundle.js", "GET")}
    assert {r for r, (_, auth) in routes.items() if auth != "CUSTOM"} == public
    assert all(routes[r] == ("api", "NONE") for r in public)


EXPECTED_GATEWAY_RESPONSES = {
    "UNAUTHORIZED": ("401", {"error": "not_signed_in"}),
    "ACCESS_DENIED": ("401", {"error": "invalid_api_key"}),
    "QUOTA_EXCEEDED": ("429", {"error": "rate_limited", "window": "day"}),
    "THROTTLED": ("429", {"error": "rate_limited", "window": "second"}),
    "REQUEST_TOO_LARGE": ("413", {"error": "payload_too_large"}),
    "UNSUPPORTED_MEDIA_TYPE": ("415", {"error": "unsupported_media_type"}),
    "MISSING_AUTHENTICATION_TOKEN": ("404", {"error": "not_found"}),
    "DEFAULT_5XX": ("500", {"error": "internal", "request_id": "$context.requestId"}),
}


@pytest.mark.parametrize("rtype", sorted(EXPECTED_GATEWAY_RESPONSES))
def test_gateway_response(template: dict[str, Any], rtype: str) -> None:
    status, body = EXPECTED_GATEWAY_RESPONSES[rtype]
    _, res = one(template, "AWS::ApiGateway::GatewayResponse", lambda r: r["Properties"]["ResponseType"] == rtype)
    props = res["Properties"]
    assert props["StatusCode"] == status
    rendered = json.loads(props["ResponseTemplates"]["application/json"])
    assert isinstance(rendered.pop("message"), str), "every error body carries a message"
    assert rendered == body
    assert props["ResponseParameters"] == {
        "gatewayresponse.header.Content-Type": "'application/json; charset=utf-8'"}


def test_default_4xx_keeps_status_and_uses_the_envelope(template: dict[str, Any]) -> None:
    _, res = one(template, "AWS::ApiGateway::GatewayResponse",
                 lambda r: r["Properties"]["ResponseType"] == "DEFAULT_4XX")
    assert "StatusCode" not in res["Properties"]
    body = res["Properties"]["ResponseTemplates"]["application/json"]
    # $context.error.messageString is already a quoted JSON string.
    rendered = json.loads(body.replace("$context.error.messageString", '"Forbidden"'))
    assert rendered == {"error": "bad_request", "message": "Forbidden"}


def test_access_log_is_json_without_viewer_identity(template: dict[str, Any]) -> None:
    _, stage = one(template, "AWS::ApiGateway::Stage")
    fmt = stage["Properties"]["AccessLogSetting"]["Format"]
    for forbidden in ("sourceIp", "userAgent", "identity", "caller", "user-agent"):
        assert forbidden.lower() not in fmt.lower(), forbidden
    rendered = json.loads(re.sub(r"\$context\.[A-Za-z.]+", "1", fmt))
    assert {"requestId", "method", "resourcePath", "status", "latency"} <= set(rendered)
    assert "$context.requestId" in fmt and "$context.httpMethod" in fmt


# --- redirect (CloudFront → function URL) ---------------------------------------------------

def test_cloudfront_has_both_lambda_permissions(template: dict[str, Any]) -> None:
    redirect_key = functions(template)["redirect"][0]
    url_key, url = one(template, "AWS::Lambda::Url")
    assert url["Properties"]["TargetFunctionArn"] == {"Fn::GetAtt": [redirect_key, "Arn"]}
    dist_key = one(template, "AWS::CloudFront::Distribution")[0]
    found = set()
    for perm in of_type(template, "AWS::Lambda::Permission").values():
        props = perm["Properties"]
        if props["Principal"] != "cloudfront.amazonaws.com":
            continue
        assert props["FunctionName"] in ({"Fn::GetAtt": [redirect_key, "Arn"]},
                                         {"Fn::GetAtt": [url_key, "FunctionArn"]})
        assert {"Ref": dist_key} in props["SourceArn"]["Fn::Join"][1]
        if props["Action"] == "lambda:InvokeFunction":  # only through the URL, not a direct Invoke
            assert props["InvokedViaFunctionUrl"] is True
        found.add(props["Action"])
    # Function URLs created since October 2025 refuse CloudFront without both (Lambda dual auth).
    assert found == {"lambda:InvokeFunctionUrl", "lambda:InvokeFunction"}


def test_function_url_is_iam_with_oac(template: dict[str, Any]) -> None:
    _, url = one(template, "AWS::Lambda::Url")
    assert url["Properties"]["AuthType"] == "AWS_IAM"
    _, oac = one(template, "AWS::CloudFront::OriginAccessControl")
    assert oac["Properties"]["OriginAccessControlConfig"]["OriginAccessControlOriginType"] == "lambda"
    assert oac["Properties"]["OriginAccessControlConfig"]["SigningBehavior"] == "always"


def test_distribution_never_caches_and_forwards_country_and_ua_not_host(template: dict[str, Any]) -> None:
    _, dist = one(template, "AWS::CloudFront::Distribution")
    config = dist["Properties"]["DistributionConfig"]
    behavior = config["DefaultCacheBehavior"]
    assert behavior["CachePolicyId"] == CACHING_DISABLED_ID
    assert "Logging" not in config
    policy_key = behavior["OriginRequestPolicyId"]["Ref"]
    headers = template["Resources"][policy_key]["Properties"]["OriginRequestPolicyConfig"]["HeadersConfig"]
    assert headers["HeaderBehavior"] == "whitelist"
    assert set(headers["Headers"]) == {"CloudFront-Viewer-Country", "User-Agent"}
    assert "host" not in {h.lower() for h in headers["Headers"]}
    assert config["Origins"][0]["OriginAccessControlId"]


# --- bucket and queues ----------------------------------------------------------------------

def test_export_bucket(template: dict[str, Any]) -> None:
    key, bucket = export_bucket(template)
    props = bucket["Properties"]
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    rules = props["LifecycleConfiguration"]["Rules"]
    assert any(r["Status"] == "Enabled" and r["ExpirationInDays"] == 1 for r in rules)
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert rules[0]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}
    _, policy = one(template, "AWS::S3::BucketPolicy", lambda p: p["Properties"]["Bucket"] == {"Ref": key})
    _assert_denies_insecure_transport(policy["Properties"]["PolicyDocument"])


def _assert_denies_insecure_transport(doc: dict[str, Any]) -> None:
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
               for s in doc["Statement"])


def test_queues_encrypted_ssl_and_dlqs(template: dict[str, Any]) -> None:
    queues = of_type(template, "AWS::SQS::Queue")
    # scans, compaction, mail, webhooks and their DLQs; the usagekeys stream's on-failure queue
    # (outbox failures go to S3); the scheduled functions' on-failure destination
    assert len(queues) == 10
    for queue in queues.values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
    with_dlq = [q for q in queues.values() if "RedrivePolicy" in q["Properties"]]
    assert len(with_dlq) == 4
    policies = of_type(template, "AWS::SQS::QueuePolicy")
    assert len(policies) == 10
    for policy in policies.values():
        _assert_denies_insecure_transport(policy["Properties"]["PolicyDocument"])
    # Webhooks: one receive per delivery attempt; the function extends visibility up to 12 h.
    webhooks = next(q for q in with_dlq if q["Properties"]["RedrivePolicy"]["maxReceiveCount"] >= 8)
    assert webhooks["Properties"]["MessageRetentionPeriod"] >= 2 * 24 * 3600


# --- monitoring and outputs -----------------------------------------------------------------

def alarms_by_metric(template: dict[str, Any]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for alarm in of_type(template, "AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        if "MetricName" in props:
            key = (props["Namespace"], props["MetricName"])
        else:  # a math expression: named by the metrics it sums
            stats = [m["MetricStat"]["Metric"] for m in props["Metrics"] if "MetricStat" in m]
            key = (stats[0]["Namespace"], stats[0]["MetricName"])
        out.setdefault(key, []).append(alarm)
    return out


def test_every_alarm_notifies_the_alarms_topic(template: dict[str, Any]) -> None:
    topic_key, topic = one(template, "AWS::SNS::Topic")
    alarms = of_type(template, "AWS::CloudWatch::Alarm")
    assert len(alarms) >= 30
    for key, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_key}], key
        assert alarm["Properties"]["TreatMissingData"] == "notBreaching", key
    # Encrypted with a rotated customer key that CloudWatch may use (it cannot use aws/sns), TLS only.
    key_ref = topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    kms_key = template["Resources"][key_ref]["Properties"]
    assert kms_key["EnableKeyRotation"] is True
    grants = [s for s in kms_key["KeyPolicy"]["Statement"]
              if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
    assert grants and set(grants[0]["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey"}
    (policy,) = [p for p in of_type(template, "AWS::SNS::TopicPolicy").values()
                 if {"Ref": topic_key} in p["Properties"]["Topics"]]
    _assert_denies_insecure_transport(policy["Properties"]["PolicyDocument"])
    assert not of_type(template, "AWS::SNS::Subscription"), "no subscription without qrpro:alarmEmail"


def test_alarms(template: dict[str, Any]) -> None:
    by = alarms_by_metric(template)
    fns = functions(template)
    for metric in ("Errors", "Throttles"):
        watched = {a["Properties"]["Dimensions"][0]["Value"]["Ref"] for a in by[("AWS/Lambda", metric)]}
        assert watched == {key for key, _ in fns.values()}, metric
    dlq = by[("AWS/SQS", "ApproximateNumberOfMessagesVisible")]
    assert len(dlq) == 6  # scans, compaction, mail, webhooks, usagekeys, the scheduled functions' failures
    for alarm in dlq:
        assert (alarm["Properties"]["Threshold"], alarm["Properties"]["ComparisonOperator"]) == (
            0, "GreaterThanThreshold")
    ages = by[("AWS/SQS", "ApproximateAgeOfOldestMessage")]
    watched = {a["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]: a["Properties"]["Threshold"] for a in ages}
    queues = {k for k, q in of_type(template, "AWS::SQS::Queue").items() if "RedrivePolicy" in q["Properties"]}
    scans_queue = next(k for k in queues if k.startswith("QueuesScans"))
    compaction_queue = next(k for k in queues if k.startswith("QueuesCompaction"))
    assert watched == {scans_queue: 600, compaction_queue: 300}  # fold jobs waiting: the lag promise at risk
    (iterator,) = by[("AWS/Lambda", "IteratorAge")]
    assert iterator["Properties"]["Dimensions"][0]["Value"] == {"Ref": fns["events"][0]}
    assert iterator["Properties"]["Statistic"] == "Maximum"
    (failed,) = by[("AWS/S3", "PutRequests")]  # the failed-events bucket is the stream's "DLQ"
    bucket_key = failed_events_bucket(template)[0]
    assert {"Name": "BucketName", "Value": {"Ref": bucket_key}} in failed["Properties"]["Dimensions"]
    for metric in ("ReadThrottleEvents", "WriteThrottleEvents", "SystemErrors"):
        assert len(by[("AWS/DynamoDB", metric)]) == 2, metric  # main and idempotency tables
    assert len(by[("AWS/ApiGateway", "5XXError")]) == 1


def test_alarm_on_scans_the_redirect_could_not_queue(template: dict[str, Any]) -> None:
    from lambdas.redirect import handler

    by = alarms_by_metric(template)
    for status, name in handler.METRICS.items():
        (alarm,) = by[(handler.METRIC_NAMESPACE, name)]
        props = alarm["Properties"]
        assert props["Dimensions"] == [{"Name": "service", "Value": handler.METRIC_SERVICE}], status
        assert (props["Statistic"], props["Threshold"]) == ("Sum", 1)


def test_cloudfront_5xx_alarm_only_where_the_metric_lives(template: dict[str, Any]) -> None:
    """CloudFront metrics exist in us-east-1 only: the alarm is conditional on the stack's region."""
    (alarm,) = alarms_by_metric(template)[("AWS/CloudFront", "5xxErrorRate")]
    dist_key = one(template, "AWS::CloudFront::Distribution")[0]
    assert {"Name": "Region", "Value": "Global"} in alarm["Properties"]["Dimensions"]
    assert {"Name": "DistributionId", "Value": {"Ref": dist_key}} in alarm["Properties"]["Dimensions"]
    condition = template["Conditions"][alarm["Condition"]]
    assert condition == {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]}


def test_one_dashboard_with_the_service_health(template: dict[str, Any]) -> None:
    _, dashboard = one(template, "AWS::CloudWatch::Dashboard")
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for needle in ("alarm", "5xxErrorRate", "us-east-1", "ScansParked", "ScansBuffered", "IteratorAge",
                   "ApproximateAgeOfOldestMessage", "ReadThrottleEvents", "5XXError", "Throttles"):
        assert needle in body, needle


def test_outputs(template: dict[str, Any]) -> None:
    assert {"ApiUrl", "RedirectUrl", "TableName"} <= set(template["Outputs"])
    table_key = next(k for k, r in of_type(template, "AWS::DynamoDB::Table").items()
                     if "LocalSecondaryIndexes" in r["Properties"])
    assert template["Outputs"]["TableName"]["Value"] == {"Ref": table_key}


# --- cdk-nag and cfn-lint -------------------------------------------------------------------

def test_cdk_nag_aws_solutions_has_no_unacknowledged_findings(synthesized: Synth) -> None:
    assert synthesized.nag_error is None, synthesized.nag_error
    report = json.loads((synthesized.assembly_dir / "validation-report.json").read_text())
    assert all(not r.get("violations") for r in report.get("pluginReports", [])), report


def test_every_nag_acknowledgment_has_a_reason(synthesized: Synth) -> None:
    acks = synthesized.stack.acknowledgments
    assert len(acks) >= 10
    for path, rule, reason in acks:
        assert rule.startswith("AwsSolutions-"), (path, rule)
        assert len(reason.split()) >= 5, (path, rule, reason)
    by_rule = {rule: path for path, rule, _ in acks}
    assert by_rule["AwsSolutions-CFR3"] == "QrPro/Redirect/Distribution"  # standard logging off: viewer IPs
    public = {path.removeprefix("QrPro/Api/RestApi/Default") for path, rule, _ in acks if rule == "AwsSolutions-APIG4"}
    assert public == {"/GET", "/docs/GET", "/docs/openapi.json/GET", "/docs/init.js/GET", "/docs/swagger-ui.css/GET",
                      "/docs/swagger-ui-bundle.js/GET"}  # only the public reference
    # Bulk-suppressing IAM wildcards is not allowed: only the exact findings below.
    iam5 = {rule for _, rule, _ in acks if rule.startswith("AwsSolutions-IAM5")}
    assert iam5 <= {"AwsSolutions-IAM5[Resource::*]"} | {r for r in iam5 if "ExportBucket" in r
                                                          or "FailedEvents" in r or "apigateway" in r}
    gateway = sorted(r.split("::/", 1)[1] for r in iam5 if "apigateway" in r)
    assert [g.split("/")[0] for g in gateway] == ["apikeys", "usageplans", "usageplans", "usageplans"]
    assert not any("Fallback" in g for g in gateway)


def test_cfn_lint_has_no_errors(synthesized: Synth) -> None:
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    proc = subprocess.run([str(cfn_lint), str(synthesized.template_path)],
                          capture_output=True, text=True, check=False)
    # Exit code bits: 2 = errors, 4 = warnings, 8 = informational; 1 = fatal.
    assert proc.returncode & 3 == 0, proc.stdout + proc.stderr


# --- deployment context ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def with_domains() -> Synth:
    return synth({
        "qrpro:shortDomain": "aqr.example",
        "qrpro:shortCertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/short",
        "qrpro:apiDomain": "api.example",
        "qrpro:apiCertificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/api",
        "qrpro:sesSender": "hello@mail.example",
        "qrpro:requireUsageKey": "true",
        "qrpro:exportTimeoutSeconds": "300",
        "qrpro:exportMemoryMb": "1769",
        "qrpro:alarmEmail": "oncall@example.com",
    }, nag=False)


def test_custom_domains_context(with_domains: Synth) -> None:
    template = with_domains.template
    _, dist = one(template, "AWS::CloudFront::Distribution")
    config = dist["Properties"]["DistributionConfig"]
    assert config["Aliases"] == ["aqr.example"]
    assert config["ViewerCertificate"]["MinimumProtocolVersion"] == "TLSv1.2_2021"
    assert config["ViewerCertificate"]["AcmCertificateArn"].endswith("certificate/short")
    _, domain = one(template, "AWS::ApiGateway::DomainName")
    assert domain["Properties"]["DomainName"] == "api.example"
    assert domain["Properties"]["SecurityPolicy"] == "TLS_1_2"
    for name, (_, res) in functions(template).items():
        env = res["Properties"]["Environment"]["Variables"]
        assert env["SHORT_BASE_URL"] == "https://aqr.example", name
        assert env["API_BASE_URL"] == "https://api.example/api", name
        assert env["SES_SENDER"] == "hello@mail.example"
    assert template["Outputs"]["RedirectUrl"]["Value"] == "https://aqr.example"
    ses = [s for s in role_statements(template, "mail") if "ses:SendEmail" in actions_of([s])]
    assert "identity/mail.example" in json.dumps(ses[0]["Resource"])
    methods = of_type(template, "AWS::ApiGateway::Method").values()
    required = {m["Properties"]["AuthorizationType"]: m["Properties"].get("ApiKeyRequired", False)
                for m in methods}
    assert required == {"CUSTOM": True, "NONE": False}
    _, sub = one(template, "AWS::SNS::Subscription")
    topic_key = one(template, "AWS::SNS::Topic")[0]
    assert sub["Properties"] == {"Protocol": "email", "Endpoint": "oncall@example.com",
                                 "TopicArn": {"Ref": topic_key}}


def export_timeouts(template: dict[str, Any]) -> tuple[Any, Any, Any]:
    """(integration timeout of GET /api/user/export in ms, export function timeout s, memory MB)."""
    key, fn = functions(template)["export"]
    timeouts = [m["Properties"]["Integration"].get("TimeoutInMillis")
                for m in of_type(template, "AWS::ApiGateway::Method").values()
                if m["Properties"]["HttpMethod"] == "GET"
                and key in json.dumps(m["Properties"]["Integration"].get("Uri", ""))]
    assert len(timeouts) == 1
    return timeouts[0], fn["Properties"]["Timeout"], fn["Properties"]["MemorySize"]


def test_export_timeout_defaults_to_29_s_and_follows_the_context(
        template: dict[str, Any], with_domains: Synth) -> None:
    assert export_timeouts(template) in {(None, 29, 1024), (29000, 29, 1024)}
    assert export_timeouts(with_domains.template) == (300000, 300, 1769)


def test_export_timeout_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match=r"exportTimeoutSeconds must be 29\.\.900"):
        synth({"qrpro:exportTimeoutSeconds": "901"}, nag=False)


def test_stack_is_environment_agnostic_and_app_is_offline(synthesized: Synth) -> None:
    from infra_synth_helpers import ROOT

    assert synthesized.stack.environment == "aws://unknown-account/unknown-region"
    cdk_json = json.loads((ROOT / "cdk.json").read_text())
    assert cdk_json["app"] == ".venv/bin/python infra/app.py"
    # No context provider lookups were needed (nothing to resolve against AWS).
    manifest = json.loads((synthesized.assembly_dir / "manifest.json").read_text())
    assert not manifest.get("missing")


def test_local_bundler_stages_a_function_without_docker(tmp_path: Path) -> None:
    from infra.constructs.bundling import LocalBundler

    assert LocalBundler("function", "redirect").try_bundle(str(tmp_path)) is True
    assert (tmp_path / "lambdas" / "__init__.py").is_file()
    assert sorted(p.name for p in (tmp_path / "lambdas").iterdir()) == ["__init__.py", "redirect"]


# --- WAF -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def with_waf() -> Synth:
    """WAF on, concurrency reservations off (what an account with a small quota deploys first)."""
    return synth({"qrpro:waf": "true", "qrpro:reserveConcurrency": "false"})


def test_no_waf_by_default(template: dict[str, Any]) -> None:
    assert not [r for r in template["Resources"].values() if r["Type"].startswith("AWS::WAFv2::")]
    _, dist = one(template, "AWS::CloudFront::Distribution")
    assert "WebACLId" not in dist["Properties"]["DistributionConfig"]


def _rate_rule(acl: dict[str, Any]) -> dict[str, Any]:
    (rule,) = acl["Properties"]["Rules"]
    assert rule["Action"]["Block"]["CustomResponse"]["ResponseCode"] == 429
    assert acl["Properties"]["DefaultAction"] == {"Allow": {}}
    for config in (acl["Properties"]["VisibilityConfig"], rule["VisibilityConfig"]):
        assert config["SampledRequestsEnabled"] is False  # samples keep client IPs
    statement: dict[str, Any] = rule["Statement"]["RateBasedStatement"]
    assert statement["AggregateKeyType"] == "IP"
    return statement


def test_waf_rate_limits_the_api_stage_and_the_distribution_in_us_east_1(with_waf: Synth) -> None:
    template = with_waf.template
    assert with_waf.nag_error is None, with_waf.nag_error
    acls = of_type(template, "AWS::WAFv2::WebACL")
    (api_key,) = [k for k, a in acls.items() if a["Properties"]["Scope"] == "REGIONAL"]
    assert _rate_rule(acls[api_key])["Limit"] == 3000
    body = acls[api_key]["Properties"]["CustomResponseBodies"]["rate_limited"]
    assert json.loads(body["Content"]) == {"error": "rate_limited", "window": "second"}
    _, assoc = one(template, "AWS::WAFv2::WebACLAssociation")
    stage_key = one(template, "AWS::ApiGateway::Stage")[0]
    assert assoc["Properties"]["WebACLArn"] == {"Fn::GetAtt": [api_key, "Arn"]}
    assert {"Ref": stage_key} in assoc["Properties"]["ResourceArn"]["Fn::Join"][1]
    # CLOUDFRONT-scope ACLs exist only in us-east-1: created and attached there only.
    (cf_key,) = [k for k, a in acls.items() if a["Properties"]["Scope"] == "CLOUDFRONT"]
    assert _rate_rule(acls[cf_key])["Limit"] >= 10_000  # a flood guard: scans are never limited by plan
    condition = acls[cf_key]["Condition"]
    assert template["Conditions"][condition] == {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]}
    _, dist = one(template, "AWS::CloudFront::Distribution")
    assert dist["Properties"]["DistributionConfig"]["WebACLId"] == {
        "Fn::If": [condition, {"Fn::GetAtt": [cf_key, "Arn"]}, {"Ref": "AWS::NoValue"}]}
    proc = subprocess.run([str(Path(sys.executable).with_name("cfn-lint")), str(with_waf.template_path)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode & 3 == 0, proc.stdout + proc.stderr
