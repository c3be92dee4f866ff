"""Teams (docs/api.md section 9), keys and usage (section 11) through the real
authorizer and API handler, against DynamoDB Local."""

from __future__ import annotations

import time
from typing import Any

import pytest

from qrpro.data import accounts, teams
from qrpro.data import keys as k
from qrpro.data.accounts import AccountError
from qrpro.data.aws import ddb
from qrpro.data.table import key, table, to_item
from qrpro.domain.apikeys import token_hash
from qrpro.domain.clock import month_bucket, next_midnight
from qrpro.domain.errors import MESSAGES
from qrpro.domain.scope import team_scope, user_scope
from qrpro.services import codes
from qrpro.services import keys as key_service

NOW = int(time.time())


def test_teams_list_one_and_members(api: Any, make_account: Any) -> None:
    alice, bob, carol = (make_account(email=f"{n}-{NOW}@example.com") for n in ("alice", "bob", "carol"))
    zeta = accounts.create_team(alice.user_id, "zeta", "team", NOW)
    alpha = accounts.create_team(bob.user_id, "Alpha", "agency", NOW + 1)
    accounts.add_member(alpha, alice.user_id, "member", NOW + 2)
    accounts.add_member(alpha, carol.user_id, "admin", NOW + 3)

    r = api.request("GET", "/api/teams", alice.token)
    assert r.status == 200, r.body
    assert r.json() == {"teams": [
        {"id": alpha, "name": "Alpha", "plan": "agency", "role": "member", "member_count": 3},
        {"id": zeta, "name": "zeta", "plan": "team", "role": "owner", "member_count": 1},
    ], "current_team_id": None}
    accounts.use_team(alice.user_id, alpha)
    assert api.request("GET", "/api/teams", alice.token).json()["current_team_id"] == alpha

    r = api.request("GET", f"/api/teams/{alpha}", alice.token)
    assert r.json() == {"id": alpha, "name": "Alpha", "plan": "agency", "role": "member", "member_count": 3}
    r = api.request("GET", f"/api/teams/{alpha}/members", alice.token)
    assert r.json() == {"members": [
        {"user_id": bob.user_id, "email": f"bob-{NOW}@example.com", "role": "owner", "joined_at": NOW + 1},
        {"user_id": alice.user_id, "email": f"alice-{NOW}@example.com", "role": "member", "joined_at": NOW + 2},
        {"user_id": carol.user_id, "email": f"carol-{NOW}@example.com", "role": "admin", "joined_at": NOW + 3},
    ]}
    # not a member: indistinguishable from no team at all
    for path in (f"/api/teams/{zeta}", f"/api/teams/{zeta}/members", f"/api/teams/{'0' * 36}",
                 "/api/teams/nope/members"):
        r = api.request("GET", path, carol.token)
        assert (r.status, r.json()) == (404, {"error": "not_found", "message": MESSAGES["not_found"]}), path
    assert [t["id"] for t in api.request("GET", "/api/teams", carol.token).json()["teams"]] == [alpha]


def test_membership_is_decided_by_the_member_item(api: Any, make_account: Any) -> None:
    """A stale link (membership ended) shows no team and gives 404."""
    owner, gone = make_account(), make_account()
    team_id = accounts.create_team(owner.user_id, "T", "team", NOW)
    accounts.add_member(team_id, gone.user_id, "admin", NOW)
    ddb().delete_item(TableName=table(), Key=key(k.pk_team(team_id), k.sk_member(gone.user_id)))
    assert api.request("GET", "/api/teams", gone.token).json() == {"teams": [], "current_team_id": None}
    assert api.request("GET", f"/api/teams/{team_id}", gone.token).status == 404


def test_usage_reports_the_enforced_counters(api: Any, make_account: Any) -> None:
    acct = make_account()
    scope = user_scope(acct.user_id)
    for _ in range(3):
        codes.create(acct.caller(), {"url": "https://example.com"}, NOW)
    doomed = codes.create(acct.caller(), {"url": "https://example.com"}, NOW)
    codes.soft_delete(acct.caller(), doomed["id"], NOW)  # grace does not count toward the cap
    api.request("GET", "/api/user", acct.token)

    r = api.request("GET", "/api/user/usage", acct.token)
    assert r.status == 200, r.body
    body = r.json()
    now = int(time.time())
    used_header = int(r.headers["X-RateLimit-Limit"]) - int(r.headers["X-RateLimit-Remaining"])
    assert body == {
        "requests_today": {"used": used_header, "limit": 1000, "reset_at": next_midnight(now)},
        "codes": {"used": 3, "limit": 500},
        "scans_this_month": {"used": 0, "cap": 1_000_000, "month": month_bucket(now)},
    }
    assert used_header == 2  # this request is counted
    # the scan counter the aggregator writes
    ddb().put_item(TableName=table(), Item=to_item({
        "pk": k.pk_scope_agg(scope), "sk": k.sk_month(month_bucket(now)), "used": 123_456, "cap_notified": False}))
    ddb().put_item(TableName=table(), Item=to_item({
        "pk": k.pk_scope_agg(scope), "sk": "M#2000-01", "used": 9}))
    body = api.request("GET", "/api/user/usage", acct.token).json()
    assert body["scans_this_month"]["used"] == 123_456 and body["requests_today"]["used"] == 3


def test_usage_in_team_context_is_the_teams(api: Any, make_account: Any) -> None:
    owner, member = make_account(), make_account()
    team_id = accounts.create_team(owner.user_id, "T", "agency", NOW)
    accounts.add_member(team_id, member.user_id, "member", NOW)
    accounts.use_team(owner.user_id, team_id)
    codes.create(owner.caller(), {"url": "https://example.com/1"}, NOW)
    codes.create(owner.caller(), {"url": "https://example.com/2"}, NOW)
    accounts.use_team(owner.user_id, None)
    codes.create(owner.caller(), {"url": "https://example.com/personal"}, NOW)
    accounts.use_team(member.user_id, team_id)
    ddb().put_item(TableName=table(), Item=to_item({
        "pk": k.pk_scope_agg(team_scope(team_id)), "sk": k.sk_month(month_bucket(int(time.time()))), "used": 77}))

    r = api.request("GET", "/api/user/usage", member.token)
    body = r.json()
    assert body["codes"] == {"used": 2, "limit": 10_000}
    assert body["scans_this_month"]["used"] == 77 and body["scans_this_month"]["cap"] == 30_000_000
    # the rate limit stays per key, with the team plan's budget
    assert body["requests_today"]["used"] == 1 and body["requests_today"]["limit"] == 50_000
    assert r.headers["X-RateLimit-Limit"] == "50000"


def test_keys_list_without_secrets(api: Any, make_account: Any) -> None:
    acct = make_account()
    later = int(time.time()) + 1000
    second_id, second = key_service.create(acct.user_id, "ci", later)
    assert api.request("GET", "/api/user", second).status == 200  # the authorizer stamps last_used_at
    r = api.request("GET", "/api/keys", acct.token)
    assert r.status == 200, r.body
    body = r.json()
    assert body["allowed"] is True and body["plan"] == "business"
    listed = {x["id"]: x for x in body["keys"]}
    assert set(listed) == {acct.key_id, second_id}
    assert [x["id"] for x in body["keys"]] == [second_id, acct.key_id]  # newest first
    for x, token in ((listed[acct.key_id], acct.token), (listed[second_id], second)):
        assert set(x) == {"id", "label", "prefix", "created_at", "last_used_at"}
        assert x["prefix"] == token[:16]
        assert abs(x["last_used_at"] - int(time.time())) < 600
    assert listed[second_id]["label"] == "ci" and listed[second_id]["created_at"] == later
    for secret in (acct.token, second, token_hash(acct.token), token_hash(second)):
        assert secret not in r.body.decode()


def test_revoke_own_key_only_and_it_fails_at_once(api: Any, make_account: Any) -> None:
    acct, other = make_account(), make_account()
    spare_id, spare = key_service.create(acct.user_id, "spare", NOW)
    assert api.request("GET", "/api/user", spare).status == 200
    # another user's key, a malformed id, an unknown id: 404, nothing revoked
    for key_id in (other.key_id, "nope", "0" * 36):
        r = api.request("DELETE", f"/api/keys/{key_id}", acct.token)
        assert (r.status, r.json()) == (404, {"error": "not_found", "message": MESSAGES["not_found"]}), key_id
    assert api.request("GET", "/api/user", other.token).status == 200

    r = api.request("DELETE", f"/api/keys/{spare_id}", acct.token)
    assert (r.status, r.json()) == (200, {"id": spare_id, "revoked": True})
    r = api.request("GET", "/api/user", spare)
    assert (r.status, r.json()) == (401, {"error": "invalid_api_key", "message": MESSAGES["invalid_api_key"]})
    assert [x["id"] for x in api.request("GET", "/api/keys", acct.token).json()["keys"]] == [acct.key_id]
    assert api.request("DELETE", f"/api/keys/{spare_id}", acct.token).status == 404
    # revoking the key in use works too; it is dead for the next request
    assert api.request("DELETE", f"/api/keys/{acct.key_id}", acct.token).json()["revoked"] is True
    assert api.request("GET", "/api/keys", acct.token).json() == {"error": "invalid_api_key",
                                                                  "message": MESSAGES["invalid_api_key"]}


def test_keys_are_the_users_in_team_context(api: Any, make_account: Any) -> None:
    owner, member = make_account("team"), make_account()
    team_id = accounts.create_team(owner.user_id, "T", "agency", NOW)
    accounts.add_member(team_id, member.user_id, "member", NOW)
    accounts.use_team(member.user_id, team_id)
    body = api.request("GET", "/api/keys", member.token).json()
    assert [x["id"] for x in body["keys"]] == [member.key_id] and body["plan"] == "agency"
    # a member may manage their own keys (not a mutation of team data); not the owner's
    assert api.request("DELETE", f"/api/keys/{owner.key_id}", member.token).status == 404
    spare_id, _ = key_service.create(member.user_id, None, NOW)
    assert api.request("DELETE", f"/api/keys/{spare_id}", member.token).status == 200


def test_a_key_for_an_unknown_user_is_an_account_error_and_writes_nothing(make_account: Any) -> None:
    acct = make_account()
    with pytest.raises(AccountError, match="no user"):
        key_service.create("0b4f7c1e-8d2a-4e5b-9c3d-1a2b3c4d5e6f", "ci", NOW)
    items = ddb().scan(TableName=table(), ProjectionExpression="pk, sk")["Items"]
    assert sorted(i["pk"]["S"] for i in items if i["sk"]["S"] == "APIKEY" or i["sk"]["S"].startswith("KEY#")) \
        == sorted([k.pk_apikey(token_hash(acct.token)), k.pk_user(acct.user_id)])


def test_expired_plan_keeps_keys_but_not_teams_or_usage(api: Any, make_account: Any) -> None:
    acct = make_account()
    spare_id, _ = key_service.create(acct.user_id, None, NOW)
    accounts.create_team(acct.user_id, "T", "team", NOW)
    accounts.set_plan(user_scope(acct.user_id), None, "expired", NOW)
    body = api.request("GET", "/api/keys", acct.token).json()
    assert len(body["keys"]) == 2 and body["plan"] == "business"
    assert api.request("DELETE", f"/api/keys/{spare_id}", acct.token).json() == {"id": spare_id, "revoked": True}
    for path in ("/api/user/usage", "/api/teams"):
        r = api.request("GET", path, acct.token)
        assert (r.status, r.json()) == (402, {"error": "plan_expired", "plan": "business",
                                              "message": MESSAGES["plan_expired"]}), path
    accounts.set_plan(user_scope(acct.user_id), None, "grace", NOW)
    assert api.request("GET", "/api/user/usage", acct.token).status == 200
    assert len(api.request("GET", "/api/teams", acct.token).json()["teams"]) == 1


def test_admin_account_writes_report_the_condition_that_failed(make_account: Any,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A taken email is the admin's AccountError; a transaction conflict is retried, not taken for one;
    adding a member twice at once counts them once."""
    from botocore.exceptions import ClientError

    import qrpro.data.table as tables

    make_account(email=f"taken-{NOW}@example.com")
    with pytest.raises(AccountError, match="exists already"):
        accounts.create_account(f"taken-{NOW}@example.com", "business", NOW)

    real = tables.ddb()
    conflicts = iter([True])

    class Conflicting:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def transact_write_items(self, **kw: Any) -> Any:
            if next(conflicts, False):
                raise ClientError({"Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                                   "CancellationReasons": [{"Code": "TransactionConflict"}, {"Code": "None"}]},
                                  "TransactWriteItems")
            return real.transact_write_items(**kw)

    monkeypatch.setattr(tables, "ddb", Conflicting)
    user_id = accounts.create_account(f"conflict-{NOW}@example.com", "business", NOW)
    monkeypatch.undo()
    assert accounts.get_user(user_id) is not None

    owner, joiner = make_account(), make_account()
    team_id = accounts.create_team(owner.user_id, "race", "team", NOW)
    accounts.add_member(team_id, joiner.user_id, "member", NOW)
    # the second call read "not a member yet" before the first one's write landed
    monkeypatch.setattr(accounts, "member", lambda team_id, user_id: None)
    accounts.add_member(team_id, joiner.user_id, "admin", NOW + 1)
    monkeypatch.undo()
    assert accounts.get_team(team_id)["member_count"] == 2  # type: ignore[index]
    assert teams.member(team_id, joiner.user_id).role == "admin"  # type: ignore[union-attr]
