"""Local stand-ins for Lambda's event sources: SQS event source mappings and
EventBridge schedules. Each runs in a thread of the local stack and hands the
function exactly the event AWS would."""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from qrpro_cli.runtime import Runtime

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


class SqsTrigger(Trigger):
    """An SQS event source mapping with ReportBatchItemFailures: messages the
    function reports as failed (or all, if it crashed) stay on the queue and
    come back after the visibility timeout; the queue's redrive policy moves
    them to the dead-letter queue after maxReceiveCount."""

    def __init__(self, runtime: Runtime, function: str, queue_url: str, queue_arn: str,
                 batch_size: int = 10, wait_seconds: int = 1) -> None:
        super().__init__(f"sqs:{function}", runtime)
        self.function, self.queue_url, self.queue_arn = function, queue_url, queue_arn
        self.batch_size, self.wait_seconds = batch_size, wait_seconds
        self.sqs = boto3.client("sqs")

    def poll(self) -> None:
        out = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=self.batch_size,
                                       WaitTimeSeconds=self.wait_seconds, AttributeNames=["All"],
                                       MessageAttributeNames=["All"])
        messages = out.get("Messages", [])
        if messages:
            self.deliver(messages)

    def deliver(self, messages: list[Any]) -> None:
        event = {"Records": [{
            "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
            "attributes": m.get("Attributes", {}), "messageAttributes": m.get("MessageAttributes", {}),
            "md5OfBody": m.get("MD5OfBody", ""), "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn, "awsRegion": "us-east-1"} for m in messages]}
        out = self.runtime.invoke(self.function, event)
        if not out["ok"]:
            log.error("%s failed on a batch of %d: %s: %s", self.function, len(messages), out["type"],
                      out["message"])
            return
        failed = {f["itemIdentifier"] for f in (out["result"] or {}).get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        for i in range(0, len(done), 10):
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done[i:i + 10])])


class ScheduleTrigger(Trigger):
    """An EventBridge schedule: the function every ``interval`` seconds."""

    def __init__(self, runtime: Runtime, function: str, interval: float) -> None:
        super().__init__(f"schedule:{function}", runtime)
        self.function, self.interval = function, interval

    def poll(self) -> None:
        if self.stopping.wait(self.interval):
            return
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        out = self.runtime.invoke(self.function, {
            "version": "0", "id": str(time.time_ns()), "detail-type": "Scheduled Event",
            "source": "aws.events", "time": now, "region": "us-east-1", "resources": [], "detail": {}})
        if not out["ok"]:
            log.error("%s failed: %s: %s", self.function, out["type"], out["message"])


class StreamTrigger(Trigger):
    """A DynamoDB stream event source mapping (with a filter on the key prefix).

    Reads every shard of the table's stream from the oldest record it has not
    yet handed over; the position is kept in ``checkpoint`` (a file in the data
    dir) so a restart neither loses nor replays records. A batch the function
    fails on is retried until it succeeds (in order, like Lambda's mapping).
    """

    def __init__(self, runtime: Runtime, function: str, table: str, pk_prefix: str,
                 checkpoint: Path | None) -> None:
        super().__init__(f"stream:{function}", runtime)
        self.function, self.table, self.pk_prefix, self.checkpoint = function, table, pk_prefix, checkpoint
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
            out = self.streams.get_records(ShardIterator=iterator, Limit=100)
            records = out.get("Records", [])
            wanted = [r for r in records
                      if r.get("eventName") == "INSERT"
                      and r["dynamodb"].get("Keys", {}).get("pk", {}).get("S", "").startswith(self.pk_prefix)]
            if wanted:
                result = self.runtime.invoke(self.function, {"Records": [_stream_record(r, arn) for r in wanted]})
                if not result["ok"]:
                    log.error("%s failed: %s: %s", self.function, result["type"], result["message"])
                    self.iterators.pop(sid, None)  # re-read from the last checkpoint
                    self.stopping.wait(1)
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


def _stream_record(record: Any, arn: str) -> dict[str, Any]:
    dyn = dict(record["dynamodb"])
    if "ApproximateCreationDateTime" in dyn and not isinstance(dyn["ApproximateCreationDateTime"], int | float):
        dyn["ApproximateCreationDateTime"] = int(dyn["ApproximateCreationDateTime"].timestamp())
    return {"eventID": record.get("eventID"), "eventName": record["eventName"], "eventVersion": "1.1",
            "eventSource": "aws:dynamodb", "awsRegion": "us-east-1", "dynamodb": dyn, "eventSourceARN": arn}
