"""Teams, roles, groups, keys and usage over HTTP on the local stack, set up
with the admin CLI the way an operator would."""

from __future__ import annotations

from qrpro.domain.errors import MESSAGES
from tests.e2e.conftest import Stack


def test_team_roles_groups_keys_and_usage_over_http(stack: Stack) -> None:
    owner, admin, member = stack.account("business"), stack.account("business"), stack.account("business")
    team_id = stack.admin("create-team", "--owner-id", owner["user_id"], "--name", "Print shop",
                          "--plan", "team")["team_id"]
    stack.admin("add-member", "--team-id", team_id, "--user-id", admin["user_id"], "--role", "admin")
    stack.admin("add-member", "--team-id", team_id, "--user-id", member["user_id"], "--role", "member")
    for who in (admin, member):
        stack.admin("use-team", "--user-id", who["user_id"], "--team-id", team_id)

    # a member reads but cannot mutate; an admin can
    r = stack.api("POST", "/api/groups", member["api_key"], json_body={"name": "Posters"})
    assert (r.status, r.json()) == (403, {"error": "insufficient_role", "role": "member", "required": "admin",
                                          "message": MESSAGES["insufficient_role"]})
    assert r.headers["X-RateLimit-Limit"] == "10000"  # the team's plan, metered per key
    r = stack.api("POST", "/api/groups", admin["api_key"], json_body={"name": "Posters", "color": "#FF8800"})
    assert r.status == 201, r.body
    group = r.json()
    assert (group["name"], group["color"], group["code_count"]) == ("Posters", "#FF8800", 0)
    r = stack.api("POST", "/api/groups", admin["api_key"], json_body={"name": "posters"})
    assert (r.status, r.json()["error"], r.json()["field"]) == (400, "validation_error", "name")
    assert stack.api("GET", "/api/groups", member["api_key"]).json() == {"groups": [group]}

    # the team's data is not the owner's personal data
    assert stack.api("GET", "/api/groups", owner["api_key"]).json() == {"groups": []}
    r = stack.api("GET", f"/api/groups/{group['id']}", owner["api_key"])
    assert (r.status, r.json()) == (404, {"error": "not_found", "message": MESSAGES["not_found"]})

    # teams and members as the member sees them
    teams = stack.api("GET", "/api/teams", member["api_key"]).json()
    assert teams == {"teams": [{"id": team_id, "name": "Print shop", "plan": "team", "role": "member",
                                "member_count": 3}], "current_team_id": team_id}
    members = stack.api("GET", f"/api/teams/{team_id}/members", member["api_key"]).json()["members"]
    assert sorted((m["user_id"], m["role"]) for m in members) == sorted([
        (owner["user_id"], "owner"), (admin["user_id"], "admin"), (member["user_id"], "member")])
    # earliest first; members who joined in the same second by email (the accounts here may well)
    assert members == sorted(members, key=lambda m: (m["joined_at"], m["email"].lower(), m["user_id"]))
    assert stack.api("GET", f"/api/teams/{team_id}", stack.account()["api_key"]).status == 404

    # usage: the team's cap and counters, this key's requests
    usage = stack.api("GET", "/api/user/usage", member["api_key"]).json()
    assert usage["codes"] == {"used": 0, "limit": 2500}
    assert usage["scans_this_month"]["used"] == 0 and usage["scans_this_month"]["cap"] == 10_000_000
    assert usage["requests_today"]["used"] == 5 and usage["requests_today"]["limit"] == 10_000

    # keys: the member's own; a second key revoked fails on the very next request
    spare = stack.admin("create-key", "--user-id", member["user_id"], "--label", "ci")
    assert stack.api("GET", "/api/user", spare["api_key"]).status == 200
    listed = stack.api("GET", "/api/keys", member["api_key"]).json()
    assert listed["allowed"] is True and listed["plan"] == "team"
    assert {k["id"] for k in listed["keys"]} == {member["key_id"], spare["key_id"]}
    assert spare["api_key"] not in str(listed) and member["api_key"] not in str(listed)
    assert stack.api("DELETE", f"/api/keys/{owner['key_id']}", member["api_key"]).status == 404
    r = stack.api("DELETE", f"/api/keys/{spare['key_id']}", member["api_key"])
    assert (r.status, r.json()) == (200, {"id": spare["key_id"], "revoked": True})
    r = stack.api("GET", "/api/user", spare["api_key"])
    assert (r.status, r.json()) == (401, {"error": "invalid_api_key", "message": MESSAGES["invalid_api_key"]})

    # deleting the group as admin; the member back in personal context sees their own (empty) scope
    assert stack.api("DELETE", f"/api/groups/{group['id']}", admin["api_key"]).json()["deleted"] is True
    stack.admin("use-team", "--user-id", member["user_id"], "--personal")
    r = stack.api("POST", "/api/groups", member["api_key"], json_body={"name": "Mine"})
    assert r.status == 201
    assert stack.api("GET", "/api/teams", member["api_key"]).json()["current_team_id"] is None
