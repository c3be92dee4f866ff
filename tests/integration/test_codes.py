"""The code lifecycle through the real pipeline (authorizer + API handler)
against DynamoDB Local: docs/api.md section 6 but the QR image."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from qrpro.data import accounts
from qrpro.data import codes as code_repo
from qrpro.data import keys as k
from qrpro.data.aws import ddb
from qrpro.data.table import from_item, key, table
from qrpro.domain.codes import BASE58, GRACE_SECONDS
from qrpro.domain.errors import MESSAGES, PlanLimitReached
from qrpro.domain.scope import user_scope
from qrpro.services import codes

URL = "https://example.com/landing"


def create(api: Any, token: str, **fields: Any) -> Any:
    return api.request("POST", "/api/codes", token, json={"url": URL, **fields})


def stored(pk: str, sk: str) -> dict[str, Any] | None:
    return from_item(ddb().get_item(TableName=table(), Key=key(pk, sk), ConsistentRead=True).get("Item"))


def test_create_returns_the_code_object_and_writes_the_shortcode_projection(api: Any, make_account: Any) -> None:
    acct = make_account()
    r = create(api, acct.token, label="Q2 campaign", tag=" q2,print ", frame_style="scan-me", frame_text="SCAN ME",
               logo_key="instagram")
    assert r.status == 201, r.body
    code = r.json()
    assert set(code) == set(code_repo.PUBLIC_FIELDS)
    assert len(code["shortcode"]) == 7 and set(code["shortcode"]) <= set(BASE58)
    assert code["short_url"] == f"https://aqr.net/{code['shortcode']}"
    assert (code["url"], code["label"], code["tag"], code["status"]) == (URL, "Q2 campaign", "q2,print", "active")
    assert (code["qr_type"], code["grace_until"], code["group_id"], code["scans_30d"]) == ("url", None, None, 0)
    short = stored(k.pk_short(code["shortcode"]), "SHORT")
    assert short is not None
    assert (short["code_id"], short["url"], short["status"]) == (code["id"], URL, "active")
    assert stored(user_scope(acct.user_id), k.PROFILE)["codes_used"] == 1  # type: ignore[index]
    assert api.request("GET", f"/api/codes/{code['id']}", acct.token).json() == code


@pytest.mark.parametrize(("url", "why"), [
    ("javascript:alert(1)", "scheme"), ("data:text/html,hi", "scheme"), ("file:///etc/passwd", "scheme"),
    ("vbscript:x", "scheme"), ("ftp://example.com", "scheme"), ("example.com/x", "scheme"),
    ("https://user:pw@example.com/", "credentials"), ("https://user@example.com/", "credentials"),
    ("https://aqr.net/abc", "short-link"), ("https://AQR.NET./x", "short-link"),
    ("https://", "host"), ("https://exa mple.com", "spaces"), ("https://example.com/" + "a" * 2040, "2048"),
])
def test_bad_destinations_are_400_on_url_and_write_nothing(api: Any, make_account: Any, url: str, why: str) -> None:
    acct = make_account()
    r = api.request("POST", "/api/codes", acct.token, json={"url": url})
    body = r.json()
    assert (r.status, body["error"], body["field"]) == (400, "validation_error", "url"), body
    assert why in body["message"] or why in {"scheme", "host", "spaces", "2048"}
    assert api.request("GET", "/api/codes", acct.token).json()["codes"] == []


def test_unknown_fields_and_bad_values_name_the_field(api: Any, make_account: Any) -> None:
    token = make_account().token
    r = create(api, token, colour="red")
    assert r.json() == {"error": "validation_error", "field": "colour", "message": "unknown field"}
    for field, value in [("label", "x" * 201), ("tag", "t" * 501), ("qr_type", "URL!"), ("logo_key", "apple"),
                         ("frame_style", "round"), ("frame_text", "x" * 41), ("group_id", "nope")]:
        r = create(api, token, **{field: value})
        assert (r.status, r.json()["field"]) == (400, field), (field, r.body)
    r = api.request("POST", "/api/codes", token, json={})
    assert (r.status, r.json()["field"]) == (400, "url")
    r = api.request("POST", "/api/codes", token, body=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status == 400 and r.json()["error"] == "validation_error"


def test_patch_changes_url_status_and_records_history(api: Any, make_account: Any) -> None:
    acct = make_account()
    code = create(api, acct.token).json()
    r = api.request("PATCH", f"/api/codes/{code['id']}", acct.token, json={"url": "https://example.org/new"})
    assert r.status == 200 and r.json()["url"] == "https://example.org/new"
    assert r.json()["updated_at"] >= code["updated_at"]
    assert stored(k.pk_short(code["shortcode"]), "SHORT")["url"] == "https://example.org/new"  # type: ignore[index]
    r = api.request("PATCH", f"/api/codes/{code['id']}", acct.token, json={"status": "paused"})
    assert r.json()["status"] == "paused"
    assert stored(k.pk_short(code["shortcode"]), "SHORT")["status"] == "paused"  # type: ignore[index]
    hist = api.request("GET", f"/api/codes/{code['id']}/history", acct.token).json()["history"]
    assert [(h["field"], h["from"], h["to"], h["by"]) for h in hist] == [
        ("status", "active", "paused", acct.user_id), ("url", URL, "https://example.org/new", acct.user_id),
        ("created", None, URL, acct.user_id)]  # history ends with the creation (docs/api.md 6.8)
    r = api.request("PATCH", f"/api/codes/{code['id']}", acct.token, json={"status": "grace"})
    assert (r.status, r.json()["field"]) == (400, "status")
    r = api.request("PATCH", f"/api/codes/{code['id']}", acct.token, json={"url": None})
    assert (r.status, r.json()["field"]) == (400, "url")


def test_delete_enters_grace_then_409_then_reactivate(api: Any, make_account: Any) -> None:
    acct = make_account()
    code = create(api, acct.token).json()
    before = int(time.time())
    r = api.request("DELETE", f"/api/codes/{code['id']}", acct.token)
    body = r.json()
    assert r.status == 200 and body["status"] == "grace"
    assert before + GRACE_SECONDS <= body["grace_until"] <= int(time.time()) + GRACE_SECONDS
    assert stored(user_scope(acct.user_id), k.PROFILE)["codes_used"] == 0  # type: ignore[index]
    for method, path, payload in [("PATCH", "", {"label": "x"}), ("DELETE", "", None)]:
        r = api.request(method, f"/api/codes/{code['id']}{path}", acct.token, json=payload)
        assert (r.status, r.json()) == (409, {"error": "code_not_editable", "status": "grace",
                                              "message": MESSAGES["code_not_editable"]})
    r = api.request("POST", f"/api/codes/{code['id']}/reactivate", acct.token)
    assert r.status == 200 and r.json()["status"] == "active" and r.json()["grace_until"] is None
    assert stored(user_scope(acct.user_id), k.PROFILE)["codes_used"] == 1  # type: ignore[index]
    # Reactivating a live code is a no-op.
    assert api.request("POST", f"/api/codes/{code['id']}/reactivate", acct.token).json()["status"] == "active"
    statuses = [h["to"] for h in api.request("GET", f"/api/codes/{code['id']}/history", acct.token).json()["history"]]
    assert statuses == ["active", "grace", URL]


def test_other_tenants_codes_are_404(api: Any, make_account: Any) -> None:
    owner, other = make_account(), make_account()
    code = create(api, owner.token).json()
    for method, path, payload in [("GET", "", None), ("PATCH", "", {"label": "x"}), ("DELETE", "", None),
                                  ("POST", "/reactivate", None), ("GET", "/history", None)]:
        r = api.request(method, f"/api/codes/{code['id']}{path}", other.token, json=payload)
        assert (r.status, r.json()) == (404, {"error": "not_found", "message": MESSAGES["not_found"]}), (method, path)
    assert api.request("GET", "/api/codes/not-a-uuid", owner.token).status == 404
    assert api.request("GET", f"/api/codes/{code['id']}", owner.token).json()["label"] == ""


def test_plan_cap_holds_under_50_parallel_creates(make_account: Any) -> None:
    acct = make_account("business")
    caller = acct.caller()
    scope = caller.scope
    # Stand at limit - 1 without writing 499 codes: set the counter directly.
    ddb().update_item(TableName=table(), Key=key(scope, k.PROFILE), UpdateExpression="SET codes_used = :n",
                      ExpressionAttributeValues={":n": {"N": "499"}})

    def one(_: int) -> str:
        try:
            codes.create(caller, {"url": URL}, int(time.time()))
            return "created"
        except PlanLimitReached as err:
            assert err.body() == {"error": "plan_limit", "plan": "business", "limit": 500, "current": 500,
                                  "message": MESSAGES["plan_limit"]}
            return "limited"

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(one, range(50)))
    assert results.count("created") == 1 and results.count("limited") == 49
    assert code_repo.codes_used(scope) == 500
    assert len(list(code_repo.all_items(scope))) == 1


def test_plan_limit_over_http(api: Any, make_account: Any) -> None:
    acct = make_account("business")
    ddb().update_item(TableName=table(), Key=key(user_scope(acct.user_id), k.PROFILE),
                      UpdateExpression="SET codes_used = :n", ExpressionAttributeValues={":n": {"N": "500"}})
    r = create(api, acct.token)
    assert (r.status, r.json()) == (402, {"error": "plan_limit", "plan": "business", "limit": 500, "current": 500,
                                          "message": MESSAGES["plan_limit"]})


def test_reactivate_checks_the_cap(api: Any, make_account: Any) -> None:
    acct = make_account()
    code = create(api, acct.token).json()
    api.request("DELETE", f"/api/codes/{code['id']}", acct.token)
    ddb().update_item(TableName=table(), Key=key(user_scope(acct.user_id), k.PROFILE),
                      UpdateExpression="SET codes_used = :n", ExpressionAttributeValues={":n": {"N": "500"}})
    r = api.request("POST", f"/api/codes/{code['id']}/reactivate", acct.token)
    assert (r.status, r.json()["error"]) == (402, "plan_limit")
    assert api.request("GET", f"/api/codes/{code['id']}", acct.token).json()["status"] == "grace"


def test_list_filters_and_pagination(api: Any, make_account: Any) -> None:
    acct = make_account()
    made = []
    for i in range(7):
        made.append(create(api, acct.token, label=f"code {i}", tag="print,q2" if i % 2 else "web").json())
    api.request("PATCH", f"/api/codes/{made[0]['id']}", acct.token, json={"status": "paused"})
    listing = api.request("GET", "/api/codes", acct.token).json()
    assert [c["id"] for c in listing["codes"]] == [c["id"] for c in reversed(made)]
    assert (listing["plan"], listing["plan_limit"], listing["scope"], listing["next_cursor"]) == (
        "business", 500, {"type": "user"}, None)
    by_status = api.request("GET", "/api/codes?status=paused", acct.token).json()["codes"]
    assert [c["id"] for c in by_status] == [made[0]["id"]]
    by_tag = api.request("GET", "/api/codes?tag=print", acct.token).json()["codes"]
    assert {c["id"] for c in by_tag} == {made[i]["id"] for i in (1, 3, 5)}
    assert api.request("GET", "/api/codes?tag=prin", acct.token).json()["codes"] == []
    by_q = api.request("GET", f"/api/codes?q={made[2]['shortcode']}", acct.token).json()["codes"]
    assert [c["id"] for c in by_q] == [made[2]["id"]]
    seen, cursor = [], None
    while True:
        page = api.request("GET", "/api/codes?limit=3" + (f"&cursor={cursor}" if cursor else ""), acct.token).json()
        seen += [c["id"] for c in page["codes"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [c["id"] for c in reversed(made)]
    r = api.request("GET", "/api/codes?limit=0", acct.token)
    assert (r.status, r.json()["field"]) == (400, "limit")


def test_cursor_of_another_tenant_is_rejected(api: Any, make_account: Any) -> None:
    a, b = make_account(), make_account()
    for _ in range(3):
        create(api, a.token)
    cursor = api.request("GET", "/api/codes?limit=1", a.token).json()["next_cursor"]
    assert cursor
    r = api.request("GET", f"/api/codes?cursor={cursor}", b.token)
    assert (r.status, r.json()["error"], r.json()["field"]) == (400, "validation_error", "cursor")
    r = api.request("GET", f"/api/codes?cursor={cursor[:-2]}xx", a.token)
    assert (r.status, r.json()["field"]) == (400, "cursor")


def test_import_validates_everything_first_then_checks_cap_once(api: Any, make_account: Any) -> None:
    acct = make_account()
    bad = [{"url": URL}, {"url": URL}, {"url": URL}, {"url": "javascript:x"}]
    r = api.request("POST", "/api/codes/import", acct.token, json=bad)
    assert (r.status, r.json()["field"]) == (400, "codes[3].url")
    assert api.request("GET", "/api/codes", acct.token).json()["codes"] == []
    for body in ({"url": URL, "label": "one"}, [{"url": URL}, {"url": URL}], {"codes": [{"url": URL}]}):
        r = api.request("POST", "/api/codes/import", acct.token, json=body)
        assert r.status == 201, r.body
        assert r.json()["count"] == len(r.json()["codes"]) >= 1
    assert len(api.request("GET", "/api/codes", acct.token).json()["codes"]) == 4
    ddb().update_item(TableName=table(), Key=key(user_scope(acct.user_id), k.PROFILE),
                      UpdateExpression="SET codes_used = :n", ExpressionAttributeValues={":n": {"N": "498"}})
    r = api.request("POST", "/api/codes/import", acct.token, json=[{"url": URL}] * 3)
    assert (r.status, r.json()) == (402, {"error": "plan_limit", "plan": "business", "limit": 500, "current": 498,
                                          "message": MESSAGES["plan_limit"]})
    assert len(api.request("GET", "/api/codes", acct.token).json()["codes"]) == 4
    r = api.request("POST", "/api/codes/import", acct.token, json=[{"url": URL}] * 1001)
    assert (r.status, r.json()["error"]) == (413, "payload_too_large")


@pytest.mark.parametrize(("body", "field", "fragment"), [
    ('url,label\nhttps://example.com/a,"never closed\n', "codes[0].label", "never closed"),
    ('url,label\nhttps://example.com/a,"A"B\n', "codes[0].label", "after the closing quote"),
    ('url,label\nhttps://example.com/a,ok\nhttps://example.com/b,x"y\n', "codes[1].label", "unquoted cell"),
])
def test_malformed_csv_import_is_refused_naming_row_and_column(api: Any, make_account: Any, body: str, field: str,
                                                                fragment: str) -> None:
    """Issue 16 (4): docs/security.md says "parsed strictly"; a lenient reader mangled these values."""
    acct = make_account()
    r = api.request("POST", "/api/codes/import", acct.token, body=body.encode(), headers={"Content-Type": "text/csv"})
    assert (r.status, r.json()["error"], r.json()["field"]) == (400, "validation_error", field), r.body
    assert fragment in r.json()["message"]
    assert api.request("GET", "/api/codes", acct.token).json()["codes"] == []


def test_import_wrapper_names_an_unknown_field_beside_codes(api: Any, make_account: Any) -> None:
    acct = make_account()
    r = api.request("POST", "/api/codes/import", acct.token, json={"codes": [{"url": URL}], "x": 1})
    assert (r.status, r.json()["field"], r.json()["message"].split(" (")[0]) == (400, "x", "unknown field")
    r = api.request("POST", "/api/codes/import", acct.token, json={"codes": {"url": URL}})
    assert (r.status, r.json()["field"]) == (400, "codes")
    assert api.request("GET", "/api/codes", acct.token).json()["codes"] == []


def test_idempotency_key_replays_and_conflicts(api: Any, make_account: Any) -> None:
    acct = make_account()
    headers = {"Idempotency-Key": "create-1"}
    first = api.request("POST", "/api/codes", acct.token, json={"url": URL}, headers=headers)
    again = api.request("POST", "/api/codes", acct.token, json={"url": URL}, headers=headers)
    lower = api.request("POST", "/api/codes", acct.token, json={"url": URL}, headers={"idempotency-key": "create-1"})
    assert first.status == again.status == lower.status == 201 and first.json() == again.json() == lower.json()
    assert len(api.request("GET", "/api/codes", acct.token).json()["codes"]) == 1
    other = api.request("POST", "/api/codes", acct.token, json={"url": URL + "?x"}, headers=headers)
    assert (other.status, other.json()["error"]) == (409, "idempotency_conflict")
    # Another user may use the same key: keys are per user.
    assert api.request("POST", "/api/codes", make_account().token, json={"url": URL}, headers=headers).status == 201
    r = api.request("POST", "/api/codes", acct.token, json={"url": URL}, headers={"Idempotency-Key": "x" * 256})
    assert (r.status, r.json()["field"]) == (400, "Idempotency-Key")
    imp = {"Idempotency-Key": "import-1"}
    a = api.request("POST", "/api/codes/import", acct.token, json=[{"url": URL}] * 2, headers=imp)
    b = api.request("POST", "/api/codes/import", acct.token, json=[{"url": URL}] * 2, headers=imp)
    assert a.json() == b.json() and len(api.request("GET", "/api/codes", acct.token).json()["codes"]) == 3


def test_idempotency_keys_are_scoped_by_scope_and_canonical_path(api: Any, make_account: Any) -> None:
    """Issue 16 (5): the same key and body in personal then team context creates in each scope; the
    same key on /api/codes/ (trailing slash) is the same request as on /api/codes."""
    owner = make_account("team")
    team_id = accounts.create_team(owner.user_id, "Acme", "team", int(time.time()))
    headers = {"Idempotency-Key": "same-key"}
    personal = api.request("POST", "/api/codes", owner.token, json={"url": URL}, headers=headers)
    slash = api.request("POST", "/api/codes/", owner.token, json={"url": URL}, headers=headers)
    assert personal.status == slash.status == 201 and personal.body == slash.body
    accounts.use_team(owner.user_id, team_id)
    team = api.request("POST", "/api/codes", owner.token, json={"url": URL}, headers=headers)
    assert team.status == 201 and team.json()["id"] != personal.json()["id"], team.body
    assert [c["id"] for c in api.request("GET", "/api/codes", owner.token).json()["codes"]] == [team.json()["id"]]
    accounts.use_team(owner.user_id, None)
    assert [c["id"] for c in api.request("GET", "/api/codes", owner.token).json()["codes"]] == [personal.json()["id"]]
    # the key is per operation too: the same key on another path is another request
    group = api.request("POST", "/api/groups", owner.token, json={"name": "G"}, headers=headers)
    assert group.status == 201 and "name" in group.json()


def test_bulk_applies_what_it_can(api: Any, make_account: Any) -> None:
    acct, other = make_account(), make_account()
    mine = [create(api, acct.token).json()["id"] for _ in range(3)]
    foreign = create(api, other.token).json()["id"]
    r = api.request("POST", "/api/codes/bulk", acct.token, json={"ids": [*mine, foreign], "action": "pause"})
    assert r.status == 200
    assert r.json() == {"updated": mine, "failed": [{"id": foreign, "error": "not_found"}]}
    assert {c["status"] for c in api.request("GET", "/api/codes", acct.token).json()["codes"]} == {"paused"}
    r = api.request("POST", "/api/codes/bulk", acct.token, json={"ids": mine[:1], "action": "delete"})
    assert r.json()["updated"] == mine[:1]
    r = api.request("POST", "/api/codes/bulk", acct.token, json={"ids": mine, "action": "resume"})
    assert r.json() == {"updated": mine[1:], "failed": [{"id": mine[0], "error": "code_not_editable"}]}
    r = api.request("POST", "/api/codes/bulk", acct.token, json={"ids": mine, "action": "move"})
    assert (r.status, r.json()["field"]) == (400, "group_id")
    r = api.request("POST", "/api/codes/bulk", acct.token, json={"ids": mine, "action": "archive"})
    assert (r.status, r.json()["field"]) == (400, "action")


def test_team_member_cannot_mutate_codes(api: Any, make_account: Any) -> None:
    owner, member = make_account("team"), make_account("business")
    now = int(time.time())
    team_id = accounts.create_team(owner.user_id, "Acme", "team", now)
    accounts.add_member(team_id, member.user_id, "member", now)
    accounts.use_team(member.user_id, team_id)
    accounts.use_team(owner.user_id, team_id)
    code = create(api, owner.token).json()
    r = create(api, member.token)
    assert (r.status, r.json()) == (403, {"error": "insufficient_role", "role": "member", "required": "admin",
                                          "message": MESSAGES["insufficient_role"]})
    assert api.request("GET", f"/api/codes/{code['id']}", member.token).status == 200
    listing = api.request("GET", "/api/codes", member.token).json()
    assert listing["scope"] == {"type": "team", "team_id": team_id, "role": "member"}
    assert listing["plan"] == "team" and [c["id"] for c in listing["codes"]] == [code["id"]]
    # The owner's personal codes are not in the team's scope.
    accounts.use_team(owner.user_id, None)
    assert api.request("GET", f"/api/codes/{code['id']}", owner.token).status == 404


def test_patch_never_stores_a_null_status(api: Any, make_account: Any) -> None:
    """Found by the fuzzer: {"status": null} used to store a code without a status."""
    acct = make_account()
    code = create(api, acct.token).json()
    r = api.request("PATCH", f"/api/codes/{code['id']}", acct.token, json={"status": None})
    assert (r.status, r.json()["field"]) == (400, "status")
    assert api.request("GET", f"/api/codes/{code['id']}", acct.token).json()["status"] == "active"
