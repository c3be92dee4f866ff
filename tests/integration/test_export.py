"""GET /api/user/export through the real pipeline, against DynamoDB Local and
moto's S3 server: contents, delivery modes, presigned downloads, the rollup
files adding up to the analytics API's totals under the noise floor, and the
codes.csv round trip through the import."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest

from qrpro.data import accounts, edge, exports
from qrpro.data import codes as code_repo
from qrpro.data import keys as k
from qrpro.data.aws import ddb
from qrpro.data.table import key, to_item
from qrpro.domain.clock import day_bucket, days_back
from qrpro.domain.codes import GRACE_SECONDS
from qrpro.domain.csvio import CODE_COLUMNS, parse_codes_csv
from qrpro.domain.export_zip import COUNTRY_COLUMNS, DEVICE_COLUMNS, SCAN_COLUMNS
from qrpro.domain.imports import validate
from qrpro.domain.plans import plan
from qrpro.domain.scan_codec import parse_message
from qrpro.domain.scope import user_scope
from qrpro.services import codes as code_data
from qrpro.services import expiry
from qrpro.services import export as export_service
from qrpro.services import scans as scan_service
from tests.conftest import reset_caches

BUCKET = "qrpro-exports-test"
FAR = 4_000_000_000
FILES = ["README.txt", "codes.csv", "scans.csv", "scans_by_country.csv", "scans_by_device.csv", "scans_by_os.csv",
         "scans_by_target.csv"]


@pytest.fixture
def s3(table: str, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_endpoint)
    monkeypatch.setenv("EXPORT_BUCKET", BUCKET)
    reset_caches()
    client = boto3.client("s3", endpoint_url=moto_endpoint)
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(Bucket=BUCKET)
    yield client
    reset_caches()


def _agg(code_id: str, day: str, counts: dict[str, int], ttl: int = FAR) -> dict[str, int]:
    item: dict[str, Any] = {"pk": k.pk_code_agg(code_id), "sk": k.sk_day(day), "ttl": ttl, **counts}
    ddb().put_item(TableName=os.environ["TABLE_NAME"], Item=to_item(item))
    return counts


def _k_day(scope: str, day: str, counts: dict[str, int]) -> None:
    for cid, n in counts.items():
        ddb().update_item(
            TableName=os.environ["TABLE_NAME"], Key=key(k.pk_scope_agg(scope), k.sk_codes_day(day, cid)),
            UpdateExpression="SET #c = :n, #t = :t", ExpressionAttributeNames={"#c": f"k_{cid}", "#t": "ttl"},
            ExpressionAttributeValues={":n": {"N": str(n)}, ":t": {"N": str(FAR)}})


def _unzip(data: bytes) -> dict[str, str]:
    zf = zipfile.ZipFile(io.BytesIO(data))
    assert zf.testzip() is None
    return {name: zf.read(name).decode("utf-8") for name in zf.namelist()}


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def _objects(s3: Any, prefix: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]


def _seed(caller: Any, now: int) -> dict[str, Any]:
    """Codes of every status, with aggregates in and out of the retention window."""
    days = days_back(now, 730)
    active = code_data.create(caller, {"url": "https://example.com/a", "label": "=1+2", "tag": "-x,@y",
                                       "frame_text": "'quoted", "style_json": '{"dark": "#102030"}',
                                       "logo_key": "pdf", "frame_style": "scan-me"}, now - 400)
    paused = code_data.create(caller, {"url": "https://example.com/p", "label": "line\nbreak, \"q\""}, now - 300)
    code_data.update(caller, paused["id"], {"status": "paused"}, now - 290)
    grace = code_data.create(caller, {"url": "https://example.com/g"}, now - 200)
    code_data.soft_delete(caller, grace["id"], now - 100)
    gone = code_data.create(caller, {"url": "https://example.com/e"}, now - GRACE_SECONDS - 500)
    code_data.soft_delete(caller, gone["id"], now - GRACE_SECONDS - 400)
    assert expiry.run(now)["codes_expired"] == 1
    aggs = {
        (active["id"], days[-1]): _agg(active["id"], days[-1], {"total": 5, "c_US": 3, "c_XX": 2, "d_mobile": 5}),
        (active["id"], days[0]): _agg(active["id"], days[0], {"total": 1, "c_FR": 1, "d_desktop": 1}),
        (gone["id"], days[-3]): _agg(gone["id"], days[-3], {"total": 2, "c_DE": 2, "d_tablet": 1, "d_unknown": 1}),
    }
    # Older than the plan's retention, or past its TTL but not deleted yet: not exported.
    _agg(active["id"], days_back(now, 731)[0], {"total": 9, "c_US": 9, "d_mobile": 9})
    _agg(paused["id"], days[-2], {"total": 4, "c_US": 4, "d_mobile": 4}, ttl=now - 5)
    _k_day(caller.scope, days[-1], {active["id"]: 5})
    _k_day(caller.scope, days[-3], {gone["id"]: 2})
    return {"ids": [active["id"], paused["id"], grace["id"], gone["id"]], "aggs": aggs}


def _expected_rollup(aggs: dict[tuple[str, str], dict[str, int]], order: list[str],
                     codes: dict[str, dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    """The five rollup files of the seeded aggregates, written out by hand (the countries of ``_seed``
    are all under the floor or unknown: each code-day has one Other row; the aggregates predate routing
    and OS classes: their scans went to ``default``, named from 5 scans a code-day, from systems ``other``)."""
    out: dict[str, list[dict[str, str]]] = {"scans.csv": [], "scans_by_country.csv": [], "scans_by_device.csv": [],
                                            "scans_by_os.csv": [], "scans_by_target.csv": []}
    for cid in order:
        for (code_id, day), counts in sorted(aggs.items(), key=lambda kv: kv[0][1]):
            if code_id != cid:
                continue
            base = {"code_id": cid, "shortcode": codes[cid]["shortcode"]}
            out["scans.csv"].append({**base, "label": codes[cid]["label"], "day": day,
                                     "scans": str(counts["total"])})
            out["scans_by_country.csv"].append({**base, "day": day, "country": "Other",
                                                "scans": str(counts["total"])})
            devices = sorted(((n[2:], v) for n, v in counts.items() if n.startswith("d_")),
                             key=lambda kv: (-kv[1], kv[0]))
            out["scans_by_device.csv"] += [{**base, "day": day, "device": d, "scans": str(v)} for d, v in devices]
            out["scans_by_target.csv"].append({**base, "day": day, "target": "default" if counts["total"] >= 5
                                               else "other", "scans": str(counts["total"])})
            out["scans_by_os.csv"].append({**base, "day": day, "os": "other", "scans": str(counts["total"])})
    return out


def test_inline_export_has_exactly_the_accounts_codes_and_aggregates(api: Any, s3: Any, make_account: Any) -> None:
    acct, stranger = make_account("business"), make_account("business")
    now = int(time.time())
    caller = acct.caller()
    seeded = _seed(caller, now)
    other = code_data.create(stranger.caller(), {"url": "https://example.com/other"}, now)
    _agg(other["id"], days_back(now, 1)[0], {"total": 1, "c_US": 1, "d_mobile": 1})

    r = api.request("GET", "/api/user/export", acct.token)
    assert r.status == 200, r.body
    assert r.headers["Content-Type"] == "application/zip"
    assert r.headers["Content-Disposition"].startswith('attachment; filename="qrpro-export-')
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["X-RateLimit-Limit"] == "1000"
    files = _unzip(r.body)
    assert sorted(files) == FILES

    codes_rows = _rows(files["codes.csv"])
    assert list(codes_rows[0]) == list(CODE_COLUMNS)
    expected = {c["id"]: c for c in (code_data.get(caller.scope, cid, now) for cid in seeded["ids"])}
    assert [row["id"] for row in codes_rows] == list(reversed(seeded["ids"]))  # newest first
    for row in codes_rows:
        code = expected[row["id"]]
        for name in CODE_COLUMNS:
            value = code[name]
            cell = "" if value is None else str(value)
            if name in ("label", "tag", "frame_text") and cell[:1] in ("=", "-", "@", "'"):
                cell = "'" + cell
            assert row[name] == cell, (name, row[name], value)
    by_id = {row["id"]: row for row in codes_rows}
    assert {by_id[i]["status"] for i in seeded["ids"]} == {"active", "paused", "grace", "expired"}
    assert by_id[seeded["ids"][0]]["label"] == "'=1+2" and by_id[seeded["ids"][0]]["scans_30d"] == "5"
    assert by_id[seeded["ids"][3]]["scans_30d"] == "2"

    assert list(_rows(files["scans.csv"])[0]) == list(SCAN_COLUMNS)
    assert list(_rows(files["scans_by_country.csv"])[0]) == list(COUNTRY_COLUMNS)
    assert list(_rows(files["scans_by_device.csv"])[0]) == list(DEVICE_COLUMNS)
    expected_rollup = _expected_rollup(seeded["aggs"], [row["id"] for row in codes_rows], by_id)
    for name, rows in expected_rollup.items():
        assert _rows(files[name]) == rows, name
        assert sum(int(row["scans"]) for row in rows) == 8  # 5 + 1 + 2: the same total in every file
        assert other["id"] not in files[name]
    assert other["id"] not in files["codes.csv"]
    for line in ("your codes, one row per code (4 rows)", "scans per code and day (3 rows)",
                 "split by country (3 rows)", "split by device type (4 rows)", "8 scans in all."):
        assert line in files["README.txt"]

    # Stored in S3 under the scope, the same bytes.
    keys = _objects(s3, f"exports/user/{acct.user_id}/")
    assert len(keys) == 1 and keys[0].endswith(".zip")
    obj = s3.get_object(Bucket=BUCKET, Key=keys[0])
    assert obj["Body"].read() == r.body
    assert obj["ContentType"] == "application/zip"


def _scan(code: dict[str, Any], scope: str, when: int, country: str | None, device: str, n: int) -> list[Any]:
    """``n`` scans as the redirect enqueues them (country None: no CDN header, stored as unknown)."""
    parsed = [parse_message(edge.scan_message(code["id"], scope, "business", when, country or "", device))
              for _ in range(n)]
    assert all(p is not None for p in parsed)
    return parsed


def test_export_files_each_sum_to_the_analytics_totals_under_the_noise_floor(
        api: Any, s3: Any, make_account: Any) -> None:
    """Real scans through the aggregator, then 7.1, 7.2 and 7.3 over the plan's whole retention (the
    export's window) against the three rollup files of the export of the same data."""
    acct = make_account("business")
    caller = acct.caller()
    now = int(time.time())
    r = api.request("POST", "/api/groups", acct.token, json={"name": "Print"})
    assert r.status == 201, r.body
    group_id = r.json()["id"]
    poster = code_data.create(caller, {"url": "https://example.com/p", "label": "Poster, lobby",
                                       "group_id": group_id}, now)
    flyer = code_data.create(caller, {"url": "https://example.com/f", "label": "@flyer", "group_id": group_id}, now)
    card = code_data.create(caller, {"url": "https://example.com/c", "label": "Card"}, now)
    today, yesterday, older = now, now - 86_400, now - 10 * 86_400
    scope = caller.scope
    batch = [
        # today, poster: US 7 and CA 5 (at the floor) are named; DE 4 (under it) and 2 unknown are Other
        *_scan(poster, scope, today, "US", "mobile", 7), *_scan(poster, scope, today, "CA", "tablet", 5),
        *_scan(poster, scope, today, "DE", "desktop", 4), *_scan(poster, scope, today, None, "mobile", 2),
        # BR: 3 scans on each of two days. The analytics window sums it to 6 and names it; the export
        # folds each code-day on its own (section 11), so BR never appears there.
        *_scan(poster, scope, yesterday, "BR", "mobile", 3), *_scan(flyer, scope, today, "BR", "mobile", 3),
        *_scan(flyer, scope, older, "FR", "desktop", 6), *_scan(flyer, scope, older, "JP", "unknown", 1),
        *_scan(card, scope, yesterday, "US", "mobile", 9), *_scan(card, scope, older, "NL", "tablet", 1),
    ]
    assert scan_service.aggregate(batch, now) == []

    r = api.request("GET", "/api/user/export", acct.token)
    assert r.status == 200, r.body
    files = _unzip(r.body)
    assert sorted(files) == FILES
    rollup = {name: _rows(files[name]) for name in ("scans.csv", "scans_by_country.csv", "scans_by_device.csv",
                                                    "scans_by_os.csv", "scans_by_target.csv")}

    def total(rows: list[dict[str, str]], ids: set[str] | None = None) -> int:
        return sum(int(row["scans"]) for row in rows if ids is None or row["code_id"] in ids)

    whole = api.request("GET", "/api/analytics?range=3y", acct.token).json()  # 7.2, capped to 730 days
    group = api.request("GET", f"/api/groups/{group_id}/analytics?range=3y", acct.token).json()  # 7.3
    assert whole["days"] == group["days"] == 730
    assert whole["total"] == len(batch) == 41 and group["total"] == 31
    for name, rows in rollup.items():
        assert total(rows) == whole["total"], name
        assert total(rows, {poster["id"], flyer["id"]}) == group["total"], name
        for code in (poster, flyer, card):
            one = api.request("GET", f"/api/codes/{code['id']}/analytics?range=3y", acct.token).json()  # 7.1
            assert total(rows, {code["id"]}) == one["total"], (name, code["label"])

    # One row per code and day in scans.csv, with the label.
    day = {"today": day_bucket(today), "yesterday": day_bucket(yesterday), "older": day_bucket(older)}
    assert sorted((row["shortcode"], row["label"], row["day"], row["scans"]) for row in rollup["scans.csv"]) == \
        sorted([(card["shortcode"], "Card", day["older"], "1"), (card["shortcode"], "Card", day["yesterday"], "9"),
                (flyer["shortcode"], "'@flyer", day["older"], "7"), (flyer["shortcode"], "'@flyer", day["today"], "3"),
                (poster["shortcode"], "Poster, lobby", day["yesterday"], "3"),
                (poster["shortcode"], "Poster, lobby", day["today"], "18")])
    # The noise floor: nothing under 5 is named, per code and day.
    assert all(row["country"] == "Other" or int(row["scans"]) >= 5 for row in rollup["scans_by_country.csv"])
    assert [(row["code_id"], row["day"], row["country"], row["scans"])
            for row in rollup["scans_by_country.csv"] if row["code_id"] == poster["id"]] == [
        (poster["id"], day["yesterday"], "Other", "3"),
        (poster["id"], day["today"], "US", "7"), (poster["id"], day["today"], "CA", "5"),
        (poster["id"], day["today"], "Other", "6")]
    assert not {"BR", "DE", "JP", "NL", "XX"} & {row["country"] for row in rollup["scans_by_country.csv"]}
    assert {"key": "BR", "total": 6} in whole["by_country"]  # the API's window sums it past the floor
    # Devices are not folded: the export's sums per device are the API's by_device.
    devices: dict[str, int] = {}
    for row in rollup["scans_by_device.csv"]:
        devices[row["device"]] = devices.get(row["device"], 0) + int(row["scans"])
    assert sorted(devices.items(), key=lambda kv: (-kv[1], kv[0])) == \
        [(p["key"], p["total"]) for p in whole["by_device"]]
    # Targets: every scan here went to its code's url (default); per code-day under 5 is "other".
    assert all(row["target"] in ("default", "other") for row in rollup["scans_by_target.csv"])
    assert all(row["target"] == "other" or int(row["scans"]) >= 5 for row in rollup["scans_by_target.csv"])
    assert whole["by_target"] == [{"key": "default", "total": 41}]
    assert f"{whole['total']} scans in all." in files["README.txt"]


def test_delivery_url_gives_a_presigned_link_that_downloads_the_zip(api: Any, s3: Any, make_account: Any) -> None:
    acct = make_account("business")
    now = int(time.time())
    code = code_data.create(acct.caller(), {"url": "https://example.com/x", "label": "@me"}, now)
    r = api.request("GET", "/api/user/export?delivery=url", acct.token)
    assert r.status == 200, r.body
    assert r.headers["Content-Type"] == "application/json; charset=utf-8"
    body = r.json()
    assert set(body) == {"url", "expires_at"}
    assert now + 900 <= body["expires_at"] <= int(time.time()) + 900
    parts = urlsplit(body["url"])
    assert parts.hostname == "127.0.0.1"
    assert parse_qs(parts.query)["X-Amz-Expires"] == ["900"]
    with urllib.request.urlopen(body["url"], timeout=30) as resp:
        data = resp.read()
        assert resp.headers["Content-Type"] == "application/zip"
    rows = _rows(_unzip(data)["codes.csv"])
    assert [(row["id"], row["label"]) for row in rows] == [(code["id"], "'@me")]


def test_large_export_answers_303_to_a_presigned_url(api: Any, s3: Any, make_account: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export_service, "INLINE_MAX", 200)  # any real ZIP is "large" now
    acct = make_account("business")
    code_data.create(acct.caller(), {"url": "https://example.com/big"}, int(time.time()))
    r = api.request("GET", "/api/user/export", acct.token)
    assert r.status == 303, r.body
    location = r.headers["Location"]
    assert r.json()["url"] == location and r.headers["Cache-Control"] == "no-store"
    with urllib.request.urlopen(location, timeout=30) as resp:
        files = _unzip(resp.read())
    assert [row["url"] for row in _rows(files["codes.csv"])] == ["https://example.com/big"]


def test_multipart_upload_of_a_big_object(s3: Any) -> None:
    payload = os.urandom(exports.PART_SIZE * 2 + 12345)
    sink = exports.S3Sink(BUCKET, "exports/test/big.zip", "big.zip")
    for i in range(0, len(payload), 1_000_000):
        sink.write(payload[i:i + 1_000_000])
    assert sink.upload_id is not None and len(sink.parts) == 2
    assert sink.finish() is None
    assert s3.get_object(Bucket=BUCKET, Key="exports/test/big.zip")["Body"].read() == payload
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def test_a_failed_export_aborts_its_upload(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exports, "PART_SIZE", 5 * 1024 * 1024)

    def half_then_fail(sink: exports.S3Sink, *args: Any) -> Any:
        sink.write(os.urandom(6 * 1024 * 1024))  # one part is up: a multipart upload is open
        assert sink.upload_id is not None
        raise RuntimeError("the table went away")

    monkeypatch.setattr(export_service, "write_export", half_then_fail)
    with pytest.raises(RuntimeError):
        export_service.export("USER#u-1", plan("business"), int(time.time()))
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    assert _objects(s3, "exports/user/u-1/") == []


def test_bad_delivery_is_a_validation_error(api: Any, s3: Any, make_account: Any) -> None:
    r = api.request("GET", "/api/user/export?delivery=email", make_account("business").token)
    assert r.status == 400
    assert r.json()["error"] == "validation_error" and r.json()["field"] == "delivery"


def test_expired_account_can_still_export(api: Any, s3: Any, make_account: Any) -> None:
    acct = make_account("business")
    code = code_data.create(acct.caller(), {"url": "https://example.com/mine"}, int(time.time()))
    accounts.set_plan(user_scope(acct.user_id), None, "expired", int(time.time()))
    assert api.request("GET", "/api/codes", acct.token).status == 402
    r = api.request("GET", "/api/user/export", acct.token)
    assert r.status == 200, r.body
    assert [row["id"] for row in _rows(_unzip(r.body)["codes.csv"])] == [code["id"]]


def test_team_context_exports_the_teams_codes(api: Any, s3: Any, make_account: Any) -> None:
    owner, member = make_account("team"), make_account("business")
    now = int(time.time())
    team_id = accounts.create_team(owner.user_id, "Acme", "team", now)
    accounts.add_member(team_id, member.user_id, "member", now)
    code_data.create(member.caller(), {"url": "https://example.com/personal"}, now)
    accounts.use_team(member.user_id, team_id)
    accounts.use_team(owner.user_id, team_id)
    team_code = code_data.create(owner.caller(), {"url": "https://example.com/team"}, now)
    r = api.request("GET", "/api/user/export", member.token)
    assert r.status == 200, r.body
    assert [row["id"] for row in _rows(_unzip(r.body)["codes.csv"])] == [team_code["id"]]
    assert len(_objects(s3, f"exports/team/{team_id}/")) == 1
    assert "team " + team_id in _unzip(r.body)["README.txt"]


# -- the round trip -----------------------------------------------------------------------------

ROUND_TRIP_FIELDS = [c for c in CODE_COLUMNS if c not in ("id", "shortcode", "short_url", "created_at", "updated_at")]
VARIED = [
    {"url": "https://example.com/1", "label": "=SUM(A1:A9)", "tag": "-minus,+plus", "frame_text": "@at",
     "style_json": '{"dark": "#000000", "light": "#ffffff"}', "logo_key": "wifi", "frame_style": "banner-top",
     "qr_type": "wifi"},
    {"url": "https://example.com/2?a=1,b=\"2\"", "label": "\ttab first", "tag": "'already quoted",
     "frame_text": "\rmulti\nline"},
    {"url": "https://example.com/3", "label": "", "tag": "", "frame_text": ""},
    {"url": "https://example.com/4", "label": "Ünïcødé ✓ 二维码", "tag": "a,b,c", "logo_key": None},
]


def _export_codes_csv(api: Any, token: str) -> str:
    r = api.request("GET", "/api/user/export", token)
    assert r.status == 200, r.body
    return _unzip(r.body)["codes.csv"]


def _comparable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(({f: row[f] for f in ROUND_TRIP_FIELDS} for row in rows), key=lambda r: r["url"])


def test_codes_csv_re_imports_through_the_api(api: Any, s3: Any, make_account: Any) -> None:
    source, target = make_account("business"), make_account("business")
    now = int(time.time())
    for fields in VARIED:
        code_data.create(source.caller(), fields, now)
    text = _export_codes_csv(api, source.token)

    r = api.request("POST", "/api/codes/import", target.token, body=text.encode("utf-8"),
                    headers={"Content-Type": "text/csv"})
    assert r.status == 201, r.body
    assert r.json()["count"] == len(VARIED)

    before = _rows(text)
    after = _rows(_export_codes_csv(api, target.token))
    assert _comparable(after) == _comparable(before)
    assert {row["id"] for row in after}.isdisjoint({row["id"] for row in before})
    stored = [c.public(None) for c in code_repo.all_items(target.caller().scope)]
    originals = [c.public(None) for c in code_repo.all_items(source.caller().scope)]
    fields = [f for f in ROUND_TRIP_FIELDS if f != "scans_30d"]
    assert sorted(({f: c[f] for f in fields} for c in stored), key=lambda c: c["url"]) == \
        sorted(({f: c[f] for f in fields} for c in originals), key=lambda c: c["url"])


def test_codes_csv_re_imports_through_the_import_domain(api: Any, s3: Any, make_account: Any) -> None:
    """The same round trip without the route: parse, validate as the import does, create."""
    source, target = make_account("business"), make_account("business")
    now = int(time.time())
    for fields in VARIED:
        code_data.create(source.caller(), fields, now)
    items = validate(parse_codes_csv(_export_codes_csv(api, source.token)))
    code_data.create_many(target.caller(), items, now)
    stored = [c.public(None) for c in code_repo.all_items(target.caller().scope)]
    originals = [c.public(None) for c in code_repo.all_items(source.caller().scope)]
    fields = [f for f in ROUND_TRIP_FIELDS if f != "scans_30d"]
    assert sorted(({f: c[f] for f in fields} for c in stored), key=lambda c: c["url"]) == \
        sorted(({f: c[f] for f in fields} for c in originals), key=lambda c: c["url"])
    assert json.dumps(stored, sort_keys=True) != json.dumps(originals, sort_keys=True)  # new ids


@pytest.mark.parametrize("bucket", ["", "no-such-bucket-here"])
def test_export_store_unavailable_is_a_503_not_a_500(api: Any, s3: Any, make_account: Any, bucket: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    acct = make_account("business")
    code_data.create(acct.caller(), {"url": "https://example.com/x"}, int(time.time()))
    monkeypatch.setenv("EXPORT_BUCKET", bucket)
    reset_caches()
    r = api.request("GET", "/api/user/export", acct.token)
    assert r.status == 503 and r.json()["error"] == "unavailable", r.body
    assert r.headers["Retry-After"] == "1"
