"""Asynchronous work: the scans aggregator (SQS), the compaction's fan-out
(EventBridge, every minute) and its workers (SQS), the cap email (SQS), the
outbox fan-out (DynamoDB stream, ``EVENT#`` items only, failed batches kept
whole in S3), webhook delivery (SQS, backoff by visibility), the expiry job
(EventBridge, every 15 minutes) and the drain of scans parked in DynamoDB
during an SQS outage (EventBridge, every 5 minutes).

Every scheduled function is invoked asynchronously: ``Jobs.schedule`` gives it
its rule, its asynchronous-invocation settings (retries chosen per function,
an event never older than the schedule's period) and the on-failure
destination shared by all of them (``scheduled_failures``, an alarmed queue)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constructs.storage import private_bucket

EXPIRY_SCHEDULE = Duration.minutes(15)
SCAN_DRAIN_SCHEDULE = Duration.minutes(5)
FANOUT_SCHEDULE = Duration.minutes(1)
OUTBOX_PREFIX = "EVENT#"
# Failed outbox batches (whole records) are kept this long: time to see the alarm and replay them.
FAILED_EVENTS_EXPIRY = Duration.days(90)
# The bucket is versioned: an object replayed (or deleted by hand) stays recoverable this long.
FAILED_EVENTS_NONCURRENT_EXPIRY = Duration.days(30)
# How long a failed scheduled invocation's record waits in its queue (SQS's maximum).
SCHEDULED_FAILURES_RETENTION = Duration.days(14)
# Retries of each scheduled function's asynchronous invocations (Lambda's default is 2), and why.
SCHEDULED_RETRIES: dict[str, tuple[int, str]] = {
    "expiry": (0, "a sweep of what is due: the next run, 15 minutes later, redoes whatever a failed run "
                  "left, and a retry 1-3 minutes later would only race it"),
    "scans": (0, "the drain of parked scans: the next run, 5 minutes later, takes up what is still "
                 "parked, and SQS batches also drain them meanwhile"),
    "fanout": (0, "a fence and the fold jobs of every open day: the next run, a minute later, queues "
                  "the same days up to a newer fence"),
}
FAILED_EVENTS_METRICS = "FailedEventsWrites"  # S3 request metrics filter id (the alarm's FilterId)


class S3OnFailure(sources.S3OnFailureDestination):
    """CDK's S3 on-failure destination (same template: ``DestinationConfig.OnFailure.Destination``
    is the bucket ARN), granting only what Lambda needs to write there (``s3:PutObject`` and
    ``s3:ListBucket``) instead of ``grantReadWrite`` (wildcard actions, deletes included)."""

    def __init__(self, bucket: s3.IBucket) -> None:
        super().__init__(bucket)
        self._bucket = bucket

    def bind(self, _target: Any, target_handler: lambda_.IFunction) -> lambda_.DlqDestinationConfig:
        target_handler.add_to_role_policy(iam.PolicyStatement(
            actions=["s3:PutObject"], resources=[self._bucket.arn_for_objects("*")]))
        target_handler.add_to_role_policy(iam.PolicyStatement(
            actions=["s3:ListBucket"], resources=[self._bucket.bucket_arn]))
        return lambda_.DlqDestinationConfig(destination=self._bucket.bucket_arn)


class Jobs(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, table: dynamodb.ITable,
                 scans_function: lambda_.Function, compaction_function: lambda_.Function,
                 fanout_function: lambda_.Function, mail_function: lambda_.Function,
                 events_function: lambda_.Function,
                 webhooks_function: lambda_.Function, expiry_function: lambda_.Function,
                 scans_queue: sqs.IQueue, compaction_queue: sqs.IQueue, mail_queue: sqs.IQueue,
                 webhooks_queue: sqs.IQueue, mapping_caps: Mapping[str, int]) -> None:
        super().__init__(scope, construct_id)
        # Where a scheduled invocation that failed (retries spent, or too old) lands: Lambda's
        # invocation record (the event, the error, the attempts). Alarmed on depth (Monitoring).
        self.scheduled_failures = sqs.Queue(self, "ScheduledFailures", encryption=sqs.QueueEncryption.SQS_MANAGED,
                                            enforce_ssl=True, retention_period=SCHEDULED_FAILURES_RETENTION)

        # Where a stream batch goes once its retries are spent: S3 keeps the whole invocation
        # record (the EVENT# items themselves), an SQS destination only their shard positions,
        # which the 24 h stream retention then deletes. Retained with the stack (the records are
        # what an operator replays); each object expires after 90 days.
        self.failed_events = private_bucket(
            self, "FailedEvents",
            versioned=True,
            lifecycle_rules=[s3.LifecycleRule(id="expire-failed-events", enabled=True,
                                              expiration=FAILED_EVENTS_EXPIRY,
                                              noncurrent_version_expiration=FAILED_EVENTS_NONCURRENT_EXPIRY)],
            # Request metrics: the PutRequests of this bucket are its "DLQ depth" alarm.
            metrics=[s3.BucketMetrics(id=FAILED_EVENTS_METRICS)],
        )

        # Scans: big batches folded into a few ADD updates; partial failures reported.
        # A 2 s window keeps analytics a few seconds behind; at most 10 concurrent
        # batches so a viral scope's aggregate partition is not overrun.
        scans_function.add_event_source(sources.SqsEventSource(
            scans_queue, batch_size=100, max_batching_window=Duration.seconds(2),
            report_batch_item_failures=True, max_concurrency=mapping_caps["scans"],
        ))

        # Fold jobs (50 days a message), up to the plan's workers at once; a failed job comes back.
        compaction_function.add_event_source(sources.SqsEventSource(
            compaction_queue, batch_size=10, report_batch_item_failures=True,
            max_concurrency=mapping_caps["compaction"],
        ))
        # The cap email, apart from counting: SES's answer never holds up a fold.
        mail_function.add_event_source(sources.SqsEventSource(
            mail_queue, batch_size=10, report_batch_item_failures=True, max_concurrency=mapping_caps["mail"],
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
            on_failure=S3OnFailure(self.failed_events),
            filters=[lambda_.FilterCriteria.filter({
                "eventName": lambda_.FilterRule.is_equal("INSERT"),
                "dynamodb": {"Keys": {"pk": {"S": lambda_.FilterRule.begins_with(OUTBOX_PREFIX)}}},
            })],
        ))

        # Webhook delivery: one message per (event, webhook); retries by visibility.
        # Capped (infra/concurrency.py): a backlog of deliveries cannot take the redirect's share.
        webhooks_function.add_event_source(sources.SqsEventSource(
            webhooks_queue, batch_size=10, report_batch_item_failures=True,
            max_concurrency=mapping_caps["webhooks"],
        ))

        # Parked scans are also counted after SQS batches, but only by warm containers:
        # the schedule makes sure none waits for traffic that may never come.
        self.scan_drain_rule = self.schedule(
            "ScanDrainSchedule", "scans", scans_function, SCAN_DRAIN_SCHEDULE,
            "QR Pro: count scans the redirect parked in DynamoDB while SQS failed")
        # The compaction's fan-out (docs/analytics.md): a fence and the fold jobs of every open day.
        self.fanout_rule = self.schedule(
            "CompactionFanoutSchedule", "fanout", fanout_function, FANOUT_SCHEDULE,
            "QR Pro: queue a fold job for every day with scans still to fold")
        self.expiry_rule = self.schedule(
            "ExpirySchedule", "expiry", expiry_function, EXPIRY_SCHEDULE,
            "QR Pro: expire grace codes and plans that are due")

    def schedule(self, construct_id: str, name: str, function: lambda_.Function, every: Duration,
                 description: str) -> events.Rule:
        """Run ``function`` every ``every``. Its asynchronous invocations retry as ``SCHEDULED_RETRIES[name]``
        says (a function without a line there is refused), never run an event older than the period (the
        next one supersedes it), and land in ``scheduled_failures`` when they fail; so does an event
        EventBridge itself could not hand to Lambda."""
        if name not in SCHEDULED_RETRIES:
            raise ValueError(f"scheduled function {name!r} needs its retries (and why) in SCHEDULED_RETRIES")
        retries, _why = SCHEDULED_RETRIES[name]
        function.configure_async_invoke(retry_attempts=retries, max_event_age=every,
                                        on_failure=destinations.SqsDestination(self.scheduled_failures))
        rule = events.Rule(self, construct_id, description=description, schedule=events.Schedule.rate(every))
        rule.add_target(targets.LambdaFunction(function, retry_attempts=2, max_event_age=every,
                                               dead_letter_queue=self.scheduled_failures))
        return rule
