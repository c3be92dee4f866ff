"""Expiry and export as a user meets them on the local stack: `qrpro admin
run-expiry --now`, the redirect's 410, and the export ZIP inline and through
a presigned URL served by moto's S3, downloaded with plain HTTP; scans made
through the redirect come out of the export adding up to the analytics API's
totals, under the noise floor.

This file runs its own stack: `run-expiry --now <91 days later>` expires
whatever is in grace on the stack, which must not reach other files' data.
"""

from __future__ import annotations

import csv
import io
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest

from qrpro.domain.errors import MESSAGES
from tests.e2e.conftest import Stack, running_stack, until

DAY = 86_400
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1"
DESKTOP = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36"


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("expiry-stack"), "--in-memory") as s:
        yield s


def _files(data: bytes) -> dict[str, str]:
    zf = zipfile.ZipFile(io.BytesIO(data))
    assert zf.testzip() is None
    return {n: zf.read(n).decode("utf-8") for n in zf.namelist()}


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def _create(stack: Stack, key: str, url: str, **fields: Any) -> dict[str, Any]:
    r = stack.api("POST", "/api/codes", key, json_body={"url": url, **fields})
    assert r.status == 201, r.body
    body: dict[str, Any] = r.json()
    return body


def _visit(stack: Stack, shortcode: str, ua: str, country: str | None) -> None:
    headers = {"User-Agent": ua, **({"CloudFront-Viewer-Country": country} if country else {})}
    assert stack.request("GET", f"{stack.redirect_url}/{shortcode}", headers=headers).status == 302


def test_deleted_code_expires_after_grace_and_a_reactivated_one_does_not(own_stack: Stack) -> None:
    s = own_stack
    key = s.account("business")["api_key"]
    expiring = _create(s, key, "https://example.com/expiring")
    revived = _create(s, key, "https://example.com/revived")
    for code in (expiring, revived):
        r = s.api("DELETE", f"/api/codes/{code['id']}", key)
        assert r.status == 200 and r.json()["status"] == "grace", r.body
    assert s.api("POST", f"/api/codes/{revived['id']}/reactivate", key).json()["status"] == "active"

    summary = s.admin("run-expiry", "--now", str(int(time.time()) + 91 * DAY))
    assert summary["codes_expired"] == 1 and summary["remaining"] is False
    assert s.admin("run-expiry", "--now", str(int(time.time()) + 91 * DAY))["codes_expired"] == 0

    gone = s.api("GET", f"/api/codes/{expiring['id']}", key).json()
    assert gone["status"] == "expired" and gone["grace_until"] is not None
    assert s.api("GET", f"/api/codes/{revived['id']}", key).json()["status"] == "active"
    history = s.api("GET", f"/api/codes/{expiring['id']}/history", key).json()["history"]
    assert history[0]["field"] == "status" and (history[0]["from"], history[0]["to"]) == ("grace", "expired")

    assert s.request("GET", f"{s.redirect_url}/{expiring['shortcode']}").status == 410
    live = s.request("GET", f"{s.redirect_url}/{revived['shortcode']}")
    assert live.status == 302 and live.headers["Location"] == "https://example.com/revived"


def test_export_inline_and_by_presigned_url(own_stack: Stack) -> None:
    s = own_stack
    key = s.account("business")["api_key"]
    codes = [_create(s, key, f"https://example.com/{i}", label=label)
             for i, label in enumerate(["=cmd|' /C calc'!A0", "plain", "@SUM(1)"])]
    assert s.api("DELETE", f"/api/codes/{codes[1]['id']}", key).status == 200

    # Scans through the redirect, the queue and the aggregator: US 6 is named, CA 2 and one without a
    # country header are under the floor (Other).
    for country, ua in [("US", PHONE)] * 6 + [("CA", DESKTOP)] * 2 + [(None, PHONE)]:
        _visit(s, codes[0]["shortcode"], ua, country)

    def counted() -> Any:
        body = s.api("GET", "/api/analytics?range=3y", key).json()
        return body if body.get("total") == 9 else None

    analytics = until(counted)
    assert analytics is not None, "scans did not reach the analytics"
    assert analytics["by_country"] == [{"key": "US", "total": 6}, {"key": "Other", "total": 3}]

    r = s.api("GET", "/api/user/export", key)
    assert r.status == 200, r.body
    assert r.headers["Content-Type"] == "application/zip"
    assert r.headers["Content-Disposition"].startswith("attachment; filename=")
    files = _files(r.body)
    assert sorted(files) == ["README.txt", "codes.csv", "scans.csv", "scans_by_country.csv", "scans_by_device.csv",
                             "scans_by_os.csv", "scans_by_target.csv"]
    rows = {row["id"]: row for row in _rows(files["codes.csv"])}
    assert set(rows) == {c["id"] for c in codes}
    assert rows[codes[0]["id"]]["label"] == "'=cmd|' /C calc'!A0"
    assert rows[codes[2]["id"]]["label"] == "'@SUM(1)"
    assert rows[codes[1]["id"]]["status"] == "grace"
    today = time.strftime("%Y-%m-%d", time.gmtime())
    base = {"code_id": codes[0]["id"], "shortcode": codes[0]["shortcode"]}
    assert _rows(files["scans.csv"]) == [{**base, "label": "'=cmd|' /C calc'!A0", "day": today, "scans": "9"}]
    assert _rows(files["scans_by_country.csv"]) == [{**base, "day": today, "country": "US", "scans": "6"},
                                                    {**base, "day": today, "country": "Other", "scans": "3"}]
    assert _rows(files["scans_by_device.csv"]) == [{**base, "day": today, "device": "mobile", "scans": "7"},
                                                   {**base, "day": today, "device": "desktop", "scans": "2"}]
    for name in ("scans.csv", "scans_by_country.csv", "scans_by_device.csv"):  # a spreadsheet SUM is right
        assert sum(int(row["scans"]) for row in _rows(files[name])) == analytics["total"], name
    assert "9 scans in all." in files["README.txt"]

    r = s.api("GET", "/api/user/export?delivery=email", key)  # the export function checks it itself
    assert (r.status, r.json()) == (400, {"error": "validation_error", "field": "delivery",
                                          "message": "Input should be 'url'"}), r.body
    r = s.api("GET", "/api/user/export?delivery=url", key)
    assert r.status == 200, r.body
    link = r.json()
    assert link["url"].startswith("http://127.0.0.1:") and link["expires_at"] > time.time()
    with urllib.request.urlopen(link["url"], timeout=30) as resp:  # plain HTTP, no credentials
        assert resp.status == 200
        downloaded = _files(resp.read())
    assert _rows(downloaded["codes.csv"]) == _rows(files["codes.csv"])


def test_plan_grace_expires_after_90_days_and_export_stays_available(own_stack: Stack) -> None:
    s = own_stack
    acct = s.account("business")
    key = acct["api_key"]
    code = _create(s, key, "https://example.com/kept")
    s.admin("set-plan", "--user-id", acct["user_id"], "--status", "grace")
    assert s.api("GET", "/api/user", key).json()["plan_status"] == "grace"

    s.admin("run-expiry", "--now", str(int(time.time()) + 89 * DAY))
    assert s.api("GET", "/api/user", key).json()["plan_status"] == "grace"
    summary = s.admin("run-expiry", "--now", str(int(time.time()) + 91 * DAY))
    assert summary["plans_expired"] == 1

    assert s.api("GET", "/api/user", key).json()["plan_status"] == "expired"
    r = s.api("GET", "/api/codes", key)
    assert (r.status, r.json()) == (402, {"error": "plan_expired", "plan": "business",
                                          "message": MESSAGES["plan_expired"]})
    r = s.api("GET", "/api/user/export", key)
    assert r.status == 200, r.body
    assert [row["id"] for row in _rows(_files(r.body)["codes.csv"])] == [code["id"]]
