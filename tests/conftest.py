"""Shared fixtures: DynamoDB Local (one JVM per test session), moto's server,
fresh tables, and accounts to act as.

Environment is set before any boto3 client is built: the data layer builds its
clients lazily (``qrpro.data.aws``) and reads endpoints from the environment.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from hypothesis import settings

# No timed assertions: hypothesis' default 200 ms deadline per example fails on a loaded machine.
settings.register_profile("qrpro", deadline=None)
settings.load_profile("qrpro")

os.environ.update({
    "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING", "SHORT_BASE_URL": "https://aqr.net",
    "CURSOR_SECRET": "test-cursor-secret", "WEBHOOK_KEY": "test-webhook-key-material-0123456789abcdef",
    "FALLBACK_USAGE_KEY": "qrpro-fallback-tests-000000000001",
})
for _var in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
    os.environ.pop(_var, None)


def reset_caches() -> None:
    from qrpro.config import settings
    from qrpro.data import aws, panes, secrets

    settings.cache_clear()
    panes.reset()
    secrets.cursor_secret.cache_clear()
    secrets.webhook_key.cache_clear()
    aws.reset()


@pytest.fixture(scope="session")
def dynamodb_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Amazon's DynamoDB Local, in memory, on a free loopback port."""
    from qrpro_cli.engines import _wait_for, free_port, start_dynamodb_local

    port = free_port()
    log = tmp_path_factory.mktemp("ddb") / "dynamodb-local.log"
    proc = start_dynamodb_local(None, port, log)
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("dynamodb", endpoint_url=endpoint)
    try:
        _wait_for(client.list_tables, "DynamoDB Local", proc)
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except Exception:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's server (S3, SQS, SES) on a free loopback port."""
    from moto.server import ThreadedMotoServer

    from qrpro_cli.engines import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def table(dynamodb_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh pair of tables for one test, with the env pointing at them."""
    from qrpro.data.schema import create_tables

    name = f"t{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB_STREAMS", dynamodb_endpoint)
    monkeypatch.setenv("TABLE_NAME", name)
    monkeypatch.setenv("IDEMPOTENCY_TABLE_NAME", f"{name}-idem")
    reset_caches()
    client = boto3.client("dynamodb", endpoint_url=dynamodb_endpoint)
    create_tables(client, name, f"{name}-idem")
    yield name
    for t in (name, f"{name}-idem"):
        client.delete_table(TableName=t)
    reset_caches()


@dataclass
class Account:
    user_id: str
    key_id: str
    token: str
    plan: str

    def caller(self) -> Any:
        from qrpro.data.accounts import resolve_caller

        return resolve_caller(self.user_id, self.key_id)


@pytest.fixture
def make_account(table: str) -> Any:
    """A factory: ``make_account(plan="business")`` creates a user with a key."""
    from qrpro.data import accounts
    from qrpro.services import keys as key_service

    def make(plan: str = "business", email: str | None = None) -> Account:
        now = int(time.time())
        user_id = accounts.create_account(email or f"{uuid.uuid4().hex[:10]}@example.com", plan, now)
        key_id, token = key_service.create(user_id, "test", now)
        return Account(user_id, key_id, token, plan)

    return make


ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        import json

        return json.loads(self.body)


_TEMPLATE: list[Any] = []


def _template(cls: Any) -> Any:
    """The synthesized template, read once per test process."""
    if not _TEMPLATE:
        _TEMPLATE.append(cls.load())
    return _TEMPLATE[0]


class _FallbackOnly:
    """In process there is no API Gateway: every key rides on the fallback key, which has no quota
    (the usage plans themselves are applied by the local stack: tests/e2e/test_usage_plans_e2e.py)."""

    def admit(self, usage_key: str | None) -> str | None:
        return None if usage_key == os.environ["FALLBACK_USAGE_KEY"] else "INVALID_API_KEY"


class InProcessApi:
    """The local gateway without sockets: the same authorizer step and the same
    handlers, run in this process (fast integration tests of the pipeline)."""

    def __init__(self) -> None:
        from qrpro_cli import events
        from qrpro_cli.rest_api import RestApi
        from qrpro_cli.runtime import invoke_here
        from qrpro_cli.template import Template

        class _Runtime:
            def invoke(self, name: str, event: dict[str, Any], kind: str,
                       request_id: str | None = None) -> dict[str, Any]:
                events.validate(kind, event)
                return invoke_here(f"lambdas.{name}.handler.handler", name, event, request_id or "test")

        template = _template(Template)
        names = {lid: fn.name for lid, fn in template.functions().items()}
        authorizer = template.authorizer()
        self.gateway = RestApi(_Runtime(), template.routes(), names,  # type: ignore[arg-type]
                               names[authorizer[1]] if authorizer else None, template.gateway_responses(),
                               template.stage_name(), _FallbackOnly())  # type: ignore[arg-type]

    def request(self, method: str, path: str, token: str | None = None, json: Any = None,
                body: bytes | None = None, headers: dict[str, str] | None = None) -> Reply:
        import json as _json

        hdrs = dict(headers or {})
        if token is not None:
            hdrs.setdefault("Authorization", f"Bearer {token}")
        if json is not None:
            body = _json.dumps(json).encode()
            hdrs.setdefault("Content-Type", "application/json")
        status, out_headers, data = self.gateway.handle(method, path, list(hdrs.items()), body or b"")
        return Reply(status, {k: v for k, v in out_headers}, data)


@pytest.fixture
def api(table: str) -> InProcessApi:
    return InProcessApi()
