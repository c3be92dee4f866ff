"""Gateway keys follow the table: the ``usagekeys`` function consumes the table
stream (only key listings, profiles and team memberships reach it, filtered by
Lambda) and keeps each customer key's API Gateway key on the usage plan of its
user's highest tier (``qrpro.data.usage_keys``). A failed batch is retried
(bisected), then described in an SQS dead-letter queue that raises an alarm;
meanwhile the key rides on the fallback key and nothing breaks.

Its role holds only the API Gateway calls it makes: create and list API keys,
delete an API key, attach to and detach from the three tier plans (never the
fallback plan)."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constructs.functions import QrFunction

# Lambda event filtering: what the consumer acts on (qrpro.data.usage_keys.STREAM_FILTERS mirrors it).
KEY_LISTINGS = {"eventName": lambda_.FilterRule.or_("INSERT", "REMOVE"),
                "dynamodb": {"Keys": {"pk": {"S": lambda_.FilterRule.begins_with("USER#")},
                                      "sk": {"S": lambda_.FilterRule.begins_with("KEY#")}}}}
PROFILES = {"eventName": lambda_.FilterRule.is_equal("MODIFY"),
            "dynamodb": {"Keys": {"sk": {"S": lambda_.FilterRule.is_equal("PROFILE")}}}}
MEMBERSHIPS = {"eventName": lambda_.FilterRule.or_("INSERT", "REMOVE"),
               "dynamodb": {"Keys": {"pk": {"S": lambda_.FilterRule.begins_with("TEAM#")},
                                     "sk": {"S": lambda_.FilterRule.begins_with("MEMBER#")}}}}
RETRIES = 5


class UsageKeys(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, table: dynamodb.ITable, function: QrFunction,
                 usage_plans: Mapping[str, str]) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)

        def arn(path: str) -> str:
            return f"arn:{stack.partition}:apigateway:{stack.region}::{path}"

        for tier, plan_id in usage_plans.items():
            function.function.add_environment(f"USAGE_PLAN_{tier.upper()}", plan_id)
        # CreateApiKey, and GetApiKeys by name (the key of a revoked listing).
        function.allow(["apigateway:POST", "apigateway:GET"], [arn("/apikeys")])
        function.allow(["apigateway:DELETE"], [arn("/apikeys/*")])
        function.allow(["apigateway:POST"], [arn(f"/usageplans/{p}/keys") for p in usage_plans.values()])
        function.allow(["apigateway:DELETE"], [arn(f"/usageplans/{p}/keys/*") for p in usage_plans.values()])

        # Holds the shard positions of batches given up on; `qrpro admin sync-usage-keys` repairs them.
        self.failed = sqs.Queue(self, "Failed", encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
                                retention_period=Duration.days(14))
        function.function.add_event_source(sources.DynamoEventSource(
            table,
            starting_position=lambda_.StartingPosition.TRIM_HORIZON,
            batch_size=20,
            bisect_batch_on_error=True,
            report_batch_item_failures=True,
            retry_attempts=RETRIES,
            max_record_age=Duration.hours(1),
            on_failure=sources.SqsDlq(self.failed),
            filters=[lambda_.FilterCriteria.filter(f) for f in (KEY_LISTINGS, PROFILES, MEMBERSHIPS)],
        ))
        self.role: iam.IRole = function.role
