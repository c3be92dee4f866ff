"""Groups (docs/api.md section 8) through the real authorizer and API handler,
against DynamoDB Local: shapes, unique names, code_count under every way a
code enters or leaves a group, roles in team context, plan status."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

from qrpro.data import accounts
from qrpro.data import groups as group_repo
from qrpro.data import keys as k
from qrpro.data.table import from_item, key
from qrpro.domain.errors import MESSAGES, ValidationFailed
from qrpro.domain.scope import user_scope
from qrpro.services import codes, groups

NOW = int(time.time())


def item(scope: str, sk: str) -> dict[str, Any] | None:
    from qrpro.data.aws import ddb
    from qrpro.data.table import table

    return from_item(ddb().get_item(TableName=table(), Key=key(scope, sk), ConsistentRead=True).get("Item"))


def events_for(code_id: str) -> list[dict[str, Any]]:
    from qrpro.data.aws import ddb
    from qrpro.data.table import table

    out = []
    for page in ddb().get_paginator("scan").paginate(TableName=table()):
        for raw in page["Items"]:
            got = from_item(raw) or {}
            if got.get("type") == "event" and got["data"].get("code", {}).get("id") == code_id:
                out.append(got)
    return sorted(out, key=lambda e: e["created_at"])


def new_group(api: Any, token: str, name: str, **extra: Any) -> dict[str, Any]:
    r = api.request("POST", "/api/groups", token, json={"name": name, **extra})
    assert r.status == 201, r.body
    body: dict[str, Any] = r.json()
    return body


def new_code(acct: Any, group_id: str | None = None) -> str:
    fields: dict[str, Any] = {"url": "https://example.com"}
    if group_id:
        fields["group_id"] = group_id
    return str(codes.create(acct.caller(), fields, NOW)["id"])


def count(scope: str, group_id: str) -> int:
    got = item(scope, k.sk_group(group_id)) or {}
    return int(got.get("code_count", 0))


def assert_counts_match(scope: str) -> None:
    """The invariant: every group's code_count is the number of codes naming it."""
    for g in groups.list_groups(scope):
        assert g["code_count"] == len(group_repo.code_ids(scope, g["id"])), g


def test_create_list_get_shapes_and_items(api: Any, make_account: Any) -> None:
    acct = make_account()
    r = api.request("POST", "/api/groups", acct.token,
                    json={"name": "Spring campaign", "description": "posters", "color": "#1a2B3c"})
    assert r.status == 201 and r.headers["Content-Type"] == "application/json; charset=utf-8"
    g = r.json()
    assert set(g) == {"id", "name", "description", "color", "code_count", "created_at", "updated_at"}
    assert (g["name"], g["description"], g["color"], g["code_count"]) == ("Spring campaign", "posters", "#1a2B3c", 0)
    assert abs(g["created_at"] - NOW) < 600 and g["updated_at"] == g["created_at"]
    scope = user_scope(acct.user_id)
    stored = item(scope, f"GROUP#{g['id']}")
    assert stored is not None and stored["name"] == "Spring campaign" and stored["code_count"] == 0
    assert item(scope, "GROUPNAME#spring campaign") == {
        "pk": scope, "sk": "GROUPNAME#spring campaign", "type": "group_name", "group_id": g["id"]}

    plain = new_group(api, acct.token, "another")
    assert (plain["description"], plain["color"]) == ("", None)
    listed = api.request("GET", "/api/groups", acct.token).json()
    assert listed == {"groups": [plain, g]}  # by name, case-insensitive

    code_id = new_code(acct, g["id"])
    one = api.request("GET", f"/api/groups/{g['id']}", acct.token).json()
    assert one == {**g, "code_count": 1, "code_ids": [code_id]}


@pytest.mark.parametrize(("body", "field"), [
    ({}, "name"),
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
    ({"name": "x" * 101}, "name"),
    ({"name": 5}, "name"),
    ({"name": "ok", "color": "red"}, "color"),
    ({"name": "ok", "color": "#12345"}, "color"),
    ({"name": "ok", "color": "#1234567"}, "color"),
    ({"name": "ok", "description": "d" * 501}, "description"),
    ({"name": "ok", "code_count": 3}, "code_count"),
])
def test_create_validation(api: Any, make_account: Any, body: dict[str, Any], field: str) -> None:
    r = api.request("POST", "/api/groups", make_account().token, json=body)
    assert r.status == 400, r.body
    assert r.json()["error"] == "validation_error" and r.json()["field"] == field


def test_names_are_unique_per_scope_case_insensitive(api: Any, make_account: Any) -> None:
    acct, other = make_account(), make_account()
    first = new_group(api, acct.token, "Print")
    for dup in ("Print", "print", "  PRINT "):
        r = api.request("POST", "/api/groups", acct.token, json={"name": dup})
        assert r.status == 400
        assert r.json() == {"error": "validation_error", "field": "name",
                            "message": "a group with this name exists already in this scope"}
    assert [g["id"] for g in groups.list_groups(user_scope(acct.user_id))] == [first["id"]]
    # another scope may use the same name
    assert new_group(api, other.token, "Print")["name"] == "Print"


def test_concurrent_creates_of_one_name_make_one_group(make_account: Any) -> None:
    caller = make_account().caller()

    def one(_: int) -> bool:
        try:
            groups.create(caller, {"name": "Race"}, NOW)
            return True
        except ValidationFailed:
            return False

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(one, range(10)))
    assert results.count(True) == 1
    assert len(groups.list_groups(caller.scope)) == 1


def test_patch_rename_moves_the_name_claim(api: Any, make_account: Any) -> None:
    acct = make_account()
    scope = user_scope(acct.user_id)
    g = new_group(api, acct.token, "Alpha", color="#000000")
    new_group(api, acct.token, "Beta")
    r = api.request("PATCH", f"/api/groups/{g['id']}", acct.token,
                    json={"name": "Gamma", "description": "new", "color": None})
    assert r.status == 200, r.body
    body = r.json()
    assert (body["name"], body["description"], body["color"]) == ("Gamma", "new", None)
    assert body["created_at"] == g["created_at"] and body["updated_at"] >= g["updated_at"]
    assert item(scope, "GROUPNAME#alpha") is None
    assert (item(scope, "GROUPNAME#gamma") or {})["group_id"] == g["id"]
    assert "color" not in (item(scope, f"GROUP#{g['id']}") or {})
    assert api.request("GET", f"/api/groups/{g['id']}", acct.token).json()["name"] == "Gamma"
    # the old name is free again; a taken one is refused and nothing changes
    assert new_group(api, acct.token, "alpha")["name"] == "alpha"
    r = api.request("PATCH", f"/api/groups/{g['id']}", acct.token, json={"name": "BETA", "description": "x"})
    assert (r.status, r.json()["field"]) == (400, "name")
    assert api.request("GET", f"/api/groups/{g['id']}", acct.token).json()["description"] == "new"
    # a change of case only keeps the claim
    r = api.request("PATCH", f"/api/groups/{g['id']}", acct.token, json={"name": "GAMMA"})
    assert r.status == 200 and r.json()["name"] == "GAMMA"
    assert (item(scope, "GROUPNAME#gamma") or {})["group_id"] == g["id"]
    # null name, unknown field, bad colour
    for body_, field in (({"name": None}, "name"), ({"code_count": 1}, "code_count"), ({"color": "#ggg000"}, "color")):
        r = api.request("PATCH", f"/api/groups/{g['id']}", acct.token, json=body_)
        assert (r.status, r.json()["error"], r.json()["field"]) == (400, "validation_error", field)


def test_code_count_follows_creates_moves_deletes_and_expiry(api: Any, make_account: Any) -> None:
    acct = make_account()
    scope = user_scope(acct.user_id)
    a, b = new_group(api, acct.token, "A")["id"], new_group(api, acct.token, "B")["id"]
    c1, c2, c3 = new_code(acct, a), new_code(acct, a), new_code(acct)
    assert (count(scope, a), count(scope, b)) == (2, 0)

    r = api.request("POST", f"/api/groups/{b}/codes", acct.token, json={"code_ids": [c1, c3, c3]})
    assert r.status == 200, r.body
    assert r.json()["code_count"] == 2 and sorted(r.json()["code_ids"]) == sorted([c1, c3])
    assert (count(scope, a), count(scope, b)) == (1, 2)
    assert (item(scope, f"CODE#{c1}") or {})["group_id"] == b
    assert [e["event_type"] for e in events_for(c3)] == ["code.created", "code.updated"]
    # moving a code already in the group changes nothing
    r = api.request("POST", f"/api/groups/{b}/codes", acct.token, json={"code_ids": [c1]})
    assert r.json()["code_count"] == 2 and count(scope, a) == 1

    # grace codes keep their group and count; expiry takes them out
    codes.soft_delete(acct.caller(), c2, NOW)
    assert count(scope, a) == 1 and group_repo.code_ids(scope, a) == [c2]
    assert codes.expire(scope, c2, NOW + 91 * 86_400)
    assert count(scope, a) == 0 and group_repo.code_ids(scope, a) == []
    assert api.request("GET", f"/api/groups/{a}", acct.token).json()["code_ids"] == []

    # PATCH of the code's group_id, and ungrouping one through the group route
    codes.update(acct.caller(), c3, {"group_id": a}, NOW)
    assert (count(scope, a), count(scope, b)) == (1, 1)
    r = api.request("DELETE", f"/api/groups/{b}/codes/{c1}", acct.token)
    assert r.status == 200 and r.json()["code_count"] == 0 and r.json()["code_ids"] == []
    assert "group_id" not in (item(scope, f"CODE#{c1}") or {})
    # not in this group (any more): 404
    r = api.request("DELETE", f"/api/groups/{b}/codes/{c1}", acct.token)
    assert (r.status, r.json()) == (404, {"error": "not_found", "message": MESSAGES["not_found"]})
    assert_counts_match(scope)


def test_move_checks_every_id_first_and_applies_nothing_on_failure(api: Any, make_account: Any) -> None:
    acct, other = make_account(), make_account()
    scope = user_scope(acct.user_id)
    a, b = new_group(api, acct.token, "A")["id"], new_group(api, acct.token, "B")["id"]
    mine, grace = new_code(acct, a), new_code(acct)
    theirs = new_code(other)
    codes.soft_delete(acct.caller(), grace, NOW)

    for ids in ([mine, theirs], [theirs, mine], [mine, "not-an-id"], [mine, "0" * 36]):
        r = api.request("POST", f"/api/groups/{b}/codes", acct.token, json={"code_ids": ids})
        assert (r.status, r.json()) == (404, {"error": "not_found", "message": MESSAGES["not_found"]}), ids
    r = api.request("POST", f"/api/groups/{b}/codes", acct.token, json={"code_ids": [mine, grace]})
    assert (r.status, r.json()) == (409, {"error": "code_not_editable", "status": "grace",
                                          "message": MESSAGES["code_not_editable"]})
    assert (item(scope, f"CODE#{mine}") or {})["group_id"] == a
    assert (count(scope, a), count(scope, b)) == (1, 0)
    assert "group_id" not in (item(user_scope(other.user_id), f"CODE#{theirs}") or {})
    for body, field in (({"code_ids": []}, "code_ids"), ({"code_ids": "x"}, "code_ids"), ({}, "code_ids"),
                        ({"code_ids": [mine], "x": 1}, "x")):
        r = api.request("POST", f"/api/groups/{b}/codes", acct.token, json=body)
        assert (r.status, r.json()["field"]) == (400, field)
    # an unknown group is 404 even with valid codes
    r = api.request("POST", f"/api/groups/{'0' * 36}/codes", acct.token, json={"code_ids": [mine]})
    assert r.status == 404


def test_delete_group_ungroups_its_codes_grace_included(api: Any, make_account: Any) -> None:
    acct = make_account()
    scope = user_scope(acct.user_id)
    g = new_group(api, acct.token, "Doomed")
    live, grace = new_code(acct, g["id"]), new_code(acct, g["id"])
    codes.soft_delete(acct.caller(), grace, NOW)
    r = api.request("DELETE", f"/api/groups/{g['id']}", acct.token)
    assert r.status == 200, r.body
    body = r.json()
    assert body["id"] == g["id"] and body["deleted"] is True and body["code_count"] == 0
    assert sorted(body["ungrouped_code_ids"]) == sorted([live, grace])
    assert item(scope, f"GROUP#{g['id']}") is None and item(scope, "GROUPNAME#doomed") is None
    for code_id, status in ((live, "active"), (grace, "grace")):
        stored = item(scope, f"CODE#{code_id}") or {}
        assert "group_id" not in stored and stored["status"] == status and stored["version"] >= 2
        assert events_for(code_id)[-1]["event_type"] == "code.updated"
        assert events_for(code_id)[-1]["data"]["code"]["group_id"] is None
    # the codes stay and still work; the name is free; the group is gone
    assert api.request("GET", f"/api/groups/{g['id']}", acct.token).status == 404
    assert api.request("DELETE", f"/api/groups/{g['id']}", acct.token).json() == {"error": "not_found",
                                                                                  "message": MESSAGES["not_found"]}
    assert new_group(api, acct.token, "doomed")["code_count"] == 0
    updated = codes.update(acct.caller(), live, {"label": "still editable"}, NOW)
    assert updated["group_id"] is None


def test_concurrent_moves_keep_code_count_exact(make_account: Any) -> None:
    acct = make_account()
    caller = acct.caller()
    a = groups.create(caller, {"name": "A"}, NOW)["id"]
    b = groups.create(caller, {"name": "B"}, NOW)["id"]
    ids = [new_code(acct, a) for _ in range(6)]

    def shuffle(i: int) -> None:
        target = (a, b)[i % 2]
        groups.add_codes(caller, target, [ids[i % 6], ids[(i + 1) % 6]], NOW)

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(shuffle, range(18)))
    assert count(caller.scope, a) + count(caller.scope, b) == 6
    assert_counts_match(caller.scope)


def _team(make_account: Any) -> tuple[Any, Any, Any, str]:
    owner, admin, member = make_account("team"), make_account(), make_account()
    team_id = accounts.create_team(owner.user_id, "Crew", "team", NOW)
    accounts.add_member(team_id, admin.user_id, "admin", NOW)
    accounts.add_member(team_id, member.user_id, "member", NOW)
    for acct in (owner, admin, member):
        accounts.use_team(acct.user_id, team_id)
    return owner, admin, member, team_id


def test_roles_in_team_context(api: Any, make_account: Any) -> None:
    owner, admin, member, team_id = _team(make_account)
    g = new_group(api, admin.token, "Team group")
    code_id = new_code(owner)
    assert (item(f"TEAM#{team_id}", f"GROUP#{g['id']}") or {})["name"] == "Team group"
    denied = {"error": "insufficient_role", "role": "member", "required": "admin",
              "message": MESSAGES["insufficient_role"]}
    attempts = [("POST", "/api/groups", {"name": "Nope"}),
                ("PATCH", f"/api/groups/{g['id']}", {"name": "Renamed"}),
                ("POST", f"/api/groups/{g['id']}/codes", {"code_ids": [code_id]}),
                ("DELETE", f"/api/groups/{g['id']}/codes/{code_id}", None),
                ("DELETE", f"/api/groups/{g['id']}", None)]
    for method, path, body in attempts:
        r = api.request(method, path, member.token, json=body)
        assert (r.status, r.json()) == (403, denied), (method, path)
    # reads are open to members; nothing changed
    assert api.request("GET", "/api/groups", member.token).json()["groups"] == [g]
    assert api.request("GET", f"/api/groups/{g['id']}", member.token).json()["code_ids"] == []
    # owner and admin may mutate
    r = api.request("POST", f"/api/groups/{g['id']}/codes", owner.token, json={"code_ids": [code_id]})
    assert r.status == 200 and r.json()["code_ids"] == [code_id]
    assert api.request("DELETE", f"/api/groups/{g['id']}", admin.token).status == 200
    # team data is not the personal scope's, and back in personal context it is invisible
    accounts.use_team(admin.user_id, None)
    assert api.request("GET", "/api/groups", admin.token).json() == {"groups": []}
    assert new_group(api, admin.token, "Team group")["code_count"] == 0  # names are per scope


def test_plan_status_grace_works_expired_is_402(api: Any, make_account: Any) -> None:
    acct = make_account()
    scope = user_scope(acct.user_id)
    g = new_group(api, acct.token, "G")
    accounts.set_plan(scope, None, "grace", NOW)
    assert api.request("PATCH", f"/api/groups/{g['id']}", acct.token, json={"description": "d"}).status == 200
    accounts.set_plan(scope, None, "expired", NOW)
    for method, path, body in (("GET", "/api/groups", None), ("POST", "/api/groups", {"name": "x"}),
                               ("GET", f"/api/groups/{g['id']}", None),
                               ("DELETE", f"/api/groups/{g['id']}", None)):
        r = api.request(method, path, acct.token, json=body)
        assert (r.status, r.json()) == (402, {"error": "plan_expired", "plan": "business",
                                              "message": MESSAGES["plan_expired"]}), path
    assert item(scope, f"GROUP#{g['id']}") is not None


def test_idempotency_key_on_create(api: Any, make_account: Any) -> None:
    acct = make_account()
    headers = {"Idempotency-Key": "grp-1"}
    first = api.request("POST", "/api/groups", acct.token, json={"name": "Once"}, headers=headers)
    again = api.request("POST", "/api/groups", acct.token, json={"name": "Once"}, headers=headers)
    assert first.status == again.status == 201 and first.json() == again.json()
    other = api.request("POST", "/api/groups", acct.token, json={"name": "Twice"}, headers=headers)
    assert (other.status, other.json()["error"]) == (409, "idempotency_conflict")
    assert len(groups.list_groups(user_scope(acct.user_id))) == 1


def test_unknown_ids_and_methods(api: Any, make_account: Any) -> None:
    token = make_account().token
    for path in ("/api/groups/nope", f"/api/groups/{'a' * 2000}", f"/api/groups/{'0' * 36}"):
        assert api.request("GET", path, token).json() == {"error": "not_found", "message": MESSAGES["not_found"]}
    r = api.request("PUT", "/api/groups", token, json={"name": "x"})
    assert (r.status, r.json()) == (405, {"error": "method_not_allowed", "message": MESSAGES["method_not_allowed"]})


def test_group_items_live_in_the_scope_partition(make_account: Any, table: str) -> None:
    """Access pattern 21: one Query of the scope's partition, no Scan."""
    acct = make_account()
    caller = acct.caller()
    made = groups.create(caller, {"name": "Q"}, NOW)
    client = boto3.client("dynamodb")
    out = client.query(TableName=table, KeyConditionExpression="pk = :pk AND begins_with(sk, :p)",
                       ExpressionAttributeValues={":pk": {"S": caller.scope}, ":p": {"S": "GROUP"}})
    assert sorted(i["sk"]["S"] for i in out["Items"]) == [f"GROUP#{made['id']}", "GROUPNAME#q"]
