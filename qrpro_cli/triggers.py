"""Local stand-ins for Lambda's event sources: SQS event source mappings and
EventBridge schedules. Each runs in a thread of the local stack and hands the
function exactly the event AWS would."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
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
