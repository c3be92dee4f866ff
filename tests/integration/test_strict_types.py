"""Strict JSON types on every operation (contract section 1, issue 16 item 3).

The cases come from the API's own OpenAPI document: every property of every
request body, sent each JSON type its schema does not allow (and, for arrays,
each wrong item type), must be ``400 validation_error`` naming that property,
and write nothing. A new operation or field is covered without a new test.
Every object body sent as an array or a scalar is ``400`` on ``body``.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from qrpro.data.aws import ddb
from qrpro.data.table import table

SAMPLES: dict[str, Any] = {"string": "1", "integer": 1, "number": 1.5, "boolean": True, "null": None,
                           "array": ["x"], "object": {"k": "v"}}
ALL_TYPES = set(SAMPLES)


def document() -> dict[str, Any]:
    from lambdas.api.handler import openapi_document

    return openapi_document()


def resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def accepted(doc: dict[str, Any], schema: dict[str, Any]) -> set[str]:
    """The JSON types a schema allows."""
    schema = resolve(doc, schema)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return set().union(*(accepted(doc, s) for s in schema[key]))
    kind = schema.get("type")
    if kind is None and ("enum" in schema or "const" in schema):
        values = schema.get("enum", [schema.get("const")])
        kind = sorted({type_of(v) for v in values})
    if kind is None:
        return set(ALL_TYPES)
    kinds = set(kind) if isinstance(kind, list) else {kind}
    return kinds | ({"integer"} if "number" in kinds else set())


def type_of(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "null", list: "array",
            dict: "object"}[type(value)]


def valid(doc: dict[str, Any], name: str, schema: dict[str, Any]) -> Any:
    """A value the schema (and the field rules behind it) accept, for required fields."""
    schema = resolve(doc, schema)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return valid(doc, name, next(s for s in schema[key] if resolve(doc, s).get("type") != "null"))
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "array":
        return [valid(doc, name, schema.get("items", {}))]
    if kind == "object":
        return {}
    if kind == "boolean":
        return True
    if kind in ("integer", "number"):
        return 1
    return f"https://example.com/{name}" if "url" in name else f"strict-{uuid.uuid4().hex[:8]}"


def operations() -> list[tuple[str, str, dict[str, Any], str]]:
    """(method, path, object schema of the body, prefix of field paths in errors) for every JSON body."""
    doc = document()
    out = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            content = op.get("requestBody", {}).get("content", {}).get("application/json")
            if not content:
                continue
            schema, prefix = content["schema"], ""
            if "oneOf" in schema:  # the import: one code, an array of them, or {codes: [...]}
                schema, prefix = next(s for s in schema["oneOf"] if "$ref" in s), "codes[0]."
            out.append((method.upper(), re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path), resolve(doc, schema),
                        prefix))
    return out


def cases() -> list[tuple[str, str, dict[str, Any], str, str]]:
    """(method, path, body, expected field, what) for each wrong JSON type of each property."""
    doc = document()
    out = []
    for method, path, schema, prefix in operations():
        props = schema.get("properties", {})
        base = {name: valid(doc, name, props[name]) for name in schema.get("required", [])}
        for name, prop in props.items():
            for kind in sorted(ALL_TYPES - accepted(doc, prop)):
                out.append((method, path, {**base, name: SAMPLES[kind]}, f"{prefix}{name}", f"{name}: {kind}"))
            items = [s for s in resolve(doc, prop).get("anyOf", [resolve(doc, prop)]) if s.get("type") == "array"]
            for array in items:
                for kind in sorted(ALL_TYPES - accepted(doc, array.get("items", {}))):
                    out.append((method, path, {**base, name: [SAMPLES[kind]]}, f"{prefix}{name}[0]",
                                f"{name}[0]: {kind}"))
    return out


def item_count() -> int:
    return int(ddb().scan(TableName=table(), Select="COUNT")["Count"])


def test_every_wrong_json_type_on_every_field_is_400_naming_it(api: Any, make_account: Any) -> None:
    acct = make_account("team")
    api.request("GET", "/api/user", acct.token)  # settle the day's rate counter item
    before = item_count()
    found = cases()
    operations_covered = {(m, re.sub(r"[0-9a-f-]{36}", "{id}", p)) for m, p, *_ in found}
    assert len(operations_covered) >= 8 and len(found) > 100, (operations_covered, len(found))
    wrong = []
    for method, path, body, field, what in found:
        r = api.request(method, path, acct.token, json=body)
        got = r.json()
        if (r.status, got.get("error"), got.get("field")) != (400, "validation_error", field):
            wrong.append((method, path, what, r.status, got))
    assert not wrong, "\n".join(map(str, wrong[:20])) + f"\n({len(wrong)} of {len(found)})"
    assert item_count() == before


def test_an_array_or_a_scalar_where_an_object_is_expected_is_400_on_the_body(api: Any, make_account: Any) -> None:
    acct = make_account("team")
    doc = document()
    api.request("GET", "/api/user", acct.token)
    before = item_count()
    for method, path, schema, prefix in operations():
        props = schema.get("properties", {})
        base = {name: valid(doc, name, props[name]) for name in schema.get("required", [])}
        # The import takes arrays (its own tests cover them); it names its scalars `codes`.
        shapes: list[Any] = ["x", 1, True] if prefix else [[base], [base, base], [], "x", 1, True, None]
        expected = "codes" if prefix else "body"
        for shape in shapes:
            r = api.request(method, path, acct.token, body=json.dumps(shape).encode(),
                            headers={"Content-Type": "application/json"})
            assert (r.status, r.json().get("error"), r.json().get("field")) == (400, "validation_error", expected), (
                method, path, shape, r.body)
    assert item_count() == before


def test_patch_webhook_active_takes_only_booleans(api: Any, make_account: Any) -> None:
    """The issue's example: "off" stored false, "yes" and 1 stored true."""
    acct = make_account("business")
    body = {"url": "https://93.184.215.14/in", "events": ["code.created"]}  # a public literal: no DNS lookup
    hook = api.request("POST", "/api/webhooks", acct.token, json=body)
    assert hook.status == 201, hook.body
    hook_id = hook.json()["id"]
    for value in ("off", "yes", "false", 1, 0, "1"):
        r = api.request("PATCH", f"/api/webhooks/{hook_id}", acct.token, json={"active": value})
        assert (r.status, r.json()["field"]) == (400, "active"), (value, r.body)
    assert api.request("GET", f"/api/webhooks/{hook_id}", acct.token).json()["active"] is True
