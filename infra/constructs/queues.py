"""SQS queues: scans (redirect → aggregator), compaction (fan-out → fold jobs),
mail (events → the monthly cap email), webhooks (fan-out → delivery), each
with a dead-letter queue. (The DynamoDB stream consumer's failures go to S3:
infra/constructs/jobs.py.)"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

# The scans consumer's timeout; SQS wants the visibility timeout >= 6x it.
SCANS_FUNCTION_TIMEOUT = Duration.seconds(30)
# The compaction: a job folds its day in steps of at most 50,000 scans and stops short of its timeout.
COMPACTION_FUNCTION_TIMEOUT = Duration.minutes(5)
MAIL_FUNCTION_TIMEOUT = Duration.seconds(30)
# The delivery function: 10 s per HTTP attempt, a few per batch.
WEBHOOKS_FUNCTION_TIMEOUT = Duration.seconds(60)
# Retries: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (about a day, docs/api.md section 10): the function
# extends visibility (ChangeMessageVisibility, at most 12 h) so each receive is one attempt.
WEBHOOK_ATTEMPTS = 8


def _queue(scope: Construct, cid: str, *, visibility: Duration, retention: Duration,
           dlq: sqs.IQueue | None = None, max_receive_count: int = 5) -> sqs.Queue:
    return sqs.Queue(
        scope, cid,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        visibility_timeout=visibility,
        retention_period=retention,
        dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=max_receive_count)
        if dlq is not None else None,
    )


class Queues(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        fourteen_days = Duration.days(14)

        self.scans_dlq = _queue(self, "ScansDlq", visibility=Duration.seconds(30), retention=fourteen_days)
        self.scans = _queue(self, "Scans", visibility=Duration.seconds(SCANS_FUNCTION_TIMEOUT.to_seconds() * 6),
                            retention=Duration.days(4), dlq=self.scans_dlq, max_receive_count=5)

        # Fold jobs: the next minute queues the day again, so a job kept for a day is plenty.
        self.compaction_dlq = _queue(self, "CompactionDlq", visibility=Duration.seconds(30), retention=fourteen_days)
        self.compaction = _queue(self, "Compaction",
                                 visibility=Duration.seconds(COMPACTION_FUNCTION_TIMEOUT.to_seconds() * 6),
                                 retention=Duration.days(1), dlq=self.compaction_dlq, max_receive_count=5)
        self.mail_dlq = _queue(self, "MailDlq", visibility=Duration.seconds(30), retention=fourteen_days)
        self.mail = _queue(self, "Mail", visibility=Duration.seconds(MAIL_FUNCTION_TIMEOUT.to_seconds() * 6),
                           retention=Duration.days(4), dlq=self.mail_dlq, max_receive_count=5)

        self.webhooks_dlq = _queue(self, "WebhooksDlq", visibility=Duration.seconds(30),
                                   retention=fourteen_days)
        self.webhooks = _queue(
            self, "Webhooks",
            visibility=Duration.seconds(WEBHOOKS_FUNCTION_TIMEOUT.to_seconds() * 6),
            retention=Duration.days(4),  # > the ~1 day retry schedule
            dlq=self.webhooks_dlq,
            max_receive_count=WEBHOOK_ATTEMPTS + 2,  # slack for throttled/failed invocations
        )

        self.dlqs: dict[str, sqs.Queue] = {"scans": self.scans_dlq, "compaction": self.compaction_dlq,
                                           "mail": self.mail_dlq, "webhooks": self.webhooks_dlq}
