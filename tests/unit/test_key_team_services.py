"""The keys and teams use cases over stubbed repositories: the rules that
``qrpro.services.keys`` and ``qrpro.services.teams`` own (which reads happen,
what answers 404, the orders, the last_used_at refresh)."""

from __future__ import annotations

from typing import Any

import pytest

from qrpro.data import apikeys as key_repo
from qrpro.data import teams as team_repo
from qrpro.data.apikeys import ApiKey
from qrpro.data.teams import Member, Team
from qrpro.domain.apikeys import new_token, token_hash
from qrpro.domain.errors import NotFound
from qrpro.services import keys, teams

NOW = 1_790_000_000
USER = "0b4f7c1e-8d2a-4e5b-9c3d-1a2b3c4d5e6f"
TEAM = "5d6e7f80-1a2b-4c3d-8e4f-a0b1c2d3e4f5"


def api_key(key_id: str = "k1", created_at: int = NOW, last_used_at: int | None = None) -> ApiKey:
    return ApiKey(id=key_id, user_id=USER, key_hash="h-" + key_id, prefix="abnd_qrpro_abcde",
                  created_at=created_at, label="ci", last_used_at=last_used_at, usage_key="gw-1")


def unexpected(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("no read expected")


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, int]]:
    seen: list[tuple[str, int, int]] = []

    def set_last_used(digest: str, now: int, older_than: int) -> bool:
        seen.append((digest, now, older_than))
        return True

    monkeypatch.setattr(key_repo, "set_last_used", set_last_used)
    return seen


def test_a_malformed_token_costs_no_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(key_repo, "by_hash", unexpected)
    assert keys.authenticate("abnd_qrpro_short", NOW) is None


def test_an_unknown_token_is_none(monkeypatch: pytest.MonkeyPatch, writes: list[Any]) -> None:
    token = new_token()
    asked: list[str] = []
    monkeypatch.setattr(key_repo, "by_hash", lambda digest: asked.append(digest))
    assert keys.authenticate(token, NOW) is None
    assert asked == [token_hash(token)] and writes == []


@pytest.mark.parametrize(("last_used_at", "refreshed"), [(None, True), (NOW - 60, True), (NOW - 59, False)])
def test_last_used_at_is_refreshed_at_most_once_a_minute(monkeypatch: pytest.MonkeyPatch, writes: list[Any],
                                                         last_used_at: int | None, refreshed: bool) -> None:
    found = api_key(last_used_at=last_used_at)
    monkeypatch.setattr(key_repo, "by_hash", lambda digest: found)
    assert keys.authenticate(new_token(), NOW) is found
    assert writes == ([("h-k1", NOW, NOW - 60)] if refreshed else [])


def test_a_failed_refresh_still_authenticates(monkeypatch: pytest.MonkeyPatch) -> None:
    found = api_key()
    monkeypatch.setattr(key_repo, "by_hash", lambda digest: found)
    monkeypatch.setattr(key_repo, "set_last_used", lambda *args, **kwargs: False)
    assert keys.authenticate(new_token(), NOW) is found


def test_keys_are_listed_newest_first_without_hash_or_gateway_key(monkeypatch: pytest.MonkeyPatch) -> None:
    stored = [api_key("a", NOW - 10), api_key("c", NOW), api_key("b", NOW, last_used_at=NOW)]
    monkeypatch.setattr(key_repo, "list_for", lambda user_id: stored)
    listed = keys.list_keys(USER)
    assert [x["id"] for x in listed] == ["c", "b", "a"]
    assert listed[1] == {"id": "b", "label": "ci", "prefix": "abnd_qrpro_abcde", "created_at": NOW,
                         "last_used_at": NOW}


@pytest.mark.parametrize("key_id", ["not-an-id", "../x", USER.upper()])
def test_revoking_what_cannot_be_an_id_is_404_without_a_read(monkeypatch: pytest.MonkeyPatch, key_id: str) -> None:
    monkeypatch.setattr(key_repo, "get", unexpected)
    with pytest.raises(NotFound):
        keys.revoke(USER, key_id)


def test_revoking_another_users_key_is_404(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(key_repo, "get", lambda user_id, key_id: None)
    monkeypatch.setattr(key_repo, "delete", unexpected)
    with pytest.raises(NotFound):
        keys.revoke(USER, TEAM)


def member(user_id: str = USER, email: str = "a@example.com", joined_at: int | None = NOW,
           role: str = "editor") -> Member:
    return Member(team_id=TEAM, user_id=user_id, role=role, email=email, joined_at=joined_at)


@pytest.mark.parametrize("team_id", ["nope", TEAM + "0"])
def test_a_team_id_that_cannot_be_one_is_404_without_a_read(monkeypatch: pytest.MonkeyPatch, team_id: str) -> None:
    monkeypatch.setattr(team_repo, "member", unexpected)
    with pytest.raises(NotFound):
        teams.team_for(USER, team_id)
    with pytest.raises(NotFound):
        teams.members_of(USER, team_id)


def test_not_a_member_looks_like_no_team(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(team_repo, "member", lambda team_id, user_id: None)
    monkeypatch.setattr(team_repo, "profile", unexpected)
    monkeypatch.setattr(team_repo, "members", unexpected)
    with pytest.raises(NotFound):
        teams.team_for(USER, TEAM)
    with pytest.raises(NotFound):
        teams.members_of(USER, TEAM)


def test_a_team_shows_the_callers_role(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(team_repo, "member", lambda team_id, user_id: member(role="viewer"))
    monkeypatch.setattr(team_repo, "profile", lambda team_id: Team(id=TEAM, plan="agency", name="Ops", member_count=3))
    got = teams.team_for(USER, TEAM)
    assert list(got.items()) == [("id", TEAM), ("name", "Ops"), ("plan", "agency"), ("role", "viewer"),
                                 ("member_count", 3)]


def test_teams_by_name_case_insensitive_then_id(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [(Team(id=i, plan="team", name=n), member()) for i, n in (("3", "beta"), ("2", "Alpha"), ("1", "alpha"))]
    monkeypatch.setattr(team_repo, "memberships", lambda user_id: rows)
    assert [t["id"] for t in teams.teams_of(USER)] == ["1", "2", "3"]


def test_members_earliest_first_then_email_then_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(team_repo, "member", lambda team_id, user_id: member())
    monkeypatch.setattr(team_repo, "members", lambda team_id: [
        member("u3", "b@example.com", NOW), member("u2", "B@example.com", NOW), member("u1", "z@example.com", None),
        member("u0", "a@example.com", NOW + 1)])
    listed = teams.members_of(USER, TEAM)
    assert [m["user_id"] for m in listed] == ["u1", "u2", "u3", "u0"]
    assert listed[0] == {"user_id": "u1", "email": "z@example.com", "role": "editor", "joined_at": None}
