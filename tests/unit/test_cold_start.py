"""What the api and export functions import before their first request.

A list of modules, not a time (the time is `make bench`, benchmarks/bench_coldstart.py):
each heavy module named here cost the api function's cold start 25-130 ms once
(docs/performance.md, "Cold starts")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Prefixes no request-serving function loads at import: loaded on use where a route needs them.
HEAVY = (
    "aws_xray_sdk",  # the X-Ray SDK: Lambda's active tracing records the invocation without it
    "asyncio",  # via Powertools' AppSync resolvers (qrpro.lean)
    "aws_lambda_powertools.event_handler.appsync",
    "aws_lambda_powertools.event_handler.graphql_appsync",
    "aws_lambda_powertools.event_handler.events_appsync",
    "aws_lambda_powertools.event_handler.bedrock_agent",
    "aws_lambda_powertools.event_handler.openapi.models",  # the OpenAPI document's models: /docs only
    "qrpro.api.models",  # the response models: the document only (qrpro.api.router)
    "segno",  # QR images: the qr routes only
    "PIL",
    "zipfile",  # the export: its own function
    "aws_lambda_powertools.utilities.idempotency",  # the first request with an Idempotency-Key
)
# The functions that use Powertools without its batch utility (which imports asyncio and the Kafka, Kinesis,
# DynamoDB and SQS records itself) load the data classes of their own event source only (qrpro.lean).
POWERTOOLS_FUNCTIONS = ("api", "export", "authorizer", "expiry")
OTHER_EVENT_SOURCES = tuple(f"aws_lambda_powertools.utilities.data_classes.{m}" for m in (
    "kafka_event", "s3_event", "ses_event", "cloud_watch_logs_event", "code_pipeline_job_event",
    "kinesis_firehose_event", "appsync_resolver_event"))

PROBE = """
import json, sys
sys.path[:0] = {paths!r}
import boto3
before = set(sys.modules)
import {module}
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def imported_after_boto3(module: str) -> list[str]:
    """The modules ``module`` adds to a fresh interpreter that already imported boto3
    (boto3's own, S3 transfer's manager among them, are the baseline every function pays)."""
    code = PROBE.format(paths=[str(ROOT / "layers"), str(ROOT)], module=module)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return list(json.loads(out.stdout))


@pytest.mark.parametrize("module", ["lambdas.api.handler", "lambdas.export.handler"])
def test_the_import_path_leaves_out_the_heavy_modules(module: str) -> None:
    imported = imported_after_boto3(module)
    heavy = [m for m in imported if any(m == p or m.startswith(p + ".") for p in HEAVY)]
    assert heavy == []
    assert not [m for m in imported if m.startswith(("s3transfer", "boto3.s3"))]  # nothing beyond boto3's own


def test_the_export_function_loads_no_pydantic() -> None:
    """Its resolver runs without Powertools' validation; its route checks its one parameter itself."""
    imported = imported_after_boto3("lambdas.export.handler")
    assert [m for m in imported if m.startswith(("pydantic", "aws_lambda_powertools.event_handler.openapi.params"))] \
        == []
    assert "qrpro.services.export" in imported  # its one route's work stays at init


def test_the_api_function_loads_no_route_module_at_init() -> None:
    imported = imported_after_boto3("lambdas.api.handler")
    assert [m for m in imported if m.startswith("lambdas.api.routes.")] == []
    assert "pydantic" in imported  # what every request needs stays at init


AREA_PROBE = """
import json, sys
sys.path[:0] = {paths!r}
from lambdas.api import handler
from qrpro.domain.scope import Caller
handler.load(handler.area_of({path!r}))
event = {{"httpMethod": {method!r}, "path": {path!r}, "headers": {{}}, "multiValueHeaders": {{}},
         "queryStringParameters": None, "body": None, "isBase64Encoded": False,
         "requestContext": {{"requestId": "r1", "path": {path!r}, "stage": "prod"}}}}
handler.app.append_context(caller=Caller("u1", "k1", "a@example.com", "USER#u1", "business", "active"), now=0)
out = handler.app.resolve(event, None)
print(json.dumps([out["statusCode"], sorted(m for m in sys.modules if m.startswith("lambdas.api.routes."))]))
"""


@pytest.mark.parametrize(("method", "path", "modules"), [
    ("DELETE", "/api/analytics", ["analytics"]),
    ("PUT", "/api/keys", ["keys"]),
    ("PUT", "/api/codes/abc/qr", ["analytics", "codes", "qr"]),
    ("PUT", "/api/groups/abc/analytics", ["analytics", "groups"]),
])
def test_a_request_loads_its_own_area_and_still_knows_its_methods(method: str, path: str, modules: list[str]) -> None:
    """A fresh container: the first request loads the route modules of its path's area only, and a method
    the path is not served under is still 405 (not 404)."""
    code = AREA_PROBE.format(paths=[str(ROOT / "layers"), str(ROOT)], method=method, path=path)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    status, loaded = json.loads(out.stdout)
    assert (status, loaded) == (405, [f"lambdas.api.routes.{m}" for m in modules])


def test_every_route_is_in_its_area() -> None:
    """``AREAS`` names, for each area of the path, every route module serving a path there."""
    import importlib

    from lambdas.api import handler

    assert {p.stem for p in (ROOT / "lambdas/api/routes").glob("*.py")} - {"__init__"} == set(handler.MODULES)
    assert {name for names in handler.AREAS.values() for name in names} == set(handler.MODULES)
    for name in handler.MODULES:
        router = importlib.import_module(f"lambdas.api.routes.{name}").router
        rules = [arguments["rule"] for arguments, _ in router.declared]
        assert rules, name
        for rule in rules:
            assert name in handler.AREAS.get(handler.area_of(rule), ()), (name, rule)


@pytest.mark.parametrize("function", POWERTOOLS_FUNCTIONS)
def test_no_function_loads_every_event_source_or_resolver(function: str) -> None:
    imported = imported_after_boto3(f"lambdas.{function}.handler")
    assert [m for m in imported if m.startswith(OTHER_EVENT_SOURCES) or m == "asyncio"] == []


def test_the_lean_map_covers_every_public_name() -> None:
    """Each name the packages export resolves, through the map, to the very object their __init__ gives."""
    import importlib
    import importlib.util

    from qrpro.lean import PACKAGES, _names

    for package in PACKAGES:
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.origin is not None
        with open(spec.origin, encoding="utf-8") as source:
            names = _names(package, source.read())
        real = importlib.import_module(package)
        assert set(real.__all__) <= set(names), package
        for name, submodule in names.items():
            assert getattr(importlib.import_module(f"{package}.{submodule}"), name) is getattr(real, name)


def test_the_lean_package_still_gives_every_name() -> None:
    """Code that asks Powertools' event handler for a resolver the REST API does not use still gets it."""
    code = ("import sys; sys.path[:0] = {paths!r}; import lambdas.api.handler; "
            "from aws_lambda_powertools.event_handler import AppSyncResolver, Response, content_types; "
            "from aws_lambda_powertools.utilities.data_classes import KafkaEvent, event_source; "
            "print(AppSyncResolver.__name__, Response.__name__, content_types.APPLICATION_JSON, KafkaEvent.__name__, "
            "callable(event_source))")
    out = subprocess.run([sys.executable, "-c", code.format(paths=[str(ROOT / "layers"), str(ROOT)])],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == ["AppSyncResolver", "Response", "application/json", "KafkaEvent", "True"]
