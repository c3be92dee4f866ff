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
    "asyncio",  # via Powertools' AppSync resolvers (qrpro.api.lean)
    "aws_lambda_powertools.event_handler.appsync",
    "aws_lambda_powertools.event_handler.graphql_appsync",
    "aws_lambda_powertools.event_handler.events_appsync",
    "aws_lambda_powertools.event_handler.bedrock_agent",
    "aws_lambda_powertools.event_handler.openapi.models",  # the OpenAPI document's models: /docs only
    "segno",  # QR images: the qr routes only
    "PIL",
    "zipfile",  # the export: its own function
    "aws_lambda_powertools.utilities.idempotency",  # the first request with an Idempotency-Key
)

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


def test_the_lean_package_still_gives_every_name() -> None:
    """Code that asks Powertools' event handler for a resolver the REST API does not use still gets it."""
    code = ("import sys; sys.path[:0] = {paths!r}; import lambdas.api.handler; "
            "from aws_lambda_powertools.event_handler import AppSyncResolver, Response, content_types; "
            "print(AppSyncResolver.__name__, Response.__name__, content_types.APPLICATION_JSON)")
    out = subprocess.run([sys.executable, "-c", code.format(paths=[str(ROOT / "layers"), str(ROOT)])],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == ["AppSyncResolver", "Response", "application/json"]
