"""Contract fuzzing: schemathesis drives every operation of the served OpenAPI
document against a dedicated local stack and checks that the API answers only
what the document says (no 5xx, only documented statuses, content types,
bodies and headers).

Three operations are never fuzzed: `POST /api/webhooks`, `PATCH
/api/webhooks/{id}` and `POST /api/webhooks/{id}/test` could make the stack
send traffic to a generated address. The one webhook the fuzzer may read,
rotate or delete is created here, points at a loopback listener owned by this
test and subscribes only to `scans.cap_reached` (never fired here).

Generated path ids rarely name anything, so half of the cases use the id of a
real object of the right kind (codes, groups, the team, the webhook, a spare
key: never the key the fuzzer signs with). `QRPRO_FUZZ_EXAMPLES` sets the
examples per operation and generation mode (default 8; `make fuzz` runs more).
"""

from __future__ import annotations

import json
import os
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from lambdas.api.handler import openapi_document
from qrpro.domain.errors import MESSAGES
from tests.e2e.conftest import Stack, running_stack
from tests.integration.test_webhooks import Receiver

EXAMPLES = int(os.environ.get("QRPRO_FUZZ_EXAMPLES", "8"))
NEVER_FUZZED = {"POST /api/webhooks", "PATCH /api/webhooks/{webhook_id}", "POST /api/webhooks/{webhook_id}/test"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]
METHODS = ("get", "post", "put", "patch", "delete")
STATUSES: dict[str, list[int]] = {}  # label -> statuses seen, for the last test


def _labels() -> list[str]:
    doc = openapi_document()
    return sorted(f"{m.upper()} {path}" for path, item in doc["paths"].items() for m in item if m in METHODS)


LABELS = _labels()
# Reads and changes first, deletes last (nested ones first): real objects live until the DELETEs run.
FUZZED = sorted((label for label in LABELS if label not in NEVER_FUZZED),
                key=lambda x: (x.startswith("DELETE"), -x.count("{") if x.startswith("DELETE") else 0, x))


@schemathesis.serializer("text/csv")
def _csv(ctx: Any, value: Any) -> bytes | None:
    """The import's CSV body: schemathesis generates it as a string."""
    return None if value is None else str(value).encode("utf-8")


class World:
    """A team-plan account with real objects for the path ids to hit."""

    def __init__(self, stack: Stack, receiver: Receiver) -> None:
        self.stack = stack
        account = stack.account("team")
        self.token: str = account["api_key"]
        self.spare_key_id: str = stack.admin("create-key", "--user-id", account["user_id"],
                                             "--label", "spare")["key_id"]
        self.team_id: str = stack.admin("create-team", "--owner-id", account["user_id"], "--name", "Fuzzers",
                                        "--plan", "team")["team_id"]
        self.group_ids = [self._post("/api/groups", {"name": f"group {n}", "color": "#1A2B3C"})["id"]
                          for n in range(3)]
        self.code_ids = [self._post("/api/codes", {"url": f"https://example.com/{n}", "label": f"code {n}",
                                                   "tag": "fuzz,seed", "group_id": self.group_ids[n % 2]})["id"]
                         for n in range(6)]
        self.webhook_id: str = self._post("/api/webhooks", {"url": receiver.url("/never"),
                                                            "events": ["scans.cap_reached"]})["id"]
        self.real_ids: dict[str, list[str]] = {
            "code_id": self.code_ids, "group_id": self.group_ids, "team_id": [self.team_id],
            "webhook_id": [self.webhook_id], "key_id": [self.spare_key_id]}

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        reply = self.stack.api("POST", path, self.token, json_body=body)
        assert reply.status == 201, (path, reply.status, reply.body)
        out: dict[str, Any] = reply.json()
        return out


PLAUSIBLE_QUERY = {"range": ["7d", "30d", "1y"], "granularity": ["day", "hour"], "status": ["active", "paused"]}


def _plausible(body: Any, world: World, data: st.DataObject) -> Any:
    """Random payloads almost never carry a valid url or colour: give them one (and a real
    group or none) so creates, imports and patches also reach their 2xx answers."""
    def fix(item: Any) -> Any:
        if not isinstance(item, dict):
            return item
        if "color" in item:
            item = {**item, "color": "#1A2B3C"}
        if "name" in item:  # a group: a fresh, printable name
            item = {**item, "name": f"fuzz group {data.draw(st.integers(0, 10**9), label='name')}"}
        if "url" not in item and "code_ids" not in item:
            return item
        out = {k: v for k, v in item.items() if k not in ("style_json", "group_id")}
        if "url" in out:
            out["url"] = f"https://example.com/fuzz/{data.draw(st.integers(0, 10**6), label='path')}"
        if "code_ids" in out:
            out["code_ids"] = [data.draw(st.sampled_from(world.code_ids), label="code id")]
        if data.draw(st.booleans(), label="grouped") and "code_ids" not in out:
            out["group_id"] = data.draw(st.sampled_from(world.group_ids), label="group")
        return out

    if isinstance(body, list):
        return [fix(item) for item in body]
    if isinstance(body, dict) and isinstance(body.get("codes"), list):
        return {**body, "codes": [fix(item) for item in body["codes"]]}
    return fix(body)


@pytest.fixture(scope="module")
def fuzz_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("fuzz"), "--in-memory") as s:
        yield s


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def world(fuzz_stack: Stack, receiver: Receiver) -> World:
    return World(fuzz_stack, receiver)


@pytest.fixture(scope="module")
def served(fuzz_stack: Stack) -> dict[str, Any]:
    """The document as the stack serves it: without auth, as JSON."""
    with urllib.request.urlopen(fuzz_stack.api_url + "/docs/openapi.json", timeout=30) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("application/json")
        doc: dict[str, Any] = json.loads(resp.read())
    return doc


@pytest.fixture(scope="module")
def api_schema(served: dict[str, Any]) -> Any:
    return schemathesis.openapi.from_dict(served)


def test_the_served_document_is_the_generated_one_and_the_fuzzer_covers_it(served: dict[str, Any]) -> None:
    assert served == json.loads(json.dumps(openapi_document()))
    assert len(LABELS) == 36
    assert set(LABELS) >= NEVER_FUZZED
    assert len(FUZZED) == 33
    for path, item in served["paths"].items():
        for method, op in item.items():
            assert "422" not in op["responses"], (method, path)
            ok = [s for s in op["responses"] if s.startswith("2")]
            assert ok, (method, path)


@pytest.mark.parametrize("label", FUZZED)
def test_operation_answers_as_documented(label: str, api_schema: Any, world: World, fuzz_stack: Stack,
                                         receiver: Receiver) -> None:
    operation = api_schema.find_operation_by_label(label)
    assert operation is not None, label
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))
    auth = {"Authorization": f"Bearer {world.token}"}
    seen: list[int] = []

    @settings(max_examples=EXAMPLES * 2, deadline=None, database=None, derandomize=False,
              phases=[Phase.explicit, Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck))
    @given(case=cases, data=st.data())
    def run(case: Any, data: st.DataObject) -> None:
        params = case.path_parameters or {}
        if params and data.draw(st.booleans(), label="real ids"):
            for name in params:
                params[name] = data.draw(st.sampled_from(world.real_ids[name]), label=name)
        if data.draw(st.booleans(), label="plausible"):
            case.body = _plausible(case.body, world, data)
            if case.media_type == "text/csv":
                case.body = "url,label,tag\nhttps://example.com/csv,from csv,fuzz\n"
            for name, valid in PLAUSIBLE_QUERY.items():
                if name in (case.query or {}):
                    case.query[name] = data.draw(st.sampled_from(valid), label=name)
        response = case.call_and_validate(base_url=fuzz_stack.api_url, headers=auth, checks=CHECKS, timeout=60)
        seen.append(response.status_code)

    run()
    STATUSES[label] = sorted(set(seen))
    # Negative cases may drop the Authorization header (401 is documented); the others got past auth.
    assert set(seen) - {401}, (label, seen)
    assert receiver.requests == [], "no delivery may happen during fuzzing"


def test_the_fuzzer_reached_success_responses() -> None:
    """Guards against a vacuous run: most operations answered 2xx at least once."""
    succeeded = [label for label, statuses in STATUSES.items() if any(200 <= s < 300 for s in statuses)]
    print(json.dumps(STATUSES, indent=1))
    assert len(succeeded) >= len(STATUSES) - 3, STATUSES


def test_the_webhook_operations_kept_from_the_fuzzer_answer_as_documented(
        api_schema: Any, world: World, fuzz_stack: Stack, receiver: Receiver) -> None:
    """The three operations the fuzzer never drives, with fixed loopback-only inputs, through the
    same checks: create, patch (never the url), and one test ping to this test's receiver."""
    auth = {"Authorization": f"Bearer {world.token}"}

    def call(label: str, **kw: Any) -> Any:
        operation = api_schema.find_operation_by_label(label)
        response = operation.Case(**kw).call_and_validate(base_url=fuzz_stack.api_url, headers=auth, checks=CHECKS)
        return response.json()

    created = call("POST /api/webhooks", body={"url": receiver.url("/ping"), "events": ["scans.cap_reached"],
                                               "description": "fuzz"}, media_type="application/json")
    assert created["secret"].startswith("whsec_")
    patched = call("PATCH /api/webhooks/{webhook_id}", path_parameters={"webhook_id": created["id"]},
                   body={"description": "patched", "active": True}, media_type="application/json")
    assert patched["description"] == "patched" and "secret" not in patched
    delivery = call("POST /api/webhooks/{webhook_id}/test", path_parameters={"webhook_id": created["id"]})
    assert delivery["event_type"] == "ping" and delivery["status_code"] == 200
    assert [r.path for r in receiver.requests] == ["/ping"]
    missing = call("POST /api/webhooks/{webhook_id}/test", path_parameters={"webhook_id": str(uuid.uuid4())})
    assert missing == {"error": "not_found", "message": MESSAGES["not_found"]}
