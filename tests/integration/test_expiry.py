"""The scheduled expiry job against DynamoDB Local: grace codes and grace
plans that are due become expired, exactly once, through the due-date index;
bounded runs continue where they stopped."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3

from qrpro.data import accounts
from qrpro.data import keys as k
from qrpro.data.aws import ddb
from qrpro.data.table import from_item, key
from qrpro.domain.codes import GRACE_SECONDS
from qrpro.domain.errors import MESSAGES
from qrpro.domain.plans import PLAN_GRACE_SECONDS
from qrpro.domain.scope import team_scope, user_scope
from qrpro.services import codes as code_data
from qrpro.services import expiry

DAY = 86_400


def _item(table: str, pk: str, sk: str) -> dict[str, Any]:
    out = from_item(ddb().get_item(TableName=table, Key=key(pk, sk), ConsistentRead=True).get("Item"))
    assert out is not None
    return out


def _events(table: str, event_type: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"TableName": table}
    while True:
        page = ddb().scan(**params)
        found += [from_item(i) or {} for i in page["Items"]
                  if i["pk"]["S"].startswith("EVENT#") and i["event_type"]["S"] == event_type]
        if "LastEvaluatedKey" not in page:
            return found
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _grace_code(caller: Any, deleted_at: int, url: str = "https://example.com/a") -> str:
    code = code_data.create(caller, {"url": url, "label": "printed"}, deleted_at - 10)
    code_data.soft_delete(caller, code["id"], deleted_at)
    return str(code["id"])


def test_due_grace_code_expires_once_with_one_event(table: str, make_account: Any) -> None:
    caller = make_account("business").caller()
    t0 = int(time.time())
    due = _grace_code(caller, t0)
    later = _grace_code(caller, t0 + 5 * DAY)
    active = code_data.create(caller, {"url": "https://example.com/live"}, t0)["id"]
    run_at = t0 + GRACE_SECONDS + 1

    summary = expiry.run(run_at)
    assert summary == {"now": run_at, "codes_expired": 1, "plans_expired": 0, "codes_skipped": 0,
                       "plans_skipped": 0, "remaining": False}

    item = _item(table, caller.scope, k.sk_code(due))
    assert item["status"] == "expired" and item["grace_until"] == t0 + GRACE_SECONDS
    assert k.GSI1PK not in item and k.GSI1SK not in item
    assert _item(table, k.pk_short(item["shortcode"]), "SHORT")["status"] == "expired"
    assert code_data.get(caller.scope, due, run_at)["status"] == "expired"
    history = code_data.history(caller.scope, due)
    assert history[0] == {"at": run_at, "field": "status", "from": "grace", "to": "expired", "by": "system"}
    events = _events(table, "code.expired")
    assert len(events) == 1
    assert events[0]["scope"] == caller.scope and events[0]["data"]["code"]["id"] == due
    assert events[0]["data"]["code"]["status"] == "expired"
    # Not due yet, or not in grace: untouched.
    assert _item(table, caller.scope, k.sk_code(later))["status"] == "grace"
    assert _item(table, caller.scope, k.sk_code(active))["status"] == "active"

    # A second run finds nothing left to do and fires nothing.
    assert expiry.run(run_at + 60)["codes_expired"] == 0
    assert len(_events(table, "code.expired")) == 1
    # Once the later one is due, it goes too.
    assert expiry.run(t0 + 5 * DAY + GRACE_SECONDS)["codes_expired"] == 1
    assert _item(table, caller.scope, k.sk_code(later))["status"] == "expired"
    assert len(_events(table, "code.expired")) == 2


def test_reactivated_code_is_left_alone(table: str, make_account: Any) -> None:
    caller = make_account("business").caller()
    t0 = int(time.time())
    code_id = _grace_code(caller, t0)
    code_data.reactivate(caller, code_id, t0 + DAY)
    assert expiry.run(t0 + GRACE_SECONDS + 1)["codes_expired"] == 0
    assert _item(table, caller.scope, k.sk_code(code_id))["status"] == "active"


def test_code_reactivated_after_the_index_was_read_is_left_alone(table: str, make_account: Any) -> None:
    """The index is eventually consistent: it may still list a code that was reactivated. The
    conditional transaction leaves it alone (and fires nothing)."""
    caller = make_account("business").caller()
    t0 = int(time.time())
    code_id = _grace_code(caller, t0)
    code_data.reactivate(caller, code_id, t0 + DAY)
    ddb().update_item(TableName=table, Key=key(caller.scope, k.sk_code(code_id)),
                      UpdateExpression="SET gsi1pk = :p, gsi1sk = :s",
                      ExpressionAttributeValues={":p": {"S": k.GRACE_CODES},
                                                 ":s": {"S": k.due_sk(t0 + GRACE_SECONDS, code_id)}})
    summary = expiry.run(t0 + GRACE_SECONDS + 1)
    assert (summary["codes_expired"], summary["codes_skipped"]) == (0, 1)
    item = _item(table, caller.scope, k.sk_code(code_id))
    assert item["status"] == "active" and item.get("grace_until") is None
    assert _events(table, "code.expired") == []


def test_two_runs_at_once_expire_each_code_exactly_once(table: str, make_account: Any) -> None:
    caller = make_account("business").caller()
    t0 = int(time.time())
    ids = [_grace_code(caller, t0 + i) for i in range(24)]
    run_at = t0 + GRACE_SECONDS + 100
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda _: expiry.run(run_at), range(2)))
    assert sum(r["codes_expired"] for r in results) == 24
    assert all(r["remaining"] is False for r in results)
    assert {_item(table, caller.scope, k.sk_code(i))["status"] for i in ids} == {"expired"}
    events = _events(table, "code.expired")
    assert sorted(e["data"]["code"]["id"] for e in events) == sorted(ids)


def test_bounded_runs_continue_where_they_stopped(table: str, make_account: Any) -> None:
    caller = make_account("business").caller()
    t0 = int(time.time())
    ids = [_grace_code(caller, t0 + i) for i in range(7)]
    run_at = t0 + GRACE_SECONDS + 100

    first = expiry.run(run_at, max_items=4)
    assert (first["codes_expired"], first["remaining"]) == (4, True)
    # Oldest due dates first.
    assert [_item(table, caller.scope, k.sk_code(i))["status"] for i in ids] == ["expired"] * 4 + ["grace"] * 3
    second = expiry.run(run_at, max_items=4)
    assert (second["codes_expired"], second["remaining"]) == (3, False)
    assert len(_events(table, "code.expired")) == 7


def test_a_run_past_its_deadline_leaves_everything_for_the_next(table: str, make_account: Any) -> None:
    caller = make_account("business").caller()
    t0 = int(time.time())
    code_id = _grace_code(caller, t0)
    summary = expiry.run(t0 + GRACE_SECONDS + 1, deadline=time.monotonic() - 1)
    assert (summary["codes_expired"], summary["remaining"]) == (0, True)
    assert _item(table, caller.scope, k.sk_code(code_id))["status"] == "grace"


def test_plans_in_grace_for_90_days_expire(table: str, make_account: Any, api: Any) -> None:
    acct = make_account("business")
    other = make_account("team")
    t0 = int(time.time())
    scope = user_scope(acct.user_id)
    accounts.set_plan(scope, None, "grace", t0)
    team_id = accounts.create_team(other.user_id, "Acme", "team", t0)
    accounts.set_plan(team_scope(team_id), None, "grace", t0 + 10)
    profile = _item(table, scope, k.PROFILE)
    assert (profile[k.GSI1PK], profile[k.GSI1SK]) == (k.GRACE_PLANS, k.due_sk(t0 + PLAN_GRACE_SECONDS, scope))

    early = expiry.run(t0 + PLAN_GRACE_SECONDS - 1)
    assert (early["plans_expired"], early["remaining"]) == (0, False)
    assert _item(table, scope, k.PROFILE)["plan_status"] == "grace"

    summary = expiry.run(t0 + PLAN_GRACE_SECONDS + 1)
    assert (summary["plans_expired"], summary["plans_skipped"], summary["remaining"]) == (1, 0, False)
    profile = _item(table, scope, k.PROFILE)
    assert profile["plan_status"] == "expired" and profile["plan_status_at"] == t0 + PLAN_GRACE_SECONDS + 1
    assert k.GSI1PK not in profile and k.GSI1SK not in profile
    assert _item(table, team_scope(team_id), k.PROFILE)["plan_status"] == "grace"  # 10 s later
    assert expiry.run(t0 + PLAN_GRACE_SECONDS + 10)["plans_expired"] == 1
    assert _item(table, team_scope(team_id), k.PROFILE)["plan_status"] == "expired"
    assert expiry.run(t0 + PLAN_GRACE_SECONDS + 20)["plans_expired"] == 0

    # The expired account: plan_expired everywhere but the exempt endpoints.
    r = api.request("GET", "/api/user", acct.token)
    assert r.status == 200 and r.json()["plan_status"] == "expired"
    r = api.request("GET", "/api/codes", acct.token)
    assert (r.status, r.json()) == (402, {"error": "plan_expired", "plan": "business",
                                          "message": MESSAGES["plan_expired"]})


def test_plan_back_to_active_is_left_alone_and_stale_entries_leave_the_index(table: str, make_account: Any) -> None:
    acct = make_account("business")
    t0 = int(time.time())
    scope = user_scope(acct.user_id)
    accounts.set_plan(scope, None, "grace", t0)
    accounts.set_plan(scope, None, "active", t0 + DAY)
    assert expiry.run(t0 + PLAN_GRACE_SECONDS + 1)["plans_expired"] == 0
    # An index entry that outlived its grace (eventual consistency): the condition protects the
    # account and the job drops the stale entry.
    ddb().update_item(TableName=table, Key=key(scope, k.PROFILE), UpdateExpression="SET gsi1pk = :p, gsi1sk = :s",
                      ExpressionAttributeValues={":p": {"S": k.GRACE_PLANS},
                                                 ":s": {"S": k.due_sk(t0 + PLAN_GRACE_SECONDS, scope)}})
    summary = expiry.run(t0 + PLAN_GRACE_SECONDS + 1)
    assert (summary["plans_expired"], summary["plans_skipped"], summary["remaining"]) == (0, 1, False)
    profile = _item(table, scope, k.PROFILE)
    assert profile["plan_status"] == "active" and k.GSI1PK not in profile


def test_plan_budget_leaves_room_for_codes(table: str, make_account: Any) -> None:
    t0 = int(time.time())
    owners = [make_account("business") for _ in range(3)]
    for o in owners:
        accounts.set_plan(user_scope(o.user_id), None, "grace", t0 - PLAN_GRACE_SECONDS - 10)
    caller = make_account("business").caller()
    ids = [_grace_code(caller, t0 - GRACE_SECONDS - 10 + i) for i in range(3)]
    first = expiry.run(t0, max_items=4)
    assert (first["plans_expired"], first["codes_expired"], first["remaining"]) == (2, 2, True)
    second = expiry.run(t0, max_items=4)
    assert (second["plans_expired"], second["codes_expired"], second["remaining"]) == (1, 1, False)
    assert {_item(table, caller.scope, k.sk_code(i))["status"] for i in ids} == {"expired"}


def test_scheduled_handler_runs_the_job_now(table: str, make_account: Any, dynamodb_endpoint: str) -> None:
    from lambdas.expiry.handler import handler
    from qrpro_cli.runtime import FakeContext

    caller = make_account("business").caller()
    now = int(time.time())
    code_id = _grace_code(caller, now - GRACE_SECONDS - 5)
    event = {"version": "0", "id": "1", "detail-type": "Scheduled Event", "source": "aws.events",
             "time": "2026-01-01T00:00:00Z", "region": "us-east-1", "resources": [], "detail": {}}
    summary = handler(event, FakeContext("expiry", "req-1"))
    assert summary["codes_expired"] == 1 and summary["remaining"] is False
    assert summary["now"] >= now
    client = boto3.client("dynamodb", endpoint_url=dynamodb_endpoint)
    raw = client.get_item(TableName=table, Key=key(caller.scope, k.sk_code(code_id)))["Item"]
    assert raw["status"]["S"] == "expired"
