"""The OpenAPI document is generated from the code and matches the contract:
all 36 operations, the bearer scheme, the error envelope on every operation."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools import Logger
from openapi_spec_validator import validate

CONTRACT_OPERATIONS = {
    # Codes (6.1-6.10)
    ("get", "/api/codes"), ("post", "/api/codes"), ("get", "/api/codes/{}"), ("patch", "/api/codes/{}"),
    ("delete", "/api/codes/{}"), ("post", "/api/codes/import"), ("post", "/api/codes/{}/reactivate"),
    ("get", "/api/codes/{}/history"), ("get", "/api/codes/{}/qr"), ("post", "/api/codes/bulk"),
    # Analytics (7.1-7.3)
    ("get", "/api/codes/{}/analytics"), ("get", "/api/analytics"), ("get", "/api/groups/{}/analytics"),
    # Groups (8)
    ("get", "/api/groups"), ("post", "/api/groups"), ("get", "/api/groups/{}"), ("patch", "/api/groups/{}"),
    ("delete", "/api/groups/{}"), ("post", "/api/groups/{}/codes"), ("delete", "/api/groups/{}/codes/{}"),
    # Teams (9)
    ("get", "/api/teams"), ("get", "/api/teams/{}"), ("get", "/api/teams/{}/members"),
    # Webhooks (10)
    ("get", "/api/webhooks"), ("post", "/api/webhooks"), ("get", "/api/webhooks/{}"), ("patch", "/api/webhooks/{}"),
    ("delete", "/api/webhooks/{}"), ("post", "/api/webhooks/{}/test"), ("get", "/api/webhooks/{}/deliveries"),
    ("post", "/api/webhooks/{}/rotate-secret"),
    # User and keys (11)
    ("get", "/api/user"), ("get", "/api/user/usage"), ("get", "/api/keys"), ("delete", "/api/keys/{}"),
    ("get", "/api/user/export"),
}
METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    from lambdas.api.handler import openapi_document

    return openapi_document()


def operations(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(method, re.sub(r"\{[^}]+\}", "{}", path)): op
            for path, item in doc["paths"].items() for method, op in item.items() if method in METHODS}


def test_the_contract_has_36_operations() -> None:
    assert len(CONTRACT_OPERATIONS) == 36


def test_document_lists_exactly_the_contract_operations(doc: dict[str, Any]) -> None:
    assert set(operations(doc)) == CONTRACT_OPERATIONS


def test_document_is_valid_openapi_31(doc: dict[str, Any]) -> None:
    assert doc["openapi"].startswith("3.1")
    validate(doc)


def test_every_operation_uses_bearer_and_documents_the_error_envelope(doc: dict[str, Any]) -> None:
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "abnd_qrpro_<secret>"}
    assert doc["security"] == [{"bearer": []}]
    for (method, path), op in operations(doc).items():
        for status in ("401", "429", "500"):
            assert status in op["responses"], (method, path, status)
            schema = op["responses"][status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path)
        assert op.get("summary"), (method, path)
        assert op.get("tags"), (method, path)


# -- success responses, headers, request bodies (issue 10) ---------------------------------------

RATE_LIMIT = {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"}
BINARY_OPERATIONS = {("get", "/api/codes/{}/qr"), ("get", "/api/user/export")}  # images, the ZIP


def resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref", "")
    return doc["components"]["schemas"][ref.rsplit("/", 1)[-1]] if ref else schema


def test_no_operation_documents_422_and_the_validation_schemas_are_gone(doc: dict[str, Any]) -> None:
    for (method, path), op in operations(doc).items():
        assert "422" not in op["responses"], (method, path)
    assert not {"HTTPValidationError", "ValidationError", "ResponseValidationError"} & set(
        doc["components"]["schemas"])


def test_every_operation_documents_its_json_success_with_the_rate_limit_headers(doc: dict[str, Any]) -> None:
    for key, op in operations(doc).items():
        ok = {s: r for s, r in op["responses"].items() if s.startswith("2")}
        assert len(ok) == 1, key
        [(status, response)] = ok.items()
        if key in BINARY_OPERATIONS:
            continue
        assert status == ("201" if key in {("post", "/api/codes"), ("post", "/api/codes/import"),
                                           ("post", "/api/groups"), ("post", "/api/webhooks")} else "200"), key
        assert set(response["headers"]) == RATE_LIMIT, key
        schema = resolve(doc, response["content"]["application/json"]["schema"])
        assert schema["type"] == "object" and schema["properties"], key


def test_error_responses_carry_rate_limit_headers_but_401(doc: dict[str, Any]) -> None:
    for key, op in operations(doc).items():
        assert not op["responses"]["401"].get("headers"), key
        for status, response in op["responses"].items():
            if status.startswith(("4", "5")) and status != "401":
                assert set(response["headers"]) >= RATE_LIMIT, (key, status)
        assert "Retry-After" in op["responses"]["429"]["headers"], key
        assert "503" in op["responses"], key


def test_response_models_list_exactly_the_fields_the_data_layer_returns(doc: dict[str, Any]) -> None:
    from qrpro.data import codes, groups, webhooks

    schemas = doc["components"]["schemas"]
    assert set(schemas["Code"]["properties"]) == set(codes.PUBLIC_FIELDS)
    assert set(schemas["Code"]["required"]) == set(codes.PUBLIC_FIELDS)
    assert set(schemas["Group"]["properties"]) == set(groups.PUBLIC_FIELDS)
    assert set(schemas["GroupDetail"]["properties"]) == {*groups.PUBLIC_FIELDS, "code_ids"}
    assert set(schemas["GroupDeleted"]["properties"]) == {*groups.PUBLIC_FIELDS, "deleted", "ungrouped_code_ids"}
    assert set(schemas["Webhook"]["properties"]) == set(webhooks.PUBLIC_FIELDS)
    assert set(schemas["WebhookCreated"]["properties"]) == {*webhooks.PUBLIC_FIELDS, "secret"}
    assert set(schemas["Delivery"]["properties"]) == {f.name for f in fields(webhooks.Delivery)}
    assert set(schemas["CodeList"]["required"]) == {"codes", "plan", "plan_limit", "scope", "next_cursor"}
    assert set(schemas["HistoryEntry"]["properties"]) == {"at", "field", "from", "to", "by"}
    assert schemas["Code"]["examples"][0]["shortcode"] == "aBc123x"


def test_the_documented_examples_match_their_own_schemas(doc: dict[str, Any]) -> None:
    from jsonschema import Draft202012Validator

    with_examples = [name for name, schema in doc["components"]["schemas"].items() if schema.get("examples")]
    assert {"Code", "CodeList", "Group", "Webhook", "WebhookCreated", "User", "Usage", "KeyList"} <= set(with_examples)
    for name in with_examples:
        validator = Draft202012Validator({"$ref": f"#/components/schemas/{name}", "components": doc["components"]})
        for example in doc["components"]["schemas"][name]["examples"]:
            assert not list(validator.iter_errors(example)), (name, example)


def test_import_documents_its_four_body_shapes(doc: dict[str, Any]) -> None:
    body = doc["paths"]["/api/codes/import"]["post"]["requestBody"]
    assert body["required"] is True
    shapes = body["content"]["application/json"]["schema"]["oneOf"]
    assert shapes[0]["$ref"] == "#/components/schemas/CodeCreate"
    assert shapes[1]["type"] == "array" and (shapes[1]["minItems"], shapes[1]["maxItems"]) == (1, 1000)
    assert shapes[2]["required"] == ["codes"]
    assert body["content"]["text/csv"]["schema"]["type"] == "string"


IDEMPOTENT_POSTS = {("post", "/api/codes"), ("post", "/api/codes/import"), ("post", "/api/codes/bulk"),
                    ("post", "/api/groups"), ("post", "/api/webhooks")}


def _idempotency_keys(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """The Idempotency-Key parameter of each operation that has one (header names are case-insensitive:
    Powertools writes them lowercased)."""
    return {key: p for key, op in operations(doc).items() for p in op.get("parameters", [])
            if p["name"].lower() == "idempotency-key"}


def test_mutating_posts_document_the_idempotency_key(doc: dict[str, Any]) -> None:
    keys = _idempotency_keys(doc)
    assert set(keys) == IDEMPOTENT_POSTS
    for param in keys.values():
        assert (param["in"], param["required"]) == ("header", False)
        assert "409 idempotency_conflict" in param["description"]
        [string] = [s for s in param["schema"]["anyOf"] if s["type"] == "string"]
        assert (string["minLength"], string["maxLength"]) == (1, 255)


def test_the_idempotency_key_is_declared_by_the_routes_not_patched_in() -> None:
    """Issue 17: Powertools' own document (before lambdas.api.docs finishes it) already has the header."""
    from lambdas.api.handler import app, routers

    routers()  # every area's routes loaded (they load on first use)
    raw = app.get_openapi_schema(title="t", version="1").model_dump(mode="json", by_alias=True, exclude_none=True)
    assert set(_idempotency_keys(raw)) == IDEMPOTENT_POSTS


def _post(path: str, body: Any, headers: dict[str, str]) -> dict[str, Any]:
    """One request through the api function's resolver, as a personal caller (the pipeline's work done)."""
    from lambdas.api.handler import app, area_of, load
    from qrpro.domain.scope import Caller

    load(area_of(path))
    event = {"httpMethod": "POST", "path": path, "headers": {"Content-Type": "application/json", **headers},
             "multiValueHeaders": {"Content-Type": ["application/json"], **{k: [v] for k, v in headers.items()}},
             "queryStringParameters": None, "body": json.dumps(body), "isBase64Encoded": False,
             "requestContext": {"requestId": "r1", "path": path, "stage": "prod"}}
    app.clear_context()
    app.append_context(caller=Caller("u1", "k1", "a@example.com", "USER#u1", "business", "active"), now=0)
    return app.resolve(event, None)


BODIES = {"/api/codes": {"url": "https://example.com/"}, "/api/codes/import": [{"url": "https://example.com/"}],
          "/api/codes/bulk": {"ids": ["x"], "action": "pause"}, "/api/groups": {"name": "G"},
          "/api/webhooks": {"url": "https://example.com/hook", "events": ["code.created"]}}


@pytest.mark.parametrize("path", sorted(BODIES))
@pytest.mark.parametrize(("name", "value"), [("Idempotency-Key", ""), ("Idempotency-Key", "x" * 256),
                                             ("idempotency-key", ""), ("IDEMPOTENCY-KEY", "y" * 1000)])
def test_a_bad_idempotency_key_is_the_contract_s_400(path: str, name: str, value: str) -> None:
    out = _post(path, BODIES[path], {name: value})
    assert out["statusCode"] == 400, out
    assert json.loads(out["body"]) == {"error": "validation_error", "field": "Idempotency-Key",
                                       "message": "must be 1 to 255 characters"}


def test_document_is_deterministic() -> None:
    from lambdas.api.handler import openapi_document

    assert json.dumps(openapi_document()) == json.dumps(openapi_document())


# -- issue 15: a committed document, operationIds, named enums, the reference page ---------------

ROOT = Path(__file__).resolve().parents[2]
OPERATION_IDS = {  # docs/api.md section 12
    "listCodes", "createCode", "getCode", "updateCode", "deleteCode", "importCodes", "reactivateCode",
    "getCodeHistory", "getCodeQr", "bulkCodes",
    "getCodeAnalytics", "getScopeAnalytics", "getGroupAnalytics",
    "listGroups", "createGroup", "getGroup", "updateGroup", "deleteGroup", "addGroupCodes", "removeGroupCode",
    "listTeams", "getTeam", "listTeamMembers",
    "listWebhooks", "createWebhook", "getWebhook", "updateWebhook", "deleteWebhook", "testWebhook",
    "listWebhookDeliveries", "rotateWebhookSecret",
    "getUser", "getUsage", "listKeys", "revokeKey", "exportData",
}
NAMED_ENUMS = {"CodeStatus", "EditableStatus", "LogoKey", "FrameStyle", "BulkAction", "EventType",
               "DeliveryEventType", "HistoryField", "AnalyticsRange", "Granularity", "Device", "QrFormat",
               "QrVariant", "PlanName", "PlanStatus", "Role", "ScopeType", "OsClass", "OsFamily"}


def test_the_committed_document_is_the_code_s_document(doc: dict[str, Any]) -> None:
    committed = json.loads((ROOT / "docs" / "openapi.json").read_text(encoding="utf-8"))
    assert committed == doc, "docs/openapi.json is stale: run `make openapi` and commit it"


def test_every_operation_has_the_operation_id_of_the_reference(doc: dict[str, Any]) -> None:
    ids = [op["operationId"] for op in operations(doc).values()]
    assert sorted(ids) == sorted(OPERATION_IDS)


def _inline_enums(node: Any, path: str = "") -> list[str]:
    if isinstance(node, dict):
        found = [path] if "enum" in node else []
        return found + [p for k, v in node.items() for p in _inline_enums(v, f"{path}/{k}")]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _inline_enums(v, f"{path}/{i}")]
    return []


def test_enumerations_are_named_schemas_shared_by_every_operation(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    assert set(schemas) >= NAMED_ENUMS
    assert set(_inline_enums(doc)) == {f"/components/schemas/{name}" for name in NAMED_ENUMS}
    assert schemas["Code"]["properties"]["status"] == {"$ref": "#/components/schemas/CodeStatus"}
    assert schemas["LogoKey"]["enum"][:2] == ["link", "email"]
    status = next(p for p in doc["paths"]["/api/codes"]["get"]["parameters"] if p["name"] == "status")
    assert {"$ref": "#/components/schemas/CodeStatus"} in status["schema"]["anyOf"]


def test_the_document_names_its_license_contact_and_servers(doc: dict[str, Any]) -> None:
    assert doc["info"]["license"]["name"] and doc["info"]["contact"]["url"]
    assert [s["url"] for s in doc["servers"]] == ["https://pro.qr.abundera.ai", "http://127.0.0.1:3000"]


def test_binary_responses_are_described_as_bytes(doc: dict[str, Any]) -> None:
    qr = doc["paths"]["/api/codes/{code_id}/qr"]["get"]["responses"]["200"]["content"]
    assert set(qr) == {"image/svg+xml", "image/png", "application/pdf"}
    assert all(media["schema"]["format"] == "binary" for media in qr.values())
    export = doc["paths"]["/api/user/export"]["get"]["responses"]
    assert list(export["200"]["content"]) == ["application/zip", "application/json"]  # generators take the first
    assert export["200"]["content"]["application/zip"]["schema"]["format"] == "binary"
    assert export["303"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ExportLink"}


def _get(path: str, stage_path: str | None = None) -> dict[str, Any]:
    from lambdas.api.handler import app
    from qrpro.api import pipeline

    event = {"httpMethod": "GET", "path": path, "headers": {}, "multiValueHeaders": {},
             "queryStringParameters": None, "body": None, "isBase64Encoded": False,
             "requestContext": {"requestId": "r1", "path": stage_path or path, "stage": "prod"}}
    return pipeline.handle(app, event, None, Logger())


def test_the_reference_page_and_its_assets_need_no_key() -> None:
    page = _get("/docs")
    assert page["statusCode"] == 200 and page["multiValueHeaders"]["Content-Type"][0].startswith("text/html")
    assert '<script src="/docs/swagger-ui-bundle.js">' in page["body"] and "https://" not in page["body"]
    for asset, ctype in (("swagger-ui-bundle.js", "text/javascript"), ("swagger-ui.css", "text/css"),
                         ("init.js", "text/javascript")):
        out = _get(f"/docs/{asset}")
        assert out["statusCode"] == 200 and out["multiValueHeaders"]["Content-Type"][0].startswith(ctype), asset
        assert len(out["body"]) > 200, asset
    assert "SwaggerUIBundle" in _get("/docs/swagger-ui-bundle.js")["body"]


def test_root_points_to_the_reference_under_the_stage_prefix() -> None:
    assert _get("/")["multiValueHeaders"]["Location"] == ["/docs"]
    staged = _get("/", stage_path="/prod/")
    assert staged["statusCode"] == 302 and staged["multiValueHeaders"]["Location"] == ["/prod/docs"]
    assert '"/prod/docs/swagger-ui.css"' in _get("/docs", stage_path="/prod/docs")["body"]


def test_the_api_function_imports_the_reference_only_when_asked() -> None:
    code = "import sys, lambdas.api.handler; print('lambdas.api.docs' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


def test_the_api_function_bundle_carries_the_reference_assets(tmp_path: Path) -> None:
    from infra import build_assets

    out = build_assets.build_function("api", tmp_path / "api")
    bundled = out / "lambdas" / "api" / "swagger_ui"
    assert {p.name for p in bundled.iterdir()} == {"swagger-ui-bundle.js", "swagger-ui.css", "LICENSE"}
    code = "from lambdas.api import docs; print(docs.asset_dir())"
    where = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=out,
                           env={"PYTHONPATH": str(out), "PATH": "/usr/bin:/bin"})
    assert where.stdout.strip() == str(bundled)


def test_routing_is_one_named_schema_with_examples_in_requests_and_answers(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    ref = {"anyOf": [{"$ref": "#/components/schemas/Routing"}, {"type": "null"}]}
    assert {k: v for k, v in schemas["Code"]["properties"]["routing"].items() if k == "anyOf"} == ref
    body = doc["paths"]["/api/codes"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert resolve(doc, body)["properties"]["routing"] == ref
    assert schemas["Routing"]["examples"][0]["rules"][0]["if"] == {"country": ["DE", "AT", "CH"]}
    assert schemas["Routing"]["additionalProperties"] is False
    assert {"$ref": "#/components/schemas/Routing"} in schemas["HistoryEntry"]["properties"]["to"]["anyOf"]


@pytest.mark.parametrize("query", [{"delivery": "email"}, {"delivery": ""}, {"delivery": "URL"}])
def test_the_export_function_checks_delivery_as_powertools_does(query: dict[str, str]) -> None:
    """The export function runs without Powertools' validation (no pydantic at its cold start): its route
    checks ``delivery`` itself, and must answer as the api function's validated route does."""
    from lambdas.api.handler import app as api_app
    from lambdas.export.handler import app as export_app
    from qrpro.domain.scope import Caller

    answers = []
    for app in (api_app, export_app):
        event = {"httpMethod": "GET", "path": "/api/user/export", "headers": {}, "multiValueHeaders": {},
                 "queryStringParameters": query, "multiValueQueryStringParameters": {k: [v] for k, v in query.items()},
                 "body": None, "isBase64Encoded": False,
                 "requestContext": {"requestId": "r1", "path": "/api/user/export", "stage": "prod"}}
        app.clear_context()
        app.append_context(caller=Caller("u1", "k1", "a@example.com", "USER#u1", "business", "active"), now=0)
        out = app.resolve(event, None)
        answers.append((out["statusCode"], json.loads(out["body"])))
    assert answers[0] == answers[1]
    assert answers[0][0] == 400 and answers[0][1]["field"] == "delivery"
