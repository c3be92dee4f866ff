"""Asynchronous work: the scans aggregator (SQS), the outbox fan-out (DynamoDB
stream, ``EVENT#`` items only), webhook delivery (SQS, backoff by visibility),
the expiry job (EventBridge, every 15 minutes) and the drain of scans parked
in DynamoDB during an SQS outage (EventBridge, every 5 minutes)."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

EXPIRY_SCHEDULE = Duration.minutes(15)
SCAN_DRAIN_SCHEDULE = Duration.minutes(5)
OUTBOX_PREFIX = "EVENT#"


class Jobs(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, table: dynamodb.ITable,
                 scans_function: lambda_.Function, events_function: lambda_.Function,
                 webhooks_function: lambda_.Function, expiry_function: lambda_.Function,
                 scans_queue: sqs.IQueue, webhooks_queue: sqs.IQueue, events_dlq: sqs.IQueue) -> None:
        super().__init__(scope, construct_id)

        # Scans: big batches folded into a few ADD updates; partial failures reported.
        # A 2 s window keeps analytics a few seconds behind; at most 10 concurrent
        # batches so a viral scope's aggregate partition is not overrun.
        scans_function.add_event_source(sources.SqsEventSource(
            scans_queue, batch_size=100, max_batching_window=Duration.seconds(2),
            report_batch_item_failures=True, max_concurrency=10,
        ))

        # The outbox: only EVENT# items reach the function (filtered by Lambda, not in code).
        events_function.add_event_source(sources.DynamoEventSource(
            table,
            starting_position=lambda_.StartingPosition.TRIM_HORIZON,
            batch_size=100,
            max_batching_window=Duration.seconds(1),
            bisect_batch_on_error=True,
            # The handler answers batchItemFailures: without this flag Lambda ignores that answer
            # and counts every batch as a success (a failed fan-out would be dropped, not retried).
            report_batch_item_failures=True,
            retry_attempts=10,
            max_record_age=Duration.hours(24),
            on_failure=sources.SqsDlq(events_dlq),
            filters=[lambda_.FilterCriteria.filter({
                "eventName": lambda_.FilterRule.is_equal("INSERT"),
                "dynamodb": {"Keys": {"pk": {"S": lambda_.FilterRule.begins_with(OUTBOX_PREFIX)}}},
            })],
        ))

        # Webhook delivery: one message per (event, webhook); retries by visibility.
        webhooks_function.add_event_source(sources.SqsEventSource(
            webhooks_queue, batch_size=10, report_batch_item_failures=True,
        ))

        # Parked scans are also counted after SQS batches, but only by warm containers:
        # the schedule makes sure none waits for traffic that may never come.
        self.scan_drain_rule = events.Rule(
            self, "ScanDrainSchedule",
            description="QR Pro: count scans the redirect parked in DynamoDB while SQS failed",
            schedule=events.Schedule.rate(SCAN_DRAIN_SCHEDULE),
        )
        self.scan_drain_rule.add_target(targets.LambdaFunction(scans_function, retry_attempts=2))

        self.expiry_rule = events.Rule(
            self, "ExpirySchedule",
            description="QR Pro: expire grace codes and plans that are due",
            schedule=events.Schedule.rate(EXPIRY_SCHEDULE),
        )
        self.expiry_rule.add_target(targets.LambdaFunction(expiry_function, retry_attempts=2))
