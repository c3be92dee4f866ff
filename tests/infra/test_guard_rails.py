"""Production guard rails in the template: the concurrency plan (the redirect's reserved share,
background work capped), every asynchronous invocation with its retries and an alarmed landing
place, the short-domain decision at synth, and the figures docs/ states against the template."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any

import pytest
from infra_synth_helpers import ROOT, synth
from test_infra_stack import FUNCTIONS, actions_of, functions, of_type, role_statements

from infra import concurrency
from infra.constructs.jobs import SCHEDULED_RETRIES

# What the plan reserves on the default quota (1,000): the redirect takes what is left once the
# others and Lambda's 100 unreserved executions are set aside.
RESERVED = {"redirect": 738, "api": 100, "authorizer": 50, "export": 10, "fanout": 1, "expiry": 1}
MAPPING_CAPS = {"scans": 10, "compaction": 18, "mail": 2, "webhooks": 20}


def reserved(template: dict[str, Any]) -> dict[str, int]:
    return {name: res["Properties"]["ReservedConcurrentExecutions"] for name, (_, res) in functions(template).items()
            if "ReservedConcurrentExecutions" in res["Properties"]}


def scaling(template: dict[str, Any]) -> dict[str, Any]:
    names = {key: name for name, (key, _) in functions(template).items()}
    return {names[m["Properties"]["FunctionName"]["Ref"]]: m["Properties"].get("ScalingConfig")
            for m in of_type(template, "AWS::Lambda::EventSourceMapping").values()}


# --- the concurrency plan ---------------------------------------------------------------------

def test_every_function_has_its_line_in_the_concurrency_plan(template: dict[str, Any]) -> None:
    assert set(functions(template)) == set(concurrency.PLAN) == set(FUNCTIONS)


def test_the_concurrency_plan_is_pinned(template: dict[str, Any]) -> None:
    assert reserved(template) == RESERVED
    caps = {name: config["MaximumConcurrency"] for name, config in scaling(template).items() if config}
    assert caps == MAPPING_CAPS
    # The arithmetic (docs/operations.md): every execution of the quota is someone's, the redirect's
    # share cannot be taken, and the capped consumers leave room for the stream consumers' shards.
    assert sum(RESERVED.values()) + concurrency.UNRESERVED_MINIMUM == concurrency.DEFAULT_ACCOUNT_CONCURRENCY
    assert sum(MAPPING_CAPS.values()) <= concurrency.UNRESERVED_MINIMUM // 2
    assert concurrency.required() == 362


def test_the_redirect_takes_what_a_larger_quota_adds() -> None:
    template = synth({"qrpro:accountConcurrency": "3000"}, nag=False).template
    assert reserved(template) == {**RESERVED, "redirect": 3000 - 100 - 162}


@pytest.mark.parametrize("quota", ["10", "361"])
def test_a_quota_that_cannot_hold_the_plan_stops_the_synth(quota: str) -> None:
    """A new account's quota (often 10) is found at synth, not as a failed stack."""
    with pytest.raises(concurrency.ConcurrencyPlanError) as err:
        synth({"qrpro:accountConcurrency": quota}, nag=False)
    message = str(err.value)
    for needed in (f"qrpro:accountConcurrency={quota}", "362", "100 executions Lambda keeps unreserved",
                   "ACCOUNT_CONCURRENCY=", "RESERVE_CONCURRENCY=false", "docs/deploy.md"):
        assert needed in message, needed
    assert concurrency.budget(362).reserved["redirect"] == 100  # the smallest quota that holds it


@pytest.mark.parametrize("value", ["0", "-5", "ten"])
def test_a_bad_quota_is_refused(value: str) -> None:
    with pytest.raises(concurrency.ConcurrencyPlanError, match="must be the account's Lambda concurrency quota"):
        synth({"qrpro:accountConcurrency": value}, nag=False)


def test_a_first_deploy_without_reservations_keeps_the_caps() -> None:
    template = synth({"qrpro:accountConcurrency": "10", "qrpro:reserveConcurrency": "false"}, nag=False).template
    assert reserved(template) == {}
    assert {n: c["MaximumConcurrency"] for n, c in scaling(template).items() if c} == MAPPING_CAPS


def test_deploy_preflight_compares_the_reservations_with_the_accounts_quota(template: dict[str, Any]) -> None:
    assert concurrency.template_reservations(template) == 900
    assert concurrency.preflight(template, 1000) is None
    problem = concurrency.preflight(template, 10)
    assert problem is not None and "quota is 10" in problem and "ACCOUNT_CONCURRENCY=10" in problem
    assert concurrency.preflight({"Resources": {}}, 10) is None


@pytest.mark.parametrize(("quota", "rc"), [(10, 1), (1000, 0)])
def test_make_deploy_stops_before_cloudformation_when_the_account_cannot_grant_the_reservations(
        template: dict[str, Any], tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        quota: int, rc: int) -> None:
    import boto3

    class Lambda:
        def get_account_settings(self) -> dict[str, Any]:
            return {"AccountLimit": {"ConcurrentExecutions": quota}}

    monkeypatch.setattr(boto3, "client", lambda name: Lambda())
    path = tmp_path / "QrPro.template.json"
    path.write_text(json.dumps(template))
    assert concurrency.main([str(path)]) == rc
    assert ("deploy stopped: this account's Lambda concurrency quota is 10" in capsys.readouterr().err) == (rc == 1)
    deploy = (ROOT / "infra" / "infra.mk").read_text().split("\ndeploy: synth\n", 1)[1]
    assert deploy.index("-m infra.concurrency cdk.out/QrPro.template.json") < deploy.index("$(CDK) deploy")


# --- asynchronous invocations -----------------------------------------------------------------

ASYNC_PRINCIPALS = {"events.amazonaws.com", "s3.amazonaws.com", "sns.amazonaws.com"}


def test_every_asynchronously_invoked_function_has_retries_age_and_an_alarmed_destination(
        template: dict[str, Any]) -> None:
    fns = functions(template)
    by_key = {key: name for name, (key, _) in fns.items()}
    principals = {p["Properties"]["Principal"] for p in of_type(template, "AWS::Lambda::Permission").values()}
    # Who may invoke: API Gateway and CloudFront invoke synchronously; EventBridge asynchronously.
    assert principals == {"apigateway.amazonaws.com", "cloudfront.amazonaws.com", "events.amazonaws.com"}
    invoked_async = {by_key[p["Properties"]["FunctionName"]["Fn::GetAtt"][0]]
                     for p in of_type(template, "AWS::Lambda::Permission").values()
                     if p["Properties"]["Principal"] in ASYNC_PRINCIPALS}
    assert invoked_async == {"expiry", "scans", "fanout"} == set(SCHEDULED_RETRIES)
    configs = {by_key[c["Properties"]["FunctionName"]["Ref"]]: c["Properties"]
               for c in of_type(template, "AWS::Lambda::EventInvokeConfig").values()}
    assert set(configs) == invoked_async
    rates = {by_key[t["Arn"]["Fn::GetAtt"][0]]: (r["Properties"]["ScheduleExpression"], t)
             for r in of_type(template, "AWS::Events::Rule").values() for t in r["Properties"]["Targets"]}
    queue_key = next(k for k in of_type(template, "AWS::SQS::Queue") if k.startswith("JobsScheduledFailures"))
    destination = {"Fn::GetAtt": [queue_key, "Arn"]}
    for name, config in configs.items():
        expression, target = rates[name]
        period = int(re.fullmatch(r"rate\((\d+) minutes?\)", expression)[1]) * 60  # type: ignore[index]
        assert config["MaximumRetryAttempts"] == SCHEDULED_RETRIES[name][0] == 0, name
        assert config["MaximumEventAgeInSeconds"] == period, name  # the next run supersedes an older event
        assert config["Qualifier"] == "$LATEST"
        assert config["DestinationConfig"] == {"OnFailure": {"Destination": destination}}, name
        # Lambda sends the record with the function's role.
        assert any("sqs:SendMessage" in actions_of([s]) and s["Resource"] == destination
                   for s in role_statements(template, name)), name
        # What EventBridge itself cannot hand to Lambda lands in the same queue.
        assert target["DeadLetterConfig"] == {"Arn": destination}, name
        assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": period, "MaximumRetryAttempts": 2}, name
    for name, (_, why) in SCHEDULED_RETRIES.items():
        assert len(why.split()) >= 8, (name, why)
    queue = template["Resources"][queue_key]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True and queue["MessageRetentionPeriod"] == 14 * 86400
    policy = next(p["Properties"]["PolicyDocument"] for p in of_type(template, "AWS::SQS::QueuePolicy").values()
                  if {"Ref": queue_key} in p["Properties"]["Queues"])
    senders = [s for s in policy["Statement"] if s.get("Principal") == {"Service": "events.amazonaws.com"}]
    assert senders and all(s["Action"] == "sqs:SendMessage" for s in senders)
    (alarm,) = [a["Properties"] for a in of_type(template, "AWS::CloudWatch::Alarm").values()
                if a["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
                and a["Properties"]["Dimensions"][0]["Value"] == {"Fn::GetAtt": [queue_key, "QueueName"]}]
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")


# --- the short domain is a decision ----------------------------------------------------------

def cdk_app(context: dict[str, Any], tmp: Any) -> subprocess.CompletedProcess[str]:
    """``infra/app.py`` as the CDK CLI runs it (context in CDK_CONTEXT_JSON)."""
    env = dict(os.environ, CDK_CONTEXT_JSON=json.dumps(context), CDK_OUTDIR=str(tmp))
    return subprocess.run([sys.executable, str(ROOT / "infra" / "app.py")], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300, check=False)


def test_a_synth_for_deploy_without_a_short_domain_stops_with_why(tmp_path: Any) -> None:
    done = cdk_app({}, tmp_path)
    assert done.returncode == 1
    for needed in ("printed codes", "*.cloudfront.net", "SHORT_DOMAIN=", "ALLOW_CLOUDFRONT_DOMAIN=1",
                   "qrpro:allowCloudFrontDomain=true"):
        assert needed in done.stderr, needed
    assert not list(tmp_path.glob("*.template.json"))


def test_the_cloudfront_domain_proceeds_when_chosen_explicitly() -> None:
    from aws_cdk import App

    from infra.app import short_domain_decided

    assert not short_domain_decided(App(context={}))
    assert short_domain_decided(App(context={"qrpro:allowCloudFrontDomain": "true"}))
    assert short_domain_decided(App(context={"qrpro:shortDomain": "aqr.net"}))
    infra_mk = (ROOT / "infra" / "infra.mk").read_text()
    assert "$(if $(ALLOW_CLOUDFRONT_DOMAIN),-c qrpro:allowCloudFrontDomain=true)" in infra_mk


# --- the figures docs/ states, against the template --------------------------------------------

def _queue(template: dict[str, Any], prefix: str) -> dict[str, Any]:
    return next(q["Properties"] for k, q in of_type(template, "AWS::SQS::Queue").items()
                if k.startswith(prefix) and "RedrivePolicy" in q["Properties"])


def _receives(template: dict[str, Any], prefix: str) -> int:
    return int(_queue(template, prefix)["RedrivePolicy"]["maxReceiveCount"])


def _mapping(template: dict[str, Any], name: str) -> dict[str, Any]:
    key = functions(template)[name][0]
    return next(m["Properties"] for m in of_type(template, "AWS::Lambda::EventSourceMapping").values()
                if m["Properties"]["FunctionName"] == {"Ref": key})


def _stream_retries(template: dict[str, Any], name: str) -> tuple[int, int]:
    """(retries, maximum record age in hours) of a stream mapping."""
    mapping = _mapping(template, name)
    return mapping["MaximumRetryAttempts"], mapping["MaximumRecordAgeInSeconds"] // 3600


def _function(template: dict[str, Any], name: str) -> dict[str, Any]:
    return dict(functions(template)[name][1]["Properties"])


def _scheduled(template: dict[str, Any], name: str) -> tuple[int, int, int]:
    """(schedule minutes, retries, maximum event age in minutes) of a scheduled function."""
    key = functions(template)[name][0]
    config = next(c["Properties"] for c in of_type(template, "AWS::Lambda::EventInvokeConfig").values()
                  if c["Properties"]["FunctionName"] == {"Ref": key})
    expression = next(r["Properties"]["ScheduleExpression"] for r in of_type(template, "AWS::Events::Rule").values()
                      if r["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": [key, "Arn"]})
    minutes = int(re.fullmatch(r"rate\((\d+) minutes?\)", expression)[1])  # type: ignore[index]
    return minutes, config["MaximumRetryAttempts"], config["MaximumEventAgeInSeconds"] // 60


def _failed_events_days(template: dict[str, Any]) -> int:
    bucket = next(b["Properties"] for b in of_type(template, "AWS::S3::Bucket").values()
                  if "MetricsConfigurations" in b["Properties"])
    return int(bucket["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"])


def _reserved(name: str) -> Any:
    return lambda t: (_function(t, name)["ReservedConcurrentExecutions"],)


# (doc, a pattern whose groups are the figures, what the template says they are)
FIGURES: list[tuple[str, str, Any]] = [
    ("analytics.md", r"DLQ after\s+`maxReceiveCount` (\d+), retention (\d+) days",
     lambda t: (_receives(t, "QueuesScans"), _queue(t, "QueuesScans")["MessageRetentionPeriod"] // 86400)),
    ("analytics.md", r"`BatchSize` (\d+),\s+`MaximumBatchingWindowInSeconds` (\d+), `ReportBatchItemFailures`,\s+"
                     r"`ScalingConfig.MaximumConcurrency` (\d+)",
     lambda t: (_mapping(t, "scans")["BatchSize"], _mapping(t, "scans")["MaximumBatchingWindowInSeconds"],
                _mapping(t, "scans")["ScalingConfig"]["MaximumConcurrency"])),
    ("webhooks.md", r"a DLQ with `maxReceiveCount` ≥ (\d+)", lambda t: (_receives(t, "QueuesWebhooks"),)),
    ("webhooks.md", r"retries (\d+) times within (\d+) h; a batch it gives up\s+on lands whole in the failed-events "
                    r"S3 bucket \((\d+) days\)",
     lambda t: (*_stream_retries(t, "events"), _failed_events_days(t))),
    ("operations.md", r"`<Function>Errors` \((\d+)\)", lambda t: (len(functions(t)),)),
    ("operations.md", r"`<Function>Throttles` \((\d+)\)", lambda t: (len(functions(t)),)),
    ("operations.md", r"scans that failed (\d+) aggregations", lambda t: (_receives(t, "QueuesScans"),)),
    ("operations.md", r"gave up on a batch \((\d+) retries with bisection, or (\d+) h old\)",
     lambda t: _stream_retries(t, "events")),
    ("operations.md", r"gave up on a batch \((\d+) retries, bisected\)",
     lambda t: _stream_retries(t, "usagekeys")[:1]),
    ("operations.md", r"Objects expire after (\d+) days", lambda t: (_failed_events_days(t),)),
    ("operations.md", r"\| `redirect` \| reserved: what is left \| (\d+) \|", _reserved("redirect")),
    ("operations.md", r"\| `api` \| reserved \| (\d+) \|", _reserved("api")),
    ("operations.md", r"\| `authorizer` \| reserved \| (\d+) \|", _reserved("authorizer")),
    ("operations.md", r"\| `export` \| reserved \(a cap\) \| (\d+) \|", _reserved("export")),
    ("operations.md", r"\| `fanout` \| reserved \(a cap\) \| (\d+) \|", _reserved("fanout")),
    ("operations.md", r"\| `expiry` \| reserved \(a cap\) \| (\d+) \|", _reserved("expiry")),
    ("operations.md", r"\| `scans` \| SQS `MaximumConcurrency` \| (\d+) \|",
     lambda t: (_mapping(t, "scans")["ScalingConfig"]["MaximumConcurrency"],)),
    ("operations.md", r"\| `compaction` \| SQS `MaximumConcurrency` \| (\d+) \|",
     lambda t: (_mapping(t, "compaction")["ScalingConfig"]["MaximumConcurrency"],)),
    ("operations.md", r"\| `mail` \| SQS `MaximumConcurrency` \| (\d+) \|",
     lambda t: (_mapping(t, "mail")["ScalingConfig"]["MaximumConcurrency"],)),
    ("operations.md", r"\| `webhooks` \| SQS `MaximumConcurrency` \| (\d+) \|",
     lambda t: (_mapping(t, "webhooks")["ScalingConfig"]["MaximumConcurrency"],)),
    ("operations.md", r"\| `expiry` \| every (\d+) minutes \| (\d+) \| (\d+) minutes \|",
     lambda t: _scheduled(t, "expiry")),
    ("operations.md", r"\| `scans` \(the drain\) \| every (\d+) minutes \| (\d+) \| (\d+) minutes \|",
     lambda t: _scheduled(t, "scans")),
    ("operations.md", r"\| `fanout` \| every (\d+) minute \| (\d+) \| (\d+) minute \|",
     lambda t: _scheduled(t, "fanout")),
    ("deploy.md", r"`compaction` \(the compaction queue, at most (\d+) at once\)",
     lambda t: (_mapping(t, "compaction")["ScalingConfig"]["MaximumConcurrency"],)),
    ("analytics.md", r"mail DLQ after `maxReceiveCount` (\d+)", lambda t: (_receives(t, "QueuesMail"),)),
    ("analytics.md", r"fold jobs: a DLQ after `maxReceiveCount` (\d+)", lambda t: (_receives(t, "QueuesCompaction"),)),
    ("deploy.md", r"objects expire after\s+\*\*(\d+) days\*\*", lambda t: (_failed_events_days(t),)),
]


@pytest.mark.parametrize(("doc", "pattern", "expected"), FIGURES, ids=[f"{d}:{p[:30]}" for d, p, _ in FIGURES])
def test_a_documented_figure_is_the_templates(template: dict[str, Any], doc: str, pattern: str, expected: Any) -> None:
    text = (ROOT / "docs" / doc).read_text()
    found = re.search(pattern, text)
    assert found, f"docs/{doc} no longer says {pattern!r}: update this check with the text"
    assert tuple(int(g.replace(",", "")) for g in found.groups()) == tuple(expected(template)), (doc, found[0])


# --- the CDK on a supported Node.js ----------------------------------------------------------

def test_the_cdk_and_jsii_run_on_the_repositorys_node_24() -> None:
    """Node 20 is end of life (the CDK CLI and jsii print a banner on it): package.json brings Node 24
    LTS, the Makefile puts it first on PATH, and importing infra points jsii at it."""
    node = ROOT / "node_modules" / ".bin" / "node"
    assert os.environ.get("JSII_NODE") == str(node)
    version = subprocess.run([str(node), "--version"], capture_output=True, text=True, check=True).stdout
    assert version.startswith("v24."), version
    package = json.loads((ROOT / "package.json").read_text())
    assert {v.split(".")[0] for v in package["optionalDependencies"].values()} == {"24"}
    assert "export PATH := $(CURDIR)/node_modules/.bin:$(PATH)" in (ROOT / "Makefile").read_text()
