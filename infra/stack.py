"""The QR Pro stack: environment-agnostic, no lookups, nothing that calls AWS at synth.

Context keys (all optional; see docs/deploy.md):

- ``qrpro:shortDomain`` + ``qrpro:shortCertificateArn`` (ACM, us-east-1): the redirect host
- ``qrpro:apiDomain`` + ``qrpro:apiCertificateArn`` (ACM, the stack's region): the API host
- ``qrpro:sesSender`` (default ``no-reply@aqr.net``) and ``qrpro:sesIdentity`` (the verified
  SES identity that may send; default the sender's domain)
- ``qrpro:requireUsageKey`` (default true): the ``/api`` methods require the authorizer's
  usage-plan key (API Gateway's per-key daily quota as the edge backstop; keys without their
  own gateway key ride on the stack's fallback key); ``false`` switches the backstop off
- ``qrpro:alarmEmail``: an email address subscribed to the alarms topic
- ``qrpro:accountConcurrency`` (default 1,000) and ``qrpro:reserveConcurrency`` (default true): the
  account's Lambda concurrency quota, from which the concurrency plan is computed (infra/concurrency.py);
  ``false`` reserves nothing (a first deploy on an account whose quota is still 10, docs/deploy.md)
- ``qrpro:waf`` (default false): rate-based AWS WAF web ACLs (infra/constructs/waf.py)
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, Aws, CfnCondition, CfnElement, CfnOutput, Duration, Fn, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct, IConstruct

from infra import concurrency
from infra.constructs.api import Api
from infra.constructs.functions import QrFunction, SharedLayer
from infra.constructs.jobs import FAILED_EVENTS_METRICS, Jobs
from infra.constructs.monitoring import Monitoring
from infra.constructs.queues import (
    COMPACTION_FUNCTION_TIMEOUT,
    MAIL_FUNCTION_TIMEOUT,
    SCANS_FUNCTION_TIMEOUT,
    WEBHOOKS_FUNCTION_TIMEOUT,
    Queues,
)
from infra.constructs.redirect import Redirect
from infra.constructs.storage import Storage
from infra.constructs.usage import UsageKeys
from infra.constructs.waf import Waf

TABLE_READ = ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"]
TABLE_WRITE = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
               "dynamodb:BatchWriteItem", "dynamodb:ConditionCheckItem"]
IDEMPOTENCY_RW = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]

DEFAULT_SES_SENDER = "no-reply@aqr.net"
# The export runs behind API Gateway: 29 s is the default integration timeout. Regional REST
# APIs can raise it by a quota increase; very large exports need that (docs/performance.md).
DEFAULT_EXPORT_TIMEOUT, MAX_EXPORT_TIMEOUT, DEFAULT_EXPORT_MEMORY = 29, 900, 1024


def truthy(value: object, default: bool = False) -> bool:
    """A yes/no context value (absent or empty: ``default``)."""
    if value is None or value == "":
        return default
    return str(value).lower() in {"1", "true", "yes"}


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one cdk-nag finding on ``scope`` (and its children) with a written reason.

    Every acknowledgment goes through here and is recorded on the stack
    (``QrProStack.acknowledgments``) so tests can check each carries a reason.
    """
    if len(reason.strip()) < 20:
        raise ValueError(f"cdk-nag acknowledgment {rule} needs a real reason")
    Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))
    stack = Stack.of(scope)
    if isinstance(stack, QrProStack):
        stack.acknowledgments.append((scope.node.path, rule, reason))


class QrProStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.acknowledgments: list[tuple[str, str, str]] = []
        ctx = self.node.try_get_context
        short_domain: str | None = ctx("qrpro:shortDomain") or None
        short_cert: str | None = ctx("qrpro:shortCertificateArn") or None
        api_domain: str | None = ctx("qrpro:apiDomain") or None
        api_cert: str | None = ctx("qrpro:apiCertificateArn") or None
        ses_sender: str = ctx("qrpro:sesSender") or DEFAULT_SES_SENDER
        ses_identity: str = ctx("qrpro:sesIdentity") or ses_sender.rsplit("@", 1)[-1]
        require_usage_key = truthy(ctx("qrpro:requireUsageKey"), default=True)
        with_waf = truthy(ctx("qrpro:waf"))
        self.concurrency = concurrency.budget(
            concurrency.account_quota(ctx("qrpro:accountConcurrency")),
            reserve=truthy(ctx("qrpro:reserveConcurrency"), default=True))
        export_timeout = int(ctx("qrpro:exportTimeoutSeconds") or DEFAULT_EXPORT_TIMEOUT)
        export_memory = int(ctx("qrpro:exportMemoryMb") or DEFAULT_EXPORT_MEMORY)
        if not DEFAULT_EXPORT_TIMEOUT <= export_timeout <= MAX_EXPORT_TIMEOUT:
            raise ValueError(f"qrpro:exportTimeoutSeconds must be {DEFAULT_EXPORT_TIMEOUT}..{MAX_EXPORT_TIMEOUT} "
                             f"(above 29 s only after raising the account's API Gateway integration timeout "
                             f"quota; docs/deploy.md), not {export_timeout}")

        storage = Storage(self, "Storage")
        queues = Queues(self, "Queues")
        layer = SharedLayer(self, "Shared").layer
        table = storage.table

        env = {
            "TABLE_NAME": table.table_name,
            "IDEMPOTENCY_TABLE_NAME": storage.idempotency_table.table_name,
            "CURSOR_SECRET_ARN": storage.cursor_secret.secret_arn,
            "WEBHOOK_KEY_ARN": storage.webhook_key.secret_arn,
            "SCANS_QUEUE_URL": queues.scans.queue_url,
            "COMPACTION_QUEUE_URL": queues.compaction.queue_url,
            "MAIL_QUEUE_URL": queues.mail.queue_url,
            "WEBHOOKS_QUEUE_URL": queues.webhooks.queue_url,
            "EXPORT_BUCKET": storage.export_bucket.bucket_name,
            "SES_SENDER": ses_sender,
        }
        fns: dict[str, QrFunction] = {}

        def function(name: str, **kw: Any) -> QrFunction:
            if name not in concurrency.PLAN:
                raise concurrency.ConcurrencyPlanError(f"function {name!r} has no line in the concurrency plan "
                                                       "(infra/concurrency.py PLAN)")
            fns[name] = QrFunction(self, f"{name.title()}Fn", name=name, layer=layer, environment=env,
                                   reserved_concurrency=self.concurrency.reserved.get(name), **kw)
            return fns[name]

        api = function("api", timeout=Duration.seconds(29), memory_size=1024)
        authorizer = function("authorizer", timeout=Duration.seconds(5))
        # One invocation a scan: no platform log lines, and no trace of its own (X-Ray's default sampling
        # would record about a quarter of the scans at 10 M a month, $1.5 per million scans:
        # docs/performance.md); its health is in its metrics, EMF counts and alarms.
        redirect = function("redirect", timeout=Duration.seconds(5), platform_logs=False,
                            tracing=lambda_.Tracing.PASS_THROUGH)
        scans = function("scans", timeout=SCANS_FUNCTION_TIMEOUT)
        # A fold step holds at most 50,000 scans (benchmarks/bench_compaction.py: its peak memory).
        compaction = function("compaction", timeout=COMPACTION_FUNCTION_TIMEOUT, memory_size=512)
        fanout = function("fanout", timeout=Duration.seconds(50))
        mail = function("mail", timeout=MAIL_FUNCTION_TIMEOUT)
        events = function("events", timeout=Duration.seconds(60))
        webhooks = function("webhooks", timeout=WEBHOOKS_FUNCTION_TIMEOUT)
        export = function("export", timeout=Duration.seconds(export_timeout), memory_size=export_memory)
        expiry = function("expiry", timeout=Duration.seconds(300))
        usagekeys = function("usagekeys", timeout=Duration.seconds(60))

        # --- least privilege, one role per function (explicit actions, no wildcards) ---
        all_indexes = storage.table_and_indexes
        idem = [storage.idempotency_table.table_arn]
        api.allow(TABLE_READ + TABLE_WRITE, all_indexes)
        api.allow(IDEMPOTENCY_RW, idem)
        authorizer.allow(["dynamodb:GetItem", "dynamodb:UpdateItem"], [table.table_arn])
        redirect.allow(["dynamodb:GetItem"], [table.table_arn])
        # During an SQS outage the redirect parks each scan as a SCANPENDING# item (and only that).
        redirect.role.add_to_policy(iam.PolicyStatement(
            actions=["dynamodb:PutItem"], resources=[table.table_arn],
            conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["SCANPENDING#*"]}},
        ))
        # A code with a scan limit: its counter (LIMIT#{code}), one conditional update per counted scan.
        redirect.role.add_to_policy(iam.PolicyStatement(
            actions=["dynamodb:UpdateItem"], resources=[table.table_arn],
            conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["LIMIT#*"]}},
        ))
        redirect.allow(["sqs:SendMessage"], [queues.scans.queue_arn])
        ses_identity_arn = f"arn:{self.partition}:ses:{self.region}:{self.account}:identity/{ses_identity}"
        for counter in (scans, compaction, fanout):  # panes, their marks, checkpoints and the aggregates
            counter.allow(TABLE_READ + TABLE_WRITE, all_indexes)
        fanout.allow(["sqs:SendMessage"], [queues.compaction.queue_arn])
        mail.allow(["dynamodb:GetItem", "dynamodb:UpdateItem"], [table.table_arn])  # the email's claim, the owner
        mail.allow(["ses:SendEmail"], [ses_identity_arn])
        events.allow(TABLE_READ, all_indexes)
        events.allow(["sqs:SendMessage"], [queues.webhooks.queue_arn, queues.mail.queue_arn])
        webhooks.allow(TABLE_READ + TABLE_WRITE, all_indexes)
        webhooks.allow(["sqs:SendMessage", "sqs:ChangeMessageVisibility"], [queues.webhooks.queue_arn])
        export.allow(TABLE_READ, all_indexes)
        # The daily request budget (RATE# counters) is the only item the export function writes.
        export.role.add_to_policy(iam.PolicyStatement(
            actions=["dynamodb:UpdateItem"], resources=[table.table_arn],
            conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["RATE#*"]}},
        ))
        # PutObject also covers multipart create/upload/complete; abort cleans up a failed export.
        export.allow(["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"],
                     [storage.export_bucket.arn_for_objects("*")])
        expiry.allow(TABLE_READ + TABLE_WRITE, all_indexes)
        # The stream consumer reads keys, profiles, teams and members; it writes only the
        # usage_key* attributes of auth items and synced_plan of profiles (infra/constructs/usage.py).
        usagekeys.allow(["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"], [table.table_arn])
        usagekeys.role.add_to_policy(iam.PolicyStatement(
            actions=["dynamodb:UpdateItem"], resources=[table.table_arn],
            conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["APIKEY#*", "USER#*", "TEAM#*"]}},
        ))
        for reader in (api, export):
            storage.cursor_secret.grant_read(reader.role)
        for reader in (api, webhooks):
            storage.webhook_key.grant_read(reader.role)

        # --- edges ---
        # The fallback gateway key's value. Not a credential: with apiKeySource AUTHORIZER, API
        # Gateway ignores x-api-key headers; the value only names what the authorizer meters on.
        # Unique per stack (API key values are unique per account and region).
        fallback_usage_key = Fn.join("", ["qrpro-fallback-", Fn.select(2, Fn.split("/", Aws.STACK_ID))])
        authorizer.function.add_environment("FALLBACK_USAGE_KEY", fallback_usage_key)
        self.api = Api(self, "Api", api_function=api.function, export_function=export.function,
                       authorizer_function=authorizer.function, require_usage_key=require_usage_key,
                       fallback_usage_key=fallback_usage_key,
                       export_timeout=Duration.seconds(export_timeout),
                       domain_name=api_domain, certificate_arn=api_cert)
        self.redirect = Redirect(self, "Redirect", function=redirect.function,
                                 domain_name=short_domain, certificate_arn=short_cert)
        api_base_url = self.api.base_url()
        short_base_url = f"https://{short_domain}" if short_domain else self.redirect.url
        for name, fn in fns.items():
            fn.function.add_environment("API_BASE_URL", api_base_url)
            # The redirect function is the distribution's origin: it cannot reference the
            # distribution's generated domain (cycle); it gets the custom domain when set.
            if name != "redirect" or short_domain:
                fn.function.add_environment("SHORT_BASE_URL", short_base_url)

        self.usage_keys = UsageKeys(self, "UsageKeys", table=table, function=usagekeys,
                                    usage_plans={p: u.usage_plan_id for p, u in self.api.usage_plans.items()})

        jobs = Jobs(self, "Jobs", table=table, scans_function=scans.function,
                    compaction_function=compaction.function, fanout_function=fanout.function,
                    mail_function=mail.function, events_function=events.function,
                    webhooks_function=webhooks.function, expiry_function=expiry.function,
                    scans_queue=queues.scans, compaction_queue=queues.compaction, mail_queue=queues.mail,
                    webhooks_queue=queues.webhooks, mapping_caps=self.concurrency.mapping_caps)

        # CloudFront's metrics and CLOUDFRONT-scope web ACLs live in us-east-1 only.
        self.in_us_east_1 = CfnCondition(self, "InUsEast1", expression=Fn.condition_equals(Aws.REGION, "us-east-1"))
        self.waf = Waf(self, "Waf", stage_arn=self.api.rest_api.deployment_stage.stage_arn,
                       distribution=self.redirect.distribution,
                       in_us_east_1=self.in_us_east_1) if with_waf else None
        self.monitoring = Monitoring(
            self, "Monitoring", functions={n: f.function for n, f in fns.items()},
            dlqs={**queues.dlqs, "usagekeys": self.usage_keys.failed, "scheduled": jobs.scheduled_failures},
            scans_queue=queues.scans, compaction_queue=queues.compaction, rest_api=self.api.rest_api,
            tables={"main": table, "idempotency": storage.idempotency_table},
            failed_events=jobs.failed_events, failed_events_filter=FAILED_EVENTS_METRICS,
            distribution=self.redirect.distribution, in_us_east_1=self.in_us_east_1,
            alarm_email=ctx("qrpro:alarmEmail") or None)

        CfnOutput(self, "ApiUrl", value=api_base_url, description="Base URL of the API (/api)")
        CfnOutput(self, "RedirectUrl", value=self.redirect.url, description="Short-link base URL")
        CfnOutput(self, "TableName", value=table.table_name)
        CfnOutput(self, "RestApiDefaultUrl", value=self.api.rest_api.url,
                  description="execute-api stage URL (also when a custom domain is set)")
        CfnOutput(self, "DistributionDomainName", value=self.redirect.distribution.distribution_domain_name,
                  description="CNAME/alias target for the short domain")
        if self.api.domain is not None:
            CfnOutput(self, "ApiDomainTarget", value=self.api.domain.domain_name_alias_domain_name,
                      description="CNAME/alias target for the API domain")
        CfnOutput(self, "ExportBucketName", value=storage.export_bucket.bucket_name)
        CfnOutput(self, "FailedEventsBucketName", value=jobs.failed_events.bucket_name,
                  description="Whole records of outbox (events stream) batches given up after retries")
        CfnOutput(self, "WebhooksQueueUrl", value=queues.webhooks.queue_url,
                  description="Webhook deliveries (qrpro admin replay-failed-events queues there)")
        CfnOutput(self, "AlarmsTopicArn", value=self.monitoring.topic.topic_arn,
                  description="SNS topic every alarm notifies (subscribe on-call tools here)")
        CfnOutput(self, "DashboardName", value=self.monitoring.dashboard.dashboard_name)
        for plan, usage_plan in self.api.usage_plans.items():
            CfnOutput(self, f"UsagePlan{plan.title()}Id", value=usage_plan.usage_plan_id,
                      description=f"Usage plan for {plan} keys (attach each key's usage_key here)")

        self.functions = fns
        self.storage = storage
        self.queues = queues
        self.jobs = jobs
        self._acknowledge(fns, storage, jobs, has_short_cert=short_cert is not None and bool(short_domain),
                          with_waf=with_waf)

    def _acknowledge_objects(self, fn: QrFunction, bucket: s3.IBucket, reason: str) -> None:
        """``fn``'s grant on every object of ``bucket`` (object keys not known in advance)."""
        bucket_cfn = bucket.node.default_child
        assert isinstance(bucket_cfn, CfnElement)
        acknowledge(fn, f"AwsSolutions-IAM5[Resource::<{self.get_logical_id(bucket_cfn)}.Arn>/*]", reason)

    def _acknowledge(self, fns: dict[str, QrFunction], storage: Storage, jobs: Jobs, has_short_cert: bool,
                     with_waf: bool) -> None:
        """Every accepted cdk-nag AwsSolutions finding, each with its reason."""
        for fn in fns.values():
            acknowledge(fn, "AwsSolutions-L1",
                        "Pinned to python3.13: the shared layer's wheels are built for cp313/aarch64 "
                        "and the code is tested on 3.13.")
            acknowledge(fn, "AwsSolutions-IAM5[Resource::*]",
                        "X-Ray PutTraceSegments/PutTelemetryRecords (and DynamoDB ListStreams for the "
                        "stream consumer) support no resource-level permissions.")
        self._acknowledge_objects(fns["export"], storage.export_bucket,
                                  "The export function writes and presigns per-request export objects; keys are "
                                  "not known in advance and the bucket holds nothing else (1-day lifecycle).")
        acknowledge(storage.export_bucket, "AwsSolutions-S1",
                    "Exports live one day and are fetched by presigned URL; server access logs would "
                    "only add a second bucket of request metadata.")
        acknowledge(jobs.failed_events, "AwsSolutions-S1",
                    "Written only by Lambda's on-failure delivery of the events stream mapping; its "
                    "request metrics alarm on every write, so access logs would add nothing.")
        self._acknowledge_objects(fns["events"], jobs.failed_events,
                                  "Lambda names each failed-batch object itself (on-failure destination); the "
                                  "bucket holds nothing else and the role may only put, never read or delete.")
        gateway_arn = "arn:<AWS::Partition>:apigateway:<AWS::Region>::"
        acknowledge(fns["usagekeys"], f"AwsSolutions-IAM5[Resource::{gateway_arn}/apikeys/*]",
                    "API Gateway names each customer's gateway key when creating it; the consumer may only "
                    "delete keys (never change them), and only those its stream records name.")
        for plan in self.api.usage_plans.values():
            plan_cfn = plan.node.default_child
            assert isinstance(plan_cfn, CfnElement)
            acknowledge(fns["usagekeys"],
                        f"AwsSolutions-IAM5[Resource::{gateway_arn}/usageplans/<{self.get_logical_id(plan_cfn)}>/keys/*]",
                        "Detaching a key from one tier plan when its user's plan changes: the key ids are "
                        "API Gateway's, and the fallback plan is out of reach.")
        acknowledge(self.usage_keys.failed, "AwsSolutions-SQS3",
                    "This queue is itself the dead-letter destination of the usagekeys stream mapping "
                    "(alarmed on depth); nothing consumes it automatically.")
        acknowledge(jobs.scheduled_failures, "AwsSolutions-SQS3",
                    "This queue is itself the on-failure destination of the scheduled functions (and their "
                    "EventBridge targets' dead-letter queue), alarmed on depth; nothing consumes it.")
        acknowledge(storage.cursor_secret, "AwsSolutions-SMG4",
                    "HMAC key for list cursors: rotating it would invalidate every cursor in flight; "
                    "rotate by redeploying with a new secret when needed.")
        acknowledge(storage.webhook_key, "AwsSolutions-SMG4",
                    "Key material that seals webhook secrets: rotating it means re-sealing every "
                    "webhook's secret under the new key (a migration job), not an automatic rotation.")
        rest_api = self.api.rest_api
        acknowledge(rest_api, "AwsSolutions-APIG2",
                    "Requests are validated by the API function (pydantic models, docs/api.md error "
                    "envelope); a gateway validator would answer in a different format.")
        if not with_waf:
            acknowledge(rest_api, "AwsSolutions-APIG3",
                        "WAF is optional (qrpro:waf): abuse is bounded by the bearer-key authorizer, per-key "
                        "DynamoDB budgets, usage plans and stage throttling.")
        acknowledge(rest_api, "AwsSolutions-APIG6",
                    "Execution logs record request details (headers, authorizer output) that the privacy "
                    "rules keep out of logs; JSON access logs (no IP/user agent) are enabled instead.")
        acknowledge(rest_api.node.find_child("CloudWatchRole"),
                    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                    "AmazonAPIGatewayPushToCloudWatchLogs]",
                    "API Gateway's account-level logging role: AWS's own policy for it, needed before any "
                    "stage of the account can write access logs (a fresh account refuses the stage).")
        acknowledge(rest_api, "AwsSolutions-COG4",
                    "Authentication is by API bearer keys through the Lambda REQUEST authorizer "
                    "(docs/api.md section 2), not Cognito.")
        for method in self.api.public_methods:
            acknowledge(method, "AwsSolutions-APIG4",
                        "GET /, /docs, its assets and /docs/openapi.json are the public API reference "
                        "(docs/api.md section 1): no data, no key.")
        dist = self.redirect.distribution
        acknowledge(dist, "AwsSolutions-CFR1",
                    "Short links must work from every country; no geo restriction.")
        acknowledge(dist, "AwsSolutions-CFR2",
                    "WAF is optional (qrpro:waf) and, being CLOUDFRONT-scoped, exists only in us-east-1 "
                    "stacks; scans are never rate-limited by plan (docs/api.md section 4).")
        acknowledge(dist, "AwsSolutions-CFR3",
                    "CloudFront standard logging is disabled on purpose: it would store viewer IP "
                    "addresses, which the privacy rules forbid.")
        if not has_short_cert:
            acknowledge(dist, "AwsSolutions-CFR4",
                        "Without a custom short domain the distribution uses the default "
                        "*.cloudfront.net certificate; with one it enforces TLSv1.2_2021.")
