"""Local stand-ins for Lambda's event sources, configured from the template's
event source mappings and EventBridge rules, and applying their settings as
AWS documents them. Each runs in a thread of the local stack and hands the
function exactly the event AWS would."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from qrpro_cli.runtime import Runtime
from qrpro_cli.template import ACCOUNT, REGION

log = logging.getLogger("qrpro.local")


class Trigger(threading.Thread):
    def __init__(self, name: str, runtime: Runtime) -> None:
        super().__init__(name=name, daemon=True)
        self.runtime = runtime
        self.stopping = threading.Event()

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.poll()
            except Exception as err:
                if not self.stopping.is_set():
                    log.warning("%s: %s", self.name, err)
                    self.stopping.wait(1)

    def poll(self) -> None:
        raise NotImplementedError


def failed_items(out: dict[str, Any], ids: list[str], report_failures: bool) -> list[str] | None:
    """What Lambda makes of an invocation's outcome: ``None`` if the whole batch
    failed, else the identifiers reported as failed. Without
    ``ReportBatchItemFailures`` the answer is ignored: every batch that returns
    is a success, whatever it says."""
    if not out["ok"]:
        return None
    if not report_failures:
        return []
    failures = (out["result"] or {}).get("batchItemFailures") if isinstance(out["result"], dict) else None
    failed = [str((f or {}).get("itemIdentifier") or "") for f in failures or []]
    if any(f not in ids for f in failed):  # an empty or unknown identifier fails the whole batch
        return None
    return failed


class SqsTrigger(Trigger):
    """An SQS event source mapping. Messages of a failed batch (or reported
    failed, with ``ReportBatchItemFailures``) stay on the queue and come back
    after the visibility timeout; the queue's redrive policy moves them to its
    dead-letter queue after ``maxReceiveCount`` receives."""

    def __init__(self, runtime: Runtime, function: str, queue_url: str, queue_arn: str, props: dict[str, Any]) -> None:
        super().__init__(f"sqs:{function}", runtime)
        self.function, self.queue_url, self.queue_arn = function, queue_url, queue_arn
        self.batch_size = int(props.get("BatchSize", 10))
        self.window = float(props.get("MaximumBatchingWindowInSeconds", 0))
        self.report_failures = "ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or [])
        self.sqs = boto3.client("sqs")

    def _receive(self, count: int, wait: int) -> list[Any]:
        return list(self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=min(10, count), WaitTimeSeconds=wait,
            AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", []))

    def poll(self) -> None:
        messages = self._receive(self.batch_size, 1)
        deadline = time.monotonic() + self.window  # the batching window: fill the batch, or wait this long
        while messages and len(messages) < self.batch_size and time.monotonic() < deadline:
            more = self._receive(self.batch_size - len(messages), 0)
            if not more:
                self.stopping.wait(min(0.2, max(0.0, deadline - time.monotonic())))
            messages += more
        if messages:
            self.deliver(messages)

    def deliver(self, messages: list[Any]) -> None:
        out = self.runtime.invoke(self.function, sqs_event(messages, self.queue_arn), "sqs")
        ids = [m["MessageId"] for m in messages]
        failed = failed_items(out, ids, self.report_failures)
        if failed is None:
            if not out["ok"]:
                log.error("%s failed on a batch of %d: %s: %s", self.function, len(messages), out["type"],
                          out["message"])
            return
        done = [m for m in messages if m["MessageId"] not in failed]
        for i in range(0, len(done), 10):
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done[i:i + 10])])


def sqs_event(messages: list[Any], queue_arn: str) -> dict[str, Any]:
    """The SQS event of received ``messages`` (as ReceiveMessage returned them)."""
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": m.get("Attributes", {}), "messageAttributes": m.get("MessageAttributes", {}),
        "md5OfBody": m.get("MD5OfBody", ""), "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn, "awsRegion": REGION} for m in messages]}


def scheduled_event(rule_arn: str) -> dict[str, Any]:
    """What an EventBridge schedule rule sends its Lambda target."""
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
            "account": ACCOUNT, "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "region": REGION,
            "resources": [rule_arn], "detail": {}}


def schedule_seconds(expression: str) -> float:
    """``rate(5 minutes)`` -> 300."""
    m = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression)
    if m is None:
        raise ValueError(f"schedule {expression!r}: only rate() expressions are run locally")
    unit = {"minute": 60, "hour": 3600, "day": 86400}[m[2].rstrip("s")]
    return int(m[1]) * unit


@dataclass(frozen=True)
class AsyncInvoke:
    """How Lambda treats a function's asynchronous invocations: its ``AWS::Lambda::EventInvokeConfig``,
    or AWS's defaults without one (2 retries, events kept 6 hours, discarded after)."""

    retries: int = 2
    max_age: float = 6 * 3600
    on_failure: str | None = None  # destination ARN

    @classmethod
    def from_config(cls, props: dict[str, Any], destination: str | None) -> AsyncInvoke:
        return cls(retries=int(props.get("MaximumRetryAttempts", 2)),
                   max_age=float(props.get("MaximumEventAgeInSeconds", 6 * 3600)), on_failure=destination)


# Lambda waits about a minute before the first retry of a failed asynchronous invocation, two before the second.
ASYNC_RETRY_DELAYS = (60.0, 120.0)


class ScheduleTrigger(Trigger):
    """An EventBridge schedule rule targeting the function, which Lambda invokes asynchronously: a failed
    invocation is retried ``MaximumRetryAttempts`` times (a minute, then two, apart) while the event is
    younger than ``MaximumEventAgeInSeconds``; then Lambda's invocation record goes to the on-failure
    destination (an SQS queue here), as AWS documents for destinations."""

    def __init__(self, runtime: Runtime, function: str, rule_arn: str, interval: float,
                 constant: str | None = None, *, function_arn: str = "", config: AsyncInvoke = AsyncInvoke(),
                 retry_delays: tuple[float, ...] = ASYNC_RETRY_DELAYS) -> None:
        super().__init__(f"schedule:{function}", runtime)
        self.function, self.rule_arn, self.interval, self.constant = function, rule_arn, interval, constant
        self.function_arn, self.config, self.retry_delays = function_arn, config, retry_delays

    def poll(self) -> None:
        if self.stopping.wait(self.interval):
            return
        # A target's Input replaces the event: "nothing from the event itself is passed" (EventBridge)
        if self.constant:
            self.invoke(json.loads(self.constant), "schedule-input")
        else:
            self.invoke(scheduled_event(self.rule_arn), "schedule")

    def invoke(self, event: dict[str, Any], kind: str) -> None:
        """One asynchronous invocation of ``event``, retried and given up on as Lambda does."""
        queued = time.monotonic()
        attempts, out = 0, None
        while not self.stopping.is_set():
            if time.monotonic() - queued > self.config.max_age:
                self._give_up(event, attempts, "EventAgeExceeded", out)
                return
            out = self.runtime.invoke(self.function, event, kind)
            attempts += 1
            if out["ok"]:
                return
            log.error("%s failed (attempt %d): %s: %s", self.function, attempts, out["type"], out["message"])
            if attempts > self.config.retries:
                self._give_up(event, attempts, "RetriesExhausted", out)
                return
            self.stopping.wait(self.retry_delays[min(attempts, len(self.retry_delays)) - 1])

    def _give_up(self, event: dict[str, Any], attempts: int, condition: str, out: dict[str, Any] | None) -> None:
        log.error("%s: asynchronous invocation given up (%s after %d attempts) -> %s", self.function, condition,
                  attempts, self.config.on_failure)
        if self.config.on_failure is None:
            return
        record = {
            "version": "1.0", "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "requestContext": {"requestId": str(uuid.uuid4()), "functionArn": f"{self.function_arn}:$LATEST",
                               "condition": condition, "approximateInvokeCount": attempts},
            "requestPayload": event,
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST",
                                **({"functionError": "Unhandled"} if out is not None else {})},
        }
        if out is not None:
            record["responsePayload"] = {"errorMessage": out["message"], "errorType": out["type"],
                                         "stackTrace": str(out.get("trace", "")).splitlines()}
        send_to_queue(self.config.on_failure, record)


def send_to_queue(queue_arn: str, record: dict[str, Any]) -> None:
    """An on-failure destination that is an SQS queue (by its ARN) gets ``record`` as the message body."""
    if not queue_arn.startswith("arn:aws:sqs:"):
        raise ValueError(f"on-failure destination {queue_arn}: only SQS queues are reproduced locally")
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=queue_arn.rsplit(":", 1)[-1])["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(record))


def matches(pattern: Any, value: Any) -> bool:
    """Lambda event filtering (the EventBridge pattern syntax the template can use)."""
    if isinstance(pattern, dict):
        if not isinstance(value, dict):
            return False
        for key, sub in pattern.items():
            if isinstance(sub, list) and any(isinstance(r, dict) and "exists" in r for r in sub):
                if not any(r.get("exists") == (key in value) for r in sub if isinstance(r, dict)):
                    return False
            elif key not in value or not matches(sub, value[key]):
                return False
        return True
    for rule in pattern:  # a list: any rule matches
        if isinstance(rule, dict):
            if "prefix" in rule and isinstance(value, str) and value.startswith(rule["prefix"]):
                return True
            if "anything-but" in rule:
                but = rule["anything-but"]
                if value not in (but if isinstance(but, list) else [but]):
                    return True
        elif rule == value:
            return True
    return False


class StreamTrigger(Trigger):
    """A DynamoDB stream event source mapping with the template's settings.

    Reads each shard in order from where it stopped (the position is kept in
    ``checkpoint``, a file in the data dir, so a restart neither loses nor
    replays records). Records the filter criteria reject never reach the
    function. A failed batch is retried (bisected if so configured) until it
    succeeds, ``MaximumRetryAttempts`` is spent or its oldest record is older
    than ``MaximumRecordAgeInSeconds``; then the batch goes to the on-failure
    destination (SQS: its description; S3: the whole invocation record) and the
    shard moves on. With ``ReportBatchItemFailures`` the function's answer
    checkpoints the records before the first failed one; without it, every
    batch that returns counts as a success.
    """

    def __init__(self, runtime: Runtime, function: str, function_arn: str, table: str, props: dict[str, Any],
                 on_failure: str | None, checkpoint: Path | None) -> None:
        super().__init__(f"stream:{function}", runtime)
        self.function, self.function_arn, self.table, self.checkpoint = function, function_arn, table, checkpoint
        self.batch_size = int(props.get("BatchSize", 100))
        self.report_failures = "ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or [])
        self.bisect = bool(props.get("BisectBatchOnFunctionError"))
        self.max_retries = int(props.get("MaximumRetryAttempts", -1))  # -1: until the record expires
        self.max_age = int(props.get("MaximumRecordAgeInSeconds", -1))
        self.filters = [json.loads(f["Pattern"]) for f in (props.get("FilterCriteria") or {}).get("Filters", [])]
        self.on_failure = on_failure
        self.streams = boto3.client("dynamodbstreams")
        self.positions: dict[str, str] = {}  # shard id -> last sequence number handed over
        self.finished: set[str] = set()
        if checkpoint is not None and checkpoint.exists():
            saved = json.loads(checkpoint.read_text())
            self.positions, self.finished = saved.get("positions", {}), set(saved.get("finished", []))
        self.iterators: dict[str, str] = {}

    def _save(self) -> None:
        if self.checkpoint is not None:
            tmp = self.checkpoint.with_suffix(".tmp")
            tmp.write_text(json.dumps({"positions": self.positions, "finished": sorted(self.finished)}))
            tmp.replace(self.checkpoint)

    def _iterator(self, arn: str, shard: str) -> str | None:
        if shard not in self.iterators:
            kw: dict[str, Any] = {"StreamArn": arn, "ShardId": shard}
            if shard in self.positions:
                kw.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=self.positions[shard])
            else:
                kw["ShardIteratorType"] = "TRIM_HORIZON"
            self.iterators[shard] = self.streams.get_shard_iterator(**kw)["ShardIterator"]
        return self.iterators.get(shard)

    def poll(self) -> None:
        arn = boto3.client("dynamodb").describe_table(TableName=self.table)["Table"].get("LatestStreamArn")
        if not arn:
            self.stopping.wait(1)
            return
        shards = self.streams.describe_stream(StreamArn=arn)["StreamDescription"].get("Shards", [])
        busy = False
        for shard in shards:
            sid = shard["ShardId"]
            parent = shard.get("ParentShardId")
            if sid in self.finished or (parent and parent not in self.finished and
                                        any(s["ShardId"] == parent for s in shards)):
                continue
            iterator = self._iterator(arn, sid)
            if iterator is None:
                continue
            try:
                out = self.streams.get_records(ShardIterator=iterator, Limit=self.batch_size)
            except ClientError as err:
                # A stale iterator: DynamoDB Local answers TrimmedDataAccessException for an iterator taken
                # on a shard that was still empty once records arrive (aws/aws-sdk-java#2923); AWS expires
                # iterators after 15 minutes. Take a new one from the checkpoint, which loses nothing.
                self.iterators.pop(sid, None)
                if err.response["Error"]["Code"] not in ("TrimmedDataAccessException", "ExpiredIteratorException"):
                    raise
                continue
            records = [stream_record(r, arn) for r in out.get("Records", [])]
            wanted = [r for r in records if not self.filters or any(matches(f, r) for f in self.filters)]
            if wanted:
                self._process(wanted, arn, sid)
            if self.stopping.is_set():
                return
            if records:
                busy = True
                self.positions[sid] = records[-1]["dynamodb"]["SequenceNumber"]
            if out.get("NextShardIterator"):
                self.iterators[sid] = out["NextShardIterator"]
            else:
                self.finished.add(sid)
                self.iterators.pop(sid, None)
            if records or sid not in self.iterators:
                self._save()
        if not busy:
            self.stopping.wait(0.5)

    def _process(self, batch: list[dict[str, Any]], arn: str, shard: str) -> None:
        """Hand ``batch`` over until it succeeds or is given up on (never returns early but on stop)."""
        attempts = 0
        while batch and not self.stopping.is_set():
            out = self.runtime.invoke(self.function, {"Records": batch}, "dynamodb-stream")
            ids = [r["dynamodb"]["SequenceNumber"] for r in batch]
            failed = failed_items(out, ids, self.report_failures)
            if failed == []:
                return
            if not out["ok"]:
                log.error("%s failed on a batch of %d: %s: %s", self.function, len(batch), out["type"], out["message"])
            attempts += 1
            if failed:  # checkpoint before the first failed record; retry from there
                log.warning("%s reported %d of %d stream records failed: retrying", self.function, len(failed),
                            len(batch))
                batch = batch[ids.index(min(failed, key=ids.index)):]
            oldest = min(int(r["dynamodb"].get("ApproximateCreationDateTime", time.time())) for r in batch)
            if (0 <= self.max_retries < attempts) or (0 <= self.max_age < time.time() - oldest):
                condition = "RetryAttemptsExhausted" if 0 <= self.max_retries < attempts else "RecordAgeExceeded"
                self._give_up(batch, arn, shard, attempts, condition, out)
                return
            if self.bisect and failed is None and len(batch) > 1:
                half = len(batch) // 2
                self._process(batch[:half], arn, shard)
                self._process(batch[half:], arn, shard)
                return
            self.stopping.wait(min(5.0, 0.5 * 2 ** (attempts - 1)))  # Lambda backs off between retries

    def _give_up(self, batch: list[dict[str, Any]], arn: str, shard: str, attempts: int, condition: str,
                 out: dict[str, Any]) -> None:
        def iso(record: dict[str, Any]) -> str:
            when = datetime.fromtimestamp(int(record["dynamodb"]["ApproximateCreationDateTime"]), UTC)
            return when.strftime("%Y-%m-%dT%H:%M:%S.000Z")

        now = datetime.now(UTC)
        failure = {
            "requestContext": {"requestId": str(uuid.uuid4()), "functionArn": self.function_arn,
                               "condition": condition, "approximateInvokeCount": attempts},
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST",
                                **({} if out["ok"] else {"functionError": "Unhandled"})},
            "version": "1.0", "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "DDBStreamBatchInfo": {
                "shardId": shard, "startSequenceNumber": batch[0]["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": batch[-1]["dynamodb"]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": iso(batch[0]), "approximateArrivalOfLastRecord": iso(batch[-1]),
                "batchSize": len(batch), "streamArn": arn},
        }
        log.error("%s: %d stream records given up (%s) -> %s", self.function, len(batch), condition, self.on_failure)
        if self.on_failure is None:
            return
        if self.on_failure.startswith("arn:aws:sqs:"):
            send_to_queue(self.on_failure, failure)
        elif self.on_failure.startswith("arn:aws:s3:::"):
            # The S3 destination keeps the whole invocation record, payload included.
            key = f"aws/lambda/{self.function}/{shard}/{now:%Y/%m/%d}/{now:%Y-%m-%dT%H.%M.%S}-{uuid.uuid4()}"
            body = json.dumps({**failure, "payload": json.dumps({"Records": batch})})
            boto3.client("s3").put_object(Bucket=self.on_failure.removeprefix("arn:aws:s3:::"), Key=key,
                                          Body=body.encode())


def stream_record(record: Any, arn: str) -> dict[str, Any]:
    dyn = dict(record["dynamodb"])
    if "ApproximateCreationDateTime" in dyn and not isinstance(dyn["ApproximateCreationDateTime"], int | float):
        dyn["ApproximateCreationDateTime"] = int(dyn["ApproximateCreationDateTime"].timestamp())
    return {"eventID": record.get("eventID"), "eventName": record["eventName"], "eventVersion": "1.1",
            "eventSource": "aws:dynamodb", "awsRegion": REGION, "dynamodb": dyn, "eventSourceARN": arn}
