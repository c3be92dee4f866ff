"""GET /api/user/export through the real pipeline, against DynamoDB Local and
moto's S3 server: contents, delivery modes, presigned downloads, and the
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

from qrpro.data import accounts, exports
from qrpro.data import codes as code_data
from qrpro.data import keys as k
from qrpro.data.aws import ddb
from qrpro.data.table import key, to_item
from qrpro.domain.clock import days_back
from qrpro.domain.codes import GRACE_SECONDS
from qrpro.domain.csvio import CODE_COLUMNS, SCAN_COLUMNS, parse_codes_csv
from qrpro.domain.imports import validate
from qrpro.domain.plans import plan
from qrpro.domain.scope import user_scope
from qrpro.jobs import expiry
from tests.conftest import reset_caches

BUCKET = "qrpro-exports-test"
FAR = 4_000_000_000


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


def _expected_scans(aggs: dict[tuple[str, str], dict[str, int]], order: list[str],
                    shortcodes: dict[str, str]) -> list[dict[str, str]]:
    out = []
    for cid in order:
        for (code_id, day), counts in sorted(aggs.items(), key=lambda kv: kv[0][1]):
            if code_id != cid:
                continue
            base = {"code_id": cid, "shortcode": shortcodes[cid], "day": day}
            out.append({**base, "country": "", "device": "", "scans": str(counts["total"])})
            out += [{**base, "country": n[2:], "device": "", "scans": str(v)}
                    for n, v in sorted(counts.items()) if n.startswith("c_")]
            out += [{**base, "country": "", "device": n[2:], "scans": str(v)}
                    for n, v in sorted(counts.items()) if n.startswith("d_")]
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
    assert sorted(files) == ["README.txt", "codes.csv", "scans.csv"]

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

    shortcodes = {row["id"]: row["shortcode"] for row in codes_rows}
    scans_rows = _rows(files["scans.csv"])
    assert list(scans_rows[0]) == list(SCAN_COLUMNS)
    assert scans_rows == _expected_scans(seeded["aggs"], [row["id"] for row in codes_rows], shortcodes)
    assert other["id"] not in files["codes.csv"] + files["scans.csv"]
    assert len(scans_rows) == 11 and "4 codes in codes.csv, 11 rows in scans.csv" in files["README.txt"]

    # Stored in S3 under the scope, the same bytes.
    keys = _objects(s3, f"exports/user/{acct.user_id}/")
    assert len(keys) == 1 and keys[0].endswith(".zip")
    obj = s3.get_object(Bucket=BUCKET, Key=keys[0])
    assert obj["Body"].read() == r.body
    assert obj["ContentType"] == "application/zip"


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
    monkeypatch.setattr(exports, "INLINE_MAX", 200)  # any real ZIP is "large" now
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

    monkeypatch.setattr(exports, "write_export", half_then_fail)
    with pytest.raises(RuntimeError):
        exports.export("USER#u-1", plan("business"), int(time.time()))
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
    stored = [code_data.public(i, None) for i in code_data.all_items(target.caller().scope)]
    originals = [code_data.public(i, None) for i in code_data.all_items(source.caller().scope)]
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
    stored = [code_data.public(i, None) for i in code_data.all_items(target.caller().scope)]
    originals = [code_data.public(i, None) for i in code_data.all_items(source.caller().scope)]
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
