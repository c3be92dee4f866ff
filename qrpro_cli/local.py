"""`qrpro local`: the whole service on this machine.

DynamoDB Local + moto's server, the API and redirect functions behind a local
gateway on two ports, and the event sources (queues, schedules, the table's
stream) feeding the same handlers that run in Lambda.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from qrpro.data.schema import create_tables
from qrpro_cli import engines as eng
from qrpro_cli.gateway import Gateway, api_router, make_server, redirect_router
from qrpro_cli.runtime import Runtime, available
from qrpro_cli.triggers import ScheduleTrigger, SqsTrigger, StreamTrigger, Trigger

log = logging.getLogger("qrpro.local")
CONNECTION_FILE = "local.json"
TABLE, IDEMPOTENCY_TABLE = "qrpro", "qrpro-idempotency"
BUCKET = "qrpro-exports"
QUEUES = ("scans", "webhooks")


@dataclass
class Options:
    api_port: int = 3000
    redirect_port: int = 3001
    data_dir: Path = Path(".qrpro")
    in_memory: bool = False
    workers: int = 2
    dynamodb_port: int = 0


@dataclass
class Resources:
    queues: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> url, arn


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_connection(data_dir: Path) -> dict[str, Any]:
    path = data_dir / CONNECTION_FILE
    if not path.exists():
        raise eng.StackError(f"no local stack found in {data_dir}/: start one with `make local` (or "
                             "`.venv/bin/qrpro local`), or point at a running one with --data-dir DIR")
    try:
        info: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise eng.StackError(f"{path} is unreadable; restart `qrpro local`") from err
    if not _pid_alive(int(info.get("pid", 0))):
        raise eng.StackError(f"the local stack of {data_dir}/ is not running (stale {CONNECTION_FILE}); "
                             "start it with `make local`, or point at a running one with --data-dir DIR")
    return info


def _check_data_dir(data_dir: Path) -> None:
    path = data_dir / CONNECTION_FILE
    if path.exists():
        try:
            pid = int(json.loads(path.read_text()).get("pid", 0))
        except (OSError, ValueError):
            pid = 0
        if pid and pid != os.getpid() and _pid_alive(pid):
            raise eng.StackError(f"a local stack already runs from {data_dir}/ (pid {pid}); stop it first")
        path.unlink()  # stale: left by a stack that did not shut down cleanly


def _local_secret(data_dir: Path, in_memory: bool, name: str) -> str:
    """A random secret kept in the data dir (what Secrets Manager holds in AWS)."""
    if in_memory:
        return secrets.token_urlsafe(32)
    path = data_dir / name
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def provision(env: dict[str, str]) -> Resources:
    """Create what the CDK stack would: tables, queues with DLQs, the bucket, the SES sender."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        create_tables(boto3.client("dynamodb"), env["TABLE_NAME"], env["IDEMPOTENCY_TABLE_NAME"])
        sqs = boto3.client("sqs")
        res = Resources()
        for name in QUEUES:
            dlq_url = sqs.create_queue(QueueName=f"qrpro-{name}-dlq")["QueueUrl"]
            dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"]
            url = sqs.create_queue(QueueName=f"qrpro-{name}", Attributes={
                "VisibilityTimeout": "30",
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "10"})})[
                "QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            res.queues[name] = {"url": url, "arn": arn, "dlq_url": dlq_url}
        boto3.client("s3").create_bucket(Bucket=env["EXPORT_BUCKET"])
        boto3.client("ses").verify_email_identity(EmailAddress=env["SES_SENDER"])
        return res
    finally:
        os.environ.clear()
        os.environ.update(saved)


EXPIRY_INTERVAL = float(os.environ.get("QRPRO_EXPIRY_INTERVAL", "60"))
SCAN_DRAIN_INTERVAL = float(os.environ.get("QRPRO_SCAN_DRAIN_INTERVAL", "60"))


def triggers(runtime: Runtime, res: Resources, data_dir: Path, in_memory: bool) -> list[Trigger]:
    """The event sources, as infra/ wires them in AWS."""
    out: list[Trigger] = []
    if available("scans"):
        q = res.queues["scans"]
        out.append(SqsTrigger(runtime, "scans", q["url"], q["arn"], batch_size=10, wait_seconds=1))
        out.append(ScheduleTrigger(runtime, "scans", SCAN_DRAIN_INTERVAL))
    if available("webhooks"):
        q = res.queues["webhooks"]
        out.append(SqsTrigger(runtime, "webhooks", q["url"], q["arn"], batch_size=10, wait_seconds=1))
    if available("events"):
        checkpoint = None if in_memory else data_dir / "stream-checkpoint.json"
        out.append(StreamTrigger(runtime, "events", TABLE, "EVENT#", checkpoint))
    if available("expiry"):
        out.append(ScheduleTrigger(runtime, "expiry", EXPIRY_INTERVAL))
    return out


class LocalStack:
    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.engines: eng.Engines | None = None
        self.runtime: Runtime | None = None
        self.servers: list[Any] = []
        self.triggers: list[Trigger] = []
        self.stopped = threading.Event()

    def start(self) -> dict[str, Any]:
        o = self.opts
        o.data_dir.mkdir(parents=True, exist_ok=True)
        _check_data_dir(o.data_dir)
        eng.ensure_port_free(o.api_port, "api")
        eng.ensure_port_free(o.redirect_port, "redirect")
        db_dir = None if o.in_memory else o.data_dir / "dynamodb"
        self.engines = eng.start(db_dir, o.data_dir, o.dynamodb_port)
        api_url = f"http://127.0.0.1:{o.api_port}"
        redirect_url = f"http://127.0.0.1:{o.redirect_port}"
        env = {
            **self.engines.env(),
            "TABLE_NAME": TABLE,
            "IDEMPOTENCY_TABLE_NAME": IDEMPOTENCY_TABLE,
            "SHORT_BASE_URL": redirect_url,
            "API_BASE_URL": f"{api_url}/api",
            "CURSOR_SECRET": _local_secret(o.data_dir, o.in_memory, "cursor_secret"),
            "WEBHOOK_KEY": _local_secret(o.data_dir, o.in_memory, "webhook_key"),
            "EXPORT_BUCKET": BUCKET,
            "SES_SENDER": "no-reply@aqr.net",
            "ALLOW_LOOPBACK_WEBHOOKS": "true",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_DEV": "false",
            "POWERTOOLS_LOG_LEVEL": os.environ.get("QRPRO_LOG_LEVEL", "WARNING"),
        }
        res = provision(env)
        env["SCANS_QUEUE_URL"] = res.queues["scans"]["url"]
        env["WEBHOOKS_QUEUE_URL"] = res.queues["webhooks"]["url"]
        os.environ.update(env)  # the triggers' own clients (queues, streams) use the same endpoints
        self.runtime = Runtime(env, workers=o.workers)
        self.runtime.warm()
        for port, router in ((o.api_port, api_router), (o.redirect_port, redirect_router)):
            server = make_server("127.0.0.1", port, Gateway(self.runtime, router))
            threading.Thread(target=server.serve_forever, name=f"http:{port}", daemon=True).start()
            self.servers.append(server)
        self.triggers = triggers(self.runtime, res, o.data_dir, o.in_memory)
        for t in self.triggers:
            t.start()
        info = {
            "pid": os.getpid(), "api_url": api_url, "redirect_url": redirect_url,
            "engine": self.engines.engine, "in_memory": o.in_memory, "table": TABLE,
            "idempotency_table": IDEMPOTENCY_TABLE, "region": "us-east-1",
            "endpoints": {"dynamodb": self.engines.dynamodb_endpoint, "moto": self.engines.moto_endpoint},
            "queues": res.queues, "bucket": BUCKET,
        }
        path = o.data_dir / CONNECTION_FILE
        path.write_text(json.dumps(info, indent=2))
        return info

    def stop(self) -> None:
        for t in self.triggers:
            t.stop()
        for t in self.triggers:
            t.join(timeout=10)
        for server in self.servers:
            server.shutdown()
            server.server_close()
        if self.runtime is not None:
            self.runtime.close()
        if self.engines is not None:
            self.engines.stop()
        conn = self.opts.data_dir / CONNECTION_FILE
        if conn.exists():
            try:
                if json.loads(conn.read_text()).get("pid") == os.getpid():
                    conn.unlink()
            except (OSError, ValueError):
                pass
        self.stopped.set()


def run(opts: Options) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    # moto's server logs each call with the caller's address; boto3 logs chatter.
    for noisy in ("werkzeug", "botocore", "boto3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    stack = LocalStack(opts)
    done = threading.Event()

    def _stop(signum: int, frame: Any) -> None:
        done.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        info = stack.start()
        print(f"QR Pro local stack ({info['engine']}, data in {opts.data_dir}/"
              f"{' in memory' if opts.in_memory else ''})", flush=True)
        print(f"API:       {info['api_url']}/api   (reference: {info['api_url']}/docs)", flush=True)
        print(f"Redirects: {info['redirect_url']}/{{shortcode}}", flush=True)
        print("Create an account: .venv/bin/qrpro admin create-account --email you@example.com --plan business "
              f"--data-dir {opts.data_dir}", flush=True)
        done.wait()
    finally:
        stack.stop()
    return 0
