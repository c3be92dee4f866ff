"""Object-level authorisation (OWASP API1) and team roles, for EVERY operation.

The operations come from the API's own OpenAPI document
(``lambdas.api.handler.app``), so a new route is covered the moment it is
registered: the test for it fails until ROWS has a row for it. Nothing is
skipped. Each operation is tried

- by two other tenants (a personal account, and the admin of another team in
  team context) with the victim's ids in the path and body: the answer is
  ``404 not_found`` (never 403), nothing of the victim's leaks into any
  answer, and neither the victim's data nor, when refused, the caller's own
  data changes (never partially applied);
- by a team ``member`` with the team's own ids: every mutation of codes,
  groups and webhooks is ``403 insufficient_role`` and changes nothing; every
  other operation answers 2xx.

To cover a new operation, add a ``Row``: the method, the path exactly as in
the OpenAPI document, a body that would succeed for an admin, whether it is a
mutation of team data, and what another tenant's ids give.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from qrpro.domain.errors import MESSAGES
from tests.conftest import InProcessApi, Reply, reset_caches

NOW = int(time.time())
MEMBER_DENIED = {"error": "insufficient_role", "role": "member", "required": "admin",
                 "message": MESSAGES["insufficient_role"]}
HOOK = {"url": "http://127.0.0.1:9/hook", "events": ["code.created"]}


# -- expectations for another tenant's ids -------------------------------------------------------

def not_found(r: Reply) -> None:
    assert (r.status, r.json()) == (404, {"error": "not_found", "message": MESSAGES["not_found"]})


def id_in_body(field_name: str) -> Callable[[Reply], None]:
    """A foreign id in a body field: 404, or 400 validation_error naming that field."""
    def check(r: Reply) -> None:
        if r.status == 404:
            not_found(r)
        else:
            assert r.status == 400 and r.json()["error"] == "validation_error", r.body
            assert r.json()["field"] == field_name, r.body
    return check


def own_scope(r: Reply) -> None:
    """No id of the victim's in the request: it acts on the caller's own scope."""
    assert 200 <= r.status < 300, r.body


def bulk_failed(r: Reply) -> None:
    assert r.status == 200, r.body
    body = r.json()
    assert body["updated"] == [] and [f["error"] for f in body["failed"]] == ["not_found"]




@dataclass(frozen=True)
class Row:
    method: str
    path: str  # exactly as in the OpenAPI document
    body: Any = None  # strings "{name}" are replaced by ids of the world
    query: dict[str, str] = field(default_factory=dict)
    mutation: bool = False  # of codes, groups or webhooks: a member gets 403 insufficient_role
    foreign: Callable[[Reply], None] = not_found
    ids: dict[str, str] = field(default_factory=dict)  # path placeholder -> world id name (default: same)
    refused: bool = True  # the foreign check means "refused": the caller's own data must not change

    @property
    def op(self) -> tuple[str, str]:
        return self.method, self.path


CODE = "/api/codes/{code_id}"
GROUP = "/api/groups/{group_id}"
HOOK_PATH = "/api/webhooks/{webhook_id}"
ROWS: list[Row] = [
    # Codes (6)
    Row("GET", "/api/codes", query={"group_id": "{group_id}"}, foreign=own_scope),
    Row("POST", "/api/codes", {"url": "https://example.com/x", "group_id": "{group_id}"}, mutation=True,
        foreign=id_in_body("group_id")),
    Row("POST", "/api/codes/import", {"codes": [{"url": "https://example.com/x", "group_id": "{group_id}"}]},
        mutation=True, foreign=id_in_body("codes[0].group_id")),
    Row("POST", "/api/codes/bulk", {"ids": ["{code_id}"], "action": "pause"}, mutation=True, foreign=bulk_failed),
    Row("POST", "/api/codes/bulk", {"ids": ["{own_code_id}"], "action": "move", "group_id": "{group_id}"},
        mutation=True, foreign=id_in_body("group_id")),
    Row("GET", CODE),
    Row("PATCH", CODE, {"label": "mine now"}, mutation=True),
    Row("DELETE", CODE, mutation=True),
    Row("POST", CODE + "/reactivate", mutation=True),
    Row("GET", CODE + "/history"),
    Row("GET", CODE + "/qr"),
    # Analytics (7)
    Row("GET", CODE + "/analytics"),
    Row("GET", "/api/analytics", foreign=own_scope, refused=False),
    Row("GET", GROUP + "/analytics"),
    # Groups (8)
    Row("GET", "/api/groups", foreign=own_scope, refused=False),
    Row("POST", "/api/groups", {"name": "Tenancy probe {run}"}, mutation=True, foreign=own_scope, refused=False),
    Row("GET", GROUP),
    Row("PATCH", GROUP, {"name": "Stolen"}, mutation=True),
    Row("DELETE", GROUP, mutation=True),
    Row("POST", GROUP + "/codes", {"code_ids": ["{code_id}"]}, mutation=True),
    # the caller's own group with one foreign code among its own: nothing is moved
    Row("POST", GROUP + "/codes", {"code_ids": ["{own_code_id}", "{code_id}"]}, mutation=True,
        ids={"group_id": "own_group_id"}),
    # a foreign group: even with the caller's own code
    Row("POST", GROUP + "/codes", {"code_ids": ["{own_code_id}"]}, mutation=True),
    Row("DELETE", GROUP + "/codes/{code_id}", mutation=True),
    Row("DELETE", GROUP + "/codes/{code_id}", mutation=True, ids={"group_id": "own_group_id"}),
    # Teams (9)
    Row("GET", "/api/teams", foreign=own_scope, refused=False),
    Row("GET", "/api/teams/{team_id}"),
    Row("GET", "/api/teams/{team_id}/members"),
    # Webhooks (10)
    Row("GET", "/api/webhooks", foreign=own_scope, refused=False),
    Row("POST", "/api/webhooks", HOOK, mutation=True, foreign=own_scope, refused=False),
    Row("GET", HOOK_PATH),
    Row("PATCH", HOOK_PATH, {"description": "stolen"}, mutation=True),
    Row("DELETE", HOOK_PATH, mutation=True),
    Row("POST", HOOK_PATH + "/test", mutation=True),
    Row("GET", HOOK_PATH + "/deliveries"),
    Row("POST", HOOK_PATH + "/rotate-secret", mutation=True),
    # User and keys (11): keys are the user's own, never team data
    Row("GET", "/api/user", foreign=own_scope, refused=False),
    Row("GET", "/api/user/usage", foreign=own_scope, refused=False),
    Row("GET", "/api/user/export", foreign=own_scope, refused=False),
    Row("GET", "/api/keys", foreign=own_scope, refused=False),
    Row("DELETE", "/api/keys/{key_id}"),
]
CONTRACT_OPERATIONS = 36  # section 12


def registered_operations() -> list[tuple[str, str]]:
    from lambdas.api.handler import app, routers

    routers()  # every area's routes loaded (they load on first use)
    schema = app.get_openapi_schema()
    ops = []
    for path, item in (schema.paths or {}).items():
        for method in ("get", "put", "post", "delete", "patch", "head", "options", "trace"):
            if getattr(item, method, None) is not None:
                ops.append((method.upper(), path))
    return sorted(ops)


try:
    OPERATIONS: list[Any] = registered_operations()
except Exception as err:  # a broken route must fail here, loudly, not hide operations
    OPERATIONS = [pytest.param(("?", "?"), marks=pytest.mark.xfail(strict=True, reason=repr(err)))]
    _SCHEMA_ERROR: Exception | None = err
else:
    _SCHEMA_ERROR = None


def rows_for(op: tuple[str, str]) -> list[Row]:
    return [r for r in ROWS if r.op == op]


def test_the_openapi_document_builds() -> None:
    assert _SCHEMA_ERROR is None, f"the OpenAPI document does not build: {_SCHEMA_ERROR!r}"


def test_rows_cover_the_contract() -> None:
    assert len({r.op for r in ROWS}) == CONTRACT_OPERATIONS
    for row in ROWS:
        assert row.path.startswith("/api/") and row.method in {"GET", "POST", "PATCH", "DELETE"}, row


# -- the world -------------------------------------------------------------------------------------

@dataclass
class Actor:
    user_id: str
    key_id: str
    token: str
    email: str


@dataclass
class World:
    api: InProcessApi
    victim: Actor
    attackers: dict[str, Actor]
    member: Actor
    ids: dict[str, dict[str, str]]  # perspective -> placeholder -> id
    secrets: list[str]  # strings of the victim that must never appear in another tenant's answer
    partitions: dict[str, list[str]]  # perspective -> partitions that a refused request must not change


def _actor(plan: str) -> Actor:
    from qrpro.data import accounts
    from qrpro.services import keys as key_service

    email = f"{uuid.uuid4().hex[:10]}@example.com"
    user_id = accounts.create_account(email, plan, NOW)
    key_id, token = key_service.create(user_id, "tenancy", NOW)
    return Actor(user_id, key_id, token, email)


def _caller(actor: Actor) -> Any:
    from qrpro.data.accounts import resolve_caller

    return resolve_caller(actor.user_id, actor.key_id)


def _data(actor: Actor, api: InProcessApi, label: str) -> dict[str, str]:
    """A code in a group, a second code, and a webhook, in the actor's current scope."""
    from qrpro.services import codes, groups

    caller = _caller(actor)
    group = groups.create(caller, {"name": f"{label} group"}, NOW)
    code = codes.create(caller, {"url": f"https://example.com/{label}", "group_id": group["id"]}, NOW)
    other = codes.create(caller, {"url": f"https://example.com/{label}/2"}, NOW)
    r = api.request("POST", "/api/webhooks", actor.token, json=HOOK)
    assert r.status == 201, r.body
    return {"code_id": code["id"], "shortcode": code["shortcode"], "group_id": group["id"],
            "webhook_id": r.json()["id"], "own_code_id": other["id"], "own_group_id": group["id"],
            "scope": caller.scope}


@pytest.fixture(scope="module")
def world(dynamodb_endpoint: str, moto_endpoint: str) -> Iterator[World]:
    from qrpro.data import accounts
    from qrpro.data.schema import create_tables
    from qrpro.services import keys as key_service

    name = f"t{uuid.uuid4().hex[:12]}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_endpoint)
        mp.setenv("AWS_ENDPOINT_URL_DYNAMODB_STREAMS", dynamodb_endpoint)
        mp.setenv("TABLE_NAME", name)
        mp.setenv("IDEMPOTENCY_TABLE_NAME", f"{name}-idem")
        mp.setenv("ALLOW_LOOPBACK_WEBHOOKS", "1")
        mp.setenv("AWS_ENDPOINT_URL_S3", moto_endpoint)
        mp.setenv("EXPORT_BUCKET", f"{name}-exports")
        reset_caches()
        boto3.client("s3", endpoint_url=moto_endpoint).create_bucket(Bucket=f"{name}-exports")
        client = boto3.client("dynamodb", endpoint_url=dynamodb_endpoint)
        create_tables(client, name, f"{name}-idem")
        try:
            api = InProcessApi()
            # the victim: a personal account, and the team it owns
            victim = _actor("business")
            theirs = _data(victim, api, "victim")
            team_id = accounts.create_team(victim.user_id, "Victim team", "team", NOW)
            # the team's member and admin, in team context
            member, admin = _actor("business"), _actor("business")
            accounts.add_member(team_id, member.user_id, "member", NOW)
            accounts.add_member(team_id, admin.user_id, "admin", NOW)
            accounts.use_team(member.user_id, team_id)
            accounts.use_team(admin.user_id, team_id)
            team = _data(admin, api, "team")
            spare_key, _ = key_service.create(member.user_id, "spare", NOW)
            # two other tenants: a personal account, and the admin of another team
            loner = _actor("business")
            loner_data = _data(loner, api, "loner")
            boss = _actor("business")
            other_team = accounts.create_team(boss.user_id, "Other team", "agency", NOW)
            accounts.use_team(boss.user_id, other_team)
            boss_data = _data(boss, api, "boss")

            def foreign(own: dict[str, str]) -> dict[str, str]:
                return {**theirs, "key_id": victim.key_id, "team_id": team_id,
                        "own_code_id": own["own_code_id"], "own_group_id": own["own_group_id"]}

            ids = {"personal": foreign(loner_data), "team_admin": foreign(boss_data),
                   "member": {**team, "key_id": spare_key, "team_id": team_id}}
            secrets = [victim.user_id, victim.key_id, victim.email, team_id, admin.user_id,
                       *(theirs[n] for n in ("code_id", "shortcode", "group_id", "webhook_id", "own_code_id")),
                       *(team[n] for n in ("code_id", "shortcode", "group_id", "webhook_id", "own_code_id"))]
            victims = [theirs["scope"], team["scope"]]
            yield World(api, victim, {"personal": loner, "team_admin": boss}, member, ids, secrets,
                        {"personal": [*victims, loner_data["scope"]], "team_admin": [*victims, boss_data["scope"]],
                         "member": victims})
        finally:
            for t in (name, f"{name}-idem"):
                client.delete_table(TableName=t)
            reset_caches()


def snapshot(partitions: list[str]) -> dict[str, list[dict[str, Any]]]:
    from qrpro.data.aws import ddb
    from qrpro.data.table import table

    out = {}
    for pk in partitions:
        items: list[dict[str, Any]] = []
        for page in ddb().get_paginator("query").paginate(
                TableName=table(), ConsistentRead=True, KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": pk}}):
            items += page["Items"]
        out[pk] = sorted(items, key=lambda i: i["sk"]["S"])
    return out


def fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        for name, ident in ids.items():
            value = value.replace("{" + name + "}", ident)
        return value
    if isinstance(value, list):
        return [fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, ids) for k, v in value.items()}
    return value


def call(world: World, row: Row, token: str, ids: dict[str, str]) -> tuple[Reply, str]:
    """The answer, and the request's path and body as text (what it may echo)."""
    ids = {**ids, "run": uuid.uuid4().hex[:8]}
    path_ids = {name: ids[row.ids.get(name, name)] for name in ids}
    path = row.path.format(**{n: path_ids[n] for n in _placeholders(row.path)})
    query = fill(row.query, ids)
    if query:
        path += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    body = fill(row.body, ids)
    return world.api.request(row.method, path, token, json=body), path + json.dumps(body)


def _placeholders(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]


def _no_row(op: tuple[str, str]) -> str:
    return (f"{op[0]} {op[1]} is registered but has no row in tests/integration/test_tenancy.py ROWS: "
            "add one (method, path as in the OpenAPI document, a body, mutation?, foreign check)")


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: f"{op[0]} {op[1]}")
@pytest.mark.parametrize("who", ["personal", "team_admin"])
def test_another_tenants_ids_are_not_found(world: World, op: tuple[str, str], who: str) -> None:
    rows = rows_for(op)
    assert rows, _no_row(op)
    attacker = world.attackers[who]
    for row in rows:
        partitions = world.partitions[who] if row.refused else world.partitions[who][:2]
        before = snapshot(partitions)
        r, sent = call(world, row, attacker.token, world.ids[who])
        assert r.status != 403 and r.status < 500, (row, r.status, r.body)
        assert snapshot(partitions) == before, (row, "data changed", r.status, r.body)
        row.foreign(r)
        text = r.body.decode("utf-8", "replace")
        leaked = [s for s in world.secrets if s in text and s not in sent]  # echoing an id sent is fine
        assert not leaked, (row, leaked, text[:500])


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: f"{op[0]} {op[1]}")
def test_a_member_reads_but_never_mutates(world: World, op: tuple[str, str]) -> None:
    rows = rows_for(op)
    assert rows, _no_row(op)
    for row in rows:
        before = snapshot(world.partitions["member"])
        r, _ = call(world, row, world.member.token, world.ids["member"])
        if row.mutation:
            assert (r.status, r.json()) == (403, MEMBER_DENIED), (row, r.body)
        else:
            assert 200 <= r.status < 300, (row, r.status, r.body)
        assert snapshot(world.partitions["member"]) == before, (row, "team data changed")


def test_the_victims_data_is_intact_and_usable(world: World) -> None:
    """After all of the above (same module, same world): the victim's key works
    and their objects are all still there."""
    ids = world.ids["personal"]
    for path in (f"/api/codes/{ids['code_id']}", f"/api/groups/{ids['group_id']}",
                 f"/api/webhooks/{ids['webhook_id']}"):
        r = world.api.request("GET", path, world.victim.token)
        assert r.status == 200, (path, r.body)
    body = world.api.request("GET", f"/api/groups/{ids['group_id']}", world.victim.token).json()
    assert body["code_ids"] == [ids["code_id"]] and body["code_count"] == 1
    assert json.loads(world.api.request("GET", "/api/keys", world.victim.token).body)["keys"][0]["id"] == \
        world.victim.key_id
